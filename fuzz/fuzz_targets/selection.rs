//! Route selection expressions: parsing attacker-chosen expressions is config-only, but
//! evaluating them runs on every client message; both must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::selection::run(data));
