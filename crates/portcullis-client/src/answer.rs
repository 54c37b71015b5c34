//! Reading the gateway's answers: `{"connections": N}` (how many connections a push reached),
//! `{"connections": [{"connectionId", …}]}` (lists) and error answers (status,
//! `x-amzn-ErrorType`, `{"message": …}`).

use serde_json::Value;

use crate::{ApiError, ClientError};

/// One connection of a list (`GET @connections`, `GET @users/{p}`, `GET @topics/{t}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSummary {
    pub connection_id: String,
    /// ISO-8601 (`2025-03-03T09:14:02.118Z`); absent in `GET @connections`.
    pub connected_at: Option<String>,
    /// `websocket` or `sse`; absent in `GET @connections`.
    pub transport: Option<String>,
}

/// `{"connections": N}`: how many connections a push was handed to.
pub fn delivered(body: &[u8]) -> Result<usize, ClientError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ClientError::Answer("the push answer is not JSON".into()))?;
    value
        .get("connections")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| ClientError::Answer("the push answer has no \"connections\" count".into()))
}

/// `{"connections": [{"connectionId": …, "connectedAt": …, "transport": …}, …]}`.
pub fn connection_list(body: &[u8]) -> Result<Vec<ConnectionSummary>, ClientError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ClientError::Answer("the connection list is not JSON".into()))?;
    let list = value
        .get("connections")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ClientError::Answer("the connection list has no \"connections\" array".into())
        })?;
    list.iter()
        .map(|c| {
            let text = |key: &str| c.get(key).and_then(Value::as_str).map(str::to_owned);
            Ok(ConnectionSummary {
                connection_id: text("connectionId").ok_or_else(|| {
                    ClientError::Answer("a listed connection has no \"connectionId\"".into())
                })?,
                connected_at: text("connectedAt"),
                transport: text("transport"),
            })
        })
        .collect()
}

/// Longest error message kept from an answer (a misbehaving proxy may send a page).
const MAX_MESSAGE_CHARS: usize = 300;

/// The error an answer with a non-success `status` stands for. `error_type` is the
/// `x-amzn-ErrorType` header (`GoneException`, or `GoneException:http://…` as AWS sends it).
pub fn refusal(status: u16, error_type: Option<&str>, body: &[u8]) -> ApiError {
    let code = error_type
        .and_then(|t| t.split(':').next())
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map_or_else(|| format!("HTTP {status}"), str::to_owned);
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| describe(&code, body));
    ApiError {
        status,
        code,
        message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
    }
}

/// A message for an answer whose body has none.
fn describe(code: &str, body: &[u8]) -> String {
    match code {
        "GoneException" => "no such connection (closed, unknown or still connecting)".to_owned(),
        "ForbiddenException" => "the signature was refused".to_owned(),
        _ if body.is_empty() => "no message".to_owned(),
        _ => String::from_utf8_lossy(body).trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(delivered(br#"{"connections": 3}"#).ok(), Some(3));
        assert_eq!(delivered(br#"{"connections":0}"#).ok(), Some(0));
        for bad in [
            &b"nope"[..],
            b"{}",
            br#"{"connections":-1}"#,
            br#"{"connections":[]}"#,
        ] {
            assert!(
                matches!(delivered(bad), Err(ClientError::Answer(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lists() {
        let list = connection_list(
            br#"{"connections":[
                {"connectionId":"a=","connectedAt":"2025-03-03T09:14:02.118Z","transport":"sse"},
                {"connectionId":"b"}]}"#,
        )
        .expect("parses");
        assert_eq!(
            list,
            [
                ConnectionSummary {
                    connection_id: "a=".into(),
                    connected_at: Some("2025-03-03T09:14:02.118Z".into()),
                    transport: Some("sse".into()),
                },
                ConnectionSummary {
                    connection_id: "b".into(),
                    connected_at: None,
                    transport: None,
                },
            ]
        );
        assert!(
            connection_list(br#"{"connections":[]}"#)
                .expect("parses")
                .is_empty()
        );
        for bad in [&b"{}"[..], b"nope", br#"{"connections":[{"id":"x"}]}"#] {
            assert!(connection_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusals_name_the_aws_code_and_message() {
        let e = refusal(
            413,
            Some("PayloadTooLargeException"),
            br#"{"message":"Request payload exceeds the maximum of 131072 bytes"}"#,
        );
        assert_eq!(
            e.to_string(),
            "Request payload exceeds the maximum of 131072 bytes (PayloadTooLargeException, HTTP 413)"
        );
        // AWS appends a URL to the type; Gone answers `{}`
        let gone = refusal(
            410,
            Some("GoneException:http://internal.amazon.com/"),
            b"{}",
        );
        assert_eq!(gone.code, "GoneException");
        assert!(gone.message.starts_with("no such connection"));
        // no header: the status stands in; a non-JSON body is shown, bounded
        let proxy = refusal(502, None, "x".repeat(10_000).as_bytes());
        assert_eq!(proxy.code, "HTTP 502");
        assert_eq!(proxy.message.len(), MAX_MESSAGE_CHARS);
        assert_eq!(refusal(404, None, b"").message, "no message");
    }
}
