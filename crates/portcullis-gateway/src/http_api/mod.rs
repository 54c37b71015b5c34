//! HTTP APIs: route matching with API Gateway's priority, per-route authorization (JWT with
//! scopes and groups, request authorizers), CORS preflights answered by the gateway,
//! throttling per route and principal, and the two integration types: `http` (payload format
//! 2.0 event and result) and `http_proxy` (the request itself, streamed both ways, in
//! [`proxy`]). Request bodies are read within the API's limit by [`body`].

mod body;
mod iam;
mod proxy;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use portcullis_auth::error::AuthError;
use portcullis_auth::identity::RequestParts;
use portcullis_auth::request::HttpAuthorizerRequest;
use portcullis_config::{Authorization, IntegrationKind};
use portcullis_core::addr::ip_text;
use portcullis_core::cors::{CorsPolicy, is_preflight};
use portcullis_core::fault::HasFault;
use portcullis_core::forward::HOP_BY_HOP;
use portcullis_core::http_event::{
    Forwarding, HttpEventInput, HttpResult, http_event, parse_http_result,
};
use portcullis_core::http_route::{RouteTable, strip_base_path};
use portcullis_core::id::request_id;
use portcullis_core::throttle::KeyedBuckets;
use portcullis_core::{event, policy, redact};
use tracing::info;

use crate::answer;
use crate::authorizers::{self, Authorizer, Authorizers, HttpDenial, Identity};
use crate::error::GatewayError;
use crate::headers::{query_cows, query_pairs};
use crate::integration::{Integration, Integrations};
use crate::reply;
use crate::state::State;
use body::read_body;
use proxy::proxy;

/// Most distinct principals (or client IPs) tracked per throttled route.
const MAX_THROTTLE_KEYS: usize = 100_000;

/// A route of an HTTP API, resolved.
struct HttpRoute {
    key: String,
    integration: Arc<Integration>,
    kind: IntegrationKind,
    authorizer: Option<Arc<Authorizer>>,
    authorization: Authorization,
    scopes: Vec<String>,
    groups: Vec<String>,
    throttle: Option<Mutex<KeyedBuckets>>,
}

/// An HTTP API ready to serve.
pub struct HttpApi {
    pub name: String,
    config: portcullis_config::HttpApi,
    routes: RouteTable<HttpRoute>,
    cors: Option<CorsPolicy>,
    domain_name: String,
    epoch: Instant,
}

impl HttpApi {
    pub fn new(
        config: &portcullis_config::HttpApi,
        domain_name: &str,
        integrations: &Integrations,
        kinds: &HashMap<String, IntegrationKind>,
        authorizers: &Authorizers,
    ) -> Result<Self, GatewayError> {
        let routes = config.route_table.try_map(|key, route| {
            let integration = integrations
                .get(&route.integration)
                .cloned()
                .ok_or_else(|| {
                    GatewayError::Internal(format!(
                        "http.{}.routes.{key}: no integration {:?}",
                        config.name, route.integration
                    ))
                })?;
            let kind = kinds
                .get(&route.integration)
                .copied()
                .unwrap_or(IntegrationKind::Http);
            let authorizer = match &route.authorizer {
                Some(name) => Some(authorizers.get(name).ok_or_else(|| {
                    GatewayError::Internal(format!(
                        "http.{}.routes.{key}: no authorizer {name:?}",
                        config.name
                    ))
                })?),
                None => None,
            };
            let throttle = route.throttle.map(|t| {
                Mutex::new(KeyedBuckets::new(
                    t.rate_per_second,
                    t.burst,
                    MAX_THROTTLE_KEYS,
                ))
            });
            Ok::<_, GatewayError>(HttpRoute {
                key: key.to_owned(),
                integration,
                kind,
                authorizer,
                authorization: route.authorization,
                scopes: route.scopes.clone(),
                groups: route.groups.clone(),
                throttle,
            })
        })?;
        let cors = config.cors.as_ref().map(|c| CorsPolicy {
            allow_origins: c.allow_origins.clone(),
            allow_methods: c.allow_methods.clone(),
            allow_headers: c.allow_headers.clone(),
            expose_headers: c.expose_headers.clone(),
            allow_credentials: c.allow_credentials,
            max_age_secs: c.max_age.map(|d| d.as_secs()),
        });
        Ok(HttpApi {
            name: config.name.clone(),
            config: config.clone(),
            routes,
            cors,
            domain_name: domain_name.to_owned(),
            epoch: Instant::now(),
        })
    }

    /// The path inside this API, if `path` is under its base path.
    pub fn strip<'a>(&self, path: &'a str) -> Option<&'a str> {
        strip_base_path(&self.config.base_path, path)
    }

    pub fn base_path_len(&self) -> usize {
        self.config.base_path.len()
    }
}

fn www_authenticate(scopes: &[String], error: &str, description: &str) -> Option<HeaderValue> {
    let scope = scopes.join(" ");
    HeaderValue::from_str(&format!(
        "Bearer scope=\"{scope}\" error=\"{error}\" error_description=\"{description}\""
    ))
    .ok()
}

