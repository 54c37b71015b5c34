//! The metric families of SSE streams: the WebSocket ones' counterparts (`sse_*` instead of
//! `ws_*`, same labels) and those of the replay logs.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{ApiLabel, DisconnectLabels, RejectLabels};

type Counters<L> = Family<L, Counter<u64, AtomicU64>>;
type Gauges<L> = Family<L, Gauge<i64, AtomicI64>>;

pub struct SseMetrics {
    pub connections_open: Gauges<ApiLabel>,
    pub connects: Counters<ApiLabel>,
    pub connect_rejects: Counters<RejectLabels>,
    pub disconnects: Counters<DisconnectLabels>,
    pub events_out: Counters<ApiLabel>,
    pub replayed: Counters<ApiLabel>,
    pub resets: Counters<ApiLabel>,
    pub replay_bytes: Gauges<ApiLabel>,
    pub replay_principals: Gauges<ApiLabel>,
    pub replay_evictions: Counters<ApiLabel>,
}

impl SseMetrics {
    pub(super) fn new(registry: &mut Registry) -> Self {
        let m = SseMetrics {
            connections_open: Family::default(),
            connects: Family::default(),
            connect_rejects: Family::default(),
            disconnects: Family::default(),
            events_out: Family::default(),
            replayed: Family::default(),
            resets: Family::default(),
            replay_bytes: Family::default(),
            replay_principals: Family::default(),
            replay_evictions: Family::default(),
        };
        for (name, help, metric) in [
            (
                "sse_connections_open",
                "Open SSE streams",
                &m.connections_open as &dyn Register,
            ),
            ("sse_connects", "Accepted SSE streams", &m.connects),
            (
                "sse_connect_rejects",
                "SSE streams refused, by HTTP status",
                &m.connect_rejects,
            ),
            (
                "sse_disconnects",
                "Ended SSE streams by reason (the close reasons of WebSockets)",
                &m.disconnects,
            ),
            (
                "sse_events_out",
                "Pushes written to SSE streams, replayed ones included",
                &m.events_out,
            ),
            (
                "sse_replayed_events",
                "Pushes replayed to SSE streams that resumed with Last-Event-ID",
                &m.replayed,
            ),
            (
                "sse_resets",
                "SSE streams told `reset`: their Last-Event-ID could not be resumed from",
                &m.resets,
            ),
            (
                "sse_replay_bytes",
                "Memory counted against replay_bytes by the API's replay log",
                &m.replay_bytes,
            ),
            (
                "sse_replay_principals",
                "Principals with pushes in the API's replay log",
                &m.replay_principals,
            ),
            (
                "sse_replay_evictions",
                "Principal replay logs dropped to stay within replay_bytes",
                &m.replay_evictions,
            ),
        ] {
            metric.register(registry, name, help);
        }
        m
    }
}

/// A family registered under a name (the families have different types).
trait Register {
    fn register(&self, registry: &mut Registry, name: &str, help: &str);
}

impl<L, M> Register for Family<L, M>
where
    Family<L, M>: prometheus_client::registry::Metric + Clone,
{
    fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(name, help, self.clone());
    }
}
