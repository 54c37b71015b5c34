//! Time-based one-time passwords (RFC 6238) as authenticator apps and Cognito compute them:
//! HMAC-SHA-1 over the 30-second time step, 6 digits, secrets of 160 bits shown in base32
//! (RFC 4648, no padding). Pure: the caller passes the time and the secret.
//!
//! A code is accepted for the current step and one step either way ([`WINDOW_STEPS`]), and only
//! for a step after the last one the user spent ([`check`]'s `last_used`), so a code is used
//! once. Every candidate step is computed and compared in constant time, whichever matches.

use std::fmt;

use aws_lc_rs::hmac;

/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a secret (160 bits, RFC 4226's recommendation and Cognito's size).
pub const SECRET_LEN: usize = 20;
/// Steps accepted either side of the current one.
pub const WINDOW_STEPS: i64 = 1;

/// A TOTP secret. `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(pub [u8; SECRET_LEN]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// A fresh random secret; `None` when the system has no randomness.
    pub fn random() -> Option<Self> {
        let mut bytes = [0u8; SECRET_LEN];
        aws_lc_rs::rand::fill(&mut bytes).ok()?;
        Some(TotpSecret(bytes))
    }

    /// The secret as authenticator apps take it (`SecretCode`): base32 without padding.
    pub fn base32(&self) -> String {
        base32_encode(&self.0)
    }
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// Not 6 ASCII digits.
    #[error("malformed code")]
    Malformed,
    /// No step of the window gives this code.
    #[error("wrong code")]
    Mismatch,
    /// The code is right for a step the user already spent (or an earlier one).
    #[error("code already used")]
    Replayed,
}

/// The time step of `now` (unix seconds).
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP_SECS)
}

/// The 6-digit code of `step` (RFC 4226 dynamic truncation), as ASCII digits.
pub fn code_at(secret: &TotpSecret, step: i64) -> [u8; DIGITS] {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret.0);
    let counter = u64::try_from(step).unwrap_or(0).to_be_bytes();
    let tag = hmac::sign(&key, &counter);
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac
        .get(offset..offset + 4)
        .map_or(0, |b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]));
    let mut value = word % 1_000_000;
    let mut digits = [b'0'; DIGITS];
    for digit in digits.iter_mut().rev() {
        // value % 10 < 10: the cast cannot truncate
        *digit = b'0' + u8::try_from(value % 10).unwrap_or(0);
        value /= 10;
    }
    digits
}

/// The code as sent (`UserCode`, `SOFTWARE_TOKEN_MFA_CODE`, the hosted form): exactly six
/// ASCII digits (surrounding spaces, as pasted, are ignored).
pub fn parse_code(code: &str) -> Result<[u8; DIGITS], TotpError> {
    let code = code.trim();
    let bytes: [u8; DIGITS] = code
        .as_bytes()
        .try_into()
        .map_err(|_| TotpError::Malformed)?;
    if bytes.iter().all(u8::is_ascii_digit) {
        Ok(bytes)
    } else {
        Err(TotpError::Malformed)
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    let diff = a
        .iter()
        .zip(b)
        .fold(u8::from(a.len() != b.len()), |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The step `code` is right for at `now`, within [`WINDOW_STEPS`] either way and after
/// `last_used` (the last step the user spent; a code of that step or an earlier one is a
/// replay). Every step of the window is computed and compared, in constant time.
pub fn check(
    secret: &TotpSecret,
    code: &str,
    now: i64,
    last_used: Option<i64>,
) -> Result<i64, TotpError> {
    let code = parse_code(code)?;
    let current = step_at(now);
    let mut matched: Option<i64> = None;
    for step in current - WINDOW_STEPS..=current + WINDOW_STEPS {
        if same(&code_at(secret, step), &code) && matched.is_none() {
            matched = Some(step);
        }
    }
    match matched {
        None => Err(TotpError::Mismatch),
        Some(step) if last_used.is_some_and(|last| step <= last) => Err(TotpError::Replayed),
        Some(step) => Ok(step),
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, upper case, without padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes RFC 4648 base32 (either case, padding and spaces ignored); `None` on any other
/// character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let value = BASE32.iter().position(|b| *b == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | u32::try_from(value).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

#[cfg(test)]
#[path = "totp_tests.rs"]
mod tests;
