//! Operations: health, metrics, graceful shutdown, and secrets kept out of the logs.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis_testkit::*;

fn api(backend: &Backend) -> String {
    format!(
        "[websocket.chat]\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\", response = true }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n",
        backend.url
    )
}

#[tokio::test]
async fn healthz_and_metrics() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend)).await;
    let health = reqwest::get(gw.admin_url("/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);

    let mut client = connect(&gw.ws_url("/chat")).await;
    send_text(&mut client, "one").await;
    assert_eq!(next_text(&mut client).await, "one");
    let metrics = gw.metrics_text().await;
    for needle in [
        "portcullis_ws_connections_open{api=\"chat\"} 1",
        "portcullis_ws_connects_total{api=\"chat\"} 1",
        "portcullis_ws_messages_in_total{api=\"chat\"} 1",
        "portcullis_ws_messages_out_total{api=\"chat\"} 1",
        "portcullis_integration_duration_seconds_bucket{",
        "integration=\"backend\"",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    client.close(None).await.expect("close");
    backend
        .wait_for(|e| e["requestContext"]["eventType"] == "DISCONNECT")
        .await;
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("portcullis_ws_connections_open{api=\"chat\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_ws_disconnects_total{api=\"chat\",reason=\"client\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn graceful_shutdown_closes_every_connection_with_1001_and_delivers_disconnects() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend)).await;
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (c, id) = connect_and_id(&gw, "/chat", &backend).await;
        clients.push(c);
        ids.push(id);
    }
    let listen = gw.listen;
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| tokio::spawn(async move { close_code(&mut c).await }))
        .collect();
    gw.shutdown().await;
    for r in readers {
        assert_eq!(r.await.expect("join"), Some(1001));
    }
    for id in &ids {
        let e = backend.wait_event("DISCONNECT", id).await;
        assert_eq!(e["requestContext"]["disconnectStatusCode"], 1001);
    }
    // Not accepting any more.
    assert!(tokio::net::TcpStream::connect(listen).await.is_err());
}

/// Runs the real binary with a token in the query string and an Authorization header and
/// checks neither secret reaches its log.
#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let backend = Backend::echo().await;
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let admin = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
         [management]\ncredentials = [{{ access_key_id = \"AKIDLOG\", secret_access_key = \"very-secret-admin-key\" }}]\n{}",
        api(&backend)
    );
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, config).expect("write");
    let log_path = dir.path().join("log.txt");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("PORTCULLIS_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let healthz = format!("http://127.0.0.1:{admin}/healthz");
    let mut up = false;
    for _ in 0..100 {
        if reqwest::get(&healthz).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "gateway did not start");
    let url = format!(
        "ws://127.0.0.1:{port}/chat?access_token=QUERYSECRET1&id_token=QUERYSECRET2&token=QUERYSECRET3&room=lobby"
    );
    let mut client = try_connect(
        &url,
        &[
            ("Authorization", "Bearer HEADERSECRET4"),
            ("Cookie", "session=COOKIESECRET5"),
            ("Sec-WebSocket-Protocol", "aaa.bbb.PROTOSECRET6"),
        ],
    )
    .await
    .ok();
    if let Some(c) = client.as_mut() {
        send_text(c, "hello").await;
        let _ = next_text(c).await;
    }
    drop(client);
    // A failed management call logs its refusal.
    let _ = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{admin}/@connections/x?X-Amz-Signature=SIGSECRET7"))
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDLOG/20200101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=SIGSECRET8")
        .body("x")
        .send()
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let mut text = String::new();
    std::fs::File::open(&log_path)
        .expect("log")
        .read_to_string(&mut text)
        .expect("read");
    assert!(
        text.contains("connected"),
        "log should show the connection:\n{text}"
    );
    assert!(
        text.contains("<redacted>"),
        "the query string is logged redacted:\n{text}"
    );
    for secret in [
        "QUERYSECRET1",
        "QUERYSECRET2",
        "QUERYSECRET3",
        "HEADERSECRET4",
        "COOKIESECRET5",
        "PROTOSECRET6",
        "SIGSECRET7",
        "SIGSECRET8",
        "very-secret-admin-key",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the log:\n{text}"
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
