//! The HTTP engine: `concurrency` keep-alive HTTP/1.1 connections (hyper's client connection,
//! no pool), each sending the same request back to back until the deadline. Used for signed
//! `@connections` POSTs and for calling a backend directly.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::histogram::Histogram;
use crate::source::require_loopback;

/// An `http://` endpoint on loopback, split the way requests and signatures need it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `host:port` exactly as sent in `Host` (and signed).
    pub host: String,
    /// Path of the URL without trailing slash, e.g. `/prod` (may be empty).
    pub base_path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self> {
        let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported (loopback benchmarks), got {url:?}");
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("URL {url:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = (authority.host(), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", authority.host()))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| anyhow!("{} has no IPv4 address", authority.host()))?;
        let addr = require_loopback(addr).map_err(|e| anyhow!(e))?;
        Ok(Endpoint {
            addr,
            host: authority.as_str().to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }
}

/// One keep-alive HTTP/1.1 connection.
pub async fn open(endpoint: &Endpoint) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(endpoint.addr)
        .await
        .with_context(|| format!("connecting to {}", endpoint.addr))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

pub fn build_request(
    endpoint: &Endpoint,
    method: Method,
    path: &str,
    extra: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, endpoint.host.as_str());
    for (name, value) in extra {
        builder = builder.header(name, value);
    }
    Ok(builder.body(Full::new(body))?)
}

/// Headers to add for a request made at a given time (a SigV4 signature); the engine calls it
/// at most once per second per worker, since the signature only changes with the second.
pub type Signer = Arc<
    dyn Fn(chrono::DateTime<chrono::Utc>) -> Result<Vec<(HeaderName, HeaderValue)>> + Send + Sync,
>;

/// Checks a 2xx answer's body (e.g. "holds an access token"); false counts it as invalid.
pub type BodyCheck = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

pub struct Load {
    pub endpoint: Endpoint,
    pub method: Method,
    pub path: String,
    pub body: Bytes,
    pub signer: Option<Signer>,
    /// Applied to every 2xx answer; without it any 2xx is valid.
    pub check: Option<BodyCheck>,
    pub concurrency: usize,
    pub duration: Duration,
    /// Time between the requests each worker starts (a paced run, below saturation); `None`:
    /// back to back.
    pub pace: Option<Duration>,
}

#[derive(Default)]
pub struct Outcome {
    pub latency: Histogram,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// 2xx answers whose body failed [`Load::check`].
    pub invalid: u64,
    pub seconds: f64,
    /// The first body answered with a non-2xx status (or failing the check), for diagnosis.
    pub first_error_body: Option<String>,
}

impl Outcome {
    /// 2xx answers that passed the check.
    pub fn valid(&self) -> u64 {
        let ok: u64 = self
            .statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum();
        ok.saturating_sub(self.invalid)
    }

    pub fn statuses_json(&self) -> serde_json::Value {
        self.statuses
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect()
    }
}

/// Wait after a failed connect before trying again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

pub async fn run(load: Load) -> Result<Outcome> {
    let started = Instant::now();
    let end = started + load.duration;
    let path: Arc<str> = load.path.into();
    let mut workers = JoinSet::new();
    let concurrency = load.concurrency.max(1);
    for worker in 0..concurrency {
        // Paced workers start spread over one interval, not all at once.
        let pace = load.pace;
        let mut next = tokio::time::Instant::now()
            + pace.map_or(Duration::ZERO, |p| {
                p.mul_f64(worker as f64 / concurrency as f64)
            });
        let (endpoint, method, path, body, signer, check) = (
            load.endpoint.clone(),
            load.method.clone(),
            path.clone(),
            load.body.clone(),
            load.signer.clone(),
            load.check.clone(),
        );
        workers.spawn(async move {
            let mut out = Outcome::default();
            let mut signed: Option<(i64, Vec<(HeaderName, HeaderValue)>)> = None;
            let mut sender: Option<SendRequest<Full<Bytes>>> = None;
            while Instant::now() < end {
                if let Some(pace) = pace {
                    tokio::time::sleep_until(next).await;
                    next += pace;
                    if Instant::now() >= end {
                        break;
                    }
                }
                let mut s = match sender.take() {
                    Some(s) => s,
                    None => match open(&endpoint).await {
                        Ok(s) => s,
                        Err(_) => {
                            out.transport_errors += 1;
                            tokio::time::sleep(RECONNECT_PAUSE).await;
                            continue;
                        }
                    },
                };
                if let Some(signer) = &signer {
                    let now = chrono::Utc::now();
                    let second = now.timestamp();
                    if signed.as_ref().is_none_or(|(s, _)| *s != second) {
                        signed = Some((second, signer(now)?));
                    }
                }
                let extra = signed.as_ref().map_or(&[][..], |(_, h)| h.as_slice());
                let request = build_request(&endpoint, method.clone(), &path, extra, body.clone())?;
                let t0 = Instant::now();
                if s.ready().await.is_err() {
                    out.transport_errors += 1;
                    continue;
                }
                let Ok(response) = s.send_request(request).await else {
                    out.transport_errors += 1;
                    continue;
                };
                let status = response.status();
                let Ok(collected) = response.into_body().collect().await else {
                    out.transport_errors += 1;
                    continue;
                };
                out.latency.record(t0.elapsed());
                *out.statuses.entry(status.as_u16()).or_default() += 1;
                let bytes = collected.to_bytes();
                let failed = if status.is_success() {
                    let bad = check.as_ref().is_some_and(|c| !c(&bytes));
                    out.invalid += u64::from(bad);
                    bad
                } else {
                    true
                };
                if failed && out.first_error_body.is_none() {
                    out.first_error_body =
                        Some(String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned());
                }
                sender = Some(s);
            }
            Ok::<_, anyhow::Error>(out)
        });
    }
    let mut total = Outcome::default();
    while let Some(joined) = workers.join_next().await {
        let w = joined??;
        total.latency.merge(&w.latency);
        for (k, v) in w.statuses {
            *total.statuses.entry(k).or_default() += v;
        }
        total.transport_errors += w.transport_errors;
        total.invalid += w.invalid;
        if total.first_error_body.is_none() {
            total.first_error_body = w.first_error_body;
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:9090/prod/").expect("valid URL");
        assert_eq!(e.host, "127.0.0.1:9090");
        assert_eq!(e.base_path, "/prod");
        let e = Endpoint::parse("http://localhost:9000").expect("valid URL");
        assert_eq!(e.base_path, "");
        assert!(Endpoint::parse("https://127.0.0.1:9090/prod").is_err());
        assert!(Endpoint::parse("http://10.1.2.3:9090/").is_err());
    }
}
