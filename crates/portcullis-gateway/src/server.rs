//! Process wiring: building the apps from the configuration, starting the two listeners with
//! their routers, and graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_config::Config;
use portcullis_core::id::NodeId;
use portcullis_functions::{CallbackProxy, Functions, Options};
use portcullis_idp::IdentityProvider;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::abuse::{self, Limits};
use crate::admin;
use crate::authorizers::Authorizers;
use crate::cluster::{Cluster, LostConnection};
use crate::error::GatewayError;
use crate::http_api::HttpApi;
use crate::iam::Iam;
use crate::integration::{Integration, Integrations, http_client};
use crate::listener::{ListenerRules, PerClient, accept_loop, bind};
use crate::metrics::Metrics;
use crate::registry::LocalRegistry;
use crate::registry::{ConnectionHandle, ConnectionRegistry, Transport};
use crate::revocation;
use crate::router;
use crate::state::State;
use crate::static_site::Site;
use crate::websocket::WsApi;
use crate::websocket::deliver_disconnect;
use portcullis_core::close::Close;

/// A started gateway.
pub struct RunningGateway {
    pub listen_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    state: Arc<State>,
    /// `server.shutdown_grace`: the longest a shutdown waits for sessions to close.
    shutdown_grace: Duration,
    stop_accepting: CancellationToken,
    accept_tasks: TaskTracker,
    /// This node's part of `[cluster]`, if configured.
    cluster: Option<Arc<Cluster>>,
    /// The loopback proxy through which functions call `@connections` back, when
    /// `[functions]` are configured.
    callback: Option<CallbackProxy>,
    /// `[functions]`, if any: shared by the `lambda` integrations and the `function`
    /// authorizers; its processes end when the last holder lets go.
    functions: Option<Arc<Functions>>,
}

impl RunningGateway {
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    pub fn open_connections(&self) -> usize {
        self.state.registry.local_count()
    }

    /// The variables that let a function call this gateway's `@connections` API the way AWS
    /// samples do (proxy, CA files, a minted credential); empty without `[functions]`.
    pub fn function_environment(&self) -> Vec<(String, String)> {
        self.callback
            .as_ref()
            .map(CallbackProxy::environment)
            .unwrap_or_default()
    }

    /// Graceful shutdown, in this order: the node starts draining (`/healthz` and `/readyz`
    /// answer 503, new upgrades and event streams get 503, every session closes with 1001 and
    /// its `$disconnect` is delivered) while both listeners still answer, so load balancers
    /// see the node leave instead of a refused connection; once the sessions are done, the
    /// listeners stop accepting. All of it within `server.shutdown_grace`.
    pub async fn shutdown(self) {
        info!("draining: new upgrades refused, closing connections");
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        self.state.shutdown.cancel();
        self.state.tasks.close();
        let drained = tokio::time::timeout_at(deadline, self.state.tasks.wait()).await;
        info!("closing listeners");
        self.stop_accepting.cancel();
        self.accept_tasks.close();
        let stopped = tokio::time::timeout_at(deadline, self.accept_tasks.wait()).await;
        match (drained, stopped) {
            (Ok(()), Ok(())) => info!("shutdown complete"),
            _ => warn!(
                remaining = self.state.tasks.len(),
                "shutdown grace period over; dropping the rest"
            ),
        }
        // Every connection had its `$disconnect` here: no survivor must report them again.
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
        // The `$disconnect` calls are done: the function processes can go. Calls the grace
        // period cut short keep them until their own end (the function's `timeout`).
        drop(self.functions);
    }
}

