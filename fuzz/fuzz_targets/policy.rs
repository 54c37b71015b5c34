//! IAM policies come from request-authorizer webhooks: parsing and evaluation must never
//! panic, and wildcard matching must stay linear.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::policy::run(data));
