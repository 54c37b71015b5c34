//! Process wiring: binding the two listeners, the accept loops (connection limit, header
//! timeouts, HTTP/1 + HTTP/2 with upgrades), request dispatch, and graceful shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use portcullis_config::Config;
use portcullis_core::id::NodeId;
use portcullis_idp::IdentityProvider;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::auth::Authorizers;
use crate::error::GatewayError;
use crate::http_api::{self, HttpApiRt};
use crate::integration::{Integration, Integrations, http_client};
use crate::metrics::Metrics;
use crate::registry::{ConnectionRegistry, LocalRegistry};
use crate::websocket::{WsApi, handle_upgrade};
use crate::{admin, identity_admin, management};

/// Everything a request handler needs, shared by all tasks.
pub struct State {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<LocalRegistry>,
    /// WebSocket APIs by path.
    pub apis: HashMap<String, Arc<WsApi>>,
    /// HTTP APIs, longest base path first.
    pub http_apis: Vec<Arc<HttpApiRt>>,
    /// OAuth2/OIDC endpoints of the built-in pools (`/pools/...`).
    pub idp_router: Option<axum::Router>,
    /// The built-in identity provider, for the admin API (`/admin/...`).
    pub idp: Option<Arc<IdentityProvider>>,
    pub authorizers: Authorizers,
    /// `[static.*]` sites, longest prefix first (a site at `/` comes last).
    pub static_sites: Vec<crate::static_files::Site>,
    /// Cancelled when the gateway starts draining: every session closes with 1001.
    pub shutdown: CancellationToken,
    /// Sessions and `$disconnect` deliveries, awaited (bounded) on shutdown.
    pub tasks: TaskTracker,
    pub listen_port: u16,
    pub scheme: String,
}

/// A started gateway.
pub struct RunningGateway {
    pub listen_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    state: Arc<State>,
    stop_accepting: CancellationToken,
    accept_tasks: TaskTracker,
}

impl RunningGateway {
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    pub fn open_connections(&self) -> usize {
        self.state.registry.local_count()
    }

    /// Graceful shutdown: stop accepting, close every connection with 1001, deliver each
    /// `$disconnect`, wait at most `server.shutdown_grace` for all of it.
    pub async fn shutdown(self) {
        info!("shutting down: closing listeners and connections");
        self.stop_accepting.cancel();
        self.state.shutdown.cancel();
        self.accept_tasks.close();
        self.state.tasks.close();
        let grace = self.state.config.server.shutdown_grace;
        let drained = tokio::time::timeout(grace, async {
            self.state.tasks.wait().await;
            self.accept_tasks.wait().await;
        })
        .await;
        match drained {
            Ok(()) => info!("shutdown complete"),
            Err(_) => warn!(
                remaining = self.state.tasks.len(),
                "shutdown grace period over; dropping the rest"
            ),
        }
    }
}

