//! The HTTP upgrade of a WebSocket API, in its phases: the handshake checks (Origin
//! allow-list and subprotocol negotiation included), the authorizer, the `$connect`
//! integration, then registering the connection and answering 101. The checks and the 101's
//! headers are `portcullis_core::handshake`; this module does the I/O around them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use portcullis_core::close::Close;
use portcullis_core::handshake::{self, Accepted, Refusal, UpgradePolicy};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::{info, warn};

use super::WsApi;
use super::admission::{Attempt, authorize, call_connect};
use super::session::{self, Session};
use crate::authorizers::Identity;
use crate::listener::ConnectionSlot;
use crate::registry::Transport;
use crate::state::State;

/// Answer an upgrade request for `api`. Each phase either hands the next what it learned or
/// answers the client itself; only a request every phase admits is registered. Phases 2 and 3,
/// the authorizer and `$connect`, are the admission the SSE stream shares
/// ([`super::admission`]).
pub async fn handle_upgrade(
    state: Arc<State>,
    api: Arc<WsApi>,
    mut req: Request<Body>,
    peer: SocketAddr,
) -> Response<Body> {
    let attempt = Attempt::new(&state, api, Transport::WebSocket, &req, peer);
    let accepted = match check_request(&state, &attempt, &req) {
        Ok(accepted) => accepted,
        Err(refusal) => return refused(refusal),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    // The session keeps the connection's place in the listener's budgets until it ends.
    let slot = req.extensions_mut().remove::<ConnectionSlot>();
    let identity = match authorize(&state, &attempt).await {
        Ok(identity) => identity,
        Err(refusal) => return refusal,
    };
    let connect_headers = match call_connect(&state, &attempt, identity.as_ref()).await {
        Ok(headers) => headers,
        Err(refusal) => return refusal,
    };
    let response = switching_protocols(&accepted, &connect_headers);
    let registry = state.registry.clone();
    open(state, attempt, identity, on_upgrade, slot);
    // In a cluster, pushes to the connection's user from any node reach it once the client
    // has its answer.
    registry.settle().await;
    response
}

/// Phase 1, the handshake checks (`portcullis_core::handshake::check`): a refusal is answered
/// at once ([`refused`]); an Origin refusal is logged and counted.
fn check_request(
    state: &State,
    attempt: &Attempt,
    req: &Request<Body>,
) -> Result<Accepted, Refusal> {
    let api = &attempt.api;
    let headers: Vec<(&str, &[u8])> = req
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let policy = UpgradePolicy {
        allowed_origins: &api.config.allowed_origins,
        subprotocols: &api.config.subprotocols,
    };
    handshake::check(req.method().as_str(), &headers, &policy).inspect_err(|refusal| {
        if *refusal == Refusal::OriginNotAllowed {
            info!(api = %api.name, path = %attempt.path_for_log, status = 403, "upgrade refused: origin not allowed");
            attempt.rejected(state, 403);
        }
    })
}

/// The answer to a request that failed a handshake check.
fn refused(refusal: Refusal) -> Response<Body> {
    let status =
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = crate::reply::message(status, refusal.message());
    if let Some((name, value)) = refusal.header() {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Phase 4 (after [`authorize`] and [`call_connect`]), the answer: `101 Switching Protocols` with the headers
/// `portcullis_core::handshake::switching_protocols` lists.
fn switching_protocols(
    accepted: &Accepted,
    connect_headers: &[(String, String)],
) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    for (name, value) in handshake::switching_protocols(accepted, connect_headers) {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(n, v);
        }
    }
    response
}

/// Phase 5, the connection opens: registered before the 101 is sent, then its session runs
/// once the client has the answer and the connection is upgraded.
fn open(
    state: Arc<State>,
    attempt: Attempt,
    identity: Option<Arc<Identity>>,
    on_upgrade: OnUpgrade,
    slot: Option<ConnectionSlot>,
) {
    let handle = Arc::new(attempt.handle(identity.as_ref()));
    let api = attempt.api;
    info!(api = %api.name, connection_id = %handle.id, path = %attempt.path_for_log, "connected");
    // Registered before the 101 is sent: a client that has its answer (and a backend told by
    // that client) can reach the connection through `@connections` at once; pushes made before
    // the session task runs wait in the connection's queue.
    state.registry.register(handle.clone());
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let _slot = slot;
        if api.is_retired() {
            // A reload removed the API while this upgrade was under way.
            let _ = state.registry.close(&handle.id, Close::ApiRemoved).await;
        }
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(api.socket_config),
                )
                .await;
                session::run(socket, Session { state, api, handle, identity }).await;
            }
            Err(e) => {
                warn!(api = %api.name, connection_id = %handle.id, error = %e, "upgrade failed after $connect");
                state.registry.unregister(&handle.id);
                handle.queue.close();
                let context = identity.as_ref().and_then(|i| i.event_authorizer());
                session::deliver_disconnect(&state, &api, &handle, context, &Close::Abnormal).await;
            }
        }
    });
}

#[cfg(test)]
mod tests;
