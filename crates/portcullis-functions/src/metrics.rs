//! The metric families of functions, labelled by function name (never by request id or
//! event content). The gateway registers them once in its registry with
//! [`FunctionMetrics::register`]; [`FunctionMetrics::default`] gives families counted but not
//! exported (`portcullis invoke`, tests).
//!
//! Each pool caches its own series ([`Meters`]) so an invocation does not look labels up.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::FunctionError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabel {
    pub function: String,
}

/// `kind`: see [`FunctionError::kind`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub function: String,
    pub kind: String,
}

/// `state`: `busy` (running an invocation) or `idle` (warm, waiting for one).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvironmentLabels {
    pub function: String,
    pub state: String,
}

type Counters<L> = Family<L, Counter<u64, AtomicU64>>;
type Gauges<L> = Family<L, Gauge<i64, AtomicI64>>;
type Histograms = Family<FunctionLabel, Histogram, fn() -> Histogram>;

/// Invocation durations: 1 ms to 30 s (the longest default-ish timeouts), roughly ×2.5.
fn duration_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

/// Init (cold start) durations: a Python or Node runtime loads in tens to hundreds of ms; the
/// init phase is cut at 10 s.
fn init_histogram() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

#[derive(Debug)]
pub struct FunctionMetrics {
    /// Calls of a configured function, whatever their outcome (refused ones included).
    pub invocations: Counters<FunctionLabel>,
    /// Failed calls by kind.
    pub errors: Counters<ErrorLabels>,
    /// Calls that ran past the function's timeout (also in `errors{kind="timeout"}`).
    pub timeouts: Counters<FunctionLabel>,
    /// Time an environment spent on a call, from handing the event to the answer.
    pub duration: Histograms,
    /// Running environments by state.
    pub environments: Gauges<EnvironmentLabels>,
    /// Environments started (each one once).
    pub cold_starts: Counters<FunctionLabel>,
    /// Time from starting an environment's process to its handler being loaded.
    pub init_duration: Histograms,
    /// Calls waiting for a free environment.
    pub queued: Gauges<FunctionLabel>,
    /// Times the function's code changed and its environments were recycled.
    pub recycles: Counters<FunctionLabel>,
}

impl Default for FunctionMetrics {
    fn default() -> Self {
        FunctionMetrics {
            invocations: Family::default(),
            errors: Family::default(),
            timeouts: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            environments: Family::default(),
            cold_starts: Family::default(),
            init_duration: Family::new_with_constructor(init_histogram),
            queued: Family::default(),
            recycles: Family::default(),
        }
    }
}

impl FunctionMetrics {
    /// Declares the families in `registry` (whose prefix, `portcullis`, they get) and returns
    /// them to be passed in [`crate::Options`].
    pub fn register(registry: &mut Registry) -> Arc<FunctionMetrics> {
        let m = FunctionMetrics::default();
        registry.register(
            "function_invocations",
            "Calls of a function, whatever their outcome",
            m.invocations.clone(),
        );
        registry.register(
            "function_errors",
            "Failed function calls by kind (handled, init, timeout, crash, response_too_large, \
             event_too_large, overloaded, gateway)",
            m.errors.clone(),
        );
        registry.register(
            "function_timeouts",
            "Function calls that ran past the function's timeout",
            m.timeouts.clone(),
        );
        registry.register(
            "function_duration_seconds",
            "Time an execution environment spent on a call",
            m.duration.clone(),
        );
        registry.register(
            "function_environments",
            "Running execution environments by state (busy, idle)",
            m.environments.clone(),
        );
        registry.register(
            "function_cold_starts",
            "Execution environments started",
            m.cold_starts.clone(),
        );
        registry.register(
            "function_init_duration_seconds",
            "Time from starting an execution environment to its handler being loaded",
            m.init_duration.clone(),
        );
        registry.register(
            "function_queued",
            "Calls waiting for a free execution environment",
            m.queued.clone(),
        );
        registry.register(
            "function_recycles",
            "Code changes that recycled a function's execution environments",
            m.recycles.clone(),
        );
        Arc::new(m)
    }

    /// The series of one function, created now so they are exported at zero from the start.
    pub(crate) fn meters(self: &Arc<Self>, function: &str) -> Meters {
        let label = FunctionLabel {
            function: function.to_owned(),
        };
        let state = |state: &str| EnvironmentLabels {
            function: function.to_owned(),
            state: state.to_owned(),
        };
        Meters {
            invocations: self.invocations.get_or_create_owned(&label),
            timeouts: self.timeouts.get_or_create_owned(&label),
            duration: self.duration.get_or_create_owned(&label),
            busy: self.environments.get_or_create_owned(&state("busy")),
            idle: self.environments.get_or_create_owned(&state("idle")),
            cold_starts: self.cold_starts.get_or_create_owned(&label),
            init_duration: self.init_duration.get_or_create_owned(&label),
            queued: self.queued.get_or_create_owned(&label),
            recycles: self.recycles.get_or_create_owned(&label),
            families: self.clone(),
            function: function.to_owned(),
        }
    }
}

/// One function's series.
pub(crate) struct Meters {
    pub(crate) invocations: Counter<u64, AtomicU64>,
    timeouts: Counter<u64, AtomicU64>,
    duration: Histogram,
    pub(crate) busy: Gauge<i64, AtomicI64>,
    pub(crate) idle: Gauge<i64, AtomicI64>,
    cold_starts: Counter<u64, AtomicU64>,
    init_duration: Histogram,
    pub(crate) queued: Gauge<i64, AtomicI64>,
    pub(crate) recycles: Counter<u64, AtomicU64>,
    families: Arc<FunctionMetrics>,
    function: String,
}

impl Meters {
    pub(crate) fn failed(&self, error: &FunctionError) {
        if matches!(error, FunctionError::Timeout(_)) {
            self.timeouts.inc();
        }
        self.families
            .errors
            .get_or_create(&ErrorLabels {
                function: self.function.clone(),
                kind: error.kind().to_owned(),
            })
            .inc();
    }

    pub(crate) fn ran(&self, duration: Duration) {
        self.duration.observe(duration.as_secs_f64());
    }

    pub(crate) fn started(&self, init: Duration) {
        self.cold_starts.inc();
        self.init_duration.observe(init.as_secs_f64());
    }
}

/// Counts one environment as busy while it lives.
pub(crate) struct Busy<'a>(&'a Gauge<i64, AtomicI64>);

impl<'a> Busy<'a> {
    pub(crate) fn new(gauge: &'a Gauge<i64, AtomicI64>) -> Busy<'a> {
        gauge.inc();
        Busy(gauge)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
