//! `http_proxy` integrations: the request itself forwarded to the backend and the answer
//! streamed back.

use std::time::Instant;

use axum::body::Body;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use portcullis_core::forward::{self, HOP_BY_HOP};

use super::body::{declared_over, is_length_limit, too_large};
use super::{HttpApi, HttpRoute, integration_failure};
use crate::authorizers::Identity;
use crate::error::GatewayError;
use crate::state::State;

/// What the router learnt about a request before forwarding it.
pub struct Incoming<'a> {
    /// The path inside the API (appended to the backend's URL).
    pub path: &'a str,
    /// The address the request came from (the socket's peer, a trusted proxy's included),
    /// appended to `X-Forwarded-For`.
    pub source_ip: &'a str,
    pub request_id: &'a str,
}

/// Forward the request itself: headers as `forward::proxy_headers` rewrites them (hop-by-hop and
/// gateway-owned ones dropped in any spelling, session cookies stripped, `X-Forwarded-*` and the
/// caller's identity in `X-Portcullis-*` set), bodies streamed both ways (the request body
/// bounded).
pub async fn proxy(
    state: &State,
    api: &HttpApi,
    route: &HttpRoute,
    req: Request<Body>,
    incoming: &Incoming<'_>,
    identity: Option<&Identity>,
) -> Response<Body> {
    let Incoming {
        path,
        source_ip,
        request_id,
    } = *incoming;
    let (parts, body) = req.into_parts();
    if declared_over(&parts.headers, api.config.max_body_bytes) {
        return too_large();
    }
    // Configuration gives every `http_proxy` integration a URL.
    let Some(url) = route.integration.url() else {
        let error = GatewayError::Internal("http_proxy integration without a URL".to_owned());
        return integration_failure(state, api, &route.key, request_id, &error);
    };
    let mut url = url.clone();
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
            if e.is_body() || e.is_request() && is_length_limit(&e) {
                return too_large();
            }
            let error = GatewayError::IntegrationUnreachable(e.without_url().to_string());
            return integration_failure(state, api, &route.key, request_id, &error);
        }
        Err(_) => {
            route.integration.observe(started.elapsed());
            return integration_failure(
                state,
                api,
                &route.key,
                request_id,
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
