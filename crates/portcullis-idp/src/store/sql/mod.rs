//! The SQL implementations of [`Store`]. One statement set serves both databases (`$N`
//! placeholders, `ON CONFLICT`, `RETURNING` work in SQLite ≥ 3.35 and PostgreSQL); the
//! `sql_store!` macro stamps it out for each pool type so both stay identical: accounts in
//! [`accounts`], sessions and keys in [`sessions`], sign-in steps in [`steps`], and the `Store`
//! trait over them here.

#[macro_use]
mod accounts;
#[macro_use]
mod directory;
#[macro_use]
mod sessions;
#[macro_use]
mod steps;
#[macro_use]
mod mfa;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{
    AuthCodeRow, ChallengeRow, ClientPrefix, ClientRecord, CodeEntry, CodeRedemption,
    ConfirmationKey, ConfirmationRow, GroupRecord, LockState, PendingError, PendingLimits,
    PendingRequestRow, PoolSummary, RefreshTokenRecord, ResourceServerRecord,
    RevocationEventRecord, RevokedSubject, SecretBytes, SigningKeyRecord, Store, StoreError,
    UserRecord, UserStatus,
};
use crate::pending::challenges::Challenged;
use crate::pending::confirmation::{PendingCode, Window};
use crate::srp::Verifier;

/// Embedded migrations, applied in order; a number is never reused.
const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../../migrations/sqlite/0002_revocation_events.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_sign_in_steps.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/sqlite/0004_srp_verifiers.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/sqlite/0005_admin_api.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/sqlite/0006_totp_mfa.sql"),
    ),
];
const PG_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/0002_revocation_events.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/0003_sign_in_steps.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/0004_srp_verifiers.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/postgres/0005_admin_api.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/postgres/0006_totp_mfa.sql"),
    ),
];

/// How long a SQLite writer waits for the lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per pool (2-core machines; SQLite has one writer anyway).
const SQLITE_MAX_CONNECTIONS: u32 = 4;
const PG_MAX_CONNECTIONS: u32 = 8;

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("list column: {e}")))
}

fn parse_map(text: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("attributes column: {e}")))
}

fn map_insert_error(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound(what),
        _ => StoreError::Database(e),
    }
}

macro_rules! user_select {
    ($tail:literal) => {
        concat!(
            "SELECT pool, username, sub, password_hash, status, enabled, attributes, \
             failed_attempts, locked_until, tokens_valid_after, created_at, updated_at, \
             srp_salt, srp_verifier FROM users ",
            $tail
        )
    };
}

macro_rules! client_select {
    ($tail:literal) => {
        concat!(
            "SELECT client_id, pool, secret_hash, public, grants, callback_urls, logout_urls, \
             allowed_scopes FROM clients ",
            $tail
        )
    };
}

/// A confirmation entry read back (see `sql_steps!`).
fn confirmation_from_row<R: Row>(row: &R) -> Result<ConfirmationRow, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let small = |column: &str| -> Result<u32, StoreError> {
        let n: i64 = row.try_get(column)?;
        u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{column}: {n}")))
    };
    let mac: Option<Vec<u8>> = row.try_get("mac")?;
    let origin: Option<String> = row.try_get("origin")?;
    let origin = origin
        .map(|o| {
            o.parse::<ClientPrefix>()
                .map_err(|_| StoreError::Corrupt(format!("code origin {o:?}")))
        })
        .transpose()?;
    let code = match mac {
        Some(mac) => Some(PendingCode {
            mac,
            expires_at: row.try_get("code_expires_at")?,
            attempts: small("attempts")?,
            origin,
        }),
        None => None,
    };
    Ok(ConfirmationRow {
        entry: CodeEntry {
            code,
            issued: Window {
                count: small("issued_count")?,
                since: row.try_get("issued_since")?,
            },
            failures: Window {
                count: small("failures_count")?,
                since: row.try_get("failures_since")?,
            },
            locked_until: row.try_get("locked_until")?,
        },
        version: row.try_get("version")?,
    })
}

