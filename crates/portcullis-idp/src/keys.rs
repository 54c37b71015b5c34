//! Signing keys of a pool: RSA-2048 pairs kept parsed in memory ([`KeyRing`]), the schedule
//! that decides which key signs and which are published, and the in-process
//! [`KeySource`] the gateway's verifier reads.
//!
//! Schedule (all times from the store, so every node computes the same answer):
//! * a key is **published** from creation until `retired_at + max_token_ttl`;
//! * a key **signs** from `activates_at` until `retired_at`; rotation creates the new key with
//!   `activates_at = now + grace` and retires the old ones at the same instant, so verifiers
//!   that cache the JWKS see the new `kid` before any token carries it (cognito.md §2.3).
//!
//! At rest ([`AtRest`]): with a key-encryption key (`[store] key_encryption_key` or
//! `key_encryption_key_file`), each key's PKCS#8 and the store's client-secret pepper are
//! sealed with AES-256-GCM under a key derived from it with HKDF-SHA256: a fresh random nonce
//! per value, and the value's place (pool and `kid`, or the metadata key) as associated data,
//! so a sealed value copied into another row does not open. Values written before a
//! key-encryption key was configured are sealed on the next start.

use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_auth::jwt::{Algorithm, Jwk, KeySource};
use portcullis_config::{Config, KeyEncryptionKey, MIN_KEY_ENCRYPTION_KEY_BYTES};

use crate::store::{SecretBytes, SigningKeyRecord, Store, StoreError};
use crate::{IdpError, unix_now};

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
        self.jwks_at(unix_now())
    }
}

// ---- keys at rest ---------------------------------------------------------------------------

/// Starts every sealed value (format 1): `SEALED_V1 || nonce || ciphertext || tag`. A plain
/// PKCS#8 key starts with a DER SEQUENCE (`0x30`) and a plain pepper is 32 bytes, shorter than
/// any sealed value, so values stored before encryption are never taken for sealed ones.
const SEALED_V1: &[u8] = b"PCSEAL1:";
/// AES-GCM's tag.
const TAG_LEN: usize = 16;
const HKDF_SALT: &[u8] = b"portcullis key-encryption key v1";
const HKDF_INFO: &[u8] = b"AES-256-GCM for signing keys and the client-secret pepper";
/// The metadata key of the client-secret pepper.
pub(crate) const PEPPER_KEY: &str = "client_secret_pepper";

/// A stored secret value, as recognised by [`classify`].
#[derive(Debug, PartialEq, Eq)]
pub enum StoredValue<'a> {
    /// Stored as is (no key-encryption key when it was written).
    Plain(&'a [u8]),
    /// Sealed with a key-encryption key.
    Sealed {
        nonce: [u8; NONCE_LEN],
        ciphertext: &'a [u8],
    },
}

/// Tells a sealed value from a plain one by its prefix and length.
pub fn classify(stored: &[u8]) -> StoredValue<'_> {
    let sealed = stored
        .strip_prefix(SEALED_V1)
        .filter(|rest| rest.len() >= NONCE_LEN + TAG_LEN)
        .and_then(|rest| {
            let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
            Some(StoredValue::Sealed {
                nonce: nonce.try_into().ok()?,
                ciphertext,
            })
        });
    sealed.unwrap_or(StoredValue::Plain(stored))
}

/// Associated data of a signing key: its pool and `kid`.
fn signing_key_aad(pool: &str, kid: &str) -> Vec<u8> {
    [
        &b"signing_keys\0"[..],
        pool.as_bytes(),
        b"\0",
        kid.as_bytes(),
    ]
    .concat()
}

/// Associated data of a metadata value: its key.
fn meta_aad(key: &str) -> Vec<u8> {
    [&b"meta\0"[..], key.as_bytes()].concat()
}

