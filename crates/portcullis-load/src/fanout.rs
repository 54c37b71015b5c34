//! P5: one topic, many WebSocket subscribers, publishers posting to it.
//!
//! The run opens `connections` WebSocket connections, learns their ids from `GET @connections`
//! (the gateway under test serves nobody else), subscribes each one to the topic with a signed
//! `PUT @connections/{id}/topics/{topic}`, checks `GET @topics/{topic}` lists exactly them,
//! and then lets `publishers` keep-alive clients `POST @topics/{topic}` back to back (or at a
//! set rate). Every payload carries its publisher, a sequence number and its send time; every
//! receiver counts what it gets, checks the order per publisher and records the
//! publish-to-receive latency. Deliveries per second are what the receivers counted inside the
//! measured window; the gateway's own count of skipped receivers (full queues) comes from its
//! `/metrics`.
//!
//! Across a cluster (P8) the subscribers may be spread over several nodes (`--also-url`, one
//! WebSocket URL per node, connections dealt round-robin) while everything else goes through
//! the management endpoint of one node: listing, subscribing and publishing reach the other
//! nodes' connections through the cluster, and every answer counts every node's receivers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, StatusCode};
use portcullis_client::Management;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::connect::{Target, open_many};
use crate::histogram::{Histogram, micros};
use crate::keepalive::{self, Endpoint};
use crate::management::{self, Credentials};
use crate::process::{cpu_seconds, raise_nofile_limit, rss_bytes};
use crate::redis_stats;
use crate::report::json_line;
use crate::source::SourceIps;
use crate::stamp::{self, Order, Seen, Stamp};

pub struct FanoutOptions {
    /// Where the subscribers connect: the connections are dealt over these in turn (several
    /// nodes of a cluster), never empty.
    pub targets: Vec<Target>,
    /// `http://127.0.0.1:9090/prod`: the management endpoint, stage path included.
    pub management_url: String,
    pub credentials: Credentials,
    /// The admin listeners' `/metrics` (one per node of a cluster), read before and after for
    /// the skipped-receiver count, summed.
    pub metrics_urls: Vec<String>,
    /// Metric names whose samples add up to the receivers skipped by the gateway.
    pub skipped_metrics: Vec<String>,
    /// The gateway's processes (one per node of a cluster), whose CPU time over the measured
    /// window is reported, summed.
    pub server_pids: Vec<u32>,
    pub connections: usize,
    pub topic: String,
    pub publishers: usize,
    /// Publishes per second of all publishers together; 0: each publishes as soon as its last
    /// publish was answered.
    pub rate: f64,
    /// Payload bytes (at least the stamp, ~38 bytes).
    pub size: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub source_ips: SourceIps,
    /// Upgrade handshakes in flight while the subscribers connect.
    pub handshakes: usize,
    /// Keep-alive clients subscribing the connections.
    pub subscribe_concurrency: usize,
    /// A cluster's Redis, whose counters are read when publishing starts and once every
    /// publish was answered.
    pub redis: Option<SocketAddr>,
}

/// File descriptors the load generator keeps for itself besides its sockets.
const FD_MARGIN: u64 = 200;
/// Latency histograms shared by the receivers (one lock per delivery, spread over these).
const SHARDS: usize = 16;
/// How long deliveries still queued when publishing stops may take to arrive.
const SETTLE: Duration = Duration::from_secs(15);
/// How long a receiver may take to close once told to stop.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the receivers count, shared by all of them.
struct Tally {
    /// Every text frame received.
    received: AtomicU64,
    /// Deliveries of a publisher's payload earlier than one already seen (must stay 0).
    reordered: AtomicU64,
    /// Payloads that never arrived at a receiver: gaps before later ones, and at the end those
    /// after the last one it saw (skipped for a full queue, or lost).
    missing: AtomicU64,
    /// The last sequence number each publisher sent.
    last_sent: Vec<AtomicU64>,
    /// Frames that are not a publisher's payload.
    foreign: AtomicU64,
    /// Receivers whose connection the server ended.
    closed: AtomicU64,
    /// Publish-to-receive latency of payloads sent inside the measured window.
    latency: Vec<Mutex<Histogram>>,
    /// The measured window, by send time (ns since the epoch); empty until publishing starts.
    window_from_ns: AtomicU64,
    window_to_ns: AtomicU64,
}

