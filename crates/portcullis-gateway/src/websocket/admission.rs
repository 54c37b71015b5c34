//! Admission to a WebSocket API, shared by its two transports (the WebSocket upgrade and the
//! SSE stream): what the request says about the connection it asks for ([`Attempt`]), the
//! API's authorizer ([`authorize`]), then the `$connect` integration ([`call_connect`]). A
//! refusal is answered with the HTTP APIs' JSON bodies and counted per transport.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Request, Response, StatusCode, header};
use portcullis_auth::error::AuthError;
use portcullis_auth::identity::RequestParts;
use portcullis_auth::request::WebSocketAuthorizerRequest;
use portcullis_config::Authorization;
use portcullis_core::event::{self, EventType, WsEventContext, connect_event};
use portcullis_core::id::{ConnectionId, request_id};
use portcullis_core::{forward, policy, redact};
use tracing::{info, warn};

use super::WsApi;
use crate::authorizers::{Identity, refusal};
use crate::headers::{canonical_name, query_pairs};
use crate::registry::{ConnectionHandle, Transport};
use crate::reply;
use crate::state::State;

/// What the phases after the request checks know about the request and the connection it asks
/// for.
pub struct Attempt {
    pub api: Arc<WsApi>,
    pub transport: Transport,
    /// The path and query with credentials redacted, for logs.
    pub path_for_log: String,
    pub connection_id: ConnectionId,
    pub connected_at: i64,
    pub user_agent: Option<String>,
    pub source_ip: String,
    /// The request's headers as events carry them, with the forwarding headers added.
    headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    /// The request as it was signed, kept for an `AWS_IAM` API only.
    pub(super) signed: Option<super::iam::Signed>,
}

impl Attempt {
    pub fn new(
        state: &State,
        api: Arc<WsApi>,
        transport: Transport,
        req: &Request<Body>,
        peer: SocketAddr,
    ) -> Self {
        let connection_id = ConnectionId::generate(state.registry.node());
        // `sourceIp`: the client (behind a trusted proxy, the address it forwarded); the
        // `X-Forwarded-For` of events ends with the peer the request came from.
        let source_ip = crate::abuse::client_ip(req, peer).to_string();
        let hop = peer.ip().to_canonical().to_string();
        Attempt {
            path_for_log: path_for_log(req),
            connection_id,
            connected_at: event::now_ms(),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            headers: event_headers(req.headers(), &hop, state.listen_port, &state.scheme),
            query: query_pairs(req.uri().query()),
            signed: (api.config.authorization == Authorization::AwsIam)
                .then(|| super::iam::Signed::of(req)),
            source_ip,
            transport,
            api,
        }
    }

    /// The `requestContext` of the `$connect` event (and of the authorizer's request).
    fn context<'a>(
        &'a self,
        request_id: &'a str,
        identity: Option<&'a Identity>,
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
            authorizer: identity.and_then(|i| i.event_authorizer()),
            disconnect_status_code: None,
            disconnect_reason: None,
            connection_type: connection_type(self.transport),
            caller: identity.and_then(|i| i.caller()),
        }
    }

    /// The connection's handle, filed under the principal and session the authorizer
    /// established (not registered yet).
    pub fn handle(&self, identity: Option<&Arc<Identity>>) -> ConnectionHandle {
        let mut handle = ConnectionHandle::new(
            self.connection_id,
            self.api.name.clone(),
            self.connected_at,
            self.source_ip.clone(),
            self.user_agent.clone().unwrap_or_default(),
            identity.and_then(|i| i.principal_id.clone()),
            self.api.config.send_queue,
        );
        handle.session = identity.and_then(|i| i.session.clone());
        handle.transport = self.transport;
        handle.identity = identity.cloned();
        handle
    }

    /// What the request is, for logs: an `upgrade` or a `stream`.
    fn what(&self) -> &'static str {
        match self.transport {
            Transport::WebSocket => "upgrade",
            Transport::Sse => "stream",
        }
    }

    /// Count a refused connection by the status it was answered with.
    pub fn rejected(&self, state: &State, status: u16) {
        let family = match self.transport {
            Transport::WebSocket => &state.metrics.connect_rejects,
            Transport::Sse => &state.metrics.sse.connect_rejects,
        };
        family
            .get_or_create(&crate::metrics::RejectLabels {
                api: self.api.name.to_string(),
                status: status.to_string(),
            })
            .inc();
    }
}

