//! The I/O of TOTP MFA on the provider: a user's token associated, verified and enabled, and
//! sign-in codes checked with lockout and replay protection. The rules are [`super`]'s and
//! [`super::totp`]'s; the rows [`crate::store::MfaStore`]'s.

use portcullis_config::Mfa;

use super::sealed::{SealError, TotpKeys};
use super::totp::{self, TotpError, TotpSecret};
use super::{AfterPassword, after_password};
use crate::keys::KeyError;
use crate::lockout::{self, Settle};
use crate::store::{MfaRow, StoreError};
use crate::{IdentityProvider, IdpError};

/// Times the wrong-code count is retried against parallel answers before the code is refused as
/// if locked.
const LOCK_SWAP_TRIES: usize = 8;

/// The outcome of checking a TOTP code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// The code is right and its step is now spent.
    Valid,
    /// Wrong (or malformed) code.
    Mismatch,
    /// Right for a step already spent (or an earlier one): refused.
    Replayed,
    /// Too many wrong codes: refused without a check.
    Locked,
    /// The user has no such token (nothing associated, or nothing verified).
    NoToken,
}

impl From<SealError> for IdpError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Sealing => IdpError::Key(KeyError("sealing a TOTP secret")),
            SealError::WrongKey => IdpError::Store(StoreError::Corrupt(e.to_string())),
        }
    }
}

/// The last step a row spent, if any.
fn last_used(row: &MfaRow) -> Option<i64> {
    (row.last_step >= 0).then_some(row.last_step)
}

impl IdentityProvider {
    /// The key sealing TOTP secrets (derived from the store's pepper).
    fn totp_keys(&self) -> Result<TotpKeys, IdpError> {
        TotpKeys::derive(&self.secret_key)
            .ok_or_else(|| IdpError::Config("AES-256-GCM is not available".into()))
    }

    /// The pool's `mfa` setting.
    pub fn pool_mfa(&self, pool: &str) -> Result<Mfa, IdpError> {
        Ok(self.pool(pool)?.config.mfa)
    }

    /// The user's TOTP state as stored (secrets sealed).
    pub async fn user_mfa(&self, pool: &str, username: &str) -> Result<Option<MfaRow>, IdpError> {
        Ok(self.store.user_mfa(pool, username).await?)
    }

    /// What a user who proved the password must do next under the pool's `mfa` setting.
    pub async fn after_password(
        &self,
        pool: &str,
        username: &str,
    ) -> Result<AfterPassword, IdpError> {
        let mode = self.pool_mfa(pool)?;
        if mode == Mfa::Off {
            return Ok(AfterPassword::Tokens);
        }
        let row = self.store.user_mfa(pool, username).await?;
        Ok(after_password(mode, row.as_ref()))
    }

