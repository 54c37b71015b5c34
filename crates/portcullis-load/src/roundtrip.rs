//! P3: each connection sends a message and waits for the reply frame, in a loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::connect::Target;
use crate::histogram::{Histogram, micros};
use crate::process::raise_nofile_limit;
use crate::report::json_line;
use crate::source::SourceIps;

pub struct RoundtripOptions {
    pub target: Target,
    pub connections: usize,
    pub duration: Duration,
    /// Round trips before this are not counted (connections warm, caches filled).
    pub warmup: Duration,
    pub message: String,
    /// If set, every reply must be exactly this text; others count as mismatches.
    pub expect: Option<String>,
    pub source_ips: SourceIps,
}

/// How long past the end a worker may wait for its last reply before it is counted as stuck.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct WorkerStats {
    latency: Histogram,
    mismatched: u64,
    first_mismatch: Option<String>,
    closed: bool,
    stuck: bool,
}

pub async fn run(opts: RoundtripOptions) -> Result<()> {
    raise_nofile_limit()?;
    let target = Arc::new(opts.target);
    let mut sockets = Vec::with_capacity(opts.connections);
    for i in 0..opts.connections {
        match target.connect(opts.source_ips.pick(i)).await {
            Ok(ws) => sockets.push(ws),
            Err(e) => bail!("connection {i} to {} failed: {}", target.addr(), e.name()),
        }
    }
    println!(
        "roundtrip: {} connections to {}, {:?} (+{:?} warm-up), message {} bytes",
        sockets.len(),
        target.addr(),
        opts.duration,
        opts.warmup,
        opts.message.len()
    );
    let message = Utf8Bytes::from(opts.message);
    let expect: Option<Arc<str>> = opts.expect.map(Into::into);
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let end = measure_from + opts.duration;
    let mut workers = JoinSet::new();
    for mut ws in sockets {
        let (message, expect) = (message.clone(), expect.clone());
        workers.spawn(async move {
            let mut stats = WorkerStats::default();
            let work = async {
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        return;
                    }
                    // Cloning `Utf8Bytes` is a reference-count increment, not a copy.
                    if ws.send(Message::Text(message.clone())).await.is_err() {
                        stats.closed = true;
                        return;
                    }
                    let reply = loop {
                        match ws.next().await {
                            Some(Ok(Message::Text(t))) => break Some(t),
                            Some(Ok(Message::Binary(_))) => break None,
                            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                                continue;
                            }
                            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                                stats.closed = true;
                                return;
                            }
                        }
                    };
                    let elapsed = t0.elapsed();
                    if let Some(expect) = &expect {
                        let ok = reply.as_ref().is_some_and(|t| t.as_str() == &**expect);
                        if !ok {
                            stats.mismatched += 1;
                            if stats.first_mismatch.is_none() {
                                stats.first_mismatch =
                                    Some(reply.map_or("<binary frame>".into(), |t| {
                                        t.as_str().chars().take(200).collect()
                                    }));
                            }
                        }
                    }
                    if t0 >= measure_from {
                        stats.latency.record(elapsed);
                    }
                }
            };
            if tokio::time::timeout_at((end + GRACE).into(), work)
                .await
                .is_err()
            {
                stats.stuck = true;
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            stats
        });
    }
    let mut latency = Histogram::new();
    let (mut mismatched, mut closed, mut stuck) = (0u64, 0u64, 0u64);
    let mut first_mismatch = None;
    while let Some(joined) = workers.join_next().await {
        let s = joined?;
        latency.merge(&s.latency);
        mismatched += s.mismatched;
        closed += u64::from(s.closed);
        stuck += u64::from(s.stuck);
        if first_mismatch.is_none() {
            first_mismatch = s.first_mismatch;
        }
    }
    let seconds = opts.duration.as_secs_f64();
    let count = latency.count();
    let rate = count as f64 / seconds.max(1e-9);
    let (p50, p99) = (
        micros(latency.quantile(0.5)),
        micros(latency.quantile(0.99)),
    );
    println!(
        "roundtrip: {count} round trips in {seconds:.1} s = {rate:.0}/s; p50 {p50} µs, p99 {p99} µs, max {} µs",
        micros(latency.max())
    );
    if mismatched > 0 || closed > 0 || stuck > 0 {
        println!(
            "roundtrip: {mismatched} unexpected replies (first: {:?}), {closed} connections closed early, {stuck} stuck",
            first_mismatch.as_deref().unwrap_or("")
        );
    }
    json_line(json!({
        "bench": "roundtrip",
        "connections": opts.connections,
        "seconds": seconds,
        "round_trips": count,
        "round_trips_per_second": rate.round(),
        "p50_us": p50,
        "p99_us": p99,
        "max_us": micros(latency.max()),
        "mismatched": mismatched,
        "closed_early": closed,
        "stuck": stuck,
    }));
    Ok(())
}