/// `requestContext.connectionType` of a transport's events: absent for a WebSocket.
pub fn connection_type(transport: Transport) -> Option<&'static str> {
    match transport {
        Transport::WebSocket => None,
        Transport::Sse => Some(transport.as_str()),
    }
}

/// The request's path and query with credentials redacted, for logs.
pub fn path_for_log(req: &Request<Body>) -> String {
    redact::redact_url(
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    )
    .into_owned()
}

/// The API's authorizer (and the `$connect` route's scopes and groups). It decides before
/// `$connect` runs; a refusal never reaches the backend.
pub async fn authorize(
    state: &State,
    attempt: &Attempt,
) -> Result<Option<Arc<Identity>>, Response<Body>> {
    let api = &attempt.api;
    let path_for_log = &attempt.path_for_log;
    if api.config.authorization == Authorization::AwsIam {
        return match super::iam::authorize(state, api, attempt.signed.as_ref()).await {
            Ok(identity) => Ok(Some(identity)),
            Err(reason) => {
                info!(api = %api.name, transport = attempt.transport.as_str(), path = %path_for_log, status = 403, reason = %reason, "{} refused: AWS_IAM", attempt.what());
                attempt.rejected(state, 403);
                Err(reply::message(StatusCode::FORBIDDEN, "Forbidden"))
            }
        };
    }
    let Some(name) = &api.config.authorizer else {
        return Ok(None);
    };
    let Some(authorizer) = state.authorizers.get(name) else {
        return Err(reply::message(
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
            info!(api = %api.name, transport = attempt.transport.as_str(), path = %path_for_log, status, "{} refused by the authorizer", attempt.what());
            attempt.rejected(state, status);
            Err(refusal(&e, &api.name, name, &state.metrics))
        }
    }
}

/// The `$connect` integration, if the API has one: a 2xx result (or none) admits the
/// connection and may add headers to the answer; any other status refuses it with that status
/// (a WebSocket upgrade with an empty body, an SSE request with the HTTP APIs' JSON body).
pub async fn call_connect(
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
    let ctx = attempt.context(&rid, identity.map(|i| &**i));
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
                info!(api = %api.name, transport = attempt.transport.as_str(), connection_id = %connection_id, path = %path_for_log, status, "{} refused by $connect", attempt.what());
                attempt.rejected(state, status);
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                return Err(match attempt.transport {
                    Transport::WebSocket => reply::empty(status),
                    Transport::Sse => {
                        reply::message(status, status.canonical_reason().unwrap_or("Refused"))
                    }
                });
            }
            Ok(result.headers)
        }
        Err(e) => {
            // 502 whatever failed (API Gateway's answer when the `$connect` function throws);
            // the error's text stays in the log.
            warn!(api = %api.name, transport = attempt.transport.as_str(), connection_id = %connection_id, request_id = %rid, path = %path_for_log, error = %e, "$connect integration failed");
            state.metrics.error(e.kind());
            attempt.rejected(state, 502);
            Err(reply::message(
                StatusCode::BAD_GATEWAY,
                "Internal server error",
            ))
        }
    }
}

/// Request headers as API Gateway passes them on CONNECT, with the forwarding headers it adds
/// (`X-Forwarded-For`: the client's values, then `hop`, the address the request came from).
fn event_headers(headers: &HeaderMap, hop: &str, port: u16, scheme: &str) -> Vec<(String, String)> {
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
        Some(prior) => format!("{prior}, {hop}"),
        None => hop.to_owned(),
    };
    out.push(("X-Forwarded-For".to_owned(), xff));
    out.push(("X-Forwarded-Port".to_owned(), port.to_string()));
    out.push(("X-Forwarded-Proto".to_owned(), scheme.to_owned()));
    out
}
