//! The pools against real backends on loopback: connections reused, replaced when the backend
//! closed them, dropped when their answer was abandoned, closed when idle.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A hyper backend: answers `GET /n/N` with N bytes, `/close` with `Connection: close`, `/empty`
/// with 204, echoes POST bodies; counts the connections it accepted and those that ended.
struct Backend {
    url: url::Url,
    accepted: Arc<AtomicUsize>,
    ended: Arc<AtomicUsize>,
}

async fn backend() -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/base", listener.local_addr().unwrap())).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let (a, e) = (accepted.clone(), ended.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            a.fetch_add(1, Ordering::SeqCst);
            let e = e.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let path = req.uri().path().to_owned();
                    let method = req.method().clone();
                    let host = req
                        .headers()
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let body = req.into_body().collect().await.map(|c| c.to_bytes());
                    let mut response = Response::new(Full::new(Bytes::new()));
                    if method == Method::POST {
                        *response.body_mut() = Full::new(body.unwrap_or_default());
                    } else if let Some(n) = path.strip_prefix("/base/n/") {
                        let n: usize = n.parse().unwrap_or(0);
                        *response.body_mut() = Full::new(Bytes::from(vec![b'x'; n]));
                    } else if path == "/base/close" {
                        response
                            .headers_mut()
                            .insert("connection", "close".parse().unwrap());
                    } else if path == "/base/empty" {
                        *response.status_mut() = StatusCode::NO_CONTENT;
                    } else if path == "/base/host" {
                        *response.body_mut() = Full::new(Bytes::from(host));
                    }
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                e.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Backend {
        url,
        accepted,
        ended,
    }
}

fn upstreams(idle_timeout: Duration, max_idle: usize) -> Arc<Upstreams> {
    sharded(idle_timeout, max_idle, 1)
}

fn sharded(idle_timeout: Duration, max_idle: usize, shards: usize) -> Arc<Upstreams> {
    Upstreams::new(
        None,
        PoolSettings {
            idle_timeout,
            max_idle,
            shards,
        },
    )
    .unwrap()
}

fn get(path: &str) -> Request<RequestBody> {
    let mut req = Request::new(RequestBody::Empty);
    *req.uri_mut() = path.parse().unwrap();
    req
}

async fn fetch(upstream: &Upstream, path: &str) -> (StatusCode, Bytes) {
    let response = upstream.send(get(path)).await.unwrap();
    let status = response.status();
    let body = response
        .into_body()
        .read_to_end(1 << 20)
        .await
        .unwrap()
        .unwrap();
    (status, body)
}

/// Waits (bounded) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not reached in 5 s: {what}");
}

