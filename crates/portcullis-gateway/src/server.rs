//! Process wiring: the long-lived parts (listeners, registry and cluster, metrics, functions,
//! the callback proxy, shutdown), the apps built from the configuration (`apps`, replaced by a
//! reload, see `reload`), and graceful shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use portcullis_config::Config;
use portcullis_core::id::NodeId;
use portcullis_functions::{CallbackProxy, Functions, Options};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::abuse::{self, Counts};
use crate::apps::{Apps, Base};
use crate::cluster::{Cluster, LostConnection};
use crate::error::GatewayError;
use crate::integration::http_client;
use crate::listener::{ListenerRules, accept_loop, bind, bind_many, tls};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::registry::LocalRegistry;
use crate::registry::{ConnectionHandle, ConnectionRegistry, Transport};
use crate::reload::{self, Changes, Reloader};
use crate::upstream::{PoolSettings, Upstreams};
use crate::websocket::deliver_disconnect;
use crate::workers::{self, Workers};
use portcullis_core::close::Close;

/// A started gateway.
pub struct RunningGateway {
    pub listen_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The running configuration's apps and what replaces them.
    reloader: Arc<Reloader>,
    stop_accepting: CancellationToken,
    accept_tasks: TaskTracker,
    /// This node's part of `[cluster]`, if configured.
    cluster: Option<Arc<Cluster>>,
    /// The loopback proxy through which functions call `@connections` back, when
    /// `[functions]` are configured.
    callback: Option<CallbackProxy>,
    /// The threads serving the public listener; dropped last.
    workers: Workers,
}

impl RunningGateway {
    pub fn metrics(&self) -> Arc<Metrics> {
        self.reloader.base().metrics.clone()
    }

    pub fn open_connections(&self) -> usize {
        self.reloader.base().registry.local_count()
    }

    /// The variables that let a function call this gateway's `@connections` API the way AWS
    /// samples do (proxy, CA files, a minted credential); empty without `[functions]`.
    pub fn function_environment(&self) -> Vec<(String, String)> {
        self.callback
            .as_ref()
            .map(CallbackProxy::environment)
            .unwrap_or_default()
    }

    /// Apply `config` to new connections and requests (see the `reload` module): open
    /// connections keep their API, those of a removed WebSocket API close with 1001. An
    /// error leaves the running configuration as it was.
    pub async fn reload(&self, config: Config) -> Result<Changes, GatewayError> {
        self.reloader.reload(config).await
    }

    /// Compile the file at `path` (as `portcullis check` does) and [`reload`](Self::reload)
    /// it; a file with errors is refused with its diagnostics logged.
    pub async fn reload_file(&self, path: &Path) -> Result<Changes, GatewayError> {
        self.reloader.reload_file(path).await
    }

    /// Reload whenever the file at `path` changes (its directory is watched, so a file
    /// replaced by a rename counts), until the gateway shuts down.
    pub fn watch_config(&self, path: &Path) -> Result<(), GatewayError> {
        reload::watch::spawn(
            Arc::downgrade(&self.reloader),
            path,
            self.reloader.base().shutdown.clone(),
        )
    }

    /// Graceful shutdown, in this order: the node starts draining (`/healthz` and `/readyz`
    /// answer 503, new upgrades and event streams get 503, every session closes with 1001 and
    /// its `$disconnect` is delivered) while both listeners still answer, so load balancers
    /// see the node leave instead of a refused connection; once the sessions are done, the
    /// listeners stop accepting. All of it within `server.shutdown_grace`.
    pub async fn shutdown(self) {
        info!("draining: new upgrades refused, closing connections");
        let base = self.reloader.base();
        let deadline = tokio::time::Instant::now() + self.reloader.shutdown_grace().await;
        base.shutdown.cancel();
        base.tasks.close();
        let drained = tokio::time::timeout_at(deadline, base.tasks.wait()).await;
        info!("closing listeners");
        self.stop_accepting.cancel();
        self.accept_tasks.close();
        let stopped = tokio::time::timeout_at(deadline, self.accept_tasks.wait()).await;
        match (drained, stopped) {
            (Ok(()), Ok(())) => info!("shutdown complete"),
            _ => warn!(
                remaining = base.tasks.len(),
                "shutdown grace period over; dropping the rest"
            ),
        }
        // Every connection had its `$disconnect` here: no survivor must report them again.
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
        // The `$disconnect` calls are done: the function processes can go (the apps hold
        // them too, and go with the gateway). Calls the grace period cut short keep them
        // until their own end (the function's `timeout`).
        drop(self.reloader);
        // Last: tasks still running on the workers (those the grace period cut short) stop.
        drop(self.workers);
    }
}

