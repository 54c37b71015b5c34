//! Abuse limits with a real WebSocket client: `max_connections` (503 on the next upgrade, a
//! place again once one closes), `connect_rate_per_ip` (429 before `$connect`),
//! `message_rate` (an error frame, the socket kept, the backend spared) and
//! `trusted_proxies` (`X-Forwarded-For` believed from a trusted peer only).

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use portcullis_testkit::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const PATIENCE: Duration = Duration::from_secs(10);

fn config(backend: &Backend, server: &str, api: &str) -> String {
    format!(
        "{}{}{}",
        config_head(&format!("shutdown_grace = \"2s\"\n{server}")),
        backend_ws_api("chat", api),
        backend_integration(&backend.url)
    )
}

/// An echo backend and a gateway in front of it (see [`config`]).
async fn started(server: &str, api: &str) -> (Backend, TestGateway) {
    let backend = Backend::echo().await;
    let gateway = TestGateway::start_full(&config(&backend, server, api)).await;
    (backend, gateway)
}

/// The status and body of a refused upgrade; panics if it was accepted.
async fn refused(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    match try_connect(url, headers).await {
        Ok(_) => panic!("upgrade accepted"),
        Err(WsError::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                String::from_utf8(body).expect("utf-8 body"),
            )
        }
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

fn connects(backend: &Backend) -> usize {
    backend
        .events()
        .iter()
        .filter(|e| e["requestContext"]["eventType"] == "CONNECT")
        .count()
}

#[tokio::test]
async fn beyond_max_connections_an_upgrade_gets_503_until_one_closes() {
    let (backend, gw) = started("max_connections = 2\nconnect_rate_per_ip = 0", "").await;
    let (mut first, first_id) = connect_and_id(&gw, "/chat", &backend).await;
    let (mut second, _) = connect_and_id(&gw, "/chat", &backend).await;

    let (status, body) = refused(&gw.ws_url("/chat"), &[]).await;
    assert_eq!(status, 503);
    assert_eq!(body, r#"{"message":"Service Unavailable"}"#);
    assert_eq!(
        connects(&backend),
        2,
        "the refused upgrade never reached $connect"
    );
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains(
            "portcullis_connections_refused_total{listener=\"public\",reason=\"max_connections\"} 1"
        ),
        "{metrics}"
    );
    // Plain HTTP still has sockets: the listener's own budget is looser.
    let answer = reqwest::get(gw.http_url("/nothing-here"))
        .await
        .expect("get");
    assert_eq!(answer.status(), 404);

    // The two keep working; one closes and its place comes back.
    send_text(&mut second, "still here").await;
    assert_eq!(next_text(&mut second).await, "still here");
    first.close(None).await.expect("close");
    backend.wait_event("DISCONNECT", &first_id).await;
    let deadline = Instant::now() + PATIENCE;
    let mut third = loop {
        match try_connect(&gw.ws_url("/chat"), &[]).await {
            Ok(client) => break client,
            Err(WsError::Http(r)) if r.status() == 503 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no place came back: {e}"),
        }
    };
    send_text(&mut third, "in").await;
    assert_eq!(next_text(&mut third).await, "in");
    gw.shutdown().await;
}

#[tokio::test]
async fn parallel_upgrades_never_exceed_max_connections() {
    let (backend, gw) = started("max_connections = 5\nconnect_rate_per_ip = 0", "").await;
    let url = gw.ws_url("/chat");
    let attempts = (0..20).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { try_connect(&url, &[]).await })
    });
    let mut open = Vec::new();
    let mut unavailable = 0;
    for attempt in futures_util::future::join_all(attempts).await {
        match attempt.expect("task") {
            Ok(client) => open.push(client),
            Err(WsError::Http(r)) if r.status() == 503 => unavailable += 1,
            Err(e) => panic!("unexpected handshake error: {e}"),
        }
    }
    assert_eq!((open.len(), unavailable), (5, 15));
    assert_eq!(connects(&backend), 5);
    gw.shutdown().await;
}

