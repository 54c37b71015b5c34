//! SSE streams of a WebSocket API end to end: a real HTTP client reading `text/event-stream`
//! over HTTP/1.1 and HTTP/2, a real backend receiving `$connect`/`$disconnect`, JWTs from a
//! real JWKS endpoint, and SigV4-signed pushes.

use portcullis_testkit::jwt::Issuer;
use portcullis_testkit::sse::{self, Item, Protocol, SseClient};
use portcullis_testkit::*;
use serde_json::{Value, json};

const SOURCES: &str = r#""route.request.header.Authorization", "route.request.querystring.access_token", "route.request.cookie.id_token""#;

/// `[websocket.chat]` with `sse = {sse}` behind a `jwt` authorizer (header, query or cookie;
/// a cookie needs the CSRF echo), `$connect`/`$disconnect` at `backend`.
fn api(backend: &Backend, issuer: &Issuer, sse: &str, extra: &str) -> String {
    format!(
        "[websocket.chat]\nstage = \"prod\"\nauthorizer = \"users\"\nsse = {sse}\n\
         allowed_origins = [\"https://app.example\"]\n{extra}\n\
         [websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.users]\ntype = \"jwt\"\nidentity_source = [{SOURCES}]\n\
         issuers = [{{ issuer = \"{}\" }}]\ncsrf = {{ cookie = \"CSRF-TOKEN\", query = \"csrf\" }}\n",
        backend.url, issuer.issuer
    )
}

/// A backend that admits every `$connect` but one whose `X-Refuse` header names a status.
async fn backend() -> Backend {
    Backend::start(|e| match e["headers"]["X-Refuse"].as_str() {
        Some(status) => Reply::status(status.parse().unwrap_or(500)),
        None => Reply::ok(),
    })
    .await
}

async fn open(gw: &TestGateway, token: &str, protocol: Protocol) -> SseClient {
    open_with(gw, token, &[], protocol).await
}

async fn open_with(
    gw: &TestGateway,
    token: &str,
    headers: &[(&str, &str)],
    protocol: Protocol,
) -> SseClient {
    let bearer = format!("Bearer {token}");
    let mut all = vec![("authorization", bearer.as_str())];
    all.extend_from_slice(headers);
    match sse::connect(&gw.http_url("/chat/events"), &all, protocol).await {
        Ok(client) => client,
        Err((status, _, body)) => panic!("stream refused: {status} {body}"),
    }
}

/// The connection id of a stream's `connected` event, which must come first.
async fn connected(client: &mut SseClient) -> (String, String) {
    let event = client.event().await;
    assert_eq!(event.event, "connected");
    let data: Value = serde_json::from_str(&event.data).expect("json");
    let id = data["connectionId"]
        .as_str()
        .expect("connectionId")
        .to_owned();
    (id, event.id.expect("connected carries an id"))
}

async fn post(gw: &TestGateway, path: &str, body: &[u8]) -> reqwest::Response {
    management(gw, "POST", path, body, SECRET_ACCESS_KEY).await
}