/// Start serving `config`: binds both listeners and returns once they accept.
pub async fn start(config: Config) -> Result<RunningGateway, GatewayError> {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let client = http_client()?;
    let mut integrations: Integrations = HashMap::new();
    for (name, integration) in &config.integrations {
        integrations.insert(
            name.clone(),
            Arc::new(Integration::new(integration, client.clone(), &metrics)?),
        );
    }
    let listener = bind(config.server.listen).await?;
    let admin_listener = bind(config.server.admin_listen).await?;
    let listen_addr = listener
        .local_addr()
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| GatewayError::Internal(e.to_string()))?;

    // The built-in identity provider, when the file defines pools.
    let idp = if config.pools.is_empty() {
        None
    } else {
        Some(
            IdentityProvider::open(&config)
                .await
                .map_err(|e| GatewayError::Internal(format!("identity provider: {e}")))?,
        )
    };
    // The identity provider's endpoints: OAuth2/OIDC under /pools/, and the Cognito JSON API
    // at POST / (selected by X-Amz-Target).
    let idp_router = idp.as_ref().map(|i| {
        portcullis_idp::router(i.clone()).merge(portcullis_idp::cognito_router(i.clone()))
    });
    let authorizers = Authorizers::new(&config, &client, idp.as_ref())?;

    // Port 0 asks for an ephemeral port: events then name the port actually bound.
    let domain_name = match config.server.domain_name.strip_suffix(":0") {
        Some(_) => listen_addr.to_string(),
        None => config.server.domain_name.clone(),
    };
    let kinds = config
        .integrations
        .iter()
        .map(|(name, i)| (name.clone(), i.kind))
        .collect();
    let mut http_apis = Vec::new();
    for api in config.http.values() {
        http_apis.push(Arc::new(HttpApiRt::new(
            api,
            &domain_name,
            &integrations,
            &kinds,
            &authorizers,
        )?));
    }
    http_apis.sort_by_key(|a| std::cmp::Reverse(a.base_path_len()));
    let mut apis = HashMap::new();
    for api in config.websocket.values() {
        apis.insert(
            api.path.clone(),
            Arc::new(WsApi::new(api, &domain_name, &integrations, &metrics)?),
        );
    }

    let mut static_sites = config
        .static_sites
        .values()
        .map(|site| Ok((site.path.len(), crate::static_files::Site::new(site)?)))
        .collect::<Result<Vec<_>, GatewayError>>()?;
    static_sites.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    let static_sites = static_sites.into_iter().map(|(_, site)| site).collect();

    let state = Arc::new(State {
        config: config.clone(),
        metrics,
        registry: Arc::new(LocalRegistry::new(NodeId(node_id()))),
        apis,
        http_apis,
        idp_router,
        idp: idp.clone(),
        authorizers,
        static_sites,
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        listen_port: listen_addr.port(),
        scheme: if config.server.tls.is_some() {
            "https".into()
        } else {
            "http".into()
        },
    });
    // Revocations by the built-in identity provider close the live connections they cover.
    if let Some(idp) = &idp {
        let mut revocations = idp.subscribe_revocations();
        let watcher = state.clone();
        state.tasks.spawn(async move {
            loop {
                let revocation = tokio::select! {
                    _ = watcher.shutdown.cancelled() => return,
                    r = revocations.recv() => r,
                };
                match revocation {
                    Ok(revocation) => close_revoked(&watcher, &revocation).await,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        warn!(missed, "revocation events were missed; affected tokens are refused on their next use");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        // Revocations other processes wrote to the store (the CLI, other nodes) come from its
        // revocation log; the provider announces them like its own, to the watcher above.
        state
            .tasks
            .spawn(poll_revocations(state.clone(), idp.clone()));
    }
    let stop_accepting = CancellationToken::new();
    let accept_tasks = TaskTracker::new();
    let connection_limit = Arc::new(Semaphore::new(config.server.max_connections));

    let public_state = state.clone();
    accept_tasks.spawn(accept_loop(
        listener,
        stop_accepting.clone(),
        connection_limit.clone(),
        state.shutdown.clone(),
        move |req, peer| {
            let state = public_state.clone();
            async move { public(state, req, peer).await }
        },
    ));
    let admin_state = state.clone();
    accept_tasks.spawn(accept_loop(
        admin_listener,
        stop_accepting.clone(),
        connection_limit,
        // The admin listener keeps serving while sessions drain.
        CancellationToken::new(),
        move |req, _peer| {
            let state = admin_state.clone();
            async move { admin_api(state, req).await }
        },
    ));
    info!(listen = %listen_addr, admin = %admin_addr, apis = state.apis.len(), "portcullis listening");
    Ok(RunningGateway {
        listen_addr,
        admin_addr,
        state,
        stop_accepting,
        accept_tasks,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|source| GatewayError::Bind { addr, source })?;
    socket
        .set_reuseaddr(true)
        .map_err(|source| GatewayError::Bind { addr, source })?;
    socket
        .bind(addr)
        .map_err(|source| GatewayError::Bind { addr, source })?;
    socket
        .listen(4096)
        .map_err(|source| GatewayError::Bind { addr, source })
}

/// A node id for connection ids minted here: random per process (a clustered registry will
/// assign it instead).
fn node_id() -> u32 {
    rand::random::<u32>() & 0x00ff_ffff
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    limit: Arc<Semaphore>,
    drain: CancellationToken,
    handler: F,
) where
    F: Fn(Request<Body>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024);
    let builder = Arc::new(builder);
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let builder = builder.clone();
        let stop = stop.clone();
        let drain = drain.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req.map(Body::new), peer).await) }
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = &mut conn => {}
                _ = async { stop.cancelled().await; drain.cancelled().await } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// The public listener: WebSocket APIs (later: HTTP APIs and identity endpoints).
async fn public(state: Arc<State>, req: Request<Body>, peer: SocketAddr) -> Response<Body> {
    if let Some(api) = state.apis.get(req.uri().path()).cloned() {
        if state.shutdown.is_cancelled() {
            return status(
                StatusCode::SERVICE_UNAVAILABLE,
                "{\"message\":\"Service Unavailable\"}",
            );
        }
        return handle_upgrade(state, api, req, peer).await;
    }
    let path = req.uri().path();
    let cognito = path == "/"
        && req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("AWSCognitoIdentityProviderService."));
    if (path.starts_with("/pools/") || cognito)
        && let Some(router) = state.idp_router.clone()
    {
        let mut req = req;
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        return match tower::ServiceExt::oneshot(router, req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    if let Some(api) = state
        .http_apis
        .iter()
        .find(|a| a.strip(path).is_some())
        .cloned()
    {
        return http_api::handle(state, api, req, peer).await;
    }
    if let Some(site) = state.static_sites.iter().position(|s| s.matches(path)) {
        return state.static_sites[site].serve(req).await;
    }
    status(StatusCode::NOT_FOUND, "{\"message\":\"Not Found\"}")
}

async fn admin_api(state: Arc<State>, req: Request<Body>) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/healthz") => admin::healthz(&state),
        (&http::Method::GET, "/metrics") => admin::metrics(&state),
        (_, path) if identity_admin::owns(path) => identity_admin::handle(state, req).await,
        _ => management::handle(state, req).await,
    }
}

