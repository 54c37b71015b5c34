//! Shared-secret (HMAC) issuers: `HS256`, `HS384`, `HS512` with a secret the operator gives the
//! gateway (`secret` / `secret_file` of a `jwt` issuer), and the signing half used by
//! `portcullis token mint`.
//!
//! An HMAC issuer never has public keys and a JWKS issuer never accepts an HMAC `alg`: the
//! verifier decides which kind of key to use from the configured issuer, never from the token,
//! so the classic confusion (an `HS256` token "signed" with an issuer's RSA public key) has no
//! path. The MAC comparison is aws-lc-rs's `hmac::verify` (constant time). The secret lives only
//! inside aws-lc-rs keys; `Debug` shows the algorithms, never key material.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::JwtError;

/// The HMAC JWS algorithms (RFC 7518 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HmacAlgorithm {
    HS256,
    HS384,
    HS512,
}

impl HmacAlgorithm {
    /// The algorithm named by a JOSE `alg` value (case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
        }
    }

    fn aws_lc(self) -> hmac::Algorithm {
        match self {
            Self::HS256 => hmac::HMAC_SHA256,
            Self::HS384 => hmac::HMAC_SHA384,
            Self::HS512 => hmac::HMAC_SHA512,
        }
    }
}

/// One shared-secret issuer of a verifier: its name, audiences and one key per allowed
/// algorithm.
pub(crate) struct HmacIssuer {
    pub issuer: String,
    pub audience: Vec<String>,
    keys: Vec<(HmacAlgorithm, hmac::Key)>,
}

impl std::fmt::Debug for HmacIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<&str> = self.keys.iter().map(|(a, _)| a.name()).collect();
        f.debug_struct("HmacIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithms", &algorithms)
            .finish_non_exhaustive()
    }
}

impl HmacIssuer {
    pub(crate) fn new(
        issuer: String,
        audience: Vec<String>,
        algorithms: &[HmacAlgorithm],
        secret: &[u8],
    ) -> Self {
        let keys = algorithms
            .iter()
            .map(|alg| (*alg, hmac::Key::new(alg.aws_lc(), secret)))
            .collect();
        HmacIssuer {
            issuer,
            audience,
            keys,
        }
    }

    /// Checks the MAC of `message` with the key of `alg`, which must be one this issuer allows.
    pub(crate) fn verify(
        &self,
        alg: HmacAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), JwtError> {
        let (_, key) = self
            .keys
            .iter()
            .find(|(a, _)| *a == alg)
            .ok_or_else(|| JwtError::UnsupportedAlgorithm(alg.name().to_owned()))?;
        hmac::verify(key, message, signature).map_err(|_| JwtError::BadSignature)
    }
}

/// Signs `claims` as a compact JWS with `alg` and `secret`: header `{"alg", "typ": "JWT"}`.
/// The caller chooses the claims (`iss`, `exp`, ...); nothing is added here.
pub fn sign(alg: HmacAlgorithm, secret: &[u8], claims: &Map<String, Value>) -> String {
    let header = serde_json::json!({ "alg": alg.name(), "typ": "JWT" });
    let mut token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
    );
    let tag = hmac::sign(&hmac::Key::new(alg.aws_lc(), secret), token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
    token
}