/// Serve one request of `api`; `path` is the request path inside the API.
pub async fn handle(
    state: Arc<State>,
    api: Arc<HttpApi>,
    req: Request<Body>,
    peer: SocketAddr,
) -> Response<Body> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // CORS preflights are answered here and never reach a backend.
    if let Some(cors) = &api.cors {
        let header =
            |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
        let request_method = header(header::ACCESS_CONTROL_REQUEST_METHOD);
        if is_preflight(req.method().as_str(), origin.as_deref(), request_method) {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            if let Some(headers) = cors.preflight(
                origin.as_deref(),
                request_method,
                header(header::ACCESS_CONTROL_REQUEST_HEADERS),
            ) {
                for (name, value) in headers {
                    if let (Ok(n), Ok(v)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(&value),
                    ) {
                        response.headers_mut().append(n, v);
                    }
                }
            }
            return response;
        }
    }
    let mut response = serve(&state, &api, req, peer).await;
    if let Some(cors) = &api.cors {
        // The gateway owns CORS: the backend's own headers are replaced.
        let headers = response.headers_mut();
        let stale: Vec<HeaderName> = headers
            .keys()
            .filter(|n| n.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in stale {
            headers.remove(name);
        }
        for (name, value) in cors.response_headers(origin.as_deref()) {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.append(n, v);
            }
        }
    }
    response
}

