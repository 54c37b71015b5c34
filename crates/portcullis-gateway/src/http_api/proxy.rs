//! `http_proxy` integrations: the request itself forwarded to the backend and the answer
//! streamed back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONNECTION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Uri};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use portcullis_core::forward::{self, HOP_BY_HOP, ProxyFate};

use super::body::{declared_over, too_large};
use super::{HttpApi, HttpRoute, integration_failure};
use crate::authorizers::Identity;
use crate::error::GatewayError;
use crate::state::State;
use crate::upstream::{RequestBody, ResponseBody, UpstreamError};

/// What the router learnt about a request before forwarding it.
pub struct Incoming<'a> {
    /// The path inside the API (appended to the backend's URL).
    pub path: &'a str,
    /// The address the request came from (the socket's peer, a trusted proxy's included),
    /// appended to `X-Forwarded-For`.
    pub source_ip: &'a str,
    pub request_id: &'a str,
}

/// Forward the request itself: headers as `forward::proxy_fate` decides (hop-by-hop and
/// gateway-owned ones dropped in any spelling, session cookies stripped) plus
/// `forward::proxy_additions` (`X-Forwarded-*`, the caller's identity in `X-Portcullis-*`),
/// bodies streamed both ways (the request body bounded), over the origin's kept-alive
/// connections.
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
    let (mut parts, body) = req.into_parts();
    let limit = api.config.max_body_bytes;
    if declared_over(&parts.headers, limit) {
        return too_large();
    }
    // Configuration gives every `http_proxy` integration a URL.
    let Some((url, upstream)) = route.integration.url() else {
        let error = GatewayError::Internal("http_proxy integration without a URL".to_owned());
        return integration_failure(state, api, &route.key, request_id, &error);
    };
    let Some(target) = target(url, path, parts.uri.query()) else {
        return crate::reply::message(http::StatusCode::BAD_REQUEST, "Bad Request");
    };
    let headers = forwarded_headers(
        &parts.headers,
        &forward::ProxyContext {
            source_ip,
            scheme: &state.scheme,
            principal: identity.and_then(|i| i.principal_id.as_deref()),
            authorizer: identity.map(|i| i.context.get()),
        },
    );
    let mut request = Request::new(RequestBody::stream(body, limit));
    *request.method_mut() = std::mem::take(&mut parts.method);
    *request.uri_mut() = target;
    *request.headers_mut() = headers;

    let started = Instant::now();
    let timeout = route.integration.timeout();
    let sent = tokio::time::timeout(timeout, upstream.send(request)).await;
    route.integration.observe(started.elapsed());
    let upstream_response = match sent {
        Ok(Ok(r)) => r,
        Ok(Err(UpstreamError::BodyTooLarge)) => return too_large(),
        Ok(Err(e)) => {
            return integration_failure(state, api, &route.key, request_id, &e.into_gateway());
        }
        Err(_) => {
            return integration_failure(
                state,
                api,
                &route.key,
                request_id,
                &GatewayError::IntegrationTimeout(timeout),
            );
        }
    };
    let (mut head, body) = upstream_response.into_parts();
    strip_hop_by_hop(&mut head.headers);
    // The rest of the body streams through; a backend that stalls mid-body is cut off at the
    // integration timeout.
    let deadline = tokio::time::Instant::now() + timeout;
    Response::from_parts(head, Body::new(Deadline::new(body, deadline)))
}

/// The request target at the backend: the integration URL's path, the path inside the API,
/// the client's query. `None` if that is not a valid target.
fn target(url: &url::Url, path: &str, query: Option<&str>) -> Option<Uri> {
    let base = url.path().trim_end_matches('/');
    let mut target =
        String::with_capacity(base.len() + path.len() + query.map_or(0, |q| q.len() + 1));
    target.push_str(base);
    target.push_str(path);
    if target.is_empty() {
        target.push('/');
    }
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    Uri::try_from(target).ok()
}

/// The client's headers as the backend gets them: moved over unless `forward::proxy_fate`
/// drops or rewrites them, then the gateway's own.
fn forwarded_headers(client: &HeaderMap, ctx: &forward::ProxyContext<'_>) -> HeaderMap {
    let connection: Vec<&str> = client
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut prior: Vec<&str> = Vec::new();
    let mut host: Option<&[u8]> = None;
    let mut out = HeaderMap::with_capacity(client.len() + 5);
    for (name, value) in client {
        match forward::proxy_fate(name.as_str(), &connection) {
            ProxyFate::Keep => {
                out.append(name.clone(), value.clone());
            }
            ProxyFate::Drop => {}
            ProxyFate::ForwardedFor => prior.extend(value.to_str().ok()),
            ProxyFate::Host => {
                host.get_or_insert(value.as_bytes());
            }
            ProxyFate::Cookie => {
                if let Some(kept) = value
                    .to_str()
                    .ok()
                    .and_then(|v| forward::without_cookies(v, forward::SESSION_COOKIES))
                    .and_then(|kept| HeaderValue::try_from(kept).ok())
                {
                    out.append(COOKIE, kept);
                }
            }
        }
    }
    for (name, value) in forward::proxy_additions(&prior, host, ctx) {
        let value = match value {
            std::borrow::Cow::Borrowed(b) => HeaderValue::from_bytes(b),
            std::borrow::Cow::Owned(v) => HeaderValue::try_from(v),
        };
        if let Ok(value) = value {
            out.append(HeaderName::from_static(name), value);
        }
    }
    out
}

/// Hop-by-hop headers of the backend's answer are not passed on.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most answers carry none of them: one pass over the names they have decides.
    if !headers
        .keys()
        .any(|name| HOP_BY_HOP.contains(&name.as_str()))
    {
        return;
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// A backend's answer body that fails (the client's connection is then cut) when it has not
/// ended by the deadline.
struct Deadline {
    body: ResponseBody,
    deadline: tokio::time::Instant,
    /// Set the first time the body has to wait (most answers never do).
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Deadline {
    fn new(body: ResponseBody, deadline: tokio::time::Instant) -> Deadline {
        Deadline {
            body,
            deadline,
            sleep: None,
        }
    }
}

/// The answer body's deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the backend did not finish its answer within the integration timeout")]
struct BodyTimedOut;

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => match this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(this.deadline)))
                .as_mut()
                .poll(cx)
            {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut.into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
