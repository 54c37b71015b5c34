//! Persistence: the [`Store`] trait and its SQLite ([`sql::SqliteStore`]) and PostgreSQL
//! ([`sql::PgStore`]) implementations.
//!
//! Both backends share one set of SQL statements (`$N` placeholders work in both) and one set of
//! row types; only the schema files differ in column types. Times are Unix seconds. The store
//! knows nothing of HTTP, tokens or hashing: it keeps what it is given (password and secret
//! *hashes*, refresh token *hashes*, PKCS#8 keys, sealed by `crate::keys::AtRest` when a
//! key-encryption key is configured). A SQLite database is created readable by its owner only
//! and refused when other users may read or write it (see [`sql::SqliteStore::connect`]).

pub mod directory;
mod file_mode;
pub mod mfa;
mod sql;
pub mod steps;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

pub use crate::lockout::LockState;
use crate::pending::PendingError;
use crate::pending::PendingLimits;
use crate::pending::challenges::Challenged;
use crate::pending::confirmation::{ClientPrefix, CodeEntry};
pub use directory::{GroupRecord, PoolSummary};
pub use mfa::{MfaChallenge, MfaRow, MfaSessionRow, MfaSessionState, MfaStore};
pub use sql::{PgStore, SqliteStore};
pub use steps::{
    AuthCodeRow, ChallengeRow, CodeRedemption, ConfirmationKey, ConfirmationRow, PendingRequestRow,
};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same key exists (the caller's fault, e.g. a duplicate username).
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The row the operation needs does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A stored value could not be read back (corrupt JSON, unknown status).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed or is unreachable (the operator's problem).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A database file can be read or written by other users than its owner.
    #[error("{0}")]
    Permissions(String),
    /// The store URL is not one this build understands.
    #[error("unsupported store url (expected sqlite://FILE, sqlite::memory: or postgres://…)")]
    UnsupportedUrl,
}

/// `UserStatusType` values this provider produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Unconfirmed,
    Confirmed,
    ForceChangePassword,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Unconfirmed => "UNCONFIRMED",
            UserStatus::Confirmed => "CONFIRMED",
            UserStatus::ForceChangePassword => "FORCE_CHANGE_PASSWORD",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "UNCONFIRMED" => UserStatus::Unconfirmed,
            "CONFIRMED" => UserStatus::Confirmed,
            "FORCE_CHANGE_PASSWORD" => UserStatus::ForceChangePassword,
            _ => return None,
        })
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes that must never be printed (private keys, hashes). `Debug` redacts.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(pub Vec<u8>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// One user of a pool.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub pool: String,
    pub username: String,
    /// UUID v4, unique across all pools.
    pub sub: String,
    /// Argon2id PHC string; `None` until a password is set.
    pub password_hash: Option<String>,
    pub status: UserStatus,
    pub enabled: bool,
    /// Attribute name → value, all strings as in Cognito (`email_verified` = `"true"`).
    pub attributes: BTreeMap<String, String>,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
    /// Tokens with `iat` before this time are revoked (GlobalSignOut, disable). 0 = none.
    pub tokens_valid_after: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// SRP salt and verifier of the current password (`USER_SRP_AUTH`); `None` until a
    /// password is set, or for a user whose password predates verifiers and who has not
    /// signed in with it since.
    pub srp: Option<crate::srp::Verifier>,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("pool", &self.pool)
            .field("username", &self.username)
            .field("sub", &self.sub)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("status", &self.status)
            .field("enabled", &self.enabled)
            .field("attributes", &self.attributes)
            .field("failed_attempts", &self.failed_attempts)
            .field("locked_until", &self.locked_until)
            .field("tokens_valid_after", &self.tokens_valid_after)
            .field("srp", &self.srp)
            .finish_non_exhaustive()
    }
}

/// One app client. `client_id` is unique across pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub pool: String,
    /// Keyed hash of the secret (see `crate::secrets`); `None` for public clients.
    pub secret_hash: Option<SecretBytes>,
    pub public: bool,
    pub grants: Vec<String>,
    pub callback_urls: Vec<String>,
    pub logout_urls: Vec<String>,
    pub allowed_scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServerRecord {
    pub pool: String,
    pub identifier: String,
    /// Scope names without the identifier (`read`, not `premium-content/read`).
    pub scopes: Vec<String>,
}

/// A refresh token, known by the SHA-256 of its value only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: SecretBytes,
    pub pool: String,
    pub client_id: String,
    pub username: String,
    pub scopes: Vec<String>,
    pub origin_jti: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
}

/// An RSA signing key of a pool. It is published from `created_at`, signs from `activates_at`
/// until `retired_at`, and is published until `retired_at` + the pool's longest token lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub pool: String,
    pub pkcs8: SecretBytes,
    pub created_at: i64,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
}