#[tokio::test]
async fn requests_one_after_another_share_one_connection() {
    let backend = backend().await;
    let upstreams = upstreams(Duration::from_secs(30), 8);
    let upstream = upstreams.origin(&backend.url).unwrap();
    for n in [0, 1, 100, 70_000, 3] {
        let (status, body) = fetch(&upstream, &format!("/base/n/{n}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), n);
    }
    // A 204 and a HEAD have no body to read: their connection is reusable all the same.
    assert_eq!(
        fetch(&upstream, "/base/empty").await.0,
        StatusCode::NO_CONTENT
    );
    let mut head = get("/base/n/10");
    *head.method_mut() = Method::HEAD;
    drop(upstream.send(head).await.unwrap());
    let (_, echoed) = {
        let mut post = Request::new(RequestBody::bytes("hello"));
        *post.method_mut() = Method::POST;
        *post.uri_mut() = "/base/echo".parse().unwrap();
        let response = upstream.send(post).await.unwrap();
        (
            response.status(),
            response
                .into_body()
                .read_to_end(100)
                .await
                .unwrap()
                .unwrap(),
        )
    };
    assert_eq!(echoed, "hello");
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(upstreams.idle(), 1);
}

#[tokio::test]
async fn host_is_the_origins() {
    let backend = backend().await;
    let upstreams = upstreams(Duration::from_secs(30), 8);
    let upstream = upstreams.origin(&backend.url).unwrap();
    let mut req = get("/base/host");
    req.headers_mut()
        .insert("host", "client.example".parse().unwrap());
    let response = upstream.send(req).await.unwrap();
    let body = response
        .into_body()
        .read_to_end(100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body, backend.url.authority());
}

#[tokio::test]
async fn concurrent_requests_open_more_and_keep_at_most_max_idle() {
    let backend = backend().await;
    let upstreams = upstreams(Duration::from_secs(30), 2);
    let upstream = upstreams.origin(&backend.url).unwrap();
    // Heads received, bodies not yet read: each holds its connection.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(upstream.send(get("/base/n/10")).await.unwrap());
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 4);
    for response in held {
        response
            .into_body()
            .read_to_end(100)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(upstreams.idle(), 2);
    eventually("the two not kept are closed", || {
        backend.ended.load(Ordering::SeqCst) == 2
    })
    .await;
}

#[tokio::test]
async fn an_answer_abandoned_midway_closes_its_connection() {
    let backend = backend().await;
    let upstreams = upstreams(Duration::from_secs(30), 8);
    let upstream = upstreams.origin(&backend.url).unwrap();
    let response = upstream.send(get("/base/n/1000000")).await.unwrap();
    drop(response);
    eventually("the abandoned connection is closed", || {
        backend.ended.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(fetch(&upstream, "/base/n/5").await.1.len(), 5);
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_backend_closes_is_not_reused() {
    let backend = backend().await;
    let upstreams = upstreams(Duration::from_secs(30), 8);
    let upstream = upstreams.origin(&backend.url).unwrap();
    for _ in 0..3 {
        assert_eq!(fetch(&upstream, "/base/close").await.0, StatusCode::OK);
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(upstreams.idle(), 0);
}

/// A backend that answers one request per connection with keep-alive, then closes it a little
/// later (as a backend whose keep-alive timeout is shorter than the gateway's does).
#[tokio::test]
async fn a_kept_connection_closed_while_idle_is_replaced() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
    });
    let upstreams = upstreams(Duration::from_secs(30), 8);
    let upstream = upstreams.origin(&url).unwrap();
    for _ in 0..3 {
        assert_eq!(fetch(&upstream, "/").await.1, "ok");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let backend = backend().await;
    let upstreams = upstreams(Duration::from_millis(100), 8);
    let upstream = upstreams.origin(&backend.url).unwrap();
    fetch(&upstream, "/base/n/1").await;
    assert_eq!(upstreams.idle(), 1);
    eventually("the idle connection is closed", || {
        backend.ended.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(upstreams.idle(), 0);
    // The next request opens a new one.
    fetch(&upstream, "/base/n/1").await;
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn max_idle_zero_keeps_nothing() {
    let backend = backend().await;
    let upstreams = upstreams(Duration::from_secs(30), 0);
    let upstream = upstreams.origin(&backend.url).unwrap();
    fetch(&upstream, "/base/n/1").await;
    fetch(&upstream, "/base/n/1").await;
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(upstreams.idle(), 0);
}

#[tokio::test]
async fn a_body_over_its_limit_fails_the_exchange() {
    let backend = backend().await;
    let upstreams = upstreams(Duration::from_secs(30), 8);
    let upstream = upstreams.origin(&backend.url).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, Infallible>>(4);
    let stream = http_body_util::StreamBody::new(tokio_stream_of(rx));
    let mut post = Request::new(RequestBody::stream(axum::body::Body::new(stream), 10));
    *post.method_mut() = Method::POST;
    *post.uri_mut() = "/base/echo".parse().unwrap();
    tx.send(Ok(hyper::body::Frame::data(Bytes::from_static(
        b"0123456789",
    ))))
    .await
    .unwrap();
    tx.send(Ok(hyper::body::Frame::data(Bytes::from_static(b"!"))))
        .await
        .unwrap();
    drop(tx);
    let error = upstream.send(post).await.unwrap_err();
    assert!(matches!(error, UpstreamError::BodyTooLarge), "{error:?}");
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn a_backend_that_refuses_is_a_connect_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let upstreams = upstreams(Duration::from_secs(30), 8);
    let error = upstreams
        .origin(&url)
        .unwrap()
        .send(get("/"))
        .await
        .unwrap_err();
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
    match error.into_gateway() {
        GatewayError::IntegrationUnreachable(what) => assert_eq!(what, CONNECT_FAILED),
        other => panic!("{other:?}"),
    }
}

#[test]
fn credentials_in_the_url_become_basic_auth() {
    let url = url::Url::parse("http://us%40er:p%3Ass@backend:8080/x").unwrap();
    let value = pool::basic_auth(&url).unwrap();
    // base64("us@er:p:ss")
    assert_eq!(value, "Basic dXNAZXI6cDpzcw==");
    assert!(value.is_sensitive());
    assert!(pool::basic_auth(&url::Url::parse("http://backend/").unwrap()).is_none());
}

/// A connection goes back to the list of the worker that opened it (whose runtime watches its
/// socket); a worker takes its own first, and another's rather than opening a new one. The
/// idle cap counts every list.
#[tokio::test]
async fn connections_return_to_the_worker_that_opened_them() {
    let backend = backend().await;
    let upstreams = sharded(Duration::from_secs(30), 2, 3);
    let upstream = upstreams.origin(&backend.url).unwrap();
    crate::workers::pretend(1);
    fetch(&upstream, "/base/n/1").await;
    assert_eq!(upstreams.idle_in(1), 1);
    // Worker 2 has none of its own: it borrows worker 1's, which goes back to worker 1.
    crate::workers::pretend(2);
    fetch(&upstream, "/base/n/1").await;
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 1);
    assert_eq!((upstreams.idle_in(1), upstreams.idle_in(2)), (1, 0));
    // Two at once from worker 2: one borrowed, one new and kept by worker 2.
    let (a, b) = tokio::join!(fetch(&upstream, "/base/n/1"), fetch(&upstream, "/base/n/1"));
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
    assert_eq!((upstreams.idle_in(1), upstreams.idle_in(2)), (1, 1));
    // Worker 2 now takes its own.
    fetch(&upstream, "/base/n/1").await;
    assert_eq!((upstreams.idle_in(1), upstreams.idle_in(2)), (1, 1));
    // Three at once from worker 0: the cap (2) holds over all the lists.
    crate::workers::pretend(0);
    let (a, b, c) = tokio::join!(
        fetch(&upstream, "/base/n/1"),
        fetch(&upstream, "/base/n/1"),
        fetch(&upstream, "/base/n/1")
    );
    assert_eq!(
        (a.0, b.0, c.0),
        (StatusCode::OK, StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(upstreams.idle(), 2);
}
