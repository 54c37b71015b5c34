//! The errors of the JSON API: `{"__type": name, "message": message}` with the status and the
//! `x-amzn-errortype` header Cognito answers, each [`ErrorType`] with its status and its
//! [`Fault`].

use std::collections::BTreeMap;

use axum::response::Response;
use http::StatusCode;
use portcullis_core::fault::{Fault, HasFault};

use crate::attributes::{AttributeError, Writer};
use crate::http::json11::{self, CallError};
use crate::pending::challenges::ChallengeError;
use crate::store::{StoreError, UserRecord};
use crate::triggers::TriggerError;
use crate::{IdpError, PasswordCheck};

const MSG_BAD_CREDENTIALS: &str = "Incorrect username or password.";
const MSG_LIMIT_EXCEEDED: &str = "Attempt limit exceeded, please try after some time.";
const MSG_CODE_MISMATCH: &str = "Invalid verification code provided, please try again.";

/// The Cognito error types this API answers (`__type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    AccessDenied,
    CodeMismatch,
    EnableSoftwareTokenMFA,
    ExpiredCode,
    GroupExists,
    InternalError,
    InvalidLambdaResponse,
    InvalidParameter,
    InvalidPassword,
    LimitExceeded,
    NotAuthorized,
    PasswordResetRequired,
    ResourceNotFound,
    Serialization,
    SoftwareTokenMFANotFound,
    TooManyRequests,
    Unauthorized,
    UnexpectedLambda,
    UnknownOperation,
    UnsupportedTokenType,
    UnsupportedUserState,
    UserLambdaValidation,
    UserNotConfirmed,
    UserNotFound,
    UsernameExists,
}

impl ErrorType {
    /// Every error type (tests, documentation).
    pub const ALL: [ErrorType; 25] = [
        ErrorType::AccessDenied,
        ErrorType::CodeMismatch,
        ErrorType::EnableSoftwareTokenMFA,
        ErrorType::ExpiredCode,
        ErrorType::GroupExists,
        ErrorType::InternalError,
        ErrorType::InvalidLambdaResponse,
        ErrorType::InvalidParameter,
        ErrorType::InvalidPassword,
        ErrorType::LimitExceeded,
        ErrorType::NotAuthorized,
        ErrorType::PasswordResetRequired,
        ErrorType::ResourceNotFound,
        ErrorType::Serialization,
        ErrorType::SoftwareTokenMFANotFound,
        ErrorType::TooManyRequests,
        ErrorType::Unauthorized,
        ErrorType::UnexpectedLambda,
        ErrorType::UnknownOperation,
        ErrorType::UnsupportedTokenType,
        ErrorType::UnsupportedUserState,
        ErrorType::UserLambdaValidation,
        ErrorType::UserNotConfirmed,
        ErrorType::UserNotFound,
        ErrorType::UsernameExists,
    ];

    /// The `__type` on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::AccessDenied => "AccessDeniedException",
            ErrorType::CodeMismatch => "CodeMismatchException",
            ErrorType::EnableSoftwareTokenMFA => "EnableSoftwareTokenMFAException",
            ErrorType::ExpiredCode => "ExpiredCodeException",
            ErrorType::GroupExists => "GroupExistsException",
            ErrorType::InternalError => "InternalErrorException",
            ErrorType::InvalidLambdaResponse => "InvalidLambdaResponseException",
            ErrorType::InvalidParameter => "InvalidParameterException",
            ErrorType::InvalidPassword => "InvalidPasswordException",
            ErrorType::LimitExceeded => "LimitExceededException",
            ErrorType::NotAuthorized => "NotAuthorizedException",
            ErrorType::PasswordResetRequired => "PasswordResetRequiredException",
            ErrorType::ResourceNotFound => "ResourceNotFoundException",
            ErrorType::Serialization => "SerializationException",
            ErrorType::SoftwareTokenMFANotFound => "SoftwareTokenMFANotFoundException",
            ErrorType::TooManyRequests => "TooManyRequestsException",
            ErrorType::Unauthorized => "UnauthorizedException",
            ErrorType::UnexpectedLambda => "UnexpectedLambdaException",
            ErrorType::UnknownOperation => "UnknownOperationException",
            ErrorType::UnsupportedTokenType => "UnsupportedTokenTypeException",
            ErrorType::UnsupportedUserState => "UnsupportedUserStateException",
            ErrorType::UserLambdaValidation => "UserLambdaValidationException",
            ErrorType::UserNotConfirmed => "UserNotConfirmedException",
            ErrorType::UserNotFound => "UserNotFoundException",
            ErrorType::UsernameExists => "UsernameExistsException",
        }
    }

    /// Who is at fault: the provider for `InternalErrorException`, the caller for the rest.
    pub fn fault(self) -> Fault {
        match self {
            ErrorType::InternalError => Fault::Internal,
            _ => Fault::Client,
        }
    }

    /// The HTTP status: 500 for `InternalErrorException`, 403 for `AccessDeniedException` (a
    /// signed call by a credential without the `admin` scope), 400 for the rest (as Cognito).
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::AccessDenied => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error of the JSON API: `{"__type": name, "message": message}`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", kind.name())]
pub struct CognitoError {
    pub kind: ErrorType,
    pub message: String,
}

