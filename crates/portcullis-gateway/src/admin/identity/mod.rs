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

mod execute;
mod routes;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use portcullis_config::CredentialScope;
use portcullis_core::fault::{Fault, HasFault};
use portcullis_idp::IdentityProvider;
use portcullis_idp::manage::AdminError;
use serde_json::json;
use tracing::{debug, info};

pub use routes::owns;

use super::signature::{Refusal, authenticate};
use crate::metrics::ManagementLabels;
use crate::reply;
use crate::state::State;
use execute::execute;
use routes::{Operation, resolve};

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
        let mut response = reply::json(self.status(), body.to_string());
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

/// Handle one `/admin/...` request.
pub async fn handle(
    state: &State,
    idp: Option<&IdentityProvider>,
    req: Request<Body>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let operation = resolve(&parts.method, parts.uri.path());
    let result = serve(state, idp, &parts, body, operation.clone()).await;
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
            let fault = e.fault();
            log_fault!(
                fault,
                operation = label,
                status = e.status().as_u16(),
                message = %e.message(),
                %fault,
                "admin API call refused or failed"
            );
            e.response()
        }
    }
}

async fn serve(
    state: &State,
    idp: Option<&IdentityProvider>,
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
    match authenticate(&state.management, parts, &body, CredentialScope::Admin) {
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
    let idp = idp.ok_or_else(|| {
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
    Ok(reply::json(status, document.to_string()))
}

#[cfg(test)]
mod tests;
