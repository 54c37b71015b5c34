//! Signing keys of a pool: RSA-2048 pairs kept parsed in memory ([`KeyRing`]), the schedule
//! that decides which key signs and which are published, and the in-process
//! [`KeySource`] the gateway's verifier reads.
//!
//! Schedule (all times from the store, so every node computes the same answer):
//! * a key is **published** from creation until `retired_at + max_token_ttl`;
//! * a key **signs** from `activates_at` until `retired_at`; rotation creates the new key with
//!   `activates_at = now + grace` and retires the old ones at the same instant, so verifiers
//!   that cache the JWKS see the new `kid` before any token carries it (cognito.md §2.3).

use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_auth::jwt::{Algorithm, Jwk, KeySource};

use crate::store::{SecretBytes, SigningKeyRecord};

/// A failure of the cryptographic library (never the client's fault).
#[derive(Debug, thiserror::Error)]
#[error("signing key error: {0}")]
pub struct KeyError(pub &'static str);

/// One parsed signing key.
pub struct LoadedKey {
    pub kid: String,
    pair: KeyPair,
    /// base64url of `{"kid":"…","alg":"RS256"}`, computed once.
    header_b64: String,
    pub jwk: Jwk,
    pub created_at: i64,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// Parses a stored key.
    pub fn from_record(record: &SigningKeyRecord) -> Result<Self, KeyError> {
        let pair = KeyPair::from_pkcs8(&record.pkcs8.0).map_err(|_| KeyError("bad PKCS#8"))?;
        let public = pair.public_key();
        let jwk = Jwk::rsa(
            record.kid.clone(),
            Algorithm::RS256,
            public.modulus().big_endian_without_leading_zero(),
            public.exponent().big_endian_without_leading_zero(),
        );
        let header = serde_json::json!({ "kid": record.kid, "alg": "RS256" });
        Ok(LoadedKey {
            kid: record.kid.clone(),
            pair,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            jwk,
            created_at: record.created_at,
            activates_at: record.activates_at,
            retired_at: record.retired_at,
        })
    }

    /// Signs a JWT: `header.payload.signature` with RS256.
    pub fn sign_jwt(&self, payload: &serde_json::Value) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(payload).map_err(|_| KeyError("payload"))?;
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 360);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&RSA_PKCS1_SHA256, &rng, token.as_bytes(), &mut signature)
            .map_err(|_| KeyError("signing failed"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    fn signs_at(&self, now: i64) -> bool {
        self.activates_at <= now && self.retired_at.is_none_or(|r| now < r)
    }

    fn published_at(&self, now: i64, max_ttl: i64) -> bool {
        self.retired_at
            .is_none_or(|r| now < r.saturating_add(max_ttl))
    }
}

/// Generates a new RSA-2048 key record for `pool` (kid = base64 SHA-256 of the public key, the
/// shape Cognito's kids have).
pub fn generate(pool: &str, now: i64, activates_at: i64) -> Result<SigningKeyRecord, KeyError> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError("RSA generation"))?;
    let pkcs8 = pair.as_der().map_err(|_| KeyError("PKCS#8 encoding"))?;
    let kid = STANDARD.encode(digest::digest(&digest::SHA256, pair.public_key().as_ref()));
    Ok(SigningKeyRecord {
        kid,
        pool: pool.to_owned(),
        pkcs8: SecretBytes(pkcs8.as_ref().to_vec()),
        created_at: now,
        activates_at,
        retired_at: None,
    })
}

/// The parsed keys of one pool, ordered by `activates_at`.
#[derive(Debug, Default)]
pub struct KeyRing {
    pub keys: Vec<Arc<LoadedKey>>,
}