/// The AEAD key derived from a key-encryption key. `Debug` shows nothing of it.
pub struct Kek {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// Derives the AEAD key from at least [`MIN_KEY_ENCRYPTION_KEY_BYTES`] bytes of material.
    pub fn derive(material: &[u8]) -> Result<Self, KeyError> {
        if material.len() < MIN_KEY_ENCRYPTION_KEY_BYTES {
            return Err(KeyError("key-encryption key too short"));
        }
        let prk =
            aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, HKDF_SALT).extract(material);
        let info = [HKDF_INFO];
        let mut bytes = [0u8; 32];
        prk.expand(&info, &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut bytes))
            .map_err(|_| KeyError("key-encryption key derivation"))?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| KeyError("key-encryption key derivation"))?;
        bytes.fill(0);
        Ok(Kek { key })
    }

    /// Seals `plaintext` under a fresh random nonce.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .map_err(|_| KeyError("sealing failed"))?;
        let mut sealed = Vec::with_capacity(SEALED_V1.len() + NONCE_LEN + in_out.len());
        sealed.extend_from_slice(SEALED_V1);
        let nonce: &[u8; NONCE_LEN] = nonce.as_ref();
        sealed.extend_from_slice(nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens a sealed value; `None` when the key or the associated data is not the one it was
    /// sealed with, or the value was altered.
    fn open(&self, aad: &[u8], nonce: [u8; NONCE_LEN], ciphertext: &[u8]) -> Option<Vec<u8>> {
        let mut in_out = ciphertext.to_vec();
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .ok()?
            .len();
        in_out.truncate(len);
        Some(in_out)
    }
}

/// The warning to log at start when the configuration keeps signing keys unencrypted on
/// disk: it has pools, a store that is not in memory, and no key-encryption key.
pub fn unencrypted_store_warning(config: &Config) -> Option<&'static str> {
    let unencrypted = !config.pools.is_empty()
        && config.store.key_encryption_key.is_none()
        && !crate::store::is_in_memory(&config.store.url);
    unencrypted.then_some(
        "signing keys and the client-secret pepper are stored unencrypted: whoever can read \
         the store can mint tokens; set [store] key_encryption_key or key_encryption_key_file",
    )
}

/// Why a stored secret value could not be read or sealed.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error(
        "{0} in the store is encrypted, but [store] sets no key_encryption_key or \
         key_encryption_key_file: configure the key the store was encrypted with"
    )]
    NoKey(String),
    #[error(
        "{0} in the store cannot be decrypted with the configured [store] key-encryption key: \
         it is not the key the store was encrypted with, or the stored value was altered"
    )]
    WrongKey(String),
    #[error("[store] key_encryption_key_file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AtRestError> for IdpError {
    fn from(e: AtRestError) -> Self {
        match e {
            AtRestError::Key(e) => IdpError::Key(e),
            AtRestError::Store(e) => IdpError::from(e),
            other => IdpError::Config(other.to_string()),
        }
    }
}

fn key_what(pool: &str, kid: &str) -> String {
    format!("signing key {kid:?} of pool {pool:?}")
}

fn meta_what(key: &str) -> String {
    if key == PEPPER_KEY {
        "the client-secret pepper".to_owned()
    } else {
        format!("metadata {key:?}")
    }
}

/// How the store's secret values are kept: sealed with a key-encryption key, or as they are.
#[derive(Debug, Default)]
pub struct AtRest {
    kek: Option<Kek>,
}

impl AtRest {
    /// Values stored as they are.
    pub fn plain() -> Self {
        AtRest { kek: None }
    }

    /// Values sealed with `kek`.
    pub fn sealed(kek: Kek) -> Self {
        AtRest { kek: Some(kek) }
    }

