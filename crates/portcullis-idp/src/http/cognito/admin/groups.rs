//! Groups and memberships: `CreateGroup`, `GetGroup`, `DeleteGroup`, `ListGroups`,
//! `AdminAddUserToGroup`, `AdminRemoveUserFromGroup`, `AdminListGroupsForUser`. Groups are
//! the store's (see [`crate::groups`]): declared in the configuration file or created here;
//! a declared one cannot be deleted through the API.

use serde_json::{Value, json};

use super::super::errors::{CognitoError, ErrorType as E, err, invalid_parameter};
use super::super::{Body, Cognito, req_str};
use super::listing::{MAX_PAGE, after, page_token};
use super::{bounded_str, changed, limit};
use crate::groups::{MAX_GROUP_DESCRIPTION, MAX_ROLE_ARN, NewGroup};
use crate::store::GroupRecord;

/// A group as Cognito's `GroupType`.
fn group_type(g: &GroupRecord, pool_id: &str) -> Value {
    let mut v = json!({
        "GroupName": g.name,
        "UserPoolId": pool_id,
        "CreationDate": g.created_at,
        "LastModifiedDate": g.updated_at.unwrap_or(g.created_at),
    });
    if let Some(d) = &g.description {
        v["Description"] = json!(d);
    }
    if let Some(p) = g.precedence {
        v["Precedence"] = json!(p);
    }
    if let Some(r) = &g.role_arn {
        v["RoleArn"] = json!(r);
    }
    v
}

/// One page of `groups` (sorted by name) after `position`: the page and the next token.
fn groups_page(
    groups: Vec<GroupRecord>,
    position: Option<&str>,
    limit: u32,
) -> (Vec<GroupRecord>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut rest: Vec<GroupRecord> = groups
        .into_iter()
        .filter(|g| position.is_none_or(|p| g.name.as_str() > p))
        .collect();
    if rest.len() > limit {
        rest.truncate(limit);
        let token = rest.last().map(|g| page_token(&g.name));
        (rest, token)
    } else {
        (rest, None)
    }
}

fn groups_answer(groups: &[GroupRecord], pool_id: &str, token: Option<String>) -> Value {
    let mut answer = json!({
        "Groups": groups.iter().map(|g| group_type(g, pool_id)).collect::<Vec<_>>(),
    });
    if let Some(token) = token {
        answer["NextToken"] = json!(token);
    }
    answer
}

impl Cognito {
    async fn admin_group(&self, pool: &str, name: &str) -> Result<GroupRecord, CognitoError> {
        self.idp
            .group_records(pool)
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| err(E::ResourceNotFound, "Group not found."))
    }

    pub(super) async fn create_group(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, state) = self.admin_pool(body)?;
        let precedence = match body.get("Precedence") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                invalid_parameter(
                    "1 validation error detected: Value at 'precedence' failed to satisfy \
                     constraint: Member must have value between 0 and 2147483647",
                )
            })?),
        };
        let new = NewGroup {
            name: req_str(body, "GroupName")?.to_owned(),
            description: bounded_str(body, "Description", MAX_GROUP_DESCRIPTION)?
                .map(str::to_owned),
            precedence,
            role_arn: bounded_str(body, "RoleArn", MAX_ROLE_ARN)?
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
        };
        let group = self.idp.create_group(pool, new).await?;
        changed("CreateGroup", pool, None);
        Ok(json!({"Group": group_type(&group, &state.config.id)}))
    }

    pub(super) async fn get_group(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, state) = self.admin_pool(body)?;
        let group = self.admin_group(pool, req_str(body, "GroupName")?).await?;
        Ok(json!({"Group": group_type(&group, &state.config.id)}))
    }

    pub(super) async fn delete_group(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, _) = self.admin_pool(body)?;
        let name = req_str(body, "GroupName")?;
        self.idp.delete_group(pool, name).await?;
        changed("DeleteGroup", pool, None);
        Ok(json!({}))
    }

    pub(super) async fn list_groups(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, state) = self.admin_pool(body)?;
        let limit = limit(body, MAX_PAGE, MAX_PAGE)?;
        let position = after(body, "NextToken")?;
        let groups = self.idp.group_records(pool).await?;
        let (groups, token) = groups_page(groups, position.as_deref(), limit);
        Ok(groups_answer(&groups, &state.config.id, token))
    }

    pub(super) async fn admin_add_user_to_group(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, username) = self.admin_target(body)?;
        let group = req_str(body, "GroupName")?;
        self.admin_user(pool, username).await?;
        self.admin_group(pool, group).await?;
        self.idp.add_user_to_group(pool, username, group).await?;
        changed("AdminAddUserToGroup", pool, Some(username));
        Ok(json!({}))
    }

    pub(super) async fn admin_remove_user_from_group(
        &self,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let (pool, username) = self.admin_target(body)?;
        let group = req_str(body, "GroupName")?;
        self.admin_user(pool, username).await?;
        self.admin_group(pool, group).await?;
        self.idp
            .remove_user_from_group(pool, username, group)
            .await?;
        changed("AdminRemoveUserFromGroup", pool, Some(username));
        Ok(json!({}))
    }

    pub(super) async fn admin_list_groups_for_user(
        &self,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let (pool, state) = self.admin_pool(body)?;
        let username = req_str(body, "Username")?;
        let limit = limit(body, MAX_PAGE, MAX_PAGE)?;
        let position = after(body, "NextToken")?;
        self.admin_user(pool, username).await?;
        let names = self.idp.store.user_groups(pool, username).await?;
        let groups: Vec<GroupRecord> = self
            .idp
            .group_records(pool)
            .await?
            .into_iter()
            .filter(|g| names.contains(&g.name))
            .collect();
        let (groups, token) = groups_page(groups, position.as_deref(), limit);
        Ok(groups_answer(&groups, &state.config.id, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::cognito::admin::listing::token_position;

    fn group(name: &str) -> GroupRecord {
        GroupRecord {
            pool: "main".into(),
            name: name.into(),
            description: None,
            precedence: None,
            role_arn: None,
            created_at: 5,
            updated_at: None,
        }
    }

    #[test]
    fn group_pages_go_on_after_the_last_name() {
        let all: Vec<GroupRecord> = ["a", "b", "c", "d", "e"].into_iter().map(group).collect();
        let (first, token) = groups_page(all.clone(), None, 2);
        assert_eq!(
            first.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let position = token.as_deref().and_then(token_position);
        let (second, token) = groups_page(all.clone(), position.as_deref(), 3);
        assert_eq!(
            second.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["c", "d", "e"]
        );
        assert_eq!(token, None);
        let shown = group_type(&all[0], "us-east-1_main");
        assert_eq!(shown["LastModifiedDate"], 5);
        assert!(shown.get("Precedence").is_none());
    }
}
