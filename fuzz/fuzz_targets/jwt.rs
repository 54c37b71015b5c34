//! Tokens and JWKS documents come from clients and from issuers: parsing must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::jwt::run(data));
