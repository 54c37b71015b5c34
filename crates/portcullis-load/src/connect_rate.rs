//! P2: connect, complete the upgrade, close; as fast as `concurrency` workers can.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use serde_json::json;
use tokio::task::JoinSet;

use crate::connect::{Failures, Target};
use crate::histogram::{Histogram, micros};
use crate::process::raise_nofile_limit;
use crate::report::json_line;
use crate::source::SourceIps;

pub struct ConnectRateOptions {
    pub target: Target,
    pub total: usize,
    pub concurrency: usize,
    pub source_ips: SourceIps,
    /// Stop starting new connections after this long, whatever `total` says.
    pub max_time: Duration,
}

/// How long a worker waits for the server's close frame before dropping the socket.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn run(opts: ConnectRateOptions) -> Result<()> {
    let limit = raise_nofile_limit()?;
    if opts.concurrency as u64 * 2 + 100 > limit {
        bail!(
            "concurrency {} is too high for the open-files limit {limit}",
            opts.concurrency
        );
    }
    println!(
        "connect-rate: {} connects to {} with {} workers from {} source addresses",
        opts.total,
        opts.target.addr(),
        opts.concurrency,
        opts.source_ips.len()
    );
    let target = Arc::new(opts.target);
    let source_ips = Arc::new(opts.source_ips);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + opts.max_time;
    let mut workers = JoinSet::new();
    for _ in 0..opts.concurrency.max(1) {
        let (target, source_ips, next) = (target.clone(), source_ips.clone(), next.clone());
        let total = opts.total;
        workers.spawn(async move {
            let mut latency = Histogram::new();
            let mut failures = Failures::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                match target.connect(source_ips.pick(i)).await {
                    Ok(mut ws) => {
                        latency.record(t0.elapsed());
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                            if ws.close(None).await.is_ok() {
                                while let Some(Ok(_)) = ws.next().await {}
                            }
                        })
                        .await;
                    }
                    Err(e) => failures.add(e),
                }
            }
            (latency, failures)
        });
    }
    let mut latency = Histogram::new();
    let mut failures = Failures::default();
    while let Some(joined) = workers.join_next().await {
        let (l, f) = joined?;
        latency.merge(&l);
        failures.merge(&f);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = latency.count();
    let rate = ok as f64 / elapsed.max(1e-9);
    let (p50, p99) = (
        micros(latency.quantile(0.5)),
        micros(latency.quantile(0.99)),
    );
    println!(
        "connect-rate: {ok} connected, {} failed {} in {elapsed:.2} s = {rate:.0} connects/s; \
         connect latency p50 {p50} µs, p99 {p99} µs, max {} µs",
        failures.total(),
        failures.to_json(),
        micros(latency.max())
    );
    json_line(json!({
        "bench": "connect-rate",
        "total": opts.total,
        "concurrency": opts.concurrency,
        "connected": ok,
        "failed": failures.total(),
        "failures": failures.to_json(),
        "seconds": elapsed,
        "connects_per_second": rate.round(),
        "p50_us": p50,
        "p99_us": p99,
        "max_us": micros(latency.max()),
    }));
    Ok(())
}
