//! Kept-alive connections to integration backends: one origin's connections are shared by
//! every integration that calls it; after a burst, the unused ones are closed once
//! `server.upstream_idle_timeout` has passed, and at most `server.upstream_max_idle_per_host`
//! stay open meanwhile.

use std::time::Duration;

use futures_util::future::join_all;
use portcullis_testkit::*;

/// Concurrent clients in a burst: each message holds one upstream connection while the
/// backend sleeps, so the burst opens about this many.
const BURST: usize = 12;

fn config(backend: &Backend, server: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n{server}\n\n\
         [management]\nregion = \"{REGION}\"\ncredentials = [{{ access_key_id = \"{ACCESS_KEY_ID}\", secret_access_key = \"{SECRET_ACCESS_KEY}\" }}]\n\n\
         [websocket.chat]\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\", response = true }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n",
        backend.url
    )
}

/// A backend that answers messages after a pause, so concurrent messages need concurrent
/// upstream connections.
async fn slow_echo() -> Backend {
    Backend::start(
        |event| match event["requestContext"]["eventType"].as_str() {
            Some("MESSAGE") => Reply::Delay(
                Duration::from_millis(300),
                Box::new(Reply::body(event["body"].as_str().unwrap_or_default())),
            ),
            _ => Reply::ok(),
        },
    )
    .await
}

/// `BURST` clients each send one message at once and get its echo; then they all leave and
/// their `$disconnect` events arrive.
async fn burst(gw: &TestGateway, backend: &Backend) {
    let mut clients = Vec::new();
    for _ in 0..BURST {
        clients.push(connect_and_id(gw, "/chat", backend).await);
    }
    join_all(
        clients
            .iter_mut()
            .enumerate()
            .map(|(i, (client, _))| async move {
                send_text(client, &format!("hello {i}")).await;
                assert_eq!(next_text(client).await, format!("hello {i}"));
            }),
    )
    .await;
    for (mut client, id) in clients {
        let _ = client.close(None).await;
        backend.wait_event("DISCONNECT", &id).await;
    }
}

/// Poll `backend.open_sockets()` until `done` holds, for up to 30 s.
async fn wait_sockets(backend: &Backend, what: &str, done: impl Fn(usize) -> bool) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let open = backend.open_sockets();
        if done(open) {
            return open;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: still {open} connections open to the backend after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn idle_upstream_connections_are_closed_after_the_idle_timeout() {
    let backend = slow_echo().await;
    let gw = TestGateway::start_full(&config(&backend, "upstream_idle_timeout = \"1s\"")).await;
    burst(&gw, &backend).await;
    // The burst needed several connections at once (one per message in flight).
    let after_burst = backend.open_sockets();
    assert!(
        after_burst > 1,
        "expected the burst to leave several kept-alive connections, found {after_burst}"
    );
    wait_sockets(&backend, "after the idle timeout", |n| n == 0).await;

    // The gateway still reaches the backend afterwards (new connections are opened).
    let (mut client, _) = connect_and_id(&gw, "/chat", &backend).await;
    send_text(&mut client, "again").await;
    assert_eq!(next_text(&mut client).await, "again");
    gw.shutdown().await;
}

#[tokio::test]
async fn at_most_max_idle_per_host_connections_stay_open_after_a_burst() {
    let backend = slow_echo().await;
    let gw = TestGateway::start_full(&config(
        &backend,
        "upstream_idle_timeout = \"1h\"\nupstream_max_idle_per_host = 2",
    ))
    .await;
    burst(&gw, &backend).await;
    // With a one-hour idle timeout only the per-host cap can close the extra ones.
    let open = wait_sockets(&backend, "with a cap of 2 idle connections", |n| n <= 2).await;
    assert!(
        open >= 1,
        "the pool should keep some connections, found {open}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn integrations_and_proxied_routes_to_one_origin_share_one_kept_alive_connection() {
    let backend = Backend::echo().await;
    let origin = backend.url.trim_end_matches("/events");
    let toml = format!(
        "{}\n[http.api]\nbase_path = \"/api\"\n[http.api.routes]\n\
         \"ANY /{{path+}}\" = {{ integration = \"proxied\" }}\n\n\
         [integrations.proxied]\ntype = \"http_proxy\"\nurl = \"{origin}/proxied\"\n",
        config(&backend, "")
    );
    let gw = TestGateway::start_full(&toml).await;
    let http = reqwest::Client::new();
    let (mut client, _) = connect_and_id(&gw, "/chat", &backend).await;
    for i in 0..5 {
        send_text(&mut client, &format!("hello {i}")).await;
        assert_eq!(next_text(&mut client).await, format!("hello {i}"));
        let response = http
            .get(gw.http_url(&format!("/api/item/{i}?q={i}")))
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(response.status(), 200);
    }
    // `$connect`, five messages and five proxied requests, one after another: one connection.
    assert_eq!(backend.accepted_sockets(), 1);
    assert_eq!(backend.open_sockets(), 1);
    gw.shutdown().await;
}
