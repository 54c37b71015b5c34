//! HTTP APIs: route matching with API Gateway's priority, per-route authorization (JWT with
//! scopes and groups, request authorizers), CORS preflights answered by the gateway,
//! throttling per route and principal, and the two integration types: `http` (payload format
//! 2.0 event and result) and `http_proxy` (the request itself, streamed both ways).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use portcullis_auth::error::AuthError;
use portcullis_auth::identity::RequestParts;
use portcullis_auth::request::HttpAuthorizerRequest;
use portcullis_config::{HttpApi, IntegrationKind};
use portcullis_core::cors::{CorsPolicy, is_preflight};
use portcullis_core::forward::{self, HOP_BY_HOP};
use portcullis_core::http_event::{HttpEventInput, http_event, parse_http_result};
use portcullis_core::http_route::{RouteTable, strip_base_path};
use portcullis_core::id::request_id;
use portcullis_core::throttle::KeyedBuckets;
use portcullis_core::{event, policy, redact};
use tracing::{debug, info, warn};

use crate::auth::{Authorizer, Authorizers, HttpDenial, Identity};
use crate::error::GatewayError;
use crate::headers::query_pairs;
use crate::integration::{Integration, Integrations};
use crate::server::State;

/// Most distinct principals (or client IPs) tracked per throttled route.
const MAX_THROTTLE_KEYS: usize = 100_000;

struct HttpRouteRt {
    key: String,
    integration: Arc<Integration>,
    kind: IntegrationKind,
    authorizer: Option<Arc<Authorizer>>,
    scopes: Vec<String>,
    groups: Vec<String>,
    throttle: Option<Mutex<KeyedBuckets>>,
}

/// An HTTP API ready to serve.
pub struct HttpApiRt {
    pub name: String,
    config: HttpApi,
    routes: RouteTable<HttpRouteRt>,
    cors: Option<CorsPolicy>,
    domain_name: String,
    epoch: Instant,
}