#[tokio::test]
async fn over_connect_rate_per_ip_an_upgrade_gets_429_before_connect_runs() {
    let (backend, gw) = started("connect_rate_per_ip = 2", "").await;
    let url = gw.ws_url("/chat");
    let _first = connect(&url).await;
    let _second = connect(&url).await;
    let (status, body) = refused(&url, &[]).await;
    assert_eq!(status, 429);
    assert_eq!(body, r#"{"message":"Too Many Requests"}"#);
    assert_eq!(
        connects(&backend),
        2,
        "$connect ran only for the admitted ones"
    );
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains(
            "portcullis_connections_refused_total{listener=\"public\",reason=\"connect_rate\"} 1"
        ),
        "{metrics}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn parallel_upgrades_from_one_address_never_exceed_the_rate() {
    let (backend, gw) = started("connect_rate_per_ip = 3", "").await;
    let url = gw.ws_url("/chat");
    let started = Instant::now();
    let attempts = (0..30).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { try_connect(&url, &[]).await })
    });
    let mut open = Vec::new();
    let mut throttled = 0;
    for attempt in futures_util::future::join_all(attempts).await {
        match attempt.expect("task") {
            Ok(client) => open.push(client),
            Err(WsError::Http(r)) if r.status() == 429 => throttled += 1,
            Err(e) => panic!("unexpected handshake error: {e}"),
        }
    }
    // The budget: a burst of 3, and 3 more for every second the attempts took (however slow
    // the machine was).
    let budget = 3 + (started.elapsed().as_secs_f64() * 3.0).ceil() as usize;
    assert!(open.len() >= 3, "the burst is admitted: {}", open.len());
    assert!(
        open.len() <= budget,
        "{} admitted, the budget was {budget}",
        open.len()
    );
    assert_eq!(open.len() + throttled, 30);
    assert_eq!(connects(&backend), open.len());
    gw.shutdown().await;
}

#[tokio::test]
async fn over_message_rate_a_message_gets_an_error_frame_and_the_socket_stays() {
    let (backend, gw) = started("", "message_rate = 3").await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    for i in 0..6 {
        client
            .feed(Message::text(format!("m{i}")))
            .await
            .expect("feed");
    }
    client.flush().await.expect("flush");
    let mut echoed = Vec::new();
    let mut errors = Vec::new();
    for _ in 0..6 {
        let text = next_text(&mut client).await;
        if text.starts_with('m') {
            echoed.push(text);
        } else {
            errors.push(serde_json::from_str::<Value>(&text).expect("a JSON error frame"));
        }
    }
    assert!(echoed.len() >= 3, "the burst is delivered: {echoed:?}");
    assert!(!errors.is_empty(), "nothing was throttled: {echoed:?}");
    for frame in &errors {
        assert_eq!(frame["message"], "Too Many Requests");
        assert_eq!(frame["connectionId"], id.as_str());
        assert!(frame["requestId"].as_str().is_some_and(|r| !r.is_empty()));
    }
    // The backend saw exactly the messages that were echoed.
    let messages = |backend: &Backend| {
        backend
            .events()
            .iter()
            .filter(|e| {
                e["requestContext"]["eventType"] == "MESSAGE"
                    && e["requestContext"]["connectionId"] == id.as_str()
            })
            .count()
    };
    assert_eq!(messages(&backend), echoed.len());
    let metrics = gw.metrics_text().await;
    let dropped = format!(
        "portcullis_ws_messages_throttled_total{{api=\"chat\"}} {}",
        errors.len()
    );
    assert!(metrics.contains(&dropped), "{metrics}");

    // Once the allowance has refilled (a third of a second per message), the socket works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send_text(&mut client, "again").await;
    assert_eq!(next_text(&mut client).await, "again");
    assert_eq!(messages(&backend), echoed.len() + 1);
    gw.shutdown().await;
}

