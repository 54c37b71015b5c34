//! Push to a user: keep-alive, SigV4-signed `POST @users/{principal}` from `concurrency`
//! clients, while `receivers` WebSocket connections admitted as that principal drain what they
//! get. Answers that name fewer than all receivers (one was skipped for a full queue) are
//! counted apart; the frames received must add up to the sum of the answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::Method;
use portcullis_client::Management;
use serde_json::json;

use crate::connect::{Target, open_many};
use crate::drain::Drain;
use crate::histogram::micros;
use crate::keepalive::{self, Endpoint};
use crate::management::{self, Credentials};
use crate::process::raise_nofile_limit;
use crate::report::json_line;
use crate::source::SourceIps;

pub struct PushUserOptions {
    /// Where the receiving connections go, with the identity (query or header) that makes
    /// them the principal's.
    pub target: Target,
    /// `http://127.0.0.1:9090/prod`: the management endpoint, stage path included.
    pub management_url: String,
    pub credentials: Credentials,
    pub principal: String,
    pub receivers: usize,
    pub source_ips: SourceIps,
    pub concurrency: usize,
    pub duration: Duration,
    pub message: String,
}

/// How long the pushes still in flight when the load stops may take to arrive.
const SETTLE: Duration = Duration::from_secs(3);

pub async fn run(opts: PushUserOptions) -> Result<()> {
    raise_nofile_limit()?;
    let endpoint = Endpoint::parse(&opts.management_url)?;
    let management = Management::new(&opts.management_url, opts.credentials.clone())?;
    let credentials = Arc::new(opts.credentials);
    let user_connections = || async {
        management
            .user_connections(&opts.principal)
            .await
            .context("GET @users")
    };
    let before = user_connections().await?;
    if !before.is_empty() {
        bail!(
            "{:?} already has {} connections; the run needs a principal of its own",
            opts.principal,
            before.len()
        );
    }
    let sockets = open_many(&opts.target, opts.receivers, &opts.source_ips, 8).await?;
    let drain = Drain::start(sockets);
    let listed = user_connections().await?;
    if listed.len() != opts.receivers {
        bail!(
            "GET @users/{} lists {} connections after {} were opened as that principal",
            opts.principal,
            listed.len(),
            opts.receivers
        );
    }

    let path = management.endpoint().user(&opts.principal);
    println!(
        "push-user: {} workers POSTing {} bytes to http://{}{path} ({} receivers) for {:?}",
        opts.concurrency,
        opts.message.len(),
        endpoint.host,
        opts.receivers,
        opts.duration
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
    let expected = opts.receivers as u64;
    // The sum of the answers' `{"connections": N}`: the deliveries the gateway accepted.
    let handed = Arc::new(AtomicU64::new(0));
    let check: keepalive::BodyCheck = {
        let handed = handed.clone();
        Arc::new(move |body| {
            let n = management::handed(body);
            handed.fetch_add(n.unwrap_or(0), Ordering::Relaxed);
            n == Some(expected)
        })
    };
    let out = keepalive::run(keepalive::Load {
        endpoint,
        method: Method::POST,
        path,
        body: Bytes::from(opts.message),
        signer: Some(signer),
        check: Some(check),
        concurrency: opts.concurrency,
        duration: opts.duration,
        pace: None,
    })
    .await?;
    let count = out.latency.count();
    let valid = out.valid();
    let handed = handed.load(Ordering::Relaxed);
    drain.settle(handed, SETTLE).await;
    let frames = drain.stop().await;
    let rate = count as f64 / out.seconds.max(1e-9);
    let (p50, p99) = (
        micros(out.latency.quantile(0.5)),
        micros(out.latency.quantile(0.99)),
    );
    println!(
        "push-user: {count} calls in {:.2} s = {rate:.0}/s ({valid} answered {{\"connections\": \
         {expected}}}); statuses {}; {} transport errors; p50 {p50} µs, p99 {p99} µs; {frames} \
         frames received of {handed} accepted",
        out.seconds,
        out.statuses_json(),
        out.transport_errors,
    );
    if let Some(body) = &out.first_error_body {
        println!("push-user: first unexpected answer: {body}");
    }
    json_line(json!({
        "bench": "push-user",
        "receivers": opts.receivers,
        "concurrency": opts.concurrency,
        "seconds": out.seconds,
        "requests": count,
        "requests_per_second": rate.round(),
        "valid": valid,
        "statuses": out.statuses_json(),
        "transport_errors": out.transport_errors,
        "p50_us": p50,
        "p99_us": p99,
        "frames_received": frames,
        "frames_accepted": handed,
    }));
    Ok(())
}
