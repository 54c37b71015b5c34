//! Lambda-proxy results come from backends: parsing must never panic.

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let _ = portcullis_core::event::parse_proxy_result(data);
}
