//! The REQUEST authorizer: a webhook speaking the Lambda REQUEST authorizer format, or the
//! authorizer handler itself run by `portcullis-functions` ([`AuthorizerTarget`]).
//!
//! The gateway POSTs (or invokes the handler with) the authorizer event API Gateway would pass
//! to the Lambda (reference §4.3) and reads the Lambda's return value as the response body
//! (§4.4); a handler that fails with the message `Unauthorized` means 401:
//!
//! * [`websocket_event`]: the WebSocket `$connect` shape (`methodArn`, `headers`,
//!   `multiValueHeaders`, query maps, `stageVariables`, CONNECT-like `requestContext`);
//! * [`http_event`]: HTTP API payload format 2.0 (`routeArn`, `identitySource` array, lower-case
//!   `headers`, `cookies`, …);
//! * [`http_v1_event`]: HTTP API payload format 1.0, the REST REQUEST shape plus `version`,
//!   `identitySource` and `authorizationToken` — what TOKEN-style handlers that read
//!   `event['authorizationToken']` and `event['methodArn']` expect.
//!
//! Answers ([`parse_answer`]): an IAM-policy response (`principalId` + `policyDocument`, flat
//! `context` of strings, numbers and booleans) or a simple response (`isAuthorized` boolean,
//! `context` of any JSON). HTTP 401, or a body that is the JSON string `"Unauthorized"` or an
//! object whose `message`/`errorMessage` is `"Unauthorized"` (what Lambda returns for
//! `raise Exception('Unauthorized')`), means 401. Anything else that is not a valid answer —
//! another non-2xx status, invalid JSON, more than [`MAX_ANSWER_BYTES`], a timeout — is an
//! authorizer error (500).
//!
//! [`decide`] evaluates an answer for one ARN; answers are cached whole ([`AnswerCache`]) and
//! re-evaluated for every ARN, as API Gateway does.

use std::sync::Arc;

use portcullis_core::event::{ClfTime, WsEventContext};
use portcullis_core::policy::{self, Decision, PolicyDocument};
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::{Map, Value};

use crate::cache::AuthCache;
use crate::cookie;
use crate::error::AuthError;
use crate::identity::RequestParts;

/// Largest authorizer answer read; more is an authorizer error.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024;
/// The action requests are evaluated for.
pub const INVOKE: &str = "execute-api:Invoke";

/// The cache of whole answers shared by request authorizers.
pub type AnswerCache = AuthCache<Arc<AuthorizerAnswer>>;

// ---------------------------------------------------------------------------------------------
// Inputs

/// What the WebSocket `$connect` authorizer event is built from.
#[derive(Debug, Clone, Copy)]
pub struct WebSocketAuthorizerRequest<'a> {
    /// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect`
    /// ([`policy::websocket_arn`]); also the ARN the answer is evaluated for.
    pub method_arn: &'a str,
    /// The upgrade request's headers (all of them, client casing) and decoded query.
    pub request: RequestParts<'a>,
    /// The same context the CONNECT event is built from (`route_key` should be `$connect`;
    /// `message_id`, `authorizer` and the disconnect fields are ignored).
    pub context: WsEventContext<'a>,
    /// Stage variables (emitted as `{}` when empty).
    pub stage_variables: &'a [(String, String)],
}

/// What the HTTP API authorizer events (payload 2.0 and 1.0) are built from.
#[derive(Debug, Clone, Copy)]
pub struct HttpAuthorizerRequest<'a> {
    /// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}`
    /// ([`policy::http_arn`]): `routeArn` (2.0) / `methodArn` (1.0) and the ARN evaluated.
    pub route_arn: &'a str,
    /// `GET /orders/{id}` or `$default`.
    pub route_key: &'a str,
    pub method: &'a str,
    /// The path as received, without the query.
    pub raw_path: &'a str,
    /// The query as received, without `?` (empty if none).
    pub raw_query_string: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: &'a str,
    pub source_ip: &'a str,
    pub request_id: &'a str,
    pub account_id: &'a str,
    pub api_id: &'a str,
    /// Host name the request was made to; `domainPrefix` is its first label.
    pub domain_name: &'a str,
    pub stage: &'a str,
    pub time_epoch_ms: i64,
    pub path_parameters: &'a [(String, String)],
    pub stage_variables: &'a [(String, String)],
    /// Headers (client casing) and decoded query.
    pub request: RequestParts<'a>,
}

