//! Authorizers as the gateway runs them: building them from the configuration, the decision
//! on `$connect`, and the per-message checks that go beyond API Gateway (route scopes and
//! groups, and — with `message_policy = true` — the connection's policy for every route),
//! and the one answer every edge gives when an authorizer refuses ([`refusal`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use http::{Response, StatusCode};
use portcullis_auth::cache::{AuthCache, CacheKey};
use portcullis_auth::error::AuthError;
use portcullis_auth::identity::{self, IdentitySource, RequestParts};
use portcullis_auth::jwt::{JwtError, JwtOptions, JwtVerifier, VerifiedToken};
use portcullis_auth::request::{
    AnswerCache, Authorized, AuthorizerAnswer, HttpAuthorizerRequest, INVOKE, PayloadFormat,
    RequestAuthorizerClient, WebSocketAuthorizerRequest, decide,
};
use portcullis_config::{Authorizer as AuthorizerConfig, Config};
use portcullis_core::caller::CallerIdentity;
use portcullis_core::fault::{Fault, HasFault};
use portcullis_functions::Functions;
use portcullis_idp::IdentityProvider;
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::warn;

use crate::error::GatewayError;
use crate::metrics::{AuthorizerLabels, Metrics};
use crate::reply;
use crate::session_key::LiveSession;

