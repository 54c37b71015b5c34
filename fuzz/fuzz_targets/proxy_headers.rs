//! What `http_proxy` tells a backend: whatever the client sends, no header the gateway owns
//! survives in any spelling (only the gateway's own values are there, once each), nor a
//! hop-by-hop header, nor a session cookie.
//!
//! Input: one header per line (`name:value`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::proxy_headers::run(data));
