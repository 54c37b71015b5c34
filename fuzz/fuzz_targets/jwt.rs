//! Tokens and JWKS documents come from clients and from issuers: parsing must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis_auth::jwt::fuzzing;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fuzzing::parse_token(text);
    }
    let _ = fuzzing::parse_jwks(data);
});
