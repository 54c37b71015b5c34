//! Slow and greedy clients: request bodies that never finish get 408 and lose their
//! connection, silent connections are dropped, a flood on the public listener leaves the admin
//! listener answering, and one client address cannot hold more than its share of connections.

use std::net::SocketAddr;
use std::time::Duration;

use portcullis_testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for any one answer before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// A complete configuration: `server` lines added to `[server]`, the test credentials, an
/// HTTP API at `/api` (`POST /echo` through an `http` integration, `ANY /proxy/{path+}`
/// through an `http_proxy` one), a WebSocket API at `/chat`, and `extra`.
fn config(backend: &Backend, server: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n{server}\n\n\
         [management]\nregion = \"{REGION}\"\ncredentials = [{{ access_key_id = \"{ACCESS_KEY_ID}\", secret_access_key = \"{SECRET_ACCESS_KEY}\" }}]\n\n\
         [http.api]\nbase_path = \"/api\"\n[http.api.routes]\n\
         \"POST /echo\" = {{ integration = \"backend\" }}\n\
         \"ANY /proxy/{{path+}}\" = {{ integration = \"proxied\" }}\n\n\
         [websocket.chat]\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\", response = true }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{url}\"\n\n\
         [integrations.proxied]\ntype = \"http_proxy\"\nurl = \"{url}\"\n\n{extra}",
        url = backend.url
    )
}

/// Everything the peer sends until it closes the connection (or `PATIENCE` runs out, which
/// fails the test).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    match tokio::time::timeout(PATIENCE, stream.read_to_end(&mut received)).await {
        Ok(Ok(_)) => {}
        // A reset after the answer still ends the connection.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(e)) => panic!(
            "read failed: {e}; got so far: {:?}",
            String::from_utf8_lossy(&received)
        ),
        Err(_) => panic!(
            "the connection stayed open; got so far: {:?}",
            String::from_utf8_lossy(&received)
        ),
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Read until `needle` has arrived.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "closed before {needle:?}: {:?}",
                String::from_utf8_lossy(&received)
            );
            received.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&received).contains(needle) {
                return;
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no {needle:?} in time; got {:?}",
        String::from_utf8_lossy(&received)
    );
    String::from_utf8_lossy(&received).into_owned()
}

