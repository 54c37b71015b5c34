//! Lambda-proxy results come from backends: parsing (both result formats) must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::proxy_result::run(data));
