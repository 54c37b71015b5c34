//! The identity admin API on the admin listener: `/admin/...`, the HTTP face of the `portcullis`
//! admin subcommands (pools, users, groups, clients, keys). Every call is SigV4-verified with
//! the `[management] credentials`, like the `@connections` API; the operations are
//! `portcullis_idp::manage`'s, so answers are the documents `--json` prints.
//!
//! | method and path | operation |
//! |---|---|
//! | `GET /admin/pools` | pools list |
//! | `GET /admin/pools/{pool}/users[?after=NAME&limit=N]` | users list (one page) |
//! | `POST /admin/pools/{pool}/users` | users create (201) |
//! | `GET`/`DELETE /admin/pools/{pool}/users/{username}` | users show / delete |
//! | `POST /admin/pools/{pool}/users/{username}/password` | users set-password |
//! | `POST …/users/{username}/confirm`, `/disable`, `/enable`, `/sign-out` | the same commands |
//! | `PUT`/`DELETE …/users/{username}/groups/{group}` | users add-to-group / remove-from-group |
//! | `GET /admin/pools/{pool}/groups` | groups list |
//! | `GET /admin/pools/{pool}/clients`, `GET /admin/clients` | clients list |
//! | `POST /admin/pools/{pool}/keys/rotate` | keys rotate |
//!
//! Only credentials with the `admin` scope may call it; any other good signature gets 403
//! `AccessDeniedException` (a backend's `connections` credential cannot create users or
//! reset passwords).
//!
//! Errors are `{"message": …, "error": …}` with the status saying who is at fault: 400 bad
//! input, 403 unsigned or badly signed, 404 unknown pool, user, group or path, 405, 409 exists,
//! 413 body over [`MAX_BODY_BYTES`], 5xx the store or the gateway. Request bodies hold
//! passwords: they are never logged, and error messages never quote them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use portcullis_config::{CredentialScope, Secret};
use portcullis_idp::manage::{self as admin, AdminError, NewUser};
use portcullis_idp::{Fault, HasFault, IdentityProvider, MAX_LIST_USERS};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, error, info};

use crate::management::Refusal;
use crate::metrics::ManagementLabels;
use crate::server::State;

/// Largest request body accepted (the largest real one, a user with 100 attributes of 2 KiB
/// each, is well below).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What a request asks for, from its method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operation {
    ListPools,
    ListUsers {
        pool: String,
    },
    CreateUser {
        pool: String,
    },
    ShowUser {
        pool: String,
        username: String,
    },
    DeleteUser {
        pool: String,
        username: String,
    },
    SetPassword {
        pool: String,
        username: String,
    },
    Confirm {
        pool: String,
        username: String,
    },
    Disable {
        pool: String,
        username: String,
    },
    Enable {
        pool: String,
        username: String,
    },
    SignOut {
        pool: String,
        username: String,
    },
    AddToGroup {
        pool: String,
        username: String,
        group: String,
    },
    RemoveFromGroup {
        pool: String,
        username: String,
        group: String,
    },
    ListGroups {
        pool: String,
    },
    ListClients {
        pool: Option<String>,
    },
    RotateKeys {
        pool: String,
    },
}

impl Operation {
    /// The CLI command's name, for logs and the metric label.
    fn name(&self) -> &'static str {
        match self {
            Operation::ListPools => "pools.list",
            Operation::ListUsers { .. } => "users.list",
            Operation::CreateUser { .. } => "users.create",
            Operation::ShowUser { .. } => "users.show",
            Operation::DeleteUser { .. } => "users.delete",
            Operation::SetPassword { .. } => "users.set-password",
            Operation::Confirm { .. } => "users.confirm",
            Operation::Disable { .. } => "users.disable",
            Operation::Enable { .. } => "users.enable",
            Operation::SignOut { .. } => "users.sign-out",
            Operation::AddToGroup { .. } => "users.add-to-group",
            Operation::RemoveFromGroup { .. } => "users.remove-from-group",
            Operation::ListGroups { .. } => "groups.list",
            Operation::ListClients { .. } => "clients.list",
            Operation::RotateKeys { .. } => "keys.rotate",
        }
    }

    fn pool(&self) -> Option<&str> {
        match self {
            Operation::ListPools | Operation::ListClients { pool: None } => None,
            Operation::ListClients { pool: Some(pool) }
            | Operation::ListUsers { pool }
            | Operation::CreateUser { pool }
            | Operation::ShowUser { pool, .. }
            | Operation::DeleteUser { pool, .. }
            | Operation::SetPassword { pool, .. }
            | Operation::Confirm { pool, .. }
            | Operation::Disable { pool, .. }
            | Operation::Enable { pool, .. }
            | Operation::SignOut { pool, .. }
            | Operation::AddToGroup { pool, .. }
            | Operation::RemoveFromGroup { pool, .. }
            | Operation::ListGroups { pool }
            | Operation::RotateKeys { pool } => Some(pool),
        }
    }

    fn username(&self) -> Option<&str> {
        match self {
            Operation::ShowUser { username, .. }
            | Operation::DeleteUser { username, .. }
            | Operation::SetPassword { username, .. }
            | Operation::Confirm { username, .. }
            | Operation::Disable { username, .. }
            | Operation::Enable { username, .. }
            | Operation::SignOut { username, .. }
            | Operation::AddToGroup { username, .. }
            | Operation::RemoveFromGroup { username, .. } => Some(username),
            _ => None,
        }
    }

    /// Only reads: not worth an info line each.
    fn reads(&self) -> bool {
        matches!(
            self,
            Operation::ListPools
                | Operation::ListUsers { .. }
                | Operation::ShowUser { .. }
                | Operation::ListGroups { .. }
                | Operation::ListClients { .. }
        )
    }
}

