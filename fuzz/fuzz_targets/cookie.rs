//! Cookie headers, identity sources and the CSRF check see raw client headers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::cookie::run(data));