#[tokio::test]
async fn pushes_arrive_as_events_over_http1_and_http2() {
    let issuer = Issuer::start("k1").await;
    let backend = backend().await;
    let gw = TestGateway::start(&api(&backend, &issuer, "true", "")).await;
    let token = issuer.token(json!({"sub": "alice"}));
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let mut client = open(&gw, &token, protocol).await;
        let want = match protocol {
            Protocol::Http1 => http::Version::HTTP_11,
            Protocol::Http2 => http::Version::HTTP_2,
        };
        assert_eq!(client.version, want);
        assert_eq!(client.headers["content-type"], "text/event-stream");
        assert_eq!(client.headers["cache-control"], "no-cache");
        assert_eq!(client.headers["x-accel-buffering"], "no");
        let (id, _) = connected(&mut client).await;

        let connect = backend.wait_event("CONNECT", &id).await;
        assert_eq!(connect["requestContext"]["connectionType"], "sse");
        assert_eq!(
            connect["requestContext"]["authorizer"]["principalId"],
            "alice"
        );

        let path = format!("/prod/@connections/{}", encode_id(&id));
        assert_eq!(post(&gw, &path, b"hello").await.status().as_u16(), 200);
        let event = client.event().await;
        assert_eq!(
            (event.event.as_str(), event.data.as_str()),
            ("message", "hello")
        );
        assert!(event.id.is_some_and(|i| !i.is_empty()));
        // Every kind of line break splits the payload; the client joins the lines with \n.
        post(&gw, &path, b"one\ntwo\r\nthree\rfour").await;
        assert_eq!(client.event().await.data, "one\ntwo\nthree\nfour");
        post(&gw, &path, &[0xff, 0x00, 0x80]).await;
        let binary = client.event().await;
        assert_eq!(
            (binary.event.as_str(), binary.data.as_str()),
            ("binary", "/wCA")
        );
        // A push to the principal and one to a topic the stream subscribed to.
        assert_eq!(
            post(&gw, "/prod/@users/alice", b"for alice")
                .await
                .status()
                .as_u16(),
            200
        );
        assert_eq!(client.event().await.data, "for alice");
        let subscribe = management(
            &gw,
            "PUT",
            &format!("{path}/topics/news"),
            b"",
            SECRET_ACCESS_KEY,
        )
        .await;
        assert_eq!(subscribe.status().as_u16(), 204);
        let published: Value = post(&gw, "/prod/@topics/news", b"headline")
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(published["connections"], 1);
        assert_eq!(client.event().await.data, "headline");

        let listed: Value = management(&gw, "GET", "/prod/@users/alice", b"", SECRET_ACCESS_KEY)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(listed["connections"][0]["transport"], "sse");

        let deleted = management(&gw, "DELETE", &path, b"", SECRET_ACCESS_KEY).await;
        assert_eq!(deleted.status().as_u16(), 204);
        let close = client.event().await;
        assert_eq!(close.event, "close");
        assert_eq!(
            serde_json::from_str::<Value>(&close.data).expect("json"),
            json!({"code": 1000, "reason": "Connection deleted"})
        );
        assert!(client.next_event().await.is_none(), "the stream ends");
        let disconnect = backend.wait_event("DISCONNECT", &id).await;
        assert_eq!(disconnect["requestContext"]["connectionType"], "sse");
        assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1000);
    }
}

#[tokio::test]
async fn a_client_that_goes_away_is_disconnected() {
    let issuer = Issuer::start("k1").await;
    let backend = backend().await;
    let gw = TestGateway::start(&api(&backend, &issuer, "true", "")).await;
    let token = issuer.token(json!({"sub": "alice"}));
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let mut client = open(&gw, &token, protocol).await;
        let (id, _) = connected(&mut client).await;
        drop(client);
        let disconnect = backend.wait_event("DISCONNECT", &id).await;
        assert_eq!(disconnect["requestContext"]["connectionType"], "sse");
        assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1005);
        let gone = post(&gw, &format!("/@connections/{}", encode_id(&id)), b"late").await;
        assert_eq!(gone.status().as_u16(), 410);
    }
}