impl Tally {
    fn new(publishers: usize) -> Self {
        Tally {
            last_sent: (0..publishers).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            missing: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            latency: (0..SHARDS).map(|_| Mutex::new(Histogram::new())).collect(),
            window_from_ns: AtomicU64::new(u64::MAX),
            window_to_ns: AtomicU64::new(0),
        }
    }

    fn deliver(&self, text: &str, order: &mut Order, shard: usize) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let Some(stamp) = stamp::decode(text) else {
            self.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match order.see(stamp.publisher, stamp.seq) {
            Seen::InOrder => {}
            Seen::AfterGap(n) => {
                self.missing.fetch_add(n, Ordering::Relaxed);
            }
            Seen::Reordered => {
                self.reordered.fetch_add(1, Ordering::Relaxed);
            }
        }
        let from = self.window_from_ns.load(Ordering::Relaxed);
        let to = self.window_to_ns.load(Ordering::Relaxed);
        if (from..to).contains(&stamp.sent_ns) {
            let took = Duration::from_nanos(stamp::now_ns().saturating_sub(stamp.sent_ns));
            let mut h = self.latency[shard % SHARDS]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            h.record(took);
        }
    }

    fn latency(&self) -> Histogram {
        let mut all = Histogram::new();
        for shard in &self.latency {
            all.merge(&shard.lock().unwrap_or_else(|p| p.into_inner()));
        }
        all
    }
}

/// One subscriber: reads until told to stop or the server ends the connection.
async fn receive(
    mut ws: WebSocketStream<TcpStream>,
    index: usize,
    publishers: usize,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) {
    let mut order = Order::new(publishers);
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => tally.deliver(text.as_str(), &mut order, index),
                Some(Ok(Message::Binary(_))) => {
                    tally.received.fetch_add(1, Ordering::Relaxed);
                    tally.foreign.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            _ = stop.changed() => break,
        }
    }
    // Told to stop once every accepted delivery arrived: what is still behind never will.
    let behind: u64 = (tally.last_sent.iter().enumerate())
        .map(|(p, sent)| order.behind(p, sent.load(Ordering::Relaxed)))
        .sum();
    tally.missing.fetch_add(behind, Ordering::Relaxed);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
}

/// Subscribes every id to the topic, `concurrency` calls at once (keep-alive connections of
/// the client's pool); every call must succeed (204).
async fn subscribe_all(
    management: &Management,
    ids: Vec<String>,
    topic: &str,
    concurrency: usize,
) -> Result<()> {
    let queue = Mutex::new(ids);
    let next = || queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let worker = || async {
        while let Some(id) = next() {
            management
                .subscribe(&id, topic)
                .await
                .with_context(|| format!("subscribing {id} to {topic}"))?;
        }
        Ok::<_, anyhow::Error>(())
    };
    futures_util::future::try_join_all((0..concurrency.max(1)).map(|_| worker())).await?;
    Ok(())
}

/// How many of `total` connections the `index`th of `targets` places gets when they are dealt
/// in turn (the first ones get one more when it does not divide).
fn dealt(total: usize, targets: usize, index: usize) -> usize {
    let targets = targets.max(1);
    total / targets + usize::from(index < total % targets)
}

/// What one publisher did.
#[derive(Default)]
struct Published {
    /// Time from sending a publish to its answer.
    latency: Histogram,
    publishes: u64,
    /// The sum of the answers' `{"connections": N}`: deliveries the gateway accepted.
    handed: u64,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    first_error: Option<String>,
}

struct Publisher {
    index: u32,
    tally: Arc<Tally>,
    endpoint: Endpoint,
    credentials: Arc<Credentials>,
    path: Arc<str>,
    size: usize,
    /// Pause between publishes when paced.
    interval: Option<Duration>,
    end: Instant,
}

