//! The AWS JSON 1.1 protocol both Cognito APIs speak at `POST /`: the operation named by
//! `X-Amz-Target` (`<Service>.<Operation>`), a JSON object as the body, and answers as
//! `application/x-amz-json-1.1` with a request id; errors as `{"__type", "message"}` with an
//! `x-amzn-errortype` header. Each API keeps its own error types; this module only reads the
//! call and writes the answer.

use std::net::{IpAddr, SocketAddr};

use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::http::reply::{MAX_BODY_BYTES, json_as};
use crate::tokens;

/// The content type of requests and answers.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// One call: the operation (the target without the service's prefix), the body and the
/// caller's address.
pub struct Call {
    pub operation: String,
    pub body: Map<String, Value>,
    pub ip: Option<IpAddr>,
}

/// Why a request is not a call; each API answers it with its own error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// No `X-Amz-Target`, or one for another service.
    UnknownOperation,
    /// A body over [`MAX_BODY_BYTES`].
    TooLarge,
    /// A body that is not JSON.
    NotJson,
    /// JSON, but not an object.
    NotObject,
}

impl CallError {
    /// The message the caller reads.
    pub fn message(self) -> &'static str {
        match self {
            CallError::UnknownOperation => "Missing or unknown X-Amz-Target",
            CallError::TooLarge => "Request body too large",
            CallError::NotJson => "Request body is not valid JSON",
            CallError::NotObject => "Request body is not a JSON object",
        }
    }
}

/// Reads one call for the service whose targets start with `target_prefix`
/// (`AWSCognitoIdentityProviderService.`), the body bounded by [`MAX_BODY_BYTES`].
pub async fn read_call(request: Request, target_prefix: &str) -> Result<Call, CallError> {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(target_prefix))
        .map(str::to_owned)
        .ok_or(CallError::UnknownOperation)?;
    let bytes = to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| CallError::TooLarge)?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|_| CallError::NotJson)?;
    let Value::Object(body) = body else {
        return Err(CallError::NotObject);
    };
    Ok(Call {
        operation,
        body,
        ip,
    })
}

/// An answer: `body` with `status`, the protocol's content type, `no-store` and a request id.
pub fn answer(status: StatusCode, body: &Value) -> Response {
    let mut response = json_as(status, CONTENT_TYPE, body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&tokens::uuid_v4()) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// An error answer: `{"__type": name, "message": message}` and `x-amzn-errortype: name:`.
pub fn error(status: StatusCode, name: &str, message: &str) -> Response {
    let body = json!({"__type": name, "message": message});
    let mut response = answer(status, &body);
    if let Ok(v) = HeaderValue::from_str(&format!("{name}:")) {
        response.headers_mut().insert("x-amzn-errortype", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(target: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::post("/");
        if let Some(t) = target {
            builder = builder.header("x-amz-target", t);
        }
        builder.body(Body::from(body.to_owned())).expect("request")
    }

    #[tokio::test]
    async fn reads_the_operation_and_the_object() {
        let call = read_call(request(Some("Svc.GetId"), r#"{"a":1}"#), "Svc.")
            .await
            .expect("call");
        assert_eq!(call.operation, "GetId");
        assert_eq!(call.body.get("a"), Some(&json!(1)));
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_call() {
        let cases = [
            (None, "{}", CallError::UnknownOperation),
            (Some("Other.GetId"), "{}", CallError::UnknownOperation),
            (Some("Svc.GetId"), "{", CallError::NotJson),
            (Some("Svc.GetId"), "[1]", CallError::NotObject),
        ];
        for (target, body, want) in cases {
            let got = read_call(request(target, body), "Svc.").await.err();
            assert_eq!(got, Some(want), "{target:?} {body}");
        }
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        let got = read_call(request(Some("Svc.GetId"), &big), "Svc.")
            .await
            .err();
        assert_eq!(got, Some(CallError::TooLarge));
    }

    #[test]
    fn errors_carry_the_type_in_body_and_header() {
        let r = error(StatusCode::BAD_REQUEST, "NotAuthorizedException", "no");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["x-amzn-errortype"], "NotAuthorizedException:");
        assert_eq!(r.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert!(r.headers().contains_key("x-amzn-requestid"));
    }
}
