//! Groups: the ones the configuration declares (`[pools.NAME] groups`, stored by name at every
//! start and never deleted by the gateway) and the ones created through the Cognito Admin API
//! (`CreateGroup`, with Cognito's description, precedence and role ARN). Both live in the store
//! and work alike for members and tokens; only a declared group cannot be deleted through the
//! API (the file would bring it back at the next start).

use crate::store::{GroupRecord, UserRecord};
use crate::{IdentityProvider, IdpError, unix_now};

/// Most groups a pool holds (Cognito's quota).
pub const MAX_GROUPS_PER_POOL: usize = 10_000;
/// Longest group name, in characters (Cognito's).
pub const MAX_GROUP_NAME: usize = 128;
/// Longest group description, in characters (Cognito's).
pub const MAX_GROUP_DESCRIPTION: usize = 2048;
/// Longest role ARN, in characters (Cognito's).
pub const MAX_ROLE_ARN: usize = 2048;

/// A group to create.
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub name: String,
    pub description: Option<String>,
    pub precedence: Option<i64>,
    pub role_arn: Option<String>,
}

/// Why a group's fields are refused, in Cognito's words (`None`: they are fine).
pub fn check_new_group(group: &NewGroup) -> Option<String> {
    let name = &group.name;
    if name.is_empty() || name.chars().count() > MAX_GROUP_NAME {
        return Some(format!(
            "1 validation error detected: Value at 'groupName' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_GROUP_NAME}"
        ));
    }
    // Cognito's pattern [\p{L}\p{M}\p{S}\p{N}\p{P}]+: no whitespace or control characters
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(
            "1 validation error detected: Value at 'groupName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+"
                .into(),
        );
    }
    if group
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_GROUP_DESCRIPTION)
    {
        return Some(format!(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_GROUP_DESCRIPTION}"
        ));
    }
    if group
        .precedence
        .is_some_and(|p| !(0..=i64::from(i32::MAX)).contains(&p))
    {
        return Some(
            "1 validation error detected: Value at 'precedence' failed to satisfy constraint: \
             Member must have value between 0 and 2147483647"
                .into(),
        );
    }
    if let Some(arn) = &group.role_arn
        && (arn.chars().count() > MAX_ROLE_ARN || !arn.starts_with("arn:"))
    {
        return Some(
            "1 validation error detected: Value at 'roleArn' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: arn:[\\w+=/,.@-]+:[\\w+=/,.@-]+:\
             ([\\w+=/,.@-]*)?:[0-9]+:[\\w+=/,.@-]+(:[\\w+=/,.@-]+)?(:[\\w+=/,.@-]+)?"
                .into(),
        );
    }
    None
}

impl IdentityProvider {
    /// Whether `group` is declared in the pool's configuration.
    pub fn is_declared_group(&self, pool: &str, group: &str) -> bool {
        self.pool(pool)
            .is_ok_and(|p| p.config.groups.iter().any(|g| g == group))
    }

    /// Creates a group (`CreateGroup`): [`IdpError::GroupExists`] when the pool has one of
    /// that name (declared or created), [`IdpError::LimitExceeded`] at
    /// [`MAX_GROUPS_PER_POOL`].
    pub async fn create_group(&self, pool: &str, new: NewGroup) -> Result<GroupRecord, IdpError> {
        self.pool(pool)?;
        if let Some(why) = check_new_group(&new) {
            return Err(IdpError::InvalidParameter(why));
        }
        let existing = self.store.group_records(pool).await?;
        if existing.iter().any(|g| g.name == new.name) {
            return Err(IdpError::GroupExists);
        }
        if existing.len() >= MAX_GROUPS_PER_POOL {
            return Err(IdpError::LimitExceeded(format!(
                "The pool has reached its limit of {MAX_GROUPS_PER_POOL} groups."
            )));
        }
        let now = unix_now();
        let record = GroupRecord {
            pool: pool.to_owned(),
            name: new.name,
            description: new.description,
            precedence: new.precedence,
            role_arn: new.role_arn,
            created_at: now,
            updated_at: Some(now),
        };
        if !self.store.create_group(&record).await? {
            return Err(IdpError::GroupExists);
        }
        Ok(record)
    }

    /// Deletes a group created through the API (`DeleteGroup`); its memberships go with it.
    /// A group the configuration declares is refused with [`IdpError::InvalidParameter`].
    pub async fn delete_group(&self, pool: &str, group: &str) -> Result<(), IdpError> {
        self.pool(pool)?;
        if self.is_declared_group(pool, group) {
            return Err(IdpError::InvalidParameter(format!(
                "Group {group} is declared in the configuration file and cannot be deleted \
                 through the API."
            )));
        }
        if self.store.delete_group(pool, group).await? {
            Ok(())
        } else {
            Err(IdpError::GroupNotFound)
        }
    }

    /// A pool's groups with their details, by name.
    pub async fn group_records(&self, pool: &str) -> Result<Vec<GroupRecord>, IdpError> {
        self.pool(pool)?;
        Ok(self.store.group_records(pool).await?)
    }

    /// One page of a group's members by username: at most `limit` after `after`.
    pub async fn group_members(
        &self,
        pool: &str,
        group: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, IdpError> {
        self.pool(pool)?;
        if !self
            .store
            .group_records(pool)
            .await?
            .iter()
            .any(|g| g.name == group)
        {
            return Err(IdpError::GroupNotFound);
        }
        Ok(self
            .store
            .group_members(pool, group, after, limit.min(crate::MAX_LIST_USERS))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> NewGroup {
        NewGroup {
            name: name.into(),
            ..NewGroup::default()
        }
    }

    #[test]
    fn group_fields_are_bounded_as_cognito_bounds_them() {
        assert_eq!(check_new_group(&named("admins")), None);
        assert_eq!(check_new_group(&named("édition:2")), None);
        assert!(check_new_group(&named("")).is_some());
        assert!(check_new_group(&named(&"g".repeat(129))).is_some());
        assert!(check_new_group(&named("two words")).is_some());
        let mut g = named("ok");
        g.precedence = Some(-1);
        assert!(check_new_group(&g).is_some());
        g.precedence = Some(i64::from(i32::MAX) + 1);
        assert!(check_new_group(&g).is_some());
        g.precedence = Some(0);
        g.description = Some("d".repeat(2049));
        assert!(check_new_group(&g).is_some());
        g.description = Some("d".repeat(2048));
        g.role_arn = Some("not-an-arn".into());
        assert!(check_new_group(&g).is_some());
        g.role_arn = Some("arn:aws:iam::123456789012:role/editors".into());
        assert_eq!(check_new_group(&g), None);
    }
}
