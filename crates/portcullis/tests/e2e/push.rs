//! Pushes to users and topics (`@users`, `@topics`, topic subscriptions) over HTTP with SigV4.
//! The principal comes from a real request-authorizer webhook (`Cookie: user=NAME` → NAME).

use std::time::Duration;

use portcullis_testkit::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn allow(principal: &str) -> Reply {
    Reply::Json(
        200,
        json!({
            "principalId": principal,
            "policyDocument": {"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke",
                "Effect": "Allow", "Resource": "arn:aws:execute-api:*:*:*/*/*"}]},
        })
        .to_string(),
    )
}

/// A webhook that admits `Cookie: user=NAME` as principal NAME.
async fn webhook() -> Backend {
    Backend::start(|e| {
        let cookie = e["headers"]["Cookie"].as_str().unwrap_or_default();
        match cookie.strip_prefix("user=") {
            Some(user) => allow(user),
            None => Reply::Json(401, "\"Unauthorized\"".into()),
        }
    })
    .await
}

/// WebSocket APIs `chat` (stage prod) and `ops` (stage dev), both behind the webhook.
fn config(backend: &Backend, webhook: &Backend, chat_extra: &str) -> String {
    let api = |name: &str, stage: &str, extra: &str| {
        format!(
            "[websocket.{name}]\nstage = \"{stage}\"\nauthorizer = \"cookie\"\n{extra}\n\
             [websocket.{name}.routes]\n\
             \"$connect\" = {{ integration = \"backend\" }}\n\
             \"$disconnect\" = {{ integration = \"backend\" }}\n\
             \"$default\" = {{ integration = \"backend\" }}\n\n"
        )
    };
    format!(
        "{}{}[integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.cookie]\ntype = \"request\"\nurl = \"{}\"\nidentity_source = [\"route.request.header.Cookie\"]\n",
        api("chat", "prod", chat_extra),
        api("ops", "dev", ""),
        backend.url,
        webhook.url
    )
}

/// Connect to `path` as `user`; the connection id comes from its (new) CONNECT event.
async fn connect_as(
    gw: &TestGateway,
    backend: &Backend,
    path: &str,
    user: &str,
) -> (Client, String) {
    let id_of = |e: &Value| {
        e["requestContext"]["connectionId"]
            .as_str()
            .map(str::to_owned)
    };
    let known: Vec<String> = backend.events().iter().filter_map(id_of).collect();
    let cookie = format!("user={user}");
    let client = try_connect(&gw.ws_url(path), &[("Cookie", cookie.as_str())])
        .await
        .expect("handshake");
    let event = backend
        .wait_for(|e| {
            e["requestContext"]["eventType"] == "CONNECT"
                && id_of(e).is_some_and(|id| !known.contains(&id))
        })
        .await;
    assert_eq!(event["requestContext"]["authorizer"]["principalId"], user);
    (client, id_of(&event).expect("id"))
}

/// Connect `n` sockets as `user` to `path`.
async fn connect_many(
    gw: &TestGateway,
    backend: &Backend,
    path: &str,
    user: &str,
    n: usize,
) -> Vec<(Client, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(connect_as(gw, backend, path, user).await);
    }
    out
}

async fn call(gw: &TestGateway, method: &str, path: &str, body: &[u8]) -> (u16, Value, String) {
    let response = management(gw, method, path, body, SECRET_ACCESS_KEY).await;
    let status = response.status().as_u16();
    let error = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, error)
}

/// Nothing arrives on `client` for a moment.
async fn assert_quiet(client: &mut Client) {
    use futures_util::StreamExt;
    match tokio::time::timeout(Duration::from_millis(300), client.next()).await {
        Err(_) => {}
        Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
        Ok(other) => panic!("expected nothing, got {other:?}"),
    }
}

