//! The HTTP side: one signed request per call, over a pooled keep-alive client.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;

use crate::answer::{self, ConnectionSummary};
use crate::{ClientError, Credentials, Endpoint, signing};

/// How long a call may take from connecting to the last byte of the answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one management endpoint (`http://host:port/stage`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Management {
    http: reqwest::Client,
    endpoint: Endpoint,
    credentials: Credentials,
}

/// A raw answer: status, `x-amzn-ErrorType` and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub error_type: Option<String>,
    pub body: Bytes,
}

impl Management {
    /// `base_url` is what boto3 would get as `endpoint_url`, e.g. `http://127.0.0.1:9090/prod`.
    /// An `https://` endpoint is verified with the system roots.
    pub fn new(base_url: &str, credentials: Credentials) -> Result<Management, ClientError> {
        Management::with_roots(base_url, credentials, Vec::new())
    }

    /// [`new`](Self::new), an `https://` endpoint also trusted when its certificate chains to
    /// one of `roots` (e.g. the CA of an `admin_tls` certificate, see
    /// `portcullis_auth::outbound_tls::read_roots`).
    pub fn with_roots(
        base_url: &str,
        credentials: Credentials,
        roots: Vec<reqwest::Certificate>,
    ) -> Result<Management, ClientError> {
        let endpoint = Endpoint::parse(base_url)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_merge(roots)
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Setup(innermost(&e)))?;
        Ok(Management {
            http,
            endpoint,
            credentials,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends one signed request to `path` (from [`Endpoint`]) and returns the answer whatever
    /// its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Answer, ClientError> {
        let signed = signing::headers(
            &self.credentials,
            self.endpoint.authority(),
            method.as_str(),
            path,
            &body,
            chrono::Utc::now(),
        );
        let url = self.endpoint.url(path);
        let mut request = self
            .http
            .request(method, &url)
            .header("host", self.endpoint.authority());
        for (name, value) in signed {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let transport = |e: reqwest::Error| {
            let reason = innermost(&e);
            if e.is_connect() {
                ClientError::Unreachable {
                    url: url.clone(),
                    reason,
                }
            } else {
                ClientError::Transport {
                    url: url.clone(),
                    reason,
                }
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(transport)?;
        Ok(Answer {
            status,
            error_type,
            body,
        })
    }

    /// Sends, and turns any answer but 2xx into [`ClientError::Api`].
    async fn call(&self, method: Method, path: &str, body: Bytes) -> Result<Bytes, ClientError> {
        let answer = self.send(method, path, body).await?;
        if (200..300).contains(&answer.status) {
            Ok(answer.body)
        } else {
            Err(ClientError::Api(answer::refusal(
                answer.status,
                answer.error_type.as_deref(),
                &answer.body,
            )))
        }
    }

    /// `POST @connections/{id}`: `data` to one connection.
    pub async fn post_to_connection(&self, id: &str, data: Bytes) -> Result<(), ClientError> {
        self.call(Method::POST, &self.endpoint.connection(id), data)
            .await
            .map(drop)
    }

    /// `DELETE @connections/{id}`: close one connection (it gets `$disconnect`).
    pub async fn delete_connection(&self, id: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &self.endpoint.connection(id), Bytes::new())
            .await
            .map(drop)
    }

    /// `GET @connections`: every open connection of the stage (a Portcullis extension).
    pub async fn list_connections(&self) -> Result<Vec<ConnectionSummary>, ClientError> {
        let body = self
            .call(Method::GET, &self.endpoint.connections(), Bytes::new())
            .await?;
        answer::connection_list(&body)
    }

    /// `POST @users/{principal}`: `data` to every connection of the principal; how many got it.
    pub async fn push_to_user(&self, principal: &str, data: Bytes) -> Result<usize, ClientError> {
        let body = self
            .call(Method::POST, &self.endpoint.user(principal), data)
            .await?;
        answer::delivered(&body)
    }

    /// `GET @users/{principal}`: the principal's connections.
    pub async fn user_connections(
        &self,
        principal: &str,
    ) -> Result<Vec<ConnectionSummary>, ClientError> {
        let body = self
            .call(Method::GET, &self.endpoint.user(principal), Bytes::new())
            .await?;
        answer::connection_list(&body)
    }

    /// `DELETE @users/{principal}`: close every connection of the principal.
    pub async fn disconnect_user(&self, principal: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &self.endpoint.user(principal), Bytes::new())
            .await
            .map(drop)
    }

    /// `PUT @connections/{id}/topics/{topic}`.
    pub async fn subscribe(&self, id: &str, topic: &str) -> Result<(), ClientError> {
        let path = self.endpoint.subscription(id, topic);
        self.call(Method::PUT, &path, Bytes::new()).await.map(drop)
    }

    /// `DELETE @connections/{id}/topics/{topic}`.
    pub async fn unsubscribe(&self, id: &str, topic: &str) -> Result<(), ClientError> {
        let path = self.endpoint.subscription(id, topic);
        self.call(Method::DELETE, &path, Bytes::new())
            .await
            .map(drop)
    }

    /// `POST @topics/{topic}`: `data` to every subscriber; how many got it.
    pub async fn publish(&self, topic: &str, data: Bytes) -> Result<usize, ClientError> {
        let body = self
            .call(Method::POST, &self.endpoint.topic(topic), data)
            .await?;
        answer::delivered(&body)
    }

    /// `GET @topics/{topic}`: the topic's subscribers.
    pub async fn topic_subscribers(
        &self,
        topic: &str,
    ) -> Result<Vec<ConnectionSummary>, ClientError> {
        let body = self
            .call(Method::GET, &self.endpoint.topic(topic), Bytes::new())
            .await?;
        answer::connection_list(&body)
    }
}

/// The deepest cause of an error: "Connection refused (os error 111)" rather than reqwest's
/// "error sending request for url (…)".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests;
