//! Readiness and draining: `/readyz` on the admin listener (the identity store and Redis
//! checked, 503 naming the one that is down), the order of a SIGTERM (the node reports
//! `draining` and refuses new upgrades with 503 while its connections' `$disconnect` calls are
//! still running, then exits 0), and `portcullis --version`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use portcullis_testkit::redis::TempRedis;
use portcullis_testkit::*;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

async fn readyz(admin_url: &str) -> (u16, Value) {
    let response = reqwest::get(admin_url).await.expect("readyz answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("readyz is JSON"))
}

/// Calls `/readyz` until it answers `status` (the last check is cached for a second).
async fn readyz_until(admin_url: &str, status: u16) -> Value {
    let mut last = None;
    for _ in 0..100 {
        let (got, body) = readyz(admin_url).await;
        if got == status {
            return body;
        }
        last = Some((got, body));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {status}; last: {last:?}");
}

fn websocket_api(backend_url: &str) -> String {
    format!(
        "[websocket.chat]\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{backend_url}\"\n"
    )
}

#[tokio::test]
async fn ready_when_the_identity_store_answers_even_under_a_burst_of_probes() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = TestGateway::start(&format!(
        "[store]\nurl = \"sqlite://{}/idp.db\"\n\n[pools.main]\n",
        dir.path().display()
    ))
    .await;
    let url = gw.admin_url("/readyz");
    let probes: Vec<_> = (0..20)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { readyz(&url).await })
        })
        .collect();
    for probe in probes {
        let (status, body) = probe.await.expect("join");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"status": "ready"}));
    }
}

#[tokio::test]
async fn not_ready_while_redis_is_down_and_ready_again_when_it_is_back() {
    let Some(mut redis) = TempRedis::start("readyz_redis").await else {
        return;
    };
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&format!(
        "{}\n[cluster]\nredis = \"{}\"\nnode_id = \"ready-a\"\nheartbeat = \"1s\"\n",
        websocket_api(&backend.url),
        redis.url()
    ))
    .await;
    let url = gw.admin_url("/readyz");
    assert_eq!(readyz_until(&url, 200).await, json!({"status": "ready"}));

    redis.stop();
    let body = readyz_until(&url, 503).await;
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["failed"], json!(["redis"]), "{body}");
    assert_ne!(body["dependencies"]["redis"], "ok", "{body}");
    // Liveness is another question: the process is fine.
    let health = reqwest::get(gw.admin_url("/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);

    redis.restart().await;
    assert_eq!(readyz_until(&url, 200).await, json!({"status": "ready"}));
}

/// A backend whose `$disconnect` answer waits until the test releases it, so the gateway
/// stays in its drain for as long as the test looks at it.
async fn held_disconnect_backend() -> (String, mpsc::UnboundedReceiver<Value>, Arc<Notify>) {
    #[derive(Clone)]
    struct Held {
        arrived: mpsc::UnboundedSender<Value>,
        release: Arc<Notify>,
    }
    async fn handle(State(held): State<Held>, body: axum::body::Bytes) -> Json<Value> {
        let event: Value = serde_json::from_slice(&body).unwrap_or_default();
        if event["requestContext"]["eventType"] == "DISCONNECT" {
            let _ = held.arrived.send(event);
            held.release.notified().await;
        }
        Json(json!({"statusCode": 200}))
    }
    let (arrived, disconnects) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let app = axum::Router::new().fallback(handle).with_state(Held {
        arrived,
        release: release.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/events"), disconnects, release)
}

#[tokio::test]
async fn sigterm_reports_draining_and_refuses_upgrades_before_the_node_exits() {
    let (backend_url, mut disconnects, release) = held_disconnect_backend().await;
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let admin = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
         shutdown_grace = \"30s\"\n\n{}",
        websocket_api(&backend_url)
    );
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, config).expect("write");
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let readyz_url = format!("http://127.0.0.1:{admin}/readyz");
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(&readyz_url).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "gateway did not start");
    assert_eq!(readyz(&readyz_url).await, (200, json!({"status": "ready"})));
    let ws_url = format!("ws://127.0.0.1:{port}/chat");
    let client = connect(&ws_url).await;

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    // The open connection is being closed; its `$disconnect` is held at the backend.
    let event = tokio::time::timeout(Duration::from_secs(30), disconnects.recv())
        .await
        .expect("$disconnect arrives")
        .expect("backend runs");
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1001);

    // Meanwhile the node tells load balancers to go away, and still answers them.
    let (status, body) = readyz(&readyz_url).await;
    assert_eq!((status, body), (503, json!({"status": "draining"})));
    let health = reqwest::get(format!("http://127.0.0.1:{admin}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 503);
    // A new upgrade is refused with an answer, not a reset connection.
    assert_eq!(handshake_status(&ws_url, &[]).await, Some(503));

    release.notify_one();
    drop(client);
    let status = super::cli::exited(child).await;
    assert!(
        status.success(),
        "portcullis exited with {status} after SIGTERM"
    );
}

#[test]
fn version_names_the_release_and_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--version")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let line = text.trim();
    let rest = line
        .strip_prefix(&format!("portcullis {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("unexpected --version output: {line:?}"));
    let commit = rest
        .strip_suffix(')')
        .unwrap_or_else(|| panic!("unexpected --version output: {line:?}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "not a commit: {commit:?}"
    );
}
