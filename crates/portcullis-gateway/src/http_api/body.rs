//! Reading a request body within the API's `max_body_bytes`, and telling a body that was
//! over it from other failures.

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::BodyExt;

#[cfg(test)]
pub use crate::upstream::is_length_limit;

use crate::reply;

/// 413, the answer to a body over the limit.
pub fn too_large() -> Response<Body> {
    reply::message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
}

/// Whether the request declares a `Content-Length` over `limit`.
pub fn declared_over(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
}

/// Read a request body up to `limit` bytes; 413 beyond.
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Vec<u8>, Response<Body>> {
    if declared_over(headers, limit) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(_) => Err(too_large()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
