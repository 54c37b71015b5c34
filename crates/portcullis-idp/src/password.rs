//! User passwords: the pool's policy check, and Argon2id hashing (OWASP: 19 MiB, t=2, p=1)
//! as PHC strings.
//!
//! Hashing burns a core for tens of milliseconds and 19 MiB, so it runs on the blocking pool
//! behind a semaphore with one permit per core: a login storm queues instead of starving the
//! reactor or exhausting memory. SRP's verifiers and challenges (3072-bit modular
//! exponentiations, milliseconds each) run the same way ([`PasswordHasher::run`]).

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use portcullis_config::{PasswordPolicy, Secret};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;

// OWASP Password Storage Cheat Sheet parameters for Argon2id (public for benchmarks, which
// measure the bare cost of one verification next to a sign-in).
/// Argon2id memory cost of new hashes, in KiB.
pub const M_COST_KIB: u32 = 19 * 1024;
/// Argon2id passes (time cost) of new hashes.
pub const T_COST: u32 = 2;
/// Argon2id lanes (parallelism) of new hashes.
pub const P_COST: u32 = 1;
const SALT_BYTES: usize = 16;
/// Length of the hash output, in bytes.
pub const HASH_BYTES: usize = 32;
/// Longest password accepted (Cognito: 256).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Cognito's special characters (the space is also counted; see cognito.md §6.4).
const SYMBOLS: &str = "^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ";

/// Why a password does not satisfy the pool's policy (the user's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("Password did not conform with policy: Password not long enough")]
    TooShort,
    #[error("Password did not conform with policy: Password is too long")]
    TooLong,
    #[error("Password did not conform with policy: Password must have numeric characters")]
    NoDigit,
    #[error("Password did not conform with policy: Password must have lowercase characters")]
    NoLowercase,
    #[error("Password did not conform with policy: Password must have uppercase characters")]
    NoUppercase,
    #[error("Password did not conform with policy: Password must have symbol characters")]
    NoSymbol,
}

/// Checks `password` against `policy`, reporting the first rule it breaks.
pub fn check_policy(policy: &PasswordPolicy, password: &str) -> Result<(), PolicyViolation> {
    let chars = password.chars().count();
    if chars < usize::try_from(policy.min_length).unwrap_or(usize::MAX) {
        return Err(PolicyViolation::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PolicyViolation::TooLong);
    }
    if policy.require_digits && !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(PolicyViolation::NoDigit);
    }
    if policy.require_lowercase && !password.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(PolicyViolation::NoLowercase);
    }
    if policy.require_uppercase && !password.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(PolicyViolation::NoUppercase);
    }
    if policy.require_symbols && !password.chars().any(|c| SYMBOLS.contains(c)) {
        return Err(PolicyViolation::NoSymbol);
    }
    Ok(())
}

/// Hashing failed for a reason that is not the caller's (no randomness, task panicked).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(pub String);

/// Argon2id hasher shared by the whole provider.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verifications started so far (sign-in guesses cost one each; tests count them).
    verifications: Arc<AtomicU64>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(HASH_BYTES))
        .map_err(|e| HashError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, base64 without padding as PHC says.
fn hash_blocking(password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_BYTES];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| HashError("no randomness".into()))?;
    let mut out = [0u8; HASH_BYTES];
    argon2()?
        .hash_password_into(password, &salt, &mut out)
        .map_err(|e| HashError(e.to_string()))?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Parses a PHC string this module wrote (any m/t/p) and compares in constant time.
fn verify_blocking(password: &[u8], phc: &str) -> bool {
    let mut parts = phc.split('$');
    let (Some(""), Some("argon2id"), Some("v=19"), Some(params), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("m", v)) => m = v.parse::<u32>().ok(),
            Some(("t", v)) => t = v.parse::<u32>().ok(),
            Some(("p", v)) => p = v.parse::<u32>().ok(),
            _ => return false,
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (STANDARD_NO_PAD.decode(salt), STANDARD_NO_PAD.decode(hash))
    else {
        return false;
    };
    if !(16..=64).contains(&expected.len()) {
        return false;
    }
    let Ok(params) = Params::new(m, t, p, Some(expected.len())) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, &salt, &mut out)
        .is_err()
    {
        return false;
    }
    aws_lc_rs::constant_time::verify_slices_are_equal(&out, &expected).is_ok()
}

impl PasswordHasher {
    /// A hasher running at most `concurrency` (≥ 1) hashes at once.
    pub fn new(concurrency: usize) -> Self {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            verifications: Arc::default(),
        }
    }

    /// How many verifications this hasher has started.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: &Secret) -> Result<String, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError("hasher closed".into()))?;
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_blocking(password.expose().as_bytes()))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

    /// Runs other CPU-bound work of a sign-in (SRP's modular exponentiations) the way hashes
    /// run: on the blocking pool, under one of the same permits.
    pub async fn run<T, F>(&self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError("hasher closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError(e.to_string()))
    }

    /// True when `password` matches the stored PHC string. A malformed hash never matches.
    pub async fn verify(&self, password: &Secret, phc: &str) -> Result<bool, HashError> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError("hasher closed".into()))?;
        let password = password.clone();
        let phc = phc.to_owned();
        tokio::task::spawn_blocking(move || verify_blocking(password.expose().as_bytes(), &phc))
            .await
            .map_err(|e| HashError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min: u32, all: bool) -> PasswordPolicy {
        PasswordPolicy {
            min_length: min,
            require_digits: all,
            require_lowercase: all,
            require_uppercase: all,
            require_symbols: all,
        }
    }

    #[tokio::test]
    async fn hash_round_trip() {
        let hasher = PasswordHasher::new(1);
        let pw = Secret::new("correct horse 1A!");
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct"));
        assert!(hasher.verify(&pw, &phc).await.unwrap());
        assert!(
            !hasher
                .verify(&Secret::new("correct horse 1A?"), &phc)
                .await
                .unwrap()
        );
        // same password, new salt
        assert_ne!(phc, hasher.hash(&pw).await.unwrap());
        // tampered / malformed hashes never match
        let tampered = format!("{}A", &phc[..phc.len() - 1]);
        assert!(!hasher.verify(&pw, &tampered).await.unwrap() || tampered == phc);
        assert!(!hasher.verify(&pw, "").await.unwrap());
        assert!(
            !hasher
                .verify(&pw, "$argon2id$v=19$m=8,t=1$x$y")
                .await
                .unwrap()
        );
    }

    #[test]
    fn policy_rules() {
        assert_eq!(
            check_policy(&policy(8, false), "short"),
            Err(PolicyViolation::TooShort)
        );
        assert_eq!(check_policy(&policy(8, false), "longenough"), Ok(()));
        let strict = policy(8, true);
        assert_eq!(
            check_policy(&strict, "abcdefgh"),
            Err(PolicyViolation::NoDigit)
        );
        assert_eq!(
            check_policy(&strict, "ABCDEFG1"),
            Err(PolicyViolation::NoLowercase)
        );
        assert_eq!(
            check_policy(&strict, "abcdefg1"),
            Err(PolicyViolation::NoUppercase)
        );
        assert_eq!(
            check_policy(&strict, "abcdEfg1"),
            Err(PolicyViolation::NoSymbol)
        );
        assert_eq!(check_policy(&strict, "abcdEfg1!"), Ok(()));
        assert_eq!(
            check_policy(&policy(6, false), &"x".repeat(257)),
            Err(PolicyViolation::TooLong)
        );
        // length counts characters, not bytes
        assert_eq!(
            check_policy(&policy(8, false), "ééééééé"),
            Err(PolicyViolation::TooShort)
        );
    }
}
