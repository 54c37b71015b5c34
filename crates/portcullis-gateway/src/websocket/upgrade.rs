//! The HTTP upgrade of a WebSocket API, in its phases: the handshake checks (Origin
//! allow-list and subprotocol negotiation included), the authorizer, the `$connect`
//! integration, then registering the connection and answering 101. The checks and the 101's
//! headers are `portcullis_core::handshake`; this module does the I/O around them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use portcullis_auth::error::AuthError;
use portcullis_auth::identity::RequestParts;
use portcullis_auth::request::WebSocketAuthorizerRequest;
use portcullis_core::close::Close;
use portcullis_core::event::{EventType, WsEventContext, connect_event};
use portcullis_core::handshake::{self, Accepted, Refusal, UpgradePolicy};
use portcullis_core::id::{ConnectionId, request_id};
use portcullis_core::{event, forward, policy, redact};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::{info, warn};

use super::WsApi;
use super::session::{self, Session};
use crate::authorizers::{Identity, refusal};
use crate::headers::{canonical_name, query_pairs};
use crate::listener::ConnectionSlot;
use crate::registry::{ConnectionHandle, ConnectionRegistry};
use crate::state::State;

fn plain(status: StatusCode, message: &str) -> Response<Body> {
    crate::reply::message(status, message)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Answer an upgrade request for `api`. Each phase either hands the next what it learned or
/// answers the client itself; only a request every phase admits is registered.
pub async fn handle_upgrade(
    state: Arc<State>,
    api: Arc<WsApi>,
    mut req: Request<Body>,
    peer: SocketAddr,
) -> Response<Body> {
    let path_for_log = redact::redact_url(
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    )
    .into_owned();
    let accepted = match check_request(&state, &api, &req, &path_for_log) {
        Ok(accepted) => accepted,
        Err(refusal) => return refused(refusal),
    };
    let attempt = Attempt::new(&state, api, &req, peer, path_for_log);
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
    open(state, attempt, identity, on_upgrade, slot);
    response
}

/// Phase 1, the handshake checks (`portcullis_core::handshake::check`): a refusal is answered
/// at once ([`refused`]); an Origin refusal is logged and counted.
fn check_request(
    state: &State,
    api: &WsApi,
    req: &Request<Body>,
    path_for_log: &str,
) -> Result<Accepted, Refusal> {
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
            info!(api = %api.name, path = %path_for_log, status = 403, "upgrade refused: origin not allowed");
            reject_metric(state, api, 403);
        }
    })
}

/// The answer to a request that failed a handshake check.
fn refused(refusal: Refusal) -> Response<Body> {
    let status =
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = plain(status, refusal.message());
    if let Some((name, value)) = refusal.header() {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// What the phases after the checks know about the request and the connection it asks for.
struct Attempt {
    api: Arc<WsApi>,
    path_for_log: String,
    connection_id: ConnectionId,
    connected_at: i64,
    user_agent: Option<String>,
    source_ip: String,
    /// The request's headers as events carry them, with the forwarding headers added.
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl Attempt {
    fn new(
        state: &State,
        api: Arc<WsApi>,
        req: &Request<Body>,
        peer: SocketAddr,
        path_for_log: String,
    ) -> Self {
        let connection_id = ConnectionId::generate(crate::registry::ConnectionRegistry::node(
            state.registry.as_ref(),
        ));
        let source_ip = peer.ip().to_string();
        Attempt {
            path_for_log,
            connection_id,
            connected_at: event::now_ms(),
            user_agent: header_str(req.headers(), header::USER_AGENT).map(str::to_owned),
            headers: event_headers(req.headers(), &source_ip, state.listen_port, &state.scheme),
            query: query_pairs(req.uri().query()),
            source_ip,
            api,
        }
    }

    /// The `requestContext` of the `$connect` event (and of the authorizer's request).
    fn context<'a>(
        &'a self,
        request_id: &'a str,
        authorizer: Option<&'a serde_json::value::RawValue>,
    ) -> WsEventContext<'a> {
        WsEventContext {
            route_key: "$connect",
            event_type: EventType::Connect,
            connection_id: self.connection_id.as_str(),
            connected_at_ms: self.connected_at,
            request_id,
            message_id: None,
            request_time_ms: event::now_ms(),
            stage: &self.api.config.stage,
            api_id: &self.api.config.api_id,
            domain_name: &self.api.domain_name,
            source_ip: &self.source_ip,
            user_agent: self.user_agent.as_deref(),
            authorizer,
            disconnect_status_code: None,
            disconnect_reason: None,
        }
    }
}

/// Phase 2, the API's authorizer (and the `$connect` route's scopes and groups). It decides
/// before `$connect` runs; a refusal never reaches the backend.
async fn authorize(
    state: &State,
    attempt: &Attempt,
) -> Result<Option<Arc<Identity>>, Response<Body>> {
    let api = &attempt.api;
    let path_for_log = &attempt.path_for_log;
    let Some(name) = &api.config.authorizer else {
        return Ok(None);
    };
    let Some(authorizer) = state.authorizers.get(name) else {
        return Err(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
        ));
    };
    let rid = request_id();
    let header_refs: Vec<(&str, &str)> = attempt
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let arn = policy::websocket_arn(
        &state.management.region,
        &state.management.account_id,
        &api.config.api_id,
        &api.config.stage,
        "$connect",
    );
    let input = WebSocketAuthorizerRequest {
        method_arn: &arn,
        request: RequestParts {
            headers: &header_refs,
            query: &attempt.query,
        },
        context: attempt.context(&rid, None),
        stage_variables: &[],
    };
    let decided = authorizer
        .authorize_connect(&input, &state.metrics)
        .await
        .and_then(|identity| {
            // The $connect route's own scopes and groups.
            match api.routes.get("$connect") {
                Some(route) if !identity.allows(&route.scopes, &route.groups) => {
                    Err(AuthError::Forbidden)
                }
                _ => Ok(identity),
            }
        });
    match decided {
        Ok(identity) => Ok(Some(Arc::new(identity))),
        Err(e) => {
            let status = e.status();
            info!(api = %api.name, path = %path_for_log, status, "upgrade refused by the authorizer");
            reject_metric(state, api, status);
            Err(refusal(&e, &api.name, name, &state.metrics))
        }
    }
}

