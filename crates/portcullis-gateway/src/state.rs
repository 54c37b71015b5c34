//! What every part of the gateway shares while it runs: the connection registry, the metrics,
//! the shutdown signal and the few configuration values the handlers read. The apps (WebSocket
//! APIs, HTTP APIs, static sites, the identity endpoints, the admin API) keep their own state
//! with the router that serves them; nothing here knows about them.
//!
//! One `State` per configuration: a reload builds a new one with the new authorizers, IAM
//! roles and `[management]`, around the same registry, metrics, shutdown signal and task
//! tracker (see `apps`). A session keeps the `State` it connected with.

use std::sync::Arc;

use portcullis_config::Management;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::authorizers::Authorizers;
use crate::iam::Iam;
use crate::metrics::Metrics;
use crate::registry::ConnectionRegistry;

/// Shared by all tasks of one gateway.
pub struct State {
    /// `[management]`: the region and account id events and ARNs name, and the credentials
    /// the signed admin APIs accept.
    pub management: Arc<Management>,
    pub metrics: Arc<Metrics>,
    /// This node's connections, and in a cluster the others' through Redis.
    pub registry: Arc<dyn ConnectionRegistry>,
    /// Every configured authorizer by name (a WebSocket API names its own at `$connect`).
    pub authorizers: Authorizers,
    /// Identity-pool credentials and the roles' policies, for `AWS_IAM` APIs and routes.
    pub iam: Option<Arc<Iam>>,
    /// Cancelled when the gateway starts draining: every session closes with 1001.
    pub shutdown: CancellationToken,
    /// Sessions and `$disconnect` deliveries, awaited (bounded) on shutdown.
    pub tasks: TaskTracker,
    /// The public listener's port, for the `X-Forwarded-Port` of events.
    pub listen_port: u16,
    /// `https` when the public listener has TLS, else `http`.
    pub scheme: String,
}

#[cfg(test)]
impl State {
    /// A state for unit tests: no authorizers, an empty registry, the default region.
    pub fn for_tests() -> Arc<State> {
        use portcullis_core::id::NodeId;
        Arc::new(State {
            management: Arc::new(Management {
                credentials: Vec::new(),
                region: "us-east-1".into(),
                account_id: "000000000000".into(),
            }),
            metrics: Arc::new(Metrics::new()),
            registry: Arc::new(crate::registry::LocalRegistry::new(NodeId(1))),
            authorizers: Authorizers::default(),
            iam: None,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            listen_port: 8080,
            scheme: "http".into(),
        })
    }
}
