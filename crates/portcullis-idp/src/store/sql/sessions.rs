//! Sessions and keys in SQL: refresh tokens and their rotation families, signing keys, revoked
//! sessions and the revocation log. One statement set for SQLite and PostgreSQL, stamped out
//! per pool type by `sql_sessions!` (see the parent module).

macro_rules! sql_sessions {
    ($name:ident, $row:ty) => {
        impl $name {
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