/// Phase 3, the `$connect` integration, if the API has one: a 2xx result (or none) admits the
/// connection and may add headers to the 101; any other status refuses it with that status.
async fn call_connect(
    state: &State,
    attempt: &Attempt,
    identity: Option<&Arc<Identity>>,
) -> Result<Vec<(String, String)>, Response<Body>> {
    let api = &attempt.api;
    let (connection_id, path_for_log) = (&attempt.connection_id, &attempt.path_for_log);
    let Some(integration) = api
        .routes
        .get("$connect")
        .and_then(|route| route.integration.as_ref())
    else {
        return Ok(Vec::new());
    };
    let rid = request_id();
    let ctx = attempt.context(&rid, identity.map(|i| &*i.context));
    // The gateway's session cookies stay with the gateway (the authorizer had them).
    let body = connect_event(
        &ctx,
        &forward::event_headers(&attempt.headers),
        &attempt.query,
    );
    match integration.invoke(body).await {
        Ok(result) => {
            let status = result.status_code.unwrap_or(200);
            if !(200..300).contains(&status) {
                info!(api = %api.name, connection_id = %connection_id, path = %path_for_log, status, "upgrade refused by $connect");
                reject_metric(state, api, status);
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                let mut response = Response::new(Body::empty());
                *response.status_mut() = status;
                return Err(response);
            }
            Ok(result.headers)
        }
        Err(e) => {
            warn!(api = %api.name, connection_id = %connection_id, path = %path_for_log, error = %e, "$connect integration failed");
            state.metrics.error(e.kind());
            reject_metric(state, api, 502);
            Err(plain(StatusCode::BAD_GATEWAY, "Internal server error"))
        }
    }
}

/// Phase 4, the answer: `101 Switching Protocols` with the headers
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
    let Attempt {
        api,
        path_for_log,
        connection_id,
        connected_at,
        user_agent,
        source_ip,
        ..
    } = attempt;
    let mut handle = ConnectionHandle::new(
        connection_id,
        api.name.clone(),
        connected_at,
        source_ip,
        user_agent.unwrap_or_default(),
        identity.as_ref().and_then(|i| i.principal_id.clone()),
        api.config.send_queue,
    );
    handle.session = identity.as_ref().and_then(|i| i.session.clone());
    let handle = Arc::new(handle);
    info!(api = %api.name, connection_id = %handle.id, path = %path_for_log, "connected");
    // Registered before the 101 is sent: a client that has its answer (and a backend told by
    // that client) can reach the connection through `@connections` at once; pushes made before
    // the session task runs wait in the connection's queue.
    state.registry.register(handle.clone());
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let _slot = slot;
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
                let context = identity.as_ref().map(|i| &*i.context);
                session::deliver_disconnect(&state, &api, &handle, context, &Close::Abnormal).await;
            }
        }
    });
}

fn reject_metric(state: &State, api: &WsApi, status: u16) {
    state
        .metrics
        .connect_rejects
        .get_or_create(&crate::metrics::RejectLabels {
            api: api.name.to_string(),
            status: status.to_string(),
        })
        .inc();
}

/// Request headers as API Gateway passes them on CONNECT, with the forwarding headers it adds.
fn event_headers(
    headers: &HeaderMap,
    source_ip: &str,
    port: u16,
    scheme: &str,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(headers.len() + 3);
    let mut forwarded_for = None;
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        if name == "x-forwarded-for" {
            forwarded_for = Some(value.to_owned());
            continue;
        }
        if name == "x-forwarded-port" || name == "x-forwarded-proto" {
            continue;
        }
        out.push((canonical_name(name.as_str()), value.to_owned()));
    }
    let xff = match forwarded_for {
        Some(prior) => format!("{prior}, {source_ip}"),
        None => source_ip.to_owned(),
    };
    out.push(("X-Forwarded-For".to_owned(), xff));
    out.push(("X-Forwarded-Port".to_owned(), port.to_string()));
    out.push(("X-Forwarded-Proto".to_owned(), scheme.to_owned()));
    out
}

#[cfg(test)]
mod tests;