impl Publisher {
    async fn run(self) -> Result<Published> {
        let mut out = Published::default();
        let mut sender = None;
        let mut seq = 0u64;
        let mut next = tokio::time::Instant::now();
        while Instant::now() < self.end {
            if let Some(interval) = self.interval {
                tokio::time::sleep_until(next).await;
                next += interval;
                if Instant::now() >= self.end {
                    break;
                }
            }
            let mut s = match sender.take() {
                Some(s) => s,
                None => match keepalive::open(&self.endpoint).await {
                    Ok(s) => s,
                    Err(_) => {
                        out.transport_errors += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            seq += 1;
            if let Some(sent) = self.tally.last_sent.get(self.index as usize) {
                sent.store(seq, Ordering::Relaxed);
            }
            let stamp = Stamp {
                publisher: self.index,
                seq,
                sent_ns: stamp::now_ns(),
            };
            let body = Bytes::from(stamp::encode(stamp, self.size));
            let signed = management::sign(
                &self.endpoint,
                &self.credentials,
                "POST",
                &self.path,
                &body,
                chrono::Utc::now(),
            )?;
            let request =
                keepalive::build_request(&self.endpoint, Method::POST, &self.path, &signed, body)?;
            let t0 = Instant::now();
            out.publishes += 1;
            let answer = async {
                s.ready().await.ok()?;
                let response = s.send_request(request).await.ok()?;
                let status = response.status();
                let body = http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .ok()?
                    .to_bytes();
                Some((status, body))
            };
            let Some((status, body)) = answer.await else {
                out.transport_errors += 1;
                continue;
            };
            out.latency.record(t0.elapsed());
            *out.statuses.entry(status.as_u16()).or_default() += 1;
            match management::handed(&body).filter(|_| status == StatusCode::OK) {
                Some(n) => out.handed += n,
                None if out.first_error.is_none() => {
                    out.first_error = Some(format!("{status} {}", management::excerpt(&body)));
                }
                None => {}
            }
            sender = Some(s);
        }
        Ok(out)
    }
}

/// The skipped-receiver count in the gateways' `/metrics`, summed (0 while the counter has no
/// sample yet); `None` when not asked for or a scrape failed.
async fn skipped(urls: &[String], names: &[String]) -> Option<f64> {
    if urls.is_empty() {
        return None;
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut sum = 0.0;
    for url in urls {
        let text = management::scrape(url).await.ok()?;
        sum += management::metric_sum(&text, &names).unwrap_or(0.0);
    }
    Some(sum)
}

/// CPU seconds used so far by all of `pids`; `None` when none is given or one cannot be read.
fn cpu_of(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_seconds(pid)).sum()
}

pub async fn run(opts: FanoutOptions) -> Result<()> {
    let limit = raise_nofile_limit()?;
    if opts.connections as u64 + FD_MARGIN > limit {
        bail!(
            "{} connections need more open files than this process may hold ({limit}); \
             use at most {}",
            opts.connections,
            limit.saturating_sub(FD_MARGIN)
        );
    }
    if opts.publishers == 0 || opts.publishers > stamp::MAX_PUBLISHERS {
        bail!("--publishers must be 1 to {}", stamp::MAX_PUBLISHERS);
    }
    let endpoint = Endpoint::parse(&opts.management_url)?;
    let credentials = Arc::new(opts.credentials);

    // 1. Connect the subscribers and learn their ids.
    let management = Management::new(&opts.management_url, credentials.as_ref().clone())?;
    let before = management::connection_ids(&management).await?;
    let opening = Instant::now();
    let mut sockets = Vec::with_capacity(opts.connections);
    for (i, target) in opts.targets.iter().enumerate() {
        let share = dealt(opts.connections, opts.targets.len(), i);
        sockets.extend(open_many(target, share, &opts.source_ips, opts.handshakes).await?);
    }
    let open_seconds = opening.elapsed().as_secs_f64();
    let tally = Arc::new(Tally::new(opts.publishers));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receivers = JoinSet::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        receivers.spawn(receive(
            ws,
            i,
            opts.publishers,
            tally.clone(),
            stop_rx.clone(),
        ));
    }
    let ids = management::new_connections(
        &management,
        &before,
        opts.connections,
        Duration::from_secs(5),
    )
    .await?;

    // 2. Subscribe them, and check the topic lists exactly them.
    let subscribing = Instant::now();
    subscribe_all(
        &management,
        ids.iter().cloned().collect(),
        &opts.topic,
        opts.subscribe_concurrency,
    )
    .await?;
    let subscribe_seconds = subscribing.elapsed().as_secs_f64();
    let listed = management::ids(
        management
            .topic_subscribers(&opts.topic)
            .await
            .context("GET @topics")?,
    );
    if listed != ids {
        bail!(
            "GET @topics/{} lists {} connections; {} were subscribed ({} of them listed)",
            opts.topic,
            listed.len(),
            ids.len(),
            listed.intersection(&ids).count()
        );
    }
    println!(
        "fanout: {} subscribers on {} node(s) connected in {open_seconds:.2} s, subscribed to {:?} in \
         {subscribe_seconds:.2} s; {} publishers, {} bytes, {}",
        ids.len(),
        opts.targets.len(),
        opts.topic,
        opts.publishers,
        opts.size,
        if opts.rate > 0.0 {
            format!("{} publishes/s", opts.rate)
        } else {
            "back to back".into()
        }
    );

    // 3. Publish; count what the receivers get inside the measured window.
    let skipped_before = skipped(&opts.metrics_urls, &opts.skipped_metrics).await;
    let redis_before = match opts.redis {
        Some(addr) => Some(redis_stats::read(addr).await?),
        None => None,
    };
    let start = Instant::now();
    let from_ns = stamp::now_ns() + u64::try_from(opts.warmup.as_nanos()).unwrap_or(0);
    let to_ns = from_ns + u64::try_from(opts.duration.as_nanos()).unwrap_or(0);
    tally.window_from_ns.store(from_ns, Ordering::Relaxed);
    tally.window_to_ns.store(to_ns, Ordering::Relaxed);
    let measure_from = start + opts.warmup;
    let end = measure_from + opts.duration;
    let interval =
        (opts.rate > 0.0).then(|| Duration::from_secs_f64(opts.publishers as f64 / opts.rate));
    let path: Arc<str> = management.endpoint().topic(&opts.topic).into();
    let mut publishers = JoinSet::new();
    for index in 0..opts.publishers {
        publishers.spawn(
            Publisher {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                tally: tally.clone(),
                endpoint: endpoint.clone(),
                credentials: credentials.clone(),
                path: path.clone(),
                size: opts.size,
                interval,
                end,
            }
            .run(),
        );
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let received_from = tally.received.load(Ordering::Relaxed);
    let cpu_from = (cpu_of(&opts.server_pids), cpu_seconds(std::process::id()));
    tokio::time::sleep_until(end.into()).await;
    let received_to = tally.received.load(Ordering::Relaxed);
    let cpu_to = (cpu_of(&opts.server_pids), cpu_seconds(std::process::id()));
    let window = (Instant::now() - measure_from).as_secs_f64();

    let mut published = Published::default();
    while let Some(joined) = publishers.join_next().await {
        let p = joined??;
        published.latency.merge(&p.latency);
        published.publishes += p.publishes;
        published.handed += p.handed;
        published.transport_errors += p.transport_errors;
        for (k, v) in p.statuses {
            *published.statuses.entry(k).or_default() += v;
        }
        if published.first_error.is_none() {
            published.first_error = p.first_error;
        }
    }
    let publish_seconds = start.elapsed().as_secs_f64();
    let redis = match (opts.redis, redis_before) {
        (Some(addr), Some(before)) => Some(
            redis_stats::read(addr)
                .await?
                .since(&before)
                .to_json(publish_seconds),
        ),
        _ => None,
    };
    // Deliveries the gateway accepted but the receivers have not read yet.
    let settle_until = Instant::now() + SETTLE;
    while tally.received.load(Ordering::Relaxed) < published.handed && Instant::now() < settle_until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let skipped_after = skipped(&opts.metrics_urls, &opts.skipped_metrics).await;
    let own_rss = rss_bytes(std::process::id()).unwrap_or(0);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT * 2, async {
        while receivers.join_next().await.is_some() {}
    })
    .await;
    receivers.abort_all();

    // 4. Report.
    let received = tally.received.load(Ordering::Relaxed);
    let in_window = received_to - received_from;
    let rate = in_window as f64 / window.max(1e-9);
    let latency = tally.latency();
    let (p50, p99, max) = (
        micros(latency.quantile(0.5)),
        micros(latency.quantile(0.99)),
        micros(latency.max()),
    );
    let (call_p50, call_p99) = (
        micros(published.latency.quantile(0.5)),
        micros(published.latency.quantile(0.99)),
    );
    let skipped = skipped_before
        .zip(skipped_after)
        .map(|(a, b)| (b - a).max(0.0).round() as u64);
    let cpu_share = |from: Option<f64>, to: Option<f64>| {
        from.zip(to)
            .map(|(a, b)| ((b - a) / window.max(1e-9) * 100.0).round())
    };
    let server_cpu = cpu_share(cpu_from.0, cpu_to.0);
    let own_cpu = cpu_share(cpu_from.1, cpu_to.1);
    let (reordered, missing, foreign, closed) = (
        tally.reordered.load(Ordering::Relaxed),
        tally.missing.load(Ordering::Relaxed),
        tally.foreign.load(Ordering::Relaxed),
        tally.closed.load(Ordering::Relaxed),
    );
    println!(
        "fanout: {} publishes in {publish_seconds:.2} s ({:.1}/s), statuses {:?}, {} transport \
         errors; publish answered p50 {call_p50} µs, p99 {call_p99} µs",
        published.publishes,
        published.publishes as f64 / publish_seconds.max(1e-9),
        published.statuses,
        published.transport_errors
    );
    println!(
        "fanout: {in_window} deliveries in the {window:.2} s window = {rate:.0}/s; \
         publish-to-receive p50 {p50} µs, p99 {p99} µs, max {max} µs"
    );
    // Each answered publish was offered to every subscriber: handed or skipped.
    let offered = published.statuses.get(&200).copied().unwrap_or(0) * ids.len() as u64;
    println!(
        "fanout: offered {offered}: handed {} (sum of answers), received {received}; skipped by the gateway {}; \
         missing at receivers {missing}; reordered {reordered}; foreign {foreign}; receivers \
         closed by the server {closed}",
        published.handed,
        skipped.map_or("?".into(), |s| s.to_string()),
    );
    println!(
        "fanout: CPU over the window: gateway {}%, load generator {}%; load generator RSS {:.1} MiB",
        server_cpu.map_or("?".into(), |c| c.to_string()),
        own_cpu.map_or("?".into(), |c| c.to_string()),
        own_rss as f64 / (1024.0 * 1024.0)
    );
    if let Some(e) = &published.first_error {
        println!("fanout: first publish error: {e}");
    }
    json_line(json!({
        "bench": "fanout",
        "subscribers": ids.len(),
        "nodes": opts.targets.len(),
        "publishers": opts.publishers,
        "rate": opts.rate,
        "payload_bytes": opts.size,
        "window_seconds": window,
        "deliveries_in_window": in_window,
        "deliveries_per_second": rate.round(),
        "p50_us": p50,
        "p99_us": p99,
        "max_us": max,
        "publishes": published.publishes,
        "publishes_per_second": (published.publishes as f64 / publish_seconds.max(1e-9)).round(),
        "publish_statuses": published.statuses,
        "publish_transport_errors": published.transport_errors,
        "publish_p50_us": call_p50,
        "publish_p99_us": call_p99,
        "offered": offered,
        "handed": published.handed,
        "received": received,
        "undelivered": published.handed.saturating_sub(received),
        "skipped": skipped,
        "missing": missing,
        "reordered": reordered,
        "foreign": foreign,
        "receivers_closed": closed,
        "server_cpu_percent": server_cpu,
        "load_cpu_percent": own_cpu,
        "client_rss_bytes": own_rss,
        "redis": redis,
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::dealt;

    #[test]
    fn connections_are_dealt_over_the_nodes_in_turn() {
        assert_eq!(
            (0..3).map(|i| dealt(10, 3, i)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        assert_eq!((0..3).map(|i| dealt(9, 3, i)).sum::<usize>(), 9);
        assert_eq!(dealt(5, 1, 0), 5);
        assert_eq!(dealt(5, 0, 0), 5);
    }
}