    /// From the configuration: reads `key_encryption_key_file` (one trailing newline is not
    /// part of the key) and derives the AEAD key.
    pub fn from_config(kek: Option<&KeyEncryptionKey>) -> Result<Self, AtRestError> {
        let material = match kek {
            None => return Ok(AtRest::plain()),
            Some(KeyEncryptionKey::Value(secret)) => secret.expose().as_bytes().to_vec(),
            Some(KeyEncryptionKey::File(path)) => {
                let key_file = |reason: String| AtRestError::KeyFile {
                    path: path.display().to_string(),
                    reason,
                };
                let mut bytes = std::fs::read(path).map_err(|e| key_file(e.to_string()))?;
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                }
                if bytes.len() < MIN_KEY_ENCRYPTION_KEY_BYTES {
                    return Err(key_file(format!(
                        "holds {} bytes, at least {MIN_KEY_ENCRYPTION_KEY_BYTES} are needed \
                         (generate one with `openssl rand -base64 32`)",
                        bytes.len()
                    )));
                }
                bytes
            }
        };
        Ok(AtRest::sealed(Kek::derive(&material)?))
    }

    /// Whether values are sealed.
    pub fn is_sealed(&self) -> bool {
        self.kek.is_some()
    }

    /// The record as it is to be stored: its PKCS#8 sealed when there is a key-encryption key.
    pub fn seal_key(&self, mut record: SigningKeyRecord) -> Result<SigningKeyRecord, KeyError> {
        if let Some(kek) = &self.kek {
            let aad = signing_key_aad(&record.pool, &record.kid);
            record.pkcs8 = SecretBytes(kek.seal(&aad, &record.pkcs8.0)?);
        }
        Ok(record)
    }

    /// The record with its PKCS#8 in the clear, as read from the store.
    pub fn open_key(&self, record: &SigningKeyRecord) -> Result<SigningKeyRecord, AtRestError> {
        let aad = signing_key_aad(&record.pool, &record.kid);
        let pkcs8 = self.open(&aad, &record.pkcs8.0, || {
            key_what(&record.pool, &record.kid)
        })?;
        Ok(SigningKeyRecord {
            pkcs8: SecretBytes(pkcs8),
            ..record.clone()
        })
    }

    /// A metadata value as it is to be stored.
    pub fn seal_meta(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.kek {
            Some(kek) => kek.seal(&meta_aad(key), value),
            None => Ok(value.to_vec()),
        }
    }

    /// A metadata value in the clear, as read from the store.
    pub fn open_meta(&self, key: &str, stored: &[u8]) -> Result<Vec<u8>, AtRestError> {
        self.open(&meta_aad(key), stored, || meta_what(key))
    }

    /// Whether `stored` is a plain value that this configuration would seal.
    pub fn needs_sealing(&self, stored: &[u8]) -> bool {
        self.kek.is_some() && matches!(classify(stored), StoredValue::Plain(_))
    }

    fn open(
        &self,
        aad: &[u8],
        stored: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<Vec<u8>, AtRestError> {
        match (classify(stored), &self.kek) {
            (StoredValue::Plain(value), _) => Ok(value.to_vec()),
            (StoredValue::Sealed { .. }, None) => Err(AtRestError::NoKey(what())),
            (StoredValue::Sealed { nonce, ciphertext }, Some(kek)) => kek
                .open(aad, nonce, ciphertext)
                .ok_or_else(|| AtRestError::WrongKey(what())),
        }
    }

    /// Reads the store's secrets at start and returns the client-secret pepper (created on
    /// the first start). Every sealed value must open with the configured key; with a
    /// key-encryption key, plain values are sealed and the store compacted so that their old
    /// bytes do not linger in its files.
    pub async fn open_store(&self, store: &dyn Store) -> Result<Vec<u8>, AtRestError> {
        let (pepper, pepper_sealed) = self.load_pepper(store).await?;
        let keys_sealed = self.seal_stored_keys(store).await?;
        if pepper_sealed || keys_sealed > 0 {
            tracing::info!(
                keys = keys_sealed,
                pepper = pepper_sealed,
                "encrypted the store's secrets with the key-encryption key"
            );
            if let Err(e) = store.compact().await {
                tracing::warn!(
                    error = %e,
                    "could not compact the store: the unencrypted values may remain in its \
                     free pages until it is vacuumed"
                );
            }
        }
        Ok(pepper)
    }

    /// The pepper, and whether this call sealed it.
    async fn load_pepper(&self, store: &dyn Store) -> Result<(Vec<u8>, bool), AtRestError> {
        let mut fresh = [0u8; 32];
        aws_lc_rs::rand::fill(&mut fresh).map_err(|_| KeyError("no randomness available"))?;
        let init = self.seal_meta(PEPPER_KEY, &fresh)?;
        let mut stored = store.meta_get_or_init(PEPPER_KEY, &init).await?;
        let mut sealed = false;
        if self.needs_sealing(&stored) {
            let new = self.seal_meta(PEPPER_KEY, &stored)?;
            sealed = store.meta_replace(PEPPER_KEY, &stored, &new).await?;
            // another process may have sealed it first: read what is there now
            stored = store.meta_get_or_init(PEPPER_KEY, &init).await?;
        }
        Ok((self.open_meta(PEPPER_KEY, &stored)?, sealed))
    }

    /// Checks that every signing key in the store (of every pool) opens, and seals the plain
    /// ones when there is a key-encryption key. Returns how many this call sealed.
    async fn seal_stored_keys(&self, store: &dyn Store) -> Result<u64, AtRestError> {
        let mut sealed = 0;
        for record in store.all_signing_keys().await? {
            let open = self.open_key(&record)?;
            if self.needs_sealing(&record.pkcs8.0) {
                let new = self.seal_key(open)?;
                if store
                    .replace_signing_key_pkcs8(&record.kid, &record.pkcs8.0, &new.pkcs8.0)
                    .await?
                {
                    sealed += 1;
                }
            }
        }
        Ok(sealed)
    }
}

mod rotation;

#[cfg(test)]
mod at_rest_tests;

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
