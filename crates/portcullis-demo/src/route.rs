//! What the chat backend does with one event: a pure function from the event JSON to a
//! [`Decision`], so every route is tested without a network.

use serde_json::{Value, json};

/// What the backend must do for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Answer the gateway with this Lambda proxy result and do nothing else.
    Reply(Value),
    /// Push `data` to every open connection, then answer `{"statusCode":200}`.
    Broadcast { from: String, data: Vec<u8> },
}

/// Why an event could not be handled; answered with HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent(pub String);

impl std::fmt::Display for BadEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn ok() -> Value {
    json!({ "statusCode": 200 })
}

fn reply(status: u16, body: &Value) -> Value {
    json!({ "statusCode": status, "body": body.to_string() })
}

/// Decides what to do with the raw body of a POST to `/events`.
pub fn decide(raw: &[u8]) -> Result<Decision, BadEvent> {
    let event: Value =
        serde_json::from_slice(raw).map_err(|e| BadEvent(format!("event is not JSON: {e}")))?;
    let ctx = event
        .get("requestContext")
        .and_then(Value::as_object)
        .ok_or_else(|| BadEvent("event has no requestContext object".into()))?;
    let connection_id = ctx
        .get("connectionId")
        .and_then(Value::as_str)
        .ok_or_else(|| BadEvent("requestContext.connectionId is missing".into()))?;
    let event_type = ctx.get("eventType").and_then(Value::as_str).unwrap_or("");
    let route_key = ctx.get("routeKey").and_then(Value::as_str).unwrap_or("");

    match (event_type, route_key) {
        ("CONNECT", _) | (_, "$connect") => Ok(Decision::Reply(ok())),
        ("DISCONNECT", _) | (_, "$disconnect") => Ok(Decision::Reply(ok())),
        (_, "sendmessage") => {
            let body = event.get("body").and_then(Value::as_str).unwrap_or("");
            let message: Value = serde_json::from_str(body)
                .map_err(|e| BadEvent(format!("sendmessage body is not JSON: {e}")))?;
            let data = match message.get("data") {
                Some(Value::String(s)) => s.clone().into_bytes(),
                Some(Value::Null) | None => {
                    return Err(BadEvent("sendmessage body has no \"data\"".into()));
                }
                // Numbers, objects, arrays: send their JSON text.
                Some(other) => other.to_string().into_bytes(),
            };
            Ok(Decision::Broadcast {
                from: connection_id.to_owned(),
                data,
            })
        }
        (_, "whoami") => {
            let mut me = json!({ "connectionId": connection_id, "routeKey": route_key });
            for key in ["stage", "identity", "connectedAt", "authorizer"] {
                if let Some(value) = ctx.get(key).filter(|v| !v.is_null()) {
                    me[key] = value.clone();
                }
            }
            Ok(Decision::Reply(reply(200, &me)))
        }
        _ => {
            // `$default` and anything else: say who sent what, and how to chat.
            let body = event.get("body").and_then(Value::as_str).unwrap_or("");
            let mut echo = json!({
                "connectionId": connection_id,
                "routeKey": route_key,
                "received": body,
                "hint": "send {\"action\":\"sendmessage\",\"data\":\"...\"} to chat, {\"action\":\"whoami\"} to see yourself",
            });
            if let Some(authorizer) = ctx.get("authorizer") {
                echo["authorizer"] = authorizer.clone();
            }
            Ok(Decision::Reply(reply(200, &echo)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, route: &str, body: Option<&str>) -> Vec<u8> {
        let mut e = json!({
            "requestContext": {
                "eventType": event_type, "routeKey": route, "connectionId": "Yq3jQfP1oAMCJzA=",
                "stage": "prod", "identity": {"sourceIp": "127.0.0.1"}
            },
            "isBase64Encoded": false
        });
        if let Some(b) = body {
            e["body"] = json!(b);
        }
        e.to_string().into_bytes()
    }

    fn body_of(d: Decision) -> Value {
        match d {
            Decision::Reply(v) => {
                let b = v["body"].as_str().expect("reply has a body");
                serde_json::from_str(b).expect("body is JSON")
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn connect_and_disconnect_answer_200_without_body() {
        for (t, r) in [("CONNECT", "$connect"), ("DISCONNECT", "$disconnect")] {
            assert_eq!(
                decide(&event(t, r, None)),
                Ok(Decision::Reply(json!({"statusCode": 200})))
            );
        }
    }

    #[test]
    fn sendmessage_broadcasts_data() {
        let d = decide(&event(
            "MESSAGE",
            "sendmessage",
            Some(r#"{"action":"sendmessage","data":"hi"}"#),
        ));
        assert_eq!(
            d,
            Ok(Decision::Broadcast {
                from: "Yq3jQfP1oAMCJzA=".into(),
                data: b"hi".to_vec()
            })
        );
    }

    #[test]
    fn sendmessage_with_structured_data_sends_its_json() {
        let d = decide(&event(
            "MESSAGE",
            "sendmessage",
            Some(r#"{"action":"sendmessage","data":{"a":1}}"#),
        ));
        assert_eq!(
            d,
            Ok(Decision::Broadcast {
                from: "Yq3jQfP1oAMCJzA=".into(),
                data: br#"{"a":1}"#.to_vec()
            })
        );
    }

    #[test]
    fn sendmessage_without_data_is_bad() {
        assert!(
            decide(&event(
                "MESSAGE",
                "sendmessage",
                Some(r#"{"action":"sendmessage"}"#)
            ))
            .is_err()
        );
        assert!(decide(&event("MESSAGE", "sendmessage", Some("not json"))).is_err());
        assert!(decide(&event("MESSAGE", "sendmessage", None)).is_err());
    }

    #[test]
    fn whoami_echoes_connection_and_authorizer() {
        let mut e: Value =
            serde_json::from_slice(&event("MESSAGE", "whoami", Some("{}"))).expect("json");
        e["requestContext"]["authorizer"] = json!({"principalId": "alice"});
        let b = body_of(decide(e.to_string().as_bytes()).expect("decides"));
        assert_eq!(b["connectionId"], "Yq3jQfP1oAMCJzA=");
        assert_eq!(b["authorizer"]["principalId"], "alice");
        assert_eq!(b["identity"]["sourceIp"], "127.0.0.1");
    }

    #[test]
    fn default_route_echoes_the_body() {
        let b = body_of(decide(&event("MESSAGE", "$default", Some("hello"))).expect("decides"));
        assert_eq!(b["received"], "hello");
        assert_eq!(b["connectionId"], "Yq3jQfP1oAMCJzA=");
        assert!(b.get("authorizer").is_none());
    }

    #[test]
    fn garbage_is_a_bad_event_not_a_panic() {
        for raw in [
            &b""[..],
            b"null",
            b"[]",
            b"{}",
            b"{\"requestContext\":1}",
            b"\xff\xfe",
            br#"{"requestContext":{"routeKey":"$connect"}}"#,
        ] {
            assert!(decide(raw).is_err(), "{raw:?}");
        }
    }
}
