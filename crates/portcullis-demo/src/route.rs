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
    /// Answer with `reply` at once, then push `data` to every open connection (join and leave
    /// notices: the gateway only registers a connection once `$connect` has been answered).
    ReplyThenBroadcast { reply: Value, data: Vec<u8> },
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

/// The signed-in user's name from `requestContext.authorizer`: the JWT's `username` (or
/// `cognito:username`), else the principal id. `None` for anonymous connections.
fn signed_in_name(ctx: &serde_json::Map<String, Value>) -> Option<String> {
    let authorizer = ctx.get("authorizer")?;
    let claims = authorizer.get("jwt").and_then(|j| j.get("claims"));
    ["username", "cognito:username"]
        .iter()
        .find_map(|k| claims.and_then(|c| c.get(*k)).and_then(Value::as_str))
        .or_else(|| authorizer.get("principalId").and_then(Value::as_str))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// The text a chat message carries: `data` as a string, or its JSON text.
fn message_data(event: &Value, route: &str) -> Result<String, BadEvent> {
    let body = event.get("body").and_then(Value::as_str).unwrap_or("");
    let message: Value = serde_json::from_str(body)
        .map_err(|e| BadEvent(format!("{route} body is not JSON: {e}")))?;
    match message.get("data") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Null) | None => Err(BadEvent(format!("{route} body has no \"data\""))),
        // Numbers, objects, arrays: send their JSON text.
        Some(other) => Ok(other.to_string()),
    }
}

fn envelope(kind: &str, from: Option<&str>, text: &str, now: &str) -> Vec<u8> {
    let mut e = json!({ "type": kind, "text": text, "at": now });
    if let Some(from) = from {
        e["from"] = json!(from);
    }
    e.to_string().into_bytes()
}

