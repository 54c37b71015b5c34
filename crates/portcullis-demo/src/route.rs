//! What the chat backend does with one event: a pure function from the event JSON to a
//! [`Decision`], so every route is tested without a network.
//!
//! Signed-in users chat in rooms, each a topic of the gateway (`room:NAME`): a connection is
//! subscribed to `room:lobby` and `announcements` when it connects, `join`/`leave` subscribe it
//! to other rooms, and a message is published to its room's topic, so it reaches the room's
//! members only. A direct message (`direct`) is pushed to the user (`@users/{name}`), which
//! reaches every connection of theirs, WebSocket and Server-Sent Events alike. Connections over
//! Server-Sent Events only listen: they get announcements and direct messages. Anonymous
//! connections (the terminal demo) have no user to push to, so their messages go to every open
//! connection.

use serde_json::{Value, json};

/// The room every signed-in WebSocket connection starts in.
pub const LOBBY: &str = "lobby";
/// The topic of announcements: every signed-in connection, WebSocket or Server-Sent Events.
pub const ANNOUNCEMENTS: &str = "announcements";
/// Longest room name; `room:` and the name form the topic (at most 128 bytes for the gateway).
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest user name a direct message may name (the gateway's principal ids are as long).
pub const MAX_USER_BYTES: usize = 128;

/// One call the backend makes to the gateway's management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `PUT @connections/{connection}/topics/{topic}`.
    Subscribe { connection: String, topic: String },
    /// `DELETE @connections/{connection}/topics/{topic}`.
    Unsubscribe { connection: String, topic: String },
    /// `POST @topics/{topic}`: every subscriber.
    Publish { topic: String, data: Vec<u8> },
    /// `POST @connections/{id}` to every open connection (anonymous connections only).
    Broadcast { data: Vec<u8> },
}

/// What the backend must do for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Answer the gateway with this Lambda proxy result and do nothing else.
    Reply(Value),
    /// Make the calls in order, then answer `{"statusCode":200}` (or `reply`, two-way routes).
    Act { reply: Value, actions: Vec<Action> },
    /// Answer `{"statusCode":200}` at once, then make the calls: the gateway registers a new
    /// connection only once its `$connect` has been answered.
    ActAfterReply { actions: Vec<Action> },
    /// `POST @users/{to}` with `data`, then answer the sender with [`direct_receipt`] and the
    /// number of connections that were handed the message.
    Direct {
        to: String,
        data: Vec<u8>,
        text: String,
    },
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

/// The message a client sent: its JSON body.
fn message(event: &Value, route: &str) -> Result<Value, BadEvent> {
    let body = event.get("body").and_then(Value::as_str).unwrap_or("");
    serde_json::from_str(body).map_err(|e| BadEvent(format!("{route} body is not JSON: {e}")))
}

/// The text a chat message carries: `data` as a string, or its JSON text.
fn message_data(message: &Value, route: &str) -> Result<String, BadEvent> {
    match message.get("data") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Null) | None => Err(BadEvent(format!("{route} body has no \"data\""))),
        // Numbers, objects, arrays: send their JSON text.
        Some(other) => Ok(other.to_string()),
    }
}

/// A room name: 1-64 of `[A-Za-z0-9._-]`, so that `room:NAME` is a topic name.
pub fn valid_room(name: &str) -> bool {
    (1..=MAX_ROOM_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The topic of a room.
pub fn room_topic(room: &str) -> String {
    format!("room:{room}")
}

/// The room a message names (`"room"`), the lobby when it names none.
fn room_of(message: &Value, route: &str) -> Result<String, BadEvent> {
    match message.get("room") {
        None | Some(Value::Null) => Ok(LOBBY.to_owned()),
        Some(Value::String(room)) if valid_room(room) => Ok(room.clone()),
        Some(_) => Err(BadEvent(format!(
            "{route}: \"room\" must be 1-{MAX_ROOM_CHARS} letters, digits, '.', '_' or '-'"
        ))),
    }
}

struct Envelope<'a> {
    kind: &'a str,
    from: Option<&'a str>,
    room: Option<&'a str>,
    text: &'a str,
}

impl Envelope<'_> {
    fn bytes(&self, now: &str) -> Vec<u8> {
        let mut e = json!({ "type": self.kind, "text": self.text, "at": now });
        if let Some(from) = self.from {
            e["from"] = json!(from);
        }
        if let Some(room) = self.room {
            e["room"] = json!(room);
        }
        e.to_string().into_bytes()
    }
}

