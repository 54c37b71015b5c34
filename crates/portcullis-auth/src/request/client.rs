//! [`RequestAuthorizerClient`]: one configured request authorizer calling its webhook or its
//! handler (a `[functions.NAME]`), with the identity-source, CSRF and answer-cache steps
//! around the call.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use portcullis_config::{Csrf, RequestAuthorizer, Target};
use portcullis_functions::{FunctionError, Functions};

use super::{
    AnswerCache, Authorized, AuthorizerAnswer, HttpAuthorizerRequest, INVOKE, MAX_ANSWER_BYTES,
    PayloadFormat, WebSocketAuthorizerRequest, decide, http_event, http_v1_event, invalid,
    parse_answer, websocket_event,
};
use crate::cache::CacheKey;
use crate::csrf;
use crate::error::AuthError;
use crate::identity::{self, IdentitySource, RequestParts};

/// What a request authorizer calls for its answer.
#[derive(Clone)]
pub enum AuthorizerTarget {
    /// POST the event to a URL; the body is the answer.
    Webhook {
        url: reqwest::Url,
        http: reqwest::Client,
    },
    /// Invoke a handler; its return value is the answer, and a failure whose `errorMessage` is
    /// exactly `Unauthorized` means 401 (what API Gateway does with a Lambda authorizer).
    Function {
        name: String,
        functions: Arc<Functions>,
    },
}

impl fmt::Debug for AuthorizerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The URL may carry credentials: only its host is shown.
            AuthorizerTarget::Webhook { url, .. } => f
                .debug_struct("Webhook")
                .field("host", &url.host_str())
                .finish_non_exhaustive(),
            AuthorizerTarget::Function { name, .. } => f
                .debug_struct("Function")
                .field("name", name)
                .finish_non_exhaustive(),
        }
    }
}

/// One configured request authorizer and what it calls.
#[derive(Debug, Clone)]
pub struct RequestAuthorizerClient {
    name: String,
    target: AuthorizerTarget,
    identity_sources: Vec<IdentitySource>,
    cache_ttl: Duration,
    csrf: Option<Csrf>,
    timeout: Duration,
    payload_format: portcullis_config::PayloadFormat,
}

