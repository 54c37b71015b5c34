//! P1 and P10: hold N idle connections (WebSocket, or SSE streams) and divide the server's RSS
//! growth by N.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::task::JoinSet;

use crate::connect::{ConnectError, Failures, Target};
use crate::process::{open_files, raise_nofile_limit, rss_bytes};
use crate::report::json_line;
use crate::source::SourceIps;
use crate::sse::{SseStream, SseTarget};

/// What the idle connections are.
pub enum IdleTarget {
    WebSocket(Target),
    /// SSE streams: each is counted once its `event: connected` arrived.
    Sse(SseTarget),
}

/// One held connection.
enum Held {
    WebSocket(Box<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>>),
    Sse(SseStream),
}

impl IdleTarget {
    fn addr(&self) -> std::net::SocketAddr {
        match self {
            IdleTarget::WebSocket(t) => t.addr(),
            IdleTarget::Sse(t) => t.addr(),
        }
    }

    async fn open(&self, source: std::net::Ipv4Addr) -> Result<Held, ConnectError> {
        match self {
            IdleTarget::WebSocket(t) => Ok(Held::WebSocket(Box::new(t.connect(source).await?))),
            IdleTarget::Sse(t) => {
                let mut stream = t.connect(source).await?;
                match tokio::time::timeout(Duration::from_secs(10), stream.connected()).await {
                    Ok(Ok(_)) => Ok(Held::Sse(stream)),
                    Ok(Err(_)) => Err(ConnectError::Rejected),
                    Err(_) => Err(ConnectError::Timeout),
                }
            }
        }
    }
}

impl Held {
    /// Waits for the next frame or piece of the stream (pings, heartbeats); false when the
    /// server ended the connection.
    async fn next(&mut self) -> bool {
        match self {
            Held::WebSocket(ws) => matches!(ws.next().await, Some(Ok(_))),
            Held::Sse(stream) => stream.next_chunk().await.is_some(),
        }
    }

    async fn close(self) {
        match self {
            Held::WebSocket(mut ws) => {
                if ws.close(None).await.is_ok() {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            }
            // Dropping the stream closes its connection.
            Held::Sse(stream) => drop(stream),
        }
    }
}

pub struct IdleOptions {
    pub target: IdleTarget,
    pub connections: usize,
    pub source_ips: SourceIps,
    pub server_pid: u32,
    /// Handshakes in flight while connections are being opened.
    pub concurrency: usize,
    /// Wait after the last connection is up before reading RSS (lets the allocator settle).
    pub settle: Duration,
    /// Keep the connections open this long after the measurement.
    pub hold: Duration,
    /// Give up opening connections after this long.
    pub open_timeout: Duration,
}

/// File descriptors the load generator keeps for itself besides its sockets.
const FD_MARGIN: u64 = 200;

pub async fn run(opts: IdleOptions) -> Result<()> {
    let limit = raise_nofile_limit()?;
    if opts.connections as u64 + FD_MARGIN > limit {
        bail!(
            "{} connections need more open files than this process may hold ({limit}); \
             use at most {} per process",
            opts.connections,
            limit.saturating_sub(FD_MARGIN)
        );
    }
    let pid = opts.server_pid;
    let rss_before = rss_bytes(pid)?;
    let fds_before = open_files(pid);
    println!(
        "idle: server pid {pid} RSS before {:.1} MiB; opening {} connections to {} from {} source addresses",
        mib(rss_before),
        opts.connections,
        opts.target.addr(),
        opts.source_ips.len()
    );

    let target = Arc::new(opts.target);
    let established = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Failures::default()));
    let handshakes = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let started = Instant::now();
    let open_deadline = started + opts.open_timeout;
    for i in 0..opts.connections {
        let Ok(Ok(permit)) =
            tokio::time::timeout_at(open_deadline.into(), handshakes.clone().acquire_owned()).await
        else {
            println!(
                "idle: gave up opening connections after {:?}",
                opts.open_timeout
            );
            break;
        };
        let target = target.clone();
        let source = opts.source_ips.pick(i);
        let (established, dropped, failures) =
            (established.clone(), dropped.clone(), failures.clone());
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            // The permit goes back only once the outcome is counted: all permits back means
            // every attempt so far is counted.
            let mut held = match target.open(source).await {
                Ok(held) => held,
                Err(e) => {
                    failures.lock().await.add(e);
                    drop(permit);
                    return;
                }
            };
            established.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            // Idle: only read, so pings get their pongs and a server close is noticed.
            loop {
                tokio::select! {
                    alive = held.next() => if !alive {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    },
                    _ = stop.changed() => break,
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), held.close()).await;
        });
    }
    // Wait for the last handshakes to finish: all permits back means no handshake in flight.
    let all = u32::try_from(opts.concurrency.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout_at(open_deadline.into(), handshakes.acquire_many(all)).await;
    let open_time = started.elapsed();
    let up = established.load(Ordering::Relaxed);
    let failed = failures.lock().await.clone();
    println!(
        "idle: {up} established, {} failed {} in {:.2} s ({:.0} connections/s)",
        failed.total(),
        failed.to_json(),
        open_time.as_secs_f64(),
        up as f64 / open_time.as_secs_f64().max(1e-9)
    );

    tokio::time::sleep(opts.settle).await;
    let rss_after = rss_bytes(pid)?;
    let fds_after = open_files(pid);
    let held = established.load(Ordering::Relaxed) - dropped.load(Ordering::Relaxed);
    let growth = rss_after.saturating_sub(rss_before);
    let per_conn = if held > 0 {
        growth as f64 / held as f64
    } else {
        0.0
    };
    let own_rss = rss_bytes(std::process::id()).unwrap_or(0);
    println!(
        "idle: server RSS after {:.1} MiB, growth {:.1} MiB over {held} held connections = {:.0} bytes ({:.2} KiB) per connection",
        mib(rss_after),
        mib(growth),
        per_conn,
        per_conn / 1024.0
    );
    println!(
        "idle: server open files {} -> {}; load generator RSS {:.1} MiB",
        fds_before.map_or("?".into(), |n| n.to_string()),
        fds_after.map_or("?".into(), |n| n.to_string()),
        mib(own_rss)
    );
    json_line(json!({
        "bench": "idle",
        "transport": match target.as_ref() {
            IdleTarget::WebSocket(_) => "websocket",
            IdleTarget::Sse(_) => "sse",
        },
        "connections_requested": opts.connections,
        "established": up,
        "held": held,
        "failed": failed.total(),
        "failures": failed.to_json(),
        "open_seconds": open_time.as_secs_f64(),
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "rss_growth_bytes": growth,
        "bytes_per_connection": per_conn.round(),
        "kib_per_connection": (per_conn / 1024.0 * 100.0).round() / 100.0,
        "server_open_files_before": fds_before,
        "server_open_files_after": fds_after,
        "client_rss_bytes": own_rss,
    }));

    if !opts.hold.is_zero() {
        println!("idle: holding for {:?}", opts.hold);
        tokio::time::sleep(opts.hold).await;
    }
    let _ = stop_tx.send(true);
    let closing = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    println!(
        "idle: closed in {:.2} s ({} dropped by the server while idle)",
        closing.elapsed().as_secs_f64(),
        dropped.load(Ordering::Relaxed)
    );
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
