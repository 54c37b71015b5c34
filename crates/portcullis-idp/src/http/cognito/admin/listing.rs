//! Listings of users: `ListUsers` (with its [`filter`](super::filter), `AttributesToGet`,
//! `Limit` ≤ 60 and `PaginationToken`) and `ListUsersInGroup` (`Limit`, `NextToken`).
//!
//! Page tokens are opaque to callers and stable: the base64url of the last username a page
//! covered, so a page starts after it whatever was created or deleted in between. A filtered
//! listing examines at most [`MAX_SCANNED`] users per call; when it stops there it answers
//! the matches so far (perhaps none) with a token to go on from, as Cognito may.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::super::errors::{CognitoError, ErrorType as E, err, invalid_parameter};
use super::super::{Body, Cognito, opt_str, req_str};
use super::filter;
use super::users::user_type;
use super::{bounded_str, limit};
use crate::store::UserRecord;

/// Most users of a page (Cognito's bound, and its default).
pub const MAX_PAGE: u32 = 60;
/// Most users a filtered `ListUsers` call examines.
pub const MAX_SCANNED: usize = 5_000;
/// Users read from the store at a time while filtering.
const SCAN_BATCH: u32 = 500;
/// Longest page token accepted.
const MAX_TOKEN_CHARS: usize = 1024;
/// Most names in `AttributesToGet`.
const MAX_ATTRIBUTES_TO_GET: usize = 100;
/// What a token starts with, so a token of another kind is refused.
const TOKEN_PREFIX: &str = "u1:";

/// The token of the page after `username`.
pub(super) fn page_token(username: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{username}"))
}

/// The username a token continues after.
pub(super) fn token_position(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_CHARS {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(TOKEN_PREFIX).map(str::to_owned)
}

/// The position a call's token field (`PaginationToken`, `NextToken`) continues after.
pub(super) fn after(body: &Body, field: &str) -> Result<Option<String>, CognitoError> {
    match opt_str(body, field)?.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(token) => token_position(token)
            .map(Some)
            .ok_or_else(|| invalid_parameter(format!("Invalid {field}."))),
    }
}

/// `AttributesToGet`: `None` for all.
fn attributes_to_get(body: &Body) -> Result<Option<Vec<String>>, CognitoError> {
    match body.get("AttributesToGet") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() <= MAX_ATTRIBUTES_TO_GET => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| err(E::Serialization, "AttributesToGet must be strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::Array(_)) => Err(invalid_parameter(format!(
            "AttributesToGet may name at most {MAX_ATTRIBUTES_TO_GET} attributes."
        ))),
        Some(_) => Err(err(E::Serialization, "AttributesToGet must be a list")),
    }
}

/// One page of `limit` users out of `found` (at most `limit + 1` read): the page and the
/// token of the next one when there is more.
fn page(mut found: Vec<UserRecord>, limit: u32) -> (Vec<UserRecord>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if found.len() > limit {
        found.truncate(limit);
        let token = found.last().map(|u| page_token(&u.username));
        (found, token)
    } else {
        (found, None)
    }
}

impl Cognito {
    pub(super) async fn list_users(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, _) = self.admin_pool(body)?;
        let limit = limit(body, MAX_PAGE, MAX_PAGE)?;
        let filter =
            filter::parse(bounded_str(body, "Filter", filter::MAX_FILTER_CHARS)?.unwrap_or(""))
                .map_err(|e| invalid_parameter(e.0))?;
        let only = attributes_to_get(body)?;
        let mut position = after(body, "PaginationToken")?;
        let (users, token) = match filter {
            None => {
                let found = self
                    .idp
                    .list_users(pool, position.as_deref(), limit + 1)
                    .await?;
                page(found, limit)
            }
            Some(filter) => {
                let wanted = usize::try_from(limit).unwrap_or(usize::MAX) + 1;
                let mut found = Vec::new();
                let mut scanned = 0;
                let mut more = true;
                while found.len() < wanted && scanned < MAX_SCANNED && more {
                    let batch = self
                        .idp
                        .list_users(pool, position.as_deref(), SCAN_BATCH)
                        .await?;
                    more = batch.len() >= SCAN_BATCH as usize;
                    for user in batch {
                        scanned += 1;
                        position = Some(user.username.clone());
                        if filter.matches(&user) {
                            found.push(user);
                            if found.len() == wanted {
                                break;
                            }
                        }
                    }
                }
                if found.len() == wanted {
                    page(found, limit)
                } else if more {
                    // the scan budget ran out: go on from the last user examined
                    (found, position.as_deref().map(page_token))
                } else {
                    (found, None)
                }
            }
        };
        let mut answer = json!({
            "Users": users.iter().map(|u| user_type(u, only.as_deref())).collect::<Vec<_>>(),
        });
        if let Some(token) = token {
            answer["PaginationToken"] = json!(token);
        }
        Ok(answer)
    }

    pub(super) async fn list_users_in_group(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, _) = self.admin_pool(body)?;
        let group = req_str(body, "GroupName")?;
        let limit = limit(body, MAX_PAGE, MAX_PAGE)?;
        let position = after(body, "NextToken")?;
        let found = self
            .idp
            .group_members(pool, group, position.as_deref(), limit + 1)
            .await?;
        let (users, token) = page(found, limit);
        let mut answer = json!({
            "Users": users.iter().map(|u| user_type(u, None)).collect::<Vec<_>>(),
        });
        if let Some(token) = token {
            answer["NextToken"] = json!(token);
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_strangers() {
        for name in ["ann", "user-07", "山田", "a:b"] {
            assert_eq!(token_position(&page_token(name)).as_deref(), Some(name));
        }
        assert_eq!(token_position("not base64!"), None);
        assert_eq!(token_position(&URL_SAFE_NO_PAD.encode("x1:ann")), None);
        assert_eq!(token_position(&"A".repeat(2000)), None);
    }
}