/// Start serving `config`: binds both listeners and returns once they accept.
pub async fn start(config: Config) -> Result<RunningGateway, GatewayError> {
    let metrics = Arc::new(Metrics::new());
    let client = http_client(
        config.server.ca_file.as_deref(),
        config.server.upstream_idle_timeout,
        config.server.upstream_max_idle_per_host,
    )?;
    let workers = Workers::start(workers::count(config.server.workers))?;
    let upstreams = Upstreams::new(
        config.server.ca_file.as_deref(),
        PoolSettings {
            idle_timeout: config.server.upstream_idle_timeout,
            max_idle: config.server.upstream_max_idle_per_host,
            shards: workers.len() + 1,
        },
    )?;
    let listeners = bind_many(config.server.listen, workers.len())?;
    let admin_listener = bind(config.server.admin_listen).await?;
    let listen_addr = listeners
        .first()
        .ok_or_else(|| GatewayError::Internal("no worker".to_owned()))?
        .local_addr()
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| GatewayError::Internal(e.to_string()))?;

    // Port 0 asks for an ephemeral port: events then name the port actually bound.
    let domain_name = match config.server.domain_name.strip_suffix(":0") {
        Some(_) => listen_addr.to_string(),
        None => config.server.domain_name.clone(),
    };
    let stop_accepting = CancellationToken::new();
    let accept_tasks = TaskTracker::new();
    let public_tls = tls::listener_acceptor(
        "public",
        config.server.tls.as_ref(),
        &metrics,
        &accept_tasks,
        &stop_accepting,
    )?;
    let admin_tls = tls::listener_acceptor(
        "admin",
        config.server.admin_tls.as_ref(),
        &metrics,
        &accept_tasks,
        &stop_accepting,
    )?;
    // Functions call `@connections` back through a loopback proxy that hands their requests
    // to the admin listener, signed with a credential minted here (scope `connections`, in
    // memory only). With `admin_tls` the proxy speaks TLS to the admin listener and trusts
    // exactly the certificate it serves.
    let callback = if config.functions.is_empty() {
        None
    } else {
        let admin_client = match &admin_tls {
            Some((_, current)) => Some(tls::own_admin_client_config(current.clone())?),
            None => None,
        };
        Some(
            CallbackProxy::start(admin_addr, &domain_name, admin_client)
                .await
                .map_err(|e| GatewayError::Internal(e.to_string()))?,
        )
    };
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
    // One node keeps its connections in process; a cluster reaches the others through Redis.
    let (registry, cluster): (Arc<dyn ConnectionRegistry>, _) = match &config.cluster {
        None => (Arc::new(LocalRegistry::new(NodeId(node_id()))), None),
        Some(cluster_config) => {
            let (cluster, inbox) = Cluster::connect(cluster_config, metrics.clone()).await?;
            (cluster.clone(), Some((cluster, inbox)))
        }
    };
    let base = Base {
        client,
        upstreams,
        metrics: metrics.clone(),
        registry,
        cluster: cluster.as_ref().map(|(cluster, _)| cluster.clone()),
        functions,
        callback_credential: callback.as_ref().map(|c| c.credential().clone()),
        listen_addr,
        tls: config.server.tls.is_some(),
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        limits: Counts::new(&config.server),
    };
    let public_rules = ListenerRules {
        name: "public",
        // Sessions are limited by `abuse::Limits`; this bounds sockets of every kind, more
        // loosely. One per-address table for sockets on accept (a trusted proxy's exempt) and
        // for sessions through a trusted proxy, under their client's address.
        budget: Arc::new(Semaphore::new(abuse::socket_budget(
            config.server.max_connections,
        ))),
        per_client: Some(base.limits.per_client()),
        header_read_timeout: config.server.header_read_timeout,
        body_read_timeout: config.server.body_read_timeout,
        event_streams: Live::default(),
        metrics: metrics.clone(),
        tls: public_tls.map(|(acceptor, _)| acceptor),
    };
    // The admin listener has a budget of its own: a flood of public clients cannot keep
    // health checks and `@connections` out.
    let admin_rules = ListenerRules {
        name: "admin",
        budget: Arc::new(Semaphore::new(config.server.admin_max_connections)),
        per_client: None,
        header_read_timeout: config.server.header_read_timeout,
        body_read_timeout: config.server.body_read_timeout,
        event_streams: Live::default(),
        metrics: metrics.clone(),
        tls: admin_tls.map(|(acceptor, _)| acceptor),
    };
    let reloader = Reloader::start(config, base).await?;
    let public_rules = ListenerRules {
        event_streams: reloader.event_streams().clone(),
        ..public_rules
    };
    let base = reloader.base();
    let cluster = cluster.map(|(cluster, inbox)| {
        let lost = lost_connections(reloader.apps().clone());
        cluster.run(inbox, lost, &base.tasks, base.shutdown.clone());
        cluster
    });

    let apis = reloader.apps().load().websocket.len();
    let public_apps = reloader.apps().clone();
    // Each worker accepts on its own socket and serves what it accepted.
    let mut listeners = listeners.into_iter().map(Some).collect::<Vec<_>>();
    let public_rules = Arc::new(public_rules);
    workers.spawn_each(|index| {
        let listener = listeners.get_mut(index).and_then(Option::take);
        let rules = public_rules.clone();
        let public_apps = public_apps.clone();
        let stop = stop_accepting.clone();
        let drain = base.shutdown.clone();
        accept_tasks.track_future(async move {
            let Some(listener) = listener else { return };
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(e) => return warn!(error = %e, "a worker cannot accept"),
            };
            accept_loop(
                listener,
                stop,
                rules.as_ref().clone(),
                drain,
                move |req, peer| {
                    // Each request is served by the apps current when it arrives.
                    let public = public_apps.load().public.clone();
                    async move { public.serve(req, peer).await }
                },
            )
            .await;
        })
    });
    let admin_apps = reloader.apps().clone();
    accept_tasks.spawn(accept_loop(
        admin_listener,
        stop_accepting.clone(),
        admin_rules,
        // The admin listener keeps serving while sessions drain.
        CancellationToken::new(),
        move |req, _peer| {
            let admin = admin_apps.load().admin.clone();
            async move { admin.serve(req).await }
        },
    ));
    info!(listen = %listen_addr, admin = %admin_addr, apis, "portcullis listening");
    Ok(RunningGateway {
        listen_addr,
        admin_addr,
        reloader,
        stop_accepting,
        accept_tasks,
        cluster,
        callback,
        workers,
    })
}

/// How this node sends the `$disconnect` of a dead node's connection: with its API's
/// `$disconnect` integration, `disconnectReason = "node lost"`.
/// The API is looked up in the apps current when the loss is noticed.
fn lost_connections(apps: Live<Apps>) -> LostConnection {
    Arc::new(move |id, record| {
        let apps = apps.load();
        Box::pin(async move {
            let Some(api) = apps.websocket.get(&record.api) else {
                return;
            };
            let state = &apps.state;
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
                state,
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
