//! The server side of Cognito's Secure Remote Password sign-in (`USER_SRP_AUTH`, answered by
//! `PASSWORD_VERIFIER`): SRP-6a on the 3072-bit group of RFC 3526 with g = 2 and SHA-256,
//! computed exactly as the Cognito clients compute it, so that their requests verify here.
//!
//! Pure arithmetic, no I/O: the caller stores a user's [`Verifier`] (salt and verifier, never the
//! password), answers `USER_SRP_AUTH` with a fresh [`ServerChallenge`] (`SRP_B`, `SALT`,
//! `SECRET_BLOCK`), keeps its secret `b` until the client answers, derives the shared key with
//! [`session_key`] from the client's `SRP_A`, and accepts the answer when [`check_signature`]
//! holds and the client's [`TIMESTAMP`](parse_timestamp) is within its skew window.
//!
//! Every value that is hashed goes through the clients' `padHex`: the minimal big-endian bytes of
//! the number, with a leading zero byte when the top bit is set (as a signed encoding would).
//! The exchange, with H = SHA-256 and ‖ for concatenation:
//!
//! - k = H(pad(N) ‖ pad(g))
//! - x = H(pad(salt) ‖ H(poolName ‖ userIdForSrp ‖ ":" ‖ password)), v = g^x mod N
//! - B = (k·v + g^b) mod N; the client sends A = g^a mod N
//! - u = H(pad(A) ‖ pad(B)), S = (A·v^u)^b mod N
//! - key = HKDF-SHA256(salt = pad(u), ikm = pad(S), info = "Caldera Derived Key"), first 16 bytes
//! - signature = HMAC-SHA256(key, poolName ‖ userIdForSrp ‖ secretBlock ‖ timestamp)

use std::fmt;
use std::sync::OnceLock;

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use num_bigint::BigUint;
use rand::{CryptoRng, Rng};

pub mod secret_block;

#[cfg(test)]
pub(crate) mod client_tests;

/// The group's modulus: the 3072-bit MODP prime of RFC 3526.
const N_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);
const N_BYTES: [u8; 384] = decode_hex(N_HEX);
/// The group's generator.
const G: u32 = 2;
/// HKDF's info: the label the Cognito clients derive the key under.
const INFO: &[u8] = b"Caldera Derived Key";

/// Bytes of a fresh salt.
pub const SALT_LEN: usize = 16;
/// Bytes of the server's secret ephemeral `b` (256 bits).
pub const B_LEN: usize = 32;
/// Bytes of the derived key the client signs its claim with.
pub const KEY_LEN: usize = 16;
/// The longest `SRP_A` accepted, in hex digits: A < N takes 768; the rest leaves room for leading
/// zeros while bounding the work an oversized number could cost.
pub const MAX_A_HEX: usize = 1024;

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Why a client's `SRP_A` cannot complete the exchange. Each is the client's fault (or an
/// attack): the sign-in fails without revealing anything about the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrpError {
    /// `SRP_A` is empty, too long, or not made of hexadecimal digits.
    #[error("SRP_A is not a hexadecimal number")]
    MalformedA,
    /// A ≡ 0 (mod N): such an A would make the shared secret 0 whatever the password.
    #[error("SRP_A is zero modulo N")]
    InvalidA,
    /// u = H(A ‖ B) is zero, which would take the verifier out of the shared secret.
    #[error("the scrambling parameter u is zero")]
    ZeroU,
}

/// What the provider stores for a user instead of the password: a random salt and
/// v = g^x mod N, both as big-endian bytes. The clients receive the salt as `SALT` (hex).
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    /// [`SALT_LEN`] bytes, the first never below 0x10 (see [`new_verifier`]).
    pub salt: Vec<u8>,
    /// v, minimal big-endian bytes.
    pub verifier: Vec<u8>,
}

impl fmt::Debug for Verifier {
    /// The verifier allows an offline dictionary attack on the password: it is not printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("salt", &HexBytes(&self.salt))
            .field("verifier", &"<redacted>")
            .finish()
    }
}

/// The server's half of one exchange: `big_b` is sent as `SRP_B` (hex), `b` is kept secret
/// until the client's `PASSWORD_VERIFIER` answer and used once.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerChallenge {
    /// The secret ephemeral b, big-endian.
    pub b: [u8; B_LEN],
    /// B = (k·v + g^b) mod N, minimal big-endian bytes, never 0.
    pub big_b: Vec<u8>,
}

impl fmt::Debug for ServerChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerChallenge")
            .field("b", &"<redacted>")
            .field("big_b", &HexBytes(&self.big_b))
            .finish()
    }
}

/// The pool name that enters the hashes: the part of a pool id after its underscore
/// (`us-east-1_AbCdEf` → `AbCdEf`), as the clients split it. An id without an underscore gives
/// an empty name.
pub fn pool_name(pool_id: &str) -> &str {
    pool_id.split('_').nth(1).unwrap_or_default()
}

/// A new verifier for `password` under a fresh random salt. `user_id` is the user's internal
/// username, the one the server returns as `USER_ID_FOR_SRP`.
///
/// The salt's first byte is drawn from 0x10..=0xFF: with a salt whose hex starts with a 0 the
/// clients disagree on pad(salt) (some keep the digits as sent, others reparse the number and
/// drop leading zeros), so such salts are never produced.
pub fn new_verifier<R: CryptoRng + ?Sized>(
    pool_name: &str,
    user_id: &str,
    password: &str,
    rng: &mut R,
) -> Verifier {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    salt[0] = rng.random_range(0x10..=0xFF);
    verifier_with_salt(pool_name, user_id, password, &salt)
}

/// The verifier for `password` under a given salt (a stored one, or a fixed one in tests).
pub fn verifier_with_salt(pool_name: &str, user_id: &str, password: &str, salt: &[u8]) -> Verifier {
    let group = group();
    let x = private_key(pool_name, user_id, password, salt);
    let v = group.g.modpow(&x, &group.n);
    Verifier {
        salt: salt.to_vec(),
        verifier: v.to_bytes_be(),
    }
}

/// Starts an exchange for a user with this verifier: a random b and B = (k·v + g^b) mod N.
pub fn start<R: CryptoRng + ?Sized>(verifier: &[u8], rng: &mut R) -> ServerChallenge {
    loop {
        let mut b = [0u8; B_LEN];
        rng.fill_bytes(&mut b);
        if let Some(challenge) = challenge_with_b(verifier, b) {
            return challenge;
        }
    }
}