macro_rules! sql_store {
    ($name:ident, $row:ty, $migrations:expr, $lock:expr, $steps_lock:expr) => {
        sql_accounts!($name, $row, $migrations, $lock);
        sql_sessions!($name, $row);
        sql_steps!($name, $row, $steps_lock);
        sql_directory!($name, $row);
        sql_mfa!($name, $row);

        // Each method calls the inherent method of the same name (inherent methods win over
        // trait methods in `Type::method` paths), written once per statement set in
        // `accounts.rs` and `sessions.rs`.
        #[async_trait]
        impl Store for $name {
            async fn migrate(&self) -> Result<(), StoreError> {
                $name::migrate(self).await
            }
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
            async fn meta_get_or_init(
                &self,
                key: &str,
                init: &[u8],
            ) -> Result<Vec<u8>, StoreError> {
                $name::meta_get_or_init(self, key, init).await
            }
            async fn meta_replace(
                &self,
                key: &str,
                old: &[u8],
                new: &[u8],
            ) -> Result<bool, StoreError> {
                $name::meta_replace(self, key, old, new).await
            }
            async fn upsert_pool(&self, name: &str, now: i64) -> Result<(), StoreError> {
                $name::upsert_pool(self, name, now).await
            }
            async fn upsert_group(
                &self,
                pool: &str,
                name: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                $name::upsert_group(self, pool, name, now).await
            }
            async fn delete_group(&self, pool: &str, name: &str) -> Result<bool, StoreError> {
                $name::delete_group(self, pool, name).await
            }
            async fn list_groups(&self, pool: &str) -> Result<Vec<String>, StoreError> {
                $name::list_groups(self, pool).await
            }
            async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
                $name::create_user(self, user).await
            }
            async fn get_user(
                &self,
                pool: &str,
                username: &str,
            ) -> Result<Option<UserRecord>, StoreError> {
                $name::get_user(self, pool, username).await
            }
            async fn get_user_by_sub(&self, sub: &str) -> Result<Option<UserRecord>, StoreError> {
                $name::get_user_by_sub(self, sub).await
            }
            async fn list_users(
                &self,
                pool: &str,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<UserRecord>, StoreError> {
                $name::list_users(self, pool, after, limit).await
            }
            async fn update_user(&self, user: &UserRecord) -> Result<(), StoreError> {
                $name::update_user(self, user).await
            }
            async fn set_srp_verifier(
                &self,
                pool: &str,
                username: &str,
                password_hash: &str,
                verifier: &Verifier,
            ) -> Result<bool, StoreError> {
                $name::set_srp_verifier(self, pool, username, password_hash, verifier).await
            }
            async fn swap_lock_state(
                &self,
                pool: &str,
                username: &str,
                expected: &LockState,
                next: &LockState,
            ) -> Result<bool, StoreError> {
                $name::swap_lock_state(self, pool, username, expected, next).await
            }
            async fn clear_lock_state(
                &self,
                pool: &str,
                username: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                $name::clear_lock_state(self, pool, username, now).await
            }
            async fn delete_user(&self, pool: &str, username: &str) -> Result<bool, StoreError> {
                $name::delete_user(self, pool, username).await
            }
            async fn add_user_to_group(
                &self,
                pool: &str,
                username: &str,
                group: &str,
            ) -> Result<(), StoreError> {
                $name::add_user_to_group(self, pool, username, group).await
            }
            async fn remove_user_from_group(
                &self,
                pool: &str,
                username: &str,
                group: &str,
            ) -> Result<bool, StoreError> {
                $name::remove_user_from_group(self, pool, username, group).await
            }
            async fn user_groups(
                &self,
                pool: &str,
                username: &str,
            ) -> Result<Vec<String>, StoreError> {
                $name::user_groups(self, pool, username).await
            }
            async fn upsert_client(&self, c: &ClientRecord, now: i64) -> Result<(), StoreError> {
                $name::upsert_client(self, c, now).await
            }
            async fn get_client(
                &self,
                client_id: &str,
            ) -> Result<Option<ClientRecord>, StoreError> {
                $name::get_client(self, client_id).await
            }
            async fn list_clients(&self, pool: &str) -> Result<Vec<ClientRecord>, StoreError> {
                $name::list_clients(self, pool).await
            }
            async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
                $name::delete_client(self, client_id).await
            }
            async fn upsert_resource_server(
                &self,
                rs: &ResourceServerRecord,
            ) -> Result<(), StoreError> {
                $name::upsert_resource_server(self, rs).await
            }
            async fn list_resource_servers(
                &self,
                pool: &str,
            ) -> Result<Vec<ResourceServerRecord>, StoreError> {
                $name::list_resource_servers(self, pool).await
            }
            async fn delete_resource_server(
                &self,
                pool: &str,
                identifier: &str,
            ) -> Result<bool, StoreError> {
                $name::delete_resource_server(self, pool, identifier).await
            }
            async fn insert_refresh_token(&self, t: &RefreshTokenRecord) -> Result<(), StoreError> {
                $name::insert_refresh_token(self, t).await
            }
            async fn get_refresh_token(
                &self,
                token_hash: &[u8],
            ) -> Result<Option<RefreshTokenRecord>, StoreError> {
                $name::get_refresh_token(self, token_hash).await
            }
            async fn revoke_refresh_token(&self, token_hash: &[u8]) -> Result<bool, StoreError> {
                $name::revoke_refresh_token(self, token_hash).await
            }
            async fn revoke_user_refresh_tokens(
                &self,
                pool: &str,
                username: &str,
            ) -> Result<u64, StoreError> {
                $name::revoke_user_refresh_tokens(self, pool, username).await
            }
            async fn rotate_refresh_token(
                &self,
                old_hash: &[u8],
                client_id: &str,
                now: i64,
                next: &RefreshTokenRecord,
            ) -> Result<bool, StoreError> {
                $name::rotate_refresh_token(self, old_hash, client_id, now, next).await
            }
            async fn revoke_live_family(
                &self,
                pool: &str,
                username: &str,
                origin_jti: &str,
            ) -> Result<u64, StoreError> {
                $name::revoke_live_family(self, pool, username, origin_jti).await
            }
            async fn revoke_session_family(
                &self,
                pool: &str,
                username: &str,
                origin_jti: &str,
                now: i64,
                keep_until: i64,
            ) -> Result<(), StoreError> {
                $name::revoke_session_family(self, pool, username, origin_jti, now, keep_until)
                    .await
            }
            async fn revoke_user_sessions(
                &self,
                pool: &str,
                username: &str,
                keep: Option<&str>,
                now: i64,
                keep_until: i64,
            ) -> Result<Vec<String>, StoreError> {
                $name::revoke_user_sessions(self, pool, username, keep, now, keep_until).await
            }
            async fn prune_expired(&self, now: i64) -> Result<u64, StoreError> {
                $name::prune_expired(self, now).await
            }
            async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
                $name::insert_signing_key(self, k).await
            }
            async fn list_signing_keys(
                &self,
                pool: &str,
            ) -> Result<Vec<SigningKeyRecord>, StoreError> {
                $name::list_signing_keys(self, pool).await
            }
            async fn all_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                $name::all_signing_keys(self).await
            }
            async fn replace_signing_key_pkcs8(
                &self,
                kid: &str,
                old: &[u8],
                new: &[u8],
            ) -> Result<bool, StoreError> {
                $name::replace_signing_key_pkcs8(self, kid, old, new).await
            }
            async fn compact(&self) -> Result<(), StoreError> {
                $name::compact(self).await
            }
            async fn retire_signing_keys(&self, pool: &str, at: i64) -> Result<u64, StoreError> {
                $name::retire_signing_keys(self, pool, at).await
            }
            async fn delete_signing_keys_retired_before(
                &self,
                pool: &str,
                before: i64,
            ) -> Result<u64, StoreError> {
                $name::delete_signing_keys_retired_before(self, pool, before).await
            }
            async fn revoke_session(
                &self,
                pool: &str,
                origin_jti: &str,
                now: i64,
                expires_at: i64,
            ) -> Result<(), StoreError> {
                $name::revoke_session(self, pool, origin_jti, now, expires_at).await
            }
            async fn is_session_revoked(&self, origin_jti: &str) -> Result<bool, StoreError> {
                $name::is_session_revoked(self, origin_jti).await
            }
            async fn insert_revocation_event(
                &self,
                e: &RevocationEventRecord,
            ) -> Result<i64, StoreError> {
                $name::insert_revocation_event(self, e).await
            }
            async fn revocation_events_after(
                &self,
                after: i64,
                limit: u32,
            ) -> Result<Vec<RevocationEventRecord>, StoreError> {
                $name::revocation_events_after(self, after, limit).await
            }
            async fn last_revocation_event_id(&self) -> Result<i64, StoreError> {
                $name::last_revocation_event_id(self).await
            }
            async fn prune_revocation_events(&self, before: i64) -> Result<u64, StoreError> {
                $name::prune_revocation_events(self, before).await
            }
            async fn insert_pending_request(
                &self,
                row: &PendingRequestRow,
                limits: &PendingLimits,
                now: i64,
            ) -> Result<Result<usize, PendingError>, StoreError> {
                $name::insert_pending_request(self, row, limits, now).await
            }
            async fn pending_request(
                &self,
                id_hash: &[u8],
                pool: &str,
                now: i64,
            ) -> Result<Option<String>, StoreError> {
                $name::pending_request(self, id_hash, pool, now).await
            }
            async fn update_pending_request(
                &self,
                id_hash: &[u8],
                pool: &str,
                body: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                $name::update_pending_request(self, id_hash, pool, body, now).await
            }
            async fn take_pending_request(
                &self,
                id_hash: &[u8],
                pool: &str,
                now: i64,
            ) -> Result<Option<String>, StoreError> {
                $name::take_pending_request(self, id_hash, pool, now).await
            }
            async fn count_pending_requests(&self) -> Result<u64, StoreError> {
                $name::count_pending_requests(self).await
            }
            async fn issue_authorization_code(
                &self,
                row: &AuthCodeRow,
                max: usize,
                now: i64,
            ) -> Result<bool, StoreError> {
                $name::issue_authorization_code(self, row, max, now).await
            }
            async fn redeem_authorization_code(
                &self,
                code_hash: &[u8],
                pool: &str,
                client_id: &str,
                now: i64,
            ) -> Result<CodeRedemption, StoreError> {
                $name::redeem_authorization_code(self, code_hash, pool, client_id, now).await
            }
            async fn record_code_issued(
                &self,
                code_hash: &[u8],
                issued: &[u8],
            ) -> Result<bool, StoreError> {
                $name::record_code_issued(self, code_hash, issued).await
            }
            async fn open_challenge_session(
                &self,
                row: &ChallengeRow,
                max: usize,
                now: i64,
            ) -> Result<bool, StoreError> {
                $name::open_challenge_session(self, row, max, now).await
            }
            async fn challenge_session_live(
                &self,
                session_hash: &[u8],
                who: &Challenged,
                now: i64,
            ) -> Result<bool, StoreError> {
                $name::challenge_session_live(self, session_hash, who, now).await
            }
            async fn end_challenge_session(&self, session_hash: &[u8]) -> Result<bool, StoreError> {
                $name::end_challenge_session(self, session_hash).await
            }
            async fn confirmation_entry(
                &self,
                key: ConfirmationKey<'_>,
            ) -> Result<Option<ConfirmationRow>, StoreError> {
                $name::confirmation_entry(self, key).await
            }
            async fn put_confirmation_entry(
                &self,
                key: ConfirmationKey<'_>,
                entry: &CodeEntry,
                dead_from: i64,
                version: Option<i64>,
            ) -> Result<bool, StoreError> {
                $name::put_confirmation_entry(self, key, entry, dead_from, version).await
            }
            async fn client_live_codes(
                &self,
                key: ConfirmationKey<'_>,
                origin: ClientPrefix,
                now: i64,
            ) -> Result<u64, StoreError> {
                $name::client_live_codes(self, key, origin, now).await
            }
            async fn make_room_for_confirmation(
                &self,
                pool: &str,
                max: usize,
                window_secs: i64,
                now: i64,
            ) -> Result<u64, StoreError> {
                $name::make_room_for_confirmation(self, pool, max, window_secs, now).await
            }
            async fn unknown_name_state(
                &self,
                pool: &str,
                name_hash: &[u8],
            ) -> Result<Option<(LockState, i64)>, StoreError> {
                $name::unknown_name_state(self, pool, name_hash).await
            }
            async fn put_unknown_name_state(
                &self,
                pool: &str,
                name_hash: &[u8],
                state: &LockState,
                expires_at: i64,
                version: Option<i64>,
                max: usize,
            ) -> Result<bool, StoreError> {
                $name::put_unknown_name_state(
                    self, pool, name_hash, state, expires_at, version, max,
                )
                .await
            }
            async fn prune_sign_in_steps(&self, now: i64) -> Result<u64, StoreError> {
                $name::prune_sign_in_steps(self, now).await
            }
            async fn create_group(&self, group: &GroupRecord) -> Result<bool, StoreError> {
                $name::create_group(self, group).await
            }
            async fn group_records(&self, pool: &str) -> Result<Vec<GroupRecord>, StoreError> {
                $name::group_records(self, pool).await
            }
            async fn group_members(
                &self,
                pool: &str,
                group: &str,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<UserRecord>, StoreError> {
                $name::group_members(self, pool, group, after, limit).await
            }
            async fn pool_summary(&self, pool: &str) -> Result<Option<PoolSummary>, StoreError> {
                $name::pool_summary(self, pool).await
            }
        }
    };
}

