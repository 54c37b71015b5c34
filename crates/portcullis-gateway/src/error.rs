//! The gateway's error type. Every failure says who is at fault through
//! [`portcullis_core::fault::HasFault`], which each edge asks once to decide how loudly to log
//! it; [`GatewayError::kind`] names it in the `errors` metric.

use std::time::Duration;

use portcullis_core::fault::{Fault, HasFault};
use portcullis_functions::{Fault as FunctionFault, FunctionError};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("integration unreachable: {0}")]
    IntegrationUnreachable(String),
    #[error("integration timed out after {0:?}")]
    IntegrationTimeout(Duration),
    #[error("integration answered HTTP {0}")]
    IntegrationStatus(u16),
    #[error("integration result too large (limit {0} bytes)")]
    IntegrationTooLarge(usize),
    #[error("integration result invalid: {0}")]
    IntegrationInvalid(String),
    /// A `lambda` integration's function failed: the handler threw, crashed, failed to
    /// start, ran past its own timeout, or every environment was busy. The text (which may
    /// carry the handler's error message) is logged, never sent to the client.
    #[error("function {function:?}: {error}")]
    Function {
        function: String,
        error: FunctionError,
    },
    #[error("internal error: {0}")]
    Internal(String),
    /// `[cluster]`'s Redis could not be reached or refused us (the message names the URL
    /// without its password).
    #[error("cluster: {0}")]
    Cluster(String),
    /// `[server] tls`, `admin_tls` or `ca_file` cannot be used: one line naming the key and
    /// the file (never key material).
    #[error("{0}")]
    Tls(String),
    /// A configuration reload refused: the file's diagnostics, one per line.
    #[error("configuration refused:\n{0}")]
    Config(String),
}

impl HasFault for GatewayError {
    fn fault(&self) -> Fault {
        match self {
            GatewayError::Bind { .. }
            | GatewayError::Cluster(_)
            | GatewayError::Tls(_)
            | GatewayError::Config(_) => Fault::Operator,
            GatewayError::Internal(_) => Fault::Internal,
            GatewayError::IntegrationUnreachable(_)
            | GatewayError::IntegrationTimeout(_)
            | GatewayError::IntegrationStatus(_)
            | GatewayError::IntegrationTooLarge(_)
            | GatewayError::IntegrationInvalid(_) => Fault::Backend,
            GatewayError::Function { error, .. } => match error.fault() {
                FunctionFault::Function | FunctionFault::Capacity => Fault::Backend,
                FunctionFault::Caller => Fault::Client,
                // A process that cannot be started: the runtime missing, a code directory
                // gone.
                FunctionFault::Gateway => Fault::Operator,
            },
        }
    }
}

impl GatewayError {
    /// Stable, low-cardinality name used as the `kind` label of the error metric.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::Bind { .. } => "bind",
            GatewayError::IntegrationUnreachable(_) => "integration_unreachable",
            GatewayError::IntegrationTimeout(_) => "integration_timeout",
            GatewayError::IntegrationStatus(_) => "integration_status",
            GatewayError::IntegrationTooLarge(_) => "integration_too_large",
            GatewayError::IntegrationInvalid(_) => "integration_invalid",
            GatewayError::Function { error, .. } => match error {
                FunctionError::Timeout(_) => "function_timeout",
                FunctionError::Overloaded(_) => "function_overloaded",
                FunctionError::EventTooLarge { .. } => "function_event_too_large",
                FunctionError::UnknownFunction(_) | FunctionError::Gateway(_) => {
                    "function_unavailable"
                }
                FunctionError::InitError { .. }
                | FunctionError::Handled { .. }
                | FunctionError::Crashed(_)
                | FunctionError::ResponseTooLarge(_) => "function_error",
            },
            GatewayError::Internal(_) => "internal",
            GatewayError::Cluster(_) => "cluster",
            GatewayError::Tls(_) => "tls",
            GatewayError::Config(_) => "config",
        }
    }
}

/// Logs an event at the level the fault of an error calls for
/// ([`portcullis_core::fault::Fault::log_level`]): a client's mistakes at debug, a backend's
/// failures as warnings, the operator's and Portcullis's own as errors. Used by every edge, so
/// a failure is as loud on the WebSocket side as on the HTTP side.
macro_rules! log_fault {
    ($fault:expr, $($event:tt)+) => {
        match portcullis_core::fault::Fault::log_level($fault) {
            portcullis_core::fault::LogLevel::Debug => tracing::debug!($($event)+),
            portcullis_core::fault::LogLevel::Warn => tracing::warn!($($event)+),
            portcullis_core::fault::LogLevel::Error => tracing::error!($($event)+),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults() {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let bind = GatewayError::Bind {
            addr,
            source: std::io::Error::other("in use"),
        };
        assert_eq!(bind.fault(), Fault::Operator);
        assert_eq!(GatewayError::Internal("x".into()).fault(), Fault::Internal);
        for backend in [
            GatewayError::IntegrationUnreachable("x".into()),
            GatewayError::IntegrationTimeout(Duration::from_secs(1)),
            GatewayError::IntegrationStatus(500),
            GatewayError::IntegrationTooLarge(1),
            GatewayError::IntegrationInvalid("x".into()),
        ] {
            assert_eq!(backend.fault(), Fault::Backend, "{backend}");
        }
    }

    #[test]
    fn function_failures_are_the_backends_and_named_by_kind() {
        let failed = |error| GatewayError::Function {
            function: "chat".into(),
            error,
        };
        let handled = failed(FunctionError::Handled {
            error_type: "ValueError".into(),
            error_message: "boom".into(),
        });
        assert_eq!(handled.fault(), Fault::Backend);
        assert_eq!(handled.kind(), "function_error");
        assert_eq!(handled.to_string(), "function \"chat\": ValueError: boom");
        let timeout = failed(FunctionError::Timeout(Duration::from_secs(1)));
        assert_eq!(timeout.kind(), "function_timeout");
        assert_eq!(timeout.fault(), Fault::Backend);
        let overloaded = failed(FunctionError::Overloaded("chat".into()));
        assert_eq!(overloaded.kind(), "function_overloaded");
        assert_eq!(overloaded.fault(), Fault::Backend);
        let big = failed(FunctionError::EventTooLarge { size: 2, limit: 1 });
        assert_eq!(big.fault(), Fault::Client);
        assert_eq!(
            failed(FunctionError::Gateway("spawn".into())).fault(),
            Fault::Operator
        );
    }
}
