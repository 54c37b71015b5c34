//! The gateway's management API as a backend calls it: SigV4-signed requests (service
//! `execute-api`) to `@connections`, `@users` and `@topics` under a stage, over keep-alive
//! HTTP/1.1 connections, plus the unsigned `/metrics` scrape of the admin listener.

use std::collections::BTreeSet;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::keepalive::{self, Endpoint};

/// Characters left alone in a path segment on the wire: RFC 3986 unreserved, as AWS SDKs do.
const SEGMENT_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Largest answer body read from the management API (a list of ~20,000 connections).
const MAX_ANSWER_BYTES: usize = 8 << 20;

pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

/// `{base}/@connections/{id}`, the id percent-encoded as a path segment.
pub fn connection_path(endpoint: &Endpoint, id: &str) -> String {
    format!("{}/@connections/{}", endpoint.base_path, segment(id))
}

/// `{base}/@connections/{id}/topics/{topic}`: subscribing (PUT) or unsubscribing (DELETE).
pub fn subscription_path(endpoint: &Endpoint, id: &str, topic: &str) -> String {
    format!(
        "{}/topics/{}",
        connection_path(endpoint, id),
        segment(topic)
    )
}

/// `{base}/@topics/{topic}`: publishing (POST) or listing subscribers (GET).
pub fn topic_path(endpoint: &Endpoint, topic: &str) -> String {
    format!("{}/@topics/{}", endpoint.base_path, segment(topic))
}

/// `{base}/@users/{principal}`: pushing to (POST) or listing (GET) a principal's connections.
pub fn user_path(endpoint: &Endpoint, principal: &str) -> String {
    format!("{}/@users/{}", endpoint.base_path, segment(principal))
}

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT_ENCODE).to_string()
}

