//! Integrations: calling backends over HTTP, or invoking functions run by Portcullis.
//!
//! Calls to URLs go through the origin's pool of kept-alive connections ([`crate::upstream`]);
//! each call has the integration's timeout and reads at most `max_response_bytes` of the
//! answer. A `lambda`
//! integration invokes its `[functions.NAME]` with the same event and reads the handler's
//! result as an `http` integration reads a body, within the same timeout and size limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use portcullis_config::{Integration as IntegrationConfig, Target};
use portcullis_core::event::{ProxyResult, parse_proxy_result};
use portcullis_functions::Functions;
use prometheus_client::metrics::histogram::Histogram;

use crate::error::GatewayError;
use crate::metrics::{IntegrationLabels, Metrics};
pub use crate::upstream::CONNECT_FAILED;
use crate::upstream::{RequestBody, Upstream, UpstreamError, Upstreams};

/// Where an integration's calls go.
enum Backend {
    Url {
        url: url::Url,
        upstream: Upstream,
        /// The URL's path and query: what an event is POSTed to.
        target: http::Uri,
    },
    Function {
        name: Arc<str>,
        functions: Arc<Functions>,
    },
}

/// A configured backend, ready to call.
pub struct Integration {
    backend: Backend,
    timeout: Duration,
    max_response_bytes: usize,
    latency: Histogram,
}

impl Integration {
    /// `functions` runs a `lambda` integration's function (`None` when the file declares no
    /// functions, which configuration validation makes impossible for a `lambda` one).
    pub fn new(
        config: &IntegrationConfig,
        upstreams: &Upstreams,
        functions: Option<&Arc<Functions>>,
        metrics: &Metrics,
    ) -> Result<Self, GatewayError> {
        let latency = metrics
            .integration_duration
            .get_or_create(&IntegrationLabels {
                integration: config.name.clone(),
            })
            .clone();
        let backend = match (&config.target, functions) {
            (Target::Url(url), _) => {
                let url = url.url().clone();
                let target = origin_form(&url).map_err(|e| {
                    GatewayError::Internal(format!("integrations.{}: {e}", config.name))
                })?;
                Backend::Url {
                    upstream: upstreams.origin(&url)?,
                    url,
                    target,
                }
            }
            (Target::Function(name), Some(functions)) => Backend::Function {
                name: Arc::from(name.as_str()),
                functions: functions.clone(),
            },
            (Target::Function(name), None) => {
                return Err(GatewayError::Internal(format!(
                    "integrations.{}: function {name:?} is not running",
                    config.name
                )));
            }
        };
        Ok(Integration {
            backend,
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
            latency,
        })
    }

    /// Send an event and read the Lambda-proxy-shaped result (WebSocket routes).
    pub async fn invoke(&self, event: Vec<u8>) -> Result<ProxyResult, GatewayError> {
        let body = self.invoke_raw(event).await?;
        parse_proxy_result(&body).map_err(|e| GatewayError::IntegrationInvalid(e.to_string()))
    }

    /// Send an event and return the raw result: the body of a 2xx answer, or the handler's
    /// result JSON.
    pub async fn invoke_raw(&self, event: Vec<u8>) -> Result<Bytes, GatewayError> {
        let started = Instant::now();
        let outcome = match &self.backend {
            Backend::Url {
                upstream, target, ..
            } => tokio::time::timeout(self.timeout, self.post(upstream, target, event)).await,
            Backend::Function { name, functions } => {
                tokio::time::timeout(self.timeout, Box::pin(self.run(name, functions, event))).await
            }
        };
        self.latency.observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok(result) => result,
            Err(_) => Err(GatewayError::IntegrationTimeout(self.timeout)),
        }
    }

    /// The backend's base URL (`http_proxy` integrations append the request path) and its
    /// origin's connections; `None` for a `lambda` integration.
    pub fn url(&self) -> Option<(&url::Url, &Upstream)> {
        match &self.backend {
            Backend::Url { url, upstream, .. } => Some((url, upstream)),
            Backend::Function { .. } => None,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn observe(&self, elapsed: Duration) {
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// Invokes the function in a task of its own: when the gateway stops waiting (the
    /// integration timeout, a client gone), the invocation still finishes, as a Lambda
    /// invocation does after API Gateway gave up, and its warm environment goes back to the
    /// pool instead of being killed. The function's own `timeout` bounds the task.
    async fn run(
        &self,
        name: &Arc<str>,
        functions: &Arc<Functions>,
        event: Vec<u8>,
    ) -> Result<Bytes, GatewayError> {
        let (name, functions) = (name.clone(), functions.clone());
        let task = tokio::spawn(async move {
            let result = functions.invoke(&name, Bytes::from(event)).await;
            (name, result)
        });
        let (name, result) = task
            .await
            .map_err(|e| GatewayError::Internal(format!("function task: {e}")))?;
        let invocation = result.map_err(|error| GatewayError::Function {
            function: name.to_string(),
            error,
        })?;
        if invocation.payload.len() > self.max_response_bytes {
            return Err(GatewayError::IntegrationTooLarge(self.max_response_bytes));
        }
        Ok(invocation.payload)
    }

    async fn post(
        &self,
        upstream: &Upstream,
        target: &http::Uri,
        event: Vec<u8>,
    ) -> Result<Bytes, GatewayError> {
        let mut request = http::Request::new(RequestBody::bytes(event));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = target.clone();
        request.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let response = upstream
            .send(request)
            .await
            .map_err(UpstreamError::into_gateway)?;
        let status = response.status();
        if let Some(len) = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > self.max_response_bytes as u64
        {
            return Err(GatewayError::IntegrationTooLarge(self.max_response_bytes));
        }
        let body = response
            .into_body()
            .read_to_end(self.max_response_bytes)
            .await
            .map_err(|e| UpstreamError::http(&e).into_gateway())?
            .ok_or(GatewayError::IntegrationTooLarge(self.max_response_bytes))?;
        if !status.is_success() {
            return Err(GatewayError::IntegrationStatus(status.as_u16()));
        }
        Ok(body)
    }
}

/// The path and query of `url`: the request target sent to its origin.
fn origin_form(url: &url::Url) -> Result<http::Uri, http::Error> {
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    http::Uri::builder().path_and_query(target).build()
}

/// The client of outbound calls other than integrations (HTTP authorizers, JWKS): `ca_file`
/// (`[server] ca_file`) adds trusted roots; kept-alive connections unused for `idle_timeout`
/// are closed, and at most `max_idle_per_host` unused ones are kept per host.
pub fn http_client(
    ca_file: Option<&str>,
    idle_timeout: Duration,
    max_idle_per_host: usize,
) -> Result<reqwest::Client, GatewayError> {
    let builder =
        portcullis_auth::outbound_tls::client_builder(ca_file).map_err(GatewayError::Tls)?;
    builder
        .pool_idle_timeout(idle_timeout)
        .pool_max_idle_per_host(max_idle_per_host)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| GatewayError::Internal(format!("http client: {e}")))
}

pub type Integrations = std::collections::HashMap<String, Arc<Integration>>;