/// Send a request head announcing `length` body bytes, then `first` of them, and no more.
async fn start_slow_body(addr: SocketAddr, head: &str, length: usize, first: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!("{head}host: {addr}\r\ncontent-length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(first).await.expect("first byte");
    stream
}

/// A plain request on a fresh connection, with a bounded wait.
async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .expect("client")
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_and_loses_its_connection() {
    let backend = Backend::echo().await;
    let dir = tempfile::tempdir().expect("tmp");
    let pools = format!(
        "[store]\nurl = \"sqlite://{}/idp.db\"\n\n[pools.main]\n[pools.main.clients.web]\npublic = true\n",
        dir.path().display()
    );
    let gw =
        TestGateway::start_full(&config(&backend, "body_read_timeout = \"200ms\"", &pools)).await;
    let cases = [
        (
            gw.listen,
            "POST /api/echo HTTP/1.1\r\n",
            "HTTP API, http integration",
        ),
        (
            gw.listen,
            "PUT /api/proxy/upload HTTP/1.1\r\n",
            "HTTP API, http_proxy integration",
        ),
        (
            gw.listen,
            "POST / HTTP/1.1\r\nx-amz-target: AWSCognitoIdentityProviderService.InitiateAuth\r\ncontent-type: application/x-amz-json-1.1\r\n",
            "Cognito JSON API",
        ),
        (
            gw.listen,
            "POST /pools/main/oauth2/token HTTP/1.1\r\ncontent-type: application/x-www-form-urlencoded\r\n",
            "OAuth2 token endpoint",
        ),
        (
            gw.admin,
            "POST /@connections/abc HTTP/1.1\r\n",
            "@connections",
        ),
        (
            gw.admin,
            "POST /admin/pools/main/users HTTP/1.1\r\ncontent-type: application/json\r\n",
            "identity admin API",
        ),
    ];
    for (addr, head, what) in cases {
        let mut stream = start_slow_body(addr, head, 100, b"{").await;
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408 "), "{what}: {answer}");
        assert!(answer.contains("connection: close"), "{what}: {answer}");
        assert!(
            answer.ends_with("{\"message\":\"Request Timeout\"}"),
            "{what}: {answer}"
        );
    }
    // None of them reached a backend.
    assert!(backend.events().is_empty(), "{:#?}", backend.events());
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("portcullis_errors_total{kind=\"body_read_timeout\"} 6"),
        "{metrics}"
    );

    // A body that arrives in time is served as before.
    let answer = reqwest::Client::new()
        .post(format!("http://{}/api/echo", gw.listen))
        .body("hello")
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_slow_bodies_on_the_public_listener_leaves_the_admin_listener_answering() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start_full(&config(&backend, "max_connections = 4", "")).await;
    // Fill the public listener's budget with bodies that trickle: each connection waits to be
    // told to go on (100 Continue: the gateway is reading its body) before its first byte.
    let mut flood = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(gw.listen).await.expect("connect");
        let head = format!(
            "POST /api/echo HTTP/1.1\r\nhost: {}\r\ncontent-length: 1000\r\nexpect: 100-continue\r\n\r\n",
            gw.listen
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        read_until(&mut stream, "100 Continue").await;
        stream.write_all(b"x").await.expect("one byte");
        flood.push(stream);
    }

    // Health checks and @connections still answer.
    let health = get(&gw.admin_url("/healthz")).await;
    assert_eq!(health.status(), 200);
    let gone = tokio::time::timeout(
        PATIENCE,
        management(
            &gw,
            "POST",
            "/@connections/AAAAAAAAAAAAAAAAAAAA",
            b"hi",
            SECRET_ACCESS_KEY,
        ),
    )
    .await
    .expect("@connections answers");
    assert_eq!(gone.status(), 410);
    // More admin connections than the public budget, all open at once.
    let mut admin = Vec::new();
    for _ in 0..6 {
        let mut stream = TcpStream::connect(gw.admin).await.expect("connect");
        let head = format!("GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n", gw.admin);
        stream.write_all(head.as_bytes()).await.expect("head");
        assert!(
            read_until(&mut stream, "\"status\":\"ok\"")
                .await
                .starts_with("HTTP/1.1 200 ")
        );
        admin.push(stream);
    }
    // The flood is still waiting for its bodies: nothing reached the backend.
    assert!(backend.events().is_empty(), "{:#?}", backend.events());
    drop(flood);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_cannot_hold_the_listener() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start_full(&config(
        &backend,
        "max_connections = 1\nheader_read_timeout = \"200ms\"",
        "",
    ))
    .await;
    // It connects and says nothing: not even enough to tell HTTP/1 from HTTP/2.
    let mut silent = TcpStream::connect(gw.listen).await.expect("connect");
    // The only place on the listener frees up for a client that speaks.
    let answer = get(&format!("http://{}/nothing-here", gw.listen)).await;
    assert_eq!(answer.status(), 404);
    assert_eq!(read_to_close(&mut silent).await, "");
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("portcullis_errors_total{kind=\"header_read_timeout\"} 1"),
        "{metrics}"
    );

    // Half a request head is dropped as well.
    let mut partial = TcpStream::connect(gw.listen).await.expect("connect");
    partial
        .write_all(b"GET /nothing-here HT")
        .await
        .expect("write");
    read_to_close(&mut partial).await;
    let answer = get(&format!("http://{}/nothing-here", gw.listen)).await;
    assert_eq!(answer.status(), 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_per_address_cap_are_refused_while_the_others_keep_working() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start_full(&config(&backend, "max_connections_per_ip = 3", "")).await;
    // Three connections from 127.0.0.1: two WebSocket sessions and a kept-alive HTTP one.
    let (mut first, _) = connect_and_id(&gw, "/chat", &backend).await;
    let (mut second, second_id) = connect_and_id(&gw, "/chat", &backend).await;
    let mut http = TcpStream::connect(gw.listen).await.expect("connect");
    let request = format!("GET /nothing-here HTTP/1.1\r\nhost: {}\r\n\r\n", gw.listen);
    http.write_all(request.as_bytes()).await.expect("request");
    read_until(&mut http, "Not Found").await;

    // The fourth is answered 503 and closed without being read.
    let mut fourth = TcpStream::connect(gw.listen).await.expect("connect");
    let refused = read_to_close(&mut fourth).await;
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    assert!(
        refused.ends_with("{\"message\":\"Service Unavailable\"}"),
        "{refused}"
    );
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains(
            "portcullis_connections_refused_total{listener=\"public\",reason=\"per_ip\"} 1"
        ),
        "{metrics}"
    );

    // The three keep working.
    send_text(&mut first, "still here").await;
    assert_eq!(next_text(&mut first).await, "still here");
    send_text(&mut second, "me too").await;
    assert_eq!(next_text(&mut second).await, "me too");
    http.write_all(request.as_bytes()).await.expect("request");
    read_until(&mut http, "Not Found").await;

    // The admin listener does not count against the public cap.
    let mut admin = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(gw.admin).await.expect("connect");
        let head = format!("GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n", gw.admin);
        stream.write_all(head.as_bytes()).await.expect("head");
        read_until(&mut stream, "\"status\":\"ok\"").await;
        admin.push(stream);
    }

    // A session that ends gives its place back.
    drop(second);
    backend.wait_event("DISCONNECT", &second_id).await;
    let mut accepted = false;
    for _ in 0..50 {
        let mut stream = TcpStream::connect(gw.listen).await.expect("connect");
        // A refused connection may already be closed.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut buf = [0u8; 12];
        if let Ok(Ok(_)) = tokio::time::timeout(PATIENCE, stream.read_exact(&mut buf)).await
            && &buf == b"HTTP/1.1 404"
        {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        accepted,
        "a place freed by a closed session is never given back"
    );
    gw.shutdown().await;
}