/// What a revocation covers (see [`RevocationEventRecord`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokedSubject {
    /// Every token of one session (its `origin_jti`).
    Session { origin_jti: String },
    /// Every token of a user (`sub`) issued before `before` (unix seconds; `i64::MAX` = all).
    User { sub: String, before: i64 },
}

/// One entry of the revocation log. Every revocation (refresh token revoked, global sign-out,
/// user disabled or deleted) appends one, so a gateway sharing the store can close the live
/// connections of revocations another process made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEventRecord {
    /// Assigned by the store on insert (ignored there): increasing, never reused.
    pub id: i64,
    pub pool: String,
    pub subject: RevokedSubject,
    /// The process that wrote the event (random per process), so it can skip its own.
    pub writer: String,
    pub created_at: i64,
}

/// Everything the identity provider persists. Implementations must be safe to share between
/// tasks; every method is one short statement or transaction.
#[async_trait]
pub trait Store: MfaStore + Send + Sync + fmt::Debug {
    /// Creates or upgrades the schema.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// The cheapest round trip to the database (`SELECT 1`), for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The value under `key` in the metadata table, inserting `init` first if there is none
    /// (first writer wins, so concurrent starts agree).
    async fn meta_get_or_init(&self, key: &str, init: &[u8]) -> Result<Vec<u8>, StoreError>;
    /// Sets the value under `key` to `new` if it is still `old`; false when it was not.
    async fn meta_replace(&self, key: &str, old: &[u8], new: &[u8]) -> Result<bool, StoreError>;

    // ---- pools, groups ----
    async fn upsert_pool(&self, name: &str, now: i64) -> Result<(), StoreError>;
    async fn upsert_group(&self, pool: &str, name: &str, now: i64) -> Result<(), StoreError>;
    async fn delete_group(&self, pool: &str, name: &str) -> Result<bool, StoreError>;
    async fn list_groups(&self, pool: &str) -> Result<Vec<String>, StoreError>;

