//! `[identity_pools.NAME]` and `[roles.NAME]`: Cognito-style identity pools that exchange
//! user-pool tokens for temporary credentials, and the IAM roles (policies) those carry.

use std::time::Duration;

use indexmap::IndexMap;
use portcullis_core::policy::PolicyDocument;

/// `[identity_pools.NAME]`: exchanges built-in pool tokens (or nothing, for guests) for
/// temporary credentials of a role.
#[derive(Debug, Clone)]
pub struct IdentityPool {
    pub name: String,
    /// `IdentityPoolId` clients send: `id` if set, else `{management.region}:{name}`.
    pub id: String,
    /// Built-in pools (`[pools.NAME]`) whose tokens are accepted as `Logins`, in file order.
    pub user_pools: Vec<String>,
    /// Callers without `Logins` get credentials of `roles.unauthenticated`.
    pub allow_unauthenticated: bool,
    /// Lifetime of the temporary credentials. Default 1 h (AWS), 15 min to 12 h.
    pub credentials_ttl: Duration,
    pub roles: IdentityPoolRoles,
    /// Requests per second per client IP on the pool's Cognito Identity operations (burst:
    /// twice as many); 0 = no limit. Default 200, as the user pools'.
    pub rate_limit_per_ip: u32,
}

impl IdentityPool {
    pub const DEFAULT_RATE_LIMIT_PER_IP: u32 = 200;
    pub const DEFAULT_CREDENTIALS_TTL: Duration = Duration::from_secs(3600);
    pub const MIN_CREDENTIALS_TTL: Duration = Duration::from_secs(900);
    pub const MAX_CREDENTIALS_TTL: Duration = Duration::from_secs(12 * 3600);
}

/// `roles = { authenticated, unauthenticated, by_group }` of an identity pool; every name is
/// a declared `[roles.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityPoolRoles {
    /// Role of signed-in users that no `by_group` entry matches.
    pub authenticated: Option<String>,
    /// Role of guests; set whenever `allow_unauthenticated` is.
    pub unauthenticated: Option<String>,
    /// Group (`cognito:groups`) → role, in file order (the tie-break when a user is in several
    /// mapped groups without a precedence).
    pub by_group: IndexMap<String, String>,
}

/// `[roles.NAME]`: an IAM role, i.e. a policy that temporary credentials carry.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    /// `arn:aws:iam::{management.account_id}:role/{name}`.
    pub arn: String,
    /// The policy as written (for rendering).
    pub policy_json: serde_json::Value,
    /// The policy, parsed.
    pub policy: PolicyDocument,
}
