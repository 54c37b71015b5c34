//! Sign-in steps in SQL: pending sign-in requests, authorization codes, challenge sessions and
//! confirmation codes (rows in [`crate::store::steps`], rules in [`crate::pending`]). One
//! statement set for SQLite and PostgreSQL, stamped out per pool type by `sql_steps!`.
//!
//! Atomicity: a redemption, a take or an end is one conditional statement (`UPDATE … WHERE NOT
//! used`, `DELETE … RETURNING`), so of two nodes racing exactly one wins. Inserts that check a
//! cap run in a transaction whose first statement writes (SQLite takes its write lock there,
//! before anything is read) after `$lock` (PostgreSQL: a transaction-scoped advisory lock per
//! table, so two nodes cannot both see room for one more). Confirmation entries are written by
//! compare-and-swap on their `version`.

/// Advisory lock numbers of the tables whose inserts check a cap.
pub(super) const LOCK_PENDING: i32 = 1;
pub(super) const LOCK_CODES: i32 = 2;
pub(super) const LOCK_CHALLENGES: i32 = 3;

/// Deletes a bounded batch of a table's expired rows (`$1` = now, `$2` = batch).
macro_rules! prune_sql {
    ($table:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE seq IN (SELECT seq FROM ",
            $table,
            " WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)"
        )
    };
}

