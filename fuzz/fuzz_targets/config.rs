//! The configuration compiler reports problems; it must never panic on any file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::config::run(data));
