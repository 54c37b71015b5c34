//! Connections to backends: `http_proxy` targets and `http` integrations.
//!
//! HTTP/1.1 over TCP (or TLS for `https://` URLs), one pool of kept-alive connections per
//! origin, and every connection driven by the task that uses it: the request is written, the
//! answer read and its body streamed by whoever polls them (the request's own task, then the
//! client connection that writes the body out), with no task of its own per upstream
//! connection and no channel between tasks. A connection goes back to its pool when its answer
//! was read to the end; one the backend closed, or whose answer was abandoned, is dropped.
//!
//! Limits: at most `max_idle` unused connections per origin are kept, each for at most
//! `idle_timeout` (a sweeper closes them); connecting (TCP and TLS) is bounded by
//! [`CONNECT_TIMEOUT`]; an answer's head is bounded by hyper's limits (100 headers, 64 KiB).

mod body;
mod io;
mod pool;
mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use http_body_util::LengthLimitError;

pub use body::RequestBody;
use pool::Pool;
pub use pool::ResponseBody;

use crate::error::GatewayError;

/// Longest wait for a new connection (TCP connect, and the TLS handshake for `https://`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`GatewayError::IntegrationUnreachable`] says when no connection could be made (the
/// request was not sent).
pub const CONNECT_FAILED: &str = "connection failed";

/// How the pools treat unused connections (`[server] upstream_idle_timeout`,
/// `upstream_max_idle_per_host`).
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub idle_timeout: Duration,
    pub max_idle: usize,
    /// Idle lists per pool: one per worker thread and one for the other threads.
    pub shards: usize,
}

/// Every origin's pool, shared by the integrations that call it (and kept across
/// configuration reloads, so a reload does not drop warm connections).
pub struct Upstreams {
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    settings: PoolSettings,
    tls: tls::Connector,
}

impl Upstreams {
    /// `ca_file` (`[server] ca_file`) adds trusted roots to the system's for `https://`
    /// backends. Starts the sweeper of idle connections (needs a tokio runtime).
    pub fn new(ca_file: Option<&str>, settings: PoolSettings) -> Result<Arc<Self>, GatewayError> {
        let upstreams = Arc::new(Upstreams {
            pools: Mutex::new(HashMap::new()),
            settings,
            tls: tls::Connector::new(ca_file).map_err(GatewayError::Tls)?,
        });
        tokio::spawn(sweep(Arc::downgrade(&upstreams)));
        Ok(upstreams)
    }

    /// The pool of `url`'s origin (scheme, host, port), created on first use.
    pub fn origin(&self, url: &url::Url) -> Result<Upstream, GatewayError> {
        let origin = pool::Origin::of(url)?;
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let pool = pools
            .entry(origin.key())
            .or_insert_with(|| Arc::new(Pool::new(origin, self.settings, self.tls.clone())))
            .clone();
        Ok(Upstream {
            pool,
            authorization: pool::basic_auth(url),
        })
    }

    /// Unused connections held, over every origin.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.values().map(|p| p.idle()).sum()
    }

    /// Idle connections in one thread's list, over every origin.
    #[cfg(test)]
    pub fn idle_in(&self, shard: usize) -> usize {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.values().map(|p| p.idle_in(shard)).sum()
    }
}

/// Closes connections unused for longer than the idle timeout, until the pools are gone.
async fn sweep(upstreams: Weak<Upstreams>) {
    let period = match upstreams.upgrade() {
        Some(u) => {
            (u.settings.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(5))
        }
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(upstreams) = upstreams.upgrade() else {
            return;
        };
        let pools: Vec<Arc<Pool>> = {
            let pools = upstreams.pools.lock().unwrap_or_else(|p| p.into_inner());
            pools.values().cloned().collect()
        };
        for pool in pools {
            pool.close_expired();
        }
    }
}

/// One backend origin, as an integration calls it.
#[derive(Clone)]
pub struct Upstream {
    pool: Arc<Pool>,
    /// `Authorization: Basic` from credentials in the integration's URL, sent unless the
    /// request has an `Authorization` header of its own.
    authorization: Option<HeaderValue>,
}

impl Upstream {
    /// Send `req` (origin-form URI: path and query) and return the answer's head; its body
    /// streams from the same connection, which goes back to the pool once the body was read
    /// to the end. `Host` is set to the origin's. A connection found closed when the request
    /// was about to be written is replaced by a new one (the request was not sent).
    pub async fn send(
        &self,
        mut req: Request<RequestBody>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let headers = req.headers_mut();
        headers.insert(http::header::HOST, self.pool.origin().host_header().clone());
        if let Some(auth) = &self.authorization
            && !headers.contains_key(http::header::AUTHORIZATION)
        {
            headers.insert(http::header::AUTHORIZATION, auth.clone());
        }
        self.pool.send(req).await
    }
}

/// Why a call to a backend failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made (refused, unreachable, DNS, TLS handshake, or not within
    /// [`CONNECT_TIMEOUT`]): the request was not sent.
    #[error("{CONNECT_FAILED}: {0}")]
    Connect(String),
    /// The request body was longer than its limit.
    #[error("request body over its limit")]
    BodyTooLarge,
    /// The exchange failed after the connection was made.
    #[error("{0}")]
    Http(String),
}

impl UpstreamError {
    pub(crate) fn http(e: &hyper::Error) -> UpstreamError {
        if is_length_limit(e) {
            return UpstreamError::BodyTooLarge;
        }
        UpstreamError::Http(describe(e))
    }

    /// As the gateway's error: what the logs say, never a URL.
    pub fn into_gateway(self) -> GatewayError {
        match self {
            UpstreamError::Connect(_) => {
                GatewayError::IntegrationUnreachable(CONNECT_FAILED.to_owned())
            }
            other => GatewayError::IntegrationUnreachable(other.to_string()),
        }
    }
}

/// hyper's error and its causes, on one line.
fn describe(e: &hyper::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `error`, or any error it was caused by, is the body-length limit of
/// `http_body_util::Limited` (a streamed body that turned out longer than allowed).
pub fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
