//! The replay log of one node (no `[cluster]`): bounded by `sse.replay` per principal and
//! `sse.replay_bytes` in all. The rules are `portcullis_core::sse::replay`; this wraps them in
//! a lock and keeps the metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64};

use portcullis_config::Sse;
use portcullis_core::sse::replay::{ReplayLog, Snapshot};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::{ApiLabel, Metrics};
use crate::outbound::{Data, Outbound};

pub struct LocalReplay {
    log: Mutex<ReplayLog<Data>>,
    bytes: Gauge<i64, AtomicI64>,
    principals: Gauge<i64, AtomicI64>,
    evictions: Counter<u64, AtomicU64>,
}

impl LocalReplay {
    /// The log of API `api`, under a random generation (ids of an earlier run are not its).
    pub fn new(api: &str, sse: &Sse, metrics: &Metrics) -> Self {
        let label = ApiLabel {
            api: api.to_owned(),
        };
        LocalReplay {
            log: Mutex::new(ReplayLog::new(rand::random(), sse.replay, sse.replay_bytes)),
            bytes: metrics.sse.replay_bytes.get_or_create(&label).clone(),
            principals: metrics.sse.replay_principals.get_or_create(&label).clone(),
            evictions: metrics.sse.replay_evictions.get_or_create(&label).clone(),
        }
    }

    /// Number a push to `principal` and keep it; the number goes with the push to the
    /// principal's connections (`Outbound::Logged`).
    fn record(&self, principal: &str, data: &Data) -> u64 {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let (seq, evicted) = log.record(principal, data.clone(), data.len());
        self.bytes
            .set(i64::try_from(log.bytes()).unwrap_or(i64::MAX));
        self.principals
            .set(i64::try_from(log.principals()).unwrap_or(i64::MAX));
        self.evictions.inc_by(evicted as u64);
        seq
    }

    /// Log a push to `principal`: the message to hand its connections instead (`None` for a
    /// message that is not a push, which is not logged).
    pub fn log(&self, principal: &str, message: &Outbound) -> Option<Outbound> {
        let data = super::loggable(message)?;
        let seq = self.record(principal, &data);
        Some(Outbound::Logged { seq, data })
    }

    /// Where a new stream of `principal` starts, given its client's `Last-Event-ID`.
    pub fn snapshot(&self, principal: Option<&str>, last_event_id: Option<&str>) -> Snapshot<Data> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.snapshot(principal, last_event_id)
    }
}