/// The answer to the sender of a direct message once it was pushed.
pub fn direct_receipt(to: &str, text: &str, connections: usize, now: &str) -> Value {
    reply(
        200,
        &json!({ "type": "direct-sent", "to": to, "text": text, "connections": connections, "at": now }),
    )
}

/// Decides what to do with the raw body of a POST to `/events`; `now` (RFC 3339) stamps the
/// messages it pushes.
///
/// Signed-in connections chat in JSON envelopes that name the sender and the room
/// (`{"type":"message","from":"alice","room":"lobby","text":"hi","at":"..."}`); anonymous
/// connections (the terminal demo) get the text as it was sent.
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
    let connection = connection_id.to_owned();
    let event_type = ctx.get("eventType").and_then(Value::as_str).unwrap_or("");
    let route_key = ctx.get("routeKey").and_then(Value::as_str).unwrap_or("");
    let listens_only = ctx.get("connectionType").and_then(Value::as_str) == Some("sse");
    let user = signed_in_name(ctx);

    match (event_type, route_key) {
        ("CONNECT", _) | (_, "$connect") => Ok(match user {
            Some(_) if listens_only => Decision::ActAfterReply {
                actions: vec![Action::Subscribe {
                    connection,
                    topic: ANNOUNCEMENTS.to_owned(),
                }],
            },
            Some(name) => Decision::ActAfterReply {
                actions: vec![
                    Action::Subscribe {
                        connection: connection.clone(),
                        topic: room_topic(LOBBY),
                    },
                    Action::Subscribe {
                        connection,
                        topic: ANNOUNCEMENTS.to_owned(),
                    },
                    Action::Publish {
                        topic: room_topic(LOBBY),
                        data: Envelope {
                            kind: "system",
                            from: None,
                            room: Some(LOBBY),
                            text: &format!("{name} joined"),
                        }
                        .bytes(now),
                    },
                ],
            },
            None => Decision::Reply(ok()),
        }),
        ("DISCONNECT", _) | (_, "$disconnect") => Ok(match user {
            // The gateway unsubscribes a closed connection from its topics by itself.
            Some(name) if !listens_only => Decision::ActAfterReply {
                actions: vec![Action::Publish {
                    topic: room_topic(LOBBY),
                    data: Envelope {
                        kind: "system",
                        from: None,
                        room: Some(LOBBY),
                        text: &format!("{name} left"),
                    }
                    .bytes(now),
                }],
            },
            _ => Decision::Reply(ok()),
        }),
        (_, "sendmessage") => {
            let message = message(&event, route_key)?;
            let text = message_data(&message, route_key)?;
            let Some(name) = &user else {
                return Ok(Decision::Act {
                    reply: ok(),
                    actions: vec![Action::Broadcast {
                        data: text.into_bytes(),
                    }],
                });
            };
            let room = room_of(&message, route_key)?;
            let data = Envelope {
                kind: "message",
                from: Some(name),
                room: Some(&room),
                text: &text,
            }
            .bytes(now);
            Ok(Decision::Act {
                reply: ok(),
                actions: vec![Action::Publish {
                    topic: room_topic(&room),
                    data,
                }],
            })
        }
        (_, "announce") => {
            let text = message_data(&message(&event, route_key)?, route_key)?;
            let from = user.as_deref().unwrap_or(connection_id);
            Ok(Decision::Act {
                reply: ok(),
                actions: vec![Action::Publish {
                    topic: ANNOUNCEMENTS.to_owned(),
                    data: Envelope {
                        kind: "announcement",
                        from: Some(from),
                        room: None,
                        text: &text,
                    }
                    .bytes(now),
                }],
            })
        }
        (_, "join" | "leave") => {
            let name = user.ok_or_else(|| BadEvent(format!("{route_key}: sign in first")))?;
            let room = room_of(&message(&event, route_key)?, route_key)?;
            let topic = room_topic(&room);
            let joining = route_key == "join";
            let verb = if joining { "joined" } else { "left" };
            let notice = Action::Publish {
                topic: topic.clone(),
                data: Envelope {
                    kind: "system",
                    from: None,
                    room: Some(&room),
                    text: &format!("{name} {verb} #{room}"),
                }
                .bytes(now),
            };
            // Membership first: a newcomer hears their own arrival, and the one leaving has
            // the answer instead of the notice.
            let membership = if joining {
                Action::Subscribe { connection, topic }
            } else {
                Action::Unsubscribe { connection, topic }
            };
            Ok(Decision::Act {
                reply: reply(200, &json!({ "type": verb, "room": room, "at": now })),
                actions: vec![membership, notice],
            })
        }
        (_, "direct") => {
            let name = user.ok_or_else(|| BadEvent("direct: sign in first".into()))?;
            let message = message(&event, route_key)?;
            let text = message_data(&message, route_key)?;
            let to = message
                .get("to")
                .and_then(Value::as_str)
                .filter(|to| valid_user(to))
                .ok_or_else(|| {
                    BadEvent(format!(
                        "direct: \"to\" must name a user (1-{MAX_USER_BYTES} bytes, no '/')"
                    ))
                })?
                .to_owned();
            let data = Envelope {
                kind: "direct",
                from: Some(&name),
                room: None,
                text: &text,
            }
            .bytes(now);
            Ok(Decision::Direct { to, data, text })
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

/// A user a direct message may name: the gateway's principal ids, without `/` or control
/// characters so that the name is one path segment.
pub fn valid_user(name: &str) -> bool {
    (1..=MAX_USER_BYTES).contains(&name.len()) && !name.chars().any(|c| c == '/' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-22T10:00:00Z";
    const CONN: &str = "Yq3jQfP1oAMCJzA=";

    fn decide_at(raw: &[u8]) -> Result<Decision, BadEvent> {
        decide(raw, NOW)
    }

    fn event(event_type: &str, route: &str, body: Option<&str>) -> Vec<u8> {
        let mut e = json!({
            "requestContext": {
                "eventType": event_type, "routeKey": route, "connectionId": CONN,
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
            Decision::Reply(v) | Decision::Act { reply: v, .. } => {
                let b = v["body"].as_str().expect("reply has a body");
                serde_json::from_str(b).expect("body is JSON")
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn actions_of(d: Result<Decision, BadEvent>) -> Vec<Action> {
        match d {
            Ok(Decision::Act { actions, .. } | Decision::ActAfterReply { actions }) => actions,
            other => panic!("expected calls to make, got {other:?}"),
        }
    }

    fn published(action: &Action) -> (&str, Value) {
        match action {
            Action::Publish { topic, data } => (
                topic.as_str(),
                serde_json::from_slice(data).expect("pushed data is JSON"),
            ),
            other => panic!("expected a publish, got {other:?}"),
        }
    }

    fn subscribe(topic: &str) -> Action {
        Action::Subscribe {
            connection: CONN.into(),
            topic: topic.into(),
        }
    }

    #[test]
    fn anonymous_connect_and_disconnect_answer_200_without_body() {
        for (t, r) in [("CONNECT", "$connect"), ("DISCONNECT", "$disconnect")] {
            assert_eq!(
                decide_at(&event(t, r, None)),
                Ok(Decision::Reply(json!({"statusCode": 200})))
            );
        }
    }

    #[test]
    fn anonymous_sendmessage_goes_to_every_connection_as_sent() {
        for (data, sent) in [(r#""hi""#, &b"hi"[..]), (r#"{"a":1}"#, br#"{"a":1}"#)] {
            let body = format!(r#"{{"action":"sendmessage","data":{data}}}"#);
            let d = decide_at(&event("MESSAGE", "sendmessage", Some(&body)));
            assert_eq!(
                d,
                Ok(Decision::Act {
                    reply: json!({"statusCode": 200}),
                    actions: vec![Action::Broadcast {
                        data: sent.to_vec()
                    }],
                })
            );
        }
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
        assert_eq!(b["connectionId"], CONN);
        assert_eq!(b["authorizer"]["principalId"], "alice");
        assert_eq!(b["identity"]["sourceIp"], "127.0.0.1");
    }

    #[test]
    fn default_route_echoes_the_body() {
        let b = body_of(decide_at(&event("MESSAGE", "$default", Some("hello"))).expect("decides"));
        assert_eq!(b["received"], "hello");
        assert_eq!(b["connectionId"], CONN);
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

    fn signed_in_as(
        transport: Option<&str>,
        event_type: &str,
        route: &str,
        body: Option<&str>,
    ) -> Vec<u8> {
        let mut e: Value = serde_json::from_slice(&event(event_type, route, body)).expect("json");
        e["requestContext"]["authorizer"] = json!({
            "principalId": "alice",
            "jwt": {"claims": {"username": "alice", "scope": "chat/write"}, "scopes": ["chat/write"]}
        });
        if let Some(t) = transport {
            e["requestContext"]["connectionType"] = json!(t);
        }
        e.to_string().into_bytes()
    }

    fn signed_in(event_type: &str, route: &str, body: Option<&str>) -> Vec<u8> {
        signed_in_as(None, event_type, route, body)
    }

    #[test]
    fn a_signed_in_websocket_joins_the_lobby_and_hears_announcements() {
        for transport in [None, Some("websocket")] {
            let d = decide_at(&signed_in_as(transport, "CONNECT", "$connect", None));
            let actions = match d {
                Ok(Decision::ActAfterReply { actions }) => actions,
                other => panic!("expected calls after the answer, got {other:?}"),
            };
            assert_eq!(
                actions[..2],
                [subscribe("room:lobby"), subscribe("announcements")]
            );
            let (topic, notice) = published(&actions[2]);
            assert_eq!(topic, "room:lobby");
            assert_eq!(
                notice,
                json!({"type": "system", "room": "lobby", "text": "alice joined", "at": NOW})
            );
            assert_eq!(actions.len(), 3);
        }
    }

    #[test]
    fn a_server_sent_events_stream_only_listens_to_announcements() {
        let d = decide_at(&signed_in_as(Some("sse"), "CONNECT", "$connect", None));
        assert_eq!(
            d,
            Ok(Decision::ActAfterReply {
                actions: vec![subscribe("announcements")]
            })
        );
        // and nobody hears it leave
        assert_eq!(
            decide_at(&signed_in_as(
                Some("sse"),
                "DISCONNECT",
                "$disconnect",
                None
            )),
            Ok(Decision::Reply(json!({"statusCode": 200})))
        );
    }

    #[test]
    fn the_lobby_hears_a_websocket_leave() {
        let actions = actions_of(decide_at(&signed_in("DISCONNECT", "$disconnect", None)));
        let (topic, notice) = published(&actions[0]);
        assert_eq!(topic, "room:lobby");
        assert_eq!(notice["text"], "alice left");
        assert_eq!(actions.len(), 1);
    }

    #[test]
    fn signed_in_messages_go_to_their_room_and_name_their_sender() {
        for (body, room) in [
            (r#"{"action":"sendmessage","data":"hi"}"#, "lobby"),
            (
                r#"{"action":"sendmessage","data":"hi","room":"rust-2026.b_1"}"#,
                "rust-2026.b_1",
            ),
        ] {
            let actions = actions_of(decide_at(&signed_in("MESSAGE", "sendmessage", Some(body))));
            let (topic, message) = published(&actions[0]);
            assert_eq!(topic, format!("room:{room}"));
            assert_eq!(
                message,
                json!({"type": "message", "from": "alice", "room": room, "text": "hi", "at": NOW})
            );
        }
    }

    #[test]
    fn room_names_are_topic_safe_and_bounded() {
        let long = "r".repeat(MAX_ROOM_CHARS + 1);
        for room in ["", "a b", "a/b", "a:b", "é", long.as_str()] {
            let body = json!({"action": "join", "room": room}).to_string();
            assert!(
                decide_at(&signed_in("MESSAGE", "join", Some(&body))).is_err(),
                "{room:?}"
            );
        }
        assert!(valid_room(&"r".repeat(MAX_ROOM_CHARS)));
        let body = json!({"action": "sendmessage", "data": "x", "room": 7}).to_string();
        assert!(decide_at(&signed_in("MESSAGE", "sendmessage", Some(&body))).is_err());
    }

    #[test]
    fn join_subscribes_then_tells_the_room_and_answers() {
        let d = decide_at(&signed_in(
            "MESSAGE",
            "join",
            Some(r#"{"action":"join","room":"rust"}"#),
        ));
        let Ok(Decision::Act { reply, actions }) = d else {
            panic!("expected calls then an answer, got {d:?}");
        };
        assert_eq!(actions[0], subscribe("room:rust"));
        let (topic, notice) = published(&actions[1]);
        assert_eq!(
            (topic, notice["text"].as_str()),
            ("room:rust", Some("alice joined #rust"))
        );
        let answer: Value =
            serde_json::from_str(reply["body"].as_str().expect("body")).expect("json");
        assert_eq!(answer["type"], "joined");
        assert_eq!(answer["room"], "rust");
    }

    #[test]
    fn leave_unsubscribes_then_tells_the_room() {
        let actions = actions_of(decide_at(&signed_in(
            "MESSAGE",
            "leave",
            Some(r#"{"action":"leave","room":"rust"}"#),
        )));
        assert_eq!(
            actions[0],
            Action::Unsubscribe {
                connection: CONN.into(),
                topic: "room:rust".into()
            }
        );
        assert_eq!(published(&actions[1]).1["text"], "alice left #rust");
    }

    #[test]
    fn direct_messages_go_to_the_named_user() {
        let d = decide_at(&signed_in(
            "MESSAGE",
            "direct",
            Some(r#"{"action":"direct","to":"bob","data":"hi bob"}"#),
        ));
        let Ok(Decision::Direct { to, data, text }) = d else {
            panic!("expected a direct message, got {d:?}");
        };
        assert_eq!((to.as_str(), text.as_str()), ("bob", "hi bob"));
        assert_eq!(
            serde_json::from_slice::<Value>(&data).expect("json"),
            json!({"type": "direct", "from": "alice", "text": "hi bob", "at": NOW})
        );
        let receipt = direct_receipt("bob", "hi bob", 2, NOW);
        let answer: Value =
            serde_json::from_str(receipt["body"].as_str().expect("body")).expect("json");
        assert_eq!(answer["type"], "direct-sent");
        assert_eq!(answer["connections"], 2);
    }

    #[test]
    fn direct_messages_need_a_user_and_a_sender() {
        let long = "b".repeat(MAX_USER_BYTES + 1);
        for to in [json!(null), json!(""), json!("a/b"), json!(long), json!(3)] {
            let body = json!({"action": "direct", "to": to, "data": "x"}).to_string();
            assert!(
                decide_at(&signed_in("MESSAGE", "direct", Some(&body))).is_err(),
                "{to}"
            );
        }
        let anonymous = event(
            "MESSAGE",
            "direct",
            Some(r#"{"action":"direct","to":"bob","data":"x"}"#),
        );
        assert!(decide_at(&anonymous).is_err());
    }

    #[test]
    fn announcements_go_to_everyone_signed_in() {
        let actions = actions_of(decide_at(&signed_in(
            "MESSAGE",
            "announce",
            Some(r#"{"action":"announce","data":"maintenance at noon"}"#),
        )));
        let (topic, v) = published(&actions[0]);
        assert_eq!(topic, "announcements");
        assert_eq!(v["type"], "announcement");
        assert_eq!(v["from"], "alice");
        assert_eq!(v["text"], "maintenance at noon");
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
