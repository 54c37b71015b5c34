//! Event streams over TLS: a new HTTP/1.1 connection that opens with a `GET` of an SSE path
//! is served next to hyper (its head read from the TLS stream, not peeked), anything else
//! on the same listener goes to hyper with those bytes handed back.

use std::time::Duration;

use portcullis_testkit::jwt::Issuer;
use portcullis_testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tls::{TestCa, write_pair};

#[tokio::test]
async fn an_event_stream_opens_over_tls_next_to_ordinary_requests() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = TestCa::new();
    let issuer = Issuer::start("k1").await;
    let backend = Backend::start(|_| Reply::ok()).await;
    let (cert, key, _) = ca.leaf("streams", 2100);
    let (c, k) = write_pair(dir.path(), "public", &cert, &key);
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nshutdown_grace = \"2s\"\n\
         tls = {{ cert = {c:?}, key = {k:?} }}\n\n\
         [websocket.chat]\nauthorizer = \"users\"\nsse = {{ path = \"/chat/events\" }}\n\
         [websocket.chat.routes]\n\"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.users]\ntype = \"jwt\"\nidentity_source = [\"$request.header.Authorization\"]\n\
         issuers = [{{ issuer = \"{}\" }}]\n",
        backend.url, issuer.issuer
    );
    let gw = TestGateway::start_full(&toml).await;
    let token = issuer.token(serde_json::json!({"sub": "alice"}));

    let (mut tls, _) = ca.tls_connect(gw.listen).await;
    let request = format!(
        "GET /chat/events HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\n\
         authorization: Bearer {token}\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: connected") {
        match tokio::time::timeout_at(deadline, tls.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            other => panic!("stream ended or stalled ({other:?}):\n{seen}"),
        }
    }
    let head = seen
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    // Written by the listener itself: no chunked framing, closed at the end.
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;

    // Another request on a fresh TLS connection is hyper's, with the bytes read to look at
    // it handed back: a whole, ordinary answer.
    let (mut other, _) = ca.tls_connect(gw.listen).await;
    other
        .write_all(
            b"GET /chat/events/nothing HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        )
        .await
        .expect("write");
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), other.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    drop(tls);
    backend
        .wait_for(|e| e["requestContext"]["eventType"] == "DISCONNECT")
        .await;
    gw.shutdown().await;
}