#[tokio::test]
async fn refusals_answer_with_the_json_of_http_apis() {
    let issuer = Issuer::start("k1").await;
    let backend = backend().await;
    let gw = TestGateway::start(&api(&backend, &issuer, "true", "")).await;
    let url = gw.http_url("/chat/events");
    let token = issuer.token(json!({"sub": "alice"}));
    let bearer = format!("Bearer {token}");
    let refused = |headers: Vec<(&'static str, String)>, url: String| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        match sse::connect(&url, &headers, Protocol::Http1).await {
            Ok(_) => panic!("admitted"),
            Err((status, headers, body)) => {
                assert_eq!(headers["content-type"], "application/json");
                (
                    status,
                    serde_json::from_str::<Value>(&body).expect("json body"),
                )
            }
        }
    };
    let message = |text: &str| json!({ "message": text });

    assert_eq!(
        refused(vec![], url.clone()).await,
        (401, message("Unauthorized"))
    );
    let expired = issuer.token(json!({"sub": "alice", "exp": chrono::Utc::now().timestamp() - 60}));
    assert_eq!(
        refused(
            vec![("authorization", format!("Bearer {expired}"))],
            url.clone()
        )
        .await,
        (401, message("Unauthorized"))
    );
    assert_eq!(
        refused(
            vec![
                ("authorization", bearer.clone()),
                ("origin", "https://evil.example".into())
            ],
            url.clone()
        )
        .await,
        (403, message("Forbidden"))
    );
    // A cookie-borne token needs the CSRF echo.
    let cookie = format!("id_token={token}; CSRF-TOKEN=c5rf");
    assert_eq!(
        refused(vec![("cookie", cookie.clone())], url.clone()).await,
        (403, message("Forbidden"))
    );
    assert_eq!(
        refused(
            vec![("cookie", cookie.clone())],
            format!("{url}?csrf=wrong")
        )
        .await,
        (403, message("Forbidden"))
    );
    // $connect says no: its status, with the HTTP APIs' body.
    assert_eq!(
        refused(
            vec![
                ("authorization", bearer.clone()),
                ("x-refuse", "403".into())
            ],
            url.clone()
        )
        .await,
        (403, message("Forbidden"))
    );
    assert_eq!(
        refused(
            vec![
                ("authorization", bearer.clone()),
                ("x-refuse", "429".into())
            ],
            url.clone()
        )
        .await,
        (429, message("Too Many Requests"))
    );
    assert!(
        backend
            .events()
            .iter()
            .all(|e| e["requestContext"]["eventType"] != "DISCONNECT"),
        "refused streams never had a connection"
    );

    // The identity sources of the WebSocket: query and cookie (with the echo) are admitted.
    for (headers, url) in [
        (vec![], format!("{url}?access_token={token}")),
        (
            vec![("cookie", cookie.as_str())],
            format!("{url}?csrf=c5rf"),
        ),
    ] {
        let mut client = sse::connect(&url, &headers, Protocol::Http1)
            .await
            .unwrap_or_else(|e| panic!("refused: {e:?}"));
        connected(&mut client).await;
    }
    // A listed origin may read the stream cross-origin, with credentials.
    let client = open_with(
        &gw,
        &token,
        &[("origin", "https://app.example")],
        Protocol::Http1,
    )
    .await;
    assert_eq!(
        client.headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(client.headers["access-control-allow-credentials"], "true");

    let post = reqwest::Client::new()
        .post(&url)
        .send()
        .await
        .expect("post");
    assert_eq!(post.status().as_u16(), 405);
    assert_eq!(post.headers()["allow"], "GET");
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("portcullis_sse_connect_rejects_total{api=\"chat\",status=\"401\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn heartbeats_keep_coming_but_only_pushes_keep_the_stream_open() {
    let issuer = Issuer::start("k1").await;
    let backend = backend().await;
    let gw = TestGateway::start(&api(
        &backend,
        &issuer,
        "{ heartbeat = \"1s\" }",
        "idle_timeout = \"3s\"",
    ))
    .await;
    let token = issuer.token(json!({"sub": "alice"}));
    let mut client = open(&gw, &token, Protocol::Http1).await;
    let (id, _) = connected(&mut client).await;
    let mut heartbeats = 0;
    let ending = loop {
        match client
            .next_item()
            .await
            .expect("the stream says why it ends")
        {
            Item::Comment(text) => {
                assert_eq!(text, "ping");
                heartbeats += 1;
            }
            Item::Event(event) => break event,
        }
    };
    assert!(heartbeats >= 1, "heartbeats before the idle timeout");
    assert_eq!(ending.event, "close");
    assert_eq!(
        serde_json::from_str::<Value>(&ending.data).expect("json"),
        json!({"code": 1001, "reason": "Idle timeout"})
    );
    assert!(client.next_event().await.is_none());
    let disconnect = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(
        disconnect["requestContext"]["disconnectReason"],
        "Idle timeout"
    );
}

#[tokio::test]
async fn a_stream_ends_at_its_maximum_duration_and_on_shutdown() {
    let issuer = Issuer::start("k1").await;
    let backend = backend().await;
    let token = issuer.token(json!({"sub": "alice"}));
    let gw = TestGateway::start(&api(&backend, &issuer, "true", "max_duration = \"1s\"")).await;
    let mut client = open(&gw, &token, Protocol::Http1).await;
    connected(&mut client).await;
    let ending = client.event().await;
    assert_eq!(ending.event, "close");
    assert!(
        ending.data.contains("Maximum connection duration reached"),
        "{}",
        ending.data
    );

    let gw = TestGateway::start(&api(&backend, &issuer, "true", "")).await;
    let mut client = open(&gw, &token, Protocol::Http2).await;
    let (id, _) = connected(&mut client).await;
    gw.shutdown().await;
    let ending = client.event().await;
    assert_eq!(
        serde_json::from_str::<Value>(&ending.data).expect("json"),
        json!({"code": 1001, "reason": "Going away"})
    );
    // The shutdown waited for the $disconnect.
    assert!(
        backend
            .events()
            .iter()
            .any(|e| e["requestContext"]["eventType"] == "DISCONNECT"
                && e["requestContext"]["connectionId"] == id.as_str())
    );
}

#[tokio::test]
async fn a_resumed_stream_replays_what_its_principal_missed_then_goes_live() {
    let issuer = Issuer::start("k1").await;
    let backend = backend().await;
    let gw = TestGateway::start(&api(&backend, &issuer, "{ replay = 3 }", "")).await;
    let token = issuer.token(json!({"sub": "alice"}));

    // Pushed before alice ever connected: kept.
    post(&gw, "/prod/@users/alice", b"early").await;
    let mut first = open(&gw, &token, Protocol::Http1).await;
    let (_, start) = connected(&mut first).await;
    post(&gw, "/prod/@users/alice", b"one").await;
    post(&gw, "/prod/@users/bob", b"not for alice").await;
    let one = first.event().await;
    assert_eq!(one.data, "one");
    drop(first);

    // Missed while away: two pushes to alice (and one to a topic, live only).
    for text in ["two", "three\nlines"] {
        post(&gw, "/prod/@users/alice", text.as_bytes()).await;
    }
    let last = one.id.expect("id");
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let mut resumed = open_with(&gw, &token, &[("last-event-id", &last)], protocol).await;
        connected(&mut resumed).await;
        assert_eq!(
            resumed.event().await.data,
            "two",
            "no reset: the id is in the log"
        );
        let three = resumed.event().await;
        assert_eq!(three.data, "three\nlines");
        post(&gw, "/prod/@users/alice", b"live").await;
        assert_eq!(
            resumed.event().await.data,
            "live",
            "{protocol:?}: nothing twice"
        );
    }
    // From the very start of the first stream (its `connected` id): everything since.
    let query = format!("/chat/events?lastEventId={start}&access_token={token}");
    let mut from_start = sse::connect(&gw.http_url(&query), &[], Protocol::Http1)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    connected(&mut from_start).await;
    let mut replayed = Vec::new();
    for _ in 0..4 {
        let event = from_start.event().await;
        replayed.push(format!("{}: {}", event.event, event.data));
    }
    // Only three are kept per principal, so pushes after that id fell out: reset, then what
    // is left.
    assert_eq!(
        replayed,
        [
            "reset: {}",
            "message: three\nlines",
            "message: live",
            "message: live"
        ]
    );
}

