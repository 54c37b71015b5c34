//! One origin's kept-alive connections, sending a request over one of them, and the answer's
//! body, read from the connection by whoever polls it, which hands the connection back to the
//! pool at the end.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{Builder, Connection, SendRequest};
use hyper_util::rt::TokioIo;

use super::body::RequestBody;
use super::io::Stream;
use super::tls::Connector;
use super::{CONNECT_TIMEOUT, PoolSettings, UpstreamError};
use crate::error::GatewayError;

/// Largest answer head (status line and headers) read from a backend.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Where a pool's connections go.
pub struct Origin {
    https: bool,
    host: String,
    port: u16,
    /// `scheme://host:port`: the pool's name.
    key: String,
    /// The `Host` header: `host`, with `:port` when it is not the scheme's default.
    host_header: HeaderValue,
}

impl Origin {
    pub fn of(url: &url::Url) -> Result<Origin, GatewayError> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(GatewayError::Internal(format!(
                    "integration URL scheme {other:?} is not http or https"
                )));
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| GatewayError::Internal("integration URL without a host".to_owned()))?
            .to_owned();
        let default_port = if https { 443 } else { 80 };
        let port = url.port().unwrap_or(default_port);
        let authority = if port == default_port {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let host_header = HeaderValue::from_str(&authority)
            .map_err(|e| GatewayError::Internal(format!("integration URL host: {e}")))?;
        let scheme = if https { "https" } else { "http" };
        Ok(Origin {
            https,
            // `[::1]` is written with brackets in URLs, not in socket addresses or TLS names.
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            key: format!("{scheme}://{host}:{port}"),
            host_header,
        })
    }

    pub fn key(&self) -> String {
        self.key.clone()
    }

    pub fn host_header(&self) -> &HeaderValue {
        &self.host_header
    }
}

