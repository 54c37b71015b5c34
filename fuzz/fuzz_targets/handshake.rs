//! The WebSocket upgrade checks read attacker headers: they never panic, an accepted request
//! always has a key and version 13, and the 101 always carries the gateway's own handshake
//! headers, never the client's token.
//!
//! Input: the first line is the method, every other line a header (`name:value`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| portcullis_fuzz::handshake::run(data));