impl HasFault for CognitoError {
    fn fault(&self) -> Fault {
        self.kind.fault()
    }
}

pub(super) fn err(kind: ErrorType, message: impl Into<String>) -> CognitoError {
    CognitoError {
        kind,
        message: message.into(),
    }
}

pub(super) fn not_authorized(message: impl Into<String>) -> CognitoError {
    err(ErrorType::NotAuthorized, message)
}

pub(super) fn invalid_parameter(message: impl Into<String>) -> CognitoError {
    err(ErrorType::InvalidParameter, message)
}

pub(super) fn limit_exceeded() -> CognitoError {
    err(ErrorType::LimitExceeded, MSG_LIMIT_EXCEEDED)
}

pub(super) fn code_mismatch() -> CognitoError {
    err(ErrorType::CodeMismatch, MSG_CODE_MISMATCH)
}

pub(super) fn bad_credentials() -> CognitoError {
    not_authorized(MSG_BAD_CREDENTIALS)
}

/// `InternalErrorException`; the cause goes to the log only.
pub(super) fn internal(e: &dyn std::fmt::Display) -> CognitoError {
    tracing::error!(error = %e, "cognito API: internal failure");
    err(ErrorType::InternalError, "Internal error")
}

impl From<IdpError> for CognitoError {
    fn from(e: IdpError) -> Self {
        match e {
            IdpError::UserNotFound => err(ErrorType::UserNotFound, "User does not exist."),
            IdpError::UserExists | IdpError::Store(StoreError::Conflict(_)) => {
                err(ErrorType::UsernameExists, "User already exists")
            }
            IdpError::InvalidPassword(v) => err(ErrorType::InvalidPassword, v.to_string()),
            IdpError::InvalidParameter(m) => invalid_parameter(m),
            IdpError::GroupNotFound => err(ErrorType::ResourceNotFound, "Group not found."),
            IdpError::GroupExists => err(
                ErrorType::GroupExists,
                "A group with the name already exists.",
            ),
            IdpError::LimitExceeded(m) => err(ErrorType::LimitExceeded, m),
            IdpError::Trigger(e) => trigger_error(&e),
            other => internal(&other),
        }
    }
}

/// A trigger's refusal or failure, with Cognito's type and message.
pub(super) fn trigger_error(e: &TriggerError) -> CognitoError {
    let kind = match e {
        TriggerError::Raised { .. } => ErrorType::UserLambdaValidation,
        TriggerError::Failed { .. } => ErrorType::UnexpectedLambda,
        TriggerError::BadAnswer(_) => ErrorType::InvalidLambdaResponse,
    };
    err(kind, e.to_string())
}

impl From<StoreError> for CognitoError {
    fn from(e: StoreError) -> Self {
        IdpError::from(e).into()
    }
}

impl From<AttributeError> for CognitoError {
    fn from(e: AttributeError) -> Self {
        let kind = match e {
            AttributeError::Unauthorized(_) => ErrorType::NotAuthorized,
            _ => ErrorType::InvalidParameter,
        };
        err(kind, e.to_string())
    }
}

impl From<ChallengeError> for CognitoError {
    fn from(e: ChallengeError) -> Self {
        match e {
            ChallengeError::Full => err(ErrorType::TooManyRequests, "Too many pending sign-ins"),
            ChallengeError::Invalid => not_authorized("Invalid session for the user."),
        }
    }
}

impl From<CallError> for CognitoError {
    fn from(e: CallError) -> Self {
        let kind = match e {
            CallError::UnknownOperation => ErrorType::UnknownOperation,
            CallError::TooLarge => ErrorType::InvalidParameter,
            CallError::NotJson | CallError::NotObject => ErrorType::Serialization,
        };
        err(kind, e.message())
    }
}

impl CognitoError {
    pub(super) fn into_response(self) -> Response {
        json11::error(self.kind.status(), self.kind.name(), &self.message)
    }
}

/// The answer to a password check: the user, or Cognito's lockout / bad-credentials error.
pub(super) fn password_answer(
    check: Result<PasswordCheck, IdpError>,
) -> Result<UserRecord, CognitoError> {
    match check {
        Ok(PasswordCheck::Valid(user)) => Ok(*user),
        Ok(PasswordCheck::Locked) => Err(not_authorized("Password attempts exceeded")),
        Ok(PasswordCheck::Invalid) => Err(bad_credentials()),
        Err(e) => Err(internal(&e)),
    }
}

/// [`crate::attributes::check_write`] with Cognito's error types.
pub(super) fn check_attributes(
    pool: &portcullis_config::Pool,
    writer: Writer,
    attributes: &BTreeMap<String, String>,
) -> Result<(), CognitoError> {
    Ok(crate::attributes::check_write(pool, writer, attributes)?)
}

#[cfg(test)]
mod tests;
