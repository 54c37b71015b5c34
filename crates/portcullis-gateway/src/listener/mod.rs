//! The two listeners: binding, the accept loop (a connection budget per listener, a cap per
//! client address, header and body deadlines, HTTP/1 + HTTP/2 with upgrades) and the answers a
//! listener writes itself before any app sees the request.

mod event_stream;
mod limits;
mod linger;
mod prefixed;
pub(crate) mod tls;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

pub use limits::{ClientSlot, ConnectionSlot, PerClient};

use crate::error::GatewayError;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::reply;
use limits::with_deadline;
use linger::Lingering;
use prefixed::Prefixed;

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    bind_socket(addr, false)
}

/// `count` listening sockets on one address (the first one's port when `addr` asks for port
/// 0), with `SO_REUSEPORT` when there is more than one: the kernel spreads new connections
/// over them.
pub fn bind_many(
    addr: SocketAddr,
    count: usize,
) -> Result<Vec<std::net::TcpListener>, GatewayError> {
    let shared = count > 1;
    let first = bind_socket(addr, shared)?;
    let addr = first
        .local_addr()
        .map_err(|source| GatewayError::Bind { addr, source })?;
    let mut listeners = Vec::with_capacity(count);
    listeners.push(first);
    for _ in 1..count {
        listeners.push(bind_socket(addr, shared)?);
    }
    // Registered with a worker's runtime when that worker starts accepting on it.
    listeners
        .into_iter()
        .map(|l| {
            l.into_std()
                .map_err(|source| GatewayError::Bind { addr, source })
        })
        .collect()
}

fn bind_socket(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener, GatewayError> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|source| GatewayError::Bind { addr, source })?;
    socket
        .set_reuseaddr(true)
        .map_err(|source| GatewayError::Bind { addr, source })?;
    #[cfg(unix)]
    if reuse_port {
        socket
            .set_reuseport(true)
            .map_err(|source| GatewayError::Bind { addr, source })?;
    }
    socket
        .bind(addr)
        .map_err(|source| GatewayError::Bind { addr, source })?;
    socket
        .listen(4096)
        .map_err(|source| GatewayError::Bind { addr, source })
}

/// How one listener treats its connections.
#[derive(Clone)]
pub struct ListenerRules {
    /// `public` or `admin`, for metrics and logs.
    pub name: &'static str,
    /// Connections open at once; beyond, the listener stops accepting until one closes.
    pub budget: Arc<Semaphore>,
    /// Connections open at once per client address; beyond, 503 and closed at once.
    pub per_client: Option<Arc<PerClient>>,
    /// A request head (and a new connection's first request) must arrive within this.
    pub header_read_timeout: Duration,
    /// A request body must arrive within this once reading starts; then 408.
    pub body_read_timeout: Duration,
    /// Paths of event streams (`sse.path`): a new HTTP/1.1 connection whose first request is
    /// a `GET` of one is served next to hyper (see [`event_stream`]). Read per connection: a
    /// configuration reload replaces them.
    pub event_streams: Live<HashSet<String>>,
    pub metrics: Arc<Metrics>,
    /// `[server] tls` / `admin_tls`: connections are TLS, handshaken within
    /// `header_read_timeout`; `None` for plain HTTP.
    pub tls: Option<TlsAcceptor>,
}

/// The answer to a connection over its address's cap, written without reading the request.
const TOO_MANY_FROM_CLIENT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\ncontent-length: 33\r\nconnection: close\r\n\r\n\
{\"message\":\"Service Unavailable\"}";

pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    rules: ListenerRules,
    drain: CancellationToken,
    handler: F,
) where
    F: Fn(Request<Body>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(rules.header_read_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024);
    let builder = Arc::new(builder);
    let ListenerRules {
        name,
        budget,
        per_client,
        header_read_timeout,
        body_read_timeout,
        event_streams,
        metrics,
        tls,
    } = rules;
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = budget.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let client = match &per_client {
            None => None,
            Some(table) => match table.try_open(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    debug!(listener = name, client = %peer.ip(), "connection refused: too many from this address");
                    metrics.connection_refused(name, "per_ip");
                    // One write, straight to the fresh socket (its send buffer is empty, so it
                    // does not block); then it is closed.
                    if let Ok(mut socket) = stream.into_std() {
                        let _ = std::io::Write::write(&mut socket, TOO_MANY_FROM_CLIENT);
                    }
                    continue;
                }
            },
        };
        let slot = ConnectionSlot::new(permit, client);
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            name,
            peer,
            slot,
            handler: handler.clone(),
            builder: builder.clone(),
            stop: stop.clone(),
            drain: drain.clone(),
            metrics: metrics.clone(),
            header_read_timeout,
            body_read_timeout,
        };
        let event_streams = event_streams.load();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => conn.serve_plain(stream, &event_streams).await,
                Some(acceptor) => conn.serve_tls(stream, acceptor, &event_streams).await,
            }
        });
    }
}

