//! TOTP MFA in SQL ([`crate::store::MfaStore`]): users' sealed secrets and settings
//! (`user_mfa`) and MFA challenge sessions (`mfa_sessions`). One statement set for SQLite and
//! PostgreSQL, stamped out per pool type by `sql_mfa!` (inside `sql_store!`).
//!
//! Atomicity: spending a time step is one `UPDATE … WHERE last_step < $step`, a wrong-code count
//! a compare-and-swap on `version`, a session's end one `DELETE`; opening a session checks the
//! cap in a transaction under the advisory lock of [`LOCK_MFA_SESSIONS`] (PostgreSQL), as the
//! other challenge sessions do.

/// Advisory lock number of `mfa_sessions` inserts (next to those of `steps.rs`).
pub(super) const LOCK_MFA_SESSIONS: i32 = 6;

macro_rules! sql_mfa {
    ($name:ident, $row:ty) => {
        #[async_trait]
        impl crate::store::MfaStore for $name {
            async fn user_mfa(
                &self,
                pool: &str,
                username: &str,
            ) -> Result<Option<crate::store::MfaRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT secret, pending_secret, enabled, preferred, last_step, failures, \
                     locked_until, changed_at, version FROM user_mfa \
                     WHERE pool = $1 AND username = $2",
                )
                .bind(pool)
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                Ok(Some(crate::store::MfaRow {
                    secret: row.try_get("secret")?,
                    pending_secret: row.try_get("pending_secret")?,
                    enabled: row.try_get("enabled")?,
                    preferred: row.try_get("preferred")?,
                    last_step: row.try_get("last_step")?,
                    lock: LockState {
                        failures: row.try_get("failures")?,
                        locked_until: row.try_get("locked_until")?,
                        changed_at: row.try_get("changed_at")?,
                    },
                    version: row.try_get("version")?,
                }))
            }

            async fn put_pending_totp(
                &self,
                pool: &str,
                username: &str,
                sealed: &[u8],
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO user_mfa (pool, username, pending_secret, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (pool, username) \
                     DO UPDATE SET pending_secret = $3, updated_at = $4",
                )
                .bind(pool)
                .bind(username)
                .bind(sealed)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(|e| map_insert_error(e, "user"))?;
                Ok(())
            }

            async fn confirm_totp(
                &self,
                pool: &str,
                username: &str,
                pending: &[u8],
                step: i64,
                enable: bool,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE user_mfa SET secret = pending_secret, pending_secret = NULL, \
                     last_step = $4, enabled = (enabled OR $5), preferred = (preferred OR $5), \
                     failures = 0, locked_until = NULL, version = version + 1, updated_at = $6 \
                     WHERE pool = $1 AND username = $2 AND pending_secret = $3",
                )
                .bind(pool)
                .bind(username)
                .bind(pending)
                .bind(step)
                .bind(enable)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_totp_preference(
                &self,
                pool: &str,
                username: &str,
                enabled: bool,
                preferred: bool,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE user_mfa SET enabled = $3, preferred = $4, updated_at = $5 \
                     WHERE pool = $1 AND username = $2 AND secret IS NOT NULL",
                )
                .bind(pool)
                .bind(username)
                .bind(enabled)
                .bind(preferred)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_user_mfa(
                &self,
                pool: &str,
                username: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM user_mfa WHERE pool = $1 AND username = $2")
                    .bind(pool)
                    .bind(username)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn swap_totp_lock(
                &self,
                pool: &str,
                username: &str,
                version: i64,
                next: &LockState,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE user_mfa SET failures = $3, locked_until = $4, changed_at = $5, \
                     version = version + 1 WHERE pool = $1 AND username = $2 AND version = $6",
                )
                .bind(pool)
                .bind(username)
                .bind(next.failures)
                .bind(next.locked_until)
                .bind(next.changed_at)
                .bind(version)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn spend_totp_step(
                &self,
                pool: &str,
                username: &str,
                secret: &[u8],
                step: i64,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE user_mfa SET last_step = $4, failures = 0, locked_until = NULL, \
                     changed_at = $5, version = version + 1 \
                     WHERE pool = $1 AND username = $2 AND secret = $3 AND last_step < $4",
                )
                .bind(pool)
                .bind(username)
                .bind(secret)
                .bind(step)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn open_mfa_session(
                &self,
                row: &crate::store::MfaSessionRow,
                max: usize,
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                Self::lock_steps(&mut *tx, mfa::LOCK_MFA_SESSIONS).await?;
                sqlx::query(
                    "DELETE FROM mfa_sessions WHERE seq IN (SELECT seq FROM mfa_sessions \
                     WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
                )
                .bind(now)
                .bind(i64::from(super::steps::PRUNE_BATCH))
                .execute(&mut *tx)
                .await?;
                let held = Self::count_on(
                    &mut *tx,
                    sqlx::query("SELECT COUNT(*) AS n FROM mfa_sessions WHERE expires_at > $1")
                        .bind(now),
                )
                .await?;
                if held >= max as u64 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO mfa_sessions (session_hash, pool, client_id, username, kind, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(row.session_hash.as_slice())
                .bind(&row.who.pool)
                .bind(&row.who.client_id)
                .bind(&row.who.username)
                .bind(row.kind.name())
                .bind(row.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_insert_error(e, "MFA session"))?;
                tx.commit().await?;
                Ok(true)
            }

            async fn mfa_session(
                &self,
                session_hash: &[u8],
                now: i64,
            ) -> Result<Option<(Challenged, crate::store::MfaSessionState)>, StoreError> {
                let row = sqlx::query(
                    "SELECT pool, client_id, username, kind, failures, verified FROM mfa_sessions \
                     WHERE session_hash = $1 AND expires_at > $2",
                )
                .bind(session_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let kind: String = row.try_get("kind")?;
                let who = Challenged {
                    pool: row.try_get("pool")?,
                    client_id: row.try_get("client_id")?,
                    username: row.try_get("username")?,
                };
                let state = crate::store::MfaSessionState {
                    kind: crate::store::MfaChallenge::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("MFA session kind {kind:?}")))?,
                    failures: row.try_get("failures")?,
                    verified: row.try_get("verified")?,
                };
                Ok(Some((who, state)))
            }

            async fn fail_mfa_session(
                &self,
                session_hash: &[u8],
                max_failures: i64,
            ) -> Result<Option<i64>, StoreError> {
                let row = sqlx::query(
                    "UPDATE mfa_sessions SET failures = failures + 1 WHERE session_hash = $1 \
                     RETURNING failures",
                )
                .bind(session_hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let failures: i64 = row.try_get("failures")?;
                if failures >= max_failures {
                    sqlx::query("DELETE FROM mfa_sessions WHERE session_hash = $1")
                        .bind(session_hash)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(Some(failures))
            }

            async fn verify_mfa_session(&self, session_hash: &[u8]) -> Result<bool, StoreError> {
                let done =
                    sqlx::query("UPDATE mfa_sessions SET verified = TRUE WHERE session_hash = $1")
                        .bind(session_hash)
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn end_mfa_session(&self, session_hash: &[u8]) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM mfa_sessions WHERE session_hash = $1")
                    .bind(session_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
