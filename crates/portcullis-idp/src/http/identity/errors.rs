//! The errors of the Cognito Identity API: `{"__type": name, "message": message}` with the
//! status and the `x-amzn-errortype` header the service answers, in one place.

use axum::response::Response;
use http::StatusCode;
use portcullis_core::fault::{Fault, HasFault};

use crate::http::json11::{self, CallError};

/// The Cognito Identity error types this API answers (`__type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityErrorType {
    InternalError,
    InvalidIdentityPoolConfiguration,
    InvalidParameter,
    NotAuthorized,
    ResourceNotFound,
    Serialization,
    TooManyRequests,
    UnknownOperation,
}

impl IdentityErrorType {
    /// The `__type` on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::InternalError => "InternalErrorException",
            Self::InvalidIdentityPoolConfiguration => "InvalidIdentityPoolConfigurationException",
            Self::InvalidParameter => "InvalidParameterException",
            Self::NotAuthorized => "NotAuthorizedException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::Serialization => "SerializationException",
            Self::TooManyRequests => "TooManyRequestsException",
            Self::UnknownOperation => "UnknownOperationException",
        }
    }

    /// 500 for `InternalErrorException`, 400 for the rest (as the service).
    pub fn status(self) -> StatusCode {
        match self {
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The provider for internal errors, the operator for a pool whose roles do not cover
    /// the caller, the caller for the rest.
    pub fn fault(self) -> Fault {
        match self {
            Self::InternalError => Fault::Internal,
            Self::InvalidIdentityPoolConfiguration => Fault::Operator,
            _ => Fault::Client,
        }
    }
}

/// An error of the Cognito Identity API.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", kind.name())]
pub struct IdentityError {
    pub kind: IdentityErrorType,
    pub message: String,
}

impl HasFault for IdentityError {
    fn fault(&self) -> Fault {
        self.kind.fault()
    }
}

pub(super) fn err(kind: IdentityErrorType, message: impl Into<String>) -> IdentityError {
    IdentityError {
        kind,
        message: message.into(),
    }
}

pub(super) fn not_authorized(message: impl Into<String>) -> IdentityError {
    err(IdentityErrorType::NotAuthorized, message)
}

/// `NotAuthorizedException` for a login token that cannot be used; `why` is for the caller.
pub(super) fn invalid_login(why: &str) -> IdentityError {
    not_authorized(format!("Invalid login token. {why}"))
}

pub(super) fn invalid_parameter(message: impl Into<String>) -> IdentityError {
    err(IdentityErrorType::InvalidParameter, message)
}

/// `InternalErrorException`; the cause goes to the log only.
pub(super) fn internal(e: &dyn std::fmt::Display) -> IdentityError {
    tracing::error!(error = %e, "cognito identity API: internal failure");
    err(IdentityErrorType::InternalError, "Internal error")
}

impl From<CallError> for IdentityError {
    fn from(e: CallError) -> Self {
        let kind = match e {
            CallError::UnknownOperation => IdentityErrorType::UnknownOperation,
            CallError::TooLarge => IdentityErrorType::InvalidParameter,
            CallError::NotJson | CallError::NotObject => IdentityErrorType::Serialization,
        };
        err(kind, e.message())
    }
}

impl IdentityError {
    pub(super) fn into_response(self) -> Response {
        json11::error(self.kind.status(), self.kind.name(), &self.message)
    }
}
