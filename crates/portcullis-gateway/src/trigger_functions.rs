//! The functions a user pool's triggers name (`[pools.NAME.triggers] … = { function = "NAME" }`),
//! run by the gateway's [`Functions`] for the identity provider, which does not run processes.

use std::sync::Arc;

use bytes::Bytes;
use portcullis_functions::{FunctionError, Functions};
use portcullis_idp::triggers::{FunctionFailure, Invocation, TIMED_OUT, TriggerFunctions};

/// The gateway's functions as the identity provider's triggers call them.
pub(crate) struct TriggerInvoker(pub(crate) Arc<Functions>);

impl TriggerFunctions for TriggerInvoker {
    fn invoke<'a>(&'a self, name: &'a str, event: Vec<u8>) -> Invocation<'a> {
        Box::pin(async move {
            match self.0.invoke(name, Bytes::from(event)).await {
                Ok(done) => Ok(done.payload.to_vec()),
                Err(e) => Err(failure(e)),
            }
        })
    }
}

/// A failed invocation as the trigger reports it: the handler's error message when it raised
/// one, else a short reason (never a stack trace: those are in the function's log).
fn failure(e: FunctionError) -> FunctionFailure {
    match e {
        FunctionError::Handled { error_message, .. } => FunctionFailure::Raised(error_message),
        FunctionError::Timeout(_) => FunctionFailure::Failed(TIMED_OUT.to_owned()),
        other => FunctionFailure::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_errors_keep_their_message_and_the_rest_a_reason() {
        let raised = failure(FunctionError::Handled {
            error_type: "Exception".into(),
            error_message: "not invited".into(),
        });
        assert_eq!(raised, FunctionFailure::Raised("not invited".into()));
        let timeout = failure(FunctionError::Timeout(std::time::Duration::from_secs(3)));
        assert_eq!(timeout, FunctionFailure::Failed(TIMED_OUT.to_owned()));
        let overloaded = failure(FunctionError::Overloaded("claims".into()));
        assert!(matches!(overloaded, FunctionFailure::Failed(m) if m.contains("concurrency")));
    }
}