#[tokio::test]
async fn an_id_the_log_cannot_resume_from_gets_a_reset_first() {
    let issuer = Issuer::start("k1").await;
    let backend = backend().await;
    let gw = TestGateway::start(&api(&backend, &issuer, "{ replay = 2 }", "")).await;
    let token = issuer.token(json!({"sub": "alice"}));
    let mut client = open(&gw, &token, Protocol::Http1).await;
    let (_, start) = connected(&mut client).await;
    drop(client);
    for text in ["a", "b", "c"] {
        post(&gw, "/prod/@users/alice", text.as_bytes()).await;
    }
    for last in [start.as_str(), "0badc0de-1", "not-an-id"] {
        let mut client = open_with(&gw, &token, &[("last-event-id", last)], Protocol::Http1).await;
        connected(&mut client).await;
        let reset = client.event().await;
        assert_eq!(
            (reset.event.as_str(), reset.data.as_str()),
            ("reset", "{}"),
            "{last}"
        );
        assert_eq!(client.event().await.data, "b");
        assert_eq!(client.event().await.data, "c");
    }
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("portcullis_sse_resets_total{api=\"chat\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn streams_hold_their_place_in_the_per_address_cap_until_they_end() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let issuer = Issuer::start("k1").await;
    let backend = backend().await;
    let apis = api(&backend, &issuer, "true", "");
    let gw = TestGateway::start_full(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n\
         max_connections_per_ip = 2\n\n\
         [management]\nregion = \"{REGION}\"\ncredentials = [{{ access_key_id = \"{ACCESS_KEY_ID}\", secret_access_key = \"{SECRET_ACCESS_KEY}\" }}]\n\n{apis}"
    ))
    .await;
    let token = issuer.token(json!({"sub": "alice"}));
    // Two streams, each the first request of its own HTTP/1.1 connection.
    let mut first = open(&gw, &token, Protocol::Http1).await;
    let (first_id, _) = connected(&mut first).await;
    let mut second = open(&gw, &token, Protocol::Http1).await;
    connected(&mut second).await;

    // A third connection from the same address is over the cap while both streams are open.
    let refused = async {
        let mut third = tokio::net::TcpStream::connect(gw.listen)
            .await
            .expect("connect");
        let mut answer = String::new();
        let _ = third.read_to_string(&mut answer).await;
        answer
    };
    let answer = refused.await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");

    // A stream that ends gives its place back.
    drop(first);
    backend.wait_event("DISCONNECT", &first_id).await;
    let mut third = None;
    for _ in 0..50 {
        let mut socket = tokio::net::TcpStream::connect(gw.listen)
            .await
            .expect("connect");
        let request = b"GET /nothing HTTP/1.1\r\nhost: x\r\n\r\n";
        socket.write_all(request).await.expect("write");
        let mut head = [0u8; 12];
        if socket.read_exact(&mut head).await.is_ok() && &head == b"HTTP/1.1 404" {
            third = Some(socket);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        third.is_some(),
        "the place of the ended stream was not given back"
    );
    drop(second);
}
