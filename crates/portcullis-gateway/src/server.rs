//! Process wiring: binding the two listeners, the accept loops (a connection budget per
//! listener, a cap per client address, header and body deadlines, HTTP/1 + HTTP/2 with
//! upgrades), request dispatch, and graceful shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
use tracing::{debug, info, warn};

use crate::auth::Authorizers;
use crate::error::GatewayError;
use crate::http_api::{self, HttpApiRt};
use crate::integration::{Integration, Integrations, http_client};
use crate::listener::{ConnectionSlot, PerClient, with_deadline};
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
            Arc::new(Integration::new(integration, client.clone(), &metrics)),
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
    let public_rules = ListenerRules {
        name: "public",
        budget: Arc::new(Semaphore::new(config.server.max_connections)),
        per_client: Some(PerClient::new(config.server.max_connections_per_ip)),
        header_read_timeout: config.server.header_read_timeout,
        body_read_timeout: config.server.body_read_timeout,
        metrics: state.metrics.clone(),
    };
    // The admin listener has a budget of its own: a flood of public clients cannot keep
    // health checks and `@connections` out.
    let admin_rules = ListenerRules {
        name: "admin",
        budget: Arc::new(Semaphore::new(config.server.admin_max_connections)),
        per_client: None,
        header_read_timeout: config.server.header_read_timeout,
        body_read_timeout: config.server.body_read_timeout,
        metrics: state.metrics.clone(),
    };

    let public_state = state.clone();
    accept_tasks.spawn(accept_loop(
        listener,
        stop_accepting.clone(),
        public_rules,
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
        admin_rules,
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

/// How one listener treats its connections.
struct ListenerRules {
    /// `public` or `admin`, for metrics and logs.
    name: &'static str,
    /// Connections open at once; beyond, the listener stops accepting until one closes.
    budget: Arc<Semaphore>,
    /// Connections open at once per client address; beyond, 503 and closed at once.
    per_client: Option<Arc<PerClient>>,
    /// A request head (and a new connection's first request) must arrive within this.
    header_read_timeout: Duration,
    /// A request body must arrive within this once reading starts; then 408.
    body_read_timeout: Duration,
    metrics: Arc<Metrics>,
}

/// The answer to a connection over its address's cap, written without reading the request.
const TOO_MANY_FROM_CLIENT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\ncontent-length: 33\r\nconnection: close\r\n\r\n\
{\"message\":\"Service Unavailable\"}";

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    rules: ListenerRules,
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
        .header_read_timeout(rules.header_read_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024);
    let builder = Arc::new(builder);
    let ListenerRules {
        name,
        budget,
        per_client,
        header_read_timeout,
        body_read_timeout,
        metrics,
    } = rules;
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = budget.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
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
        let client = match &per_client {
            None => None,
            Some(table) => match table.try_open(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    debug!(listener = name, client = %peer.ip(), "connection refused: too many from this address");
                    metrics.connection_refused(name, "per_ip");
                    // One write, straight to the fresh socket (its send buffer is empty, so it
                    // does not block); then it is closed.
                    if let Ok(mut socket) = stream.into_std() {
                        let _ = std::io::Write::write(&mut socket, TOO_MANY_FROM_CLIENT);
                    }
                    continue;
                }
            },
        };
        let slot = ConnectionSlot::new(permit, client);
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let builder = builder.clone();
        let stop = stop.clone();
        let drain = drain.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let request_seen = CancellationToken::new();
            let seen = request_seen.clone();
            let conn_metrics = metrics.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                seen.cancel();
                let handler = handler.clone();
                let metrics = conn_metrics.clone();
                let version = req.version();
                let expired = Arc::new(AtomicBool::new(false));
                let body_expired = expired.clone();
                let mut req = req.map(|b| with_deadline(b, body_read_timeout, body_expired));
                req.extensions_mut().insert(slot.clone());
                async move {
                    let response = handler(req, peer).await;
                    if expired.load(Ordering::Acquire) {
                        debug!(listener = name, client = %peer.ip(), "request body not received in time");
                        metrics.error("body_read_timeout");
                        return Ok::<_, Infallible>(request_timeout(version));
                    }
                    Ok(response)
                }
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            // Until its first request head arrives, nothing else bounds a new connection (the
            // protocol sniffing before HTTP/1 or HTTP/2 has no timer of its own).
            let first_request = async {
                tokio::time::sleep(header_read_timeout).await;
                if request_seen.is_cancelled() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = &mut conn => {}
                _ = async { stop.cancelled().await; drain.cancelled().await } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
                _ = first_request => {
                    debug!(listener = name, client = %peer.ip(), "no request head in time; connection closed");
                    metrics.error("header_read_timeout");
                }
            }
        });
    }
}

/// 408 for a request whose body did not arrive in time; an HTTP/1 connection is closed after
/// it (the rest of the body would be read as the next request).
fn request_timeout(version: http::Version) -> Response<Body> {
    let mut response = status(
        StatusCode::REQUEST_TIMEOUT,
        "{\"message\":\"Request Timeout\"}",
    );
    if version < http::Version::HTTP_2 {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
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
