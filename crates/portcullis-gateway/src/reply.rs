//! The gateway's answers of its own: every JSON error or status document any edge writes (the
//! router, HTTP APIs, WebSocket upgrades, `@connections`, the identity admin API, the
//! listeners) is built here, so they all look alike.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};

/// `body`, a JSON document, with `status` and `content-type: application/json`.
pub fn json(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    with_type(status, body, "application/json")
}

/// `{"message": text}` with `status` (the shape API Gateway uses for its own errors).
pub fn message(status: StatusCode, text: &str) -> Response<Body> {
    json(status, message_body(text))
}

/// The bytes of `{"message": text}`.
pub fn message_body(text: &str) -> String {
    serde_json::json!({ "message": text }).to_string()
}

/// `status` and no body, no content type.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// `text` as `text/plain; charset=utf-8`.
pub fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    with_type(status, text, "text/plain; charset=utf-8")
}

fn with_type(
    status: StatusCode,
    body: impl Into<Body>,
    content_type: &'static str,
) -> Response<Body> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
