//! Integrations: calling backends over HTTP.
//!
//! One pooled keep-alive client is shared by every integration; each call has the
//! integration's timeout and reads at most `max_response_bytes` of the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_config::Integration as IntegrationConfig;
use portcullis_core::event::{ProxyResult, parse_proxy_result};
use prometheus_client::metrics::histogram::Histogram;

use crate::error::GatewayError;
use crate::metrics::{IntegrationLabels, Metrics};

/// A configured backend, ready to call.
pub struct Integration {
    url: reqwest::Url,
    timeout: Duration,
    max_response_bytes: usize,
    client: reqwest::Client,
    latency: Histogram,
}

impl Integration {
    pub fn new(config: &IntegrationConfig, client: reqwest::Client, metrics: &Metrics) -> Self {
        let latency = metrics
            .integration_duration
            .get_or_create(&IntegrationLabels {
                integration: config.name.clone(),
            })
            .clone();
        Integration {
            url: config.url.url().clone(),
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
            client,
            latency,
        }
    }

    /// POST an event and read the Lambda-proxy-shaped result (WebSocket routes).
    pub async fn invoke(&self, event: Vec<u8>) -> Result<ProxyResult, GatewayError> {
        let body = self.invoke_raw(event).await?;
        parse_proxy_result(&body).map_err(|e| GatewayError::IntegrationInvalid(e.to_string()))
    }

    /// POST an event and return the raw result body of a 2xx answer.
    pub async fn invoke_raw(&self, event: Vec<u8>) -> Result<Vec<u8>, GatewayError> {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.call(event)).await;
        self.latency.observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok(result) => result,
            Err(_) => Err(GatewayError::IntegrationTimeout(self.timeout)),
        }
    }

    /// The backend's base URL (`http_proxy` integrations append the request path).
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn observe(&self, elapsed: Duration) {
        self.latency.observe(elapsed.as_secs_f64());
    }

    async fn call(&self, event: Vec<u8>) -> Result<Vec<u8>, GatewayError> {
        let mut response = self
            .client
            .post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(event)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if let Some(len) = response.content_length()
            && len as usize > self.max_response_bytes
        {
            return Err(GatewayError::IntegrationTooLarge(self.max_response_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(GatewayError::IntegrationTooLarge(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(GatewayError::IntegrationStatus(status.as_u16()));
        }
        Ok(body)
    }
}

/// What [`GatewayError::IntegrationUnreachable`] says when no connection could be made (the
/// request was not sent).
pub const CONNECT_FAILED: &str = "connection failed";

/// reqwest errors print the URL; backend URLs may carry credentials, so keep only the kind.
fn unreachable(e: reqwest::Error) -> GatewayError {
    let e = e.without_url();
    let what = if e.is_connect() {
        CONNECT_FAILED.to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    GatewayError::IntegrationUnreachable(what)
}

/// The shared HTTP client for every integration.
pub fn http_client() -> Result<reqwest::Client, GatewayError> {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .no_proxy()
        // A backend or JWKS endpoint must not bounce the gateway elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| GatewayError::Internal(format!("http client: {e}")))
}

pub type Integrations = std::collections::HashMap<String, Arc<Integration>>;