/// The `$connect` event of the most recent connection.
async fn last_connect(backend: &Backend, before: usize) -> Value {
    backend.wait_for(|_| connects(backend) > before).await;
    backend
        .events()
        .into_iter()
        .filter(|e| e["requestContext"]["eventType"] == "CONNECT")
        .nth(before)
        .expect("the connect event")
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let backend = Backend::echo().await;
    // The test client connects from 127.0.0.1: here, a trusted proxy.
    let gw = TestGateway::start_full(&config(
        &backend,
        "trusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/8\"]\nconnect_rate_per_ip = 1",
        "",
    ))
    .await;
    let url = gw.ws_url("/chat");
    let _alice = try_connect(
        &url,
        &[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3")],
    )
    .await
    .expect("alice");
    let event = last_connect(&backend, 0).await;
    assert_eq!(
        event["requestContext"]["identity"]["sourceIp"],
        "203.0.113.9"
    );
    assert_eq!(
        event["headers"]["X-Forwarded-For"],
        "6.6.6.6, 203.0.113.9, 10.1.2.3, 127.0.0.1"
    );
    // The rate counts each forwarded client, not the proxy: bob gets in, alice again does not.
    let _bob = try_connect(&url, &[("x-forwarded-for", "[2001:db8::7]:51000")])
        .await
        .expect("bob");
    let event = last_connect(&backend, 1).await;
    assert_eq!(
        event["requestContext"]["identity"]["sourceIp"],
        "2001:db8::7"
    );
    let (status, _) = refused(&url, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(status, 429);
    gw.shutdown().await;

    // From a peer that is not trusted, the header changes nothing.
    let (backend, gw) = started("trusted_proxies = [\"10.0.0.0/8\"]", "").await;
    let _spoofer = try_connect(&gw.ws_url("/chat"), &[("x-forwarded-for", "203.0.113.9")])
        .await
        .expect("connect");
    let event = last_connect(&backend, 0).await;
    assert_eq!(event["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(
        event["headers"]["X-Forwarded-For"],
        "203.0.113.9, 127.0.0.1"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn sse_streams_count_against_max_connections_too() {
    use portcullis_testkit::sse::{self, Protocol};
    let (_backend, gw) =
        started("max_connections = 2\nconnect_rate_per_ip = 0", "sse = true").await;
    let events = gw.http_url("/chat/events");
    // One stream on its own HTTP/1.1 connection, one on HTTP/2 (a stream, not a socket).
    let first = sse::connect(&events, &[], Protocol::Http1)
        .await
        .expect("first stream");
    let _second = sse::connect(&events, &[], Protocol::Http2)
        .await
        .expect("second stream");
    let Err((status, _, body)) = sse::connect(&events, &[], Protocol::Http1).await else {
        panic!("a third stream was admitted");
    };
    assert_eq!(
        (status, body.as_str()),
        (503, r#"{"message":"Service Unavailable"}"#)
    );
    let (status, body) = refused(&gw.ws_url("/chat"), &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (503, r#"{"message":"Service Unavailable"}"#)
    );

    // A stream that ends gives its place back.
    drop(first);
    let deadline = Instant::now() + PATIENCE;
    loop {
        match try_connect(&gw.ws_url("/chat"), &[]).await {
            Ok(_) => break,
            Err(WsError::Http(r)) if r.status() == 503 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no place came back: {e}"),
        }
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_reload_changes_the_limits_and_keeps_counting_open_sessions() {
    let backend = Backend::echo().await;
    let load = |server: &str, api: &str| {
        portcullis_config::load_str(&config(&backend, server, api), "test.toml", &|_| None)
            .expect("valid")
    };
    let gw = TestGateway::start_full(&config(
        &backend,
        "max_connections = 1\nconnect_rate_per_ip = 0",
        "",
    ))
    .await;
    let (mut open, _) = connect_and_id(&gw, "/chat", &backend).await;
    assert_eq!(refused(&gw.ws_url("/chat"), &[]).await.0, 503);

    // Room for two: the session open before the reload still counts.
    gw.running()
        .reload(load(
            "max_connections = 2\nconnect_rate_per_ip = 0",
            "message_rate = 1",
        ))
        .await
        .expect("reloaded");
    let (mut second, _) = connect_and_id(&gw, "/chat", &backend).await;
    assert_eq!(refused(&gw.ws_url("/chat"), &[]).await.0, 503);
    // The new message rate applies to the new connection; the old one keeps its own.
    send_text(&mut second, "one").await;
    assert_eq!(next_text(&mut second).await, "one");
    send_text(&mut second, "two").await;
    assert!(next_text(&mut second).await.contains("Too Many Requests"));
    for i in 0..3 {
        send_text(&mut open, &format!("m{i}")).await;
        assert_eq!(next_text(&mut open).await, format!("m{i}"));
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn http_api_events_name_the_forwarded_client_behind_a_trusted_proxy() {
    let backend = Backend::echo().await;
    let http = "[http.api]\nbase_path = \"/api\"\n[http.api.routes]\n\"GET /who\" = { integration = \"backend\" }\n";
    let toml = format!(
        "{}\n{http}",
        config(&backend, "trusted_proxies = [\"127.0.0.0/8\"]", "")
    );
    let gw = TestGateway::start_full(&toml).await;
    let client = reqwest::Client::new();
    for (forwarded, want) in [
        ("198.51.100.4, 127.0.0.9", "198.51.100.4"),
        ("unknown", "127.0.0.1"),
    ] {
        let answer = client
            .get(gw.http_url("/api/who"))
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200);
        let event = backend
            .events()
            .into_iter()
            .rev()
            .find(|e| e["routeKey"] == "GET /who")
            .expect("the http event");
        assert_eq!(
            event["requestContext"]["http"]["sourceIp"], want,
            "{forwarded}"
        );
        // The event's forwarding headers are the gateway's: the client's chain, then the hop.
        let headers = &event["headers"];
        assert_eq!(
            headers["x-forwarded-for"],
            format!("{forwarded}, 127.0.0.1")
        );
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-port"], gw.listen.port().to_string());
    }
    gw.shutdown().await;
}