/// Start serving `config`: binds both listeners and returns once they accept.
pub async fn start(config: Config) -> Result<RunningGateway, GatewayError> {
    let metrics = Arc::new(Metrics::new());
    let client = http_client()?;
    let listener = bind(config.server.listen).await?;
    let admin_listener = bind(config.server.admin_listen).await?;
    let listen_addr = listener
        .local_addr()
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| GatewayError::Internal(e.to_string()))?;

    // The built-in identity provider, when the file defines user or identity pools.
    let idp = if config.pools.is_empty() && config.identity_pools.is_empty() {
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
    let identity = idp.as_ref().map(|i| {
        portcullis_idp::router(i.clone()).merge(portcullis_idp::cognito_router(i.clone()))
    });

    // Port 0 asks for an ephemeral port: events then name the port actually bound.
    let domain_name = match config.server.domain_name.strip_suffix(":0") {
        Some(_) => listen_addr.to_string(),
        None => config.server.domain_name.clone(),
    };
    // Functions call `@connections` back through a loopback proxy that hands their requests
    // to the admin listener, signed with a credential minted here (scope `connections`, in
    // memory only).
    let callback = if config.functions.is_empty() {
        None
    } else {
        Some(
            CallbackProxy::start(admin_addr, &domain_name)
                .await
                .map_err(|e| GatewayError::Internal(e.to_string()))?,
        )
    };
    let mut management = config.management.clone();
    if let Some(callback) = &callback {
        management.credentials.push(callback.credential().clone());
    }
    // Processes start on the first invocation of each function, not here. They see the
    // callback proxy's variables and are counted in this gateway's metrics.
    let functions = if config.functions.is_empty() {
        None
    } else {
        let mut options = Options::for_config(&config).with_metrics(metrics.functions());
        if let Some(callback) = &callback {
            options.extra_env = callback.environment();
        }
        let started = Functions::start(&config.functions, options)
            .map_err(|e| GatewayError::Internal(format!("functions: {e}")))?;
        Some(Arc::new(started))
    };
    let mut integrations: Integrations = HashMap::new();
    for (name, integration) in &config.integrations {
        integrations.insert(
            name.clone(),
            Arc::new(Integration::new(
                integration,
                client.clone(),
                functions.as_ref(),
                &metrics,
            )?),
        );
    }
    let authorizers = Authorizers::new(&config, &client, idp.as_ref(), functions.as_ref())?;
    let kinds = config
        .integrations
        .iter()
        .map(|(name, i)| (name.clone(), i.kind))
        .collect();
    let mut http_apis = Vec::new();
    for api in config.http.values() {
        http_apis.push(Arc::new(HttpApi::new(
            api,
            &domain_name,
            &integrations,
            &kinds,
            &authorizers,
        )?));
    }
    http_apis.sort_by_key(|a| std::cmp::Reverse(a.base_path_len()));
    // One node keeps its connections in process; a cluster reaches the others through Redis.
    let (registry, cluster): (Arc<dyn ConnectionRegistry>, _) = match &config.cluster {
        None => (Arc::new(LocalRegistry::new(NodeId(node_id()))), None),
        Some(cluster_config) => {
            let (cluster, inbox) = Cluster::connect(cluster_config, metrics.clone()).await?;
            (cluster.clone(), Some((cluster, inbox)))
        }
    };
    let mut websocket = HashMap::new();
    for api in config.websocket.values() {
        let shared = cluster.as_ref().map(|(cluster, _)| cluster);
        websocket.insert(
            api.path.clone(),
            Arc::new(WsApi::new(
                api,
                &domain_name,
                &integrations,
                &metrics,
                shared,
            )?),
        );
    }

    let mut static_sites = config
        .static_sites
        .values()
        .map(|site| Ok((site.path.len(), Site::new(site)?)))
        .collect::<Result<Vec<_>, GatewayError>>()?;
    static_sites.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    let static_sites = static_sites.into_iter().map(|(_, site)| site).collect();

    let state = Arc::new(State {
        management: Arc::new(management),
        metrics,
        registry,
        authorizers,
        iam: Iam::new(&config, idp.as_ref()).map(Arc::new),
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
        revocation::spawn(
            &state.tasks,
            idp,
            state.registry.clone(),
            state.shutdown.clone(),
        );
    }
    let cluster = cluster.map(|(cluster, inbox)| {
        let lost = lost_connections(&state, &websocket);
        cluster.run(inbox, lost, &state.tasks, state.shutdown.clone());
        cluster
    });
    let sse = websocket
        .values()
        .filter_map(|api| Some((api.config.sse.as_ref()?.path.clone(), api.clone())))
        .collect();
    // One per-address table: sockets on accept (a trusted proxy's exempt), sessions through a
    // trusted proxy under their client's address.
    let per_client = PerClient::exempting(
        config.server.max_connections_per_ip,
        config.server.trusted_proxies.clone(),
    );
    let public = Arc::new(router::Public {
        state: state.clone(),
        websocket: websocket.clone(),
        sse,
        identity,
        http_apis,
        static_sites,
        limits: Arc::new(Limits::new(
            &config.server,
            per_client.clone(),
            state.metrics.clone(),
        )),
    });
    let admin = Arc::new(router::Admin {
        state: state.clone(),
        readiness: admin::readiness::Readiness::new(idp.clone(), cluster.clone()),
        idp,
        websocket: websocket.into_values().collect(),
    });

    let stop_accepting = CancellationToken::new();
    let accept_tasks = TaskTracker::new();
    let public_rules = ListenerRules {
        name: "public",
        // Sessions are limited by `Limits`; this bounds sockets of every kind, more loosely.
        budget: Arc::new(Semaphore::new(abuse::socket_budget(
            config.server.max_connections,
        ))),
        per_client: Some(per_client),
        header_read_timeout: config.server.header_read_timeout,
        body_read_timeout: config.server.body_read_timeout,
        event_streams: Arc::new(
            config
                .websocket
                .values()
                .filter_map(|api| Some(api.sse.as_ref()?.path.clone()))
                .collect(),
        ),
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
        event_streams: Arc::default(),
        metrics: state.metrics.clone(),
    };

    let apis = public.websocket.len();
    accept_tasks.spawn(accept_loop(
        listener,
        stop_accepting.clone(),
        public_rules,
        state.shutdown.clone(),
        move |req, peer| {
            let public = public.clone();
            async move { public.serve(req, peer).await }
        },
    ));
    accept_tasks.spawn(accept_loop(
        admin_listener,
        stop_accepting.clone(),
        admin_rules,
        // The admin listener keeps serving while sessions drain.
        CancellationToken::new(),
        move |req, _peer| {
            let admin = admin.clone();
            async move { admin.serve(req).await }
        },
    ));
    info!(listen = %listen_addr, admin = %admin_addr, apis, "portcullis listening");
    Ok(RunningGateway {
        listen_addr,
        admin_addr,
        state,
        shutdown_grace: config.server.shutdown_grace,
        stop_accepting,
        accept_tasks,
        cluster,
        callback,
        functions,
    })
}

/// How this node sends the `$disconnect` of a dead node's connection: with its API's
/// `$disconnect` integration, `disconnectReason = "node lost"`.
fn lost_connections(state: &Arc<State>, websocket: &HashMap<String, Arc<WsApi>>) -> LostConnection {
    let state = Arc::downgrade(state);
    let apis: Arc<HashMap<String, Arc<WsApi>>> = Arc::new(
        websocket
            .values()
            .map(|api| (api.name.to_string(), api.clone()))
            .collect(),
    );
    Arc::new(move |id, record| {
        let state = state.clone();
        let apis = apis.clone();
        Box::pin(async move {
            let (Some(state), Some(api)) = (state.upgrade(), apis.get(&record.api)) else {
                return;
            };
            let mut handle = ConnectionHandle::new(
                id,
                api.name.clone(),
                record.connected_at,
                record.source_ip,
                record.user_agent,
                record.principal,
                1,
            );
            if record.transport == "sse" {
                handle.transport = Transport::Sse;
            }
            info!(api = %api.name, connection_id = %id, "$disconnect for a connection of a lost node");
            let handle = Arc::new(handle);
            deliver_disconnect(
                &state,
                api,
                &handle,
                record.authorizer.as_deref(),
                &Close::NodeLost,
            )
            .await;
        })
    })
}

/// A node id for connection ids minted here: random per process (a clustered registry will
/// assign it instead).
fn node_id() -> u32 {
    rand::random::<u32>() & 0x00ff_ffff
}
