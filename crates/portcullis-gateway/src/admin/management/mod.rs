//! The management API on the admin listener, SigV4-verified: `@connections` (API Gateway's
//! ApiGatewayManagementApi, version 2018-11-29, answered with the status codes and
//! `x-amzn-ErrorType` errors boto3 maps to its exceptions), and Portcullis's pushes to many
//! connections, `@users/{principalId}`, `@topics/{topic}` and topic subscriptions
//! `@connections/{id}/topics/{topic}` (CONTRACT §1). Only credentials with the `connections`
//! scope may call it (403 `AccessDeniedException` for others). `GET @connections` (list) is a
//! Portcullis extension.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use portcullis_config::CredentialScope;
use portcullis_core::id::request_id;
use tracing::{debug, info};

use super::signature::{Refusal, authenticate};
use crate::metrics::ManagementLabels;
use crate::registry::{Outbound, SendError, Unavailable, Utf8Bytes};
use crate::reply;
use crate::state::State;
use crate::websocket::WsApi;

mod connections;
mod path;
mod push;

use path::Target;

/// Largest pushed payload (the service model's limit for `PostToConnection`'s `Data`), for
/// `@connections`, `@users` and `@topics` alike.
pub const MAX_POST_BYTES: usize = 131_072;

/// The management API's error answers, one per AWS error code.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ManagementError {
    Gone,
    Forbidden,
    /// Signed by a credential without the `connections` scope.
    AccessDenied,
    PayloadTooLarge,
    /// A connection's send queue is full, or a subscription cap is reached.
    LimitExceeded(String),
    BadRequest(String),
    NotFound,
    /// The call needs another node of the cluster, which cannot be reached.
    Unavailable,
}

impl From<SendError> for ManagementError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Gone => ManagementError::Gone,
            SendError::Full => {
                ManagementError::LimitExceeded("The connection's send buffer is full".into())
            }
            SendError::Unavailable => ManagementError::Unavailable,
        }
    }
}

impl From<Unavailable> for ManagementError {
    fn from(_: Unavailable) -> Self {
        ManagementError::Unavailable
    }
}

impl ManagementError {
    fn status(&self) -> StatusCode {
        match self {
            ManagementError::Gone => StatusCode::GONE,
            ManagementError::Forbidden | ManagementError::AccessDenied => StatusCode::FORBIDDEN,
            ManagementError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ManagementError::LimitExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            ManagementError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ManagementError::NotFound => StatusCode::NOT_FOUND,
            ManagementError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ManagementError::Gone => "GoneException",
            ManagementError::Forbidden => "ForbiddenException",
            ManagementError::AccessDenied => "AccessDeniedException",
            ManagementError::PayloadTooLarge => "PayloadTooLargeException",
            ManagementError::LimitExceeded(_) => "LimitExceededException",
            ManagementError::BadRequest(_) => "BadRequestException",
            ManagementError::NotFound => "NotFoundException",
            ManagementError::Unavailable => "ServiceUnavailableException",
        }
    }

    fn body(&self) -> String {
        match self {
            // boto3 shows an empty message for Gone, as AWS does.
            ManagementError::Gone => "{}".to_owned(),
            ManagementError::Forbidden => reply::message_body("Forbidden"),
            ManagementError::AccessDenied => reply::message_body(OUT_OF_SCOPE_CONNECTIONS),
            ManagementError::PayloadTooLarge => reply::message_body(&format!(
                "Request payload exceeds the maximum of {MAX_POST_BYTES} bytes"
            )),
            ManagementError::LimitExceeded(m) | ManagementError::BadRequest(m) => {
                reply::message_body(m)
            }
            ManagementError::NotFound => reply::message_body("Not Found"),
            ManagementError::Unavailable => reply::message_body("Service Unavailable"),
        }
    }

    fn response(&self, rid: &str) -> Response<Body> {
        let mut response = reply::json(self.status(), self.body());
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.code()));
        with_request_id(response, rid)
    }
}

