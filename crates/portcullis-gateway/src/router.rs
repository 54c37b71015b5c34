//! Where a request goes: the one place that says which app answers it, for each listener.
//!
//! Public listener: first the client's address is found (`abuse::Limits::identify`: the peer,
//! or behind a trusted proxy the address it forwarded); then, in this order:
//! 1. a WebSocket API's path: the upgrade (503 while the gateway drains; then the session
//!    limits of `abuse`: 429 over the connect rate, 503 beyond `max_connections`);
//! 2. a WebSocket API's SSE path (`sse.path`): the event stream (the same refusals);
//! 3. the identity provider's endpoints: `/pools/...` (OAuth2/OIDC, hosted pages) and the
//!    Cognito JSON APIs (`POST /` with an `X-Amz-Target: AWSCognitoIdentityProviderService.*`,
//!    or `AWSCognitoIdentityService.*` for the identity pools);
//! 4. an HTTP API whose base path holds the path (longest base path first);
//! 5. a static site whose prefix holds the path (longest prefix first);
//! 6. otherwise 404.
//!
//! Admin listener: `GET /healthz`, `GET /readyz`, `GET /metrics`, `/admin/...` (the identity admin API),
//! everything else the management API (`@connections`, `@users`, `@topics`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, Response, StatusCode};
use portcullis_idp::IdentityProvider;

use crate::abuse::{self, Limits};
use crate::admin;
use crate::http_api::{self, HttpApi};
use crate::reply;
use crate::sse;
use crate::state::State;
use crate::static_site::Site;
use crate::websocket::{WsApi, handle_upgrade};

/// The apps of the public listener.
pub struct Public {
    pub state: Arc<State>,
    /// WebSocket APIs by path.
    pub websocket: HashMap<String, Arc<WsApi>>,
    /// WebSocket APIs with `sse`, by the stream's path.
    pub sse: HashMap<String, Arc<WsApi>>,
    /// The built-in identity provider's endpoints (OAuth2/OIDC under `/pools/`, the Cognito
    /// JSON API at `POST /`), when the configuration defines pools.
    pub identity: Option<axum::Router>,
    /// HTTP APIs, longest base path first.
    pub http_apis: Vec<Arc<HttpApi>>,
    /// `[static.*]` sites, longest prefix first (a site at `/` comes last).
    pub static_sites: Vec<Site>,
    /// The client's address, and the limits on new sessions.
    pub limits: Arc<Limits>,
}

/// Which public app a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PublicApp {
    WebSocket,
    Sse,
    Identity,
    HttpApi(usize),
    StaticSite(usize),
    NotFound,
}

impl Public {
    /// Answer one request of the public listener.
    pub async fn serve(&self, mut req: Request<Body>, peer: SocketAddr) -> Response<Body> {
        let client = self.limits.identify(&mut req, peer);
        match self.select(&req) {
            PublicApp::WebSocket => {
                if self.state.shutdown.is_cancelled() {
                    return reply::message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
                }
                let Some(api) = self.websocket.get(req.uri().path()).cloned() else {
                    return reply::message(StatusCode::NOT_FOUND, "Not Found");
                };
                match self.limits.admit(peer, client) {
                    Ok(admitted) => abuse::hold_with_connection(&mut req, admitted),
                    Err(refusal) => return refusal,
                }
                // Boxed, as every app but the HTTP APIs: a request's future is as large as its
                // largest branch, and hyper moves it into place for every request.
                Box::pin(handle_upgrade(self.state.clone(), api, req, peer)).await
            }
            PublicApp::Sse => {
                if self.state.shutdown.is_cancelled() {
                    return reply::message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
                }
                let Some(api) = self.sse.get(req.uri().path()).cloned() else {
                    return reply::message(StatusCode::NOT_FOUND, "Not Found");
                };
                let admitted = match self.limits.admit(peer, client) {
                    Ok(admitted) => admitted,
                    Err(refusal) => return refusal,
                };
                let response = Box::pin(sse::handle(self.state.clone(), api, req, peer)).await;
                abuse::hold_while_streaming(response, admitted)
            }
            PublicApp::Identity => match self.identity.clone() {
                Some(router) => {
                    // The identity provider's per-address limits count the client, not a
                    // trusted proxy in front of it.
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(SocketAddr::new(
                            client,
                            peer.port(),
                        )));
                    match Box::pin(tower::ServiceExt::oneshot(router, req)).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    }
                }
                None => reply::message(StatusCode::NOT_FOUND, "Not Found"),
            },
            PublicApp::HttpApi(i) => {
                let api = self.http_apis[i].clone();
                http_api::handle(self.state.clone(), api, req, peer).await
            }
            PublicApp::StaticSite(i) => Box::pin(self.static_sites[i].serve(req)).await,
            PublicApp::NotFound => reply::message(StatusCode::NOT_FOUND, "Not Found"),
        }
    }

    fn select(&self, req: &Request<Body>) -> PublicApp {
        let path = req.uri().path();
        if self.websocket.contains_key(path) {
            return PublicApp::WebSocket;
        }
        if self.sse.contains_key(path) {
            return PublicApp::Sse;
        }
        if self.identity.is_some() && is_identity_request(req) {
            return PublicApp::Identity;
        }
        if let Some(i) = self.http_apis.iter().position(|a| a.strip(path).is_some()) {
            return PublicApp::HttpApi(i);
        }
        if let Some(i) = self.static_sites.iter().position(|s| s.matches(path)) {
            return PublicApp::StaticSite(i);
        }
        PublicApp::NotFound
    }
}

/// Whether a request is for the identity provider: a path under `/pools/`, or a Cognito JSON
/// API (`/` with a Cognito user pool or identity pool `X-Amz-Target`).
fn is_identity_request(req: &Request<Body>) -> bool {
    let path = req.uri().path();
    let cognito = path == "/"
        && req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.starts_with("AWSCognitoIdentityProviderService.")
                    || t.starts_with("AWSCognitoIdentityService.")
            });
    path.starts_with("/pools/") || cognito
}

/// The apps of the admin listener.
pub struct Admin {
    pub state: Arc<State>,
    /// The built-in identity provider, for the identity admin API (`/admin/...`).
    pub idp: Option<Arc<IdentityProvider>>,
    /// Every WebSocket API, for listing connections by stage.
    pub websocket: Vec<Arc<WsApi>>,
    /// The dependencies `/readyz` checks, and its last check.
    pub readiness: admin::readiness::Readiness,
}

impl Admin {
    /// Answer one request of the admin listener.
    pub async fn serve(&self, req: Request<Body>) -> Response<Body> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz") => admin::health::healthz(&self.state),
            (&Method::GET, "/readyz") => self.readiness.readyz(&self.state).await,
            (&Method::GET, "/metrics") => admin::scrape::metrics(&self.state.metrics),
            (_, path) if admin::identity::owns(path) => {
                admin::identity::handle(&self.state, self.idp.as_deref(), req).await
            }
            _ => admin::management::handle(&self.state, &self.websocket, req).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
