//! A small client of the gateway's management API (`@connections`, `@users`, `@topics`),
//! signing every request with SigV4 (service `execute-api`) the way boto3's
//! `apigatewaymanagementapi` client does.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use axum::body::Bytes;
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use portcullis_auth::sigv4::{self, SignableRequest};
use serde_json::Value;

/// Characters of a connection id left as they are in a path; everything else is
/// percent-encoded (`=` becomes `%3D`), as botocore does.
const ID_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Characters of a topic name as they go into a path: topic names are `[A-Za-z0-9._:-]`, sent
/// as they are (the gateway's paths need no escaping for them).
const TOPIC_ENCODE: &AsciiSet = &ID_ENCODE.remove(b':');

/// How many POSTs a broadcast keeps in flight at once.
const BROADCAST_CONCURRENCY: usize = 16;

/// SigV4 credentials and the region the gateway expects signatures for.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("region", &self.region)
            .finish()
    }
}

/// The result of pushing to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// 410: the connection is gone (closed, unknown or still connecting).
    Gone,
}

/// What a broadcast did, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    pub delivered: usize,
    pub gone: usize,
    pub failed: usize,
}

/// A client of one management endpoint (`http://host:port[/stage]`).
#[derive(Debug, Clone)]
pub struct Management {
    http: reqwest::Client,
    scheme: String,
    /// `host[:port]`, sent and signed as the `host` header.
    authority: String,
    /// Path prefix without trailing slash (`/prod`, or empty).
    base_path: String,
    credentials: Credentials,
}

