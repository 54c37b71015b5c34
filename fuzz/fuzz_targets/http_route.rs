//! See `portcullis_fuzz::http_route`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::http_route::run(data));