/// The SigV4 headers (`authorization`, `x-amz-date`, ...) for one request at `now`.
pub fn sign(
    endpoint: &Endpoint,
    credentials: &Credentials,
    method: &str,
    path: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(HeaderName, HeaderValue)>> {
    let request = portcullis_auth::sigv4::SignableRequest {
        method,
        path,
        query: "",
        headers: &[("host", endpoint.host.as_str())],
        body,
    };
    let signed = portcullis_auth::sigv4::sign(
        &request,
        &credentials.access_key_id,
        &credentials.secret_access_key,
        &credentials.region,
        "execute-api",
        now,
    );
    signed
        .into_iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
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

/// One keep-alive connection to the management API that signs what it sends.
pub struct Client<'a> {
    endpoint: &'a Endpoint,
    credentials: &'a Credentials,
    sender: SendRequest<Full<Bytes>>,
}

impl<'a> Client<'a> {
    pub async fn open(endpoint: &'a Endpoint, credentials: &'a Credentials) -> Result<Self> {
        let sender = keepalive::open(endpoint).await?;
        Ok(Client {
            endpoint,
            credentials,
            sender,
        })
    }

    /// Sends one signed request; the answer's status and body (at most 8 MiB).
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let signed = sign(
            self.endpoint,
            self.credentials,
            method.as_str(),
            path,
            &body,
            chrono::Utc::now(),
        )?;
        let request = keepalive::build_request(self.endpoint, method.clone(), path, &signed, body)?;
        self.sender
            .ready()
            .await
            .context("management connection closed")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| anyhow!("{method} {path}: reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }

    /// `GET @connections` (a Portcullis extension): the ids of all open connections.
    pub async fn list_connections(&mut self) -> Result<BTreeSet<String>> {
        let path = format!("{}/@connections", self.endpoint.base_path);
        self.connection_ids(&path).await
    }

    /// `GET @users/{principal}`: the ids of that principal's connections.
    pub async fn user_connections(&mut self, principal: &str) -> Result<BTreeSet<String>> {
        let path = user_path(self.endpoint, principal);
        self.connection_ids(&path).await
    }

    /// `GET @topics/{topic}`: the ids of the topic's subscribers.
    pub async fn topic_subscribers(&mut self, topic: &str) -> Result<BTreeSet<String>> {
        let path = topic_path(self.endpoint, topic);
        self.connection_ids(&path).await
    }

    /// Polls `GET @connections` (up to `limit`) until exactly `expected` ids not in `before`
    /// are listed: the connections this process just opened (the gateway registers each one
    /// just before its 101, so they appear at once, but the list is read again to be sure).
    pub async fn new_connections(
        &mut self,
        before: &BTreeSet<String>,
        expected: usize,
        limit: std::time::Duration,
    ) -> Result<BTreeSet<String>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let new: BTreeSet<String> = self
                .list_connections()
                .await?
                .difference(before)
                .cloned()
                .collect();
            if new.len() == expected {
                return Ok(new);
            }
            if new.len() > expected {
                bail!(
                    "{} new connections appeared, {expected} were opened here: \
                     another client is using the gateway under test",
                    new.len()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "only {} of the {expected} connections opened here appear in GET @connections",
                    new.len()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn connection_ids(&mut self, path: &str) -> Result<BTreeSet<String>> {
        let (status, body) = self.call(Method::GET, path, Bytes::new()).await?;
        if status != StatusCode::OK {
            bail!("GET {path} answered {status}: {}", excerpt(&body));
        }
        connection_ids(&body).with_context(|| format!("GET {path}"))
    }
}

/// The `connectionId`s of a `{"connections": [{"connectionId": ...}, ...]}` answer.
pub fn connection_ids(body: &[u8]) -> Result<BTreeSet<String>> {
    let value: serde_json::Value = serde_json::from_slice(body).context("answer is not JSON")?;
    let list = value
        .get("connections")
        .and_then(|c| c.as_array())
        .ok_or_else(|| anyhow!("answer has no \"connections\" array"))?;
    Ok(list
        .iter()
        .filter_map(|c| {
            c.get("connectionId")
                .and_then(|id| id.as_str())
                .map(str::to_string)
        })
        .collect())
}

/// N of a push's `{"connections": N}` answer (the receivers handed the message).
pub fn handed(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("connections")?
        .as_u64()
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
    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
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
    use std::time::Duration;

    use super::*;

    #[test]
    fn paths() {
        let e = Endpoint::parse("http://127.0.0.1:9090/prod/").expect("valid URL");
        assert_eq!(
            connection_path(&e, "Yq3jQfP1oAMCJzA="),
            "/prod/@connections/Yq3jQfP1oAMCJzA%3D"
        );
        assert_eq!(
            subscription_path(&e, "Yq3=", "room:1"),
            "/prod/@connections/Yq3%3D/topics/room%3A1"
        );
        assert_eq!(topic_path(&e, "news.eu"), "/prod/@topics/news.eu");
        assert_eq!(user_path(&e, "bench-user-0"), "/prod/@users/bench-user-0");
        let e = Endpoint::parse("http://localhost:9090").expect("valid URL");
        assert_eq!(connection_path(&e, "a-b_c.d~"), "/@connections/a-b_c.d~");
    }

    #[test]
    fn answers() {
        let list = br#"{"connections":[{"connectionId":"a","transport":"websocket"},{"connectionId":"b"}]}"#;
        let ids = connection_ids(list).expect("a list");
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(connection_ids(b"{}").is_err());
        assert_eq!(handed(br#"{"connections": 3}"#), Some(3));
        assert_eq!(handed(b"nope"), None);
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
            metric_sum(text, &["portcullis_other_total", "portcullis_push_skipped_total"]),
            Some(16.0)
        );
    }

    #[test]
    fn signed_requests_verify_as_sent() {
        let endpoint = Endpoint::parse("http://127.0.0.1:9090/prod").expect("valid URL");
        let credentials = Credentials {
            access_key_id: "AKIDLOCAL".into(),
            secret_access_key: "local-bench-secret".into(),
            region: "us-east-1".into(),
        };
        let path = subscription_path(&endpoint, "Yq3jQfP1oAMCJzA=", "bench");
        let now = chrono::Utc::now();
        let signed = sign(&endpoint, &credentials, "PUT", &path, b"", now).expect("signed");
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
            method: "PUT",
            path: &path,
            query: "",
            headers: &headers,
            body: b"",
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
