//! Rows the Cognito Admin API reads beyond users: groups with Cognito's details
//! (`GroupType`) and a pool's summary (`DescribeUserPool`).

/// A group of a pool. Groups declared in the configuration file are stored by name only (their
/// details `None`); groups created with `CreateGroup` carry what it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub pool: String,
    pub name: String,
    pub description: Option<String>,
    /// Non-negative; lower wins (Cognito's `Precedence`).
    pub precedence: Option<i64>,
    pub role_arn: Option<String>,
    pub created_at: i64,
    /// `None` for rows written before the details existed: `created_at` then.
    pub updated_at: Option<i64>,
}

/// What `DescribeUserPool` tells of a pool beyond its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSummary {
    /// When the pool was first stored (`None` for pools stored before this was recorded).
    pub created_at: Option<i64>,
    /// When the configuration was last applied to the store.
    pub updated_at: i64,
    pub users: u64,
}