impl KeyRing {
    pub fn from_records(records: &[SigningKeyRecord]) -> Result<Self, KeyError> {
        let mut keys = records
            .iter()
            .map(|r| LoadedKey::from_record(r).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by_key(|k| (k.activates_at, k.created_at));
        Ok(KeyRing { keys })
    }

    /// The key that signs at `now`: the most recently activated one that is not retired. When
    /// none qualifies (clock went backwards), the newest already-active key, else none.
    pub fn signing_key(&self, now: i64) -> Option<&Arc<LoadedKey>> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.signs_at(now))
            .or_else(|| self.keys.iter().rev().find(|k| k.activates_at <= now))
    }

    /// The JWKS at `now`.
    pub fn published(&self, now: i64, max_ttl: i64) -> Vec<Jwk> {
        self.keys
            .iter()
            .filter(|k| k.published_at(now, max_ttl))
            .map(|k| k.jwk.clone())
            .collect()
    }
}

/// A pool's keys as shared between the token endpoint (signing) and verifiers (JWKS).
#[derive(Debug)]
pub struct PoolKeys {
    ring: RwLock<Arc<KeyRing>>,
    /// Longest access/ID token lifetime of the pool, seconds.
    pub max_ttl: i64,
}

impl PoolKeys {
    pub fn new(ring: KeyRing, max_ttl: i64) -> Self {
        PoolKeys {
            ring: RwLock::new(Arc::new(ring)),
            max_ttl,
        }
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace(&self, ring: KeyRing) {
        let ring = Arc::new(ring);
        match self.ring.write() {
            Ok(mut guard) => *guard = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
    }

    pub fn jwks_at(&self, now: i64) -> Vec<Jwk> {
        self.ring().published(now, self.max_ttl)
    }
}

impl KeySource for PoolKeys {
    fn jwks(&self) -> Vec<Jwk> {
        self.jwks_at(crate::unix_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pool: &str, created: i64, activates: i64, retired: Option<i64>) -> SigningKeyRecord {
        let mut r = generate(pool, created, activates).unwrap();
        r.retired_at = retired;
        r
    }

    #[test]
    fn schedule_publishes_before_signing_and_keeps_old_key() {
        let max_ttl = 3600;
        // old key from t=0, rotated at t=1000 with a 300 s grace
        let old = record("p", 0, 0, Some(1300));
        let new = record("p", 1000, 1300, None);
        let ring = KeyRing::from_records(&[new.clone(), old.clone()]).unwrap();
        let kids = |now| -> Vec<String> {
            ring.published(now, max_ttl)
                .into_iter()
                .filter_map(|j| j.kid)
                .collect()
        };
        // during the grace: both published, old signs
        assert_eq!(kids(1000), vec![old.kid.clone(), new.kid.clone()]);
        assert_eq!(ring.signing_key(1000).unwrap().kid, old.kid);
        assert_eq!(ring.signing_key(1299).unwrap().kid, old.kid);
        // after the grace: new signs, old still published until retired + max_ttl
        assert_eq!(ring.signing_key(1300).unwrap().kid, new.kid);
        assert_eq!(
            kids(1300 + max_ttl - 1),
            vec![old.kid.clone(), new.kid.clone()]
        );
        assert_eq!(kids(1300 + max_ttl), vec![new.kid.clone()]);
    }

    #[test]
    fn jwt_header_and_jwk_shape() {
        let r = record("p", 0, 0, None);
        let key = LoadedKey::from_record(&r).unwrap();
        let token = key.sign_jwt(&serde_json::json!({"a": 1})).unwrap();
        let header = token.split('.').next().unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"kid": r.kid, "alg": "RS256"}));
        assert_eq!(r.kid.len(), 44);
        assert_eq!(key.jwk.kty, "RSA");
        assert_eq!(key.jwk.e.as_deref(), Some("AQAB"));
        assert_eq!(key.jwk.alg.as_deref(), Some("RS256"));
        assert_eq!(key.jwk.key_use.as_deref(), Some("sig"));
        assert!(!format!("{r:?}").contains(&format!("{:?}", &r.pkcs8.0[..8])));
    }
}
