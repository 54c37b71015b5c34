//! The identity provider's errors, and who is at fault for each.

use portcullis_core::fault::{Fault, HasFault};

use crate::keys::KeyError;
use crate::password::{HashError, PolicyViolation};
use crate::store::StoreError;

/// Errors of the identity provider's operations.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("no user pool named {0:?}")]
    UnknownPool(String),
    #[error("user not found")]
    UserNotFound,
    #[error("user already exists")]
    UserExists,
    #[error("group not found")]
    GroupNotFound,
    #[error("group already exists")]
    GroupExists,
    /// A quota of the pool is reached (e.g. its number of groups).
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidPassword(#[from] PolicyViolation),
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("identity configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Hash(#[from] HashError),
    /// A pool's Lambda trigger refused or failed the operation.
    #[error(transparent)]
    Trigger(crate::triggers::TriggerError),
}

impl From<StoreError> for IdpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict("user") => IdpError::UserExists,
            other => IdpError::Store(other),
        }
    }
}

impl HasFault for IdpError {
    fn fault(&self) -> Fault {
        match self {
            IdpError::UnknownPool(_)
            | IdpError::UserNotFound
            | IdpError::UserExists
            | IdpError::GroupNotFound
            | IdpError::GroupExists
            | IdpError::LimitExceeded(_)
            | IdpError::InvalidPassword(_)
            | IdpError::InvalidParameter(_) => Fault::Client,
            IdpError::Config(_) => Fault::Operator,
            IdpError::Store(e) => e.fault(),
            IdpError::Key(e) => e.fault(),
            IdpError::Hash(_) => Fault::Internal,
            IdpError::Trigger(e) => e.fault(),
        }
    }
}

impl HasFault for StoreError {
    fn fault(&self) -> Fault {
        match self {
            StoreError::Conflict(_) | StoreError::NotFound(_) => Fault::Client,
            StoreError::Database(_) | StoreError::UnsupportedUrl | StoreError::Permissions(_) => {
                Fault::Operator
            }
            StoreError::Corrupt(_) => Fault::Internal,
        }
    }
}

impl HasFault for KeyError {
    fn fault(&self) -> Fault {
        Fault::Internal
    }
}

/// RFC 6749 §5.2 errors of the token and revocation endpoints.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid_client")]
    InvalidClient,
    #[error("invalid_grant")]
    InvalidGrant,
    #[error("unauthorized_client")]
    UnauthorizedClient,
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope")]
    InvalidScope,
    /// RFC 7009 §2.2.1: a token the revocation endpoint cannot revoke.
    #[error("unsupported_token_type")]
    UnsupportedTokenType,
    #[error("too many requests")]
    TooManyRequests,
    #[error("server error: {0}")]
    Server(#[from] IdpError),
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::Server(e.into())
    }
}

impl OAuthError {
    /// The `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::UnsupportedTokenType => "unsupported_token_type",
            OAuthError::TooManyRequests => "slow_down",
            OAuthError::Server(_) => "server_error",
        }
    }
}

impl HasFault for OAuthError {
    fn fault(&self) -> Fault {
        match self {
            OAuthError::Server(e) => e.fault(),
            _ => Fault::Client,
        }
    }
}