/// Why a request was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ApiError {
    BadRequest(String),
    Forbidden,
    /// Signed by a credential without the `admin` scope.
    AccessDenied,
    NotFound(String),
    MethodNotAllowed,
    Conflict(String),
    PayloadTooLarge,
    /// The store failed: the operator's problem.
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden | ApiError::AccessDenied => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forbidden => "Forbidden",
            ApiError::AccessDenied => "AccessDeniedException",
            ApiError::NotFound(_) => "NotFound",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::Conflict(_) => "Conflict",
            ApiError::PayloadTooLarge => "PayloadTooLarge",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::Internal(_) => "InternalError",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Unavailable(m)
            | ApiError::Internal(m) => m.clone(),
            ApiError::Forbidden => "Forbidden".into(),
            ApiError::AccessDenied => {
                "The credential may not call the identity admin API: it lacks the \"admin\" scope"
                    .into()
            }
            ApiError::MethodNotAllowed => "Method Not Allowed".into(),
            ApiError::PayloadTooLarge => {
                format!("Request body exceeds the maximum of {MAX_BODY_BYTES} bytes")
            }
        }
    }

    fn response(&self) -> Response<Body> {
        let body = json!({ "message": self.message(), "error": self.code() });
        let mut response = json_response(self.status(), &body);
        if *self == ApiError::AccessDenied {
            response.headers_mut().insert(
                "x-amzn-ErrorType",
                HeaderValue::from_static("AccessDeniedException"),
            );
        }
        if *self == ApiError::MethodNotAllowed {
            response.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, POST, PUT, DELETE"),
            );
        }
        response
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e.fault() {
            Fault::Client => match e {
                AdminError::UnknownPool(_) | AdminError::NotFound(_) => {
                    ApiError::NotFound(e.to_string())
                }
                AdminError::Conflict(m) => ApiError::Conflict(m),
                other => ApiError::BadRequest(other.to_string()),
            },
            Fault::Operator | Fault::Backend => match e {
                AdminError::Store(m) => ApiError::Unavailable(m),
                other => ApiError::Internal(other.to_string()),
            },
            Fault::Internal => ApiError::Internal(e.to_string()),
        }
    }
}

/// Whether a path belongs to this API. `/admin/@connections/...` stays the management API's
/// (a WebSocket API may have a stage named `admin`).
pub fn owns(path: &str) -> bool {
    match path.strip_prefix("/admin") {
        Some("") => true,
        Some(rest) => rest.strip_prefix('/').is_some_and(|rest| {
            let first = rest.split('/').next().unwrap_or_default();
            !(first == "@connections" || first.eq_ignore_ascii_case("%40connections"))
        }),
        None => false,
    }
}

/// Handle one `/admin/...` request.
pub async fn handle(state: Arc<State>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let operation = resolve(&parts.method, parts.uri.path());
    let result = serve(&state, &parts, body, operation.clone()).await;
    let label = operation.as_ref().map_or("unknown", |op| op.name());
    let response = match &result {
        Ok(response) => response.status(),
        Err(e) => e.status(),
    };
    state
        .metrics
        .management_requests
        .get_or_create(&ManagementLabels {
            operation: format!("admin.{label}"),
            status: response.as_u16().to_string(),
        })
        .inc();
    match result {
        Ok(response) => response,
        Err(e) => {
            match &e {
                ApiError::Unavailable(m) | ApiError::Internal(m) => {
                    error!(operation = label, error = %m, "admin API call failed");
                }
                _ => debug!(
                    operation = label,
                    status = e.status().as_u16(),
                    message = %e.message(),
                    "admin API call refused"
                ),
            }
            e.response()
        }
    }
}

