//! Carrying out an operation of the identity admin API: its request body, the
//! `crate::manage` call and the document it answers with.

use std::collections::BTreeMap;

use crate::manage::{self as admin, NewUser};
use crate::{IdentityProvider, MAX_LIST_USERS};
use http::StatusCode;
use portcullis_config::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::routes::Operation;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    temporary_password: Option<String>,
    /// `password` is temporary.
    #[serde(default)]
    temporary: bool,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// Create the user `CONFIRMED` even without a password.
    #[serde(default)]
    confirmed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    password: String,
    #[serde(default)]
    temporary: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// A JSON object body, with a message that never quotes a value of it (it may hold a password).
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let bad = |detail: String| ApiError::BadRequest(format!("invalid request body: {detail}"));
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "not JSON (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    if !value.is_object() {
        return Err(bad("expected a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| {
        let text = e.to_string();
        // serde's messages about fields name only fields; the others may quote a value
        if text.starts_with("unknown field") || text.starts_with("missing field") {
            bad(text)
        } else {
            bad("a field has a value of the wrong type".into())
        }
    })
}

/// Operations without input accept no body or an empty object.
pub fn no_body(body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    parse_body::<EmptyBody>(body).map(|_| ())
}

pub async fn execute(
    idp: &IdentityProvider,
    operation: &Operation,
    query: Option<&str>,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let ok = |v: Value| Ok((StatusCode::OK, v));
    if !matches!(
        operation,
        Operation::CreateUser { .. } | Operation::SetPassword { .. }
    ) {
        no_body(body)?;
    }
    match operation {
        Operation::ListPools => {
            let pools: Vec<Value> = admin::pools(idp).iter().map(admin::pool_json).collect();
            ok(json!({ "pools": pools }))
        }
        Operation::ListUsers { pool } => {
            let (after, limit) = page(query)?;
            let users = admin::list_users(idp, pool, after.as_deref(), limit).await?;
            let mut doc = json!({
                "users": users.iter().map(|u| admin::user_json(u, None)).collect::<Vec<_>>(),
            });
            if users.len() >= limit as usize
                && let Some(last) = users.last()
            {
                doc["next"] = json!(last.username);
            }
            ok(doc)
        }
        Operation::CreateUser { pool } => {
            let b: CreateBody = parse_body(body)?;
            let (password, permanent) = match (b.password, b.temporary_password) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::BadRequest(
                        "give password or temporary_password, not both".into(),
                    ));
                }
                (Some(p), None) => (Some(Secret::new(p)), !b.temporary),
                (None, Some(p)) => (Some(Secret::new(p)), false),
                (None, None) if b.temporary => {
                    return Err(ApiError::BadRequest("temporary needs a password".into()));
                }
                (None, None) => (None, true),
            };
            let details = admin::create_user(
                idp,
                NewUser {
                    pool: pool.clone(),
                    username: b.username,
                    attributes: b.attributes.into_iter().collect(),
                    password,
                    permanent,
                    confirmed: b.confirmed,
                },
            )
            .await?;
            Ok((StatusCode::CREATED, admin::user_details_json(&details)))
        }
        Operation::ShowUser { pool, username } => ok(admin::user_details_json(
            &admin::show_user(idp, pool, username).await?,
        )),
        Operation::DeleteUser { pool, username } => {
            admin::delete_user(idp, pool, username).await?;
            ok(admin::deleted_json(pool, username))
        }
        Operation::SetPassword { pool, username } => {
            let b: PasswordBody = parse_body(body)?;
            let password = Secret::new(b.password);
            let d = admin::set_password(idp, pool, username, &password, !b.temporary).await?;
            ok(admin::user_details_json(&d))
        }
        Operation::Confirm { pool, username } => ok(admin::user_details_json(
            &admin::confirm_user(idp, pool, username).await?,
        )),
        Operation::Disable { pool, username } => ok(admin::user_details_json(
            &admin::disable_user(idp, pool, username).await?,
        )),
        Operation::Enable { pool, username } => ok(admin::user_details_json(
            &admin::enable_user(idp, pool, username).await?,
        )),
        Operation::SignOut { pool, username } => ok(admin::user_details_json(
            &admin::sign_out(idp, pool, username).await?,
        )),
        Operation::RemoveMfa { pool, username } => ok(admin::user_details_json(
            &admin::remove_mfa(idp, pool, username).await?.1,
        )),
        Operation::AddToGroup {
            pool,
            username,
            group,
        } => ok(admin::user_details_json(
            &admin::add_to_group(idp, pool, username, group).await?,
        )),
        Operation::RemoveFromGroup {
            pool,
            username,
            group,
        } => ok(admin::user_details_json(
            &admin::remove_from_group(idp, pool, username, group).await?,
        )),
        Operation::ListGroups { pool } => {
            let groups = admin::groups(idp, pool).await?;
            let groups: Vec<Value> = groups.iter().map(|g| admin::group_json(g)).collect();
            ok(json!({ "groups": groups }))
        }
        Operation::ListClients { pool } => {
            let clients = admin::clients(idp, pool.as_deref()).await?;
            let clients: Vec<Value> = clients.iter().map(admin::client_json).collect();
            ok(json!({ "clients": clients }))
        }
        Operation::RotateKeys { pool } => {
            ok(admin::rotated_json(&admin::rotate_keys(idp, pool).await?))
        }
    }
}

/// `?after=NAME&limit=N` of the users list.
pub fn page(query: Option<&str>) -> Result<(Option<String>, u32), ApiError> {
    let mut after = None;
    let mut limit = MAX_LIST_USERS;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "after" => after = Some(v.into_owned()),
            "limit" => {
                limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIST_USERS).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit must be a number from 1 to {MAX_LIST_USERS}"
                        ))
                    })?;
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?} (expected after, limit)"
                )));
            }
        }
    }
    Ok((after, limit))
}
