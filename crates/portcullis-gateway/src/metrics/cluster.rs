//! The metric families of a cluster: whether Redis answers, which nodes this one sees, what
//! crossed to other nodes and what was lost on the way (pub/sub is at-most-once: loss is
//! counted, not hidden). Registered on every node; they stay at zero without `[cluster]`.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `op`: what was asked of another node (`post`, `get`, `close`, `push`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: String,
}

/// `reason`: why a message between nodes was lost (`queue_full`, `undecodable`, `timeout`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LossLabel {
    pub reason: String,
}

pub struct ClusterMetrics {
    /// 1 while this node's Redis connections answer.
    pub redis_up: Gauge<i64, AtomicI64>,
    /// Live nodes this node knows (itself included).
    pub nodes: Gauge<i64, AtomicI64>,
    /// Requests sent to other nodes, by operation.
    pub forwarded: Family<OpLabel, Counter<u64, AtomicU64>>,
    /// Calls answered 503 because Redis or the owning node could not be reached.
    pub unavailable: Family<OpLabel, Counter<u64, AtomicU64>>,
    /// Messages between nodes that were lost, by reason.
    pub lost: Family<LossLabel, Counter<u64, AtomicU64>>,
    /// Principal and topic channels this node listens on.
    pub interests: Gauge<i64, AtomicI64>,
    /// Nodes this node declared dead.
    pub nodes_lost: Counter<u64, AtomicU64>,
    /// `$disconnect`s this node delivered for connections of dead nodes.
    pub disconnects_delivered: Counter<u64, AtomicU64>,
}

impl ClusterMetrics {
    pub(super) fn new(registry: &mut Registry) -> Self {
        let m = ClusterMetrics {
            redis_up: Gauge::default(),
            nodes: Gauge::default(),
            forwarded: Family::default(),
            unavailable: Family::default(),
            lost: Family::default(),
            interests: Gauge::default(),
            nodes_lost: Counter::default(),
            disconnects_delivered: Counter::default(),
        };
        registry.register(
            "cluster_redis_up",
            "1 while Redis answers this node (0 without [cluster])",
            m.redis_up.clone(),
        );
        registry.register(
            "cluster_nodes",
            "Live nodes this node knows, itself included",
            m.nodes.clone(),
        );
        registry.register(
            "cluster_forwarded",
            "Requests sent to other nodes, by operation",
            m.forwarded.clone(),
        );
        registry.register(
            "cluster_unavailable",
            "Calls answered 503: Redis or the owning node could not be reached",
            m.unavailable.clone(),
        );
        registry.register(
            "cluster_lost_messages",
            "Messages between nodes that were lost, by reason",
            m.lost.clone(),
        );
        registry.register(
            "cluster_interests",
            "Principal and topic channels this node listens on",
            m.interests.clone(),
        );
        registry.register(
            "cluster_nodes_lost",
            "Nodes this node declared dead",
            m.nodes_lost.clone(),
        );
        registry.register(
            "cluster_disconnects_delivered",
            "$disconnect events this node delivered for connections of dead nodes",
            m.disconnects_delivered.clone(),
        );
        m
    }

    pub fn forwarded(&self, op: &str) {
        self.forwarded
            .get_or_create(&OpLabel { op: op.to_owned() })
            .inc();
    }

    pub fn unavailable(&self, op: &str) {
        self.unavailable
            .get_or_create(&OpLabel { op: op.to_owned() })
            .inc();
    }

    pub fn lost(&self, reason: &str) {
        self.lost
            .get_or_create(&LossLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }
}
