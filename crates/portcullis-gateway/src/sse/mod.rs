//! Server-sent events of a WebSocket API with `sse`: `GET {sse.path}` admitted exactly like
//! the API's WebSocket upgrade (Origin allow-list, the authorizer with its identity sources and
//! CSRF rule, `$connect` with `requestContext.connectionType = "sse"`), then answered `200`
//! with a `text/event-stream` body fed by the connection's outbound queue ([`stream`]).
//!
//! The phases: check the method and the Origin, [`authorize`], [`call_connect`], register the
//! connection, take the replay snapshot (after registering: a push is then either in the
//! snapshot or queued for the connection, never in neither), answer.

mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use portcullis_core::close::Close;
use portcullis_core::handshake;
use portcullis_core::sse::{self as events, MAX_EVENT_ID_BYTES};
use tracing::info;

use crate::registry::Transport;
use crate::reply;
use crate::state::State;
use crate::websocket::WsApi;
use crate::websocket::admission::{Attempt, authorize, call_connect};

/// The query parameter that stands in for `Last-Event-ID` (a client that cannot set headers).
const LAST_EVENT_ID_QUERY: &str = "lastEventId";

/// Answer `GET {sse.path}` of `api`.
pub async fn handle(
    state: Arc<State>,
    api: Arc<WsApi>,
    req: Request<Body>,
    peer: SocketAddr,
) -> Response<Body> {
    let Some(replay) = api.replay.clone() else {
        return reply::message(StatusCode::NOT_FOUND, "Not Found");
    };
    if req.method() != Method::GET {
        let mut response = reply::message(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let attempt = Attempt::new(&state, api.clone(), Transport::Sse, &req, peer);
    let headers: Vec<(&str, &[u8])> = req
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    if !handshake::origin_allowed(&headers, &api.config.allowed_origins) {
        info!(api = %api.name, path = %attempt.path_for_log, status = 403, "stream refused: origin not allowed");
        attempt.rejected(&state, 403);
        return reply::message(StatusCode::FORBIDDEN, "Forbidden");
    }
    let cors_origin =
        handshake::listed_origin(&headers, &api.config.allowed_origins).map(str::to_owned);
    let last_event_id = last_event_id(&req, &attempt.query);
    let identity = match authorize(&state, &attempt).await {
        Ok(identity) => identity,
        Err(refusal) => return refusal,
    };
    let connect_headers = match call_connect(&state, &attempt, identity.as_ref()).await {
        Ok(headers) => headers,
        Err(refusal) => return refusal,
    };
    let handle = Arc::new(attempt.handle(identity.as_ref()));
    state.registry.register(handle.clone());
    if api.is_retired() {
        // A reload removed the API while this stream was being admitted.
        let _ = state.registry.close(&handle.id, Close::ApiRemoved).await;
    }
    state.registry.settle().await;
    let snapshot = replay
        .snapshot(handle.principal.as_deref(), last_event_id.as_deref())
        .await;
    info!(api = %api.name, connection_id = %handle.id, path = %attempt.path_for_log, transport = "sse", reset = snapshot.reset, replayed = snapshot.events.len(), "connected");
    let body = stream::open(
        stream::Stream {
            state,
            api,
            handle,
            identity,
        },
        snapshot,
    );
    let mut response = Response::new(body);
    let out = response.headers_mut();
    for (name, value) in events::response_headers(cors_origin.as_deref(), &connect_headers) {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            out.append(n, v);
        }
    }
    response
}

/// The client's last event id: the `Last-Event-ID` header (what `EventSource` sends when it
/// reconnects), else the `lastEventId` query parameter; an empty one is none (`EventSource`
/// sends none when its last id is empty). One longer than any id the gateway writes is kept
/// as `?`, an id that is not the gateway's.
fn last_event_id(req: &Request<Body>, query: &[(String, String)]) -> Option<String> {
    let raw = match req.headers().get("last-event-id") {
        // Not visible ASCII: not an id the gateway wrote either.
        Some(value) => Some(value.to_str().unwrap_or("?")),
        None => query
            .iter()
            .find(|(name, _)| name == LAST_EVENT_ID_QUERY)
            .map(|(_, value)| value.as_str()),
    };
    let id = raw?.trim();
    if id.is_empty() {
        None
    } else if id.len() > MAX_EVENT_ID_BYTES {
        Some("?".to_owned())
    } else {
        Some(id.to_owned())
    }
}