fn listed_ids(listing: &Value) -> Vec<String> {
    let mut ids: Vec<String> = listing["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| c["connectionId"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_push_to_a_user_reaches_every_connection_of_that_user_only() {
    let (backend, webhook) = (Backend::echo().await, webhook().await);
    let gw = TestGateway::start(&config(&backend, &webhook, "")).await;
    let mut alice = connect_many(&gw, &backend, "/chat", "alice", 2).await;
    let (mut bob, _) = connect_as(&gw, &backend, "/chat", "bob").await;
    // The same principal on an API of another stage is not reached through `prod`.
    let (mut alice_ops, alice_ops_id) = connect_as(&gw, &backend, "/ops", "alice").await;

    let (status, body, _) = call(&gw, "POST", "/prod/@users/alice", b"hello alice").await;
    assert_eq!((status, body), (200, json!({"connections": 2})));
    for (client, _) in &mut alice {
        assert_eq!(next_text(client).await, "hello alice");
    }
    assert_quiet(&mut bob).await;
    assert_quiet(&mut alice_ops).await;

    let (status, body, _) = call(&gw, "POST", "/dev/@users/alice", b"ops only").await;
    assert_eq!((status, body), (200, json!({"connections": 1})));
    assert_eq!(next_text(&mut alice_ops).await, "ops only");

    // An unknown user is not an error.
    let (status, body, _) = call(&gw, "POST", "/prod/@users/carol", b"anyone?").await;
    assert_eq!((status, body), (200, json!({"connections": 0})));

    // Listing: ids, connectedAt as GET @connections spells it, transport.
    let (status, listing, _) = call(&gw, "GET", "/prod/@users/alice", b"").await;
    assert_eq!(status, 200);
    let mut want: Vec<String> = alice.iter().map(|(_, id)| id.clone()).collect();
    want.sort();
    assert_eq!(listed_ids(&listing), want);
    for c in listing["connections"].as_array().expect("list") {
        assert_eq!(c["transport"], "websocket");
        let at = c["connectedAt"].as_str().expect("connectedAt");
        assert!(at.ends_with('Z') && at.contains('T'), "{at}");
    }
    let (_, listing, _) = call(&gw, "GET", "/prod/@users/carol", b"").await;
    assert_eq!(listing, json!({"connections": []}));

    // DELETE closes all of them, each with its `$disconnect`; bob and the other stage stay.
    let (status, _, _) = call(&gw, "DELETE", "/prod/@users/alice", b"").await;
    assert_eq!(status, 204);
    for (client, id) in &mut alice {
        assert!(matches!(
            next_message(client).await,
            Some(Message::Close(_)) | None
        ));
        backend.wait_event("DISCONNECT", id).await;
    }
    let (_, listing, _) = call(&gw, "GET", "/prod/@users/alice", b"").await;
    assert_eq!(listing, json!({"connections": []}));
    let (_, listing, _) = call(&gw, "GET", "/dev/@users/alice", b"").await;
    assert_eq!(listed_ids(&listing), vec![alice_ops_id]);
    let (status, body, _) = call(&gw, "POST", "/prod/@users/bob", b"still here").await;
    assert_eq!((status, body), (200, json!({"connections": 1})));
    assert_eq!(next_text(&mut bob).await, "still here");
}

#[tokio::test]
async fn topics_are_subscribed_published_listed_and_left() {
    let (backend, webhook) = (Backend::echo().await, webhook().await);
    let extra = "max_topics_per_connection = 2\nmax_subscribers_per_topic = 2";
    let gw = TestGateway::start(&config(&backend, &webhook, extra)).await;
    let (mut a, a_id) = connect_as(&gw, &backend, "/chat", "alice").await;
    let (mut b, b_id) = connect_as(&gw, &backend, "/chat", "bob").await;
    let (mut c, c_id) = connect_as(&gw, &backend, "/chat", "carol").await;
    let sub =
        |id: &str, topic: &str| format!("/prod/@connections/{}/topics/{topic}", encode_id(id));

    for id in [&a_id, &b_id] {
        let (status, _, _) = call(&gw, "PUT", &sub(id, "room:1"), b"").await;
        assert_eq!(status, 204);
    }
    // Percent-encoded topic names are the same topic.
    let (status, _, _) = call(&gw, "PUT", &sub(&a_id, "room%3A1"), b"").await;
    assert_eq!(status, 204);

    let (status, body, _) = call(&gw, "POST", "/prod/@topics/room:1", b"score 1-0").await;
    assert_eq!((status, body), (200, json!({"connections": 2})));
    assert_eq!(next_text(&mut a).await, "score 1-0");
    assert_eq!(next_text(&mut b).await, "score 1-0");
    assert_quiet(&mut c).await;
    let (_, listing, _) = call(&gw, "GET", "/prod/@topics/room:1", b"").await;
    let mut want = vec![a_id.clone(), b_id.clone()];
    want.sort();
    assert_eq!(listed_ids(&listing), want);

    // Caps answer 429 LimitExceededException with the key to raise.
    let (status, body, error) = call(&gw, "PUT", &sub(&c_id, "room:1"), b"").await;
    assert_eq!((status, error.as_str()), (429, "LimitExceededException"));
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("max_subscribers_per_topic")
    );
    call(&gw, "PUT", &sub(&a_id, "room:2"), b"").await;
    let (status, body, _) = call(&gw, "PUT", &sub(&a_id, "room:3"), b"").await;
    assert_eq!(status, 429);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("max_topics_per_connection")
    );

    // Unsubscribe; the topic of another stage's API is another topic.
    let (status, _, _) = call(&gw, "DELETE", &sub(&b_id, "room:1"), b"").await;
    assert_eq!(status, 204);
    let (_, body, _) = call(&gw, "POST", "/prod/@topics/room:1", b"score 2-0").await;
    assert_eq!(body, json!({"connections": 1}));
    assert_eq!(next_text(&mut a).await, "score 2-0");
    assert_quiet(&mut b).await;
    let (_, body, _) = call(&gw, "POST", "/dev/@topics/room:1", b"x").await;
    assert_eq!(body, json!({"connections": 0}));
    // Subscribing through a stage the connection's API is not served under: gone there.
    let (status, _, error) = call(
        &gw,
        "PUT",
        &format!("/dev/@connections/{}/topics/t", encode_id(&c_id)),
        b"",
    )
    .await;
    assert_eq!((status, error.as_str()), (410, "GoneException"));

    // Bad names are 400; an unknown connection is 410.
    let long = "x".repeat(129);
    for bad in ["a%2Fb", "a%20b", long.as_str(), "caf%C3%A9"] {
        let (status, body, error) = call(&gw, "PUT", &sub(&c_id, bad), b"").await;
        assert_eq!(
            (status, error.as_str()),
            (400, "BadRequestException"),
            "{bad}"
        );
        assert!(body["message"].is_string());
        let (status, _, _) = call(&gw, "POST", &format!("/prod/@topics/{bad}"), b"x").await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _, error) = call(
        &gw,
        "PUT",
        "/prod/@connections/AAAAAAAAAAAAAAAAAAAA/topics/t",
        b"",
    )
    .await;
    assert_eq!((status, error.as_str()), (410, "GoneException"));

    // A connection that ends leaves its topics.
    drop(a);
    backend.wait_event("DISCONNECT", &a_id).await;
    let (_, listing, _) = call(&gw, "GET", "/prod/@topics/room:1", b"").await;
    assert_eq!(listing, json!({"connections": []}));
    let (_, body, _) = call(&gw, "POST", "/prod/@topics/room:2", b"x").await;
    assert_eq!(body, json!({"connections": 0}));
}

