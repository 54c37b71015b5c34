//! The `SECRET_BLOCK` of a `PASSWORD_VERIFIER` challenge: everything the server needs to check
//! the client's answer, sealed (AES-256-GCM) under a key every node sharing the identity store
//! derives alike, so the answer may reach any node and no per-challenge row is written.
//!
//! The block names the pool, the app client and the user it was issued to, holds the client's
//! A and the server's secret b (B is recomputed from b and the user's verifier when the answer
//! arrives), its issue time and a random id (the one-answer-per-block record is keyed by it).
//! It is opaque to the client, which echoes it as `PASSWORD_CLAIM_SECRET_BLOCK` and signs its
//! bytes. A block lives [`BLOCK_TTL_SECS`].
//!
//! Pure apart from the nonce drawn by the AEAD: the caller passes the time and the id.
//!
//! Layout: version (1) ‖ nonce (12) ‖ AES-256-GCM(plaintext) with the tag; the plaintext is
//! issued_at (i64, big-endian) ‖ id (16) ‖ b (32) ‖ then A, pool, client id and username, each
//! with a big-endian u16 length.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hmac;

use super::{B_LEN, MAX_A_HEX};

/// How long a block can be answered, in seconds.
pub const BLOCK_TTL_SECS: i64 = 300;
/// How far in the future a block's issue time may be (clocks of two nodes differ a little).
const FUTURE_SKEW_SECS: i64 = 60;
/// Longest `PASSWORD_CLAIM_SECRET_BLOCK` accepted, in base64 characters.
pub const MAX_BLOCK_B64: usize = 4096;
/// Bytes of a block's random id.
pub const ID_LEN: usize = 16;
/// Longest name (pool, client id, username) a block carries, in bytes.
const MAX_NAME: usize = 512;
const VERSION: u8 = 1;
/// Associated data of every block: a block cannot be taken for another sealed value.
const AAD: &[u8] = b"portcullis/srp/secret-block/v1";
/// Label of the block key derived from the store's pepper.
const KEY_LABEL: &[u8] = b"portcullis/srp/secret-block-key/v1";
/// Label of the seed of the verifiers of users who have none.
const FAKE_LABEL: &[u8] = b"portcullis/srp/fake-verifier/v1";

/// The keys of SRP sign-in, derived from the store's pepper (shared by every node of a
/// cluster): the block key and the seed of [`super::fake_verifier`].
pub struct SrpKeys {
    block: RandomizedNonceKey,
    /// Seed of the salts and verifiers of users who have none.
    pub fake: hmac::Key,
}

impl fmt::Debug for SrpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrpKeys(<redacted>)")
    }
}

impl SrpKeys {
    /// The keys under the store's pepper key; `None` only if AES-256-GCM is unavailable.
    pub fn derive(pepper_key: &hmac::Key) -> Option<Self> {
        let block_key = hmac::sign(pepper_key, KEY_LABEL);
        let fake = hmac::sign(pepper_key, FAKE_LABEL);
        Some(SrpKeys {
            block: RandomizedNonceKey::new(&AES_256_GCM, block_key.as_ref()).ok()?,
            fake: hmac::Key::new(hmac::HMAC_SHA256, fake.as_ref()),
        })
    }
}

/// What a block holds.
#[derive(Clone, PartialEq, Eq)]
pub struct BlockContents {
    pub pool: String,
    pub client_id: String,
    /// The internal username (`USER_ID_FOR_SRP`).
    pub username: String,
    /// The client's A, minimal big-endian bytes.
    pub a: Vec<u8>,
    /// The server's secret ephemeral.
    pub b: [u8; B_LEN],
    /// Unix seconds.
    pub issued_at: i64,
    pub id: [u8; ID_LEN],
}

impl fmt::Debug for BlockContents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockContents")
            .field("pool", &self.pool)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("b", &"<redacted>")
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

/// Why a block was refused. Each is answered as a failed sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Not a block of this format, or too large.
    #[error("malformed secret block")]
    Malformed,
    /// Altered, or sealed under another key (another store).
    #[error("secret block does not open")]
    WrongKey,
    /// Older than [`BLOCK_TTL_SECS`] (or issued in the future).
    #[error("secret block expired")]
    Expired,
    /// A name is too long to be carried, or sealing failed.
    #[error("cannot seal the secret block")]
    Sealing,
}

/// Seals `contents` into the bytes sent (base64) as `SECRET_BLOCK`.
pub fn seal(keys: &SrpKeys, contents: &BlockContents) -> Result<Vec<u8>, BlockError> {
    let mut plain = Vec::with_capacity(128 + contents.a.len());
    plain.extend_from_slice(&contents.issued_at.to_be_bytes());
    plain.extend_from_slice(&contents.id);
    plain.extend_from_slice(&contents.b);
    for field in [
        &contents.a[..],
        contents.pool.as_bytes(),
        contents.client_id.as_bytes(),
        contents.username.as_bytes(),
    ] {
        let len = u16::try_from(field.len()).map_err(|_| BlockError::Sealing)?;
        if usize::from(len) > MAX_NAME.max(MAX_A_HEX / 2) {
            return Err(BlockError::Sealing);
        }
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(field);
    }
    let nonce = keys
        .block
        .seal_in_place_append_tag(Aad::from(AAD), &mut plain)
        .map_err(|_| BlockError::Sealing)?;
    let nonce: &[u8; NONCE_LEN] = nonce.as_ref();
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + plain.len());
    sealed.push(VERSION);
    sealed.extend_from_slice(nonce);
    sealed.extend_from_slice(&plain);
    Ok(sealed)
}

