//! The HTTP upgrade of a WebSocket API: handshake checks, Origin allow-list, subprotocol
//! negotiation, the `$connect` integration, and the 101 answer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use portcullis_auth::error::AuthError;
use portcullis_auth::identity::RequestParts;
use portcullis_auth::request::WebSocketAuthorizerRequest;
use portcullis_core::event::{EventType, WsEventContext, connect_event};
use portcullis_core::id::{ConnectionId, request_id};
use portcullis_core::{event, forward, policy, redact, subprotocol};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::{info, warn};

use super::WsApi;
use super::session::{self, Session};
use crate::authorizers::refusal;
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

fn is_upgrade_request(req: &Request<Body>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    req.method() == Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
}

/// Answer an upgrade request for `api`.
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
    if !is_upgrade_request(&req) {
        let mut response = plain(StatusCode::UPGRADE_REQUIRED, "Upgrade Required");
        response
            .headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    }
    if header_str(req.headers(), header::SEC_WEBSOCKET_VERSION) != Some("13") {
        let mut response = plain(
            StatusCode::UPGRADE_REQUIRED,
            "Unsupported WebSocket version",
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    let Some(key) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return plain(StatusCode::BAD_REQUEST, "Missing Sec-WebSocket-Key");
    };

    // Origin allow-list: a browser always sends Origin; non-browser clients may omit it.
    if !api.config.allowed_origins.is_empty()
        && let Some(origin) = req.headers().get(header::ORIGIN)
        && !api
            .config
            .allowed_origins
            .iter()
            .any(|o| o.as_bytes() == origin.as_bytes())
    {
        info!(api = %api.name, path = %path_for_log, status = 403, "upgrade refused: origin not allowed");
        reject_metric(&state, &api, 403);
        return plain(StatusCode::FORBIDDEN, "Forbidden");
    }

    let offered: Vec<&str> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let negotiated = subprotocol::negotiate(&offered, &api.config.subprotocols);

    let connection_id = ConnectionId::generate(crate::registry::ConnectionRegistry::node(
        state.registry.as_ref(),
    ));
    let connected_at = event::now_ms();
    let user_agent = header_str(req.headers(), header::USER_AGENT).map(str::to_owned);
    let source_ip = peer.ip().to_string();

    let on_upgrade = hyper::upgrade::on(&mut req);
    // The session keeps the connection's place in the listener's budgets until it ends.
    let slot = req.extensions_mut().remove::<ConnectionSlot>();
    let headers = event_headers(req.headers(), &source_ip, state.listen_port, &state.scheme);
    let query = query_pairs(req.uri().query());

    // The authorizer decides before $connect runs; a refusal never reaches the backend.
    let identity = match &api.config.authorizer {
        None => None,
        Some(name) => {
            let Some(authorizer) = state.authorizers.get(name) else {
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            };
            let rid = request_id();
            let header_refs: Vec<(&str, &str)> = headers
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
                    query: &query,
                },
                context: event_context(
                    &api,
                    &connection_id,
                    connected_at,
                    &rid,
                    &source_ip,
                    user_agent.as_deref(),
                    None,
                ),
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
                Ok(identity) => Some(Arc::new(identity)),
                Err(e) => {
                    let status = e.status();
                    info!(api = %api.name, path = %path_for_log, status, "upgrade refused by the authorizer");
                    reject_metric(&state, &api, status);
                    return refusal(&e, &api.name, name, &state.metrics);
                }
            }
        }
    };

    // The $connect integration decides next.
    let mut extra_headers: Vec<(String, String)> = Vec::new();
    if let Some(route) = api.routes.get("$connect")
        && let Some(integration) = &route.integration
    {
        let rid = request_id();
        let ctx = event_context(
            &api,
            &connection_id,
            connected_at,
            &rid,
            &source_ip,
            user_agent.as_deref(),
            identity.as_ref().map(|i| &*i.context),
        );
        // The gateway's session cookies stay with the gateway (the authorizer had them).
        let body = connect_event(&ctx, &forward::event_headers(&headers), &query);
        match integration.invoke(body).await {
            Ok(result) => {
                let status = result.status_code.unwrap_or(200);
                if !(200..300).contains(&status) {
                    info!(api = %api.name, connection_id = %connection_id, path = %path_for_log, status, "upgrade refused by $connect");
                    reject_metric(&state, &api, status);
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                    let mut response = Response::new(Body::empty());
                    *response.status_mut() = status;
                    return response;
                }
                extra_headers = result.headers;
            }
            Err(e) => {
                warn!(api = %api.name, connection_id = %connection_id, path = %path_for_log, error = %e, "$connect integration failed");
                state.metrics.error(e.kind());
                reject_metric(&state, &api, 502);
                return plain(StatusCode::BAD_GATEWAY, "Internal server error");
            }
        }
    }

    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let mut protocol_set = false;
    for (name, value) in &extra_headers {
        let lower = name.to_ascii_lowercase();
        // The handshake headers are the gateway's, never the backend's.
        if matches!(
            lower.as_str(),
            "connection"
                | "upgrade"
                | "sec-websocket-accept"
                | "content-length"
                | "transfer-encoding"
        ) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(lower.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            if n == header::SEC_WEBSOCKET_PROTOCOL {
                // Never echo the token back, whoever asks.
                if negotiated.token.as_deref() == Some(value.as_str()) {
                    continue;
                }
                protocol_set = true;
            }
            response.headers_mut().append(n, v);
        }
    }
    if !protocol_set
        && let Some(echo) = &negotiated.echo
        && let Ok(v) = HeaderValue::from_str(echo)
    {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }

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
                session::deliver_disconnect(&state, &api, &handle, context, 1006, "Connection closed abnormally").await;
            }
        }
    });
    response
}

fn event_context<'a>(
    api: &'a WsApi,
    connection_id: &'a ConnectionId,
    connected_at: i64,
    request_id: &'a str,
    source_ip: &'a str,
    user_agent: Option<&'a str>,
    authorizer: Option<&'a serde_json::value::RawValue>,
) -> WsEventContext<'a> {
    WsEventContext {
        route_key: "$connect",
        event_type: EventType::Connect,
        connection_id: connection_id.as_str(),
        connected_at_ms: connected_at,
        request_id,
        message_id: None,
        request_time_ms: event::now_ms(),
        stage: &api.config.stage,
        api_id: &api.config.api_id,
        domain_name: &api.domain_name,
        source_ip,
        user_agent,
        authorizer,
        disconnect_status_code: None,
        disconnect_reason: None,
    }
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
