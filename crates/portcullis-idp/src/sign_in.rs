//! Checking a password at sign-in, with lockout: the I/O around [`crate::lockout`]'s rules.
//! The password is offered in the clear (`USER_PASSWORD_AUTH`, the hosted page) or proven by an
//! SRP claim (`PASSWORD_VERIFIER`, [`SrpClaim`]); both count alike.

use portcullis_config::Secret;

use crate::lockout::{self, LOCK_AFTER, LockState, Settle};
use crate::password::HashError;
use crate::srp::{self, B_LEN};
use crate::store::UserRecord;
use crate::{IdentityProvider, IdpError};

/// What a sign-in offers as proof that the user knows the password.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// The password itself.
    Password(&'a Secret),
    /// The answer to an SRP challenge.
    Srp(&'a SrpClaim),
}

/// An answer to a `PASSWORD_VERIFIER` challenge, with what the server kept of the challenge
/// (from its sealed `SECRET_BLOCK`).
#[derive(Clone)]
pub struct SrpClaim {
    /// The client's A (minimal big-endian bytes).
    pub a: Vec<u8>,
    /// The server's secret ephemeral of the challenge.
    pub b: [u8; B_LEN],
    /// The decoded `PASSWORD_CLAIM_SECRET_BLOCK` the client signed.
    pub secret_block: Vec<u8>,
    /// `TIMESTAMP` exactly as sent.
    pub timestamp: String,
    /// `PASSWORD_CLAIM_SIGNATURE` (base64).
    pub signature: String,
}

impl std::fmt::Debug for SrpClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrpClaim")
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl SrpClaim {
    /// Whether the claim's signature holds for the user `user_id` of the pool `pool_name` with
    /// this verifier: B recomputed from b, the shared key from A, the signature compared in
    /// constant time. Three modular exponentiations: run off the executor.
    pub fn verifies(&self, verifier: &[u8], pool_name: &str, user_id: &str) -> bool {
        let Some(challenge) = srp::challenge_with_b(verifier, self.b) else {
            return false;
        };
        let Ok(key) = srp::session_key_for(&self.a, &challenge.big_b, &self.b, verifier) else {
            return false;
        };
        srp::check_signature(
            &key,
            pool_name,
            user_id,
            &self.secret_block,
            &self.timestamp,
            &self.signature,
        )
    }
}

/// Times the lockout compare-and-swap is retried against parallel sign-ins before the guess
/// is refused as if locked.
const LOCK_SWAP_TRIES: usize = 8;

/// The outcome of [`IdentityProvider::verify_password_with_lockout`].
#[derive(Debug)]
pub enum PasswordCheck {
    /// The password matches; failure counters were reset.
    Valid(Box<UserRecord>),
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
    /// Checks a proof that cannot hold (an unknown user, or one without a password or
    /// verifier) with the work a real user's check costs.
    async fn dummy_check(
        &self,
        pool: &str,
        username: &str,
        proof: Proof<'_>,
    ) -> Result<(), IdpError> {
        match proof {
            Proof::Password(password) => self.dummy_verify(password).await,
            Proof::Srp(claim) => {
                self.srp_check(pool, username, None, claim).await?;
                Ok(())
            }
        }
    }

    /// Checks an SRP claim against `verifier`, or (`None`) against the fake verifier of the
    /// name, which never holds but costs the same.
    async fn srp_check(
        &self,
        pool: &str,
        username: &str,
        verifier: Option<&srp::Verifier>,
        claim: &SrpClaim,
    ) -> Result<bool, IdpError> {
        let pool_name = self.srp_pool_name(pool)?.to_owned();
        let (real, verifier) = match verifier {
            Some(v) => (true, v.clone()),
            None => (
                false,
                srp::fake_verifier(&self.srp_keys.fake, &pool_name, username),
            ),
        };
        let (claim, username) = (claim.clone(), username.to_owned());
        let holds = self
            .hasher
            .run(move || claim.verifies(&verifier.verifier, &pool_name, &username))
            .await?;
        Ok(real && holds)
    }

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
        self.verify_unknown_user(pool, username, Proof::Password(password))
            .await
    }

    /// [`verify_unknown_user_password`](Self::verify_unknown_user_password) for any proof.
    pub async fn verify_unknown_user(
        &self,
        pool: &str,
        username: &str,
        proof: Proof<'_>,
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
        self.dummy_check(pool, username, proof).await?;
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
        user: UserRecord,
        password: &Secret,
    ) -> Result<PasswordCheck, IdpError> {
        self.verify_with_lockout(user, Proof::Password(password))
            .await
    }

    /// [`verify_password_with_lockout`](Self::verify_password_with_lockout) for any proof: an
    /// SRP claim is counted exactly as a password. A password that matches gives a user who
    /// has no SRP verifier yet (one from before verifiers) its verifier.
    pub async fn verify_with_lockout(
        &self,
        mut user: UserRecord,
        proof: Proof<'_>,
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
                    return self.verify_unknown_user(&pool, &username, proof).await;
                }
            }
        }
        // Still contended after every try: many guesses at once, refused unchecked.
        let Some(reserved) = reserved else {
            return Ok(PasswordCheck::Locked);
        };
        let ok = match (proof, &user.password_hash, &user.srp) {
            (Proof::Password(password), Some(phc), _) => self.hasher.verify(password, phc).await?,
            (Proof::Srp(claim), Some(_), Some(verifier)) => {
                self.srp_check(&user.pool, &user.username, Some(verifier), claim)
                    .await?
            }
            _ => {
                self.dummy_check(&user.pool, &user.username, proof).await?;
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
                if let Proof::Password(password) = proof {
                    self.give_srp_verifier(&mut user, password).await;
                }
                return Ok(PasswordCheck::Valid(Box::new(user)));
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

    /// Gives a user whose password predates SRP verifiers its verifier, now that the password
    /// is at hand (it matched). Only if the password is still the one checked; a failure is
    /// logged and the sign-in goes on (the next one tries again).
    async fn give_srp_verifier(&self, user: &mut UserRecord, password: &Secret) {
        let (None, Some(phc)) = (&user.srp, &user.password_hash) else {
            return;
        };
        let given = match self
            .srp_verifier(&user.pool, &user.username, password)
            .await
        {
            Ok(verifier) => self
                .store
                .set_srp_verifier(&user.pool, &user.username, phc, &verifier)
                .await
                .map(|set| set.then_some(verifier)),
            Err(IdpError::Store(e)) => Err(e),
            Err(e) => {
                tracing::warn!(pool = %user.pool, error = %e, "cannot compute an SRP verifier");
                return;
            }
        };
        match given {
            Ok(verifier) => user.srp = verifier,
            Err(e) => {
                tracing::warn!(pool = %user.pool, error = %e, "cannot store an SRP verifier");
            }
        }
    }
}
