//! The authorizer layer's outcome when a request is not let through, and who is at fault:
//! the caller ([`AuthError::Unauthorized`], [`AuthError::Forbidden`]) or the authorizer /
//! its configuration ([`AuthError::Misconfigured`]). Reference §4.6.

use portcullis_core::fault::{Fault, HasFault};

use crate::csrf::CsrfError;

/// Why an authorizer did not let a request through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401: an identity source is missing, or the authorizer answered `Unauthorized`.
    #[error("unauthorized")]
    Unauthorized,
    /// 403: the policy denies (explicitly or implicitly), `isAuthorized: false`, or the
    /// double-submit CSRF check failed.
    #[error("forbidden")]
    Forbidden,
    /// 500: the authorizer failed, timed out, answered too much or something invalid
    /// (AWS: `AuthorizerConfigurationException`). The message never contains credentials.
    #[error("authorizer error: {0}")]
    Misconfigured(String),
}

impl AuthError {
    /// The HTTP status for the upgrade / request.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Unauthorized => 401,
            AuthError::Forbidden => 403,
            AuthError::Misconfigured(_) => 500,
        }
    }
}

impl HasFault for AuthError {
    /// A refusal is the caller's; an authorizer that failed is the backend's (its webhook or
    /// the issuer's keys) or the operator's (its configuration), which the gateway does not
    /// tell the caller about.
    fn fault(&self) -> Fault {
        match self {
            AuthError::Unauthorized | AuthError::Forbidden => Fault::Client,
            AuthError::Misconfigured(_) => Fault::Backend,
        }
    }
}

impl From<CsrfError> for AuthError {
    fn from(_: CsrfError) -> Self {
        AuthError::Forbidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(AuthError::Unauthorized.status(), 401);
        assert_eq!(AuthError::Forbidden.status(), 403);
        assert_eq!(AuthError::Misconfigured("x".into()).status(), 500);
        assert_eq!(AuthError::Unauthorized.fault(), Fault::Client);
        assert_eq!(AuthError::Forbidden.fault(), Fault::Client);
        assert_eq!(AuthError::Misconfigured("x".into()).fault(), Fault::Backend);
        assert_eq!(
            AuthError::from(CsrfError::MissingCookie),
            AuthError::Forbidden
        );
    }
}
