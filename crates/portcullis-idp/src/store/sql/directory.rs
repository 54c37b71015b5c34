//! Groups with their details and pool summaries in SQL (see [`crate::store::directory`]),
//! stamped out per pool type by `sql_directory!` like the other statement sets.

macro_rules! sql_directory {
    ($name:ident, $row:ty) => {
        impl $name {
            fn group_from_row(row: &$row) -> Result<GroupRecord, StoreError> {
                Ok(GroupRecord {
                    pool: row.try_get("pool")?,
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    precedence: row.try_get("precedence")?,
                    role_arn: row.try_get("role_arn")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            async fn create_group(&self, group: &GroupRecord) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "INSERT INTO groups (pool, name, created_at, description, precedence, \
                     role_arn, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (pool, name) DO NOTHING",
                )
                .bind(&group.pool)
                .bind(&group.name)
                .bind(group.created_at)
                .bind(&group.description)
                .bind(group.precedence)
                .bind(&group.role_arn)
                .bind(group.updated_at)
                .execute(&self.pool)
                .await
                .map_err(|e| map_insert_error(e, "pool"))?;
                Ok(done.rows_affected() > 0)
            }

            async fn group_records(&self, pool: &str) -> Result<Vec<GroupRecord>, StoreError> {
                let rows = sqlx::query(
                    "SELECT pool, name, description, precedence, role_arn, created_at, \
                     updated_at FROM groups WHERE pool = $1 ORDER BY name",
                )
                .bind(pool)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::group_from_row).collect()
            }

            async fn group_members(
                &self,
                pool: &str,
                group: &str,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<UserRecord>, StoreError> {
                let rows = sqlx::query(user_select!(
                    "WHERE pool = $1 AND username > $3 AND username IN \
                     (SELECT username FROM user_groups WHERE pool = $1 AND group_name = $2) \
                     ORDER BY username LIMIT $4"
                ))
                .bind(pool)
                .bind(group)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::user_from_row).collect()
            }

            async fn pool_summary(&self, pool: &str) -> Result<Option<PoolSummary>, StoreError> {
                let row = sqlx::query(
                    "SELECT created_at, updated_at, \
                     (SELECT COUNT(*) FROM users WHERE pool = $1) AS users \
                     FROM pools WHERE name = $1",
                )
                .bind(pool)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let users: i64 = row.try_get("users")?;
                Ok(Some(PoolSummary {
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                    users: u64::try_from(users).unwrap_or(0),
                }))
            }
        }
    };
}
