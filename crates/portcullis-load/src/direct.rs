//! `http`: a backend called directly with keep-alive requests, the ceiling the gateway's
//! round trips (P3) and HTTP proxying (P7) are compared with.

use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::histogram::micros;
use crate::keepalive::{self, Endpoint};
use crate::process::raise_nofile_limit;
use crate::report::json_line;

pub struct DirectOptions {
    pub url: String,
    pub method: Method,
    pub body: String,
    pub concurrency: usize,
    pub duration: Duration,
    /// Sent with every request (e.g. an Authorization header).
    pub headers: Vec<(String, String)>,
}

/// Fixed extra headers, passed through the engine's per-second header hook.
fn static_headers(headers: &[(String, String)]) -> Result<Option<keepalive::Signer>> {
    if headers.is_empty() {
        return Ok(None);
    }
    let parsed: Vec<(http::HeaderName, http::HeaderValue)> = headers
        .iter()
        .map(|(n, v)| {
            Ok((
                http::HeaderName::from_bytes(n.as_bytes())?,
                http::HeaderValue::from_str(v)?,
            ))
        })
        .collect::<Result<_>>()?;
    Ok(Some(std::sync::Arc::new(move |_| Ok(parsed.clone()))))
}

pub async fn run(opts: DirectOptions) -> Result<()> {
    raise_nofile_limit()?;
    let endpoint = Endpoint::parse(&opts.url)?;
    let uri: http::Uri = opts.url.parse()?;
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    println!(
        "http: {} workers, {} http://{}{path} for {:?}",
        opts.concurrency, opts.method, endpoint.host, opts.duration
    );
    let out = keepalive::run(keepalive::Load {
        endpoint,
        method: opts.method,
        path,
        body: Bytes::from(opts.body),
        signer: static_headers(&opts.headers)?,
        check: None,
        concurrency: opts.concurrency,
        duration: opts.duration,
        pace: None,
    })
    .await?;
    let count = out.latency.count();
    let rate = count as f64 / out.seconds.max(1e-9);
    let (p50, p99) = (
        micros(out.latency.quantile(0.5)),
        micros(out.latency.quantile(0.99)),
    );
    println!(
        "http: {count} requests in {:.2} s = {rate:.0}/s; statuses {}; {} transport errors; p50 {p50} µs, p99 {p99} µs",
        out.seconds,
        out.statuses_json(),
        out.transport_errors
    );
    json_line(json!({
        "bench": "http",
        "concurrency": opts.concurrency,
        "seconds": out.seconds,
        "requests": count,
        "requests_per_second": rate.round(),
        "statuses": out.statuses_json(),
        "transport_errors": out.transport_errors,
        "p50_us": p50,
        "p99_us": p99,
    }));
    Ok(())
}