/// Opens a block that this store's keys sealed and that is still live at `now`.
pub fn open(keys: &SrpKeys, sealed: &[u8], now: i64) -> Result<BlockContents, BlockError> {
    if sealed.len() > MAX_BLOCK_B64 {
        return Err(BlockError::Malformed);
    }
    let (&version, rest) = sealed.split_first().ok_or(BlockError::Malformed)?;
    if version != VERSION || rest.len() < NONCE_LEN {
        return Err(BlockError::Malformed);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| BlockError::Malformed)?;
    let mut in_out = ciphertext.to_vec();
    let plain = keys
        .block
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut in_out,
        )
        .map_err(|_| BlockError::WrongKey)?;
    let contents = parse(plain).ok_or(BlockError::Malformed)?;
    let age = now.saturating_sub(contents.issued_at);
    if !(-FUTURE_SKEW_SECS..BLOCK_TTL_SECS).contains(&age) {
        return Err(BlockError::Expired);
    }
    Ok(contents)
}

/// The plaintext's fields (see the module's layout).
fn parse(plain: &[u8]) -> Option<BlockContents> {
    let mut reader = Reader(plain);
    let issued_at = i64::from_be_bytes(reader.take(8)?.try_into().ok()?);
    let id: [u8; ID_LEN] = reader.take(ID_LEN)?.try_into().ok()?;
    let b: [u8; B_LEN] = reader.take(B_LEN)?.try_into().ok()?;
    let a = reader.field()?.to_vec();
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).ok();
    let pool = text(reader.field()?)?;
    let client_id = text(reader.field()?)?;
    let username = text(reader.field()?)?;
    if !reader.0.is_empty() {
        return None;
    }
    Some(BlockContents {
        pool,
        client_id,
        username,
        a,
        b,
        issued_at,
        id,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    /// A field with its u16 length.
    fn field(&mut self) -> Option<&'a [u8]> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        self.take(usize::from(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pepper: &[u8]) -> SrpKeys {
        SrpKeys::derive(&hmac::Key::new(hmac::HMAC_SHA256, pepper)).expect("keys")
    }

    fn contents() -> BlockContents {
        BlockContents {
            pool: "main".into(),
            client_id: "web".into(),
            username: "bob".into(),
            a: vec![0x12; 384],
            b: [7; B_LEN],
            issued_at: 1_000_000,
            id: [9; ID_LEN],
        }
    }

    #[test]
    fn round_trip_within_the_lifetime() {
        let k = keys(b"pepper");
        let sealed = seal(&k, &contents()).expect("seal");
        assert_eq!(open(&k, &sealed, 1_000_000), Ok(contents()));
        assert_eq!(
            open(&k, &sealed, 1_000_000 + BLOCK_TTL_SECS - 1),
            Ok(contents())
        );
        assert_eq!(
            open(&k, &sealed, 1_000_000 + BLOCK_TTL_SECS),
            Err(BlockError::Expired)
        );
        assert_eq!(
            open(&k, &sealed, 1_000_000 - FUTURE_SKEW_SECS - 1),
            Err(BlockError::Expired)
        );
        // the same contents seal differently each time (random nonce)
        assert_ne!(sealed, seal(&k, &contents()).expect("seal"));
        // b is not readable in the sealed bytes
        assert!(!sealed.windows(B_LEN).any(|w| w == [7; B_LEN]));
    }

    #[test]
    fn tampered_foreign_or_malformed_blocks_refused() {
        let k = keys(b"pepper");
        let sealed = seal(&k, &contents()).expect("seal");
        for i in [0, 1, 13, sealed.len() / 2, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open(&k, &bad, 1_000_000).is_err(), "byte {i}");
        }
        assert_eq!(
            open(&keys(b"another store"), &sealed, 1_000_000),
            Err(BlockError::WrongKey)
        );
        assert_eq!(open(&k, &[], 1_000_000), Err(BlockError::Malformed));
        assert_eq!(
            open(&k, &[VERSION; 5], 1_000_000),
            Err(BlockError::Malformed)
        );
        assert_eq!(
            open(&k, &vec![VERSION; MAX_BLOCK_B64 + 1], 1_000_000),
            Err(BlockError::Malformed)
        );
        assert_eq!(
            open(&k, &sealed[..sealed.len() - 1], 1_000_000),
            Err(BlockError::WrongKey)
        );
    }

    #[test]
    fn oversized_names_are_not_sealed() {
        let k = keys(b"pepper");
        let mut c = contents();
        c.username = "x".repeat(MAX_NAME + 1);
        assert_eq!(seal(&k, &c), Err(BlockError::Sealing));
    }

    #[test]
    fn debug_hides_b() {
        let text = format!("{:?} {:?}", contents(), keys(b"pepper"));
        assert!(!text.contains("7, 7"), "{text}");
        assert!(text.contains("redacted"));
    }
}