/// The answer to a request (an HTTP API request or a WebSocket upgrade) that `authorizer`
/// refused: 401 `Unauthorized`, 403 `Forbidden`, or 500 when the authorizer itself failed (a
/// configuration or webhook problem the caller is not told about; logged and counted).
pub fn refusal(
    error: &AuthError,
    api: &str,
    authorizer: &str,
    metrics: &Metrics,
) -> Response<Body> {
    match error {
        AuthError::Unauthorized => reply::message(StatusCode::UNAUTHORIZED, "Unauthorized"),
        AuthError::Forbidden => reply::message(StatusCode::FORBIDDEN, "Forbidden"),
        AuthError::Misconfigured(detail) => {
            warn!(api = %api, authorizer = %authorizer, error = %detail, "authorizer failed");
            metrics.error("authorizer");
            reply::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// One configured authorizer, ready to use.
pub enum Authorizer {
    Jwt {
        name: String,
        jwt: JwtAuth,
    },
    Request {
        name: String,
        client: RequestAuthorizerClient,
        cache: AnswerCache,
    },
}

/// What an authorizer established about a caller; kept for the life of a connection.
#[derive(Debug, Clone)]
pub struct Identity {
    pub principal_id: Option<String>,
    /// `requestContext.authorizer` of every event, kept as compact JSON (one allocation per
    /// connection instead of a tree of claims).
    pub context: Box<RawValue>,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
    /// A request authorizer's answer, re-evaluated per message with `message_policy`.
    pub answer: Option<Arc<AuthorizerAnswer>>,
    /// The built-in pool session behind the token, if it came from one.
    pub session: Option<LiveSession>,
    /// An `AWS_IAM` caller: its identity and its role's policy, evaluated for every route.
    pub iam: Option<Arc<IamAccess>>,
}

impl Identity {
    /// A route's `scopes` (at least one present, as API Gateway) and `groups` (at least one).
    pub fn allows(&self, scopes: &[String], groups: &[String]) -> bool {
        (scopes.is_empty() || scopes.iter().any(|s| self.scopes.contains(s)))
            && (groups.is_empty() || groups.iter().any(|g| self.groups.contains(g)))
    }

    /// The connection's policy evaluated for `arn` (true when there is no policy to evaluate):
    /// a request authorizer's answer, or an `AWS_IAM` caller's role policy.
    pub fn policy_allows(&self, arn: &str) -> bool {
        let by_answer = match &self.answer {
            Some(answer) => decide(answer, INVOKE, arn).is_ok(),
            None => true,
        };
        by_answer && self.iam.as_ref().is_none_or(|iam| iam.allows(arn))
    }

    /// `requestContext.authorizer` of events: absent for an `AWS_IAM` caller of a WebSocket
    /// API (its fields are in `requestContext.identity`, as on API Gateway).
    pub fn event_authorizer(&self) -> Option<&RawValue> {
        (self.context.get() != "null").then_some(&*self.context)
    }

    /// The `AWS_IAM` caller, whose fields join `requestContext.identity`.
    pub fn caller(&self) -> Option<&CallerIdentity> {
        self.iam.as_ref().map(|iam| &iam.caller)
    }
}

/// What an `AWS_IAM` connection or request is allowed: its caller and its role's policy.
#[derive(Debug)]
pub struct IamAccess {
    pub caller: CallerIdentity,
    pub role: String,
    pub policy: Arc<portcullis_core::policy::PolicyDocument>,
}

impl IamAccess {
    /// The role's policy allows `execute-api:Invoke` on `arn`.
    pub fn allows(&self, arn: &str) -> bool {
        portcullis_core::policy::evaluate(&self.policy, INVOKE, arn)
            == portcullis_core::policy::Decision::Allow
    }
}

/// Every configured authorizer by name.
#[derive(Default)]
pub struct Authorizers {
    map: HashMap<String, Arc<Authorizer>>,
}

impl Authorizers {
    pub fn new(
        config: &Config,
        http: &reqwest::Client,
        idp: Option<&Arc<IdentityProvider>>,
        functions: Option<&Arc<Functions>>,
    ) -> Result<Self, GatewayError> {
        let mut map = HashMap::new();
        for (name, authorizer) in &config.authorizers {
            let built = match authorizer {
                AuthorizerConfig::Jwt(jwt) => {
                    let sources = jwt
                        .identity_source
                        .iter()
                        .map(|s| IdentitySource::parse(s))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| GatewayError::Internal(format!("authorizers.{name}: {e}")))?;
                    let verifier = JwtVerifier::new(jwt, http.clone(), JwtOptions::default())
                        .map_err(|e| GatewayError::Internal(format!("authorizers.{name}: {e}")))?;
                    // Issuers that are built-in pools verify in-process: no HTTP fetch of our own JWKS.
                    let mut local = Vec::new();
                    if let Some(idp) = idp {
                        for pool in idp.pool_names() {
                            let issuer = idp.issuer(&pool);
                            if jwt.issuers.iter().any(|i| i.issuer == issuer) {
                                verifier.set_local_keys(&issuer, idp.key_source(&pool));
                                local.push(issuer);
                            }
                        }
                    }
                    let idp = idp
                        .filter(|_| !local.is_empty())
                        .map(|i| (i.clone(), local));
                    Authorizer::Jwt {
                        name: name.clone(),
                        jwt: JwtAuth {
                            name: name.clone(),
                            verifier,
                            sources,
                            idp,
                            verified: AuthCache::new(VERIFIED_CACHE_ENTRIES),
                            cache_ttl: jwt.cache_ttl,
                            csrf: jwt.csrf.clone(),
                        },
                    }
                }
                AuthorizerConfig::Request(request) => {
                    let client = RequestAuthorizerClient::new(request, http.clone(), functions)
                        .map_err(|e| GatewayError::Internal(format!("authorizers.{name}: {e}")))?;
                    Authorizer::Request {
                        name: name.clone(),
                        client,
                        cache: AnswerCache::new(portcullis_auth::cache::DEFAULT_MAX_ENTRIES),
                    }
                }
            };
            map.insert(name.clone(), Arc::new(built));
        }
        Ok(Authorizers { map })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Authorizer>> {
        self.map.get(name).cloned()
    }
}

/// Scopes and groups a request authorizer may pass in its context (`scope`/`scopes` as a
/// space-separated string or a list, `groups`/`cognito:groups` as a comma-separated string or
/// a list), so route `scopes`/`groups` work with webhook authorizers too.
fn context_list(
    context: &serde_json::Map<String, Value>,
    keys: &[&str],
    separator: char,
) -> Vec<String> {
    for key in keys {
        match context.get(*key) {
            Some(Value::String(s)) => {
                return s
                    .split(separator)
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            Some(Value::Array(items)) => {
                return items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
            }
            _ => {}
        }
    }
    Vec::new()
}

/// Compact JSON of an authorizer context. Serialising a `Value` cannot fail; `null` is the
/// fallback that keeps the type total.
fn compact(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value)
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).unwrap_or_default())
}

fn jwt_failure(error: &JwtError) -> AuthError {
    match error.fault() {
        Fault::Client => AuthError::Unauthorized,
        _ => AuthError::Misconfigured(error.to_string()),
    }
}

/// The identity a request authorizer's answer establishes.
fn webhook_identity(authorized: &Authorized, context: Value) -> Identity {
    let granted = &authorized.granted.context;
    Identity {
        principal_id: authorized.granted.principal_id.clone(),
        scopes: context_list(granted, &["scope", "scopes"], ' '),
        groups: context_list(granted, &["cognito:groups", "groups"], ','),
        context: compact(&context),
        answer: Some(authorized.answer.clone()),
        session: None,
        iam: None,
    }
}

impl Authorizer {
    fn count_cache(&self, metrics: &Metrics, from_cache: bool) {
        let family = if from_cache {
            &metrics.authorizer_cache_hits
        } else {
            &metrics.authorizer_cache_misses
        };
        family
            .get_or_create(&AuthorizerLabels {
                authorizer: self.name().to_owned(),
            })
            .inc();
    }

    fn count_decision(&self, metrics: &Metrics, error: Option<&AuthError>) {
        let outcome = match error {
            None => "allow",
            Some(AuthError::Unauthorized) => "unauthorized",
            Some(AuthError::Forbidden) => "forbidden",
            Some(AuthError::Misconfigured(_)) => "error",
        };
        metrics
            .authorizer_decisions
            .get_or_create(&crate::metrics::DecisionLabels {
                authorizer: self.name().to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn name(&self) -> &str {
        match self {
            Authorizer::Jwt { name, .. } | Authorizer::Request { name, .. } => name,
        }
    }

    /// Decide a WebSocket `$connect`. `input` carries the upgrade request and the event
    /// context; its `method_arn` is the `$connect` ARN.
    pub async fn authorize_connect(
        &self,
        input: &WebSocketAuthorizerRequest<'_>,
        metrics: &Metrics,
    ) -> Result<Identity, AuthError> {
        let outcome = match self {
            Authorizer::Jwt { jwt, .. } => jwt
                .check(&input.request, Transport::WebSocket)
                .await
                .map_err(|denial| denial.error()),
            Authorizer::Request { client, cache, .. } => {
                let result = client.authorize_websocket(input, cache).await;
                result.map(|authorized| {
                    self.count_cache(metrics, authorized.from_cache);
                    webhook_identity(&authorized, authorized.websocket_authorizer_context())
                })
            }
        };
        self.count_decision(metrics, outcome.as_ref().err());
        outcome
    }
}

/// Why an HTTP request was refused, with what `WWW-Authenticate` needs for JWT failures.
#[derive(Debug)]
pub struct HttpDenial {
    pub error: AuthError,
    /// JWT only: `error_description` of `WWW-Authenticate` (`invalid_token`).
    pub jwt_description: Option<&'static str>,
}

impl Authorizer {
    /// Decide an HTTP API request. JWT: identity sources, then the token; request
    /// authorizers: the payload-format event to the webhook, its answer evaluated for
    /// `input.route_arn`.
    pub async fn authorize_http(
        &self,
        input: &HttpAuthorizerRequest<'_>,
        metrics: &Metrics,
    ) -> Result<Identity, HttpDenial> {
        let outcome = match self {
            Authorizer::Jwt { jwt, .. } => jwt
                .check(&input.request, Transport::Http)
                .await
                .map_err(|denial| HttpDenial {
                    error: denial.error(),
                    jwt_description: Some(denial.description()),
                }),
            Authorizer::Request { client, cache, .. } => {
                let format = match client.payload_format() {
                    portcullis_config::PayloadFormat::V1 => PayloadFormat::V1,
                    portcullis_config::PayloadFormat::V2 => PayloadFormat::V2,
                };
                // Boxed: a webhook call's state is large, and most requests have none.
                let result = Box::pin(client.authorize_http(input, format, cache)).await;
                result
                    .map(|authorized| {
                        self.count_cache(metrics, authorized.from_cache);
                        webhook_identity(&authorized, authorized.granted.http_authorizer_context())
                    })
                    .map_err(|error| HttpDenial {
                        error,
                        jwt_description: None,
                    })
            }
        };
        self.count_decision(metrics, outcome.as_ref().err().map(|d| &d.error));
        outcome
    }

    pub fn is_jwt(&self) -> bool {
        matches!(self, Authorizer::Jwt { .. })
    }
}

/// A token of a built-in pool that was revoked (sign-out, revoke, disabled user). Checked by
/// `origin_jti` and user in the provider's store; no network hop.
async fn revoked(
    idp: Option<&(Arc<IdentityProvider>, Vec<String>)>,
    token: &VerifiedToken,
) -> bool {
    let Some((idp, issuers)) = idp else {
        return false;
    };
    if !issuers.contains(&token.issuer) {
        return false;
    }
    let origin_jti = token.claims.get("origin_jti").and_then(Value::as_str);
    let sub = token.subject.as_deref().unwrap_or_default();
    let iat = token.claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
    Box::pin(idp.is_revoked(origin_jti, sub, iat)).await
}

/// A `jwt` authorizer: the verifier, where the token comes from, the built-in identity
/// provider for revocation checks, and a bounded cache of verified tokens.
pub struct JwtAuth {
    name: String,
    verifier: JwtVerifier,
    sources: Vec<IdentitySource>,
    /// The built-in identity provider, when one of the issuers is a built-in pool: its
    /// tokens are also checked against revocations (sign-out, revoke, disabled users).
    idp: Option<(Arc<IdentityProvider>, Vec<String>)>,
    /// Tokens already verified (keyed by their SHA-256), until they expire or for at most
    /// `cache_ttl`: a reconnecting client or a busy HTTP client is not verified
    /// again. Revocation is still checked on every use.
    verified: AuthCache<Arc<(VerifiedToken, Identity)>>,
    /// The authorizer's `cache_ttl`: longest time a verified token is remembered.
    cache_ttl: std::time::Duration,
    /// Double-submit check for tokens taken from a cookie: a browser attaches cookies to
    /// cross-site requests on its own, so such a token proves nothing without the echo.
    csrf: Option<portcullis_config::Csrf>,
}

/// Most verified tokens remembered per `jwt` authorizer.
const VERIFIED_CACHE_ENTRIES: usize = 10_000;

/// Why a `jwt` authorizer refused.
pub enum JwtDenial {
    Missing,
    /// A cookie-borne token without a matching CSRF echo.
    Csrf,
    Invalid(JwtError),
    Revoked,
}

impl JwtDenial {
    fn error(&self) -> AuthError {
        match self {
            JwtDenial::Missing | JwtDenial::Revoked => AuthError::Unauthorized,
            JwtDenial::Csrf => AuthError::Forbidden,
            JwtDenial::Invalid(e) => jwt_failure(e),
        }
    }

    /// `error_description` of the `WWW-Authenticate` challenge.
    fn description(&self) -> &'static str {
        match self {
            JwtDenial::Missing => "the token is missing",
            JwtDenial::Csrf => "the CSRF token does not match its cookie",
            JwtDenial::Revoked => "the token has been revoked",
            JwtDenial::Invalid(e) => e.description(),
        }
    }
}

/// Which event the identity is for: WebSocket events carry the claims at the top of
/// `requestContext.authorizer` too ([`VerifiedToken::websocket_authorizer_context`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    WebSocket,
    Http,
}

impl JwtAuth {
    async fn check(
        &self,
        request: &RequestParts<'_>,
        transport: Transport,
    ) -> Result<Identity, JwtDenial> {
        let Some((source, raw)) = self
            .sources
            .iter()
            .find_map(|s| s.extract(request).map(|v| (s, v)))
        else {
            return Err(JwtDenial::Missing);
        };
        if let (IdentitySource::Cookie(_), Some(csrf)) = (source, &self.csrf) {
            portcullis_auth::csrf::check(csrf, request).map_err(|_| JwtDenial::Csrf)?;
        }
        let token = identity::bearer(&raw);
        let key = CacheKey::new(&self.name, &[token]);
        let checked = match self.verified.get(&key) {
            // Still valid: the cache entry never outlives the token's `exp`.
            Some(hit) => hit,
            None => {
                // Boxed: a miss may fetch the issuer's keys; hits, the common case, stay small.
                let verified = Box::pin(self.verifier.verify(token))
                    .await
                    .map_err(JwtDenial::Invalid)?;
                let session = self
                    .idp
                    .as_ref()
                    .filter(|(_, issuers)| issuers.contains(&verified.issuer))
                    .map(|_| LiveSession {
                        issuer: verified.issuer.clone(),
                        sub: verified.subject.clone().unwrap_or_default(),
                        origin_jti: verified
                            .claims
                            .get("origin_jti")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        iat: verified
                            .claims
                            .get("iat")
                            .and_then(Value::as_i64)
                            .unwrap_or(0),
                    });
                let identity = Identity {
                    principal_id: verified.principal.clone(),
                    context: compact(&verified.authorizer_context()),
                    scopes: verified.scopes.clone(),
                    groups: verified.groups.clone(),
                    answer: None,
                    session,
                    iam: None,
                };
                let remaining = u64::try_from(verified.expires_at - chrono::Utc::now().timestamp())
                    .unwrap_or(0);
                let ttl = self
                    .cache_ttl
                    .min(std::time::Duration::from_secs(remaining));
                let checked = Arc::new((verified, identity));
                self.verified.insert(key, checked.clone(), ttl);
                checked
            }
        };
        if revoked(self.idp.as_ref(), &checked.0).await {
            return Err(JwtDenial::Revoked);
        }
        let mut identity = checked.1.clone();
        if transport == Transport::WebSocket {
            identity.context = compact(&checked.0.websocket_authorizer_context());
        }
        Ok(identity)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
