//! Log redaction runs on every logged URL and on the subprotocol header of every upgrade.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::redact::run(data));