/// One accepted connection and what serving it needs.
struct Conn<F> {
    name: &'static str,
    peer: SocketAddr,
    slot: ConnectionSlot,
    handler: F,
    builder: Arc<auto::Builder<TokioExecutor>>,
    stop: CancellationToken,
    drain: CancellationToken,
    metrics: Arc<Metrics>,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
}

impl<F, Fut> Conn<F>
where
    F: Fn(Request<Body>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    fn no_head_in_time(&self) {
        debug!(listener = self.name, client = %self.peer.ip(), "no request head in time; connection closed");
        self.metrics.error("header_read_timeout");
    }

    async fn serve_plain(self, stream: TcpStream, event_streams: &HashSet<String>) {
        if !event_streams.is_empty() {
            match event_stream::sniff(&stream, self.header_read_timeout, event_streams).await {
                None => return self.no_head_in_time(),
                Some(event_stream::Head::Stream(request, head_len)) => {
                    // A task of its own: this one is sized for hyper's connection state
                    // (about 10 KiB), which a stream would otherwise keep for its lifetime.
                    tokio::spawn(event_stream::serve(
                        stream,
                        request,
                        head_len,
                        self.slot,
                        self.peer,
                        self.handler,
                    ));
                    return;
                }
                Some(event_stream::Head::Other) => {}
            }
        }
        let slot = self.slot.clone();
        self.serve_http(Lingering::new(stream, slot)).await;
    }

    /// The handshake (within `header_read_timeout`), then the same serving as in plain text.
    /// Over TLS the first request head cannot be peeked: it is read, and handed back to hyper
    /// in front of the rest when it is not an event stream's.
    async fn serve_tls(
        self,
        stream: TcpStream,
        acceptor: TlsAcceptor,
        event_streams: &HashSet<String>,
    ) {
        let mut stream = match tokio::time::timeout(
            self.header_read_timeout,
            acceptor.accept(stream),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                debug!(listener = self.name, client = %self.peer.ip(), error = %e, "TLS handshake failed");
                self.metrics.error("tls_handshake");
                return;
            }
            Err(_) => {
                debug!(listener = self.name, client = %self.peer.ip(), "TLS handshake not done in time");
                self.metrics.error("tls_handshake_timeout");
                return;
            }
        };
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        if event_streams.is_empty() || h2 {
            return self.serve_http(stream).await;
        }
        let read =
            event_stream::read_head(&mut stream, self.header_read_timeout, event_streams).await;
        match read {
            None => self.no_head_in_time(),
            Some((event_stream::Head::Stream(request, _), _)) => {
                tokio::spawn(event_stream::serve(
                    stream,
                    request,
                    0,
                    self.slot,
                    self.peer,
                    self.handler,
                ));
            }
            Some((event_stream::Head::Other, head)) => {
                self.serve_http(Prefixed::new(head, stream)).await;
            }
        }
    }

    async fn serve_http<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            name,
            peer,
            slot,
            handler,
            builder,
            stop,
            drain,
            metrics,
            header_read_timeout,
            body_read_timeout,
        } = self;
        let request_seen = CancellationToken::new();
        let seen = request_seen.clone();
        let conn_metrics = metrics.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            seen.cancel();
            let handler = handler.clone();
            let metrics = conn_metrics.clone();
            let version = req.version();
            let expired = Arc::new(AtomicBool::new(false));
            let body_expired = expired.clone();
            let mut req = req.map(|b| with_deadline(b, body_read_timeout, body_expired));
            req.extensions_mut().insert(slot.clone());
            async move {
                let response = handler(req, peer).await;
                if expired.load(Ordering::Acquire) {
                    debug!(listener = name, client = %peer.ip(), "request body not received in time");
                    metrics.error("body_read_timeout");
                    return Ok::<_, Infallible>(request_timeout(version));
                }
                Ok(response)
            }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        // Until its first request head arrives, nothing else bounds a new connection (the
        // protocol sniffing before HTTP/1 or HTTP/2 has no timer of its own).
        let first_request = async {
            tokio::time::sleep(header_read_timeout).await;
            if request_seen.is_cancelled() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = &mut conn => {}
            _ = async { stop.cancelled().await; drain.cancelled().await } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            _ = first_request => {
                debug!(listener = name, client = %peer.ip(), "no request head in time; connection closed");
                metrics.error("header_read_timeout");
            }
        }
    }
}

/// 408 for a request whose body did not arrive in time; an HTTP/1 connection is closed after
/// it (the rest of the body would be read as the next request).
fn request_timeout(version: http::Version) -> Response<Body> {
    let mut response = reply::message(StatusCode::REQUEST_TIMEOUT, "Request Timeout");
    if version < http::Version::HTTP_2 {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}
