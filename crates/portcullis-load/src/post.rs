//! P4: keep-alive `POST /@connections/{id}` requests, SigV4-signed (service `execute-api`),
//! while one WebSocket connection receives and drains what they push, so the gateway's send
//! queue never fills.
//!
//! The management endpoint and the receiving connection may be different nodes of a cluster
//! (P8): the connection is opened on `--url`'s node and its id learned from `GET @connections`
//! on the management endpoint's node, which lists every node's connections; each POST then
//! takes the hop to the owner and back. `--rate` paces the requests below saturation, for
//! latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use http::Method;
use portcullis_client::Management;
use serde_json::json;

use crate::connect::Target;
use crate::drain::Drain;
use crate::histogram::micros;
use crate::keepalive::{self, Endpoint};
use crate::management::{self, Credentials};
use crate::process::raise_nofile_limit;
use crate::redis_stats;
use crate::report::json_line;
use crate::source::SourceIps;

pub struct PostOptions {
    /// `http://127.0.0.1:9090/prod`: the management endpoint, stage path included.
    pub management_url: String,
    pub connection_id: Option<String>,
    /// WebSocket URL to open a receiving connection on (required without `connection_id`).
    pub receiver: Option<Target>,
    pub source_ips: SourceIps,
    pub credentials: Credentials,
    pub concurrency: usize,
    pub duration: Duration,
    pub message: String,
    /// Requests per second of all clients together; `None`: back to back.
    pub rate: Option<f64>,
    /// A cluster's Redis, whose counters are read before and after the POSTs.
    pub redis: Option<SocketAddr>,
}

/// How long the pushes still in flight when the load stops may take to arrive.
const SETTLE: Duration = Duration::from_secs(3);

pub async fn run(opts: PostOptions) -> Result<()> {
    raise_nofile_limit()?;
    let endpoint = Endpoint::parse(&opts.management_url)?;
    let management = Management::new(&opts.management_url, opts.credentials.clone())?;
    let credentials = Arc::new(opts.credentials);

    let before = match (&opts.connection_id, &opts.receiver) {
        (None, Some(_)) => Some(management::connection_ids(&management).await?),
        (None, None) => bail!("give --connection-id, or --url to open a receiving connection"),
        _ => None,
    };
    let mut sockets = Vec::new();
    if let Some(target) = &opts.receiver {
        let ws = target.connect(opts.source_ips.pick(0)).await.map_err(|e| {
            anyhow!(
                "receiving connection to {} failed: {}",
                target.addr(),
                e.name()
            )
        })?;
        sockets.push(ws);
    }
    let drain = Drain::start(sockets);
    let connection_id = match (opts.connection_id, before) {
        (Some(id), _) => id,
        (None, Some(before)) => {
            management::new_connections(&management, &before, 1, Duration::from_secs(1))
                .await?
                .pop_first()
                .ok_or_else(|| anyhow!("no connection id"))?
        }
        (None, None) => bail!("no connection id"),
    };

    let path = management.endpoint().connection(&connection_id);
    let pace = opts
        .rate
        .map(|rate| Duration::from_secs_f64(opts.concurrency.max(1) as f64 / rate));
    println!(
        "post: {} workers POSTing {} bytes to http://{}{path} for {:?}, {}",
        opts.concurrency,
        opts.message.len(),
        endpoint.host,
        opts.duration,
        opts.rate
            .map_or("back to back".into(), |r| format!("{r} requests/s")),
    );
    let signer: keepalive::Signer = {
        let (endpoint, credentials, path, body) = (
            endpoint.clone(),
            credentials.clone(),
            path.clone(),
            opts.message.clone().into_bytes(),
        );
        Arc::new(move |now| management::sign(&endpoint, &credentials, "POST", &path, &body, now))
    };
    let redis_before = match opts.redis {
        Some(addr) => Some((redis_stats::read(addr).await?, Instant::now())),
        None => None,
    };
    let out = keepalive::run(keepalive::Load {
        endpoint,
        method: Method::POST,
        path,
        body: Bytes::from(opts.message),
        signer: Some(signer),
        check: None,
        concurrency: opts.concurrency,
        duration: opts.duration,
        pace,
    })
    .await?;
    let redis = match (opts.redis, redis_before) {
        (Some(addr), Some((before, at))) => {
            let seconds = at.elapsed().as_secs_f64();
            Some(
                redis_stats::read(addr)
                    .await?
                    .since(&before)
                    .to_json(seconds),
            )
        }
        _ => None,
    };
    let count = out.latency.count();
    let ok = out.statuses.get(&200).copied().unwrap_or(0);
    // Let the last pushes arrive before reading the receiver's count.
    drain.settle(ok, SETTLE).await;
    let frames = drain.stop().await;
    let rate = count as f64 / out.seconds.max(1e-9);
    let (p50, p99) = (
        micros(out.latency.quantile(0.5)),
        micros(out.latency.quantile(0.99)),
    );
    println!(
        "post: {count} requests in {:.2} s = {rate:.0}/s ({ok} answered 200); statuses {}; \
         {} transport errors; p50 {p50} µs, p99 {p99} µs; {frames} frames received",
        out.seconds,
        out.statuses_json(),
        out.transport_errors
    );
    if let Some(body) = &out.first_error_body {
        println!("post: first error body: {body}");
    }
    json_line(json!({
        "bench": "post",
        "concurrency": opts.concurrency,
        "rate": opts.rate,
        "seconds": out.seconds,
        "requests": count,
        "requests_per_second": rate.round(),
        "ok": ok,
        "statuses": out.statuses_json(),
        "transport_errors": out.transport_errors,
        "p50_us": p50,
        "p99_us": p99,
        "frames_received": frames,
        "redis": redis,
    }));
    Ok(())
}
