//! The identity admin API on the admin listener (`/admin/...`): the gateway's part is the
//! caller check — SigV4 with the `[management]` credentials, like `@connections`, and only
//! credentials with the `admin` scope (any other good signature gets 403
//! `AccessDeniedException`) — the bounded body, the metric and the log line. Which paths exist,
//! the operations and their answers are the identity provider's
//! ([`portcullis_idp::http::admin`]). Request bodies hold passwords: they are never logged, and
//! error messages never quote them.

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response, header};
use portcullis_config::CredentialScope;
use portcullis_core::fault::HasFault;
use portcullis_idp::IdentityProvider;
use portcullis_idp::http::admin::{ApiError, MAX_BODY_BYTES, Operation, resolve};
use tracing::{debug, info};

use super::signature::{Refusal, authenticate};
use crate::metrics::ManagementLabels;
use crate::state::State;

pub use portcullis_idp::http::admin::owns;

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
    portcullis_idp::http::admin::serve(idp, operation, parts.uri.query(), &body).await
}
