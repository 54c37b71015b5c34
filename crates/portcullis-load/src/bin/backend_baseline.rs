//! `backend-baseline`: the trivial HTTP backend of P3. Any POST is answered with the Lambda
//! proxy result `{"statusCode":200,"body":"pong"}` (the gateway relays `pong` as the reply
//! frame); any GET with 200 `ok`, for direct wrk-style comparisons. HTTP/1.1 keep-alive.
//!
//! `GET /events` is the baseline of P10 (SSE idle memory): a bare hyper `text/event-stream`
//! that sends `event: connected` and then stays open, sending nothing more.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "backend-baseline",
    about = "Trivial keep-alive HTTP backend (benchmark baseline)"
)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
}

const RESULT: &[u8] = br#"{"statusCode":200,"body":"pong"}"#;
/// The first event of a stream, as the gateway's SSE streams begin.
const CONNECTED: &[u8] = b"event: connected\ndata: {\"connectionId\":\"baseline\"}\n\n";

type Answer = Response<BoxBody<Bytes, Infallible>>;

/// `GET /events`: `connected`, then an open stream that sends nothing.
fn events() -> Answer {
    let first =
        futures_util::stream::once(async { Ok(Frame::data(Bytes::from_static(CONNECTED))) });
    let body = StreamBody::new(first.chain(futures_util::stream::pending()));
    let mut response = Response::new(BodyExt::boxed(body));
    for (name, value) in [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        response
            .headers_mut()
            .insert(name, header::HeaderValue::from_static(value));
    }
    response
}
/// Largest request body read; events in these benchmarks are a few KiB.
const MAX_BODY: usize = 1 << 20;

async fn handle(request: Request<Incoming>) -> Result<Answer, Infallible> {
    let method = request.method().clone();
    if method == Method::GET && request.uri().path() == "/events" {
        return Ok(events());
    }
    // Read the whole event, as a real backend would.
    let body_ok = Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .is_ok();
    let (status, content_type, body) = match (method, body_ok) {
        (_, false) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain",
            Bytes::from_static(b"too large"),
        ),
        (Method::POST, true) => (
            StatusCode::OK,
            "application/json",
            Bytes::from_static(RESULT),
        ),
        (Method::GET | Method::HEAD, true) => {
            (StatusCode::OK, "text/plain", Bytes::from_static(b"ok"))
        }
        (_, true) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"method not allowed"),
        ),
    };
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    Ok(response)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    portcullis_load::process::raise_nofile_limit()?;
    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    println!(
        "backend-baseline listening on http://{}",
        listener.local_addr()?
    );
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("backend-baseline: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
