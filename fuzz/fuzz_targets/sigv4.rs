//! SigV4 verification sees every management request's headers, path and query.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::sigv4::run(data));