/// The challenge for a given b; `None` when b is 0 or B ≡ 0 (mod N), for the caller to draw
/// again (neither happens in practice). Also how the answer's check recomputes B from the b it
/// kept.
pub fn challenge_with_b(verifier: &[u8], b: [u8; B_LEN]) -> Option<ServerChallenge> {
    let group = group();
    let b_int = BigUint::from_bytes_be(&b);
    if is_zero(&b_int) {
        return None;
    }
    let v = BigUint::from_bytes_be(verifier);
    let big_b = (&group.k * v + group.g.modpow(&b_int, &group.n)) % &group.n;
    if is_zero(&big_b) {
        return None;
    }
    Some(ServerChallenge {
        b,
        big_b: big_b.to_bytes_be(),
    })
}

/// The key both sides derive, from the client's `SRP_A` (hex, either case, leading zeros
/// allowed) and the server's B, b and the user's verifier.
///
/// A wrong password does not fail here: the client then derives another key and its signature
/// does not verify.
pub fn session_key(
    a_hex: &str,
    big_b: &[u8],
    b: &[u8],
    verifier: &[u8],
) -> Result<[u8; KEY_LEN], SrpError> {
    let big_a = parse_hex(a_hex).ok_or(SrpError::MalformedA)?;
    key_for_a(&big_a, big_b, b, verifier)
}

/// The client's `SRP_A` (hex) as minimal big-endian bytes, once it is known to be usable
/// (at most [`MAX_A_HEX`] digits, A mod N ≠ 0): what a server keeps until the client answers.
pub fn parse_a(a_hex: &str) -> Result<Vec<u8>, SrpError> {
    let big_a = parse_hex(a_hex).ok_or(SrpError::MalformedA)?;
    if is_zero(&(&big_a % &group().n)) {
        return Err(SrpError::InvalidA);
    }
    Ok(big_a.to_bytes_be())
}

/// [`session_key`] for an A kept as bytes (from [`parse_a`]).
pub fn session_key_for(
    a: &[u8],
    big_b: &[u8],
    b: &[u8],
    verifier: &[u8],
) -> Result<[u8; KEY_LEN], SrpError> {
    if a.len() > MAX_A_HEX / 2 {
        return Err(SrpError::MalformedA);
    }
    key_for_a(&BigUint::from_bytes_be(a), big_b, b, verifier)
}

/// A verifier that belongs to nobody, for a user who has none (unknown, or not signed in since
/// verifiers were introduced): a salt and v derived from `seed` (a server secret) and the
/// names, so that the same name always gets the same challenge salt, and costing nothing more
/// than HMACs (v is pseudo-random below N rather than g^x, which a client cannot tell apart in B).
pub fn fake_verifier(seed: &hmac::Key, pool_name: &str, user_id: &str) -> Verifier {
    let tag = |label: &[u8], counter: u8| {
        let mut ctx = hmac::Context::with_key(seed);
        for part in [
            label,
            &[counter],
            pool_name.as_bytes(),
            &[0],
            user_id.as_bytes(),
        ] {
            ctx.update(part);
        }
        ctx.sign()
    };
    let mut salt = tag(b"salt", 0).as_ref()[..SALT_LEN].to_vec();
    // as new_verifier: never a leading zero nibble
    salt[0] = 0x10 + salt[0] % 0xF0;
    let wide: Vec<u8> = (0..13u8)
        .flat_map(|i| tag(b"verifier", i).as_ref().to_vec())
        .collect();
    let mut v = BigUint::from_bytes_be(&wide) % &group().n;
    if is_zero(&v) {
        v = BigUint::from(1u32);
    }
    Verifier {
        salt,
        verifier: v.to_bytes_be(),
    }
}

fn key_for_a(
    big_a: &BigUint,
    big_b: &[u8],
    b: &[u8],
    verifier: &[u8],
) -> Result<[u8; KEY_LEN], SrpError> {
    let group = group();
    let a_mod_n = big_a % &group.n;
    if is_zero(&a_mod_n) {
        return Err(SrpError::InvalidA);
    }
    let big_b = BigUint::from_bytes_be(big_b);
    // u is hashed over A as sent, as the client hashes the A it sent
    let u = hash_int(&[&pad(big_a), &pad(&big_b)]);
    if is_zero(&u) {
        return Err(SrpError::ZeroU);
    }
    let v = BigUint::from_bytes_be(verifier);
    let b = BigUint::from_bytes_be(b);
    let base = a_mod_n * v.modpow(&u, &group.n) % &group.n;
    let s = base.modpow(&b, &group.n);
    Ok(derive_key(&pad(&u), &pad(&s)))
}

/// Whether `signature_b64` (the client's `PASSWORD_CLAIM_SIGNATURE`, standard base64) is
/// HMAC-SHA256(key, poolName ‖ userIdForSrp ‖ secretBlock ‖ timestamp). `secret_block` is the
/// decoded `PASSWORD_CLAIM_SECRET_BLOCK` and `timestamp` the client's `TIMESTAMP` exactly as
/// sent; checking that the block is the one this server issued and that the timestamp is
/// recent is the caller's part. Compared in constant time.
pub fn check_signature(
    key: &[u8; KEY_LEN],
    pool_name: &str,
    user_id: &str,
    secret_block: &[u8],
    timestamp: &str,
    signature_b64: &str,
) -> bool {
    let Ok(signature) = STANDARD.decode(signature_b64) else {
        return false;
    };
    let message = claim_message(pool_name, user_id, secret_block, timestamp);
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&key, &message, &signature).is_ok()
}

/// What the client signs.
fn claim_message(pool_name: &str, user_id: &str, secret_block: &[u8], timestamp: &str) -> Vec<u8> {
    [
        pool_name.as_bytes(),
        user_id.as_bytes(),
        secret_block,
        timestamp.as_bytes(),
    ]
    .concat()
}

/// A claim's `TIMESTAMP` as the clients write it: `Tue Dec 2 05:04:09 UTC 2025` (English
/// weekday and month, day of month without padding, two-digit time, UTC, year).
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    let weekday = WEEKDAYS[at.weekday().num_days_from_monday() as usize];
    let month = MONTHS[at.month0() as usize];
    format!(
        "{weekday} {month} {} {:02}:{:02}:{:02} UTC {}",
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.year()
    )
}

