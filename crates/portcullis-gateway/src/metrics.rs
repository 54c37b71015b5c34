//! Every metric family of the gateway, declared in one place and passed explicitly (no global
//! registry). Names follow `portcullis_<subsystem>_<thing>_<unit>`; labels never carry a
//! connection id, user id or raw path.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use portcullis_functions::FunctionMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

mod cluster;
mod sse;

pub use cluster::ClusterMetrics;
pub use sse::SseMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabel {
    pub api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DisconnectLabels {
    pub api: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrationLabels {
    pub integration: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ManagementLabels {
    pub operation: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub api: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub listener: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthorizerLabels {
    pub authorizer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub authorizer: String,
    pub outcome: String,
}

/// `result`: `ok` or `failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsReloadLabels {
    pub listener: String,
    pub result: String,
}

/// `result`: `ok` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: String,
}

/// `target`: `user` or `topic`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabels {
    pub api: String,
    pub target: String,
}

pub struct Metrics {
    registry: Registry,
    pub authorizer_cache_hits: Family<AuthorizerLabels, Counter<u64, AtomicU64>>,
    pub authorizer_cache_misses: Family<AuthorizerLabels, Counter<u64, AtomicU64>>,
    pub authorizer_decisions: Family<DecisionLabels, Counter<u64, AtomicU64>>,
    pub message_denials: Family<ApiLabel, Counter<u64, AtomicU64>>,
    pub connections_open: Family<ApiLabel, Gauge<i64, std::sync::atomic::AtomicI64>>,
    pub connects: Family<ApiLabel, Counter<u64, AtomicU64>>,
    pub connect_rejects: Family<RejectLabels, Counter<u64, AtomicU64>>,
    pub disconnects: Family<DisconnectLabels, Counter<u64, AtomicU64>>,
    pub messages_in: Family<ApiLabel, Counter<u64, AtomicU64>>,
    pub messages_out: Family<ApiLabel, Counter<u64, AtomicU64>>,
    pub messages_throttled: Family<ApiLabel, Counter<u64, AtomicU64>>,
    pub integration_duration: Family<IntegrationLabels, Histogram>,
    pub errors: Family<ErrorLabels, Counter<u64, AtomicU64>>,
    pub management_requests: Family<ManagementLabels, Counter<u64, AtomicU64>>,
    pub connections_refused: Family<RefusedLabels, Counter<u64, AtomicU64>>,
    pub push_deliveries: Family<PushLabels, Counter<u64, AtomicU64>>,
    pub push_skipped: Family<PushLabels, Counter<u64, AtomicU64>>,
    pub tls_reloads: Family<TlsReloadLabels, Counter<u64, AtomicU64>>,
    /// Configuration reloads (SIGHUP, a change of the file, `RunningGateway::reload`).
    pub config_reloads: Family<ReloadLabels, Counter<u64, AtomicU64>>,
    /// SSE streams and replay logs.
    pub sse: SseMetrics,
    /// Redis and the other nodes.
    pub cluster: ClusterMetrics,
    /// `[functions.NAME]`: handed to the functions through `Options::with_metrics`.
    functions: Arc<FunctionMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let connections_open = Family::default();
        registry.register(
            "ws_connections_open",
            "Open WebSocket connections",
            connections_open.clone(),
        );
        let connects = Family::default();
        registry.register(
            "ws_connects",
            "Accepted WebSocket connections",
            connects.clone(),
        );
        let config_reloads = Family::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by result (ok: applied, error: refused, the old one kept)",
            config_reloads.clone(),
        );
        let connect_rejects = Family::default();
        registry.register(
            "ws_connect_rejects",
            "WebSocket upgrades refused, by HTTP status",
            connect_rejects.clone(),
        );
        let disconnects = Family::default();
        registry.register(
            "ws_disconnects",
            "Closed WebSocket connections by reason",
            disconnects.clone(),
        );
        let messages_in = Family::default();
        registry.register(
            "ws_messages_in",
            "Data messages received from clients",
            messages_in.clone(),
        );
        let messages_out = Family::default();
        registry.register(
            "ws_messages_out",
            "Data messages sent to clients",
            messages_out.clone(),
        );
        let integration_duration =
            Family::<IntegrationLabels, Histogram>::new_with_constructor(|| {
                Histogram::new([
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 29.0,
                ])
            });
        registry.register(
            "integration_duration_seconds",
            "Latency of integration (backend) calls",
            integration_duration.clone(),
        );
        let errors = Family::default();
        registry.register("errors", "Errors by kind", errors.clone());
        let management_requests = Family::default();
        registry.register(
            "management_requests",
            "@connections API requests by operation and status",
            management_requests.clone(),
        );
        let authorizer_cache_hits = Family::default();
        registry.register(
            "authorizer_cache_hits",
            "Request-authorizer answers served from the cache",
            authorizer_cache_hits.clone(),
        );
        let authorizer_cache_misses = Family::default();
        registry.register(
            "authorizer_cache_misses",
            "Request-authorizer webhook calls (cache misses)",
            authorizer_cache_misses.clone(),
        );
        let authorizer_decisions = Family::default();
        registry.register(
            "authorizer_decisions",
            "Authorizer decisions by outcome (allow, unauthorized, forbidden, error)",
            authorizer_decisions.clone(),
        );
        let message_denials = Family::default();
        registry.register(
            "ws_message_denials",
            "WebSocket messages refused by a route's scopes, groups or the connection's policy",
            message_denials.clone(),
        );
        let connections_refused = Family::default();
        registry.register(
            "connections_refused",
            "Connections and sessions refused, by listener and reason (per_ip: the client \
             address already had max_connections_per_ip open; max_connections: the node had \
             max_connections sessions open; connect_rate: over connect_rate_per_ip)",
            connections_refused.clone(),
        );
        let messages_throttled = Family::default();
        registry.register(
            "ws_messages_throttled",
            "WebSocket messages dropped for exceeding the API's message_rate",
            messages_throttled.clone(),
        );
        let push_deliveries = Family::default();
        registry.register(
            "push_deliveries",
            "Messages queued for connections by @users and @topics pushes",
            push_deliveries.clone(),
        );
        let push_skipped = Family::default();
        registry.register(
            "push_skipped",
            "Receivers skipped by @users and @topics pushes because their send queue was full",
            push_skipped.clone(),
        );
        let tls_reloads = Family::default();
        registry.register(
            "tls_certificate_reloads",
            "Certificate files re-read after a change, by listener and result (ok, failed)",
            tls_reloads.clone(),
        );
        let sse = SseMetrics::new(&mut registry);
        let cluster = ClusterMetrics::new(&mut registry);
        let functions = FunctionMetrics::register(&mut registry);
        Metrics {
            registry,
            functions,
            push_deliveries,
            push_skipped,
            tls_reloads,
            config_reloads,
            sse,
            cluster,
            authorizer_cache_hits,
            authorizer_cache_misses,
            authorizer_decisions,
            message_denials,
            connections_open,
            connects,
            connect_rejects,
            disconnects,
            messages_in,
            messages_out,
            messages_throttled,
            integration_duration,
            errors,
            management_requests,
            connections_refused,
        }
    }

    /// The `portcullis_function_*` families, to pass in the functions' `Options`
    /// (`Options::for_config(..).with_metrics(metrics.functions())`).
    pub fn functions(&self) -> Arc<FunctionMetrics> {
        self.functions.clone()
    }

    pub fn connection_refused(&self, listener: &str, reason: &str) {
        self.connections_refused
            .get_or_create(&RefusedLabels {
                listener: listener.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Count what one push to many connections of `api` did.
    pub fn pushed(&self, api: &str, target: &str, delivered: usize, skipped: usize) {
        let labels = PushLabels {
            api: api.to_owned(),
            target: target.to_owned(),
        };
        if delivered > 0 {
            self.push_deliveries
                .get_or_create(&labels)
                .inc_by(delivered as u64);
        }
        if skipped > 0 {
            self.push_skipped
                .get_or_create(&labels)
                .inc_by(skipped as u64);
        }
    }

    /// Count one re-read of a listener's certificate files.
    pub fn tls_reload(&self, listener: &str, result: &str) {
        self.tls_reloads
            .get_or_create(&TlsReloadLabels {
                listener: listener.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// One reload, `ok` (applied) or `error` (refused).
    pub fn config_reload(&self, ok: bool) {
        self.config_reloads
            .get_or_create(&ReloadLabels {
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use indexmap::IndexMap;
    use portcullis_config::{Function, Runtime};
    use portcullis_functions::{Functions, Identity, Options};

    use super::Metrics;

    #[test]
    fn functions_given_the_gateway_metrics_are_exported_from_the_start() {
        let metrics = Metrics::new();
        let code = tempfile::tempdir().unwrap();
        let function = Function {
            name: "chat".to_owned(),
            runtime: Runtime::Python("python3.11".to_owned()),
            handler: "app.handler".to_owned(),
            code: code.path().to_path_buf(),
            timeout: Duration::from_secs(3),
            memory_mb: 128,
            concurrency: 1,
            environment: Vec::new(),
            command: Vec::new(),
        };
        let functions: IndexMap<String, Function> = [("chat".to_owned(), function)].into();
        let options = Options {
            identity: Identity {
                region: "us-east-1".to_owned(),
                account_id: "000000000000".to_owned(),
            },
            extra_env: Vec::new(),
            metrics: Default::default(),
        }
        .with_metrics(metrics.functions());
        let _functions = Functions::start(&functions, options).unwrap();
        let text = metrics.render();
        for series in [
            r#"portcullis_function_invocations_total{function="chat"} 0"#,
            r#"portcullis_function_environments{function="chat",state="idle"} 0"#,
            r#"portcullis_function_duration_seconds_count{function="chat"} 0"#,
            r#"portcullis_function_recycles_total{function="chat"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    }
}
