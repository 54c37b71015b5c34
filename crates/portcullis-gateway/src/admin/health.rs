//! `GET /healthz`: `{"status":"ok","connections":N}`, or 503 `draining` once the gateway
//! shuts down, so a load balancer stops sending new clients.

use axum::body::Body;
use http::{Response, StatusCode};

use crate::reply;
use crate::state::State;

pub fn healthz(state: &State) -> Response<Body> {
    let draining = state.shutdown.is_cancelled();
    let (status, code) = if draining {
        ("draining", StatusCode::SERVICE_UNAVAILABLE)
    } else {
        ("ok", StatusCode::OK)
    };
    let body = format!(
        "{{\"status\":\"{status}\",\"connections\":{}}}",
        state.registry.local_count()
    );
    reply::json(code, body)
}