/// Reads a claim's `TIMESTAMP` in the clients' format (a zero-padded day is accepted too); `None`
/// for anything else, including a weekday that is not the date's, so that the caller can hold
/// the time against its skew window.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let mut fields = text.split(' ');
    let weekday = fields.next()?;
    let month = fields.next()?;
    let day = fields.next()?;
    let time = fields.next()?;
    let zone = fields.next()?;
    let year = fields.next()?;
    if fields.next().is_some() || zone != "UTC" {
        return None;
    }
    let weekday = WEEKDAYS.iter().position(|w| *w == weekday)?;
    let month = MONTHS.iter().position(|m| *m == month)?;
    let day = digits(day, 1, 2)?;
    let year = digits(year, 4, 4)?;
    let (hms, rest) = time.split_at_checked(8)?;
    if !rest.is_empty() || hms.get(2..3)? != ":" || hms.get(5..6)? != ":" {
        return None;
    }
    let hour = digits(hms.get(0..2)?, 2, 2)?;
    let minute = digits(hms.get(3..5)?, 2, 2)?;
    let second = digits(hms.get(6..8)?, 2, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32 + 1, day)?;
    if date.weekday().num_days_from_monday() as usize != weekday {
        return None;
    }
    Some(date.and_hms_opt(hour, minute, second)?.and_utc())
}

/// A run of `min..=max` ASCII digits.
fn digits(text: &str, min: usize, max: usize) -> Option<u32> {
    if text.len() < min || text.len() > max || !text.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// N, g and k, computed once.
struct Group {
    n: BigUint,
    g: BigUint,
    k: BigUint,
}

fn group() -> &'static Group {
    static GROUP: OnceLock<Group> = OnceLock::new();
    GROUP.get_or_init(|| {
        let n = BigUint::from_bytes_be(&N_BYTES);
        let g = BigUint::from(G);
        let k = hash_int(&[&pad(&n), &pad(&g)]);
        Group { n, g, k }
    })
}

/// x = H(pad(salt) ‖ H(poolName ‖ userId ‖ ":" ‖ password)). The salt is read as a number, so
/// leading zero bytes do not count.
fn private_key(pool_name: &str, user_id: &str, password: &str, salt: &[u8]) -> BigUint {
    let inner = sha256(&[
        pool_name.as_bytes(),
        user_id.as_bytes(),
        b":",
        password.as_bytes(),
    ]);
    hash_int(&[&pad(&BigUint::from_bytes_be(salt)), &inner])
}

/// The clients' `padHex` on bytes: the minimal big-endian bytes of `value` (a single 0 for
/// zero), with a 0x00 in front when the top bit of the first is set. Equal to decoding their hex
/// string: an odd-length hex gains a leading 0 nibble, an even one starting at 8..F gains "00".
fn pad(value: &BigUint) -> Vec<u8> {
    let bytes = value.to_bytes_be();
    if bytes.first().is_some_and(|first| first & 0x80 != 0) {
        [&[0][..], &bytes].concat()
    } else {
        bytes
    }
}

/// SHA-256 of the parts' concatenation, read as a big-endian number.
fn hash_int(parts: &[&[u8]]) -> BigUint {
    BigUint::from_bytes_be(&sha256(parts))
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// HKDF-SHA256 (RFC 5869) of one output block, its first [`KEY_LEN`] bytes: extract
/// prk = HMAC(salt, ikm), expand T(1) = HMAC(prk, info ‖ 0x01).
fn derive_key(salt: &[u8], ikm: &[u8]) -> [u8; KEY_LEN] {
    let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), ikm);
    let mut expand = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()));
    expand.update(INFO);
    expand.update(&[1]);
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&expand.sign().as_ref()[..KEY_LEN]);
    key
}

/// A number in hex (either case, leading zeros allowed), at most [`MAX_A_HEX`] digits.
fn parse_hex(text: &str) -> Option<BigUint> {
    if text.is_empty() || text.len() > MAX_A_HEX || !text.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    BigUint::parse_bytes(text.as_bytes(), 16)
}

fn is_zero(value: &BigUint) -> bool {
    value.bits() == 0
}

