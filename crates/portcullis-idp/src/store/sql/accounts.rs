//! Accounts in SQL: migrations, store metadata, pools, groups, users and their lockout state,
//! app clients and resource servers. One statement set for SQLite and PostgreSQL, stamped out
//! per pool type by `sql_accounts!` (see the parent module).

macro_rules! sql_accounts {
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
                let srp_salt: Option<Vec<u8>> = row.try_get("srp_salt")?;
                let srp_verifier: Option<Vec<u8>> = row.try_get("srp_verifier")?;
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
                    srp: match (srp_salt, srp_verifier) {
                        (Some(salt), Some(verifier)) => Some(Verifier { salt, verifier }),
                        _ => None,
                    },
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


        impl $name {
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
                    "INSERT INTO pools (name, updated_at, created_at) VALUES ($1, $2, $2) \
                     ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at, \
                     created_at = COALESCE(pools.created_at, excluded.created_at)",
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
                     updated_at, srp_salt, srp_verifier) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
                .bind(user.srp.as_ref().map(|v| v.salt.as_slice()))
                .bind(user.srp.as_ref().map(|v| v.verifier.as_slice()))
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
                     tokens_valid_after = $9, updated_at = $10, srp_salt = $11, \
                     srp_verifier = $12 WHERE pool = $1 AND username = $2",
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
                .bind(user.srp.as_ref().map(|v| v.salt.as_slice()))
                .bind(user.srp.as_ref().map(|v| v.verifier.as_slice()))
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound("user"));
                }
                Ok(())
            }

            async fn set_srp_verifier(
                &self,
                pool: &str,
                username: &str,
                password_hash: &str,
                verifier: &Verifier,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE users SET srp_salt = $3, srp_verifier = $4 \
                     WHERE pool = $1 AND username = $2 AND password_hash = $5 \
                     AND srp_verifier IS NULL",
                )
                .bind(pool)
                .bind(username)
                .bind(verifier.salt.as_slice())
                .bind(verifier.verifier.as_slice())
                .bind(password_hash)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
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

        }
    };
}
