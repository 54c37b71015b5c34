//! Dialing an SSE stream (`GET …/events`, `text/event-stream`) the way an EventSource does:
//! one HTTP/1.1 connection per stream from a chosen loopback source address, with the headers
//! and query an authorizer needs, held open while the body streams.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

use crate::connect::ConnectError;
use crate::keepalive::Endpoint;

/// Where and how to open SSE streams.
#[derive(Debug, Clone)]
pub struct SseTarget {
    endpoint: Endpoint,
    /// Path and query as sent, e.g. `/bench/events?access_token=X`.
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

/// An open stream: the response body, read chunk by chunk.
pub struct SseStream {
    body: Incoming,
}

impl SseTarget {
    /// `url` must be `http://` on loopback; `query` (e.g. `access_token=X`) is appended and
    /// `headers` are sent with every request.
    pub fn new(
        url: &str,
        query: Option<&str>,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self> {
        let endpoint = Endpoint::parse(url)?;
        let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        let mut path = uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(q);
        }
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
        Ok(SseTarget {
            endpoint,
            path,
            headers,
            timeout,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.endpoint.addr
    }

    /// Opens one stream from `source`: the answer must be a 200 `text/event-stream`.
    pub async fn connect(&self, source: Ipv4Addr) -> Result<SseStream, ConnectError> {
        match tokio::time::timeout(self.timeout, self.connect_inner(source)).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::Timeout),
        }
    }

    async fn connect_inner(&self, source: Ipv4Addr) -> Result<SseStream, ConnectError> {
        let socket = TcpSocket::new_v4().map_err(|_| ConnectError::Bind)?;
        socket
            .bind(SocketAddr::from((source, 0)))
            .map_err(|_| ConnectError::Bind)?;
        let stream = socket
            .connect(self.endpoint.addr)
            .await
            .map_err(|_| ConnectError::Tcp)?;
        stream.set_nodelay(true).map_err(|_| ConnectError::Tcp)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|_| ConnectError::Handshake)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = self.request().map_err(|_| ConnectError::Handshake)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| ConnectError::Handshake)?;
        if response.status() != StatusCode::OK || !is_event_stream(response.headers()) {
            return Err(ConnectError::Rejected);
        }
        Ok(SseStream {
            body: response.into_body(),
        })
    }

    fn request(&self) -> Result<Request<Empty<Bytes>>> {
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(self.path.as_str())
            .header(http::header::HOST, self.endpoint.host.as_str())
            .header(http::header::ACCEPT, "text/event-stream")
            .header(http::header::CACHE_CONTROL, "no-cache");
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        Ok(builder.body(Empty::new())?)
    }
}

fn is_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

impl SseStream {
    /// The next piece of the body; `None` when the stream ended or failed.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(data);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads up to the end of the first event and returns its `data:` of an `event: connected`
    /// (`{"connectionId": "..."}`): how a stream learns its connection id.
    pub async fn connected(&mut self) -> Result<String> {
        let mut seen = Vec::new();
        loop {
            if let Some(end) = find_event_end(&seen) {
                return connected_data(&seen[..end]);
            }
            if seen.len() > 64 * 1024 {
                bail!("no complete event in the first 64 KiB of the stream");
            }
            let chunk = self
                .next_chunk()
                .await
                .ok_or_else(|| anyhow!("the stream ended before its first event"))?;
            seen.extend_from_slice(&chunk);
        }
    }
}

/// Where the first event ends (a blank line), if it has.
fn find_event_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\n\n")
}

/// The `data:` of an `event: connected` block.
fn connected_data(block: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(block).context("the first event is not UTF-8")?;
    let mut event = None;
    let mut data = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    if event != Some("connected") {
        bail!("the first event is not `event: connected`: {text:?}");
    }
    Ok(data.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = SseTarget::new(
            "http://127.0.0.1:8080/bench/events",
            Some("access_token=a.b.c"),
            &[("Cookie".into(), "s=1".into())],
            Duration::from_secs(1),
        )
        .expect("valid target");
        assert_eq!(t.path, "/bench/events?access_token=a.b.c");
        let request = t.request().expect("request");
        assert_eq!(request.headers()["host"], "127.0.0.1:8080");
        assert_eq!(request.headers()["accept"], "text/event-stream");
        assert_eq!(request.headers()["cookie"], "s=1");
        assert!(SseTarget::new("http://10.0.0.1/e", None, &[], Duration::ZERO).is_err());
        assert!(SseTarget::new("ws://127.0.0.1/e", None, &[], Duration::ZERO).is_err());
    }

    #[test]
    fn first_event() {
        let stream = b"event: connected\ndata: {\"connectionId\": \"abc=\"}\n\n: ping\n\n";
        let end = find_event_end(stream).expect("an event");
        assert_eq!(
            connected_data(&stream[..end]).expect("connected"),
            "{\"connectionId\": \"abc=\"}"
        );
        assert!(connected_data(b"id: 1\ndata: x").is_err());
        assert_eq!(find_event_end(b"event: connected\n"), None);
    }
}