/// Which HTTP API authorizer payload format a webhook speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadFormat {
    /// Payload format 1.0 (REST REQUEST shape + `authorizationToken`).
    V1,
    /// Payload format 2.0.
    #[default]
    V2,
}

// ---------------------------------------------------------------------------------------------
// Answers and decisions

/// A valid authorizer answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizerAnswer {
    /// IAM-policy response; `context` values are strings, numbers or booleans.
    Policy {
        principal_id: Option<String>,
        policy: PolicyDocument,
        context: Map<String, Value>,
    },
    /// Simple response (HTTP APIs); `context` holds any JSON.
    Simple {
        is_authorized: bool,
        context: Map<String, Value>,
    },
}

/// A request let through by an authorizer.
#[derive(Debug, Clone, PartialEq)]
pub struct Granted {
    pub principal_id: Option<String>,
    pub context: Map<String, Value>,
}

impl Granted {
    /// `requestContext.authorizer` for WebSocket events (§4.8):
    /// `{"principalId", "integrationLatency", ...context keys}` with native JSON types. Context
    /// keys named `principalId` or `integrationLatency` do not override the real ones.
    pub fn websocket_authorizer_context(&self, integration_latency_ms: u64) -> Value {
        let mut out = Map::with_capacity(self.context.len() + 2);
        if let Some(p) = &self.principal_id {
            out.insert("principalId".to_owned(), Value::String(p.clone()));
        }
        out.insert(
            "integrationLatency".to_owned(),
            Value::from(integration_latency_ms),
        );
        for (k, v) in &self.context {
            if k != "principalId" && k != "integrationLatency" {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }

    /// `requestContext.authorizer` for HTTP payload 2.0 events: `{"lambda": context}`.
    pub fn http_authorizer_context(&self) -> Value {
        let mut out = Map::with_capacity(1);
        out.insert("lambda".to_owned(), Value::Object(self.context.clone()));
        Value::Object(out)
    }
}

/// The outcome of [`RequestAuthorizerClient::authorize_websocket`] / `authorize_http`.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorized {
    pub granted: Granted,
    /// The answer came from the cache (the webhook was not called).
    pub from_cache: bool,
    /// Time the webhook took (0 when cached): `integrationLatency`.
    pub integration_latency_ms: u64,
    /// The answer itself, kept so a connection's policy can be evaluated again for each
    /// message's route (`message_policy = true`).
    pub answer: Arc<AuthorizerAnswer>,
}

impl Authorized {
    /// [`Granted::websocket_authorizer_context`] with this call's latency.
    pub fn websocket_authorizer_context(&self) -> Value {
        self.granted
            .websocket_authorizer_context(self.integration_latency_ms)
    }
}

/// Evaluates `answer` for `action` on `arn`: a simple `false` or a policy that does not allow
/// (explicit or implicit deny) is [`AuthError::Forbidden`].
pub fn decide(answer: &AuthorizerAnswer, action: &str, arn: &str) -> Result<Granted, AuthError> {
    match answer {
        AuthorizerAnswer::Simple {
            is_authorized: true,
            context,
        } => Ok(Granted {
            principal_id: None,
            context: context.clone(),
        }),
        AuthorizerAnswer::Simple { .. } => Err(AuthError::Forbidden),
        AuthorizerAnswer::Policy {
            principal_id,
            policy: doc,
            context,
        } => match policy::evaluate(doc, action, arn) {
            Decision::Allow => Ok(Granted {
                principal_id: principal_id.clone(),
                context: context.clone(),
            }),
            Decision::ExplicitDeny | Decision::ImplicitDeny => Err(AuthError::Forbidden),
        },
    }
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::Misconfigured(msg.into())
}

fn is_unauthorized(v: &Value) -> bool {
    const U: &str = "Unauthorized";
    match v {
        Value::String(s) => s == U,
        Value::Object(o) => {
            !o.contains_key("policyDocument")
                && !o.contains_key("isAuthorized")
                && (o.get("message").and_then(Value::as_str) == Some(U)
                    || o.get("errorMessage").and_then(Value::as_str) == Some(U))
        }
        _ => false,
    }
}

/// Interprets a webhook's HTTP status and body (see the module docs).
pub fn parse_answer(status: u16, body: &[u8]) -> Result<AuthorizerAnswer, AuthError> {
    if status == 401 {
        return Err(AuthError::Unauthorized);
    }
    if body.len() > MAX_ANSWER_BYTES {
        return Err(invalid(format!(
            "authorizer answer larger than {MAX_ANSWER_BYTES} bytes"
        )));
    }
    let value = serde_json::from_slice::<Value>(body).ok();
    if value.as_ref().is_some_and(is_unauthorized) {
        return Err(AuthError::Unauthorized);
    }
    if !(200..300).contains(&status) {
        return Err(invalid(format!("authorizer answered HTTP {status}")));
    }
    let Some(Value::Object(obj)) = value else {
        return Err(invalid("authorizer answer is not a JSON object"));
    };
    if let Some(doc) = obj.get("policyDocument") {
        let policy = PolicyDocument::from_value(doc)
            .map_err(|e| invalid(format!("authorizer answer: {e}")))?;
        let principal_id = match obj.get("principalId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid("authorizer answer: principalId is not a string")),
        };
        let context = context_map(obj.get("context"))?;
        if let Some((key, _)) = context
            .iter()
            .find(|(_, v)| !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
        {
            return Err(invalid(format!(
                "authorizer answer: context value {key:?} must be a string, number or boolean"
            )));
        }
        return Ok(AuthorizerAnswer::Policy {
            principal_id,
            policy,
            context,
        });
    }
    if let Some(flag) = obj.get("isAuthorized") {
        let is_authorized = flag
            .as_bool()
            .ok_or_else(|| invalid("authorizer answer: isAuthorized is not a boolean"))?;
        return Ok(AuthorizerAnswer::Simple {
            is_authorized,
            context: context_map(obj.get("context"))?,
        });
    }
    Err(invalid(
        "authorizer answer has neither policyDocument nor isAuthorized",
    ))
}

fn context_map(v: Option<&Value>) -> Result<Map<String, Value>, AuthError> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(invalid("authorizer answer: context is not an object")),
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// A JSON object written from pairs in the given order.
struct OrderedMap<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for OrderedMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Pairs grouped by name, sorted by name (case-insensitively when `fold_case`), values in
/// arrival order, each group named as its first occurrence.
fn group<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    fold_case: bool,
) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut pairs: Vec<(&str, &str)> = pairs.collect();
    let key = |s: &str| -> String {
        if fold_case {
            s.to_ascii_lowercase()
        } else {
            s.to_owned()
        }
    };
    pairs.sort_by_cached_key(|(n, _)| key(n));
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (n, v) in pairs {
        match out.last_mut() {
            Some((last, values)) if key(last) == key(n) => values.push(v),
            _ => out.push((n, vec![v])),
        }
    }
    out
}

