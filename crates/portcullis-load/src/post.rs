//! P4: keep-alive `POST /@connections/{id}` requests, SigV4-signed (service `execute-api`),
//! while one WebSocket connection receives and drains what they push, so the gateway's send
//! queue never fills.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::connect::Target;
use crate::histogram::micros;
use crate::keepalive::{self, Endpoint};
use crate::process::raise_nofile_limit;
use crate::report::json_line;
use crate::source::SourceIps;

pub use portcullis_client::Credentials;

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
}

fn connection_path(endpoint: &Endpoint, id: &str) -> String {
    format!(
        "{}/@connections/{}",
        endpoint.base_path,
        portcullis_client::endpoint::segment(id)
    )
}

/// The SigV4 headers (`authorization`, `x-amz-date`, ...) for one request at `now`.
fn sign(
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

/// `GET /@connections` (a Portcullis extension): the ids of all open connections.
async fn list_connections(
    endpoint: &Endpoint,
    credentials: &Credentials,
) -> Result<BTreeSet<String>> {
    let mut sender = keepalive::open(endpoint).await?;
    let path = format!("{}/@connections", endpoint.base_path);
    let signed = sign(endpoint, credentials, "GET", &path, b"", chrono::Utc::now())?;
    let request = keepalive::build_request(endpoint, Method::GET, &path, &signed, Bytes::new())?;
    let response = sender
        .send_request(request)
        .await
        .context("GET /@connections")?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        bail!(
            "GET {path} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).context("GET /@connections: not JSON")?;
    let list = value
        .get("connections")
        .and_then(|c| c.as_array())
        .ok_or_else(|| anyhow!("GET /@connections: no \"connections\" array"))?;
    Ok(list
        .iter()
        .filter_map(|c| {
            c.get("connectionId")
                .and_then(|id| id.as_str())
                .map(str::to_string)
        })
        .collect())
}

pub async fn run(opts: PostOptions) -> Result<()> {
    raise_nofile_limit()?;
    let endpoint = Endpoint::parse(&opts.management_url)?;
    let credentials = Arc::new(opts.credentials);

    let before = match (&opts.connection_id, &opts.receiver) {
        (None, Some(_)) => Some(list_connections(&endpoint, &credentials).await?),
        (None, None) => bail!("give --connection-id, or --url to open a receiving connection"),
        _ => None,
    };
    let received = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receiver_task = None;
    if let Some(target) = &opts.receiver {
        let mut ws = target.connect(opts.source_ips.pick(0)).await.map_err(|e| {
            anyhow!(
                "receiving connection to {} failed: {}",
                target.addr(),
                e.name()
            )
        })?;
        let received = received.clone();
        let mut stop = stop_rx.clone();
        receiver_task = Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return,
                    },
                    _ = stop.changed() => break,
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        }));
    }
    let connection_id = match (opts.connection_id, before) {
        (Some(id), _) => id,
        (None, Some(before)) => {
            // The new id is the one that appeared; the gateway may register it just after the 101.
            let mut found = None;
            for _ in 0..20 {
                let after = list_connections(&endpoint, &credentials).await?;
                let mut new = after.difference(&before);
                match (new.next(), new.next()) {
                    (None, _) => tokio::time::sleep(Duration::from_millis(50)).await,
                    (Some(id), None) => {
                        found = Some(id.clone());
                        break;
                    }
                    (Some(_), Some(_)) => bail!(
                        "several connections appeared while learning ours; pass --connection-id"
                    ),
                }
            }
            found.ok_or_else(|| {
                anyhow!("the receiving connection never appeared in GET /@connections")
            })?
        }
        (None, None) => bail!("no connection id"),
    };

    let path = connection_path(&endpoint, &connection_id);
    println!(
        "post: {} workers POSTing {} bytes to http://{}{path} for {:?}",
        opts.concurrency,
        opts.message.len(),
        endpoint.host,
        opts.duration
    );
    let signer: keepalive::Signer = {
        let (endpoint, credentials, path, body) = (
            endpoint.clone(),
            credentials.clone(),
            path.clone(),
            opts.message.clone().into_bytes(),
        );
        Arc::new(move |now| sign(&endpoint, &credentials, "POST", &path, &body, now))
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
    })
    .await?;
    // Let the last pushes arrive before reading the receiver's count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop_tx.send(true);
    if let Some(task) = receiver_task {
        let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
    }
    let count = out.latency.count();
    let ok = out.statuses.get(&200).copied().unwrap_or(0);
    let rate = count as f64 / out.seconds.max(1e-9);
    let (p50, p99) = (
        micros(out.latency.quantile(0.5)),
        micros(out.latency.quantile(0.99)),
    );
    let frames = received.load(Ordering::Relaxed);
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
        "seconds": out.seconds,
        "requests": count,
        "requests_per_second": rate.round(),
        "ok": ok,
        "statuses": out.statuses_json(),
        "transport_errors": out.transport_errors,
        "p50_us": p50,
        "p99_us": p99,
        "frames_received": frames,
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_paths() {
        let e = Endpoint::parse("http://127.0.0.1:9090/prod/").expect("valid URL");
        assert_eq!(
            connection_path(&e, "Yq3jQfP1oAMCJzA="),
            "/prod/@connections/Yq3jQfP1oAMCJzA%3D"
        );
        let e = Endpoint::parse("http://localhost:9090").expect("valid URL");
        assert_eq!(connection_path(&e, "a-b_c.d~"), "/@connections/a-b_c.d~");
    }

    #[test]
    fn signed_posts_verify_as_sent() {
        let endpoint = Endpoint::parse("http://127.0.0.1:9090/prod").expect("valid URL");
        let credentials = Credentials {
            access_key_id: "AKIDLOCAL".into(),
            secret_access_key: "local-bench-secret".into(),
            region: "us-east-1".into(),
        };
        let path = connection_path(&endpoint, "Yq3jQfP1oAMCJzA=");
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
}
