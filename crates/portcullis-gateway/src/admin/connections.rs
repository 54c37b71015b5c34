//! The `@connections` management API (ApiGatewayManagementApi, API version 2018-11-29):
//! `POST`/`GET`/`DELETE /[{stage}/]@connections/{id}` (also `%40connections`), SigV4-verified,
//! with the status codes and `x-amzn-ErrorType` errors boto3 maps to its exceptions. Only
//! credentials with the `connections` scope may call it (403 `AccessDeniedException` for others).
//! `GET /[{stage}/]@connections` (list) is a Portcullis extension.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use portcullis_config::CredentialScope;
use portcullis_core::close::Close;
use portcullis_core::event::iso8601_millis;
use portcullis_core::id::{ConnectionId, request_id};
use serde_json::json;
use tracing::{debug, info};

use super::signature::{Refusal, authenticate};
use crate::metrics::ManagementLabels;
use crate::registry::{ConnectionRegistry, Outbound, SendError};
use crate::reply;
use crate::state::State;
use crate::websocket::WsApi;

/// Largest `PostToConnection` payload (the service model's limit for `Data`).
pub const MAX_POST_BYTES: usize = 131_072;

/// The management API's error answers, one per AWS error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ManagementError {
    Gone,
    Forbidden,
    /// Signed by a credential without the `connections` scope.
    AccessDenied,
    PayloadTooLarge,
    LimitExceeded,
    BadRequest(&'static str),
    NotFound,
}

impl ManagementError {
    fn status(self) -> StatusCode {
        match self {
            ManagementError::Gone => StatusCode::GONE,
            ManagementError::Forbidden | ManagementError::AccessDenied => StatusCode::FORBIDDEN,
            ManagementError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ManagementError::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ManagementError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ManagementError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn code(self) -> &'static str {
        match self {
            ManagementError::Gone => "GoneException",
            ManagementError::Forbidden => "ForbiddenException",
            ManagementError::AccessDenied => "AccessDeniedException",
            ManagementError::PayloadTooLarge => "PayloadTooLargeException",
            ManagementError::LimitExceeded => "LimitExceededException",
            ManagementError::BadRequest(_) => "BadRequestException",
            ManagementError::NotFound => "NotFoundException",
        }
    }

    fn body(self) -> String {
        match self {
            // boto3 shows an empty message for Gone, as AWS does.
            ManagementError::Gone => "{}".to_owned(),
            ManagementError::Forbidden => reply::message_body("Forbidden"),
            ManagementError::AccessDenied => reply::message_body(OUT_OF_SCOPE_CONNECTIONS),
            ManagementError::PayloadTooLarge => reply::message_body(&format!(
                "Request payload exceeds the maximum of {MAX_POST_BYTES} bytes"
            )),
            ManagementError::LimitExceeded => {
                reply::message_body("The connection's send buffer is full")
            }
            ManagementError::BadRequest(m) => reply::message_body(m),
            ManagementError::NotFound => reply::message_body("Not Found"),
        }
    }

    fn response(self, rid: &str) -> Response<Body> {
        let mut response = reply::json(self.status(), self.body());
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.code()));
        with_request_id(response, rid)
    }
}

/// What the path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    One(String),
    List { stage: Option<String> },
}

/// Parse `/[{stage}/]@connections[/{id}]` (also `%40connections`); the id is percent-decoded.
fn parse_path(raw_path: &str) -> Option<Target> {
    let trimmed = raw_path.strip_prefix('/')?;
    let segments: Vec<&str> = trimmed.split('/').collect();
    let is_connections = |s: &str| s == "@connections" || s.eq_ignore_ascii_case("%40connections");
    let (stage, rest) = match segments.as_slice() {
        [first, rest @ ..] if is_connections(first) => (None, rest),
        [stage, second, rest @ ..] if is_connections(second) => (Some((*stage).to_owned()), rest),
        _ => return None,
    };
    match rest {
        [] | [""] => Some(Target::List { stage }),
        [id] => {
            let decoded = percent_encoding::percent_decode_str(id)
                .decode_utf8()
                .ok()?;
            Some(Target::One(decoded.into_owned()))
        }
        _ => None,
    }
}