async fn serve(
    state: &State,
    api: &HttpApi,
    mut req: Request<Body>,
    peer: SocketAddr,
) -> Response<Body> {
    let full_path = req.uri().path().to_owned();
    let Some(path) = api.strip(&full_path).map(str::to_owned) else {
        return reply::message(StatusCode::NOT_FOUND, "Not Found");
    };
    let method = req.method().as_str().to_owned();

    let Some(found) = api.routes.find(&method, &path) else {
        return reply::message(StatusCode::NOT_FOUND, "Not Found");
    };
    let route = found.value;
    let path_parameters = found.path_parameters;
    let rid = request_id();
    let now = event::now_ms();
    // The client (behind a trusted proxy, the address it forwarded).
    let source_ip = ip_text(crate::abuse::client_ip(&req, peer));
    let protocol = match req.version() {
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };

    // Authorization.
    let mut identity: Option<Identity> = None;
    if route.authorization == Authorization::AwsIam {
        // Boxed: `AWS_IAM` routes are few, and their state would make every request's larger.
        match Box::pin(iam::authorize(state, api, &route.key, &path, req)).await {
            Ok((id, read)) => {
                identity = Some(id);
                req = read;
            }
            Err(response) => return response,
        }
    }
    if let Some(authorizer) = &route.authorizer {
        // Borrowed from the request (text values only); the query decoded for the authorizer.
        let header_refs = text_headers(req.headers());
        let query = query_pairs(req.uri().query());
        // The route's ARN is for request authorizers (`methodArn`, `routeArn`); a `jwt`
        // authorizer never reads it.
        let arn = if authorizer.is_jwt() {
            String::new()
        } else {
            policy::http_arn(
                &state.management.region,
                &state.management.account_id,
                &api.config.api_id,
                &api.config.stage,
                &method,
                &path,
            )
        };
        let input = HttpAuthorizerRequest {
            route_arn: &arn,
            route_key: &route.key,
            method: &method,
            raw_path: &full_path,
            raw_query_string: req.uri().query().unwrap_or(""),
            protocol,
            source_ip: &source_ip,
            request_id: &rid,
            account_id: &state.management.account_id,
            api_id: &api.config.api_id,
            domain_name: &api.domain_name,
            stage: &api.config.stage,
            time_epoch_ms: now,
            path_parameters: &path_parameters,
            stage_variables: &[],
            request: RequestParts {
                headers: &header_refs,
                query: &query,
            },
        };
        match authorizer.authorize_http(&input, &state.metrics).await {
            Ok(id) => {
                if !id.allows(&route.scopes, &[]) {
                    let mut response = reply::message(StatusCode::FORBIDDEN, "Forbidden");
                    if authorizer.is_jwt()
                        && let Some(v) = www_authenticate(
                            &route.scopes,
                            "insufficient_scope",
                            "the token does not have the required scope",
                        )
                    {
                        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    }
                    return response;
                }
                if !id.allows(&[], &route.groups) {
                    return reply::message(StatusCode::FORBIDDEN, "Forbidden");
                }
                identity = Some(id);
            }
            Err(HttpDenial {
                error,
                jwt_description,
            }) => {
                info!(api = %api.name, route = %route.key, path = %redact::redact_url(&full_path), status = error.status(), "request refused by the authorizer");
                let mut response =
                    authorizers::refusal(&error, &api.name, authorizer.name(), &state.metrics);
                if error == AuthError::Unauthorized
                    && let Some(description) = jwt_description
                    && let Some(v) = www_authenticate(&route.scopes, "invalid_token", description)
                {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                return response;
            }
        }
    }

    // Throttling per route and principal (the client address when nobody is signed in).
    if let Some(throttle) = &route.throttle {
        let key = identity
            .as_ref()
            .and_then(|i| i.principal_id.clone())
            .unwrap_or_else(|| source_ip.clone());
        let allowed = throttle
            .lock()
            .map(|mut buckets| buckets.try_take(&key, api.epoch.elapsed().as_secs_f64()))
            .unwrap_or(false);
        if !allowed {
            state.metrics.error("throttled");
            return reply::message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        }
    }

    match route.kind {
        // The same event and result for an HTTP endpoint and for a function.
        IntegrationKind::Http | IntegrationKind::Lambda => {
            let (parts, body) = req.into_parts();
            let body = match read_body(body, &parts.headers, api.config.max_body_bytes).await {
                Ok(b) => b,
                Err(response) => return response,
            };
            // Borrowed from the request: the event builder leaves the gateway's session cookies
            // with the gateway (the authorizer had them) and sends the gateway's forwarding
            // headers, not the client's, as API Gateway does.
            let headers = text_headers(&parts.headers);
            let query = query_cows(parts.uri.query());
            let hop = ip_text(peer.ip().to_canonical());
            let event = http_event(&HttpEventInput {
                route_key: &route.key,
                raw_path: &full_path,
                raw_query_string: parts.uri.query().unwrap_or(""),
                headers: &headers,
                forwarding: Some(Forwarding {
                    hop: &hop,
                    port: state.listen_port,
                    scheme: &state.scheme,
                }),
                query: &query,
                path_parameters: &path_parameters,
                account_id: &state.management.account_id,
                api_id: &api.config.api_id,
                authorizer: identity.as_ref().map(|i| &*i.context),
                domain_name: &api.domain_name,
                method: &method,
                protocol,
                source_ip: &source_ip,
                request_id: &rid,
                stage: &api.config.stage,
                time_epoch_ms: now,
                body: &body,
            });
            match route.integration.invoke_raw(event).await {
                Ok(raw) => match parse_http_result(&raw) {
                    Ok(result) => result_response(&raw, result),
                    Err(e) => {
                        let e = GatewayError::IntegrationInvalid(e.to_string());
                        integration_failure(state, api, &route.key, &rid, &e)
                    }
                },
                Err(e) => integration_failure(state, api, &route.key, &rid, &e),
            }
        }
        IntegrationKind::HttpProxy => {
            // `X-Forwarded-For` ends with the address the request came from.
            let hop = ip_text(peer.ip().to_canonical());
            let incoming = proxy::Incoming {
                path: &path,
                source_ip: &hop,
                request_id: &rid,
            };
            proxy(state, api, route, req, &incoming, identity.as_ref()).await
        }
    }
}

/// A request's headers whose values are text, borrowed, in arrival order.
fn text_headers(headers: &http::HeaderMap) -> Vec<(&str, &str)> {
    headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect()
}

/// The response for an `http` integration's payload 2.0 result; the body and the header
/// values share the answer's buffer where the result borrows from it (no copies).
fn result_response(raw: &bytes::Bytes, result: HttpResult<'_>) -> Response<Body> {
    let mut response = Response::new(Body::from(answer::bytes(raw, result.body)));
    *response.status_mut() = StatusCode::from_u16(result.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.reserve(result.headers.len() + result.cookies.len());
    for (name, value) in result.headers {
        let value = match value {
            Cow::Borrowed(v) => Cow::Borrowed(v.as_bytes()),
            Cow::Owned(v) => Cow::Owned(v.into_bytes()),
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_maybe_shared(answer::bytes(raw, value)),
        ) && !HOP_BY_HOP.contains(&n.as_str())
        {
            headers.append(n, v);
        }
    }
    for cookie in result.cookies {
        let cookie = match cookie {
            Cow::Borrowed(c) => Cow::Borrowed(c.as_bytes()),
            Cow::Owned(c) => Cow::Owned(c.into_bytes()),
        };
        if let Ok(v) = HeaderValue::from_maybe_shared(answer::bytes(raw, cookie)) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The answer when the integration failed: 504 when it did not answer within its timeout,
/// 413 when the event is too large for a function, else 500 (API Gateway's answers: a
/// function that failed, crashed or ran past its own timeout is a 500), logged as loudly as
/// its fault calls for and counted by kind. The error's text (a handler's message) stays in
/// the log.
fn integration_failure(
    state: &State,
    api: &HttpApi,
    route: &str,
    request_id: &str,
    e: &GatewayError,
) -> Response<Body> {
    let fault = e.fault();
    log_fault!(fault, api = %api.name, route = %route, request_id = %request_id, error = %e, %fault, "integration failed");
    state.metrics.error(e.kind());
    match e {
        GatewayError::IntegrationTimeout(_) => {
            reply::message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out")
        }
        GatewayError::Function {
            error: portcullis_functions::FunctionError::EventTooLarge { .. },
            ..
        } => reply::message(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long"),
        _ => reply::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}