macro_rules! sql_steps {
    ($name:ident, $row:ty, $lock:expr) => {
        impl $name {
            /// Serialises the capped inserts of one table across processes (PostgreSQL).
            async fn lock_steps<'c, E>(executor: E, table: i32) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'c, Database = <$row as sqlx::Row>::Database>,
            {
                let lock: Option<&'static str> = $lock;
                if let Some(lock) = lock {
                    sqlx::query(lock).bind(table).execute(executor).await?;
                }
                Ok(())
            }

            async fn insert_pending_request(
                &self,
                row: &PendingRequestRow,
                limits: &PendingLimits,
                now: i64,
            ) -> Result<Result<usize, PendingError>, StoreError> {
                let limits = limits.sane();
                let holder = row.holder.as_deref().unwrap_or("");
                let mut tx = self.pool.begin().await?;
                Self::lock_steps(&mut *tx, steps::LOCK_PENDING).await?;
                sqlx::query("DELETE FROM pending_requests WHERE id_hash = $1")
                    .bind(row.id_hash.as_slice())
                    .execute(&mut *tx)
                    .await?;
                Self::prune_table_on(&mut *tx, "pending_requests", now).await?;
                if row.holder.is_some() {
                    let held = Self::count_on(
                        &mut *tx,
                        sqlx::query(
                            "SELECT COUNT(*) AS n FROM pending_requests \
                             WHERE pool = $1 AND holder = $2 AND expires_at > $3",
                        )
                        .bind(&row.pool)
                        .bind(holder)
                        .bind(now),
                    )
                    .await?;
                    if held >= limits.per_client as u64 {
                        tx.rollback().await?;
                        return Ok(Err(PendingError::ClientFull));
                    }
                }
                let mut evicted = 0;
                for pool in [Some(row.pool.as_str()), None] {
                    let cap = if pool.is_some() { limits.per_pool } else { limits.total };
                    while evicted <= cap {
                        let live = Self::count_on(
                            &mut *tx,
                            sqlx::query(
                                "SELECT COUNT(*) AS n FROM pending_requests \
                                 WHERE expires_at > $1 AND ($2 IS NULL OR pool = $2)",
                            )
                            .bind(now)
                            .bind(pool),
                        )
                        .await?;
                        if live < cap as u64 {
                            break;
                        }
                        // the oldest request of the holder with the most (in the pool, or
                        // anywhere)
                        let done = sqlx::query(
                            "DELETE FROM pending_requests WHERE seq = (\
                             SELECT MIN(p.seq) FROM pending_requests p, (\
                               SELECT pool, holder FROM pending_requests \
                               WHERE expires_at > $1 AND ($2 IS NULL OR pool = $2) \
                               GROUP BY pool, holder ORDER BY COUNT(*) DESC, MIN(seq) LIMIT 1\
                             ) h WHERE p.pool = h.pool AND p.holder = h.holder \
                             AND p.expires_at > $1)",
                        )
                        .bind(now)
                        .bind(pool)
                        .execute(&mut *tx)
                        .await?;
                        if done.rows_affected() == 0 {
                            break;
                        }
                        evicted += 1;
                    }
                }
                sqlx::query(
                    "INSERT INTO pending_requests (id_hash, pool, holder, body, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(row.id_hash.as_slice())
                .bind(&row.pool)
                .bind(holder)
                .bind(&row.body)
                .bind(row.expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(evicted))
            }

            async fn pending_request(
                &self,
                id_hash: &[u8],
                pool: &str,
                now: i64,
            ) -> Result<Option<String>, StoreError> {
                let row = sqlx::query(
                    "SELECT body FROM pending_requests \
                     WHERE id_hash = $1 AND pool = $2 AND expires_at > $3",
                )
                .bind(id_hash)
                .bind(pool)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.try_get("body").map_err(StoreError::from))
                    .transpose()
            }

            async fn update_pending_request(
                &self,
                id_hash: &[u8],
                pool: &str,
                body: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE pending_requests SET body = $4 \
                     WHERE id_hash = $1 AND pool = $2 AND expires_at > $3",
                )
                .bind(id_hash)
                .bind(pool)
                .bind(now)
                .bind(body)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn take_pending_request(
                &self,
                id_hash: &[u8],
                pool: &str,
                now: i64,
            ) -> Result<Option<String>, StoreError> {
                let row = sqlx::query(
                    "DELETE FROM pending_requests WHERE id_hash = $1 AND pool = $2 \
                     RETURNING body, expires_at",
                )
                .bind(id_hash)
                .bind(pool)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let expires_at: i64 = row.try_get("expires_at")?;
                if expires_at <= now {
                    return Ok(None);
                }
                Ok(Some(row.try_get("body")?))
            }

            async fn count_pending_requests(&self) -> Result<u64, StoreError> {
                Self::count_on(
                    &self.pool,
                    sqlx::query("SELECT COUNT(*) AS n FROM pending_requests"),
                )
                .await
            }

            async fn issue_authorization_code(
                &self,
                row: &AuthCodeRow,
                max: usize,
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                Self::lock_steps(&mut *tx, steps::LOCK_CODES).await?;
                Self::prune_table_on(&mut *tx, "authorization_codes", now).await?;
                let held = Self::count_on(
                    &mut *tx,
                    sqlx::query(
                        "SELECT COUNT(*) AS n FROM authorization_codes WHERE expires_at > $1",
                    )
                    .bind(now),
                )
                .await?;
                if held >= max.max(1) as u64 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO authorization_codes (code_hash, pool, client_id, body, \
                     expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(row.code_hash.as_slice())
                .bind(&row.pool)
                .bind(&row.client_id)
                .bind(&row.body)
                .bind(row.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_insert_error(e, "authorization code"))?;
                tx.commit().await?;
                Ok(true)
            }

            async fn redeem_authorization_code(
                &self,
                code_hash: &[u8],
                pool: &str,
                client_id: &str,
                now: i64,
            ) -> Result<CodeRedemption, StoreError> {
                // the first use: one conditional statement, so one of parallel uses wins
                let fresh = sqlx::query(
                    "UPDATE authorization_codes SET used = TRUE WHERE code_hash = $1 \
                     AND pool = $2 AND client_id = $3 AND expires_at > $4 AND NOT used \
                     RETURNING body",
                )
                .bind(code_hash)
                .bind(pool)
                .bind(client_id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = fresh {
                    return Ok(CodeRedemption::Fresh(row.try_get("body")?));
                }
                let row = sqlx::query(
                    "SELECT pool, client_id, expires_at FROM authorization_codes \
                     WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(CodeRedemption::Unknown);
                };
                let (owner_pool, owner): (String, String) =
                    (row.try_get("pool")?, row.try_get("client_id")?);
                if owner_pool != pool || owner != client_id {
                    return Ok(CodeRedemption::Unknown);
                }
                let expires_at: i64 = row.try_get("expires_at")?;
                if expires_at <= now {
                    sqlx::query("DELETE FROM authorization_codes WHERE code_hash = $1")
                        .bind(code_hash)
                        .execute(&self.pool)
                        .await?;
                    return Ok(CodeRedemption::Expired);
                }
                // used: the first replay takes what the first use issued
                let replay = sqlx::query(
                    "UPDATE authorization_codes SET replayed = TRUE \
                     WHERE code_hash = $1 AND used AND NOT replayed RETURNING issued",
                )
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
                let issued = match replay {
                    Some(r) => r.try_get::<Option<Vec<u8>>, _>("issued")?,
                    None => None,
                };
                Ok(CodeRedemption::Replayed(issued))
            }

            async fn record_code_issued(
                &self,
                code_hash: &[u8],
                issued: &[u8],
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE authorization_codes SET issued = $2 \
                     WHERE code_hash = $1 AND NOT replayed",
                )
                .bind(code_hash)
                .bind(issued)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn open_challenge_session(
                &self,
                row: &ChallengeRow,
                max: usize,
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                Self::lock_steps(&mut *tx, steps::LOCK_CHALLENGES).await?;
                Self::prune_table_on(&mut *tx, "challenge_sessions", now).await?;
                let held = Self::count_on(
                    &mut *tx,
                    sqlx::query(
                        "SELECT COUNT(*) AS n FROM challenge_sessions WHERE expires_at > $1",
                    )
                    .bind(now),
                )
                .await?;
                if held >= max as u64 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO challenge_sessions (session_hash, pool, client_id, username, \
                     expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(row.session_hash.as_slice())
                .bind(&row.who.pool)
                .bind(&row.who.client_id)
                .bind(&row.who.username)
                .bind(row.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_insert_error(e, "challenge session"))?;
                tx.commit().await?;
                Ok(true)
            }

            async fn challenge_session_live(
                &self,
                session_hash: &[u8],
                who: &Challenged,
                now: i64,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(
                    "SELECT 1 AS one FROM challenge_sessions WHERE session_hash = $1 \
                     AND pool = $2 AND client_id = $3 AND username = $4 AND expires_at > $5",
                )
                .bind(session_hash)
                .bind(&who.pool)
                .bind(&who.client_id)
                .bind(&who.username)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.is_some())
            }

            async fn end_challenge_session(&self, session_hash: &[u8]) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM challenge_sessions WHERE session_hash = $1")
                    .bind(session_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn confirmation_entry(
                &self,
                key: ConfirmationKey<'_>,
            ) -> Result<Option<ConfirmationRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT mac, code_expires_at, attempts, origin, issued_count, issued_since, \
                     failures_count, failures_since, locked_until, version \
                     FROM confirmation_codes WHERE pool = $1 AND username = $2 AND purpose = $3",
                )
                .bind(key.pool)
                .bind(key.username)
                .bind(key.purpose)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(confirmation_from_row).transpose()
            }

            async fn put_confirmation_entry(
                &self,
                key: ConfirmationKey<'_>,
                entry: &CodeEntry,
                dead_from: i64,
                version: Option<i64>,
            ) -> Result<bool, StoreError> {
                let code = entry.code.as_ref();
                let sql = if version.is_some() {
                    "UPDATE confirmation_codes SET mac = $4, code_expires_at = $5, \
                     attempts = $6, origin = $7, issued_count = $8, issued_since = $9, \
                     failures_count = $10, failures_since = $11, locked_until = $12, \
                     expires_at = $13, version = version + 1, touched = (\
                     SELECT COALESCE(MAX(touched), 0) + 1 FROM confirmation_codes WHERE pool = $1) \
                     WHERE pool = $1 AND username = $2 AND purpose = $3 AND version = $14"
                } else {
                    "INSERT INTO confirmation_codes (pool, username, purpose, mac, \
                     code_expires_at, attempts, origin, issued_count, issued_since, \
                     failures_count, failures_since, locked_until, expires_at, version, touched) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, (\
                     SELECT COALESCE(MAX(touched), 0) + 1 FROM confirmation_codes WHERE pool = $1)) \
                     ON CONFLICT (pool, username, purpose) DO NOTHING"
                };
                let done = sqlx::query(sql)
                    .bind(key.pool)
                    .bind(key.username)
                    .bind(key.purpose)
                    .bind(code.map(|c| c.mac.as_slice()))
                    .bind(code.map_or(0, |c| c.expires_at))
                    .bind(code.map_or(0, |c| i64::from(c.attempts)))
                    .bind(code.and_then(|c| c.origin).map(|o| o.to_string()))
                    .bind(i64::from(entry.issued.count))
                    .bind(entry.issued.since)
                    .bind(i64::from(entry.failures.count))
                    .bind(entry.failures.since)
                    .bind(entry.locked_until)
                    .bind(dead_from)
                    .bind(version.unwrap_or(1))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn client_live_codes(
                &self,
                key: ConfirmationKey<'_>,
                origin: ClientPrefix,
                now: i64,
            ) -> Result<u64, StoreError> {
                Self::count_on(
                    &self.pool,
                    sqlx::query(
                        "SELECT COUNT(*) AS n FROM confirmation_codes WHERE pool = $1 \
                         AND origin = $2 AND mac IS NOT NULL AND code_expires_at > $3 \
                         AND NOT (username = $4 AND purpose = $5)",
                    )
                    .bind(key.pool)
                    .bind(origin.to_string())
                    .bind(now)
                    .bind(key.username)
                    .bind(key.purpose),
                )
                .await
            }

            async fn make_room_for_confirmation(
                &self,
                pool: &str,
                max: usize,
                window_secs: i64,
                now: i64,
            ) -> Result<u64, StoreError> {
                let max = max.max(1) as u64;
                let count = |pool: &str| {
                    Self::count_on(
                        &self.pool,
                        sqlx::query("SELECT COUNT(*) AS n FROM confirmation_codes WHERE pool = $1")
                            .bind(pool.to_owned()),
                    )
                };
                if count(pool).await? < max {
                    return Ok(0);
                }
                let mut gone = sqlx::query(
                    "DELETE FROM confirmation_codes WHERE seq IN (SELECT seq FROM \
                     confirmation_codes WHERE pool = $1 AND expires_at <= $2 LIMIT $3)",
                )
                .bind(pool)
                .bind(now)
                .bind(i64::from(super::steps::PRUNE_BATCH))
                .execute(&self.pool)
                .await?
                .rows_affected();
                while count(pool).await? >= max {
                    let done = sqlx::query(
                        "DELETE FROM confirmation_codes WHERE seq = (SELECT seq FROM \
                         confirmation_codes WHERE pool = $1 ORDER BY CASE WHEN locked_until > $2 \
                         OR (failures_count > 0 AND failures_since + $3 > $2) THEN 1 ELSE 0 END, \
                         touched LIMIT 1)",
                    )
                    .bind(pool)
                    .bind(now)
                    .bind(window_secs)
                    .execute(&self.pool)
                    .await?;
                    if done.rows_affected() == 0 {
                        break;
                    }
                    gone += done.rows_affected();
                }
                Ok(gone)
            }

            async fn unknown_name_state(
                &self,
                pool: &str,
                name_hash: &[u8],
            ) -> Result<Option<(LockState, i64)>, StoreError> {
                let row = sqlx::query(
                    "SELECT failures, locked_until, changed_at, version \
                     FROM unknown_name_lockouts WHERE pool = $1 AND name_hash = $2",
                )
                .bind(pool)
                .bind(name_hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let state = LockState {
                    failures: row.try_get("failures")?,
                    locked_until: row.try_get("locked_until")?,
                    changed_at: row.try_get("changed_at")?,
                };
                Ok(Some((state, row.try_get("version")?)))
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
                let sql = match version {
                    Some(_) => {
                        "UPDATE unknown_name_lockouts SET failures = $3, locked_until = $4, \
                         changed_at = $5, expires_at = $6, version = version + 1 \
                         WHERE pool = $1 AND name_hash = $2 AND version = $7"
                    }
                    None => {
                        let max = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
                        // forget the least recently changed names of a full pool
                        for _ in 0..16 {
                            let held = Self::count_on(
                                &self.pool,
                                sqlx::query(
                                    "SELECT COUNT(*) AS n FROM unknown_name_lockouts \
                                     WHERE pool = $1",
                                )
                                .bind(pool),
                            )
                            .await?;
                            if i64::try_from(held).unwrap_or(i64::MAX) < max {
                                break;
                            }
                            sqlx::query(
                                "DELETE FROM unknown_name_lockouts WHERE seq = (SELECT seq \
                                 FROM unknown_name_lockouts WHERE pool = $1 \
                                 ORDER BY changed_at, seq LIMIT 1)",
                            )
                            .bind(pool)
                            .execute(&self.pool)
                            .await?;
                        }
                        "INSERT INTO unknown_name_lockouts (pool, name_hash, failures, \
                         locked_until, changed_at, expires_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (pool, name_hash) DO NOTHING"
                    }
                };
                let done = sqlx::query(sql)
                    .bind(pool)
                    .bind(name_hash)
                    .bind(state.failures)
                    .bind(state.locked_until)
                    .bind(state.changed_at)
                    .bind(expires_at)
                    .bind(version.unwrap_or(1))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn prune_sign_in_steps(&self, now: i64) -> Result<u64, StoreError> {
                let mut gone = 0;
                for table in [
                    "pending_requests",
                    "authorization_codes",
                    "challenge_sessions",
                    "confirmation_codes",
                    "unknown_name_lockouts",
                ] {
                    gone += Self::prune_table_on(&self.pool, table, now).await?;
                }
                Ok(gone)
            }

            /// Deletes at most [`super::steps::PRUNE_BATCH`] rows of `table` expired at `now`.
            async fn prune_table_on<'c, E>(
                executor: E,
                table: &'static str,
                now: i64,
            ) -> Result<u64, StoreError>
            where
                E: sqlx::Executor<'c, Database = <$row as sqlx::Row>::Database>,
            {
                let sql = match table {
                    "pending_requests" => prune_sql!("pending_requests"),
                    "authorization_codes" => prune_sql!("authorization_codes"),
                    "challenge_sessions" => prune_sql!("challenge_sessions"),
                    "unknown_name_lockouts" => prune_sql!("unknown_name_lockouts"),
                    _ => prune_sql!("confirmation_codes"),
                };
                let done = sqlx::query(sql)
                    .bind(now)
                    .bind(i64::from(super::steps::PRUNE_BATCH))
                    .execute(executor)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn count_on<'c, 'q, E>(
                executor: E,
                query: sqlx::query::Query<
                    'q,
                    <$row as sqlx::Row>::Database,
                    <<$row as sqlx::Row>::Database as sqlx::Database>::Arguments,
                >,
            ) -> Result<u64, StoreError>
            where
                E: sqlx::Executor<'c, Database = <$row as sqlx::Row>::Database>,
            {
                let row = query.fetch_one(executor).await?;
                let n: i64 = row.try_get("n")?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
        }
    };
}
