//! Temporary credentials as bytes: minting and opening session tokens, deriving the secret
//! access key, access key ids and identity ids. Pure: the caller supplies the key, the time
//! and the random bytes; nothing here touches the store or the clock.
//!
//! A session token is `base64url(payload) "." base64url(HMAC-SHA256(K, payload))` where the
//! payload is compact JSON ([`Claims`]). The secret access key is not in the token: it is
//! `base64(HMAC-SHA256(K, "secret" || payload))[..40]`, so whoever holds K (every node sharing
//! the store's pepper) re-derives it from the token, and nobody else can.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// Longest session token accepted or minted, in bytes.
pub const MAX_SESSION_TOKEN_BYTES: usize = 2048;
/// Length of an access key id (`ASIA` + 16).
pub const ACCESS_KEY_ID_LEN: usize = 20;
/// Length of a secret access key (as AWS's).
pub const SECRET_ACCESS_KEY_LEN: usize = 40;
/// Label of the key K derived from the store's pepper.
pub(crate) const KEY_LABEL: &[u8] = b"portcullis/identity-pools/session-key/v1";
/// Payload version: a token of another version is malformed.
const VERSION: u8 = 1;

/// Why a session token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IamSessionError {
    /// Not a session token: bad encoding, JSON, version or size.
    #[error("malformed session token")]
    Malformed,
    /// The MAC does not verify (tampered, or minted with another store's pepper), or the
    /// token belongs to another access key id.
    #[error("session token does not match")]
    WrongKey,
    #[error("session token expired")]
    Expired,
    /// The identity pool or the role the token names is no longer configured.
    #[error("identity pool or role no longer configured")]
    UnknownPool,
}

/// The signed part of a session token. Field names are short: the token travels in every
/// signed request (`X-Amz-Security-Token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub v: u8,
    /// Access key id.
    pub ak: String,
    /// Identity pool (configuration name).
    pub ip: String,
    /// Identity id.
    pub id: String,
    /// Role (configuration name).
    pub r: String,
    /// Authenticated.
    pub a: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l: Option<LoginClaims>,
    /// Expiry, unix seconds.
    pub exp: i64,
}

/// The user-pool login behind an authenticated session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginClaims {
    /// Issuer (`http://localhost:8080/pools/main`).
    pub iss: String,
    pub sub: String,
    /// Username.
    pub u: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oj: Option<String>,
    /// `iat` of the user-pool token.
    pub iat: i64,
}

/// K: HMAC-SHA256 of [`KEY_LABEL`] under the store's pepper key.
pub(crate) fn derive_key(pepper_key: &hmac::Key) -> hmac::Key {
    let tag = hmac::sign(pepper_key, KEY_LABEL);
    hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
}

/// `ASIA` + 16 upper-case base32 characters from `random`.
pub fn access_key_id(random: &[u8; 10]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u128 = 0;
    for b in random {
        bits = (bits << 8) | u128::from(*b);
    }
    let mut out = String::with_capacity(ACCESS_KEY_ID_LEN);
    out.push_str("ASIA");
    for i in (0..16).rev() {
        let index = usize::try_from((bits >> (i * 5)) & 31).unwrap_or(0);
        out.push(char::from(ALPHABET[index]));
    }
    out
}

/// Mints the session token of `claims` and its secret access key.
pub fn mint(key: &hmac::Key, claims: &Claims) -> Option<(String, String)> {
    let payload = serde_json::to_vec(claims).ok()?;
    let tag = hmac::sign(key, &payload);
    let token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    );
    (token.len() <= MAX_SESSION_TOKEN_BYTES).then(|| (token, secret(key, &payload)))
}

/// Checks `token`'s MAC, version, access key id and expiry (`now` in unix seconds; a token is
/// dead from its `exp` on); returns the claims and the secret access key.
pub fn open(
    key: &hmac::Key,
    access_key_id: &str,
    token: &str,
    now: i64,
) -> Result<(Claims, String), IamSessionError> {
    if token.len() > MAX_SESSION_TOKEN_BYTES {
        return Err(IamSessionError::Malformed);
    }
    let (payload, tag) = token.split_once('.').ok_or(IamSessionError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| IamSessionError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| IamSessionError::Malformed)?;
    // Constant-time comparison inside aws-lc-rs; before parsing, so only our own bytes are
    // ever parsed.
    hmac::verify(key, &payload, &tag).map_err(|_| IamSessionError::WrongKey)?;
    let claims: Claims =
        serde_json::from_slice(&payload).map_err(|_| IamSessionError::Malformed)?;
    if claims.v != VERSION {
        return Err(IamSessionError::Malformed);
    }
    if !constant_time_eq(claims.ak.as_bytes(), access_key_id.as_bytes()) {
        return Err(IamSessionError::WrongKey);
    }
    if now >= claims.exp {
        return Err(IamSessionError::Expired);
    }
    let secret = secret(key, &payload);
    Ok((claims, secret))
}