/// Handle one management request.
pub async fn handle(state: &State, apis: &[Arc<WsApi>], req: Request<Body>) -> Response<Body> {
    let rid = request_id();
    let (parts, body) = req.into_parts();
    let Some(target) = parse_path(parts.uri.path()) else {
        return ManagementError::NotFound.response(&rid);
    };
    let operation = match (&parts.method, &target) {
        (&Method::POST, Target::One(_)) => "post",
        (&Method::GET, Target::One(_)) => "get",
        (&Method::DELETE, Target::One(_)) => "delete",
        (&Method::GET, Target::List { .. }) => "list",
        _ => return ManagementError::NotFound.response(&rid),
    };
    let response = handle_op(state, apis, &parts, body, target, &rid).await;
    state
        .metrics
        .management_requests
        .get_or_create(&ManagementLabels {
            operation: operation.to_owned(),
            status: response.status().as_u16().to_string(),
        })
        .inc();
    response
}

async fn handle_op(
    state: &State,
    apis: &[Arc<WsApi>],
    parts: &http::request::Parts,
    body: Body,
    target: Target,
    rid: &str,
) -> Response<Body> {
    // Bounded read: one byte more than allowed tells "too large" apart.
    if parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_POST_BYTES)
    {
        return ManagementError::PayloadTooLarge.response(rid);
    }
    let body: Bytes = match axum::body::to_bytes(body, MAX_POST_BYTES).await {
        Ok(b) => b,
        Err(_) => return ManagementError::PayloadTooLarge.response(rid),
    };
    match authenticate(
        &state.management,
        parts,
        &body,
        CredentialScope::Connections,
    ) {
        Ok(()) => {}
        Err(Refusal::Unsigned(e)) => {
            debug!(error = %e, "management request refused");
            return ManagementError::Forbidden.response(rid);
        }
        Err(Refusal::OutOfScope { access_key_id }) => {
            info!(access_key_id = %access_key_id, "management request refused: the credential lacks the connections scope");
            return ManagementError::AccessDenied.response(rid);
        }
    }
    let registry = state.registry.as_ref();
    match target {
        Target::List { stage } => {
            let mut ids = Vec::new();
            for api in apis {
                if stage.as_deref().is_none_or(|s| s == api.config.stage) {
                    ids.extend(registry.list(&api.name).await);
                }
            }
            let list: Vec<_> = ids
                .iter()
                .map(|id| json!({"connectionId": id.as_str()}))
                .collect();
            json_response(
                StatusCode::OK,
                json!({"connections": list}).to_string(),
                rid,
            )
        }
        Target::One(raw_id) => {
            let Some(id) = ConnectionId::parse(&raw_id) else {
                return ManagementError::Gone.response(rid);
            };
            match parts.method {
                Method::POST => {
                    if body.is_empty() {
                        return ManagementError::BadRequest("Data is required").response(rid);
                    }
                    let message = match String::from_utf8(body.to_vec()) {
                        Ok(text) => Outbound::Text(text.into()),
                        Err(e) => Outbound::Binary(Bytes::from(e.into_bytes())),
                    };
                    match registry.post(&id, message).await {
                        Ok(()) => empty_response(StatusCode::OK, rid),
                        Err(SendError::Gone) => ManagementError::Gone.response(rid),
                        Err(SendError::Full) => ManagementError::LimitExceeded.response(rid),
                    }
                }
                Method::GET => match registry.info(&id).await {
                    Some(info) => {
                        let mut doc = json!({
                            "connectedAt": iso8601_millis(info.connected_at_ms),
                            "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
                            "lastActiveAt": iso8601_millis(info.last_active_ms),
                        });
                        if let (Some(principal), Some(obj)) = (info.principal, doc.as_object_mut())
                        {
                            obj.insert("principalId".to_owned(), json!(principal));
                        }
                        json_response(StatusCode::OK, doc.to_string(), rid)
                    }
                    None => ManagementError::Gone.response(rid),
                },
                Method::DELETE => match registry.close(&id, Close::Deleted).await {
                    Ok(()) => empty_response(StatusCode::NO_CONTENT, rid),
                    Err(_) => ManagementError::Gone.response(rid),
                },
                _ => ManagementError::NotFound.response(rid),
            }
        }
    }
}

/// Message of the 403 for a credential without the `connections` scope.
const OUT_OF_SCOPE_CONNECTIONS: &str =
    "The credential may not call the connections API: it lacks the \"connections\" scope";

/// Every answer names its request, as AWS does.
fn with_request_id(mut response: Response<Body>, rid: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(rid) {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
    response
}

fn empty_response(status: StatusCode, rid: &str) -> Response<Body> {
    with_request_id(reply::empty(status), rid)
}

fn json_response(status: StatusCode, body: String, rid: &str) -> Response<Body> {
    with_request_id(reply::json(status, body), rid)
}

#[cfg(test)]
mod tests;
