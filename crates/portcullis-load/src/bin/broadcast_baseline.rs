//! `broadcast-baseline`: the same-run baseline of P5 (topic fan-out). A bare tokio-tungstenite
//! server whose connections each have a bounded queue (a tokio `mpsc` channel) drained by the
//! connection's task with one flush per burst, and a bare hyper listener answering the few
//! management calls `portcullis-load fanout` makes, with the gateway's paths and answers but
//! no signature check, no principal or topic index (one topic, a flag per connection) and no
//! metrics beyond the skipped count:
//!
//! - `GET …/@connections`: every open connection;
//! - `PUT …/@connections/{id}/topics/{topic}`: 204 (410 for an unknown id);
//! - `GET …/@topics/{topic}`: the subscribed connections;
//! - `POST …/@topics/{topic}`: the body to every subscriber whose queue has room, answered with
//!   `{"connections": N}`; the others are counted as skipped;
//! - `GET /metrics`: `broadcast_skipped_total N`.
//!
//! The payload is shared between receivers (one `Utf8Bytes`, reference-counted), as in the
//! gateway. Its buffer sizes are flags so that it runs at the gateway's settings.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Parser)]
#[command(
    name = "broadcast-baseline",
    about = "Bare tokio-tungstenite broadcast server (benchmark baseline for topic fan-out)"
)]
struct Cli {
    /// WebSocket listener (any path).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// Management listener (`/{stage}/@connections`, `@topics`, `/metrics`).
    #[arg(long, default_value = "127.0.0.1:7001")]
    admin_listen: SocketAddr,
    /// Per-connection read buffer (tungstenite's default is 128 KiB).
    #[arg(long, default_value_t = 4096)]
    read_buffer: usize,
    /// Bytes buffered before writing to the socket; 0 writes each message at once.
    #[arg(long, default_value_t = 0)]
    write_buffer: usize,
    /// Largest write buffer before sends fail (backpressure).
    #[arg(long, default_value_t = 256 * 1024)]
    max_write_buffer: usize,
    /// Frames queued per connection before a publish skips it (the gateway's `send_queue`).
    #[arg(long, default_value_t = 64)]
    queue: usize,
}

/// Largest publish body (the management API's limit).
const MAX_BODY: usize = 128 * 1024;

#[derive(Default)]
struct Hub {
    next_id: AtomicU64,
    connections: Mutex<HashMap<String, Subscriber>>,
    skipped: AtomicU64,
}

struct Subscriber {
    queue: mpsc::Sender<Utf8Bytes>,
    subscribed: bool,
}

impl Hub {
    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscriber>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `{"connections":[{"connectionId":"…"},…]}` of the connections `keep` selects.
    fn list(&self, keep: impl Fn(&Subscriber) -> bool) -> String {
        let connections = self.connections();
        let items: Vec<String> = connections
            .iter()
            .filter(|(_, s)| keep(s))
            .map(|(id, _)| format!("{{\"connectionId\":\"{id}\"}}"))
            .collect();
        format!("{{\"connections\":[{}]}}", items.join(","))
    }

    fn publish(&self, payload: &Utf8Bytes) -> u64 {
        let mut handed = 0;
        for subscriber in self.connections().values().filter(|s| s.subscribed) {
            match subscriber.queue.try_send(payload.clone()) {
                Ok(()) => handed += 1,
                Err(_) => {
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        handed
    }
}

async fn session(hub: Arc<Hub>, stream: TcpStream, config: WebSocketConfig, queue: usize) {
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let id = format!("c{}", hub.next_id.fetch_add(1, Ordering::Relaxed));
    let (tx, mut rx) = mpsc::channel(queue.max(1));
    hub.connections().insert(
        id.clone(),
        Subscriber {
            queue: tx,
            subscribed: false,
        },
    );
    loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(first) = next else { break };
                // Everything queued is written, then flushed once.
                let mut item = Some(first);
                let mut failed = false;
                while let Some(text) = item {
                    if ws.feed(Message::Text(text)).await.is_err() {
                        failed = true;
                        break;
                    }
                    item = rx.try_recv().ok();
                }
                if failed || ws.flush().await.is_err() {
                    break;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    hub.connections().remove(&id);
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn manage(
    hub: Arc<Hub>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let Ok(body) = Limited::new(request.into_body(), MAX_BODY).collect().await else {
        return Ok(answer(StatusCode::PAYLOAD_TOO_LARGE, "{}".into()));
    };
    let body = body.to_bytes();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let at = |name: &str| segments.iter().position(|s| *s == name);
    let response = match (&method, at("@connections"), at("@topics")) {
        (&Method::GET, _, _) if path == "/metrics" => answer(
            StatusCode::OK,
            format!(
                "broadcast_skipped_total {}\n",
                hub.skipped.load(Ordering::Relaxed)
            ),
        ),
        (&Method::GET, Some(i), None) if i + 1 == segments.len() => {
            answer(StatusCode::OK, hub.list(|_| true))
        }
        (&Method::PUT, Some(i), None) if i + 4 == segments.len() => {
            match hub.connections().get_mut(segments[i + 1]) {
                Some(s) => {
                    s.subscribed = true;
                    answer(StatusCode::NO_CONTENT, String::new())
                }
                None => answer(StatusCode::GONE, "{\"message\":\"Gone\"}".into()),
            }
        }
        (&Method::GET, None, Some(i)) if i + 2 == segments.len() => {
            answer(StatusCode::OK, hub.list(|s| s.subscribed))
        }
        (&Method::POST, None, Some(i)) if i + 2 == segments.len() => {
            match Utf8Bytes::try_from(body) {
                Ok(payload) => {
                    let handed = hub.publish(&payload);
                    answer(StatusCode::OK, format!("{{\"connections\":{handed}}}"))
                }
                Err(_) => answer(StatusCode::BAD_REQUEST, "{}".into()),
            }
        }
        _ => answer(StatusCode::NOT_FOUND, "{\"message\":\"Not Found\"}".into()),
    };
    Ok(response)
}

/// Accepts on `listener` for ever, handing each socket to `serve`.
async fn accept_loop<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("broadcast-baseline: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let limit = portcullis_load::process::raise_nofile_limit()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(cli.read_buffer)
        .write_buffer_size(cli.write_buffer)
        .max_write_buffer_size(cli.max_write_buffer.max(cli.write_buffer + 1));
    let ws_listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    let admin_listener = TcpListener::bind(cli.admin_listen)
        .await
        .with_context(|| format!("binding {}", cli.admin_listen))?;
    println!(
        "broadcast-baseline: WebSocket on ws://{}, management on http://{} (read buffer {}, \
         write buffer {}, queue {}, open files {limit})",
        ws_listener.local_addr()?,
        admin_listener.local_addr()?,
        cli.read_buffer,
        cli.write_buffer,
        cli.queue
    );
    let hub = Arc::new(Hub::default());
    let admin_hub = hub.clone();
    tokio::spawn(accept_loop(admin_listener, move |stream| {
        let hub = admin_hub.clone();
        async move {
            let service = service_fn(move |request| manage(hub.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    }));
    let queue = cli.queue;
    accept_loop(ws_listener, move |stream| {
        session(hub.clone(), stream, config, queue)
    })
    .await;
    Ok(())
}
