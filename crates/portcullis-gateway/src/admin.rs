//! The admin listener's own endpoints: `/healthz` and `/metrics`. `/admin/...` is the identity
//! admin API (`identity_admin`); everything else on that listener is the management API.

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};

use crate::registry::ConnectionRegistry;
use crate::server::State;

pub fn healthz(state: &State) -> Response<Body> {
    let status = if state.shutdown.is_cancelled() {
        "draining"
    } else {
        "ok"
    };
    let body = format!(
        "{{\"status\":\"{status}\",\"connections\":{}}}",
        state.registry.local_count()
    );
    let mut response = Response::new(Body::from(body));
    if state.shutdown.is_cancelled() {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn metrics(state: &Arc<State>) -> Response<Body> {
    let mut response = Response::new(Body::from(state.metrics.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