impl RequestAuthorizerClient {
    /// `functions` runs the handler of a `function` authorizer. Fails only on what config
    /// validation already rejects (a bad identity source) or a `function` authorizer built
    /// without `functions`.
    pub fn new(
        config: &RequestAuthorizer,
        http: reqwest::Client,
        functions: Option<&Arc<Functions>>,
    ) -> Result<Self, AuthError> {
        let target = match (&config.target, functions) {
            (Target::Url(url), _) => AuthorizerTarget::Webhook {
                url: url.url().clone(),
                http,
            },
            (Target::Function(name), Some(functions)) => AuthorizerTarget::Function {
                name: name.clone(),
                functions: functions.clone(),
            },
            (Target::Function(name), None) => {
                return Err(invalid(format!(
                    "authorizer {:?}: function {name:?} is not running",
                    config.name
                )));
            }
        };
        let identity_sources = config
            .identity_source
            .iter()
            .map(|s| IdentitySource::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("authorizer {:?}: {e}", config.name)))?;
        Ok(RequestAuthorizerClient {
            name: config.name.clone(),
            target,
            identity_sources,
            cache_ttl: config.cache_ttl,
            csrf: config.csrf.clone(),
            timeout: config.timeout,
            payload_format: config.payload_format,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configured HTTP payload format (`payload_format`).
    pub fn payload_format(&self) -> portcullis_config::PayloadFormat {
        self.payload_format
    }

    pub fn identity_sources(&self) -> &[IdentitySource] {
        &self.identity_sources
    }

    /// Zero: answers are not cached.
    pub fn cache_ttl(&self) -> Duration {
        self.cache_ttl
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// All identity-source values in configured order; [`AuthError::Unauthorized`] if any is
    /// missing or empty (AWS does not call the authorizer then).
    pub fn identity_values(&self, req: &RequestParts<'_>) -> Result<Vec<String>, AuthError> {
        identity::all_present(&self.identity_sources, req).ok_or(AuthError::Unauthorized)
    }

    /// The double-submit CSRF check, if configured ([`AuthError::Forbidden`] on failure).
    pub fn check_csrf(&self, req: &RequestParts<'_>) -> Result<(), AuthError> {
        match &self.csrf {
            Some(c) => csrf::check(c, req).map_err(AuthError::from),
            None => Ok(()),
        }
    }

    /// What this authorizer calls.
    pub fn target(&self) -> &AuthorizerTarget {
        &self.target
    }

    /// Calls the webhook or handler with the WebSocket `$connect` event.
    pub async fn call_websocket(
        &self,
        input: &WebSocketAuthorizerRequest<'_>,
    ) -> Result<AuthorizerAnswer, AuthError> {
        self.call(websocket_event(input)).await
    }

    /// Calls the webhook or handler with an HTTP API event of `format`.
    pub async fn call_http(
        &self,
        input: &HttpAuthorizerRequest<'_>,
        identity: &[String],
        format: PayloadFormat,
    ) -> Result<AuthorizerAnswer, AuthError> {
        let body = match format {
            PayloadFormat::V1 => http_v1_event(input, identity),
            PayloadFormat::V2 => http_event(input, identity),
        };
        self.call(body).await
    }

    /// The whole `$connect` check: identity sources (401 if missing) → CSRF (403) → cached
    /// answer or webhook call → policy evaluated for `method_arn`.
    pub async fn authorize_websocket(
        &self,
        input: &WebSocketAuthorizerRequest<'_>,
        cache: &AnswerCache,
    ) -> Result<Authorized, AuthError> {
        let values = self.identity_values(&input.request)?;
        self.check_csrf(&input.request)?;
        self.answer(&values, cache, input.method_arn, || {
            self.call_websocket(input)
        })
        .await
    }

    /// The whole HTTP route check, like [`authorize_websocket`](Self::authorize_websocket),
    /// evaluated for `route_arn`.
    pub async fn authorize_http(
        &self,
        input: &HttpAuthorizerRequest<'_>,
        format: PayloadFormat,
        cache: &AnswerCache,
    ) -> Result<Authorized, AuthError> {
        let values = self.identity_values(&input.request)?;
        self.check_csrf(&input.request)?;
        self.answer(&values, cache, input.route_arn, || {
            self.call_http(input, &values, format)
        })
        .await
    }

    async fn answer<F, Fut>(
        &self,
        values: &[String],
        cache: &AnswerCache,
        arn: &str,
        call: F,
    ) -> Result<Authorized, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AuthorizerAnswer, AuthError>>,
    {
        // Without identity sources every caller would share one key: never cache then.
        let key = (!self.cache_ttl.is_zero() && !values.is_empty())
            .then(|| CacheKey::new(&self.name, values));
        if let Some(answer) = key.as_ref().and_then(|k| cache.get(k)) {
            return Ok(Authorized {
                granted: decide(&answer, INVOKE, arn)?,
                from_cache: true,
                integration_latency_ms: 0,
                answer,
            });
        }
        let started = Instant::now();
        let answer = Arc::new(call().await?);
        let integration_latency_ms =
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(k) = key {
            cache.insert(k, answer.clone(), self.cache_ttl);
        }
        Ok(Authorized {
            granted: decide(&answer, INVOKE, arn)?,
            from_cache: false,
            integration_latency_ms,
            answer,
        })
    }

    /// One call within the authorizer's `timeout`.
    async fn call(&self, event: Vec<u8>) -> Result<AuthorizerAnswer, AuthError> {
        let name = &self.name;
        let exchange = async {
            match &self.target {
                AuthorizerTarget::Webhook { url, http } => self.post(url, http, event).await,
                AuthorizerTarget::Function {
                    name: function,
                    functions,
                } => self.invoke(function, functions, event).await,
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                invalid(format!(
                    "authorizer {name:?}: no answer within {:?}",
                    self.timeout
                ))
            })?
    }

    /// The handler's result is read like a webhook's 200 body.
    async fn invoke(
        &self,
        function: &str,
        functions: &Functions,
        event: Vec<u8>,
    ) -> Result<AuthorizerAnswer, AuthError> {
        match functions.invoke(function, Bytes::from(event)).await {
            Ok(invocation) => parse_answer(200, &invocation.payload),
            Err(e) => Err(function_failure(&self.name, function, &e)),
        }
    }

    async fn post(
        &self,
        url: &reqwest::Url,
        http: &reqwest::Client,
        body: Vec<u8>,
    ) -> Result<AuthorizerAnswer, AuthError> {
        let name = &self.name;
        let exchange = async {
            let mut resp = http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .timeout(self.timeout)
                .body(body)
                .send()
                .await
                .map_err(|e| invalid(format!("authorizer {name:?}: {}", e.without_url())))?;
            let status = resp.status().as_u16();
            if status == 401 {
                return Err(AuthError::Unauthorized);
            }
            let too_big = || {
                invalid(format!(
                    "authorizer {name:?}: answer larger than {MAX_ANSWER_BYTES} bytes"
                ))
            };
            if resp
                .content_length()
                .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
            {
                return Err(too_big());
            }
            let mut buf = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| invalid(format!("authorizer {name:?}: {}", e.without_url())))?
            {
                if buf.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(too_big());
                }
                buf.extend_from_slice(&chunk);
            }
            parse_answer(status, &buf)
        };
        exchange.await
    }
}

/// A failed handler: `Unauthorized` when it failed with exactly that message (as Lambda
/// authorizers signal 401), else an authorizer error whose text is logged, never sent.
fn function_failure(authorizer: &str, function: &str, error: &FunctionError) -> AuthError {
    if let FunctionError::Handled { error_message, .. } = error
        && error_message == "Unauthorized"
    {
        return AuthError::Unauthorized;
    }
    invalid(format!(
        "authorizer {authorizer:?}: function {function:?} failed: {}: {}",
        error.error_type(),
        error.error_message()
    ))
}