async fn serve(
    state: &State,
    parts: &http::request::Parts,
    body: Body,
    operation: Result<Operation, ApiError>,
) -> Result<Response<Body>, ApiError> {
    // Bounded read: the declared length first, then the bytes themselves.
    if parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES)
    {
        return Err(ApiError::PayloadTooLarge);
    }
    let body: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    // Nothing, not even whether a path exists, is told to an unsigned caller.
    match crate::management::authenticate(state, parts, &body, CredentialScope::Admin) {
        Ok(()) => {}
        Err(Refusal::Unsigned(e)) => {
            debug!(error = %e, "admin API request refused");
            return Err(ApiError::Forbidden);
        }
        Err(Refusal::OutOfScope { access_key_id }) => {
            info!(access_key_id = %access_key_id, "admin API request refused: the credential lacks the admin scope");
            return Err(ApiError::AccessDenied);
        }
    }
    let operation = operation?;
    let idp = state.idp.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "this gateway has no identity provider (no [pools] in its configuration)".into(),
        )
    })?;
    let (status, document) = execute(idp, &operation, parts.uri.query(), &body).await?;
    if !operation.reads() {
        info!(
            operation = operation.name(),
            pool = operation.pool().unwrap_or_default(),
            // a created user's name comes from the body: take it from the answer
            username = operation
                .username()
                .or_else(|| document["username"].as_str())
                .unwrap_or_default(),
            "admin API change"
        );
    }
    Ok(json_response(status, &document))
}

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
struct PasswordBody {
    password: String,
    #[serde(default)]
    temporary: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// A JSON object body, with a message that never quotes a value of it (it may hold a password).
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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
fn no_body(body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    parse_body::<EmptyBody>(body).map(|_| ())
}

async fn execute(
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
fn page(query: Option<&str>) -> Result<(Option<String>, u32), ApiError> {
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

/// The operation of a method and raw path.
fn resolve(method: &Method, raw_path: &str) -> Result<Operation, ApiError> {
    let not_found = || ApiError::NotFound("Not Found".into());
    let rest = raw_path.strip_prefix("/admin/").ok_or_else(not_found)?;
    let mut segments = Vec::new();
    for s in rest.split('/') {
        let decoded = percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map_err(|_| not_found())?;
        if decoded.is_empty() {
            return Err(not_found());
        }
        segments.push(decoded.into_owned());
    }
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let allow = |allowed: &[Method], op: Operation| {
        if allowed.contains(method) {
            Ok(op)
        } else {
            Err(ApiError::MethodNotAllowed)
        }
    };
    let owned = |s: &str| s.to_owned();
    match seg.as_slice() {
        ["pools"] => allow(&[Method::GET], Operation::ListPools),
        ["clients"] => allow(&[Method::GET], Operation::ListClients { pool: None }),
        ["pools", pool, "users"] => match *method {
            Method::GET => Ok(Operation::ListUsers { pool: owned(pool) }),
            Method::POST => Ok(Operation::CreateUser { pool: owned(pool) }),
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["pools", pool, "users", username] => {
            let (pool, username) = (owned(pool), owned(username));
            match *method {
                Method::GET => Ok(Operation::ShowUser { pool, username }),
                Method::DELETE => Ok(Operation::DeleteUser { pool, username }),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        ["pools", pool, "users", username, action] => {
            let (pool, username) = (owned(pool), owned(username));
            let op = match *action {
                "password" => Operation::SetPassword { pool, username },
                "confirm" => Operation::Confirm { pool, username },
                "disable" => Operation::Disable { pool, username },
                "enable" => Operation::Enable { pool, username },
                "sign-out" => Operation::SignOut { pool, username },
                _ => return Err(not_found()),
            };
            allow(&[Method::POST], op)
        }
        ["pools", pool, "users", username, "groups", group] => {
            let (pool, username, group) = (owned(pool), owned(username), owned(group));
            match *method {
                Method::PUT => Ok(Operation::AddToGroup {
                    pool,
                    username,
                    group,
                }),
                Method::DELETE => Ok(Operation::RemoveFromGroup {
                    pool,
                    username,
                    group,
                }),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        ["pools", pool, "groups"] => {
            allow(&[Method::GET], Operation::ListGroups { pool: owned(pool) })
        }
        ["pools", pool, "clients"] => allow(
            &[Method::GET],
            Operation::ListClients {
                pool: Some(owned(pool)),
            },
        ),
        ["pools", pool, "keys", "rotate"] => {
            allow(&[Method::POST], Operation::RotateKeys { pool: owned(pool) })
        }
        _ => Err(not_found()),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, path: &str) -> Result<Operation, ApiError> {
        resolve(&method, path)
    }

    #[test]
    fn routes() {
        let user = |pool: &str, name: &str| (pool.to_owned(), name.to_owned());
        assert_eq!(op(Method::GET, "/admin/pools"), Ok(Operation::ListPools));
        assert_eq!(
            op(Method::GET, "/admin/clients"),
            Ok(Operation::ListClients { pool: None })
        );
        assert_eq!(
            op(Method::POST, "/admin/pools/main/users"),
            Ok(Operation::CreateUser {
                pool: "main".into()
            })
        );
        let (pool, username) = user("main", "alice@example.com");
        assert_eq!(
            op(Method::GET, "/admin/pools/main/users/alice%40example.com"),
            Ok(Operation::ShowUser {
                pool: pool.clone(),
                username: username.clone()
            })
        );
        assert_eq!(
            op(
                Method::POST,
                "/admin/pools/main/users/alice@example.com/sign-out"
            ),
            Ok(Operation::SignOut { pool, username })
        );
        assert_eq!(
            op(Method::PUT, "/admin/pools/main/users/bob/groups/admins"),
            Ok(Operation::AddToGroup {
                pool: "main".into(),
                username: "bob".into(),
                group: "admins".into()
            })
        );
        assert_eq!(
            op(Method::DELETE, "/admin/pools/main/users/bob/groups/admins"),
            Ok(Operation::RemoveFromGroup {
                pool: "main".into(),
                username: "bob".into(),
                group: "admins".into()
            })
        );
        assert_eq!(
            op(Method::POST, "/admin/pools/main/keys/rotate"),
            Ok(Operation::RotateKeys {
                pool: "main".into()
            })
        );
        assert_eq!(
            op(Method::GET, "/admin/pools/main/clients"),
            Ok(Operation::ListClients {
                pool: Some("main".into())
            })
        );
        assert_eq!(
            op(Method::DELETE, "/admin/pools"),
            Err(ApiError::MethodNotAllowed)
        );
        assert_eq!(
            op(Method::GET, "/admin/pools/main/users/bob/confirm"),
            Err(ApiError::MethodNotAllowed)
        );
        for path in [
            "/admin/",
            "/admin/pools/",
            "/admin/pools//users",
            "/admin/pools/main/users/bob/frobnicate",
            "/admin/pools/main/nothing",
            "/admin/pools/main/users/%ff",
            "/healthz",
        ] {
            assert!(
                matches!(op(Method::GET, path), Err(ApiError::NotFound(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn ownership() {
        assert!(owns("/admin"));
        assert!(owns("/admin/pools"));
        assert!(owns("/admin/pools/main/users"));
        assert!(!owns("/administrator"));
        assert!(!owns("/admin/@connections/abc"));
        assert!(!owns("/admin/%40connections"));
        assert!(!owns("/prod/@connections/abc"));
        assert!(!owns("/healthz"));
    }

    #[test]
    fn paging() {
        assert_eq!(page(None), Ok((None, MAX_LIST_USERS)));
        assert_eq!(
            page(Some("after=al%20ice&limit=2")),
            Ok((Some("al ice".into()), 2))
        );
        assert!(page(Some("limit=0")).is_err());
        assert!(page(Some("limit=1001")).is_err());
        assert!(page(Some("cursor=x")).is_err());
    }

    #[test]
    fn body_errors_do_not_quote_values() {
        let secret = "Sup3r-secret-pw";
        for body in [
            format!(r#"{{"password": 1, "temporary": "{secret}"}}"#),
            format!(r#"{{"password": "{secret}", "temporary": "{secret}"}}"#),
            format!(r#"{{"password": "{secret}""#),
            format!(r#"["{secret}"]"#),
        ] {
            let Err(ApiError::BadRequest(m)) = parse_body::<PasswordBody>(body.as_bytes()) else {
                panic!("{body} accepted");
            };
            assert!(!m.contains(secret), "{m}");
        }
        let Err(ApiError::BadRequest(m)) =
            parse_body::<PasswordBody>(br#"{"password": "x", "pasword": "y"}"#)
        else {
            panic!("unknown field accepted");
        };
        assert!(m.contains("unknown field `pasword`"), "{m}");
        assert_eq!(no_body(b""), Ok(()));
        assert_eq!(no_body(b" {} "), Ok(()));
        assert!(no_body(br#"{"password":"x"}"#).is_err());
    }

    #[test]
    fn admin_errors_map_to_statuses() {
        let status = |e: AdminError| ApiError::from(e).status().as_u16();
        assert_eq!(status(AdminError::UnknownPool("x".into())), 404);
        assert_eq!(status(AdminError::NotFound("x".into())), 404);
        assert_eq!(status(AdminError::Conflict("x".into())), 409);
        assert_eq!(status(AdminError::Invalid("x".into())), 400);
        assert_eq!(status(AdminError::Store("x".into())), 503);
        assert_eq!(status(AdminError::Config("x".into())), 500);
        assert_eq!(status(AdminError::Internal("x".into())), 500);
    }
}