/// Decides what to do with the raw body of a POST to `/events`; `now` (RFC 3339) stamps the
/// messages it pushes.
///
/// Signed-in connections chat in JSON envelopes that name the sender
/// (`{"type":"message","from":"alice","text":"hi","at":"..."}`), and everyone hears when they
/// join and leave; anonymous connections (the terminal demo) get the text as it was sent.
pub fn decide(raw: &[u8], now: &str) -> Result<Decision, BadEvent> {
    let event: Value =
        serde_json::from_slice(raw).map_err(|e| BadEvent(format!("event is not JSON: {e}")))?;
    // An HTTP API event (payload format 2.0): the page's health check.
    if event.get("version").and_then(Value::as_str) == Some("2.0") {
        return Ok(Decision::Reply(reply(200, &json!({ "ok": true }))));
    }
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
    let user = signed_in_name(ctx);

    match (event_type, route_key) {
        ("CONNECT", _) | (_, "$connect") | ("DISCONNECT", _) | (_, "$disconnect") => {
            let joined = event_type == "CONNECT" || route_key == "$connect";
            Ok(match user {
                Some(name) => {
                    let verb = if joined { "joined" } else { "left" };
                    Decision::ReplyThenBroadcast {
                        reply: ok(),
                        data: envelope("system", None, &format!("{name} {verb}"), now),
                    }
                }
                None => Decision::Reply(ok()),
            })
        }
        (_, "sendmessage") => {
            let text = message_data(&event, route_key)?;
            let data = match &user {
                Some(name) => envelope("message", Some(name), &text, now),
                None => text.into_bytes(),
            };
            Ok(Decision::Broadcast {
                from: connection_id.to_owned(),
                data,
            })
        }
        (_, "announce") => {
            let text = message_data(&event, route_key)?;
            let from = user.as_deref().unwrap_or(connection_id);
            Ok(Decision::Broadcast {
                from: connection_id.to_owned(),
                data: envelope("announcement", Some(from), &text, now),
            })
        }
        (_, "whoami") => {
            let mut me = json!({
                "type": "whoami",
                "connectionId": connection_id,
                "routeKey": route_key,
            });
            if let Some(name) = &user {
                me["username"] = json!(name);
            }
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
                "type": "echo",
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

    const NOW: &str = "2026-11-22T10:00:00Z";

    fn decide_at(raw: &[u8]) -> Result<Decision, BadEvent> {
        decide(raw, NOW)
    }

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
                decide_at(&event(t, r, None)),
                Ok(Decision::Reply(json!({"statusCode": 200})))
            );
        }
    }

    #[test]
    fn sendmessage_broadcasts_data() {
        let d = decide_at(&event(
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
        let d = decide_at(&event(
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
            decide_at(&event(
                "MESSAGE",
                "sendmessage",
                Some(r#"{"action":"sendmessage"}"#)
            ))
            .is_err()
        );
        assert!(decide_at(&event("MESSAGE", "sendmessage", Some("not json"))).is_err());
        assert!(decide_at(&event("MESSAGE", "sendmessage", None)).is_err());
    }

    #[test]
    fn whoami_echoes_connection_and_authorizer() {
        let mut e: Value =
            serde_json::from_slice(&event("MESSAGE", "whoami", Some("{}"))).expect("json");
        e["requestContext"]["authorizer"] = json!({"principalId": "alice"});
        let b = body_of(decide_at(e.to_string().as_bytes()).expect("decides"));
        assert_eq!(b["connectionId"], "Yq3jQfP1oAMCJzA=");
        assert_eq!(b["authorizer"]["principalId"], "alice");
        assert_eq!(b["identity"]["sourceIp"], "127.0.0.1");
    }

    #[test]
    fn default_route_echoes_the_body() {
        let b = body_of(decide_at(&event("MESSAGE", "$default", Some("hello"))).expect("decides"));
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
            assert!(decide_at(raw).is_err(), "{raw:?}");
        }
    }

    fn signed_in(event_type: &str, route: &str, body: Option<&str>) -> Vec<u8> {
        let mut e: Value = serde_json::from_slice(&event(event_type, route, body)).expect("json");
        e["requestContext"]["authorizer"] = json!({
            "principalId": "3f1c-sub",
            "jwt": {"claims": {"username": "alice", "scope": "chat/write"}, "scopes": ["chat/write"]}
        });
        e.to_string().into_bytes()
    }

    fn pushed(data: &[u8]) -> Value {
        serde_json::from_slice(data).expect("pushed data is JSON")
    }

    #[test]
    fn signed_in_messages_name_their_sender() {
        let d = decide_at(&signed_in(
            "MESSAGE",
            "sendmessage",
            Some(r#"{"action":"sendmessage","data":"hi"}"#),
        ));
        let Ok(Decision::Broadcast { data, .. }) = d else {
            panic!("expected a broadcast, got {d:?}");
        };
        assert_eq!(
            pushed(&data),
            json!({"type": "message", "from": "alice", "text": "hi", "at": NOW})
        );
    }

    #[test]
    fn announcements_are_their_own_kind() {
        let d = decide_at(&signed_in(
            "MESSAGE",
            "announce",
            Some(r#"{"action":"announce","data":"maintenance at noon"}"#),
        ));
        let Ok(Decision::Broadcast { data, .. }) = d else {
            panic!("expected a broadcast, got {d:?}");
        };
        let v = pushed(&data);
        assert_eq!(v["type"], "announcement");
        assert_eq!(v["from"], "alice");
        assert_eq!(v["text"], "maintenance at noon");
    }

    #[test]
    fn everyone_hears_signed_in_users_join_and_leave() {
        for (t, r, text) in [
            ("CONNECT", "$connect", "alice joined"),
            ("DISCONNECT", "$disconnect", "alice left"),
        ] {
            let d = decide_at(&signed_in(t, r, None));
            let Ok(Decision::ReplyThenBroadcast { reply, data }) = d else {
                panic!("expected reply + broadcast, got {d:?}");
            };
            assert_eq!(reply, json!({"statusCode": 200}));
            assert_eq!(pushed(&data)["type"], "system");
            assert_eq!(pushed(&data)["text"], text);
        }
    }

    #[test]
    fn whoami_names_the_signed_in_user() {
        let b = body_of(decide_at(&signed_in("MESSAGE", "whoami", Some("{}"))).expect("decides"));
        assert_eq!(b["type"], "whoami");
        assert_eq!(b["username"], "alice");
        assert_eq!(b["authorizer"]["jwt"]["scopes"][0], "chat/write");
    }

    #[test]
    fn http_api_events_are_the_health_check() {
        let event = json!({"version": "2.0", "routeKey": "GET /health", "rawPath": "/api/health"});
        let d = decide_at(event.to_string().as_bytes()).expect("decides");
        assert_eq!(
            d,
            Decision::Reply(json!({"statusCode": 200, "body": "{\"ok\":true}"}))
        );
    }
}
