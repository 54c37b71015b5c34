//! Token claims, exactly as Cognito shapes them (cognito.md §1.2–1.4), and opaque refresh
//! tokens. Pure functions: the caller supplies times and ids, the key signs.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

/// What every token of one authentication shares.
#[derive(Debug, Clone)]
pub struct SessionInfo<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub username: &'a str,
    pub groups: &'a [String],
    pub origin_jti: &'a str,
    pub event_id: &'a str,
    pub auth_time: i64,
}

/// A random UUID v4 (`sub`, `jti`, `event_id`, `origin_jti`).
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    // SystemRandom failing means the OS has no entropy; fall back to a time-based value rather
    // than panic (ids are not secrets; refresh tokens use `random_token`, which reports errors).
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// 256 random bits, base64url (the refresh token handed to the client).
pub fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(URL_SAFE_NO_PAD.encode(b))
}

/// SHA-256 of a refresh token: what the store keeps.
pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// Claims of a user access token (§1.2). `scope` space-separated.
pub fn access_claims(s: &SessionInfo<'_>, scope: &str, jti: &str, iat: i64, ttl: i64) -> Value {
    let mut c = Map::new();
    c.insert("sub".into(), json!(s.sub));
    if !s.groups.is_empty() {
        c.insert("cognito:groups".into(), json!(s.groups));
    }
    c.insert("iss".into(), json!(s.issuer));
    c.insert("version".into(), json!(2));
    c.insert("client_id".into(), json!(s.client_id));
    c.insert("origin_jti".into(), json!(s.origin_jti));
    c.insert("event_id".into(), json!(s.event_id));
    c.insert("token_use".into(), json!("access"));
    c.insert("scope".into(), json!(scope));
    c.insert("auth_time".into(), json!(s.auth_time));
    c.insert("exp".into(), json!(iat.saturating_add(ttl)));
    c.insert("iat".into(), json!(iat));
    c.insert("jti".into(), json!(jti));
    c.insert("username".into(), json!(s.username));
    Value::Object(c)
}

/// Claims of an ID token (§1.3). Attributes become claims: `*_verified` as booleans,
/// everything else (including `custom:*`) as strings; reserved claim names
/// ([`crate::attributes::is_reserved_claim`]) are never taken from attributes.
pub fn id_claims(
    s: &SessionInfo<'_>,
    attributes: &BTreeMap<String, String>,
    jti: &str,
    iat: i64,
    ttl: i64,
) -> Value {
    let mut c = Map::new();
    for (name, value) in crate::attributes::token_claims(attributes) {
        let v = if name == "email_verified" || name == "phone_number_verified" {
            json!(value == "true")
        } else {
            json!(value)
        };
        c.insert(name.clone(), v);
    }
    if attributes.contains_key("email") && !c.contains_key("email_verified") {
        c.insert("email_verified".into(), json!(false));
    }
    c.insert("sub".into(), json!(s.sub));
    if s.groups.is_empty() {
        c.remove("cognito:groups");
    } else {
        c.insert("cognito:groups".into(), json!(s.groups));
    }
    c.insert("iss".into(), json!(s.issuer));
    c.insert("cognito:username".into(), json!(s.username));
    c.insert("origin_jti".into(), json!(s.origin_jti));
    c.insert("aud".into(), json!(s.client_id));
    c.insert("event_id".into(), json!(s.event_id));
    c.insert("token_use".into(), json!("id"));
    c.insert("auth_time".into(), json!(s.auth_time));
    c.insert("exp".into(), json!(iat.saturating_add(ttl)));
    c.insert("iat".into(), json!(iat));
    c.insert("jti".into(), json!(jti));
    for reserved in [
        "nbf",
        "client_id",
        "username",
        "scope",
        "version",
        "at_hash",
        "nonce",
    ] {
        c.remove(reserved);
    }
    Value::Object(c)
}

/// Claims of a client-credentials access token (§1.4).
pub fn client_credentials_claims(
    issuer: &str,
    client_id: &str,
    scope: &str,
    jti: &str,
    iat: i64,
    ttl: i64,
) -> Value {
    json!({
        "sub": client_id,
        "token_use": "access",
        "scope": scope,
        "auth_time": iat,
        "iss": issuer,
        "exp": iat.saturating_add(ttl),
        "iat": iat,
        "version": 2,
        "jti": jti,
        "client_id": client_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, uuid_v4());
    }

    #[test]
    fn refresh_tokens_are_base64url_256_bits() {
        let t = random_token().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(refresh_token_hash(&t).len(), 32);
    }
}
