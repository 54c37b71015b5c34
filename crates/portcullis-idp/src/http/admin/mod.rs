//! The identity admin API: `/admin/...`, the HTTP face of the `portcullis` identity-store
//! commands (pools, users, groups, clients, keys). The gateway serves it on its admin listener
//! and checks the caller first (SigV4 with a `[management]` credential of the `admin` scope);
//! this module resolves the path, runs the operation (`crate::manage`) and answers with the
//! documents `--json` prints.
//!
//! | method and path | operation |
//! |---|---|
//! | `GET /admin/pools` | pools list |
//! | `GET /admin/pools/{pool}/users[?after=NAME&limit=N]` | users list (one page) |
//! | `POST /admin/pools/{pool}/users` | users create (201) |
//! | `GET`/`DELETE /admin/pools/{pool}/users/{username}` | users show / delete |
//! | `POST /admin/pools/{pool}/users/{username}/password` | users set-password |
//! | `POST …/users/{username}/confirm`, `/disable`, `/enable`, `/sign-out`, `/remove-mfa` | the same commands |
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

mod execute;
mod routes;

use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use portcullis_core::fault::{Fault, HasFault};
use serde_json::json;
use tracing::info;

use super::reply::json_as;
use crate::IdentityProvider;
use crate::manage::AdminError;
pub use execute::execute;
pub use routes::{Operation, owns, resolve};

/// The content type of the admin API's answers.
const JSON: &str = "application/json";

/// Largest request body accepted (the largest real one, a user with 100 attributes of 2 KiB
/// each, is well below).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a request was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
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
    pub fn status(&self) -> StatusCode {
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

    pub fn code(&self) -> &'static str {
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

    pub fn message(&self) -> String {
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

    pub fn response(&self) -> Response {
        let body = json!({ "message": self.message(), "error": self.code() });
        let mut response = json_as(self.status(), JSON, &body);
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

impl HasFault for ApiError {
    fn fault(&self) -> Fault {
        match self {
            ApiError::Unavailable(_) => Fault::Operator,
            ApiError::Internal(_) => Fault::Internal,
            _ => Fault::Client,
        }
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

/// Serves one `/admin/...` request whose caller the gateway has already authenticated:
/// `operation` as [`resolve`] found it, the query string and the whole (bounded) body. `idp` is
/// `None` when the gateway has no pools.
pub async fn serve(
    idp: Option<&IdentityProvider>,
    operation: Result<Operation, ApiError>,
    query: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let operation = operation?;
    let idp = idp.ok_or_else(|| {
        ApiError::NotFound(
            "this gateway has no identity provider (no [pools] in its configuration)".into(),
        )
    })?;
    let (status, document) = execute(idp, &operation, query, body).await?;
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
    Ok(json_as(status, JSON, &document))
}

#[cfg(test)]
mod tests;
