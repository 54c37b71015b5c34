//! The replay log of a WebSocket API with `sse`: every `@users` push is numbered and kept,
//! whether or not the principal has a connection, so an SSE stream that resumes with
//! `Last-Event-ID` gets what it missed.
//!
//! Where the log lives depends on the gateway: in this process ([`LocalReplay`]) for one node,
//! in Redis ([`SharedReplay`]) with `[cluster]`, so a stream that reconnects to another node
//! resumes there. Either way a stream takes its snapshot after its connection is registered,
//! so every push is in the snapshot or reaches the connection live (or both: the stream skips
//! those, see [`Snapshot::position`]).

mod local;
mod shared;

use std::sync::Arc;

use portcullis_config::Sse;
use portcullis_core::sse::replay::Snapshot;

use crate::cluster::Cluster;
use crate::metrics::Metrics;
use crate::outbound::{Data, Outbound};
use crate::registry::Unavailable;

pub use local::LocalReplay;
pub use shared::SharedReplay;

/// The replay log of one API.
pub enum ReplayStore {
    Local(LocalReplay),
    Shared(SharedReplay),
}

impl ReplayStore {
    /// The log of API `api`: in Redis when the gateway is part of `cluster`, else in process.
    pub fn new(api: &str, sse: &Sse, metrics: &Metrics, cluster: Option<&Arc<Cluster>>) -> Self {
        match cluster {
            Some(cluster) => ReplayStore::Shared(SharedReplay::new(api, sse, cluster.clone())),
            None => ReplayStore::Local(LocalReplay::new(api, sse, metrics)),
        }
    }

    /// Log a push to `principal`: the message to hand its connections instead (`None` for a
    /// message that is not a push, which is not logged). `Err` when the shared log cannot be
    /// reached: the push is refused like every push of a cluster without Redis.
    pub async fn log(
        &self,
        principal: &str,
        message: &Outbound,
    ) -> Result<Option<Outbound>, Unavailable> {
        match self {
            ReplayStore::Local(log) => Ok(log.log(principal, message)),
            ReplayStore::Shared(log) => log.log(principal, message).await,
        }
    }

    /// Where a new stream of `principal` (none: anonymous) starts, given its client's
    /// `Last-Event-ID`. A shared log that cannot be read resets a client that resumes.
    pub async fn snapshot(
        &self,
        principal: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Snapshot<Data> {
        match self {
            ReplayStore::Local(log) => log.snapshot(principal, last_event_id),
            ReplayStore::Shared(log) => log.snapshot(principal, last_event_id).await,
        }
    }
}

/// The payload of a message that is logged (a text or binary push).
fn loggable(message: &Outbound) -> Option<Data> {
    match message {
        Outbound::Text(text) => Some(Data::Text(text.clone())),
        Outbound::Binary(bytes) => Some(Data::Binary(bytes.clone())),
        Outbound::Logged { .. } | Outbound::Close(_) => None,
    }
}