/// One management request, once signed and parsed.
struct Call<'a> {
    state: &'a State,
    /// The WebSocket APIs the path's stage selects (all of them without a stage).
    apis: Vec<&'a Arc<WsApi>>,
    method: Method,
    body: Bytes,
    rid: &'a str,
}

impl Call<'_> {
    /// The body as a message to push: text when it is UTF-8, else binary; an empty body is
    /// refused as AWS refuses an empty `Data`.
    fn message(&self) -> Result<Outbound, ManagementError> {
        if self.body.is_empty() {
            return Err(ManagementError::BadRequest("Data is required".into()));
        }
        Ok(match Utf8Bytes::try_from(self.body.clone()) {
            Ok(text) => Outbound::Text(text),
            Err(_) => Outbound::Binary(self.body.clone()),
        })
    }

    fn json(&self, status: StatusCode, body: String) -> Response<Body> {
        with_request_id(reply::json(status, body), self.rid)
    }

    fn empty(&self, status: StatusCode) -> Response<Body> {
        with_request_id(reply::empty(status), self.rid)
    }
}

/// The metric label of an operation; `None` for a method the resource does not have.
fn operation(method: &Method, target: &Target) -> Option<&'static str> {
    Some(match (method, target) {
        (&Method::POST, Target::Connection(_)) => "post",
        (&Method::GET, Target::Connection(_)) => "get",
        (&Method::DELETE, Target::Connection(_)) => "delete",
        (&Method::GET, Target::Connections) => "list",
        (&Method::PUT, Target::Subscription { .. }) => "subscribe",
        (&Method::DELETE, Target::Subscription { .. }) => "unsubscribe",
        (&Method::POST, Target::User(_)) => "user_post",
        (&Method::GET, Target::User(_)) => "user_get",
        (&Method::DELETE, Target::User(_)) => "user_delete",
        (&Method::POST, Target::Topic(_)) => "topic_post",
        (&Method::GET, Target::Topic(_)) => "topic_get",
        _ => return None,
    })
}

/// Handle one management request.
pub async fn handle(state: &State, apis: &[Arc<WsApi>], req: Request<Body>) -> Response<Body> {
    let rid = request_id();
    let (parts, body) = req.into_parts();
    let Some(path) = path::parse(parts.uri.path()) else {
        return ManagementError::NotFound.response(&rid);
    };
    let Some(operation) = operation(&parts.method, &path.target) else {
        return ManagementError::NotFound.response(&rid);
    };
    let response = match signed_body(state, &parts, body).await {
        Ok(body) => {
            let call = Call {
                state,
                apis: apis
                    .iter()
                    .filter(|api| path.stage.as_deref().is_none_or(|s| s == api.config.stage))
                    .collect(),
                method: parts.method.clone(),
                body,
                rid: &rid,
            };
            let answer = match path.target {
                Target::Connections => connections::list(&call).await,
                Target::Connection(id) => connections::one(&call, &id).await,
                Target::Subscription { id, topic } => {
                    connections::subscription(&call, &id, &topic).await
                }
                Target::User(principal) => push::user(&call, &principal).await,
                Target::Topic(topic) => push::topic(&call, &topic).await,
            };
            answer.unwrap_or_else(|e| e.response(&rid))
        }
        Err(e) => e.response(&rid),
    };
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

/// Read the body (bounded: one byte more than allowed tells "too large" apart) and check the
/// signature over it.
async fn signed_body(
    state: &State,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Bytes, ManagementError> {
    if parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_POST_BYTES)
    {
        return Err(ManagementError::PayloadTooLarge);
    }
    let body = axum::body::to_bytes(body, MAX_POST_BYTES)
        .await
        .map_err(|_| ManagementError::PayloadTooLarge)?;
    match authenticate(
        &state.management,
        parts,
        &body,
        CredentialScope::Connections,
    ) {
        Ok(()) => Ok(body),
        Err(Refusal::Unsigned(e)) => {
            debug!(error = %e, "management request refused");
            Err(ManagementError::Forbidden)
        }
        Err(Refusal::OutOfScope { access_key_id }) => {
            info!(access_key_id = %access_key_id, "management request refused: the credential lacks the connections scope");
            Err(ManagementError::AccessDenied)
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
