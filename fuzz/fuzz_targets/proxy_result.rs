//! Lambda-proxy results come from backends: parsing must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = portcullis_core::event::parse_proxy_result(data);
});