    /// A new secret for the user's token, pending until a code of it is verified
    /// ([`verify_totp`](Self::verify_totp)); a verified token stays in use until then.
    pub async fn associate_totp(&self, pool: &str, username: &str) -> Result<TotpSecret, IdpError> {
        let secret = TotpSecret::random().ok_or(IdpError::Key(KeyError("no randomness")))?;
        let sealed = self.totp_keys()?.seal(pool, username, &secret)?;
        self.store
            .put_pending_totp(pool, username, &sealed, self.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => IdpError::UserNotFound,
                other => other.into(),
            })?;
        Ok(secret)
    }

    /// Checks a code of the user's pending token; a right one makes it the user's token (its
    /// step spent), and `enable` also enables it and makes it preferred (`MFA_SETUP`).
    pub async fn verify_totp(
        &self,
        pool: &str,
        username: &str,
        code: &str,
        enable: bool,
    ) -> Result<TotpCheck, IdpError> {
        let Some(row) = self.store.user_mfa(pool, username).await? else {
            return Ok(TotpCheck::NoToken);
        };
        let Some(pending) = &row.pending_secret else {
            return Ok(TotpCheck::NoToken);
        };
        let secret = self.totp_keys()?.open(pool, username, pending)?;
        let now = self.now();
        // a new secret: no step of it was spent (the last spent step was the old secret's)
        match totp::check(&secret, code, now, None) {
            Ok(step) => {
                let confirmed = self
                    .store
                    .confirm_totp(pool, username, pending, step, enable, now)
                    .await?;
                Ok(if confirmed {
                    TotpCheck::Valid
                } else {
                    TotpCheck::Replayed
                })
            }
            Err(TotpError::Replayed) => Ok(TotpCheck::Replayed),
            Err(_) => Ok(TotpCheck::Mismatch),
        }
    }

    /// `SetUserMFAPreference` of the software token; false when the user has no verified
    /// token.
    pub async fn set_totp_preference(
        &self,
        pool: &str,
        username: &str,
        enabled: bool,
        preferred: bool,
    ) -> Result<bool, IdpError> {
        Ok(self
            .store
            .set_totp_preference(pool, username, enabled, preferred, self.now())
            .await?)
    }

    /// Removes the user's token (a lost authenticator): the user signs in without a code again,
    /// or sets a new token up where the pool's `mfa` is `on`. False when there was none;
    /// [`IdpError::UserNotFound`] for an unknown user.
    pub async fn remove_totp(&self, pool: &str, username: &str) -> Result<bool, IdpError> {
        self.pool(pool)?;
        if self.store.get_user(pool, username).await?.is_none() {
            return Err(IdpError::UserNotFound);
        }
        let removed = self.store.delete_user_mfa(pool, username).await?;
        if removed {
            tracing::info!(pool, username, "TOTP software token removed");
        }
        Ok(removed)
    }

    /// Checks a sign-in code of the user's verified token. Like a password, the check is
    /// counted before it runs (a compare-and-swap of the user's MFA row): after
    /// [`lockout::LOCK_AFTER`] wrong codes in a row the user's codes are locked for a growing
    /// time, whatever the session; a right code spends its step (one winner among parallel
    /// answers) and clears the count.
    pub async fn check_totp_sign_in(
        &self,
        pool: &str,
        username: &str,
        code: &str,
    ) -> Result<TotpCheck, IdpError> {
        let now = self.now();
        let mut reserved = None;
        for _ in 0..LOCK_SWAP_TRIES {
            let Some(row) = self.store.user_mfa(pool, username).await? else {
                return Ok(TotpCheck::NoToken);
            };
            if row.secret.is_none() {
                return Ok(TotpCheck::NoToken);
            }
            let Some(next) = lockout::reserve(row.lock, now) else {
                return Ok(TotpCheck::Locked);
            };
            if self
                .store
                .swap_totp_lock(pool, username, row.version, &next)
                .await?
            {
                reserved = Some((row, next));
                break;
            }
        }
        let Some((row, next)) = reserved else {
            return Ok(TotpCheck::Locked);
        };
        let Some(sealed) = &row.secret else {
            return Ok(TotpCheck::NoToken);
        };
        let secret = self.totp_keys()?.open(pool, username, sealed)?;
        let outcome = match totp::check(&secret, code, now, last_used(&row)) {
            Ok(step) => {
                if self
                    .store
                    .spend_totp_step(pool, username, sealed, step, now)
                    .await?
                {
                    return Ok(TotpCheck::Valid);
                }
                TotpCheck::Replayed
            }
            Err(TotpError::Replayed) => TotpCheck::Replayed,
            Err(_) => TotpCheck::Mismatch,
        };
        if let Settle::Restart(restarted) = lockout::settle(next, now, false, self.now()) {
            // the row's version after our reservation; unless another writer came since
            self.store
                .swap_totp_lock(pool, username, row.version + 1, &restarted)
                .await?;
        }
        if next.failures > lockout::LOCK_AFTER {
            tracing::info!(
                pool,
                username,
                failures = next.failures,
                "TOTP code lockout"
            );
        }
        Ok(outcome)
    }
}
