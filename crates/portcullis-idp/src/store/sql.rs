//! The SQL implementations of [`Store`]. One statement set serves both databases (`$N`
//! placeholders, `ON CONFLICT`, `RETURNING` work in SQLite ≥ 3.35 and PostgreSQL); the
//! `sql_store!` macro stamps it out for each pool type so both stay identical.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{
    ClientRecord, LockState, RefreshTokenRecord, ResourceServerRecord, RevocationEventRecord,
    RevokedSubject, SecretBytes, SigningKeyRecord, Store, StoreError, UserRecord, UserStatus,
};

/// Embedded migrations, applied in order; a number is never reused.
const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_revocation_events.sql"),
    ),
];
const PG_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_revocation_events.sql"),
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
             failed_attempts, locked_until, tokens_valid_after, created_at, updated_at \
             FROM users ",
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

macro_rules! sql_store {
    ($name:ident, $row:ty, $migrations:expr, $lock:expr) => {
        impl $name {
            /// Inserts a refresh token on the pool or inside a transaction.
            async fn insert_refresh_token_on<'e, E>(
                executor: E,
                t: &RefreshTokenRecord,
            ) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
            {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, pool, client_id, username, scopes, \
                     origin_jti, auth_time, created_at, expires_at, revoked) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(t.token_hash.0.as_slice())
                .bind(&t.pool)
                .bind(&t.client_id)
                .bind(&t.username)
                .bind(json_list(&t.scopes))
                .bind(&t.origin_jti)
                .bind(t.auth_time)
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.revoked)
                .execute(executor)
                .await
                .map_err(|e| map_insert_error(e, "refresh token, client or user"))?;
                Ok(())
            }

            fn user_from_row(row: &$row) -> Result<UserRecord, StoreError> {
                let status: String = row.try_get("status")?;
                let attributes: String = row.try_get("attributes")?;
                Ok(UserRecord {
                    pool: row.try_get("pool")?,
                    username: row.try_get("username")?,
                    sub: row.try_get("sub")?,
                    password_hash: row.try_get("password_hash")?,
                    status: UserStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("user status {status:?}")))?,
                    enabled: row.try_get("enabled")?,
                    attributes: parse_map(&attributes)?,
                    failed_attempts: row.try_get("failed_attempts")?,
                    locked_until: row.try_get("locked_until")?,
                    tokens_valid_after: row.try_get("tokens_valid_after")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn client_from_row(row: &$row) -> Result<ClientRecord, StoreError> {
                let secret: Option<Vec<u8>> = row.try_get("secret_hash")?;
                Ok(ClientRecord {
                    client_id: row.try_get("client_id")?,
                    pool: row.try_get("pool")?,
                    secret_hash: secret.map(SecretBytes),
                    public: row.try_get("public")?,
                    grants: parse_list(&row.try_get::<String, _>("grants")?)?,
                    callback_urls: parse_list(&row.try_get::<String, _>("callback_urls")?)?,
                    logout_urls: parse_list(&row.try_get::<String, _>("logout_urls")?)?,
                    allowed_scopes: parse_list(&row.try_get::<String, _>("allowed_scopes")?)?,
                })
            }

            fn signing_key_from_row(row: &$row) -> Result<SigningKeyRecord, StoreError> {
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid")?,
                    pool: row.try_get("pool")?,
                    pkcs8: SecretBytes(row.try_get("pkcs8")?),
                    created_at: row.try_get("created_at")?,
                    activates_at: row.try_get("activates_at")?,
                    retired_at: row.try_get("retired_at")?,
                })
            }

            fn refresh_from_row(row: &$row) -> Result<RefreshTokenRecord, StoreError> {
                Ok(RefreshTokenRecord {
                    token_hash: SecretBytes(row.try_get("token_hash")?),
                    pool: row.try_get("pool")?,
                    client_id: row.try_get("client_id")?,
                    username: row.try_get("username")?,
                    scopes: parse_list(&row.try_get::<String, _>("scopes")?)?,
                    origin_jti: row.try_get("origin_jti")?,
                    auth_time: row.try_get("auth_time")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    revoked: row.try_get("revoked")?,
                })
            }
        }

        #[async_trait]
        impl Store for $name {
            async fn migrate(&self) -> Result<(), StoreError> {
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS portcullis_migrations \
                     (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                )
                .execute(&self.pool)
                .await?;
                for (version, script) in $migrations {
                    let mut tx = self.pool.begin().await?;
                    let lock: Option<&'static str> = $lock;
                    if let Some(lock) = lock {
                        sqlx::query(lock).execute(&mut *tx).await?;
                    }
                    let applied = sqlx::query(
                        "SELECT version FROM portcullis_migrations WHERE version = $1",
                    )
                    .bind(*version)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if applied.is_some() {
                        continue;
                    }
                    sqlx::raw_sql(*script).execute(&mut *tx).await?;
                    sqlx::query(
                        "INSERT INTO portcullis_migrations (version, applied_at) VALUES ($1, $2)",
                    )
                    .bind(*version)
                    .bind(crate::unix_now())
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    tracing::info!(version, "identity store migrated");
                }
                Ok(())
            }

            async fn meta_get_or_init(
                &self,
                key: &str,
                init: &[u8],
            ) -> Result<Vec<u8>, StoreError> {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(init)
                .execute(&self.pool)
                .await?;
                let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.try_get("value")?)
            }

            async fn meta_replace(
                &self,
                key: &str,
                old: &[u8],
                new: &[u8],
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE meta SET value = $3 WHERE key = $1 AND value = $2")
                    .bind(key)
                    .bind(old)
                    .bind(new)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn upsert_pool(&self, name: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO pools (name, updated_at) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
                )
                .bind(name)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn upsert_group(&self, pool: &str, name: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO groups (pool, name, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (pool, name) DO NOTHING",
                )
                .bind(pool)
                .bind(name)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(|e| map_insert_error(e, "pool"))?;
                Ok(())
            }

            async fn delete_group(&self, pool: &str, name: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM groups WHERE pool = $1 AND name = $2")
                    .bind(pool)
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_groups(&self, pool: &str) -> Result<Vec<String>, StoreError> {
                let rows = sqlx::query("SELECT name FROM groups WHERE pool = $1 ORDER BY name")
                    .bind(pool)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| r.try_get("name").map_err(StoreError::from))
                    .collect()
            }

            async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO users (pool, username, sub, password_hash, status, enabled, \
                     attributes, failed_attempts, locked_until, tokens_valid_after, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&user.pool)
                .bind(&user.username)
                .bind(&user.sub)
                .bind(&user.password_hash)
                .bind(user.status.as_str())
                .bind(user.enabled)
                .bind(serde_json::to_string(&user.attributes).unwrap_or_else(|_| "{}".into()))
                .bind(user.failed_attempts)
                .bind(user.locked_until)
                .bind(user.tokens_valid_after)
                .bind(user.created_at)
                .bind(user.updated_at)
                .execute(&self.pool)
                .await
                .map_err(|e| map_insert_error(e, "user"))?;
                Ok(())
            }

            async fn get_user(
                &self,
                pool: &str,
                username: &str,
            ) -> Result<Option<UserRecord>, StoreError> {
                let row = sqlx::query(user_select!("WHERE pool = $1 AND username = $2"))
                    .bind(pool)
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::user_from_row).transpose()
            }

            async fn get_user_by_sub(&self, sub: &str) -> Result<Option<UserRecord>, StoreError> {
                let row = sqlx::query(user_select!("WHERE sub = $1"))
                    .bind(sub)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::user_from_row).transpose()
            }

            async fn list_users(
                &self,
                pool: &str,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<UserRecord>, StoreError> {
                let rows = sqlx::query(user_select!(
                    "WHERE pool = $1 AND username > $2 ORDER BY username LIMIT $3"
                ))
                .bind(pool)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::user_from_row).collect()
            }

            async fn update_user(&self, user: &UserRecord) -> Result<(), StoreError> {
                let done = sqlx::query(
                    "UPDATE users SET password_hash = $3, status = $4, enabled = $5, \
                     attributes = $6, failed_attempts = $7, locked_until = $8, \
                     tokens_valid_after = $9, updated_at = $10 \
                     WHERE pool = $1 AND username = $2",
                )
                .bind(&user.pool)
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(user.status.as_str())
                .bind(user.enabled)
                .bind(serde_json::to_string(&user.attributes).unwrap_or_else(|_| "{}".into()))
                .bind(user.failed_attempts)
                .bind(user.locked_until)
                .bind(user.tokens_valid_after)
                .bind(user.updated_at)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound("user"));
                }
                Ok(())
            }

            async fn swap_lock_state(
                &self,
                pool: &str,
                username: &str,
                expected: &LockState,
                next: &LockState,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE users SET failed_attempts = $3, locked_until = $4, updated_at = $5 \
                     WHERE pool = $1 AND username = $2 AND failed_attempts = $6 \
                     AND COALESCE(locked_until, -1) = $7 AND updated_at = $8",
                )
                .bind(pool)
                .bind(username)
                .bind(next.failures)
                .bind(next.locked_until)
                .bind(next.changed_at)
                .bind(expected.failures)
                .bind(expected.locked_until.unwrap_or(-1))
                .bind(expected.changed_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn clear_lock_state(
                &self,
                pool: &str,
                username: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE users SET failed_attempts = 0, locked_until = NULL, updated_at = $3 \
                     WHERE pool = $1 AND username = $2",
                )
                .bind(pool)
                .bind(username)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_user(&self, pool: &str, username: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM users WHERE pool = $1 AND username = $2")
                    .bind(pool)
                    .bind(username)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn add_user_to_group(
                &self,
                pool: &str,
                username: &str,
                group: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO user_groups (pool, username, group_name) VALUES ($1, $2, $3) \
                     ON CONFLICT (pool, username, group_name) DO NOTHING",
                )
                .bind(pool)
                .bind(username)
                .bind(group)
                .execute(&self.pool)
                .await
                .map_err(|e| map_insert_error(e, "user or group"))?;
                Ok(())
            }

            async fn remove_user_from_group(
                &self,
                pool: &str,
                username: &str,
                group: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM user_groups WHERE pool = $1 AND username = $2 AND group_name = $3",
                )
                .bind(pool)
                .bind(username)
                .bind(group)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn user_groups(
                &self,
                pool: &str,
                username: &str,
            ) -> Result<Vec<String>, StoreError> {
                let rows = sqlx::query(
                    "SELECT group_name FROM user_groups WHERE pool = $1 AND username = $2 \
                     ORDER BY group_name",
                )
                .bind(pool)
                .bind(username)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| r.try_get("group_name").map_err(StoreError::from))
                    .collect()
            }

            async fn upsert_client(&self, c: &ClientRecord, now: i64) -> Result<(), StoreError> {
                // A client id moving to another pool is refused by the WHERE clause and
                // reported as a conflict: ids are unique across pools.
                let done = sqlx::query(
                    "INSERT INTO clients (client_id, pool, secret_hash, public, grants, \
                     callback_urls, logout_urls, allowed_scopes, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash, \
                     public = excluded.public, grants = excluded.grants, \
                     callback_urls = excluded.callback_urls, logout_urls = excluded.logout_urls, \
                     allowed_scopes = excluded.allowed_scopes, updated_at = excluded.updated_at \
                     WHERE clients.pool = excluded.pool",
                )
                .bind(&c.client_id)
                .bind(&c.pool)
                .bind(c.secret_hash.as_ref().map(|s| s.0.as_slice()))
                .bind(c.public)
                .bind(json_list(&c.grants))
                .bind(json_list(&c.callback_urls))
                .bind(json_list(&c.logout_urls))
                .bind(json_list(&c.allowed_scopes))
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(|e| map_insert_error(e, "pool"))?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict("client id used by another pool"));
                }
                Ok(())
            }

            async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
                let row = sqlx::query(client_select!("WHERE client_id = $1"))
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::client_from_row).transpose()
            }

            async fn list_clients(&self, pool: &str) -> Result<Vec<ClientRecord>, StoreError> {
                let rows = sqlx::query(client_select!("WHERE pool = $1 ORDER BY client_id"))
                    .bind(pool)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::client_from_row).collect()
            }

            async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn upsert_resource_server(
                &self,
                rs: &ResourceServerRecord,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO resource_servers (pool, identifier, scopes) VALUES ($1, $2, $3) \
                     ON CONFLICT (pool, identifier) DO UPDATE SET scopes = excluded.scopes",
                )
                .bind(&rs.pool)
                .bind(&rs.identifier)
                .bind(json_list(&rs.scopes))
                .execute(&self.pool)
                .await
                .map_err(|e| map_insert_error(e, "pool"))?;
                Ok(())
            }

            async fn list_resource_servers(
                &self,
                pool: &str,
            ) -> Result<Vec<ResourceServerRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT pool, identifier, scopes FROM resource_servers WHERE pool = $1 \
                     ORDER BY identifier",
                )
                .bind(pool)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(ResourceServerRecord {
                            pool: r.try_get("pool")?,
                            identifier: r.try_get("identifier")?,
                            scopes: parse_list(&r.try_get::<String, _>("scopes")?)?,
                        })
                    })
                    .collect()
            }

            async fn delete_resource_server(
                &self,
                pool: &str,
                identifier: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM resource_servers WHERE pool = $1 AND identifier = $2",
                )
                .bind(pool)
                .bind(identifier)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn insert_refresh_token(&self, t: &RefreshTokenRecord) -> Result<(), StoreError> {
                Self::insert_refresh_token_on(&self.pool, t).await
            }

            async fn get_refresh_token(
                &self,
                token_hash: &[u8],
            ) -> Result<Option<RefreshTokenRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT token_hash, pool, client_id, username, scopes, origin_jti, auth_time, \
                     created_at, expires_at, revoked FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::refresh_from_row).transpose()
            }

            async fn revoke_refresh_token(&self, token_hash: &[u8]) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE refresh_tokens SET revoked = TRUE WHERE token_hash = $1 AND NOT revoked",
                )
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn revoke_user_refresh_tokens(
                &self,
                pool: &str,
                username: &str,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE refresh_tokens SET revoked = TRUE \
                     WHERE pool = $1 AND username = $2 AND NOT revoked",
                )
                .bind(pool)
                .bind(username)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn rotate_refresh_token(
                &self,
                old_hash: &[u8],
                client_id: &str,
                now: i64,
                next: &RefreshTokenRecord,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(
                    "UPDATE refresh_tokens SET revoked = TRUE WHERE token_hash = $1 \
                     AND pool = $2 AND client_id = $3 AND username = $4 AND origin_jti = $5 \
                     AND NOT revoked AND expires_at > $6",
                )
                .bind(old_hash)
                .bind(&next.pool)
                .bind(client_id)
                .bind(&next.username)
                .bind(&next.origin_jti)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_refresh_token_on(&mut *tx, next).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn revoke_live_family(
                &self,
                pool: &str,
                username: &str,
                origin_jti: &str,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE refresh_tokens SET revoked = TRUE \
                     WHERE pool = $1 AND username = $2 AND origin_jti = $3 AND NOT revoked",
                )
                .bind(pool)
                .bind(username)
                .bind(origin_jti)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn revoke_session_family(
                &self,
                pool: &str,
                username: &str,
                origin_jti: &str,
                now: i64,
                keep_until: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked = TRUE \
                     WHERE pool = $1 AND username = $2 AND origin_jti = $3 AND NOT revoked",
                )
                .bind(pool)
                .bind(username)
                .bind(origin_jti)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO revoked_sessions (origin_jti, pool, revoked_at, expires_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (origin_jti) DO NOTHING",
                )
                .bind(origin_jti)
                .bind(pool)
                .bind(now)
                .bind(keep_until)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn revoke_user_sessions(
                &self,
                pool: &str,
                username: &str,
                keep: Option<&str>,
                now: i64,
                keep_until: i64,
            ) -> Result<Vec<String>, StoreError> {
                let mut tx = self.pool.begin().await?;
                // The sessions first (their tokens are still listed), then the tokens.
                let rows = sqlx::query(
                    "INSERT INTO revoked_sessions (origin_jti, pool, revoked_at, expires_at) \
                     SELECT DISTINCT origin_jti, pool, $4, $5 FROM refresh_tokens \
                     WHERE pool = $1 AND username = $2 AND origin_jti <> $3 \
                     ON CONFLICT (origin_jti) DO NOTHING RETURNING origin_jti",
                )
                .bind(pool)
                .bind(username)
                .bind(keep.unwrap_or(""))
                .bind(now)
                .bind(keep_until)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked = TRUE \
                     WHERE pool = $1 AND username = $2 AND NOT revoked",
                )
                .bind(pool)
                .bind(username)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.iter()
                    .map(|r| r.try_get("origin_jti").map_err(StoreError::from))
                    .collect()
            }

            async fn prune_expired(&self, now: i64) -> Result<u64, StoreError> {
                let a = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                let b = sqlx::query("DELETE FROM revoked_sessions WHERE expires_at < $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(a.rows_affected() + b.rows_affected())
            }

            async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, pool, pkcs8, created_at, activates_at, \
                     retired_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&k.kid)
                .bind(&k.pool)
                .bind(k.pkcs8.0.as_slice())
                .bind(k.created_at)
                .bind(k.activates_at)
                .bind(k.retired_at)
                .execute(&self.pool)
                .await
                .map_err(|e| map_insert_error(e, "signing key"))?;
                Ok(())
            }

            async fn list_signing_keys(
                &self,
                pool: &str,
            ) -> Result<Vec<SigningKeyRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT kid, pool, pkcs8, created_at, activates_at, retired_at \
                     FROM signing_keys WHERE pool = $1 ORDER BY activates_at, created_at, kid",
                )
                .bind(pool)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::signing_key_from_row).collect()
            }

            async fn all_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT kid, pool, pkcs8, created_at, activates_at, retired_at \
                     FROM signing_keys ORDER BY pool, activates_at, created_at, kid",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::signing_key_from_row).collect()
            }

            async fn replace_signing_key_pkcs8(
                &self,
                kid: &str,
                old: &[u8],
                new: &[u8],
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE signing_keys SET pkcs8 = $3 WHERE kid = $1 AND pkcs8 = $2",
                )
                .bind(kid)
                .bind(old)
                .bind(new)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn compact(&self) -> Result<(), StoreError> {
                self.compact_files().await
            }

            async fn retire_signing_keys(&self, pool: &str, at: i64) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE signing_keys SET retired_at = $2 WHERE pool = $1 AND retired_at IS NULL",
                )
                .bind(pool)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn delete_signing_keys_retired_before(
                &self,
                pool: &str,
                before: i64,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM signing_keys WHERE pool = $1 AND retired_at IS NOT NULL \
                     AND retired_at < $2",
                )
                .bind(pool)
                .bind(before)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn revoke_session(
                &self,
                pool: &str,
                origin_jti: &str,
                now: i64,
                expires_at: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO revoked_sessions (origin_jti, pool, revoked_at, expires_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (origin_jti) DO NOTHING",
                )
                .bind(origin_jti)
                .bind(pool)
                .bind(now)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn is_session_revoked(&self, origin_jti: &str) -> Result<bool, StoreError> {
                let row = sqlx::query("SELECT 1 AS one FROM revoked_sessions WHERE origin_jti = $1")
                    .bind(origin_jti)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.is_some())
            }

            async fn insert_revocation_event(
                &self,
                e: &RevocationEventRecord,
            ) -> Result<i64, StoreError> {
                let (kind, subject, before) = match &e.subject {
                    RevokedSubject::Session { origin_jti } => ("session", origin_jti, None),
                    RevokedSubject::User { sub, before } => ("user", sub, Some(*before)),
                };
                let row = sqlx::query(
                    "INSERT INTO revocation_events (pool, kind, subject, issued_before, writer, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&e.pool)
                .bind(kind)
                .bind(subject)
                .bind(before)
                .bind(&e.writer)
                .bind(e.created_at)
                .fetch_one(&self.pool)
                .await?;
                Ok(row.try_get("id")?)
            }

            async fn revocation_events_after(
                &self,
                after: i64,
                limit: u32,
            ) -> Result<Vec<RevocationEventRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, pool, kind, subject, issued_before, writer, created_at \
                     FROM revocation_events WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let kind: String = r.try_get("kind")?;
                        let subject: String = r.try_get("subject")?;
                        let before: Option<i64> = r.try_get("issued_before")?;
                        let subject = match (kind.as_str(), before) {
                            ("session", _) => RevokedSubject::Session { origin_jti: subject },
                            ("user", Some(before)) => RevokedSubject::User { sub: subject, before },
                            _ => {
                                return Err(StoreError::Corrupt(format!(
                                    "revocation event kind {kind:?}"
                                )));
                            }
                        };
                        Ok(RevocationEventRecord {
                            id: r.try_get("id")?,
                            pool: r.try_get("pool")?,
                            subject,
                            writer: r.try_get("writer")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn last_revocation_event_id(&self) -> Result<i64, StoreError> {
                let row = sqlx::query("SELECT MAX(id) AS last FROM revocation_events")
                    .fetch_one(&self.pool)
                    .await?;
                let last: Option<i64> = row.try_get("last")?;
                Ok(last.unwrap_or(0))
            }

            async fn prune_revocation_events(&self, before: i64) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM revocation_events WHERE created_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
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
    None
);
sql_store!(
    PgStore,
    sqlx::postgres::PgRow,
    PG_MIGRATIONS,
    // Several nodes may start at once: one migrates, the others wait.
    Some("SELECT pg_advisory_xact_lock(7461726) AS locked")
);