/// Reads the identity store's revocation log every `revocation_poll_interval` (at once again
/// while batches come back full) until the gateway drains.
async fn poll_revocations(state: Arc<State>, idp: Arc<IdentityProvider>) {
    let interval = idp.options().revocation_poll_interval;
    let mut failing = false;
    loop {
        let polled = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            r = idp.poll_revocation_events() => r,
        };
        let more = match polled {
            Ok(poll) => {
                if failing {
                    info!("revocation log readable again");
                    failing = false;
                }
                if poll.announced > 0 {
                    info!(
                        revocations = poll.announced,
                        "revocations made by another process"
                    );
                }
                poll.more
            }
            Err(e) => {
                if !failing {
                    warn!(
                        error = %e,
                        "cannot read the revocation log; revocations made by other processes \
                         close live connections once it is readable"
                    );
                    failing = true;
                }
                false
            }
        };
        if !more {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// Close (1008, then `$disconnect`) every local connection whose session `revocation` covers.
async fn close_revoked(state: &State, revocation: &portcullis_idp::Revocation) {
    for handle in state.registry.all() {
        if handle
            .session
            .as_ref()
            .is_some_and(|s| s.revoked_by(revocation))
        {
            info!(connection_id = %handle.id, "closing a connection whose token was revoked");
            let _ = state
                .registry
                .close(&handle.id, 1008, "Token revoked")
                .await;
        }
    }
}

fn status(code: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