impl Management {
    /// `base_url` is what boto3 would get as `endpoint_url`, e.g. `http://127.0.0.1:9090/prod`.
    pub fn new(base_url: &str, credentials: Credentials) -> anyhow::Result<Self> {
        let uri: http::Uri = base_url
            .parse()
            .with_context(|| format!("bad management URL {base_url:?}"))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| anyhow!("management URL {base_url:?} has no scheme"))?;
        if scheme != "http" && scheme != "https" {
            bail!("management URL {base_url:?} must be http:// or https://");
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("management URL {base_url:?} has no host"))?
            .to_string();
        if uri.query().is_some() {
            bail!("management URL {base_url:?} must not have a query string");
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Management {
            http,
            scheme: scheme.to_owned(),
            authority,
            base_path,
            credentials,
        })
    }

    /// The raw path of one connection's resource: `<base>/@connections/<encoded id>`.
    pub fn connection_path(&self, connection_id: &str) -> String {
        format!(
            "{}/@connections/{}",
            self.base_path,
            utf8_percent_encode(connection_id, ID_ENCODE)
        )
    }

    /// The raw path of a topic subscription: `<base>/@connections/<id>/topics/<topic>`.
    pub fn subscription_path(&self, connection_id: &str, topic: &str) -> String {
        format!(
            "{}/topics/{}",
            self.connection_path(connection_id),
            utf8_percent_encode(topic, TOPIC_ENCODE)
        )
    }

    /// The raw path of a topic: `<base>/@topics/<topic>`.
    pub fn topic_path(&self, topic: &str) -> String {
        format!(
            "{}/@topics/{}",
            self.base_path,
            utf8_percent_encode(topic, TOPIC_ENCODE)
        )
    }

    /// The raw path of a user (a principal): `<base>/@users/<encoded principal id>`.
    pub fn user_path(&self, principal_id: &str) -> String {
        format!(
            "{}/@users/{}",
            self.base_path,
            utf8_percent_encode(principal_id, ID_ENCODE)
        )
    }

    /// Sends one signed request and returns the status and body.
    async fn call(&self, method: &str, path: &str, body: Bytes) -> anyhow::Result<(u16, Bytes)> {
        let signed = sigv4::sign(
            &SignableRequest {
                method,
                path,
                query: "",
                headers: &[("host", self.authority.as_str())],
                body: &body,
            },
            &self.credentials.access_key_id,
            &self.credentials.secret_access_key,
            &self.credentials.region,
            "execute-api",
            chrono::Utc::now(),
        );
        let url = format!("{}://{}{}", self.scheme, self.authority, path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).context("bad method")?;
        let mut request = self
            .http
            .request(method, &url)
            .header("host", &self.authority);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {url}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {url}"))?;
        Ok((status, body))
    }

    /// `GET <base>/@connections`: the ids of every open connection (a Portcullis extension).
    pub async fn list(&self) -> anyhow::Result<Vec<String>> {
        let path = format!("{}/@connections", self.base_path);
        let (status, body) = self.call("GET", &path, Bytes::new()).await?;
        if status != 200 {
            bail!(
                "listing connections: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        parse_connection_list(&body)
    }

    /// `POST <base>/@connections/<id>` with `data` as the message.
    pub async fn post(&self, connection_id: &str, data: Bytes) -> anyhow::Result<Delivery> {
        let path = self.connection_path(connection_id);
        let (status, body) = self.call("POST", &path, data).await?;
        match status {
            200..=299 => Ok(Delivery::Delivered),
            410 => Ok(Delivery::Gone),
            _ => bail!(
                "posting to {connection_id}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }

    /// `PUT` (subscribe) or `DELETE` (unsubscribe) `<base>/@connections/<id>/topics/<topic>`;
    /// [`Delivery::Gone`] when the gateway does not know the connection (yet, or any more).
    pub async fn set_subscription(
        &self,
        connection_id: &str,
        topic: &str,
        subscribed: bool,
    ) -> anyhow::Result<Delivery> {
        let path = self.subscription_path(connection_id, topic);
        let method = if subscribed { "PUT" } else { "DELETE" };
        let (status, body) = self.call(method, &path, Bytes::new()).await?;
        match status {
            200..=299 => Ok(Delivery::Delivered),
            410 => Ok(Delivery::Gone),
            _ => bail!(
                "{method} {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }

    /// `POST <base>/@topics/<topic>`: how many subscribers were handed `data`.
    pub async fn publish(&self, topic: &str, data: Bytes) -> anyhow::Result<u64> {
        let path = self.topic_path(topic);
        self.push(&path, data).await
    }

    /// `POST <base>/@users/<principal>`: how many of the user's connections were handed `data`
    /// (0 when none is open; that is not an error).
    pub async fn push_to_user(&self, principal_id: &str, data: Bytes) -> anyhow::Result<u64> {
        let path = self.user_path(principal_id);
        self.push(&path, data).await
    }

    async fn push(&self, path: &str, data: Bytes) -> anyhow::Result<u64> {
        let (status, body) = self.call("POST", path, data).await?;
        if status != 200 {
            bail!(
                "POST {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        parse_push_count(&body)
    }

    /// Pushes `data` to every open connection; a connection that went away meanwhile is
    /// counted as gone, not as a failure.
    pub async fn broadcast(&self, data: Bytes) -> anyhow::Result<BroadcastReport> {
        let ids = self.list().await?;
        let mut report = BroadcastReport::default();
        let mut posts = futures_util::stream::iter(ids)
            .map(|id| {
                let data = data.clone();
                async move { (self.post(&id, data).await, id) }
            })
            .buffer_unordered(BROADCAST_CONCURRENCY);
        while let Some((result, id)) = posts.next().await {
            match result {
                Ok(Delivery::Delivered) => report.delivered += 1,
                Ok(Delivery::Gone) => {
                    tracing::debug!(connection_id = %id, "connection gone during broadcast");
                    report.gone += 1;
                }
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %format!("{e:#}"), "push failed");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}

/// Parses the answer of a push to a user or a topic: `{"connections": N}`.
pub fn parse_push_count(body: &[u8]) -> anyhow::Result<u64> {
    let v: Value = serde_json::from_slice(body).context("push answer is not JSON")?;
    v.get("connections")
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("push answer has no \"connections\" count"))
}

/// Parses `{"connections":[{"connectionId":"..."}, ...]}`.
pub fn parse_connection_list(body: &[u8]) -> anyhow::Result<Vec<String>> {
    let v: Value = serde_json::from_slice(body).context("connection list is not JSON")?;
    let list = v
        .get("connections")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("connection list has no \"connections\" array"))?;
    Ok(list
        .iter()
        .filter_map(|c| {
            c.get("connectionId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDLOCAL".into(),
            secret_access_key: "local-dev-secret".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn paths_keep_the_stage_and_encode_the_id() {
        let m = Management::new("http://127.0.0.1:9090/prod/", creds()).expect("valid");
        assert_eq!(m.authority, "127.0.0.1:9090");
        assert_eq!(
            m.connection_path("Yq3j/QfP+1oA=="),
            "/prod/@connections/Yq3j%2FQfP%2B1oA%3D%3D"
        );
        assert_eq!(
            m.connection_path("a-b_c.d~e"),
            "/prod/@connections/a-b_c.d~e"
        );
        let bare = Management::new("http://localhost:9090", creds()).expect("valid");
        assert_eq!(bare.connection_path("x"), "/@connections/x");
    }

    #[test]
    fn users_and_topics_have_their_paths() {
        let m = Management::new("http://127.0.0.1:9090/prod", creds()).expect("valid");
        assert_eq!(m.user_path("bob"), "/prod/@users/bob");
        assert_eq!(m.user_path("bo b/é"), "/prod/@users/bo%20b%2F%C3%A9");
        assert_eq!(m.topic_path("room:lobby"), "/prod/@topics/room:lobby");
        assert_eq!(
            m.subscription_path("a=", "room:x.y_z-1"),
            "/prod/@connections/a%3D/topics/room:x.y_z-1"
        );
    }

    #[test]
    fn push_answers_parse() {
        assert_eq!(
            parse_push_count(br#"{"connections":2}"#).expect("parses"),
            2
        );
        assert_eq!(
            parse_push_count(br#"{"connections":0}"#).expect("parses"),
            0
        );
        assert!(parse_push_count(br#"{"connections":[]}"#).is_err());
        assert!(parse_push_count(b"{}").is_err());
        assert!(parse_push_count(b"nope").is_err());
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in ["", "127.0.0.1:9090", "ftp://h/x", "http://h/x?y=1", "/prod"] {
            assert!(Management::new(url, creds()).is_err(), "{url}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let m = Management::new("http://127.0.0.1:9090/prod", creds()).expect("valid");
        assert!(!format!("{m:?}").contains("local-dev-secret"));
    }

    #[test]
    fn connection_lists_parse() {
        let ids = parse_connection_list(
            br#"{"connections":[{"connectionId":"a="},{"connectionId":"b"}]}"#,
        )
        .expect("parses");
        assert_eq!(ids, ["a=", "b"]);
        assert!(
            parse_connection_list(br#"{"connections":[]}"#)
                .expect("parses")
                .is_empty()
        );
        assert!(parse_connection_list(b"{}").is_err());
        assert!(parse_connection_list(b"nope").is_err());
    }
}
