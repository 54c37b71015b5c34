//! `GET /metrics`: the gateway's metrics in the OpenMetrics text format.

use axum::body::Body;
use http::{HeaderValue, Response, header};

use crate::metrics::Metrics;

pub fn metrics(metrics: &Metrics) -> Response<Body> {
    let mut response = Response::new(Body::from(metrics.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
