//! Which role a signed-in user gets from an identity pool. Pure.
//!
//! In order: a `CustomRoleArn` the caller asked for (only a role the user could get: one of
//! its groups' roles, its `cognito:preferred_role`, or the pool's authenticated role);
//! `cognito:preferred_role` of the token when it names one of the pool's roles; the first
//! `by_group` entry (file order; the built-in pools' groups have no precedence) whose group
//! the user is in; the pool's `authenticated` role.

use indexmap::IndexMap;
use portcullis_config::{IdentityPool, Role};

/// Why no role could be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChoiceError {
    /// `CustomRoleArn` names a role this user may not assume.
    NotAllowed,
    /// The user matches no role (no `authenticated` role and no group of `by_group`).
    NoRole,
}

/// What the role choice looks at, from the user's token and the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoleRequest<'a> {
    /// `cognito:groups`.
    pub groups: &'a [String],
    /// `cognito:preferred_role` (an ARN).
    pub preferred_role: Option<&'a str>,
    /// `CustomRoleArn` of `GetCredentialsForIdentity`.
    pub custom_role_arn: Option<&'a str>,
}

/// The name of the role `request` gets from `pool`.
pub fn choose_role(
    pool: &IdentityPool,
    roles: &IndexMap<String, Role>,
    request: &RoleRequest<'_>,
) -> Result<String, RoleChoiceError> {
    let pool_role_by_arn = |arn: &str| -> Option<&str> {
        let role = roles.values().find(|r| r.arn == arn)?;
        let of_pool = pool.roles.authenticated.as_deref() == Some(role.name.as_str())
            || pool.roles.by_group.values().any(|r| *r == role.name);
        of_pool.then_some(role.name.as_str())
    };
    let preferred = request.preferred_role.and_then(pool_role_by_arn);
    let by_group = pool
        .roles
        .by_group
        .iter()
        .find(|(group, _)| request.groups.contains(group))
        .map(|(_, role)| role.as_str());
    if let Some(arn) = request.custom_role_arn {
        let wanted = roles
            .values()
            .find(|r| r.arn == arn)
            .map(|r| r.name.as_str())
            .ok_or(RoleChoiceError::NotAllowed)?;
        let allowed = preferred == Some(wanted)
            || pool.roles.authenticated.as_deref() == Some(wanted)
            || pool
                .roles
                .by_group
                .iter()
                .any(|(group, role)| role == wanted && request.groups.contains(group));
        return if allowed {
            Ok(wanted.to_owned())
        } else {
            Err(RoleChoiceError::NotAllowed)
        };
    }
    preferred
        .or(by_group)
        .or(pool.roles.authenticated.as_deref())
        .map(str::to_owned)
        .ok_or(RoleChoiceError::NoRole)
}
