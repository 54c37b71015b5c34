//! The gateway's management API as the benchmarks use it. Setup calls (listing, subscribing)
//! go through `portcullis_client::Management`; the measured loops send their own signed
//! requests over the load generator's keep-alive connections ([`sign`]). Also the unsigned
//! `/metrics` scrape of the admin listener.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use portcullis_client::{ConnectionSummary, Management};

use crate::keepalive::{self, Endpoint};

pub use portcullis_client::Credentials;

/// Largest `/metrics` answer read.
const MAX_SCRAPE_BYTES: usize = 8 << 20;

/// The SigV4 headers (`authorization`, `x-amz-date`) for one request at `now`, as header values
/// for the load generator's own requests.
pub fn sign(
    endpoint: &Endpoint,
    credentials: &Credentials,
    method: &str,
    path: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(HeaderName, HeaderValue)>> {
    portcullis_client::signing::headers(credentials, &endpoint.host, method, path, body, now)
        .into_iter()
        .map(|(name, value)| {
            Ok((
                HeaderName::from_bytes(name.as_bytes())
                    .with_context(|| format!("signer gave bad header {name:?}"))?,
                HeaderValue::from_str(&value)
                    .with_context(|| format!("signer gave bad value for {name:?}"))?,
            ))
        })
        .collect()
}

/// The ids of a listing.
pub fn ids(list: Vec<ConnectionSummary>) -> BTreeSet<String> {
    list.into_iter().map(|c| c.connection_id).collect()
}

/// `GET @connections` (a Portcullis extension): the ids of all open connections.
pub async fn connection_ids(management: &Management) -> Result<BTreeSet<String>> {
    Ok(ids(management
        .list_connections()
        .await
        .context("GET @connections")?))
}

/// Polls `GET @connections` (up to `limit`) until exactly `expected` ids not in `before` are
/// listed: the connections this process just opened (the gateway registers each one before
/// its 101, so they are there at once; the list is read again to be sure).
pub async fn new_connections(
    management: &Management,
    before: &BTreeSet<String>,
    expected: usize,
    limit: Duration,
) -> Result<BTreeSet<String>> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let new: BTreeSet<String> = connection_ids(management)
            .await?
            .difference(before)
            .cloned()
            .collect();
        if new.len() == expected {
            return Ok(new);
        }
        if new.len() > expected {
            bail!(
                "{} new connections appeared, {expected} were opened here: another client is \
                 using the gateway under test",
                new.len()
            );
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "only {} of the {expected} connections opened here appear in GET @connections",
                new.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// N of a push's `{"connections": N}` answer (the receivers handed the message).
pub fn handed(body: &[u8]) -> Option<u64> {
    portcullis_client::answer::delivered(body)
        .ok()
        .and_then(|n| u64::try_from(n).ok())
}

/// The first 300 bytes of a body, for error messages.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

/// The sum of every sample named one of `names` (any labels) in an OpenMetrics text exposition
/// (`name{labels} value`); `None` when no sample matched.
pub fn metric_sum(exposition: &str, names: &[&str]) -> Option<f64> {
    let mut sum = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let Some((name_and_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = name_and_labels
            .split_once('{')
            .map_or(name_and_labels, |(n, _)| n);
        if names.contains(&name)
            && let Ok(v) = value.trim().parse::<f64>()
        {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

/// `GET {url}` of the admin listener's `/metrics` (unsigned), as text.
pub async fn scrape(url: &str) -> Result<String> {
    let endpoint = Endpoint::parse(url)?;
    let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
    let path = uri.path_and_query().map_or("/metrics", |p| p.as_str());
    let mut sender = keepalive::open(&endpoint).await?;
    let request = keepalive::build_request(&endpoint, Method::GET, path, &[], Bytes::new())?;
    let response = sender.send_request(request).await.context("GET /metrics")?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), MAX_SCRAPE_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow!("GET {url}: {e}"))?
        .to_bytes();
    if status != StatusCode::OK {
        bail!("GET {url} answered {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(handed(br#"{"connections": 3}"#), Some(3));
        assert_eq!(handed(b"nope"), None);
        assert_eq!(excerpt(&[b'x'; 400]).len(), 300);
    }

    #[test]
    fn signed_requests_verify_as_sent() {
        let endpoint = Endpoint::parse("http://127.0.0.1:9090/prod").expect("valid URL");
        let paths = portcullis_client::Endpoint::parse("http://127.0.0.1:9090/prod").expect("URL");
        let credentials = Credentials {
            access_key_id: "AKIDLOCAL".into(),
            secret_access_key: "local-bench-secret".into(),
            region: "us-east-1".into(),
        };
        let path = paths.topic("bench");
        let now = chrono::Utc::now();
        let signed = sign(&endpoint, &credentials, "POST", &path, b"hello", now).expect("signed");
        let values: Vec<(String, String)> = signed
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    v.to_str().expect("ascii").to_string(),
                )
            })
            .collect();
        let mut headers = vec![("host", endpoint.host.as_str())];
        headers.extend(values.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let request = portcullis_auth::sigv4::SignableRequest {
            method: "POST",
            path: &path,
            query: "",
            headers: &headers,
            body: b"hello",
        };
        let params = portcullis_auth::sigv4::VerifyParams {
            region: "us-east-1",
            service: "execute-api",
            now,
            max_skew: Duration::from_secs(900),
        };
        let secret = |id: &str| (id == "AKIDLOCAL").then(|| "local-bench-secret".to_string());
        let verified =
            portcullis_auth::sigv4::verify(&request, &params, &secret).expect("verifies");
        assert_eq!(verified.access_key_id, "AKIDLOCAL");
    }

    #[test]
    fn metric_sums() {
        let text = "# TYPE portcullis_push_skipped counter\n\
                    portcullis_push_skipped_total{api=\"a\"} 3\n\
                    portcullis_push_skipped_total{api=\"b\"} 4\n\
                    portcullis_push_skipped_created{api=\"a\"} 17.5\n\
                    portcullis_other_total 9\n";
        assert_eq!(
            metric_sum(text, &["portcullis_push_skipped_total"]),
            Some(7.0)
        );
        assert_eq!(metric_sum(text, &["portcullis_push_skipped"]), None);
        assert_eq!(
            metric_sum(
                text,
                &["portcullis_other_total", "portcullis_push_skipped_total"]
            ),
            Some(16.0)
        );
    }
}