/// `Authorization: Basic …` for credentials written in a URL (`http://user:pass@host/`).
pub fn basic_auth(url: &url::Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(url.username()),
        decode(url.password().unwrap_or(""))
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// One kept-alive connection: the handle requests are sent through, and the connection state
/// machine that does the reading and writing whenever it is polled.
pub struct Conn {
    sender: SendRequest<RequestBody>,
    driver: Connection<TokioIo<Stream>, RequestBody>,
    /// The driver finished (the backend closed, or the connection failed): it must not be
    /// polled again, and the connection is not reused.
    done: bool,
    /// The idle list it goes back to: that of the thread that opened it, whose runtime is
    /// told when its socket is ready.
    shard: usize,
}

impl Conn {
    /// Let the connection process what it has (a response body's end, the backend's close)
    /// without waiting. `false` when it is finished.
    fn settle(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.poll_driver(&mut cx);
        !self.done
    }

    /// Poll the connection's state machine; records when it is finished.
    pub fn poll_driver(&mut self, cx: &mut Context<'_>) {
        if !self.done && Pin::new(&mut self.driver).poll(cx).is_ready() {
            self.done = true;
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

/// An origin's unused connections: one list per worker thread (see [`crate::workers`]) and
/// one for every other thread, most recently used last in each.
pub struct Pool {
    origin: Origin,
    settings: PoolSettings,
    tls: Connector,
    idle: Box<[Mutex<Vec<Idle>>]>,
    /// Connections in all the lists (at most `settings.max_idle`).
    idle_count: AtomicUsize,
}

impl Pool {
    pub fn new(origin: Origin, settings: PoolSettings, tls: Connector) -> Pool {
        Pool {
            origin,
            settings,
            tls,
            idle: (0..settings.shards.max(1))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
            idle_count: AtomicUsize::new(0),
        }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Send `req` over a kept-alive connection, or a new one. A reused connection found
    /// closed before the request was written is dropped and the request sent over another.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<RequestBody>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let mut req = req;
        loop {
            let (mut conn, reused) = match self.checkout() {
                Some(conn) => (conn, true),
                // Boxed: connecting is rare, and its state would make every request's larger.
                None => (Box::pin(self.connect()).await?, false),
            };
            let sent = conn.sender.try_send_request(req);
            let outcome = drive(&mut conn, sent).await;
            match outcome {
                Ok(response) => {
                    return Ok(response.map(|body| ResponseBody::new(body, conn, self.clone())));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => req = back,
                    _ => return Err(UpstreamError::http(e.error())),
                },
            }
        }
    }

    /// This thread's list of idle connections.
    fn home(&self) -> usize {
        crate::workers::current() % self.idle.len()
    }

    /// The most recently used connection that is still open, if any: one this thread opened
    /// if there is one, else another thread's. Connections unused past the idle timeout are
    /// dropped on the way.
    fn checkout(&self) -> Option<Box<Conn>> {
        let home = self.home();
        (0..self.idle.len()).find_map(|offset| self.take((home + offset) % self.idle.len()))
    }

    fn take(&self, shard: usize) -> Option<Box<Conn>> {
        let list = self.idle.get(shard)?;
        loop {
            let idle = {
                let mut idle = list.lock().unwrap_or_else(|p| p.into_inner());
                idle.pop()?
            };
            self.idle_count.fetch_sub(1, Ordering::Relaxed);
            if idle.since.elapsed() >= self.settings.idle_timeout {
                continue;
            }
            let mut conn = idle.conn;
            if conn.settle() && conn.sender.is_ready() {
                return Some(conn);
            }
        }
    }

    /// A connection whose answer was read to the end: kept for the next request, unless the
    /// pool is full or the connection is not reusable.
    pub fn put_back(&self, mut conn: Box<Conn>) {
        if self.settings.max_idle == 0 || !conn.settle() {
            return;
        }
        if self.idle_count.fetch_add(1, Ordering::Relaxed) >= self.settings.max_idle {
            self.idle_count.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let Some(list) = self.idle.get(conn.shard) else {
            self.idle_count.fetch_sub(1, Ordering::Relaxed);
            return;
        };
        let mut idle = list.lock().unwrap_or_else(|p| p.into_inner());
        idle.push(Idle {
            conn,
            since: Instant::now(),
        });
    }

    /// Drop the connections unused past the idle timeout (the oldest are first).
    pub fn close_expired(&self) {
        for list in &self.idle {
            let expired: Vec<Idle> = {
                let mut idle = list.lock().unwrap_or_else(|p| p.into_inner());
                let keep_from = idle
                    .iter()
                    .position(|i| i.since.elapsed() < self.settings.idle_timeout)
                    .unwrap_or(idle.len());
                idle.drain(..keep_from).collect()
            };
            self.idle_count.fetch_sub(expired.len(), Ordering::Relaxed);
            drop(expired);
        }
    }

    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.idle
            .iter()
            .map(|list| list.lock().map(|i| i.len()).unwrap_or(0))
            .sum()
    }

    #[cfg(test)]
    pub fn idle_in(&self, shard: usize) -> usize {
        self.idle
            .get(shard)
            .map_or(0, |list| list.lock().map(|i| i.len()).unwrap_or(0))
    }

    async fn connect(&self) -> Result<Box<Conn>, UpstreamError> {
        let connecting = async {
            let tcp = tokio::net::TcpStream::connect((self.origin.host.as_str(), self.origin.port))
                .await
                .map_err(|e| UpstreamError::Connect(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            if self.origin.https {
                self.tls.connect(&self.origin.host, tcp).await
            } else {
                Ok(Stream::Plain(tcp))
            }
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| UpstreamError::Connect("timed out".to_owned()))??;
        let (sender, driver) = Builder::new()
            .max_buf_size(MAX_HEAD_BYTES)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        Ok(Box::new(Conn {
            sender,
            driver,
            done: false,
            shard: self.home(),
        }))
    }
}

/// Wait for `sent` (the answer's head) while driving the connection that produces it.
async fn drive<F, T>(conn: &mut Conn, sent: F) -> T
where
    F: Future<Output = T>,
{
    let mut sent = std::pin::pin!(sent);
    std::future::poll_fn(|cx| {
        conn.poll_driver(cx);
        sent.as_mut().poll(cx)
    })
    .await
}

/// An answer's body, read from its connection. At its end the connection goes back to the
/// pool; dropped before (the client left, a deadline passed) the connection is closed, since
/// the rest of the answer would be read as the next one's.
pub struct ResponseBody {
    body: Incoming,
    conn: Option<Box<Conn>>,
    pool: Arc<Pool>,
}

impl ResponseBody {
    fn new(body: Incoming, conn: Box<Conn>, pool: Arc<Pool>) -> ResponseBody {
        ResponseBody {
            body,
            conn: Some(conn),
            pool,
        }
    }

    /// The whole body, at most `limit` bytes (`None` beyond).
    pub async fn read_to_end(mut self, limit: usize) -> Result<Option<Bytes>, hyper::Error> {
        let mut first: Option<Bytes> = None;
        let mut rest: Vec<u8> = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_frame(cx)).await
        {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            let len = first.as_ref().map_or(0, Bytes::len) + rest.len() + data.len();
            if len > limit {
                return Ok(None);
            }
            match &mut first {
                None => first = Some(data),
                Some(head) => {
                    if rest.is_empty() {
                        rest.reserve(len);
                        rest.extend_from_slice(head);
                    }
                    rest.extend_from_slice(&data);
                }
            }
        }
        Ok(Some(if rest.is_empty() {
            first.unwrap_or_default()
        } else {
            Bytes::from(rest)
        }))
    }

    fn release(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.is_done()
        {
            self.pool.put_back(conn);
        }
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("end", &self.body.is_end_stream())
            .finish()
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // The connection reads what the body is waiting for.
        if let Some(conn) = this.conn.as_mut() {
            conn.poll_driver(cx);
        }
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Err(_))) => this.conn = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for ResponseBody {
    /// A body nobody read because it is empty (a `HEAD`, a 204, `Content-Length: 0`) is
    /// complete: its connection is reusable.
    fn drop(&mut self) {
        if self.conn.is_some() && self.body.is_end_stream() {
            self.release();
        }
    }
}
