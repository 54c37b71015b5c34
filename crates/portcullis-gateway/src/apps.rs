//! What a configuration builds and a reload replaces: the integrations, authorizers,
//! WebSocket APIs, HTTP APIs, static sites, the identity endpoints, and the routers of both
//! listeners over them, with the [`State`] their handlers share. The long-lived parts a
//! reload keeps (listeners, registry and cluster, metrics, functions, the shutdown signal)
//! come in as a [`Base`].
//!
//! A request takes the current [`Apps`] once and keeps it: a WebSocket session or an event
//! stream holds the `Arc<WsApi>` and the `Arc<State>` it connected with until it ends, so
//! everything it reads per message (routes, integrations, the API's limits, the authorizer's
//! answer) stays the one it was admitted under.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use portcullis_config::{Config, Credential};
use portcullis_functions::Functions;
use portcullis_idp::IdentityProvider;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::abuse;
use crate::admin;
use crate::authorizers::Authorizers;
use crate::cluster::Cluster;
use crate::error::GatewayError;
use crate::http_api::HttpApi;
use crate::iam::Iam;
use crate::integration::{Integration, Integrations};
use crate::metrics::Metrics;
use crate::registry::ConnectionRegistry;
use crate::router;
use crate::state::State;
use crate::static_site::Site;
use crate::upstream::Upstreams;
use crate::websocket::WsApi;

/// What the gateway keeps for its whole life, from which each configuration's apps are built.
pub struct Base {
    /// The client of authorizer webhooks and JWKS fetches.
    pub client: reqwest::Client,
    /// Kept-alive connections to integrations' backends, by origin.
    pub upstreams: Arc<Upstreams>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<dyn ConnectionRegistry>,
    pub cluster: Option<Arc<Cluster>>,
    pub functions: Option<Arc<Functions>>,
    /// The credential the functions' callback proxy signs with, accepted by the management
    /// API next to `[management]`'s.
    pub callback_credential: Option<Credential>,
    pub listen_addr: SocketAddr,
    /// Whether the public listener was started with TLS (a change needs a restart).
    pub tls: bool,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    /// The session limits' counts, kept across reloads.
    pub limits: abuse::Counts,
}

/// The apps of one configuration.
pub struct Apps {
    pub state: Arc<State>,
    pub public: Arc<router::Public>,
    pub admin: Arc<router::Admin>,
    /// WebSocket APIs by name (connections and the registry name them so).
    pub websocket: HashMap<String, Arc<WsApi>>,
    /// The paths of the event streams (`sse.path`), for the public listener.
    pub event_streams: HashSet<String>,
    pub idp: Option<Arc<IdentityProvider>>,
}

/// Build the apps of `config` over `base`. `idp` is the identity provider of this
/// configuration (opened or reused by the caller). `previous`: the apps being replaced, whose
/// replay logs an unchanged event stream keeps.
pub fn build(
    config: &Config,
    base: &Base,
    idp: Option<Arc<IdentityProvider>>,
    previous: Option<&Apps>,
) -> Result<Apps, GatewayError> {
    let metrics = &base.metrics;
    // The identity provider's endpoints: OAuth2/OIDC under /pools/, and the Cognito JSON API
    // at POST / (selected by X-Amz-Target; its Admin operations signed by the `[management]`
    // credentials of this configuration).
    let identity = idp.as_ref().map(|i| {
        let options = portcullis_idp::CognitoOptions {
            management: Some(config.management.clone()),
            ..portcullis_idp::CognitoOptions::default()
        };
        portcullis_idp::router(i.clone())
            .merge(portcullis_idp::cognito_router_with(i.clone(), options))
    });
    // Port 0 asks for an ephemeral port: events then name the port actually bound.
    let domain_name = match config.server.domain_name.strip_suffix(":0") {
        Some(_) => base.listen_addr.to_string(),
        None => config.server.domain_name.clone(),
    };
    let mut management = config.management.clone();
    if let Some(credential) = &base.callback_credential {
        management.credentials.push(credential.clone());
    }
    let mut integrations: Integrations = HashMap::new();
    for (name, integration) in &config.integrations {
        integrations.insert(
            name.clone(),
            Arc::new(Integration::new(
                integration,
                &base.upstreams,
                base.functions.as_ref(),
                metrics,
            )?),
        );
    }
    let authorizers =
        Authorizers::new(config, &base.client, idp.as_ref(), base.functions.as_ref())?;
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
    let mut websocket = HashMap::new();
    for api in config.websocket.values() {
        let mut built = WsApi::new(
            api,
            &domain_name,
            &integrations,
            metrics,
            base.cluster.as_ref(),
        )?;
        // An event stream whose settings did not change keeps its replay log: a client that
        // reconnects with `Last-Event-ID` after a reload still gets what it missed.
        if let Some(old) = previous.and_then(|p| p.websocket.get(&api.name))
            && same_stream(old, api)
        {
            built.replay = old.replay.clone();
        }
        websocket.insert(api.name.clone(), Arc::new(built));
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
        metrics: metrics.clone(),
        registry: base.registry.clone(),
        authorizers,
        iam: Iam::new(config, idp.as_ref()).map(Arc::new),
        shutdown: base.shutdown.clone(),
        tasks: base.tasks.clone(),
        listen_port: base.listen_addr.port(),
        scheme: if base.tls { "https" } else { "http" }.into(),
    });
    let by_path = websocket
        .values()
        .map(|api| (api.config.path.clone(), api.clone()))
        .collect();
    let sse: HashMap<String, Arc<WsApi>> = websocket
        .values()
        .filter_map(|api| Some((api.config.sse.as_ref()?.path.clone(), api.clone())))
        .collect();
    let event_streams = sse.keys().cloned().collect();
    let public = Arc::new(router::Public {
        state: state.clone(),
        websocket: by_path,
        sse,
        identity,
        http_apis,
        static_sites,
        limits: Arc::new(abuse::Limits::new(
            &config.server,
            &base.limits,
            metrics.clone(),
        )),
    });
    let admin = Arc::new(router::Admin {
        state: state.clone(),
        readiness: admin::readiness::Readiness::new(idp.clone(), base.cluster.clone()),
        idp: idp.clone(),
        websocket: websocket.values().cloned().collect(),
    });
    Ok(Apps {
        state,
        public,
        admin,
        websocket,
        event_streams,
        idp,
    })
}

/// Whether `api` has the same event stream as the running `old` (both with `sse`, same
/// settings).
fn same_stream(old: &WsApi, api: &portcullis_config::WebSocketApi) -> bool {
    old.replay.is_some()
        && api.sse.is_some()
        && format!("{:?}", old.config.sse) == format!("{:?}", api.sse)
}
