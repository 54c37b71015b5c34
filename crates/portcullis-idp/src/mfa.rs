//! Multi-factor sign-in with TOTP software tokens (authenticator apps), as Cognito's
//! `SOFTWARE_TOKEN_MFA`: the codes ([`totp`], RFC 6238, pure), the secrets at rest ([`sealed`],
//! AES-256-GCM under a key derived from the store's pepper), what a user who proved the password
//! must do next under the pool's `mfa` setting ([`after_password`], pure), and the I/O around
//! them (associating, verifying and enabling a token, checking a sign-in code with lockout and
//! replay protection) in [`account`].
//!
//! Rules kept on every node, through the store (`crate::store::MfaStore`):
//! * a token is *associated* (a pending secret), then *verified* with a code (the secret becomes
//!   the user's), then *enabled* (`SetUserMFAPreference`, or at once by `MFA_SETUP`);
//! * a code is accepted for its time step ±1, once: the last step spent is stored, and spending
//!   one is a conditional update, so of two parallel answers with one code exactly one wins;
//! * wrong codes count like wrong passwords ([`crate::lockout`]'s arithmetic, in the user's MFA
//!   row, not cleared by a correct password): 5 in a row lock the user's codes for 1 s, 2 s,
//!   4 s … 15 minutes; a challenge session also ends after [`MAX_SESSION_FAILURES`] wrong
//!   answers.

pub mod account;
pub mod sealed;
pub mod totp;

use portcullis_config::Mfa;

use crate::store::{MfaChallenge, MfaRow};

pub use account::TotpCheck;

/// Wrong answers one MFA challenge session takes before it ends.
pub const MAX_SESSION_FAILURES: i64 = 5;

/// What a user who proved the password gets next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterPassword {
    /// No second factor: the tokens.
    Tokens,
    /// A challenge first.
    Challenge(MfaChallenge),
}

/// Whether the user's verified token is asked for at sign-in under the pool's `mode`:
/// `optional` when the user enabled it, `on` whenever there is one, `off` never.
pub fn totp_active(mode: Mfa, row: Option<&MfaRow>) -> bool {
    let verified = row.is_some_and(|r| r.secret.is_some());
    match mode {
        Mfa::Off => false,
        Mfa::Optional => verified && row.is_some_and(|r| r.enabled),
        Mfa::On => verified,
    }
}

/// The step after a correct password under the pool's `mode`.
pub fn after_password(mode: Mfa, row: Option<&MfaRow>) -> AfterPassword {
    if totp_active(mode, row) {
        AfterPassword::Challenge(MfaChallenge::SoftwareToken)
    } else if mode == Mfa::On {
        AfterPassword::Challenge(MfaChallenge::Setup)
    } else {
        AfterPassword::Tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LockState;

    fn row(verified: bool, enabled: bool) -> MfaRow {
        MfaRow {
            secret: verified.then(|| vec![1]),
            pending_secret: None,
            enabled,
            preferred: enabled,
            last_step: -1,
            lock: LockState::default(),
            version: 0,
        }
    }

    #[test]
    fn the_pool_setting_decides_what_follows_the_password() {
        use AfterPassword::{Challenge, Tokens};
        use MfaChallenge::{Setup, SoftwareToken};
        let none: Option<&MfaRow> = None;
        let pending = row(false, false);
        let verified = row(true, false);
        let enabled = row(true, true);
        let table = [
            (Mfa::Off, none, Tokens),
            (Mfa::Off, Some(&enabled), Tokens),
            (Mfa::Optional, none, Tokens),
            (Mfa::Optional, Some(&pending), Tokens),
            (Mfa::Optional, Some(&verified), Tokens),
            (Mfa::Optional, Some(&enabled), Challenge(SoftwareToken)),
            (Mfa::On, none, Challenge(Setup)),
            (Mfa::On, Some(&pending), Challenge(Setup)),
            (Mfa::On, Some(&verified), Challenge(SoftwareToken)),
            (Mfa::On, Some(&enabled), Challenge(SoftwareToken)),
        ];
        for (mode, row, expected) in table {
            assert_eq!(after_password(mode, row), expected, "{mode:?} {row:?}");
        }
    }
}