#[tokio::test]
async fn pushes_are_signed_bounded_and_need_data() {
    let (backend, webhook) = (Backend::echo().await, webhook().await);
    let gw = TestGateway::start(&config(&backend, &webhook, "")).await;
    let (_alice, _) = connect_as(&gw, &backend, "/chat", "alice").await;
    for (method, path) in [
        ("POST", "/prod/@users/alice"),
        ("GET", "/prod/@users/alice"),
        ("DELETE", "/prod/@users/alice"),
        ("POST", "/prod/@topics/news"),
        ("GET", "/prod/@topics/news"),
    ] {
        let unsigned = reqwest::Client::new()
            .request(method.parse().expect("method"), gw.admin_url(path))
            .body("x")
            .send()
            .await
            .expect("send");
        assert_eq!(unsigned.status().as_u16(), 403, "{method} {path}");
        let response = management(&gw, method, path, b"x", "wrong-secret").await;
        assert_eq!(response.status().as_u16(), 403, "{method} {path}");
    }
    let big = vec![b'x'; 128 * 1024 + 1];
    for path in ["/prod/@users/alice", "/prod/@topics/news"] {
        let (status, _, error) = call(&gw, "POST", path, &big).await;
        assert_eq!((status, error.as_str()), (413, "PayloadTooLargeException"));
        let (status, _, error) = call(&gw, "POST", path, b"").await;
        assert_eq!((status, error.as_str()), (400, "BadRequestException"));
    }
    // Methods a resource does not have.
    let (status, _, _) = call(&gw, "PUT", "/prod/@users/alice", b"x").await;
    assert_eq!(status, 404);
    let (status, _, _) = call(&gw, "DELETE", "/prod/@topics/news", b"").await;
    assert_eq!(status, 404);
    // Counted by operation.
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("operation=\"user_post\",status=\"413\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_receiver_that_does_not_read_is_skipped_and_counted_while_the_others_get_everything() {
    use futures_util::StreamExt;
    let (backend, webhook) = (Backend::echo().await, webhook().await);
    let gw = TestGateway::start(&config(&backend, &webhook, "send_queue = 4")).await;
    let (_stuck, stuck_id) = connect_as(&gw, &backend, "/chat", "stuck").await;
    let (mut reader, reader_id) = connect_as(&gw, &backend, "/chat", "reader").await;
    for id in [&stuck_id, &reader_id] {
        let path = format!("/prod/@connections/{}/topics/feed", encode_id(id));
        assert_eq!(call(&gw, "PUT", &path, b"").await.0, 204);
    }
    // The reader reads everything as it comes; the stuck client never reads, so its socket
    // buffers and then its queue fill.
    const PUSHES: usize = 400;
    let counter = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < PUSHES {
            match tokio::time::timeout(Duration::from_secs(20), reader.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => seen.push(t.as_str()[..8].to_owned()),
                Ok(Some(Ok(_))) => {}
                other => panic!("reader stopped after {} pushes: {other:?}", seen.len()),
            }
        }
        seen
    });
    let payload = "x".repeat(64 * 1024);
    let mut skipped_somewhere = 0;
    for i in 0..PUSHES {
        let body = format!("{i:08}{payload}");
        let (status, body, _) = call(&gw, "POST", "/prod/@topics/feed", body.as_bytes()).await;
        assert_eq!(status, 200);
        let delivered = body["connections"].as_u64().expect("count");
        assert!(delivered >= 1, "the reader always takes the push");
        skipped_somewhere += 2 - delivered;
    }
    let seen = counter.await.expect("reader");
    let want: Vec<String> = (0..PUSHES).map(|i| format!("{i:08}")).collect();
    assert_eq!(seen, want, "every push, in publish order");
    assert!(
        skipped_somewhere > 0,
        "the stuck client's queue never filled"
    );
    let metrics = gw.metrics_text().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("portcullis_push_skipped_total{") && l.contains("api=\"chat\""))
        .expect("skipped counter");
    let counted: u64 = line
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("value");
    assert_eq!(counted, skipped_somewhere);
}