/// Bytes shown as hex in `Debug`.
struct HexBytes<'a>(&'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// Hex to bytes at compile time (the modulus).
const fn decode_hex<const LEN: usize>(hex: &str) -> [u8; LEN] {
    let digits = hex.as_bytes();
    assert!(digits.len() == 2 * LEN, "hex of the wrong length");
    let mut out = [0u8; LEN];
    let mut i = 0;
    while i < LEN {
        out[i] = (nibble(digits[2 * i]) << 4) | nibble(digits[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => panic!("not a hex digit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use rand::RngCore as _;
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    /// The client side of the exchange, as Cognito's clients compute it.
    struct Client {
        a: BigUint,
        big_a: BigUint,
    }

    impl Client {
        fn new(a: &BigUint) -> Self {
            let group = group();
            let a = a % &group.n;
            let big_a = group.g.modpow(&a, &group.n);
            Self { a, big_a }
        }

        fn random(rng: &mut StdRng) -> Self {
            let mut a = [0u8; 128];
            rng.fill_bytes(&mut a);
            Self::new(&BigUint::from_bytes_be(&a))
        }

        fn a_hex(&self) -> String {
            self.big_a.to_str_radix(16)
        }

        /// S = (B − k·g^x)^(a + u·x) mod N, then the same HKDF as the server.
        fn key(
            &self,
            pool: &str,
            user: &str,
            password: &str,
            salt: &[u8],
            big_b: &[u8],
        ) -> [u8; KEY_LEN] {
            let group = group();
            let big_b = BigUint::from_bytes_be(big_b);
            let u = hash_int(&[&pad(&self.big_a), &pad(&big_b)]);
            let x = private_key(pool, user, password, salt);
            let kgx = &group.k * group.g.modpow(&x, &group.n) % &group.n;
            let base = (big_b % &group.n + &group.n - kgx) % &group.n;
            let s = base.modpow(&(&self.a + &u * &x), &group.n);
            derive_key(&pad(&u), &pad(&s))
        }
    }

    fn sign(key: &[u8; KEY_LEN], pool: &str, user: &str, block: &[u8], timestamp: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        let tag = hmac::sign(&key, &claim_message(pool, user, block, timestamp));
        STANDARD.encode(tag.as_ref())
    }

    /// padHex as the clients write it, on hex strings.
    fn pad_hex_reference(value: &BigUint) -> Vec<u8> {
        let mut hex = value.to_str_radix(16);
        if hex.len() % 2 == 1 {
            hex.insert(0, '0');
        } else if hex.starts_with(['8', '9', 'a', 'b', 'c', 'd', 'e', 'f']) {
            hex.insert_str(0, "00");
        }
        hex::decode(hex).expect("hex")
    }

    fn int(hex: &str) -> BigUint {
        parse_hex(hex).expect("hex")
    }

    const POOL: &str = "AbCdEf";
    const USER: &str = "0f6e2b8a-1c1d-4e4e-9c3a-2b7d5e1f0a99";
    const PASSWORD: &str = "Correct-Horse-7";
    const BLOCK: &[u8] = b"an opaque secret block";
    const TIMESTAMP: &str = "Tue Dec 2 05:04:09 UTC 2025";

    /// One exchange under the test constants: the stored verifier, the server's challenge, a
    /// client and the key the server derives from the client's A.
    struct Exchange {
        stored: Verifier,
        challenge: ServerChallenge,
        client: Client,
        key: [u8; KEY_LEN],
        rng: StdRng,
    }

    impl Exchange {
        fn new(seed: u64) -> Self {
            let mut rng = StdRng::seed_from_u64(seed);
            let stored = new_verifier(POOL, USER, PASSWORD, &mut rng);
            let challenge = start(&stored.verifier, &mut rng);
            let client = Client::random(&mut rng);
            let key = session_key(
                &client.a_hex(),
                &challenge.big_b,
                &challenge.b,
                &stored.verifier,
            )
            .expect("valid A");
            Self {
                stored,
                challenge,
                client,
                key,
                rng,
            }
        }

        fn server_key(&self, a_hex: &str) -> Result<[u8; KEY_LEN], SrpError> {
            session_key(
                a_hex,
                &self.challenge.big_b,
                &self.challenge.b,
                &self.stored.verifier,
            )
        }

        fn client_key(&self, pool: &str, user: &str, password: &str) -> [u8; KEY_LEN] {
            self.client.key(
                pool,
                user,
                password,
                &self.stored.salt,
                &self.challenge.big_b,
            )
        }

        /// Whether the server accepts `signature` for this claim.
        fn accepts(&self, block: &[u8], timestamp: &str, signature: &str) -> bool {
            check_signature(&self.key, POOL, USER, block, timestamp, signature)
        }
    }

    #[test]
    fn round_trip_accepts_the_right_password() {
        for seed in 0..8 {
            let exchange = Exchange::new(seed);
            let client_key = exchange.client_key(POOL, USER, PASSWORD);
            assert_eq!(client_key, exchange.key);
            let signature = sign(&client_key, POOL, USER, BLOCK, TIMESTAMP);
            assert!(exchange.accepts(BLOCK, TIMESTAMP, &signature));
        }
    }

    #[test]
    fn round_trip_refuses_a_wrong_password() {
        let exchange = Exchange::new(10);
        for (pool, user, password) in [
            (POOL, USER, "correct-Horse-7"),
            (POOL, USER, "Correct-Horse-7 "),
            ("AbCdEg", USER, PASSWORD),
            (POOL, "0f6e2b8a-1c1d-4e4e-9c3a-2b7d5e1f0a98", PASSWORD),
        ] {
            let client_key = exchange.client_key(pool, user, password);
            assert_ne!(client_key, exchange.key);
            let signature = sign(&client_key, POOL, USER, BLOCK, TIMESTAMP);
            assert!(!exchange.accepts(BLOCK, TIMESTAMP, &signature));
        }
    }

    #[test]
    fn tampered_claim_refused() {
        let mut exchange = Exchange::new(11);
        let key = exchange.key;
        let signature = sign(&key, POOL, USER, BLOCK, TIMESTAMP);
        assert!(exchange.accepts(BLOCK, TIMESTAMP, &signature));
        assert!(!exchange.accepts(b"an opaque secret blocK", TIMESTAMP, &signature));
        assert!(!exchange.accepts(&BLOCK[1..], TIMESTAMP, &signature));
        assert!(!exchange.accepts(BLOCK, "Tue Dec 2 05:04:10 UTC 2025", &signature));
        assert!(!exchange.accepts(BLOCK, "Tue Dec 02 05:04:09 UTC 2025", &signature));
        assert!(!check_signature(
            &key, "AbCdEg", USER, BLOCK, TIMESTAMP, &signature
        ));
        assert!(!check_signature(
            &key, POOL, "someone", BLOCK, TIMESTAMP, &signature
        ));
        let mut other_key = key;
        other_key[15] ^= 1;
        assert!(!check_signature(
            &other_key, POOL, USER, BLOCK, TIMESTAMP, &signature
        ));
        // the signature itself: truncated, not base64, empty
        let raw = STANDARD.decode(&signature).expect("base64");
        assert!(!exchange.accepts(BLOCK, TIMESTAMP, &STANDARD.encode(&raw[..31])));
        assert!(!exchange.accepts(BLOCK, TIMESTAMP, "not base64!"));
        assert!(!exchange.accepts(BLOCK, TIMESTAMP, ""));
        // a key from another client's A does not agree
        exchange.client = Client::random(&mut exchange.rng);
        exchange.key = exchange
            .server_key(&exchange.client.a_hex())
            .expect("valid A");
        assert!(!exchange.accepts(BLOCK, TIMESTAMP, &signature));
    }

    #[test]
    fn bad_a_refused() {
        let mut exchange = Exchange::new(12);
        let long = "1".repeat(MAX_A_HEX + 1);
        for malformed in ["", "xyz", "+12", "_12", "1_2", "12 ", "0x12", &long] {
            let refused = exchange.server_key(malformed);
            assert_eq!(refused, Err(SrpError::MalformedA), "{malformed:?}");
        }
        let n = group().n.to_str_radix(16);
        let two_n = (&group().n * 2u32).to_str_radix(16);
        for zero in [
            "0",
            "0000",
            &n,
            &n.to_uppercase(),
            &two_n,
            &format!("00{n}"),
        ] {
            assert_eq!(
                exchange.server_key(zero),
                Err(SrpError::InvalidA),
                "{zero:?}"
            );
        }
        // accepted: either case, leading zeros (the same number, so the same key)
        exchange.client = Client::random(&mut exchange.rng);
        let a_hex = exchange.client.a_hex();
        let key = exchange.server_key(&a_hex).expect("valid A");
        assert_eq!(exchange.server_key(&a_hex.to_uppercase()), Ok(key));
        assert_eq!(exchange.server_key(&format!("000{a_hex}")), Ok(key));
    }

    #[test]
    fn pad_adds_a_zero_byte_before_a_set_top_bit() {
        let cases: [(&str, &[u8]); 8] = [
            ("0", &[0x00]),
            ("7f", &[0x7f]),
            ("80", &[0x00, 0x80]),
            ("ff", &[0x00, 0xff]),
            ("8000", &[0x00, 0x80, 0x00]),
            ("ffee", &[0x00, 0xff, 0xee]),
            ("7fff", &[0x7f, 0xff]),
            ("9f3ac2d1", &[0x00, 0x9f, 0x3a, 0xc2, 0xd1]),
        ];
        for (hex, padded) in cases {
            assert_eq!(pad(&int(hex)), padded, "{hex}");
            assert_eq!(pad_hex_reference(&int(hex)), padded, "{hex}");
        }
    }

    #[test]
    fn pad_keeps_a_leading_zero_nibble_and_drops_zero_bytes() {
        let cases: [(&str, &[u8]); 6] = [
            ("1", &[0x01]),
            ("f", &[0x0f]),
            ("fff", &[0x0f, 0xff]),
            ("8ab", &[0x08, 0xab]),
            ("00ff", &[0x00, 0xff]),
            ("000012", &[0x12]),
        ];
        for (hex, padded) in cases {
            assert_eq!(pad(&int(hex)), padded, "{hex}");
            assert_eq!(pad_hex_reference(&int(hex)), padded, "{hex}");
        }
        // and on random numbers of every length up to 40 bytes
        let mut rng = StdRng::seed_from_u64(5);
        for len in 0..=40 {
            for _ in 0..50 {
                let mut bytes = vec![0u8; len];
                rng.fill_bytes(&mut bytes);
                let value = BigUint::from_bytes_be(&bytes) >> rng.random_range(0..8u32);
                assert_eq!(pad(&value), pad_hex_reference(&value), "{value:x}");
            }
        }
    }

    #[test]
    fn multiplier_is_the_clients_k() {
        assert_eq!(
            group().k,
            int("538282c4354742d7cbbde2359fcf67f9f5b3a6b08791e5011b43b8a5b66d9ee6")
        );
        assert_eq!(pool_name("us-east-1_AbCdEf"), "AbCdEf");
        assert_eq!(pool_name("AbCdEf"), "");
    }

    /// Stands for a generator that would hand out the worst salts.
    struct ZeroRng;

    impl rand::RngCore for ZeroRng {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
    }

    impl CryptoRng for ZeroRng {}

    #[test]
    fn salts_never_start_with_a_zero_nibble() {
        let stored = new_verifier(POOL, USER, PASSWORD, &mut ZeroRng);
        assert_eq!(stored.salt.len(), SALT_LEN);
        assert!(stored.salt[0] >= 0x10, "{stored:?}");
        let mut rng = StdRng::seed_from_u64(6);
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let stored = new_verifier(POOL, USER, PASSWORD, &mut rng);
            assert_eq!(stored.salt.len(), SALT_LEN);
            assert!(stored.salt[0] >= 0x10, "{stored:?}");
            firsts.insert(stored.salt[0]);
        }
        // the rest of the range is used
        assert!(firsts.len() > 200, "{}", firsts.len());
    }

    #[test]
    fn timestamp_format_and_round_trip() {
        let at = Utc
            .with_ymd_and_hms(2025, 12, 2, 5, 4, 9)
            .single()
            .expect("date");
        assert_eq!(format_timestamp(at), "Tue Dec 2 05:04:09 UTC 2025");
        assert_eq!(parse_timestamp("Tue Dec 2 05:04:09 UTC 2025"), Some(at));
        assert_eq!(parse_timestamp("Tue Dec 02 05:04:09 UTC 2025"), Some(at));
        let at = Utc
            .with_ymd_and_hms(2026, 3, 14, 23, 59, 59)
            .single()
            .expect("date");
        assert_eq!(format_timestamp(at), "Sat Mar 14 23:59:59 UTC 2026");
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let secs = rng.random_range(0..4_102_444_800i64);
            let at = DateTime::from_timestamp(secs, 0).expect("in range");
            assert_eq!(parse_timestamp(&format_timestamp(at)), Some(at));
        }
    }

    #[test]
    fn timestamp_garbage_refused() {
        for garbage in [
            "",
            "Tue Dec 2 05:04:09 UTC",
            "Tue Dec 2 05:04:09 UTC 2025 ",
            " Tue Dec 2 05:04:09 UTC 2025",
            "Tue  Dec 2 05:04:09 UTC 2025",
            "Tue Dec 2 05:04:09 GMT 2025",
            "Wed Dec 2 05:04:09 UTC 2025",
            "tue Dec 2 05:04:09 UTC 2025",
            "Tue dec 2 05:04:09 UTC 2025",
            "Tue Dec 002 05:04:09 UTC 2025",
            "Tue Dec +2 05:04:09 UTC 2025",
            "Tue Dec 32 05:04:09 UTC 2025",
            "Tue Feb 30 05:04:09 UTC 2025",
            "Tue Dec 2 5:04:09 UTC 2025",
            "Tue Dec 2 05:4:09 UTC 2025",
            "Tue Dec 2 05:04:9 UTC 2025",
            "Tue Dec 2 05-04-09 UTC 2025",
            "Tue Dec 2 24:00:00 UTC 2025",
            "Tue Dec 2 05:60:09 UTC 2025",
            "Tue Dec 2 05:04:60 UTC 2025",
            "Tue Dec 2 05:04:09.5 UTC 2025",
            "Tue Dec 2 05:04:09 UTC 25",
            "Tue Dec 2 05:04:09 UTC +2025",
            "Tue Dec 2 0é:04:09 UTC 2025",
            "Tue Dec 2 05:04:09Z UTC 2025",
            "2025-12-02T05:04:09Z",
        ] {
            assert_eq!(parse_timestamp(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn key_derivation_is_rfc5869_hkdf() {
        struct Len(usize);
        impl aws_lc_rs::hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let mut rng = StdRng::seed_from_u64(8);
        for _ in 0..20 {
            let mut salt = [0u8; 33];
            let mut ikm = [0u8; 385];
            rng.fill_bytes(&mut salt);
            rng.fill_bytes(&mut ikm);
            let mut expected = [0u8; KEY_LEN];
            aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, &salt)
                .extract(&ikm)
                .expand(&[INFO], Len(KEY_LEN))
                .expect("length")
                .fill(&mut expected)
                .expect("fill");
            assert_eq!(derive_key(&salt, &ikm), expected);
        }
    }

    #[test]
    fn debug_hides_the_secrets() {
        let mut rng = StdRng::seed_from_u64(9);
        let stored = new_verifier(POOL, USER, PASSWORD, &mut rng);
        let challenge = start(&stored.verifier, &mut rng);
        let shown = format!("{stored:?} {challenge:?}");
        assert!(shown.contains(&hex::encode(&stored.salt)), "{shown}");
        assert!(shown.contains(&hex::encode(&challenge.big_b)), "{shown}");
        assert!(
            !shown.contains(&hex::encode(&stored.verifier[..8])),
            "{shown}"
        );
        assert!(!shown.contains(&hex::encode(&challenge.b[..8])), "{shown}");
    }

    /// Fixed inputs and what the Cognito client library computes from them
    /// (`scripts/srp-vectors.py`).
    struct Vector {
        pool_id: &'static str,
        user_id: &'static str,
        password: &'static str,
        salt: &'static str,
        verifier: &'static str,
        a: &'static str,
        b: &'static str,
        big_a: &'static str,
        big_b: &'static str,
        key: &'static str,
        secret_block: &'static str,
        timestamp: &'static str,
        signature: &'static str,
    }

    const VECTORS: [Vector; 3] = [
        Vector {
            pool_id: "us-east-1_AbCdEf123",
            user_id: "5e0b7c1a-7f3e-4d2a-9a51-0c8a4f2b6d11",
            password: "Correct-Horse-7",
            salt: "9f3ac2d1e4b5a6978877665544332211",
            verifier: concat!(
                "afd53fc7d8c884731a1da6db156628660848fc881e25e746c9c366cf60175169",
                "4035e3990202bae6dc587edd7c284c46ba0fec91a916bd126ccd6317b2b6fee0",
                "a4599bc636df382a034cd8da00bc6f23dc027320cac31b26e598ee362b71ca7b",
                "3982c03ce049eeff3e6d801381e80e0a139200ed482599dc920b778e73cfa882",
                "726f979e44346ed05e8b86629a79200cb91a42773540cbc3477bb26330111562",
                "45caa1ad635dcd9aac16e6fb2d7b7d7f72a3f84390517b7b5743deee52727098",
                "89ff9214ca5bcd24e6c5b390fa6214dc9ab04a00cecd9235fca6d91ea883736e",
                "8046f78308709a72be10b168497fff0a35cc16c69858c3da43c5919704e2bfe9",
                "29f1d14959b70db336712d7c5f138e1eb7df504ad5410990b0f17a8dfe97cbf5",
                "4f786a7a17fc61b41f2ec294cc24151043d5181d97490669097f6f995d305e36",
                "922586dfb490261e6330b97e45de52322bcdae3914349e66787e4d782054cbb5",
                "77d66e97881716873698071ff7867e9d7a197d140621e4c1e2cece4ba88de085",
            ),
            a: concat!(
                "7cbfdf1316a6418308f04cf646dc4f6f8928ada86caef0d6910bb3dd082a96a2",
                "fe8625f3015764a8d58c7ad063bee8426cf16421cddd9f29950c7df6acd8bc5b",
                "addf915b1a97a85b88ed7be9f26326da5e1afcac7a76197caa2d5224fab1f91a",
                "12097122fedbbb9c1b7e0916f6978d7a34113f1c8c2fdc0f8a41bfb934dcfef7",
            ),
            b: "6d602102b86d48dedca0d0e8267d02c9177520104fb28784fc4ef9143cc0b2ea",
            big_a: concat!(
                "b78cbc53aa5fa6463223f1322e3729006a67d1518795d726d0e9c3f4a5897a31",
                "db5e3e745ea2b5ca0aa99ac2deff9f205c54617ecf557c5052af1f6bbea14402",
                "c47b09d487d089d534bb373761394e4b71a2f27aa53c7b24a84dbabd2adde3f3",
                "75c088578136388b098575a440a13f7d663de2d0e0291026f4131f7288c36f96",
                "d58dab4248fe7cdaffd2fc2121f22a1a39ec4cc1eaeb19000e8cc08e8a118929",
                "b0a2254c0a19df2e7ff2e9720d23f997a915c24681152e10a3d1674de4cd61cc",
                "d7e702d8ed3dc4759c5dbbfe0fbf6472a1eca15321f2b7ca69bcf546662b9643",
                "318914f032ebb49180d6daadbefe220455bb64326127c0556fb33d348aa4b734",
                "92f7d158a1dbe379ddaa6c7289d99a31dcaed2a5bd98af40216f3ccd214fb2e6",
                "7b7e20d8a7e4bcf6fb009831f64fe1d26b326dbb73e37acc22df7626d1fbe692",
                "20d0ad307d08772d3a027e89778d3e1315b41c754c0c173ceb2c7c6222ce01b4",
                "efa21cd96fdc3ae020713fe269f0fba59ec4921fd2407f0d2d9d2e44ccd33b0f",
            ),
            big_b: concat!(
                "c018797a91b29a5f0cd905440b36301ed6e944070dd24c0f55501022a17f5d52",
                "3cbb148853e7aea02ecccf3772b6a5c2efcec84aa5d6df3585f7f2ccae7b1ff5",
                "50d02c9e642f5825bbc589982383bf9aa065375a719fac5c75a1d9517e27abca",
                "cd2f1b80592c9caf65da027b7514146740f7651a5e6bc98a4feda73f8c3f3a9d",
                "6d0f7e865c55cc54cb305c2ca7e14a98d1bb84879689fe813fb70709f7a47f5f",
                "7341d843a87064cf9ebf959f044148e89d5fec58e08d43ebaa852258b97b2ecb",
                "238c82e120a7564ed5cb95cb1f385e9ee344a02b269d610132f3e9c0f30fe36d",
                "f8f2b7b316094eddf4d1f33b1d818ca55416437b04155c49c66d36029fbc6020",
                "9f00941bb4da6cbfdd673bbd6f489207b62fed79af7d28628c19f9431322a6cc",
                "a63ab6598ec8bf800878987434b3838cc948c5a6816d6b405697a75dce093972",
                "55e34df34080dc9990c7d70e6c9faaf13da13c0ab31f8875d4a4a1bb7fae8999",
                "b9a3d0bea1c09777f019e06d4d80d307fb31c3541b2a4ad8e8cd748706e661c7",
            ),
            key: "807cd7a4bc6aee11350dec9a8ed6fdff",
            secret_block: "c2VjcmV0IGJsb2NrIG9uZTogb3BhcXVlIHRvIHRoZSBjbGllbnQ=",
            timestamp: "Tue Dec 2 05:04:09 UTC 2025",
            signature: "7GlN0BhblPpDdu1VJc4U/PoMV9Yow1XSwu8NKYWSf3M=",
        },
        Vector {
            pool_id: "eu-west-3_Zz9yX8wV7",
            user_id: "alice",
            password: "p\u{e4}ssw\u{f6}rd \u{2603} with spaces",
            salt: "1a2b3c4d5e6f708192a3b4c5d6e7f801",
            verifier: concat!(
                "d82b6013c132253543f5bd0e956a8ebc85947817b392081f2321313025770e78",
                "79b4d4882d4afb219d8952b17bbdd8ee20803e12c6db4f6930ee5b724704da0f",
                "bbfd3e57408bd0717fdd8ee8d3d51ff5055345b6dbf66bea08f094ff0dee4de7",
                "f676a9d67a7f1b57fce8f6ae8dcfb7a0740378d7ba537eb64ef01887ad439a46",
                "1ba7b50f11f5ef3562e8af6adc405c91480569cd89dc92e497bb21145509be77",
                "80b27ddd80210f13f1f218379f010a37e2c33e8dc2a23d79b424ef7d2edf607d",
                "a7184f1fba79740fa5b4ae348f772915a1e32a02d1c57ae843353fe0775a5190",
                "c6b8b4ca08b03cc2b7d325ba931c0d7fed8ac08c381f6285f0fcecc4c59790af",
                "64f80f12fa48a3649559c0255283e4bee90af9e7dee844adf8d22781d3f8264d",
                "5bd3bd0e6839277e101786eda2bdf0cb20a72229d4cec8e5f64dc8c8a238d93a",
                "0ca496f77dd10816379c87b90847aae1c5549c9f638b87ab0be14f855406c589",
                "03f0892e86b13b2f6c064a96b31490e27863f623987ee3f934e1495492cc3359",
            ),
            a: concat!(
                "c8c701affa48e6eed2f9094e8163786832eabe29f9863de3909ffd5fcedbbe46",
                "ba5ea0b4803a10c6df48603a228acff1cdc2b51608920e5cc8b07f8a048733aa",
                "e64622546b07ffefc0c75089fe42b441a0786ee97eb235d1b240b7aae660f1a2",
                "07bd79009ff138d5a21645b2b81ccc7b798370be980565369353648ae8f7e90e",
            ),
            b: "ec827bec04dd2f0c96eb0d6cc05180b47771fd282e5e85efaacecd750b51283a",
            big_a: concat!(
                "f8c6eeb243073d67137d40c706db409285916f8be7b50400c67cfeadc5f27e0d",
                "efcfcd427386fe742b352a292e895cbb1b57e831ad46815d1ee81df77e46144b",
                "0406941b865760f3ccfc8daa21625c866dbb83f48c5b5d0ab05d9e63c92f07bd",
                "cb88a2d36d5bb4d427771ec5ebc72e6733eeb310fe60a27c1ac5938fb91e6a13",
                "f61a6436a98ad35116631911ea827b5edb1cc95c4dfe1d583406cdc1e58ebe99",
                "e9e955505ffad10869409dae924f52cf235f526f4f634e19301ce098d8ebfa46",
                "436b032807f55b86ca736d34476cf74a93434a50087d342c7e20e69c2d9d5250",
                "5ea366a6ad9e28048da483bd53e1770c517f502768ad729091253a1e89e2bacc",
                "19316a09104c9159772600e9054bfd3ac45a365b5a95da8c3040e3b70a951428",
                "0da2fc2b4d100d8a8af358bff1380e5d7c5ddd4b92d5e4923839d6202195301a",
                "f4df85e922fe21099bd8a10eabfe986c2f172e0323f5c5be6005ccf73f16e10c",
                "a30c1213754a38c48a5294274f7c484894afd5ee296f7de99947683ef845af07",
            ),
            big_b: concat!(
                "d17b92ba9efb94062c925e5ddb9f8ec97147c1e30742c85adae4fd67580358b9",
                "79b08eca3e6791dde401beba1cc1a6e9e4abb61a7cfd6a75363679dbf49ede90",
                "b24631e6297a6e2ccbe411e5905aebfaeecb329b082c2e306b45966bb30377a8",
                "d468bca9c35779a0e48fdb9ed21c0b24369f29213611a8269ab8d7455a806e5d",
                "ebb51822f4ba290f93dbdd8253f8814eb7f690b531b4baf7a79f04e09ca6dee8",
                "010a2c0ba27e8b80bed3909503f2e9b3df2799c5c1e5ff2320e161a5bd0460c5",
                "2761a4d8e4228c8b20c6d35d71de4f2ffbf46e4fffea19bc4193942884beb126",
                "5241d96e3986ac40e099c7c913e78d6d6bc56ea6b4faf4c51d069f41ddb97e0a",
                "8e78a19a86d41c5cbe0d209f8fdbfa98372daf8be5144d71ea18443a1abc0926",
                "2a68f58992533e28d9fefd4996f27387736dd57a34c6252a0c039ab695f9451a",
                "8e775f079c45a86319fba0f8ae69dc660743fd93e099e853868c6ab7a8f08715",
                "3a19d74264ba17e072874e81c5b4113f93bfbe3f8c56b0383471e1e36bb5f55a",
            ),
            key: "f441f616c308f7ed8e01249ad7735060",
            secret_block: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
            timestamp: "Sat Mar 14 23:59:59 UTC 2026",
            signature: "J4EPDR4tha0wg5WS1rFK9JDw18obqdyt2KfL1NDNvwQ=",
        },
        Vector {
            pool_id: "ap-southeast-2_Q",
            user_id: "b1c2d3e4-0000-4000-8000-000000000001",
            password: "x",
            salt: "ff00000000000000000000000000000f",
            verifier: concat!(
                "24c935466a7e394ff767156c6bff77be6f358b0266c5be82b9e48e42aef96134",
                "f62a632e5dd6bb6bcc17a69a6af0c58b13f448343abc392eec6abcc8a2a267b2",
                "6a8ca8c4785304d2ffdd4a740fdca9140b5a7bdb45fb5de7e6abef0007a45fa3",
                "737f9b6dcd8bd81052e3de756b9629e944109f9b22ac627d17a2a0f56487a718",
                "fccd21fb82106c1c6c12e180cf4735ada6b7193629644ec12a2fd4268108fc05",
                "1057960b033c3e07419a4e6cdf32104a1597335d465d5ee3653a19aa0be78318",
                "f1cb0dbbfcd66b056f04341e06f66869bfefd5af42889f5f41a81777cfebec52",
                "aa55647ed9c70f39bc6a243e103edea7a1a6defc81a7be544d6c4cefa6cb5238",
                "1e891cd9ff89d0ea26fac8569689decb7adef67cc7ad6fdaaaf2fa443138f3e5",
                "a73c0efa201ca0f6db214275630bca880ed3e8eb0f4a639128ebe38c60983215",
                "1ed341f1a99cccaeced1b4ff7a9c0c6bc309a08cf41df5d7fa96951f3a6929e2",
                "4fcda7ed0744717551170294647ab28c8f55bd897bc11a325b376853a06a5a4b",
            ),
            a: concat!(
                "fa4404ce5354a7687e2351b9779329b394e744872694afd047f0ef09c92cd482",
                "edfbe473cbd430e0ecdb38973f9d98d9f06097c034fd66362f0e7774d4b69f3f",
                "85fdb2eec734619a8c0da94208a6603036aba774f8c0d5541de92653eebaa29c",
                "be47364a84761116cba8aba7ac3d97f8abeddd2cf07ded250a6621d44ffbb6ee",
            ),
            b: "56b9a33cbf0d994dc2632c55ec1cfa3da362d8cd08febbe1d18be345f1705d14",
            big_a: concat!(
                "d2b0b59da208be0bc0d8bde68f4e5e68bd7b01dc83bbf37f6a3a7f01fbcb6e0f",
                "b2b4c364b75044dba15c0833a297eb39226d5d22eee5f9dc56f6c237aa13699a",
                "2d40211eb0aabc0375cd9ee00e99013f41227fa5657c43a020f894b3ac48565d",
                "b7a769c8404e45354c712a2104b6e5a2ac41ddace92c66942a320ab13fd901ee",
                "2eacce145f8ec9d92094dae576ca60ef555f67ada7d1adc0ae0308d2a94ba0d7",
                "ec3eabb57542be9d8f491213cebcb41b6c197f36dc0ac1e6f167b00217d6a6e3",
                "3dcd87be688e3b5c24c9b2b4695df58be4c91e27c1f56f986b0d86267e59efab",
                "a401617a97c73a0810125e7451d6759f8c4d7ad21361874cc90f48f2504318c0",
                "bf8464bc81f282041beee88ed1e5119cd97abf80ece50bab73178664b81a19bb",
                "2e87905937179b96be4613c668c3689268468c7b256961671d58370c2c5c6011",
                "d15de494e8c0b62dc51c9f2b422d044c502fc471326ac589bec8685447de912b",
                "ebb2bd13edb230bf8ac3f92ef19e9a2801d086a383c5e0b36b9d2610b02c9751",
            ),
            big_b: concat!(
                "80971cd50e331f3eba8f7a2984fd59032c3dd7574119a936f6053c8205b0f915",
                "7c80df9a50b8741df4ce986009a9f0fc5e6871efdcb25e280f608b186cbfc743",
                "3f5623a5b714be222283d1e01e12348b484699de898cdab53635c22fe63fe7c8",
                "d46149262f677852833ea97734231194680a843e3d7868cf664d56197bc66317",
                "80dc32033c02770d62fbb00bb479bc175ef2541a3d069b60ebed4c4508f2868d",
                "c8ea313f1daa9a0f71935acc7af3be6d0ac7d0d92033f16ceab19776bf468ca0",
                "a0858f107e4f3ab0e3d12623b770c7a4248927bd1e4fd79ec523b9e6c2965ac2",
                "c07c16a854cdcc1d83b22b2adb77e6857e235d76f21548c71f67e5e4f019e066",
                "711f2b5095778697a5fdf0fd44aed19873ae46f4d539470d81864123adc42702",
                "25617e317d2936de9f1c50819ee3de9b1854532ea433c1bcab6818fd8ce163f2",
                "3e51f6d098d546d8890541d442fd7d5c7d021168318fe91e37a44a208ad552f5",
                "887e0c9a12b4bc33ceeb44945b947355317ca8d5183b0a4f579222e7ab88f718",
            ),
            key: "e0698b2c4eec0ad8c4fc1728e493efc1",
            secret_block: "AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8A/wD/AP8=",
            timestamp: "Wed Jan 7 00:00:00 UTC 2026",
            signature: "6wPXevUVLsSFyO97xeGQahYfxJoSwNYzTauagJFAroM=",
        },
    ];

    #[test]
    fn client_library_vectors() {
        for vector in &VECTORS {
            let pool = pool_name(vector.pool_id);
            let salt = hex::decode(vector.salt).expect("hex");
            let stored = verifier_with_salt(pool, vector.user_id, vector.password, &salt);
            assert_eq!(
                BigUint::from_bytes_be(&stored.verifier),
                int(vector.verifier)
            );
            let b: [u8; B_LEN] = hex::decode(vector.b)
                .expect("hex")
                .try_into()
                .expect("32 bytes");
            let challenge = challenge_with_b(&stored.verifier, b).expect("B");
            assert_eq!(BigUint::from_bytes_be(&challenge.big_b), int(vector.big_b));
            let key =
                session_key(vector.big_a, &challenge.big_b, &b, &stored.verifier).expect("valid A");
            assert_eq!(hex::encode(key), vector.key, "{}", vector.pool_id);
            let block = STANDARD.decode(vector.secret_block).expect("base64");
            let (user, ts) = (vector.user_id, vector.timestamp);
            assert!(check_signature(
                &key,
                pool,
                user,
                &block,
                ts,
                vector.signature
            ));
            assert!(!check_signature(
                &key,
                pool,
                user,
                &block[1..],
                ts,
                vector.signature
            ));
            let at = parse_timestamp(ts).expect("timestamp");
            assert_eq!(format_timestamp(at), ts);
            // the test client agrees with the library
            let client = Client::new(&int(vector.a));
            assert_eq!(client.big_a, int(vector.big_a));
            let client_key = client.key(pool, user, vector.password, &salt, &challenge.big_b);
            assert_eq!(client_key, key);
        }
    }
}