fn last_values<'a>(groups: &[(&'a str, Vec<&'a str>)]) -> OrderedMap<&'a str, &'a str> {
    OrderedMap(
        groups
            .iter()
            .filter_map(|(n, v)| v.last().map(|last| (*n, *last)))
            .collect(),
    )
}

fn joined<'a>(groups: &[(&'a str, Vec<&'a str>)]) -> OrderedMap<&'a str, String> {
    OrderedMap(groups.iter().map(|(n, v)| (*n, v.join(","))).collect())
}

fn query_pairs<'a>(req: &RequestParts<'a>) -> impl Iterator<Item = (&'a str, &'a str)> {
    req.query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

fn owned_pairs(pairs: &[(String, String)]) -> OrderedMap<&str, &str> {
    OrderedMap(
        pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WsAuthorizerEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    method_arn: &'a str,
    headers: OrderedMap<&'a str, &'a str>,
    multi_value_headers: OrderedMap<&'a str, Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<OrderedMap<&'a str, &'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_value_query_string_parameters: Option<OrderedMap<&'a str, Vec<&'a str>>>,
    stage_variables: OrderedMap<&'a str, &'a str>,
    request_context: WsRequestContext<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WsRequestContext<'a> {
    route_key: &'a str,
    event_type: &'static str,
    extended_request_id: &'a str,
    request_time: ClfTime,
    message_direction: &'static str,
    stage: &'a str,
    connected_at: i64,
    request_time_epoch: i64,
    identity: WsIdentity<'a>,
    request_id: &'a str,
    domain_name: &'a str,
    connection_id: &'a str,
    api_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WsIdentity<'a> {
    source_ip: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Only string-keyed maps and plain values: serialisation cannot fail. An empty body would
    // be rejected by the webhook rather than panic here.
    serde_json::to_vec(v).unwrap_or_default()
}

/// The WebSocket `$connect` REQUEST authorizer event.
pub fn websocket_event(input: &WebSocketAuthorizerRequest<'_>) -> Vec<u8> {
    let ctx = &input.context;
    let headers = group(input.request.headers.iter().copied(), true);
    let query = group(query_pairs(&input.request), false);
    let has_query = !query.is_empty();
    let ev = WsAuthorizerEvent {
        kind: "REQUEST",
        method_arn: input.method_arn,
        headers: last_values(&headers),
        multi_value_headers: OrderedMap(headers.clone()),
        query_string_parameters: has_query.then(|| last_values(&query)),
        multi_value_query_string_parameters: has_query.then(|| OrderedMap(query.clone())),
        stage_variables: owned_pairs(input.stage_variables),
        request_context: WsRequestContext {
            route_key: ctx.route_key,
            event_type: "CONNECT",
            extended_request_id: ctx.request_id,
            request_time: ClfTime(ctx.request_time_ms),
            message_direction: "IN",
            stage: ctx.stage,
            connected_at: ctx.connected_at_ms,
            request_time_epoch: ctx.request_time_ms,
            identity: WsIdentity {
                source_ip: ctx.source_ip,
                user_agent: ctx.user_agent,
            },
            request_id: ctx.request_id,
            domain_name: ctx.domain_name,
            connection_id: ctx.connection_id,
            api_id: ctx.api_id,
        },
    };
    to_json(&ev)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpV2Event<'a> {
    version: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    route_arn: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    identity_source: &'a [String],
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    headers: OrderedMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<OrderedMap<&'a str, String>>,
    request_context: HttpV2Context<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<OrderedMap<&'a str, &'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage_variables: Option<OrderedMap<&'a str, &'a str>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpV2Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: HttpV2Http<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: ClfTime,
    time_epoch: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpV2Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: &'a str,
}

fn domain_prefix(domain: &str) -> &str {
    let host = domain.split(':').next().unwrap_or(domain);
    host.split('.').next().unwrap_or(host)
}

/// `None` for no pairs (the member is then omitted or `null`).
fn non_empty(pairs: &[(String, String)]) -> Option<OrderedMap<&str, &str>> {
    (!pairs.is_empty()).then(|| owned_pairs(pairs))
}

/// The HTTP API payload format 2.0 REQUEST authorizer event; `identity` are the identity-source
/// values in configured order. Header names are lower-cased and repeated headers joined with
/// `,`; `Cookie` headers go into `cookies` instead of `headers`.
pub fn http_event(input: &HttpAuthorizerRequest<'_>, identity: &[String]) -> Vec<u8> {
    let req = &input.request;
    let headers = group(
        req.headers
            .iter()
            .copied()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("cookie")),
        true,
    );
    let headers = OrderedMap(
        headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.join(",")))
            .collect(),
    );
    let query = group(query_pairs(req), false);
    let cookies = req
        .header_values("cookie")
        .flat_map(cookie::raw_entries)
        .collect();
    let user_agent = req.header("user-agent").unwrap_or_default();
    let ev = HttpV2Event {
        version: "2.0",
        kind: "REQUEST",
        route_arn: input.route_arn,
        identity_source: identity,
        route_key: input.route_key,
        raw_path: input.raw_path,
        raw_query_string: input.raw_query_string,
        cookies,
        headers,
        query_string_parameters: (!query.is_empty()).then(|| joined(&query)),
        request_context: HttpV2Context {
            account_id: input.account_id,
            api_id: input.api_id,
            domain_name: input.domain_name,
            domain_prefix: domain_prefix(input.domain_name),
            http: HttpV2Http {
                method: input.method,
                path: input.raw_path,
                protocol: input.protocol,
                source_ip: input.source_ip,
                user_agent: &user_agent,
            },
            request_id: input.request_id,
            route_key: input.route_key,
            stage: input.stage,
            time: ClfTime(input.time_epoch_ms),
            time_epoch: input.time_epoch_ms,
        },
        path_parameters: non_empty(input.path_parameters),
        stage_variables: non_empty(input.stage_variables),
    };
    to_json(&ev)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpV1Event<'a> {
    version: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    method_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_token: Option<&'a str>,
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    headers: OrderedMap<&'a str, &'a str>,
    multi_value_headers: OrderedMap<&'a str, Vec<&'a str>>,
    query_string_parameters: Option<OrderedMap<&'a str, &'a str>>,
    multi_value_query_string_parameters: Option<OrderedMap<&'a str, Vec<&'a str>>>,
    path_parameters: Option<OrderedMap<&'a str, &'a str>>,
    stage_variables: Option<OrderedMap<&'a str, &'a str>>,
    request_context: HttpV1Context<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpV1Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    extended_request_id: &'a str,
    http_method: &'a str,
    identity: HttpV1Identity<'a>,
    path: &'a str,
    protocol: &'a str,
    request_id: &'a str,
    request_time: ClfTime,
    request_time_epoch: i64,
    resource_id: &'a str,
    resource_path: &'a str,
    stage: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpV1Identity<'a> {
    source_ip: &'a str,
    user_agent: &'a str,
}

