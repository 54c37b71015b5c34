//! WebSocket APIs: the upgrade (`$connect`), the per-connection session loop and the calls
//! to the `$disconnect`, `$default` and custom route integrations; the admission and the
//! deadlines an API's SSE streams share with its WebSockets (`admission`, `timers`).

pub(crate) mod admission;
mod iam;
mod session;
pub(crate) mod timers;
mod upgrade;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use portcullis_config::WebSocketApi;
use portcullis_core::selection::SelectionExpression;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::cluster::Cluster;
use crate::error::GatewayError;
use crate::integration::{Integration, Integrations};
use crate::metrics::{ApiLabel, Metrics};
use crate::replay::ReplayStore;

pub use session::deliver_disconnect;
pub use upgrade::handle_upgrade;

/// A route of a WebSocket API, resolved.
pub struct Route {
    pub key: String,
    pub integration: Option<Arc<Integration>>,
    /// Two-way: the result's body is sent back to the client.
    pub response: bool,
    /// Checked for every message (and on `$connect` for the `$connect` route).
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
}

/// Per-API metric handles, resolved once so the hot path does no label lookups.
pub struct ApiMetrics {
    pub open: Gauge<i64, AtomicI64>,
    pub connects: Counter<u64, AtomicU64>,
    pub messages_in: Counter<u64, AtomicU64>,
    pub messages_out: Counter<u64, AtomicU64>,
    /// Messages dropped for exceeding `message_rate`.
    pub messages_throttled: Counter<u64, AtomicU64>,
}

/// A WebSocket API ready to serve.
pub struct WsApi {
    pub name: Arc<str>,
    pub config: WebSocketApi,
    pub selection: SelectionExpression,
    pub routes: HashMap<String, Route>,
    pub socket_config: WebSocketConfig,
    pub domain_name: String,
    pub metrics: ApiMetrics,
    /// With `sse`: the log of `@users` pushes SSE streams replay from.
    pub replay: Option<Arc<ReplayStore>>,
    /// A configuration reload removed this API: a connection that opens on it anyway (its
    /// upgrade was under way during the reload) is closed at once.
    retired: AtomicBool,
}

/// Per-connection read buffer: small on purpose (the library default is 128 KiB per socket).
const READ_BUFFER_BYTES: usize = 4096;
/// Frames are gathered up to this many bytes before they are written: a burst of queued
/// pushes (written by the session, then flushed once) reaches the socket in few writes. The
/// buffer is allocated only once something is written.
const WRITE_BUFFER_BYTES: usize = 4096;

impl WsApi {
    pub fn new(
        config: &WebSocketApi,
        domain_name: &str,
        integrations: &Integrations,
        metrics: &Metrics,
        cluster: Option<&Arc<Cluster>>,
    ) -> Result<Self, GatewayError> {
        let selection = config.route_selection_expression.clone();
        let mut routes = HashMap::new();
        for (key, route) in &config.routes {
            let integration = match &route.integration {
                Some(name) => Some(integrations.get(name).cloned().ok_or_else(|| {
                    GatewayError::Internal(format!(
                        "websocket.{}.routes.{key}: no integration named {name:?}",
                        config.name
                    ))
                })?),
                None => None,
            };
            routes.insert(
                key.clone(),
                Route {
                    key: key.clone(),
                    integration,
                    response: route.response,
                    scopes: route.scopes.clone(),
                    groups: route.groups.clone(),
                },
            );
        }
        // Largest outbound frame we may queue: a full message plus framing.
        let max_write_buffer = config.max_message_bytes.saturating_mul(2).max(64 * 1024);
        let socket_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(WRITE_BUFFER_BYTES)
            .max_write_buffer_size(max_write_buffer)
            .max_frame_size(Some(config.max_frame_bytes))
            .max_message_size(Some(config.max_message_bytes));
        let label = ApiLabel {
            api: config.name.clone(),
        };
        let api_metrics = ApiMetrics {
            open: metrics.connections_open.get_or_create(&label).clone(),
            connects: metrics.connects.get_or_create(&label).clone(),
            messages_in: metrics.messages_in.get_or_create(&label).clone(),
            messages_out: metrics.messages_out.get_or_create(&label).clone(),
            messages_throttled: metrics.messages_throttled.get_or_create(&label).clone(),
        };
        Ok(WsApi {
            name: Arc::from(config.name.as_str()),
            config: config.clone(),
            selection,
            routes,
            socket_config,
            domain_name: domain_name.to_owned(),
            metrics: api_metrics,
            replay: config
                .sse
                .as_ref()
                .map(|sse| Arc::new(ReplayStore::new(&config.name, sse, metrics, cluster))),
            retired: AtomicBool::new(false),
        })
    }

    /// Mark the API removed by a reload; done before its open connections are listed and
    /// closed, so a connection registered after that listing sees the mark.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Whether a reload removed this API (checked once a connection is registered).
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// The route for a message whose selection expression evaluated to `key`
    /// (`None`: the body is not JSON). `$connect`/`$disconnect` are never message routes.
    pub fn message_route(&self, key: Option<&str>) -> Option<&Route> {
        key.filter(|k| *k != "$connect" && *k != "$disconnect")
            .and_then(|k| self.routes.get(k))
            .or_else(|| self.routes.get("$default"))
    }
}