impl HttpApiRt {
    pub fn new(
        config: &HttpApi,
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
            Ok::<_, GatewayError>(HttpRouteRt {
                key: key.to_owned(),
                integration,
                kind,
                authorizer,
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
        Ok(HttpApiRt {
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

fn json_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("{{\"message\":\"{message}\"}}")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
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
    api: Arc<HttpApiRt>,
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
    state: &Arc<State>,
    api: &Arc<HttpApiRt>,
    req: Request<Body>,
    peer: SocketAddr,
) -> Response<Body> {
    let full_path = req.uri().path().to_owned();
    let Some(path) = api.strip(&full_path).map(str::to_owned) else {
        return json_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let method = req.method().as_str().to_owned();

    let Some(found) = api.routes.find(&method, &path) else {
        return json_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let route = found.value;
    let path_parameters = found.path_parameters;
    let rid = request_id();
    let now = event::now_ms();
    let source_ip = peer.ip().to_string();
    // Decoded query and owned headers feed authorizers and `http` events; a plain proxied
    // request needs neither.
    let needs_copies = route.authorizer.is_some() || route.kind == IntegrationKind::Http;
    let query = if needs_copies {
        query_pairs(req.uri().query())
    } else {
        Vec::new()
    };
    let headers: Vec<(String, String)> = if needs_copies {
        req.headers()
            .iter()
            .filter_map(|(n, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (n.as_str().to_owned(), v.to_owned()))
            })
            .collect()
    } else {
        Vec::new()
    };
    let protocol = match req.version() {
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };

    // Authorization.
    let mut identity: Option<Identity> = None;
    if let Some(authorizer) = &route.authorizer {
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let arn = policy::http_arn(
            &state.config.management.region,
            &state.config.management.account_id,
            &api.config.api_id,
            &api.config.stage,
            &method,
            &path,
        );
        let input = HttpAuthorizerRequest {
            route_arn: &arn,
            route_key: &route.key,
            method: &method,
            raw_path: &full_path,
            raw_query_string: req.uri().query().unwrap_or(""),
            protocol,
            source_ip: &source_ip,
            request_id: &rid,
            account_id: &state.config.management.account_id,
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
                    let mut response = json_error(StatusCode::FORBIDDEN, "Forbidden");
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
                    return json_error(StatusCode::FORBIDDEN, "Forbidden");
                }
                identity = Some(id);
            }
            Err(HttpDenial {
                error,
                jwt_description,
            }) => {
                info!(api = %api.name, route = %route.key, path = %redact::redact_url(&full_path), status = error.status(), "request refused by the authorizer");
                return match error {
                    AuthError::Unauthorized => {
                        let mut response = json_error(StatusCode::UNAUTHORIZED, "Unauthorized");
                        if let Some(description) = jwt_description
                            && let Some(v) =
                                www_authenticate(&route.scopes, "invalid_token", description)
                        {
                            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                        }
                        response
                    }
                    AuthError::Forbidden => json_error(StatusCode::FORBIDDEN, "Forbidden"),
                    AuthError::Misconfigured(detail) => {
                        warn!(api = %api.name, route = %route.key, error = %detail, "authorizer failed");
                        state.metrics.error("authorizer");
                        json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    }
                };
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
            return json_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        }
    }

    match route.kind {
        IntegrationKind::Http => {
            let (parts, body) = req.into_parts();
            let body = match read_body(body, &parts.headers, api.config.max_body_bytes).await {
                Ok(b) => b,
                Err(response) => return response,
            };
            // The gateway's session cookies stay with the gateway (the authorizer had them).
            let headers = forward::event_headers(&headers);
            let event = http_event(&HttpEventInput {
                route_key: &route.key,
                raw_path: &full_path,
                raw_query_string: parts.uri.query().unwrap_or(""),
                headers: &headers,
                query: &query,
                path_parameters: &path_parameters,
                account_id: &state.config.management.account_id,
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
                    Ok(result) => {
                        let mut response = Response::new(Body::from(result.body));
                        *response.status_mut() =
                            StatusCode::from_u16(result.status).unwrap_or(StatusCode::OK);
                        let headers = response.headers_mut();
                        for (name, value) in result.headers {
                            if let (Ok(n), Ok(v)) = (
                                HeaderName::from_bytes(name.as_bytes()),
                                HeaderValue::from_str(&value),
                            ) && !HOP_BY_HOP.contains(&n.as_str())
                            {
                                headers.append(n, v);
                            }
                        }
                        for cookie in result.cookies {
                            if let Ok(v) = HeaderValue::from_str(&cookie) {
                                headers.append(header::SET_COOKIE, v);
                            }
                        }
                        response
                    }
                    Err(e) => {
                        debug!(api = %api.name, route = %route.key, error = %e, "invalid integration result");
                        state.metrics.error("integration_invalid");
                        json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    }
                },
                Err(e) => integration_failure(state, api, &route.key, &e),
            }
        }
        IntegrationKind::HttpProxy => {
            proxy(state, api, route, req, &path, &source_ip, identity.as_ref()).await
        }
    }
}

fn integration_failure(
    state: &State,
    api: &HttpApiRt,
    route: &str,
    e: &GatewayError,
) -> Response<Body> {
    debug!(api = %api.name, route = %route, error = %e, "integration failed");
    state.metrics.error(e.kind());
    match e {
        GatewayError::IntegrationTimeout(_) => {
            json_error(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out")
        }
        _ => json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

/// Read a request body up to `limit` bytes; 413 beyond.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Vec<u8>, Response<Body>> {
    let too_large = || json_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(_) => Err(too_large()),
    }
}

/// Forward the request itself: headers as `forward::proxy_headers` rewrites them (hop-by-hop and
/// gateway-owned ones dropped in any spelling, session cookies stripped, `X-Forwarded-*` and the
/// caller's identity in `X-Portcullis-*` set), bodies streamed both ways (the request body
/// bounded).
async fn proxy(
    state: &Arc<State>,
    api: &Arc<HttpApiRt>,
    route: &HttpRouteRt,
    req: Request<Body>,
    path: &str,
    source_ip: &str,
    identity: Option<&Identity>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    if parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > api.config.max_body_bytes)
    {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    let mut url = route.integration.url().clone();
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base}{path}"));
    url.set_query(parts.uri.query());

    let received: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let forwarded = forward::proxy_headers(
        &received,
        &forward::ProxyContext {
            source_ip,
            scheme: &state.scheme,
            principal: identity.and_then(|i| i.principal_id.as_deref()),
            authorizer: identity.map(|i| i.context.get()),
        },
    );
    let mut headers = HeaderMap::with_capacity(forwarded.len());
    for (name, value) in forwarded {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            headers.append(n, v);
        }
    }

    let limit = api.config.max_body_bytes;
    let stream = http_body_util::Limited::new(body, limit).into_data_stream();
    let started = Instant::now();
    let sent = route
        .integration
        .client()
        .request(parts.method.clone(), url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let upstream = match tokio::time::timeout(route.integration.timeout(), sent).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            route.integration.observe(started.elapsed());
            if e.is_body() || e.is_request() && format!("{e:?}").contains("length limit") {
                return json_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
            }
            let error = GatewayError::IntegrationUnreachable(e.without_url().to_string());
            return integration_failure(state, api, &route.key, &error);
        }
        Err(_) => {
            route.integration.observe(started.elapsed());
            return integration_failure(
                state,
                api,
                &route.key,
                &GatewayError::IntegrationTimeout(route.integration.timeout()),
            );
        }
    };
    route.integration.observe(started.elapsed());
    let status = upstream.status();
    let mut response_headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response_headers.append(name.clone(), value.clone());
        }
    }
    // The rest of the body streams through; a backend that stalls mid-body is cut off at the
    // integration timeout.
    let deadline = tokio::time::Instant::now() + route.integration.timeout();
    let body_stream = futures_util::StreamExt::take_until(
        upstream.bytes_stream(),
        tokio::time::sleep_until(deadline),
    );
    let mut response = Response::new(Body::from_stream(body_stream));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}
