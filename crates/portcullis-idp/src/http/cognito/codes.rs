//! The confirmation and reset codes of the JSON API, kept in the identity store so that a code
//! issued on one gateway node is checked on another. The rules are
//! [`crate::pending::confirmation`]'s ([`CodeEntry`]); this file reads an entry, applies a rule
//! and writes it back by compare-and-swap on its version, so two nodes checking one code at
//! once consume it once and count every wrong guess.

use std::net::IpAddr;

use aws_lc_rs::hmac;
use portcullis_config::Secret;

use super::errors::{CognitoError, ErrorType as E, code_mismatch, err, limit_exceeded};
use super::sign_up::random_code;
use super::{CodeKey, Cognito};
use crate::delivery::CodePurpose;
use crate::pending::confirmation::{CheckRefusal, CodeEntry, IssueRefusal};
use crate::store::ConfirmationKey;

/// Compare-and-swap attempts before an operation on a busy entry gives up (each lost attempt
/// means another request changed the entry meanwhile).
const CAS_TRIES: usize = 64;

fn busy() -> CognitoError {
    err(E::TooManyRequests, "Too many requests")
}

impl Cognito {
    /// HMAC of a code, bound to its pool, user and purpose.
    fn code_mac(&self, pool: &str, key: &CodeKey, code: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.idp.secret_key);
        for part in [pool, key.0.as_str(), key.1.as_str(), code] {
            ctx.update(part.as_bytes());
            ctx.update(&[0]);
        }
        ctx.sign().as_ref().to_vec()
    }

    /// Generates a code for `username` and stores its HMAC (the code is not delivered yet).
    /// The same for every name, known or not: whether to deliver is up to the caller.
    /// `new_account`: the first code of a sign-up (what the name collected before is dropped).
    pub(super) async fn reserve_code(
        &self,
        pool: &str,
        username: &str,
        purpose: CodePurpose,
        ip: Option<IpAddr>,
        new_account: bool,
    ) -> Result<Secret, CognitoError> {
        let code = random_code()?;
        let mac = self.code_mac(pool, &(username.to_owned(), purpose), &code);
        let ttl = match purpose {
            // an invitation carries a temporary password, never a code reserved here
            CodePurpose::SignUp | CodePurpose::Invitation => self.options.sign_up_code_ttl,
            CodePurpose::ForgotPassword => self.options.reset_code_ttl,
        };
        // the per-address share applies where the pool limits per address at all (behind a
        // reverse proxy, `rate_limit_per_ip = 0` turns both off)
        let per_address = self.idp.pool(pool)?.config.rate_limit_per_ip > 0;
        let origin = ip
            .filter(|_| per_address)
            .map(portcullis_core::client::client_key);
        let now = self.options.clock.now();
        let expires_at = now.saturating_add(crate::secs(ttl));
        let limits = self.options.code_limits();
        let key = ConfirmationKey {
            pool,
            username,
            purpose: purpose.as_str(),
        };
        let store = &self.idp.store;
        let refused = |refusal: IssueRefusal| {
            let reason = match refusal {
                IssueRefusal::TooManyCodes => "codes per window",
                IssueRefusal::Locked => "locked after wrong guesses",
                IssueRefusal::ClientFull => "codes per client address",
            };
            tracing::info!(pool, purpose = purpose.as_str(), reason, "code refused");
            limit_exceeded()
        };
        for _ in 0..CAS_TRIES {
            let row = store.confirmation_entry(key).await?;
            let (mut entry, version) = match row {
                Some(r) => (r.entry, Some(r.version)),
                None => (CodeEntry::default(), None),
            };
            entry.admit(&limits, now, new_account).map_err(refused)?;
            if let Some(origin) = origin
                && limits.codes_per_client > 0
            {
                let held = store.client_live_codes(key, origin, now).await?;
                if held >= u64::try_from(limits.codes_per_client).unwrap_or(u64::MAX) {
                    return Err(refused(IssueRefusal::ClientFull));
                }
            }
            if version.is_none() {
                store
                    .make_room_for_confirmation(pool, limits.max_entries, limits.window_secs, now)
                    .await?;
            }
            entry.store(&limits, mac.clone(), expires_at, origin, now, new_account);
            if store
                .put_confirmation_entry(key, &entry, entry.dead_from(&limits), version)
                .await?
            {
                return Ok(Secret::new(code));
            }
        }
        Err(busy())
    }

    /// Drops a reserved code whose user could not be created (its counts stay).
    pub(super) async fn withdraw_code(&self, pool: &str, username: &str, purpose: CodePurpose) {
        let key = ConfirmationKey {
            pool,
            username,
            purpose: purpose.as_str(),
        };
        let limits = self.options.code_limits();
        for _ in 0..CAS_TRIES {
            let Ok(Some(row)) = self.idp.store.confirmation_entry(key).await else {
                return;
            };
            let mut entry = row.entry;
            entry.withdraw();
            let dead_from = entry.dead_from(&limits);
            match self
                .idp
                .store
                .put_confirmation_entry(key, &entry, dead_from, Some(row.version))
                .await
            {
                Ok(false) => continue,
                Ok(true) | Err(_) => return,
            }
        }
    }

    /// Checks (and on success consumes) a code.
    pub(super) async fn check_code(
        &self,
        pool: &str,
        username: &str,
        purpose: CodePurpose,
        code: &str,
    ) -> Result<(), CognitoError> {
        if code.len() > 64 {
            return Err(code_mismatch());
        }
        let mac = self.code_mac(pool, &(username.to_owned(), purpose), code);
        let now = self.options.clock.now();
        let limits = self.options.code_limits();
        let key = ConfirmationKey {
            pool,
            username,
            purpose: purpose.as_str(),
        };
        for _ in 0..CAS_TRIES {
            // no entry: a mismatch that leaves no trace
            let Some(row) = self.idp.store.confirmation_entry(key).await? else {
                return Err(code_mismatch());
            };
            let mut entry = row.entry;
            let checked = entry.check(&limits, &mac, now);
            if self
                .idp
                .store
                .put_confirmation_entry(key, &entry, entry.dead_from(&limits), Some(row.version))
                .await?
            {
                return checked.map_err(|refusal| match refusal {
                    CheckRefusal::Mismatch => code_mismatch(),
                    CheckRefusal::Expired => err(
                        E::ExpiredCode,
                        "Invalid code provided, please request a code again.",
                    ),
                    CheckRefusal::LimitExceeded => limit_exceeded(),
                });
            }
        }
        Err(busy())
    }

    /// Whether `username` holds a sign-up code that has not expired.
    pub(super) async fn has_live_sign_up_code(
        &self,
        pool: &str,
        username: &str,
    ) -> Result<bool, CognitoError> {
        let key = ConfirmationKey {
            pool,
            username,
            purpose: CodePurpose::SignUp.as_str(),
        };
        let now = self.options.clock.now();
        let row = self.idp.store.confirmation_entry(key).await?;
        Ok(row.is_some_and(|r| r.entry.has_live_code(now)))
    }
}
