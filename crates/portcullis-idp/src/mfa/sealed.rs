//! TOTP secrets at rest: each is sealed (AES-256-GCM, a fresh random nonce) under a key derived
//! from the store's pepper, with its pool and user as associated data, so the store never holds
//! one in the clear and a sealed secret copied onto another user's row does not open. With a
//! key-encryption key (`[store] key_encryption_key`) the pepper itself is sealed, so opening a
//! TOTP secret needs that key too. Every node sharing the store derives the same key.
//!
//! Layout: version (1) ‖ nonce (12) ‖ ciphertext of the 20-byte secret ‖ tag (16).

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hmac;

use super::totp::{SECRET_LEN, TotpSecret};

const VERSION: u8 = 1;
/// Label of the sealing key derived from the store's pepper.
const KEY_LABEL: &[u8] = b"portcullis/mfa/totp-secret-key/v1";
const AAD_PREFIX: &[u8] = b"portcullis/mfa/totp-secret/v1\0";
/// A sealed secret's length.
pub const SEALED_LEN: usize = 1 + NONCE_LEN + SECRET_LEN + 16;

/// The key that seals TOTP secrets. `Debug` shows nothing of it.
pub struct TotpKeys {
    key: RandomizedNonceKey,
}

impl fmt::Debug for TotpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpKeys(<redacted>)")
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("cannot seal a TOTP secret")]
    Sealing,
    /// Altered, another user's, or sealed under another store's pepper.
    #[error("a stored TOTP secret does not open")]
    WrongKey,
}

fn aad(pool: &str, username: &str) -> Vec<u8> {
    [AAD_PREFIX, pool.as_bytes(), b"\0", username.as_bytes()].concat()
}

impl TotpKeys {
    /// The key under the store's pepper key; `None` only if AES-256-GCM is unavailable.
    pub fn derive(pepper_key: &hmac::Key) -> Option<Self> {
        let key = hmac::sign(pepper_key, KEY_LABEL);
        Some(TotpKeys {
            key: RandomizedNonceKey::new(&AES_256_GCM, key.as_ref()).ok()?,
        })
    }

    /// `secret` as the store keeps it for `username` of `pool`.
    pub fn seal(
        &self,
        pool: &str,
        username: &str,
        secret: &TotpSecret,
    ) -> Result<Vec<u8>, SealError> {
        let mut in_out = secret.0.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad(pool, username)), &mut in_out)
            .map_err(|_| SealError::Sealing)?;
        let nonce: &[u8; NONCE_LEN] = nonce.as_ref();
        let mut sealed = Vec::with_capacity(SEALED_LEN);
        sealed.push(VERSION);
        sealed.extend_from_slice(nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// The secret of `username` of `pool` from its sealed form.
    pub fn open(&self, pool: &str, username: &str, sealed: &[u8]) -> Result<TotpSecret, SealError> {
        if sealed.len() != SEALED_LEN || sealed.first() != Some(&VERSION) {
            return Err(SealError::WrongKey);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::WrongKey)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(pool, username)),
                &mut in_out,
            )
            .map_err(|_| SealError::WrongKey)?;
        let bytes: [u8; SECRET_LEN] = plain.try_into().map_err(|_| SealError::WrongKey)?;
        Ok(TotpSecret(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pepper: &[u8]) -> TotpKeys {
        TotpKeys::derive(&hmac::Key::new(hmac::HMAC_SHA256, pepper)).expect("AES-GCM")
    }

    #[test]
    fn a_sealed_secret_opens_for_its_user_only() {
        let keys = keys(b"pepper");
        let secret = TotpSecret(*b"12345678901234567890");
        let sealed = keys.seal("main", "alice", &secret).expect("seals");
        assert_eq!(sealed.len(), SEALED_LEN);
        assert!(!sealed.windows(SECRET_LEN).any(|w| w == secret.0));
        assert_eq!(keys.open("main", "alice", &sealed), Ok(secret.clone()));
        // a fresh nonce each time
        assert_ne!(keys.seal("main", "alice", &secret).expect("seals"), sealed);
        assert_eq!(keys.open("main", "bob", &sealed), Err(SealError::WrongKey));
        assert_eq!(
            keys.open("other", "alice", &sealed),
            Err(SealError::WrongKey)
        );
        assert_eq!(
            self::keys(b"another pepper").open("main", "alice", &sealed),
            Err(SealError::WrongKey)
        );
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(
            keys.open("main", "alice", &altered),
            Err(SealError::WrongKey)
        );
        assert_eq!(
            keys.open("main", "alice", &sealed[..10]),
            Err(SealError::WrongKey)
        );
    }
}
