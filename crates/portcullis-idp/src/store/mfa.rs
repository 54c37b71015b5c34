//! What the store keeps for TOTP MFA ([`MfaStore`], a part of every [`super::Store`]): each
//! user's sealed secrets, settings, last spent time step and wrong-code count (table
//! `user_mfa`), and the challenge sessions of MFA sign-ins (table `mfa_sessions`, bounded like
//! the other challenge sessions). Every change that two nodes may race over is one conditional
//! statement: of two parallel answers with one code, one spends its step.

use async_trait::async_trait;

use super::{LockState, StoreError};
use crate::pending::challenges::Challenged;

/// A user's TOTP state as stored. Secrets are sealed (`crate::mfa::sealed`).
#[derive(Clone, PartialEq, Eq)]
pub struct MfaRow {
    /// The verified secret, sealed; `None` until a token is verified.
    pub secret: Option<Vec<u8>>,
    /// A secret associated (`AssociateSoftwareToken`) but not verified yet, sealed.
    pub pending_secret: Option<Vec<u8>>,
    /// `SetUserMFAPreference`'s `Enabled` (or a completed `MFA_SETUP`).
    pub enabled: bool,
    pub preferred: bool,
    /// The last time step whose code was accepted (-1: none).
    pub last_step: i64,
    /// Wrong codes at sign-in, counted like wrong passwords.
    pub lock: LockState,
    /// Bumped by every write of `lock` or `last_step` (compare-and-swap).
    pub version: i64,
}

impl std::fmt::Debug for MfaRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaRow")
            .field("secret", &self.secret.as_ref().map(|_| "<sealed>"))
            .field(
                "pending_secret",
                &self.pending_secret.as_ref().map(|_| "<sealed>"),
            )
            .field("enabled", &self.enabled)
            .field("preferred", &self.preferred)
            .field("last_step", &self.last_step)
            .field("lock", &self.lock)
            .field("version", &self.version)
            .finish()
    }
}

/// The kind of an MFA challenge session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaChallenge {
    /// `SOFTWARE_TOKEN_MFA`: the user answers with a code of their token.
    SoftwareToken,
    /// `MFA_SETUP`: the user associates and verifies a token first.
    Setup,
}

impl MfaChallenge {
    /// The `ChallengeName` on the wire (and in the store).
    pub fn name(self) -> &'static str {
        match self {
            MfaChallenge::SoftwareToken => "SOFTWARE_TOKEN_MFA",
            MfaChallenge::Setup => "MFA_SETUP",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [MfaChallenge::SoftwareToken, MfaChallenge::Setup]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// A new MFA challenge session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaSessionRow {
    /// SHA-256 of the `Session` string.
    pub session_hash: Vec<u8>,
    pub who: Challenged,
    pub kind: MfaChallenge,
    pub expires_at: i64,
}

/// A live MFA challenge session as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaSessionState {
    pub kind: MfaChallenge,
    /// Wrong answers so far.
    pub failures: i64,
    /// `MFA_SETUP`: a token was verified with this session.
    pub verified: bool,
}

/// TOTP MFA in the store (see the module).
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// The TOTP state of a user; `None` when it never associated a token.
    async fn user_mfa(&self, pool: &str, username: &str) -> Result<Option<MfaRow>, StoreError>;
    /// Replaces the user's pending (unverified) secret, keeping a verified one as it is.
    /// [`StoreError::NotFound`] when the user does not exist.
    async fn put_pending_totp(
        &self,
        pool: &str,
        username: &str,
        sealed: &[u8],
        now: i64,
    ) -> Result<(), StoreError>;
    /// Makes the pending secret the verified one (replacing an earlier one), if it is still
    /// `pending`: `last_step` becomes `step` (the new secret's first spent step); `enable` also
    /// sets `enabled` and `preferred`. False (nothing written) otherwise: of parallel
    /// confirmations one wins.
    async fn confirm_totp(
        &self,
        pool: &str,
        username: &str,
        pending: &[u8],
        step: i64,
        enable: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Sets `enabled` and `preferred` of a user with a verified secret; false when it has none.
    async fn set_totp_preference(
        &self,
        pool: &str,
        username: &str,
        enabled: bool,
        preferred: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Forgets the user's token (verified and pending), settings and counts; false when it had
    /// none.
    async fn delete_user_mfa(&self, pool: &str, username: &str) -> Result<bool, StoreError>;
    /// Writes the wrong-code count `next` if the row's version is still `version`; false when
    /// another writer came first.
    async fn swap_totp_lock(
        &self,
        pool: &str,
        username: &str,
        version: i64,
        next: &LockState,
    ) -> Result<bool, StoreError>;
    /// Spends `step` of the verified secret `secret` (sealed, as read) and clears the
    /// wrong-code count, if no step at or after it was spent: of parallel calls with one
    /// step, one gets true.
    async fn spend_totp_step(
        &self,
        pool: &str,
        username: &str,
        secret: &[u8],
        step: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Opens an MFA challenge session; false (nothing written) when `max` live ones are held.
    /// Expired sessions are dropped first (a bounded batch).
    async fn open_mfa_session(
        &self,
        row: &MfaSessionRow,
        max: usize,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// The live session `session_hash`, with whom it was issued to.
    async fn mfa_session(
        &self,
        session_hash: &[u8],
        now: i64,
    ) -> Result<Option<(Challenged, MfaSessionState)>, StoreError>;
    /// Counts a wrong answer of the session; at `max_failures` the session ends. Returns the
    /// count, `None` when the session was gone.
    async fn fail_mfa_session(
        &self,
        session_hash: &[u8],
        max_failures: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Marks an `MFA_SETUP` session verified; false when it is gone.
    async fn verify_mfa_session(&self, session_hash: &[u8]) -> Result<bool, StoreError>;
    /// Ends an MFA session; false when it was already gone (of parallel ends, one gets true).
    async fn end_mfa_session(&self, session_hash: &[u8]) -> Result<bool, StoreError>;
}
