//! Checking a password at sign-in, with lockout: the I/O around [`crate::lockout`]'s rules.

use portcullis_config::Secret;

use crate::lockout::{self, LOCK_AFTER, LockState, Settle};
use crate::password::HashError;
use crate::store::UserRecord;
use crate::{IdentityProvider, IdpError};

/// Times the lockout compare-and-swap is retried against parallel sign-ins before the guess
/// is refused as if locked.
const LOCK_SWAP_TRIES: usize = 8;

/// The outcome of [`IdentityProvider::verify_password_with_lockout`].
#[derive(Debug)]
pub enum PasswordCheck {
    /// The password matches; failure counters were reset.
    Valid(UserRecord),
    /// Locked out (or too many checks of this user already running): the password was not
    /// checked.
    Locked,
    /// Wrong password, or no such user (counted).
    Invalid,
}

/// The lockout fields of a user row.
fn lock_state(user: &UserRecord) -> lockout::LockState {
    lockout::LockState {
        failures: user.failed_attempts,
        locked_until: user.locked_until,
        changed_at: user.updated_at,
    }
}

impl IdentityProvider {
    /// Checks `password` against a hash nobody has: the work a real user's check costs.
    pub(crate) async fn dummy_verify(&self, password: &Secret) -> Result<(), IdpError> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 32];
                aws_lc_rs::rand::fill(&mut random)
                    .map_err(|_| HashError("no randomness".into()))?;
                let nobody: String = random.iter().map(|b| format!("{b:02x}")).collect();
                self.hasher.hash(&Secret::new(nobody)).await
            })
            .await?;
        self.hasher.verify(password, hash).await?;
        Ok(())
    }

    /// A sign-in with a username the pool does not have: counted and locked out exactly like
    /// a real user's wrong password (same answers, and the same hashing work), never valid.
    pub async fn verify_unknown_user_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
    ) -> Result<PasswordCheck, IdpError> {
        self.pool(pool)?;
        // Counted in the store like a real user's row (compare-and-swap), so every node
        // sharing it locks the name alike.
        let name = lockout::name_key(username);
        let now = self.now();
        let mut reserved = false;
        for _ in 0..LOCK_SWAP_TRIES {
            let row = self.store.unknown_name_state(pool, &name).await?;
            let (current, version) = match row {
                Some((state, version)) => (state, Some(version)),
                None => (LockState::default(), None),
            };
            let Some(next) = lockout::reserve(current, now) else {
                return Ok(PasswordCheck::Locked);
            };
            if self
                .store
                .put_unknown_name_state(
                    pool,
                    &name,
                    &next,
                    lockout::forgotten_at(&next),
                    version,
                    self.options.unknown_name_entries,
                )
                .await?
            {
                reserved = true;
                break;
            }
        }
        if !reserved {
            // still contended after every try: many guesses at once, refused unchecked
            return Ok(PasswordCheck::Locked);
        }
        self.dummy_verify(password).await?;
        Ok(PasswordCheck::Invalid)
    }

    /// Verifies the password of `username`, known or not (see
    /// [`verify_password_with_lockout`](Self::verify_password_with_lockout) and
    /// [`verify_unknown_user_password`](Self::verify_unknown_user_password)).
    pub async fn sign_in_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
    ) -> Result<PasswordCheck, IdpError> {
        self.pool(pool)?;
        match self.store.get_user(pool, username).await? {
            Some(user) => self.verify_password_with_lockout(user, password).await,
            None => {
                self.verify_unknown_user_password(pool, username, password)
                    .await
            }
        }
    }

    /// Verifies a user's password with Cognito's lockout: after [`LOCK_AFTER`] failures in a
    /// row, each further failure locks the user out for twice as long as the last (1 s, 2 s,
    /// 4 s … at most [`LOCK_CAP_SECS`](crate::LOCK_CAP_SECS)); a quiet [`LOCK_RESET_SECS`](crate::LOCK_RESET_SECS) forgets the failures. A
    /// locked user is refused without a password check. Used by every sign-in path (the
    /// Cognito JSON API and the hosted page).
    ///
    /// Each check is counted in the store *before* it runs (a compare-and-swap of the user's
    /// row, so parallel guesses and other processes sharing the store see every one), and the
    /// lock a failure would bring is set with it; a matching password then clears the count.
    /// So however many guesses arrive at once, at most [`LOCK_AFTER`] are checked before the
    /// first lock, and one per lock after it. A user without a password costs a dummy check.
    pub async fn verify_password_with_lockout(
        &self,
        mut user: UserRecord,
        password: &Secret,
    ) -> Result<PasswordCheck, IdpError> {
        let now = self.now();
        let mut reserved = None;
        for _ in 0..LOCK_SWAP_TRIES {
            let current = lock_state(&user);
            let Some(next) = lockout::reserve(current, now) else {
                return Ok(PasswordCheck::Locked);
            };
            if self
                .store
                .swap_lock_state(&user.pool, &user.username, &current, &next)
                .await?
            {
                reserved = Some(next);
                break;
            }
            match self.store.get_user(&user.pool, &user.username).await? {
                Some(fresh) => user = fresh,
                // deleted meanwhile: an unknown user now
                None => {
                    let (pool, username) = (user.pool.clone(), user.username.clone());
                    return self
                        .verify_unknown_user_password(&pool, &username, password)
                        .await;
                }
            }
        }
        // Still contended after every try: many guesses at once, refused unchecked.
        let Some(reserved) = reserved else {
            return Ok(PasswordCheck::Locked);
        };
        let ok = match &user.password_hash {
            Some(phc) => self.hasher.verify(password, phc).await?,
            None => {
                self.dummy_verify(password).await?;
                false
            }
        };
        match lockout::settle(reserved, now, ok, self.now()) {
            Settle::Clear => {
                self.store
                    .clear_lock_state(&user.pool, &user.username, now)
                    .await?;
                user.failed_attempts = 0;
                user.locked_until = None;
                user.updated_at = now;
                return Ok(PasswordCheck::Valid(user));
            }
            // The lock runs from the failure's answer; stored unless the row changed meanwhile
            // (a success cleared it, or a newer reservation set its own).
            Settle::Restart(restarted) => {
                self.store
                    .swap_lock_state(&user.pool, &user.username, &reserved, &restarted)
                    .await?;
            }
            Settle::Keep => {}
        }
        if reserved.failures > LOCK_AFTER {
            tracing::info!(pool = %user.pool, username = %user.username, failures = reserved.failures, "sign-in lockout");
        }
        Ok(PasswordCheck::Invalid)
    }
}
