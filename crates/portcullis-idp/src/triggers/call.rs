//! Calling a trigger: the event POSTed to a webhook or handed to a function, bounded in time
//! and in the size of the answer, and the outcome read as Cognito reads a Lambda's.

use std::sync::Arc;

use portcullis_config::{Trigger, TriggerTarget};
use serde_json::Value;

use super::event::TriggerKind;
use super::{FunctionFailure, FunctionInvoker, TriggerError};

/// Largest answer read from a trigger; a longer one fails the operation.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Longest error message of a handler kept in the error answered to the caller.
const MAX_ERROR_MESSAGE_CHARS: usize = 1024;
/// What a trigger that did not answer in time is reported as (Cognito's wording).
pub const TIMED_OUT: &str = "Socket timeout while invoking Lambda function";

/// Calls `trigger` with `event` and returns the answer (the event with its `response`).
pub(crate) async fn call(
    kind: TriggerKind,
    trigger: &Trigger,
    event: &Value,
    client: &reqwest::Client,
    functions: Option<&FunctionInvoker>,
) -> Result<Value, TriggerError> {
    let body = event.to_string().into_bytes();
    let answer = match &trigger.target {
        TriggerTarget::Url(url) => {
            tokio::time::timeout(trigger.timeout, post(kind, client, url, body)).await
        }
        TriggerTarget::Function(name) => {
            let Some(functions) = functions else {
                return Err(TriggerError::failed(kind, "functions are not running"));
            };
            let invoker = Arc::clone(&functions.0);
            tokio::time::timeout(trigger.timeout, invoke(kind, invoker, name, body)).await
        }
    };
    let bytes = answer.map_err(|_| TriggerError::failed(kind, TIMED_OUT))??;
    serde_json::from_slice(&bytes).map_err(|_| TriggerError::BadAnswer(kind))
}

/// A handler's error message as the caller sees it: bounded, on one line.
fn error_message(message: &str) -> String {
    message
        .chars()
        .take(MAX_ERROR_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

async fn invoke(
    kind: TriggerKind,
    functions: Arc<dyn super::TriggerFunctions>,
    name: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, TriggerError> {
    match functions.invoke(name, body).await {
        Ok(answer) if answer.len() > MAX_ANSWER_BYTES => {
            Err(TriggerError::failed(kind, "response too large"))
        }
        Ok(answer) => Ok(answer),
        Err(FunctionFailure::Raised(message)) => Err(TriggerError::Raised {
            kind,
            message: error_message(&message),
        }),
        Err(FunctionFailure::Failed(reason)) => Err(TriggerError::failed(kind, &reason)),
    }
}

/// POSTs the event; a 2xx answer's body is the returned event, any other status is the
/// handler raising `{"errorMessage": ...}` (or a failed call without one).
async fn post(
    kind: TriggerKind,
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, TriggerError> {
    let response = client
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        // the error's text may carry the URL (and its credentials): only its kind is kept
        .map_err(|e| {
            let reason = if e.is_connect() {
                "connection refused"
            } else {
                "request failed"
            };
            TriggerError::failed(kind, reason)
        })?;
    let status = response.status();
    let bytes = read_bounded(kind, response).await?;
    if status.is_success() {
        return Ok(bytes);
    }
    let raised = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("errorMessage")?.as_str().map(error_message));
    match raised {
        Some(message) => Err(TriggerError::Raised { kind, message }),
        None => Err(TriggerError::failed(
            kind,
            &format!("status {}", status.as_u16()),
        )),
    }
}

/// The body of `response`, refused past [`MAX_ANSWER_BYTES`] without reading further.
async fn read_bounded(
    kind: TriggerKind,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, TriggerError> {
    let too_large = || TriggerError::failed(kind, "response too large");
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if out.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
                    return Err(too_large());
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(_) => return Err(TriggerError::failed(kind, "response interrupted")),
        }
    }
}
