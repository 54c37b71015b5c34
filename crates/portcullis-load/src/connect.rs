//! Dialing the WebSocket under test: from a chosen loopback source address, with the headers
//! and query an authorizer benchmark needs, and a small client read buffer so that 19,000
//! client connections fit beside the server.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::source::require_loopback;

/// Client-side read buffer: replies in these benchmarks are small.
const CLIENT_READ_BUFFER: usize = 4096;

/// Where and how to open WebSocket connections.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ws://host:port/path?query`, the query from `--query` already appended.
    url: String,
    addr: SocketAddr,
    headers: Vec<(HeaderName, HeaderValue)>,
    config: WebSocketConfig,
    timeout: Duration,
}

/// Why a connection attempt failed, counted per kind in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectError {
    Bind,
    Tcp,
    Handshake,
    /// The server answered the upgrade with a non-101 status (e.g. 401 from an authorizer).
    Rejected,
    Timeout,
}

impl ConnectError {
    pub fn name(self) -> &'static str {
        match self {
            ConnectError::Bind => "bind",
            ConnectError::Tcp => "tcp",
            ConnectError::Handshake => "handshake",
            ConnectError::Rejected => "rejected",
            ConnectError::Timeout => "timeout",
        }
    }
}

impl Target {
    /// `url` must be `ws://` and resolve to a loopback address. `query` (e.g.
    /// `access_token=X`) is appended; `headers` are added to every upgrade request.
    pub fn new(
        url: &str,
        query: Option<&str>,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self> {
        let mut url = url.to_string();
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(q);
        }
        let request = url
            .as_str()
            .into_client_request()
            .with_context(|| format!("bad URL {url:?}"))?;
        let uri = request.uri();
        if uri.scheme_str() != Some("ws") {
            bail!("only ws:// URLs are supported (loopback benchmarks), got {url:?}");
        }
        let host = uri
            .host()
            .ok_or_else(|| anyhow!("URL {url:?} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| anyhow!("{host} has no IPv4 address"))?;
        let addr = require_loopback(addr).map_err(|e| anyhow!(e))?;
        let headers = headers
            .iter()
            .map(|(n, v)| {
                Ok((
                    HeaderName::from_bytes(n.as_bytes())
                        .with_context(|| format!("bad header name {n:?}"))?,
                    HeaderValue::from_str(v)
                        .with_context(|| format!("bad value for header {n:?}"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let config = WebSocketConfig::default()
            .read_buffer_size(CLIENT_READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(16 << 20))
            .max_frame_size(Some(16 << 20));
        Ok(Target {
            url,
            addr,
            headers,
            config,
            timeout,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn request(&self) -> Result<Request, ConnectError> {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|_| ConnectError::Handshake)?;
        for (name, value) in &self.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        Ok(request)
    }

    /// Opens one connection from `source` (port chosen by the kernel) and completes the upgrade.
    pub async fn connect(
        &self,
        source: Ipv4Addr,
    ) -> Result<WebSocketStream<TcpStream>, ConnectError> {
        match tokio::time::timeout(self.timeout, self.connect_inner(source)).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::Timeout),
        }
    }

    async fn connect_inner(
        &self,
        source: Ipv4Addr,
    ) -> Result<WebSocketStream<TcpStream>, ConnectError> {
        let socket = TcpSocket::new_v4().map_err(|_| ConnectError::Bind)?;
        socket
            .bind(SocketAddr::from((source, 0)))
            .map_err(|_| ConnectError::Bind)?;
        let stream = socket
            .connect(self.addr)
            .await
            .map_err(|_| ConnectError::Tcp)?;
        stream.set_nodelay(true).map_err(|_| ConnectError::Tcp)?;
        let request = self.request()?;
        match tokio_tungstenite::client_async_with_config(request, stream, Some(self.config)).await
        {
            Ok((ws, _response)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(_)) => Err(ConnectError::Rejected),
            Err(_) => Err(ConnectError::Handshake),
        }
    }
}

/// Failure counts by kind, for reports.
#[derive(Debug, Default, Clone)]
pub struct Failures(std::collections::BTreeMap<ConnectError, u64>);

impl Failures {
    pub fn add(&mut self, e: ConnectError) {
        *self.0.entry(e).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Failures) {
        for (k, v) in &other.0 {
            *self.0.entry(*k).or_default() += v;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn to_json(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|(k, v)| (k.name().to_string(), serde_json::Value::from(*v)))
            .collect()
    }
}

/// Opens `count` connections to `target`, at most `concurrency` handshakes at once, spreading
/// them over `sources`. Fails, naming the failures by kind, unless every one is up.
pub async fn open_many(
    target: &Target,
    count: usize,
    sources: &crate::source::SourceIps,
    concurrency: usize,
) -> anyhow::Result<Vec<WebSocketStream<TcpStream>>> {
    use futures_util::StreamExt;
    let mut sockets = Vec::with_capacity(count);
    let mut failures = Failures::default();
    let mut attempts = futures_util::stream::iter(0..count)
        .map(|i| target.connect(sources.pick(i)))
        .buffer_unordered(concurrency.max(1));
    while let Some(outcome) = attempts.next().await {
        match outcome {
            Ok(ws) => sockets.push(ws),
            Err(e) => failures.add(e),
        }
    }
    if failures.total() > 0 {
        bail!(
            "{} of {count} connections to {} failed: {}",
            failures.total(),
            target.addr(),
            failures.to_json()
        );
    }
    Ok(sockets)
}
