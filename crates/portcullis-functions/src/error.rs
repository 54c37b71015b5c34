//! What can go wrong with an invocation, and whose fault it is.

/// Who caused a failed invocation: drives the status an edge answers with and the log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller: an unknown function, an event too large.
    Caller,
    /// The function's code: it failed to start, threw, crashed, ran too long or answered too
    /// much.
    Function,
    /// Capacity: every environment busy and the queue full.
    Capacity,
    /// Portcullis itself: a process could not be started, a socket could not be bound.
    Gateway,
}

/// A failed invocation. Messages are what a client may see: never a stack trace (those go to
/// the log) and never an environment variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FunctionError {
    #[error("no function named {0:?}")]
    UnknownFunction(String),
    #[error("event of {size} bytes exceeds the limit of {limit} bytes")]
    EventTooLarge { size: usize, limit: usize },
    #[error("function {0:?} is at its concurrency limit and its queue is full")]
    Overloaded(String),
    #[error("{error_type}: {error_message}")]
    InitError {
        error_type: String,
        error_message: String,
    },
    #[error("{error_type}: {error_message}")]
    Handled {
        error_type: String,
        error_message: String,
    },
    #[error("task timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("runtime exited during the invocation: {0}")]
    Crashed(String),
    #[error("response exceeds the limit of {0} bytes")]
    ResponseTooLarge(usize),
    #[error("cannot run the function: {0}")]
    Gateway(String),
}

impl FunctionError {
    pub fn fault(&self) -> Fault {
        match self {
            FunctionError::UnknownFunction(_) | FunctionError::EventTooLarge { .. } => {
                Fault::Caller
            }
            FunctionError::Overloaded(_) => Fault::Capacity,
            FunctionError::InitError { .. }
            | FunctionError::Handled { .. }
            | FunctionError::Timeout(_)
            | FunctionError::Crashed(_)
            | FunctionError::ResponseTooLarge(_) => Fault::Function,
            FunctionError::Gateway(_) => Fault::Gateway,
        }
    }

    /// A short name of the failure for metrics (`function_errors_total{kind}`): `handled`
    /// (the handler raised or returned an error; its environment is kept), `init`, `timeout`,
    /// `crash`, `response_too_large`, `event_too_large`, `overloaded`, `unknown_function`,
    /// `gateway`.
    pub fn kind(&self) -> &'static str {
        match self {
            FunctionError::UnknownFunction(_) => "unknown_function",
            FunctionError::EventTooLarge { .. } => "event_too_large",
            FunctionError::Overloaded(_) => "overloaded",
            FunctionError::InitError { .. } => "init",
            FunctionError::Handled { .. } => "handled",
            FunctionError::Timeout(_) => "timeout",
            FunctionError::Crashed(_) => "crash",
            FunctionError::ResponseTooLarge(_) => "response_too_large",
            FunctionError::Gateway(_) => "gateway",
        }
    }

    /// The AWS error type, as `aws lambda invoke` shows it in the payload (function errors)
    /// or as the service error code (the others).
    pub fn error_type(&self) -> &str {
        match self {
            FunctionError::UnknownFunction(_) => "ResourceNotFoundException",
            FunctionError::EventTooLarge { .. } => "RequestTooLargeException",
            FunctionError::Overloaded(_) => "TooManyRequestsException",
            FunctionError::InitError { error_type, .. }
            | FunctionError::Handled { error_type, .. } => error_type,
            FunctionError::Timeout(_) => "Sandbox.Timedout",
            FunctionError::Crashed(_) => "Runtime.ExitError",
            FunctionError::ResponseTooLarge(_) => "Function.ResponseSizeTooLarge",
            FunctionError::Gateway(_) => "ServiceException",
        }
    }

    /// The message without the type.
    pub fn error_message(&self) -> String {
        match self {
            FunctionError::InitError { error_message, .. }
            | FunctionError::Handled { error_message, .. } => error_message.clone(),
            FunctionError::Timeout(d) => {
                format!("Task timed out after {:.2} seconds", d.as_secs_f64())
            }
            other => other.to_string(),
        }
    }

    /// `{"errorType": ..., "errorMessage": ...}`, the payload `aws lambda invoke` writes for a
    /// function error.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "errorType": self.error_type(),
            "errorMessage": self.error_message(),
        })
    }
}

/// Reads the `errorType` and `errorMessage` of an error body a runtime posted; anything else
/// in it (a stack trace) is left for the log. A body that is not such an object becomes an
/// `Unhandled` error with a fixed message.
pub(crate) fn parse_error_body(body: &[u8], header_type: Option<&str>) -> (String, String) {
    const MAX_FIELD: usize = 4096;
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(|s| truncate(s, MAX_FIELD))
    };
    let error_type = field("errorType")
        .or_else(|| header_type.map(|h| truncate(h, MAX_FIELD)))
        .unwrap_or_else(|| "Unhandled".to_owned());
    let error_message = field("errorMessage").unwrap_or_default();
    (error_type, error_message)
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_keep_type_and_message_only() {
        let body =
            br#"{"errorType":"ValueError","errorMessage":"bad","stackTrace":["secret line"]}"#;
        assert_eq!(
            parse_error_body(body, None),
            ("ValueError".to_owned(), "bad".to_owned())
        );
        assert_eq!(
            parse_error_body(b"not json", Some("Custom")),
            ("Custom".to_owned(), String::new())
        );
        assert_eq!(
            parse_error_body(b"{}", None),
            ("Unhandled".to_owned(), String::new())
        );
        let long = format!(r#"{{"errorMessage":"{}"}}"#, "é".repeat(5000));
        assert!(parse_error_body(long.as_bytes(), None).1.len() <= 4096);
    }

    #[test]
    fn errors_render_like_aws_lambda_invoke() {
        let e = FunctionError::Timeout(std::time::Duration::from_secs(3));
        assert_eq!(
            e.to_json(),
            serde_json::json!({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 3.00 seconds"})
        );
        assert_eq!(e.fault(), Fault::Function);
        assert_eq!(
            FunctionError::Overloaded("f".into()).fault(),
            Fault::Capacity
        );
    }
}