/// The SQLite store (default): WAL journal, `busy_timeout`, foreign keys enforced.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Closes every connection and waits until they are closed (the last one checkpoints and
    /// removes the `-wal` file).
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Opens `sqlite://FILE` (created if missing) or `sqlite::memory:` (one connection, so every
    /// query sees the same database).
    ///
    /// The database holds the signing keys and the client-secret pepper, so a missing file is
    /// created readable and writable by its owner only (SQLite gives its `-wal` and `-shm` files
    /// the same mode), and a file, `-wal` or `-shm` that other users may read or write is
    /// refused with [`StoreError::Permissions`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let memory = super::is_in_memory(url);
        let options = SqliteConnectOptions::from_str(url)?;
        if !memory {
            let file = options.get_filename().to_owned();
            tokio::task::spawn_blocking(move || super::file_mode::private_database_file(&file))
                .await
                .map_err(|e| {
                    StoreError::Permissions(format!("checking the database file: {e}"))
                })??;
        }
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let options = if memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        let pool_options = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS)
        };
        Ok(SqliteStore {
            pool: pool_options.connect_with(options).await?,
        })
    }
}

impl SqliteStore {
    async fn compact_files(&self) -> Result<(), StoreError> {
        sqlx::query("VACUUM").execute(&self.pool).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The PostgreSQL store (several gateway nodes sharing one identity database).
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        Ok(PgStore {
            pool: PgPoolOptions::new()
                .max_connections(PG_MAX_CONNECTIONS)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?,
        })
    }
}

impl PgStore {
    async fn compact_files(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

sql_store!(
    SqliteStore,
    sqlx::sqlite::SqliteRow,
    SQLITE_MIGRATIONS,
    None,
    // one writer at a time anyway: the capped inserts start with a write
    None
);
sql_store!(
    PgStore,
    sqlx::postgres::PgRow,
    PG_MIGRATIONS,
    // Several nodes may start at once: one migrates, the others wait.
    Some("SELECT pg_advisory_xact_lock(7461726) AS locked"),
    // Capped inserts of sign-in steps: one node at a time per table.
    Some("SELECT pg_advisory_xact_lock(7461727, $1) AS locked")
);
