//! Tokens and JWKS documents come from clients and from issuers: parsing must never panic.
use portcullis_auth::jwt::fuzzing;

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fuzzing::parse_token(text);
    }
    let _ = fuzzing::parse_jwks(data);
}