impl Claims {
    /// Claims of version [`VERSION`].
    pub fn new(
        access_key_id: String,
        identity_pool: String,
        identity_id: String,
        role: String,
        login: Option<LoginClaims>,
        exp: i64,
    ) -> Self {
        Claims {
            v: VERSION,
            ak: access_key_id,
            ip: identity_pool,
            id: identity_id,
            r: role,
            a: login.is_some(),
            l: login,
            exp,
        }
    }
}

fn secret(key: &hmac::Key, payload: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(b"secret");
    ctx.update(payload);
    let mut s = STANDARD.encode(ctx.sign().as_ref());
    s.truncate(SECRET_ACCESS_KEY_LEN);
    s
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The identity id of a user of `identity_pool_id` (`REGION:...`): `REGION:` + a UUID keyed
/// hash of the pool id, issuer and subject, so the same user always gets the same id and
/// nobody without K can tell which user an id belongs to.
pub fn authenticated_identity_id(
    key: &hmac::Key,
    identity_pool_id: &str,
    issuer: &str,
    sub: &str,
) -> String {
    let mut ctx = hmac::Context::with_key(key);
    for part in [
        b"user".as_slice(),
        identity_pool_id.as_bytes(),
        issuer.as_bytes(),
    ] {
        ctx.update(part);
        ctx.update(&[0]);
    }
    ctx.update(sub.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&ctx.sign().as_ref()[..16]);
    with_region(identity_pool_id, bytes)
}

/// A guest identity id: 8 random bytes and 8 bytes of MAC over them, so a guest id presented
/// later can be recognised as one this pool handed out (ids are not stored).
pub fn guest_identity_id(key: &hmac::Key, identity_pool_id: &str, random: [u8; 8]) -> String {
    with_region(identity_pool_id, guest_bytes(key, identity_pool_id, random))
}

/// Whether `identity_id` is a guest id of `identity_pool_id` minted with `key`.
pub fn is_guest_identity_id(key: &hmac::Key, identity_pool_id: &str, identity_id: &str) -> bool {
    let Some(bytes) = parse_identity_id(identity_pool_id, identity_id) else {
        return false;
    };
    let mut random = [0u8; 8];
    random.copy_from_slice(&bytes[..8]);
    // The version bits are set in the random half before the MAC (see `guest_bytes`), so
    // the random half of a valid id is what the MAC covers.
    let expected = guest_bytes(key, identity_pool_id, random);
    constant_time_eq(&expected, &bytes)
}

fn guest_bytes(key: &hmac::Key, identity_pool_id: &str, mut random: [u8; 8]) -> [u8; 16] {
    random[6] = (random[6] & 0x0f) | 0x40;
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(b"guest");
    ctx.update(&[0]);
    ctx.update(identity_pool_id.as_bytes());
    ctx.update(&[0]);
    ctx.update(&random);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random);
    bytes[8..].copy_from_slice(&ctx.sign().as_ref()[..8]);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

/// `REGION:` (the identity pool id's) + the UUID text of `bytes` (version 4 bits set).
fn with_region(identity_pool_id: &str, mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let region = identity_pool_id
        .split_once(':')
        .map_or(identity_pool_id, |(r, _)| r);
    let h: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{region}:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The 16 bytes of `REGION:UUID` when REGION is the identity pool's.
fn parse_identity_id(identity_pool_id: &str, identity_id: &str) -> Option<[u8; 16]> {
    let region = identity_pool_id.split_once(':').map(|(r, _)| r)?;
    let (r, uuid) = identity_id.split_once(':')?;
    if r != region || uuid.len() != 36 {
        return None;
    }
    let hex: String = uuid
        .char_indices()
        .filter_map(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                (c != '-').then_some('!')
            } else {
                Some(c)
            }
        })
        .collect();
    if hex.len() != 32
        || !hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}