/// The HTTP API payload format 1.0 REQUEST authorizer event; `identitySource` and
/// `authorizationToken` are the identity values joined with `,` (omitted when there are none).
pub fn http_v1_event(input: &HttpAuthorizerRequest<'_>, identity: &[String]) -> Vec<u8> {
    let req = &input.request;
    let headers = group(req.headers.iter().copied(), true);
    let query = group(query_pairs(req), false);
    let has_query = !query.is_empty();
    let token = identity.join(",");
    let token = (!identity.is_empty()).then_some(token.as_str());
    let resource = input
        .route_key
        .split_once(' ')
        .map_or(input.route_key, |(_, path)| path);
    let user_agent = req.header("user-agent").unwrap_or_default();
    let ev = HttpV1Event {
        version: "1.0",
        kind: "REQUEST",
        method_arn: input.route_arn,
        identity_source: token,
        authorization_token: token,
        resource,
        path: input.raw_path,
        http_method: input.method,
        headers: last_values(&headers),
        multi_value_headers: OrderedMap(headers.clone()),
        query_string_parameters: has_query.then(|| last_values(&query)),
        multi_value_query_string_parameters: has_query.then(|| OrderedMap(query.clone())),
        path_parameters: non_empty(input.path_parameters),
        stage_variables: non_empty(input.stage_variables),
        request_context: HttpV1Context {
            account_id: input.account_id,
            api_id: input.api_id,
            domain_name: input.domain_name,
            domain_prefix: domain_prefix(input.domain_name),
            extended_request_id: input.request_id,
            http_method: input.method,
            identity: HttpV1Identity {
                source_ip: input.source_ip,
                user_agent: &user_agent,
            },
            path: input.raw_path,
            protocol: input.protocol,
            request_id: input.request_id,
            request_time: ClfTime(input.time_epoch_ms),
            request_time_epoch: input.time_epoch_ms,
            resource_id: input.route_key,
            resource_path: resource,
            stage: input.stage,
        },
    };
    to_json(&ev)
}

mod client;
pub use client::{AuthorizerTarget, RequestAuthorizerClient};

#[cfg(test)]
mod tests;
