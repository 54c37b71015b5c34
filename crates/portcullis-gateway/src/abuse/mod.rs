//! Abuse limits on the public listener's sessions, decided before any authorizer or `$connect`
//! runs, and who the client is behind trusted proxies:
//!
//! - the client address: the socket's peer, or behind `server.trusted_proxies` the address
//!   `X-Forwarded-For` names (`portcullis_core::proxies`); recorded on every request
//!   ([`ClientIp`]) for `sourceIp` in events, the identity provider's per-address limits and
//!   the limits below;
//! - `server.connect_rate_per_ip`: a new WebSocket or SSE stream beyond the client address's
//!   rate gets `429 {"message":"Too Many Requests"}` (with `Retry-After: 1`);
//! - `server.max_connections`: beyond that many sessions open on the node, `503
//!   {"message":"Service Unavailable"}`;
//! - `server.max_connections_per_ip` for sessions through a trusted proxy (whose own sockets
//!   the listener does not cap per address): counted under the forwarded client's address,
//!   beyond it 503 as well.
//!
//! Each refusal is counted in `portcullis_connections_refused_total{listener="public",
//! reason="connect_rate"|"max_connections"|"per_ip"}`. `websocket.NAME.message_rate` is
//! [`MessageRate`], applied by the session to each message.
//!
//! The listener keeps a looser bound of its own on sockets of every kind ([`socket_budget`]),
//! a safety net for file descriptors: plain HTTP requests and upgrades still being answered
//! need sockets too.

mod rate;
mod sessions;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use futures_util::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode, header};
use portcullis_config::Server;
use portcullis_core::proxies::{self, Cidr};
use tracing::debug;

use crate::listener::{ClientSlot, ConnectionSlot, PerClient};
use crate::metrics::Metrics;
use crate::reply;

use rate::ConnectRate;
pub use rate::MessageRate;
use sessions::{SessionPermit, Sessions};

/// The public listener's bound on sockets of every kind, given `server.max_connections`:
/// a quarter more, and at least 1,024 more. Beyond it the listener stops accepting until one
/// closes (the kernel's backlog holds the rest).
pub fn socket_budget(max_connections: usize) -> usize {
    max_connections
        .saturating_add((max_connections / 4).max(1024))
        .min(tokio::sync::Semaphore::MAX_PERMITS)
}

/// The client's address, as [`Limits::identify`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client address of `req`: what [`Limits::identify`] recorded, else the socket's peer.
pub fn client_ip(req: &Request<Body>, peer: SocketAddr) -> IpAddr {
    req.extensions()
        .get::<ClientIp>()
        .map_or_else(|| peer.ip().to_canonical(), |c| c.0)
}

/// The counts that outlive a reload: the node's open sessions and the public listener's
/// per-address table (its cap and its exempt trusted proxies are those the gateway started
/// with; a change of `max_connections_per_ip` needs a restart, one of `trusted_proxies` changes
/// who the client is at once and the accept-time exemption after a restart).
#[derive(Clone)]
pub struct Counts {
    sessions: Arc<Sessions>,
    per_client: Arc<PerClient>,
}

impl Counts {
    pub fn new(server: &Server) -> Counts {
        Counts {
            sessions: Sessions::new(server.max_connections),
            per_client: PerClient::exempting(
                server.max_connections_per_ip,
                server.trusted_proxies.clone(),
            ),
        }
    }

    /// The per-address table, for the public listener's accept loop.
    pub fn per_client(&self) -> Arc<PerClient> {
        self.per_client.clone()
    }
}

/// What the public listener admits as sessions.
pub struct Limits {
    trusted: Vec<Cidr>,
    connect_rate: Option<ConnectRate>,
    sessions: Arc<Sessions>,
    per_client: Arc<PerClient>,
    metrics: Arc<Metrics>,
}

/// A session's places in the limits, given back when it is dropped.
pub struct Admitted {
    _session: SessionPermit,
    _client: Option<ClientSlot>,
}

impl Limits {
    /// The limits of `server` over `counts` (whose session limit becomes `server`'s). The
    /// connect-rate allowances start afresh.
    pub fn new(server: &Server, counts: &Counts, metrics: Arc<Metrics>) -> Limits {
        counts.sessions.set_max(server.max_connections);
        Limits {
            trusted: server.trusted_proxies.clone(),
            connect_rate: ConnectRate::new(server.connect_rate_per_ip),
            sessions: counts.sessions.clone(),
            per_client: counts.per_client.clone(),
            metrics,
        }
    }

    /// Limits that admit everything, for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Arc<Limits> {
        Arc::new(Limits {
            trusted: Vec::new(),
            connect_rate: None,
            sessions: Sessions::new(usize::MAX),
            per_client: PerClient::new(usize::MAX),
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// Find the client's address (see the module documentation) and record it on `req`.
    pub fn identify(&self, req: &mut Request<Body>, peer: SocketAddr) -> IpAddr {
        let ip = if self.trusted.is_empty() {
            peer.ip().to_canonical()
        } else {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .map(HeaderValue::as_bytes);
            proxies::client_ip(peer.ip(), forwarded, &self.trusted)
        };
        req.extensions_mut().insert(ClientIp(ip));
        ip
    }

    /// Admit a new WebSocket connection or SSE stream from `client` (reached through `peer`),
    /// or the answer that refuses it.
    #[allow(clippy::result_large_err)]
    pub fn admit(&self, peer: SocketAddr, client: IpAddr) -> Result<Admitted, Response<Body>> {
        if let Some(rate) = &self.connect_rate
            && !rate.try_take(client)
        {
            debug!(client = %client, "session refused: connect_rate_per_ip");
            self.metrics.connection_refused("public", "connect_rate");
            let mut response = reply::message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Err(response);
        }
        let Some(session) = self.sessions.try_open() else {
            debug!(client = %client, "session refused: max_connections");
            self.metrics.connection_refused("public", "max_connections");
            return Err(unavailable());
        };
        let client_slot = if proxies::is_trusted(peer.ip(), &self.trusted) {
            match self.per_client.count(client) {
                Some(slot) => Some(slot),
                None => {
                    debug!(client = %client, "session refused: max_connections_per_ip");
                    self.metrics.connection_refused("public", "per_ip");
                    return Err(unavailable());
                }
            }
        } else {
            // Counted on accept already, under the peer's address.
            None
        };
        Ok(Admitted {
            _session: session,
            _client: client_slot,
        })
    }
}

fn unavailable() -> Response<Body> {
    reply::message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
}

/// Keep `admitted` with the connection's slot, which the WebSocket session takes from the
/// upgrade request and holds until it ends.
pub fn hold_with_connection(req: &mut Request<Body>, admitted: Admitted) {
    let slot = req.extensions_mut().remove::<ConnectionSlot>();
    req.extensions_mut()
        .insert(ConnectionSlot::holding(slot, admitted));
}

/// `response` keeping `admitted` until its body is dropped: an SSE stream's places last as
/// long as the stream. A refusal gives them back at once.
pub fn hold_while_streaming(response: Response<Body>, admitted: Admitted) -> Response<Body> {
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _held = &admitted;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
