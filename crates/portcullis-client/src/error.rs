//! Why a management call failed, saying who is at fault: the caller's URL, the network, the
//! gateway's refusal (with the AWS error code boto3 would raise), or an answer this client does
//! not understand.

/// A refusal by the gateway: the HTTP status, the AWS error code of `x-amzn-ErrorType` and the
/// body's `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// `GoneException`, `ForbiddenException`, …; `HTTP <status>` when the answer names none.
    pub code: String,
    /// The body's `message`, or a description of the code when the body has none (a
    /// `GoneException` answers `{}` as on AWS).
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, HTTP {})", self.message, self.code, self.status)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The management URL cannot be used.
    #[error("bad management URL {url:?}: {reason}")]
    BadUrl { url: String, reason: &'static str },
    /// Nothing answered: refused, unresolvable, timed out while connecting.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The connection failed after it was made, or the answer did not come in time.
    #[error("calling {url}: {reason}")]
    Transport { url: String, reason: String },
    /// The gateway answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// The gateway answered success with a body this client cannot read.
    #[error("unexpected answer from the gateway: {0}")]
    Answer(String),
    /// The HTTP client could not be built (no TLS backend, …).
    #[error("cannot build the HTTP client: {0}")]
    Setup(String),
}

impl ClientError {
    /// The AWS error code when the gateway refused the call.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The connection is closed, unknown or not yet connected (410 `GoneException`).
    pub fn is_gone(&self) -> bool {
        matches!(self, ClientError::Api(e) if e.status == 410 || e.code == "GoneException")
    }
}