    // ---- users ----
    /// Fails with [`StoreError::Conflict`] when the username or sub exists.
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    async fn get_user(&self, pool: &str, username: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn get_user_by_sub(&self, sub: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Users of a pool ordered by username, at most `limit`, after `after` (paging).
    async fn list_users(
        &self,
        pool: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError>;
    /// Writes every mutable field of an existing user; [`StoreError::NotFound`] if there is none.
    async fn update_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    async fn delete_user(&self, pool: &str, username: &str) -> Result<bool, StoreError>;
    /// Sets the SRP verifier of a user who has none, if the password is still `password_hash`
    /// (the one the verifier was computed from); false when either changed.
    async fn set_srp_verifier(
        &self,
        pool: &str,
        username: &str,
        password_hash: &str,
        verifier: &crate::srp::Verifier,
    ) -> Result<bool, StoreError>;
    /// Compare-and-swap of a user's lockout fields (`failed_attempts`, `locked_until`,
    /// `updated_at`): writes `next` only if the row still holds `expected`. False when the user
    /// changed in between (or is gone); the caller reads it again.
    async fn swap_lock_state(
        &self,
        pool: &str,
        username: &str,
        expected: &LockState,
        next: &LockState,
    ) -> Result<bool, StoreError>;
    /// Clears a user's failure count and lock (a matching password).
    async fn clear_lock_state(
        &self,
        pool: &str,
        username: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// [`StoreError::NotFound`] when the user or the group does not exist.
    async fn add_user_to_group(
        &self,
        pool: &str,
        username: &str,
        group: &str,
    ) -> Result<(), StoreError>;
    async fn remove_user_from_group(
        &self,
        pool: &str,
        username: &str,
        group: &str,
    ) -> Result<bool, StoreError>;
    /// Group names of a user, sorted.
    async fn user_groups(&self, pool: &str, username: &str) -> Result<Vec<String>, StoreError>;

    // ---- clients, resource servers ----
    async fn upsert_client(&self, client: &ClientRecord, now: i64) -> Result<(), StoreError>;
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;
    async fn list_clients(&self, pool: &str) -> Result<Vec<ClientRecord>, StoreError>;
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;
    async fn upsert_resource_server(&self, rs: &ResourceServerRecord) -> Result<(), StoreError>;
    async fn list_resource_servers(
        &self,
        pool: &str,
    ) -> Result<Vec<ResourceServerRecord>, StoreError>;
    async fn delete_resource_server(
        &self,
        pool: &str,
        identifier: &str,
    ) -> Result<bool, StoreError>;

    // ---- refresh tokens ----
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<(), StoreError>;
    async fn get_refresh_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<RefreshTokenRecord>, StoreError>;
    async fn revoke_refresh_token(&self, token_hash: &[u8]) -> Result<bool, StoreError>;
    /// Revokes every refresh token of a user; returns how many changed.
    async fn revoke_user_refresh_tokens(
        &self,
        pool: &str,
        username: &str,
    ) -> Result<u64, StoreError>;
    /// Rotation: revokes the refresh token `old_hash` of `pool`'s `client_id` and inserts
    /// `next` in its place, atomically, if the old token is still live at `now`. False (and
    /// nothing written) when it was already used, revoked, expired or another client's: of two
    /// parallel uses of one token at most one gets true.
    async fn rotate_refresh_token(
        &self,
        old_hash: &[u8],
        client_id: &str,
        now: i64,
        next: &RefreshTokenRecord,
    ) -> Result<bool, StoreError>;
    /// Revokes the refresh tokens of one session (a user's `origin_jti`) that are still live;
    /// returns how many were.
    async fn revoke_live_family(
        &self,
        pool: &str,
        username: &str,
        origin_jti: &str,
    ) -> Result<u64, StoreError>;
    /// Revokes every refresh token of one session (a user's `origin_jti`) and marks the session
    /// revoked until `keep_until`.
    async fn revoke_session_family(
        &self,
        pool: &str,
        username: &str,
        origin_jti: &str,
        now: i64,
        keep_until: i64,
    ) -> Result<(), StoreError>;
    /// Revokes every refresh token of a user and marks each of its sessions (`origin_jti`)
    /// revoked until `keep_until`, except the session `keep` (whose refresh tokens are revoked
    /// all the same). Returns the sessions newly marked.
    async fn revoke_user_sessions(
        &self,
        pool: &str,
        username: &str,
        keep: Option<&str>,
        now: i64,
        keep_until: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// Deletes refresh tokens and revoked sessions that expired before `now`.
    async fn prune_expired(&self, now: i64) -> Result<u64, StoreError>;

    // ---- signing keys ----
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// Keys of a pool ordered by `activates_at`, then `created_at`.
    async fn list_signing_keys(&self, pool: &str) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Every key of every pool (to re-encrypt them at rest).
    async fn all_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Sets a key's stored PKCS#8 to `new` if it is still `old`; false when it was not.
    async fn replace_signing_key_pkcs8(
        &self,
        kid: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError>;
    /// Sets `retired_at` of every key of the pool that has none (used by rotation).
    async fn retire_signing_keys(&self, pool: &str, at: i64) -> Result<u64, StoreError>;
    /// Deletes keys retired before `before`.
    async fn delete_signing_keys_retired_before(
        &self,
        pool: &str,
        before: i64,
    ) -> Result<u64, StoreError>;

    /// Rewrites the database so that replaced or deleted values no longer linger in its files
    /// (SQLite: `VACUUM` and a truncating WAL checkpoint; PostgreSQL keeps old row versions
    /// out of reach of queries and does nothing here).
    async fn compact(&self) -> Result<(), StoreError>;

    // ---- revoked sessions ----
    /// Records that every token with this `origin_jti` is revoked (kept until `expires_at`).
    async fn revoke_session(
        &self,
        pool: &str,
        origin_jti: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    async fn is_session_revoked(&self, origin_jti: &str) -> Result<bool, StoreError>;

    // ---- revocation events ----
    /// Appends an event and returns its id.
    async fn insert_revocation_event(
        &self,
        event: &RevocationEventRecord,
    ) -> Result<i64, StoreError>;
    /// Events with an id above `after`, in id order, at most `limit`.
    async fn revocation_events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RevocationEventRecord>, StoreError>;
    /// The highest event id present (0 when there is none).
    async fn last_revocation_event_id(&self) -> Result<i64, StoreError>;
    /// Deletes events created before `before`; returns how many.
    async fn prune_revocation_events(&self, before: i64) -> Result<u64, StoreError>;

    // ---- sign-in steps (rules in `crate::pending`, rows in [`steps`]) ----
    /// Adds a pending sign-in request (replacing one with the same id) under `limits`: an
    /// expired request makes room first; a known holder at its cap is refused
    /// ([`PendingError::ClientFull`]); a full pool or table evicts the oldest request of the
    /// holder with the most. Returns how many were evicted.
    async fn insert_pending_request(
        &self,
        row: &PendingRequestRow,
        limits: &PendingLimits,
        now: i64,
    ) -> Result<Result<usize, PendingError>, StoreError>;
    /// The body of the live pending request `id_hash` of `pool`.
    async fn pending_request(
        &self,
        id_hash: &[u8],
        pool: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Replaces the body of the live pending request `id_hash` of `pool`; false when gone.
    async fn update_pending_request(
        &self,
        id_hash: &[u8],
        pool: &str,
        body: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Removes the pending request `id_hash` of `pool` and returns its body if it was live.
    /// Of parallel takes at most one gets it.
    async fn take_pending_request(
        &self,
        id_hash: &[u8],
        pool: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Pending requests held (live or not yet pruned).
    async fn count_pending_requests(&self) -> Result<u64, StoreError>;
    /// Issues an authorization code; false (nothing written) when `max` codes are held even
    /// after the expired ones were dropped.
    async fn issue_authorization_code(
        &self,
        row: &AuthCodeRow,
        max: usize,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Redeems the code `code_hash` for `pool`'s `client_id` (see [`CodeRedemption`]).
    async fn redeem_authorization_code(
        &self,
        code_hash: &[u8],
        pool: &str,
        client_id: &str,
        now: i64,
    ) -> Result<CodeRedemption, StoreError>;
    /// Records what redeeming the code issued (to take back on a replay); false when the code
    /// is gone or was replayed meanwhile (the caller takes back what it issued).
    async fn record_code_issued(&self, code_hash: &[u8], issued: &[u8])
    -> Result<bool, StoreError>;
    /// Opens a challenge session; false (nothing written) when `max` live sessions are held.
    async fn open_challenge_session(
        &self,
        row: &ChallengeRow,
        max: usize,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Whether the session `session_hash` is live at `now` and was issued to `who`.
    async fn challenge_session_live(
        &self,
        session_hash: &[u8],
        who: &Challenged,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Ends a challenge session; false when it was already gone.
    async fn end_challenge_session(&self, session_hash: &[u8]) -> Result<bool, StoreError>;
    /// The confirmation entry of `key`, with its version.
    async fn confirmation_entry(
        &self,
        key: ConfirmationKey<'_>,
    ) -> Result<Option<ConfirmationRow>, StoreError>;
    /// Writes the entry of `key` if its version is still `version` (`None`: if there is no
    /// entry yet), marking it the pool's most recently used; false when another writer came
    /// first (the caller reads it again). `dead_from`: when the entry carries nothing.
    async fn put_confirmation_entry(
        &self,
        key: ConfirmationKey<'_>,
        entry: &CodeEntry,
        dead_from: i64,
        version: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Live codes of the pool issued to `origin`, except `key`'s own.
    async fn client_live_codes(
        &self,
        key: ConfirmationKey<'_>,
        origin: ClientPrefix,
        now: i64,
    ) -> Result<u64, StoreError>;
    /// Makes room for one more entry of `pool` when it holds `max`: drops entries that carry
    /// nothing, then the least recently used one without wrong guesses or a lock (their
    /// window: `window_secs`), then the least recently used one. Returns how many went.
    async fn make_room_for_confirmation(
        &self,
        pool: &str,
        max: usize,
        window_secs: i64,
        now: i64,
    ) -> Result<u64, StoreError>;
    /// The failure count of the unknown user name `name_hash` (SHA-256) of `pool`, with its
    /// version.
    async fn unknown_name_state(
        &self,
        pool: &str,
        name_hash: &[u8],
    ) -> Result<Option<(LockState, i64)>, StoreError>;
    /// Writes the failure count of an unknown name if its version is still `version` (`None`:
    /// if there is none yet; a pool holding `max` names then forgets the least recently
    /// changed first); false when another writer came first. `expires_at`: when it is
    /// forgotten.
    async fn put_unknown_name_state(
        &self,
        pool: &str,
        name_hash: &[u8],
        state: &LockState,
        expires_at: i64,
        version: Option<i64>,
        max: usize,
    ) -> Result<bool, StoreError>;
    /// Deletes at most [`steps::PRUNE_BATCH`] expired rows of each sign-in step table.
    async fn prune_sign_in_steps(&self, now: i64) -> Result<u64, StoreError>;

    // ---- groups with their details, pool summaries (the Cognito Admin API) ----
    /// Inserts a group; false when the pool has one of that name already.
    async fn create_group(&self, group: &GroupRecord) -> Result<bool, StoreError>;
    /// A pool's groups with their details, by name.
    async fn group_records(&self, pool: &str) -> Result<Vec<GroupRecord>, StoreError>;
    /// Members of a group ordered by username, at most `limit`, after `after` (paging).
    async fn group_members(
        &self,
        pool: &str,
        group: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError>;
    /// When a pool was first stored and how many users it holds; `None` for an unknown pool.
    async fn pool_summary(&self, pool: &str) -> Result<Option<PoolSummary>, StoreError>;
}

/// Whether a `[store].url` names an in-memory SQLite database (nothing at rest).
pub fn is_in_memory(url: &str) -> bool {
    url.starts_with("sqlite:") && (url.contains(":memory:") || url.contains("mode=memory"))
}

/// Opens the store named by a `[store].url` (no migration).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}
