//! Event streams served next to hyper, on HTTP/1.1 connections that open with one.
//!
//! An idle HTTP/1.1 connection served by hyper keeps its read buffer, header buffer and
//! connection task (about 24 KiB), for as long as a server-sent events stream lasts, which is
//! hours. A WebSocket gives all of that back when it upgrades. So when a new connection's first
//! request is a complete `GET` of an SSE path, the listener answers it itself: it reads exactly
//! the request head, hands the request to the app like any other, and writes the response
//! head and then the body's chunks straight to the socket, closing the connection when the
//! stream ends (the body's length is "until close", so no chunked framing is needed). Anything
//! else (another path or method, an incomplete head, HTTP/2, a later request on a kept-alive
//! connection) is left to hyper untouched: the sniffing only peeks.
//!
//! Writes have the WebSocket's deadline: a client that stops reading for [`SEND_TIMEOUT`]
//! loses its stream. A client that closes its side ends the stream at once.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderName, HeaderValue, Method, Request, Response, Version, header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ConnectionSlot;

/// Most bytes of a request head looked at; a longer head is left to hyper.
const MAX_HEAD_BYTES: usize = 8192;
/// Most header lines of a head handled here.
const MAX_HEADERS: usize = 64;
/// How long one chunk may take to reach the socket before the client counts as a reader
/// that never reads.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer other than a stream (a refusal) written here; larger bodies are cut.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What the first bytes of a connection are.
#[derive(Debug)]
pub(super) enum Head {
    /// A complete `GET` of an event-stream path: the request, and the length of its head.
    Stream(Box<Request<Body>>, usize),
    /// Anything else: hyper serves the connection.
    Other,
}

/// Parse the head of a connection's first request from `buf` (bytes peeked, not consumed).
pub(super) fn parse_head(buf: &[u8], paths: &HashSet<String>) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = parsed.parse(buf) else {
        return Head::Other;
    };
    let (Some("GET"), Some(target), Some(1)) = (parsed.method, parsed.path, parsed.version) else {
        return Head::Other;
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if !paths.contains(path) {
        return Head::Other;
    }
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(target)
        .version(Version::HTTP_11);
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Head::Other;
        };
        builder = builder.header(name, value);
    }
    match builder.body(Body::empty()) {
        Ok(request) => Head::Stream(Box::new(request), len),
        Err(_) => Head::Other,
    }
}

/// Peek at a new connection's first bytes (waiting at most `deadline` for them). `None` when
/// nothing arrived in time or the connection failed.
pub(super) async fn sniff(
    stream: &TcpStream,
    deadline: Duration,
    paths: &HashSet<String>,
) -> Option<Head> {
    let mut buf = [0u8; MAX_HEAD_BYTES];
    let n = tokio::time::timeout(deadline, stream.peek(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(parse_head(&buf[..n], paths))
}

/// Read a new connection's first bytes where they cannot be peeked (TLS), waiting at most
/// `deadline`: what they are, and the bytes (to hand to hyper in front of the rest when they
/// are not an event stream's). `None` when nothing arrived in time or the connection failed.
pub(super) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Duration,
    paths: &HashSet<String>,
) -> Option<(Head, Bytes)> {
    let mut buf = vec![0u8; MAX_HEAD_BYTES];
    let n = tokio::time::timeout(deadline, stream.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    if n == 0 {
        return None;
    }
    buf.truncate(n);
    let head = parse_head(&buf, paths);
    Some((head, Bytes::from(buf)))
}

/// Serve the stream that `request` opens: consume its head (`head_len` bytes still in the
/// stream; 0 when they were read already), ask `handler`, write the answer.
pub(super) async fn serve<S, F, Fut>(
    mut stream: S,
    request: Box<Request<Body>>,
    head_len: usize,
    slot: ConnectionSlot,
    peer: SocketAddr,
    handler: F,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Request<Body>, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Response<Body>>,
{
    // The head is in the socket's buffer already (it was peeked whole).
    let mut head = vec![0u8; head_len];
    if stream.read_exact(&mut head).await.is_err() {
        return;
    }
    drop(head);
    let mut request = *request;
    // The slot (the listener's budget and the address's cap) is held until the connection
    // closes, not only while the request is looked at.
    request.extensions_mut().insert(slot.clone());
    let response = handler(request, peer).await;
    let (parts, body) = response.into_parts();
    let is_stream = parts.status.is_success()
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
            .await
            .unwrap_or_default();
        let mut out = response_head(&parts, Some(bytes.len()));
        out.extend_from_slice(&bytes);
        let _ = tokio::time::timeout(SEND_TIMEOUT, stream.write_all(&out)).await;
        return;
    }
    let out = response_head(&parts, None);
    if !matches!(
        tokio::time::timeout(SEND_TIMEOUT, stream.write_all(&out)).await,
        Ok(Ok(()))
    ) {
        return;
    }
    drop(out);
    let mut chunks = body.into_data_stream();
    let mut probe = [0u8; 64];
    loop {
        tokio::select! {
            chunk = chunks.next() => match chunk {
                Some(Ok(bytes)) => {
                    let written = tokio::time::timeout(SEND_TIMEOUT, stream.write_all(&bytes)).await;
                    if !matches!(written, Ok(Ok(()))) {
                        break;
                    }
                }
                _ => break,
            },
            read = stream.read(&mut probe) => match read {
                // The client closed its side (or the connection failed): the stream ends.
                Ok(0) | Err(_) => break,
                // A client of a stream has nothing to say; what it sends is ignored.
                Ok(_) => {}
            },
        }
    }
    // Dropping the body ends the stream: it unregisters and delivers `$disconnect`.
    drop(chunks);
    let _ = stream.shutdown().await;
    drop(slot);
}

/// `HTTP/1.1 {status}` and the headers, closing the connection after the body: with a
/// length for an answer, without one (until close) for a stream.
fn response_head(parts: &http::response::Parts, length: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or_default()
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH
            || name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(length) = length {
        out.extend_from_slice(format!("content-length: {length}\r\n").as_bytes());
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn paths() -> HashSet<String> {
        HashSet::from(["/chat/events".to_owned()])
    }

    #[test]
    fn only_a_complete_get_of_a_stream_path_is_taken() {
        let head = b"GET /chat/events?lastEventId=a-1 HTTP/1.1\r\nHost: x\r\nCookie: c=1\r\n\r\n";
        let Head::Stream(request, len) = parse_head(head, &paths()) else {
            panic!("not taken");
        };
        assert_eq!(len, head.len());
        assert_eq!(request.uri().path(), "/chat/events");
        assert_eq!(request.uri().query(), Some("lastEventId=a-1"));
        assert_eq!(request.headers()["cookie"], "c=1");

        for other in [
            &b"GET /chat/events HTTP/1.1\r\nHost: x\r\n"[..], // incomplete
            b"POST /chat/events HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /chat/events/x HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /chat/events HTTP/1.0\r\nHost: x\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"",
            b"\x16\x03\x01\x02\x00",
        ] {
            assert!(
                matches!(parse_head(other, &paths()), Head::Other),
                "{other:?}"
            );
        }
    }

    #[test]
    fn a_stream_head_has_no_length_and_closes() {
        let response = Response::builder()
            .status(200)
            .header("content-type", "text/event-stream")
            .header("content-length", "5")
            .body(())
            .unwrap();
        let (parts, ()) = response.into_parts();
        let head = String::from_utf8(response_head(&parts, None)).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        );
        let head = String::from_utf8(response_head(&parts, Some(7))).unwrap();
        assert!(head.ends_with("content-length: 7\r\nconnection: close\r\n\r\n"));
    }
}
