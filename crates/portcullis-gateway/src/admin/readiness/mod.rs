//! `GET /readyz`: whether this node should get new traffic. 200 `{"status":"ready"}` when its
//! dependencies answer a cheap round trip (the identity store `SELECT 1` when pools are
//! configured, Redis `PING` in a cluster), each within [`PROBE_TIMEOUT`]; 503 naming the one
//! that did not; 503 `{"status":"draining"}` once shutdown began (no probe then).
//!
//! Probes are shared: one check runs at a time, its result serves every call for
//! [`CACHE_FOR`], so a burst of load-balancer probes makes one round trip per dependency.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Response, StatusCode};
use portcullis_idp::IdentityProvider;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::warn;

use crate::cluster::Cluster;
use crate::reply;
use crate::state::State;

/// The longest one dependency may take to answer before it counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one check's result answers later calls.
pub const CACHE_FOR: Duration = Duration::from_secs(1);

/// How one dependency answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Ok,
    /// It answered with an error (connection refused, authentication, …).
    Error,
    /// No answer within [`PROBE_TIMEOUT`].
    Timeout,
}

impl Probe {
    fn as_str(self) -> &'static str {
        match self {
            Probe::Ok => "ok",
            Probe::Error => "error",
            Probe::Timeout => "timeout",
        }
    }
}

/// The dependencies of one check; `None` for one this node does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    pub store: Option<Probe>,
    pub redis: Option<Probe>,
}

impl Report {
    fn dependencies(&self) -> impl Iterator<Item = (&'static str, Probe)> {
        [("store", self.store), ("redis", self.redis)]
            .into_iter()
            .filter_map(|(name, probe)| Some((name, probe?)))
    }

    pub fn ready(&self) -> bool {
        self.dependencies().all(|(_, p)| p == Probe::Ok)
    }
}

/// The answer to `/readyz`: draining wins over any report.
pub fn answer(draining: bool, report: &Report) -> (StatusCode, serde_json::Value) {
    if draining {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "draining" }),
        );
    }
    if report.ready() {
        return (StatusCode::OK, serde_json::json!({ "status": "ready" }));
    }
    let dependencies: serde_json::Map<String, serde_json::Value> = report
        .dependencies()
        .map(|(name, probe)| (name.to_owned(), probe.as_str().into()))
        .collect();
    let failed: Vec<&str> = report
        .dependencies()
        .filter(|(_, p)| *p != Probe::Ok)
        .map(|(name, _)| name)
        .collect();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({
            "status": "unavailable",
            "failed": failed,
            "dependencies": dependencies,
        }),
    )
}

/// This node's dependencies and the last check of them.
pub struct Readiness {
    idp: Option<Arc<IdentityProvider>>,
    cluster: Option<Arc<Cluster>>,
    last: Mutex<Option<(Instant, Report)>>,
}

impl Readiness {
    pub fn new(idp: Option<Arc<IdentityProvider>>, cluster: Option<Arc<Cluster>>) -> Readiness {
        Readiness {
            idp,
            cluster,
            last: Mutex::new(None),
        }
    }

    /// `GET /readyz`.
    pub async fn readyz(&self, state: &State) -> Response<Body> {
        let draining = state.shutdown.is_cancelled();
        let report = if draining {
            Report::default()
        } else {
            self.report().await
        };
        let (status, body) = answer(draining, &report);
        reply::json(status, body.to_string())
    }

    /// The cached report if it is fresh, else a new check. The lock is held across the check:
    /// calls arriving meanwhile wait for its result instead of probing again.
    async fn report(&self) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = *last
            && at.elapsed() < CACHE_FOR
        {
            return report;
        }
        let report = self.check().await;
        *last = Some((Instant::now(), report));
        report
    }

    async fn check(&self) -> Report {
        let store = async {
            let idp = self.idp.as_ref()?;
            Some(probe("store", idp.ping_store()).await)
        };
        let redis = async {
            let cluster = self.cluster.as_ref()?;
            Some(probe("redis", cluster.ping()).await)
        };
        let (store, redis) = tokio::join!(store, redis);
        Report { store, redis }
    }
}

async fn probe<E: std::fmt::Display>(
    name: &str,
    round_trip: impl Future<Output = Result<(), E>>,
) -> Probe {
    match tokio::time::timeout(PROBE_TIMEOUT, round_trip).await {
        Ok(Ok(())) => Probe::Ok,
        Ok(Err(e)) => {
            warn!(dependency = name, error = %e, "readiness: dependency failed");
            Probe::Error
        }
        Err(_) => {
            warn!(
                dependency = name,
                "readiness: dependency did not answer in time"
            );
            Probe::Timeout
        }
    }
}

#[cfg(test)]
mod tests;
