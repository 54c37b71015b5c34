//! The gateway's error type: every failure says who is at fault, which drives the status
//! code, the error frame and the metric label in one place per edge.

use std::time::Duration;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something invalid or not allowed.
    Client,
    /// The backend (integration) failed, was unreachable or answered badly.
    Backend,
    /// Something inside the gateway went wrong.
    Internal,
}

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
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    pub fn fault(&self) -> Fault {
        match self {
            GatewayError::Bind { .. } | GatewayError::Internal(_) => Fault::Internal,
            GatewayError::IntegrationUnreachable(_)
            | GatewayError::IntegrationTimeout(_)
            | GatewayError::IntegrationStatus(_)
            | GatewayError::IntegrationTooLarge(_)
            | GatewayError::IntegrationInvalid(_) => Fault::Backend,
        }
    }

    /// Stable, low-cardinality name used as the `kind` label of the error metric.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::Bind { .. } => "bind",
            GatewayError::IntegrationUnreachable(_) => "integration_unreachable",
            GatewayError::IntegrationTimeout(_) => "integration_timeout",
            GatewayError::IntegrationStatus(_) => "integration_status",
            GatewayError::IntegrationTooLarge(_) => "integration_too_large",
            GatewayError::IntegrationInvalid(_) => "integration_invalid",
            GatewayError::Internal(_) => "internal",
        }
    }
}
