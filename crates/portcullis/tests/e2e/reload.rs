//! Live configuration reload: a reload adds an HTTP API while an open WebSocket keeps working;
//! a broken file is refused and changes nothing; a WebSocket API the new file removes closes
//! its sockets with 1001 and its backend gets their `$disconnect`; a changed file is picked up
//! by the watch (replaced by a rename, as editors and ConfigMaps do); SIGHUP reloads the file
//! of the real binary.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use portcullis_config::Config;
use portcullis_testkit::*;

fn config(apis: &str) -> Config {
    let toml = format!("{}{apis}", start_head());
    match portcullis_config::load_str(&toml, "test.toml", &|_| None) {
        Ok(c) => c,
        Err(d) => panic!("test config invalid:\n{d}\n---\n{toml}"),
    }
}

/// The integration `backend` to `backend` and a WebSocket API on it for each of `names`.
fn apis_of(backend: &Backend, names: &[&str]) -> String {
    let apis: String = names.iter().map(|n| backend_ws_api(n, "")).collect();
    format!("{}{apis}", backend_integration(&backend.url))
}

/// Whether `backend` got a `$disconnect` for connection `id`.
fn disconnected(backend: &Backend, id: &str) -> bool {
    backend.events().iter().any(|e| {
        e["requestContext"]["eventType"] == "DISCONNECT"
            && e["requestContext"]["connectionId"] == id
    })
}

const HTTP_API: &str = "[http.extra]\nbase_path = \"/api\"\n[http.extra.routes]\n\"GET /hello\" = { integration = \"backend\" }\n\n";

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.expect("answers").status().as_u16()
}

/// Polls `url` until it answers `status` (20 s at most).
async fn until_status(url: &str, status: u16) {
    let mut last = None;
    for _ in 0..200 {
        match reqwest::get(url).await {
            Ok(r) if r.status().as_u16() == status => return,
            other => last = Some(other.map(|r| r.status().as_u16())),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered {status}; last: {last:?}");
}

async fn echo(client: &mut Client, text: &str) {
    send_text(client, text).await;
    assert_eq!(next_text(client).await, text);
}

/// After one reload (`result`: `ok` or `error`): `client`, opened before it, still echoes, a
/// new socket on `/chat` does too, and the reload was counted.
async fn serves_old_and_new_sockets(gw: &TestGateway, client: &mut Client, result: &str) {
    echo(client, "after").await;
    let mut second = connect(&gw.ws_url("/chat")).await;
    echo(&mut second, "new").await;
    let metrics = gw.metrics_text().await;
    let counted = format!("portcullis_config_reloads_total{{result=\"{result}\"}} 1");
    assert!(metrics.contains(&counted), "{metrics}");
}

#[tokio::test]
async fn a_reload_adds_an_http_api_while_an_open_socket_keeps_working() {
    let backend = Backend::echo().await;
    let apis = apis_of(&backend, &["chat"]);
    let gw = TestGateway::start(&apis).await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    echo(&mut client, "before").await;
    assert_eq!(status_of(&gw.http_url("/api/hello")).await, 404);

    let changes = gw
        .running()
        .reload(config(&format!("{apis}{HTTP_API}")))
        .await
        .expect("the new configuration is applied");
    assert_eq!((changes.http.added, changes.websocket.changed), (1, 0));

    assert_eq!(status_of(&gw.http_url("/api/hello")).await, 200);
    // The socket opened before the reload is still served, and was never disconnected.
    serves_old_and_new_sockets(&gw, &mut client, "ok").await;
    assert!(!disconnected(&backend, &id));
}

#[tokio::test]
async fn a_broken_file_is_refused_and_the_running_configuration_stays() {
    let backend = Backend::echo().await;
    let apis = format!("{}{HTTP_API}", apis_of(&backend, &["chat"]));
    let gw = TestGateway::start(&apis).await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    echo(&mut client, "before").await;

    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("gw.toml");
    // A route naming an integration that does not exist, and an unknown key.
    let broken = format!(
        "{}[websocket.chat]\nfrobnicate = true\n[websocket.chat.routes]\n\"$default\" = {{ integration = \"nowhere\" }}\n",
        start_head()
    );
    std::fs::write(&path, broken).expect("write");
    let refused = gw.running().reload_file(&path).await;
    let message = refused.expect_err("a broken file is refused").to_string();
    assert!(message.contains("nowhere"), "{message}");
    assert!(message.contains("frobnicate"), "{message}");

    // Everything still answers as before: the HTTP API, the open socket, new sockets.
    assert_eq!(status_of(&gw.http_url("/api/hello")).await, 200);
    serves_old_and_new_sockets(&gw, &mut client, "error").await;
}

#[tokio::test]
async fn a_removed_api_closes_its_sockets_with_1001_and_the_backend_gets_disconnect() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&apis_of(&backend, &["chat", "games"])).await;
    let (mut games, games_id) = connect_and_id(&gw, "/games", &backend).await;
    let (mut chat, chat_id) = connect_and_id(&gw, "/chat", &backend).await;

    let changes = gw
        .running()
        .reload(config(&apis_of(&backend, &["chat"])))
        .await
        .expect("applied");
    assert_eq!(changes.removed_websocket, vec!["games".to_owned()]);

    assert_eq!(close_code(&mut games).await, Some(1001));
    let event = backend.wait_event("DISCONNECT", &games_id).await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1001);
    assert_eq!(event["requestContext"]["disconnectReason"], "API removed");
    // The other API's socket is untouched, and the removed path is gone for new clients.
    echo(&mut chat, "still here").await;
    assert!(!disconnected(&backend, &chat_id));
    assert_eq!(handshake_status(&gw.ws_url("/games"), &[]).await, Some(404));
}

/// Replace `path` the way editors and ConfigMaps do: write a new file beside it, rename it over.
fn replace_by_rename(path: &Path, text: &str) {
    let fresh = path.with_extension("toml.new");
    std::fs::write(&fresh, text).expect("write");
    std::fs::rename(&fresh, path).expect("rename");
}

#[tokio::test]
async fn a_changed_file_is_picked_up_without_a_reload_call() {
    let backend = Backend::echo().await;
    let apis = apis_of(&backend, &["chat"]);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, format!("{}{apis}", start_head())).expect("write");
    let gw = TestGateway::start_full(&format!("{}{apis}", start_head())).await;
    gw.running().watch_config(&path).expect("watched");
    let mut client = connect(&gw.ws_url("/chat")).await;
    assert_eq!(status_of(&gw.http_url("/api/hello")).await, 404);

    // Another file of the directory changes nothing.
    std::fs::write(dir.path().join("notes.txt"), "unrelated").expect("write");
    replace_by_rename(&path, &format!("{}{apis}{HTTP_API}", start_head()));
    until_status(&gw.http_url("/api/hello"), 200).await;
    echo(&mut client, "after").await;
}

#[tokio::test]
async fn sighup_reloads_the_configuration_file_of_the_binary() {
    let backend = Backend::echo().await;
    let dir = tempfile::tempdir().expect("tmp");
    let (port, admin) = (free_port(), free_port());
    let server = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\n"
    );
    let apis = apis_of(&backend, &["chat"]);
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, format!("{server}{apis}")).expect("write");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn");
    let hello = format!("http://127.0.0.1:{port}/api/hello");
    until_status(&format!("http://127.0.0.1:{admin}/healthz"), 200).await;
    let mut client = connect(&format!("ws://127.0.0.1:{port}/chat")).await;
    assert_eq!(status_of(&hello).await, 404);

    // The file is written in place (no rename) and SIGHUP sent at once.
    std::fs::write(&path, format!("{server}{apis}{HTTP_API}")).expect("write");
    let hup = Command::new("kill")
        .arg("-HUP")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(hup.success());
    until_status(&hello, 200).await;
    echo(&mut client, "after").await;
    // The log says the signal was taken as a reload (the watch may have reloaded too).
    let mut logged = String::new();
    for _ in 0..100 {
        logged = std::fs::read_to_string(&log_path).unwrap_or_default();
        if logged.contains("SIGHUP: reloading the configuration")
            && logged.contains("configuration reloaded")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    drop(client);
    let status = super::cli::exited(child).await;
    assert!(
        logged.contains("SIGHUP: reloading the configuration"),
        "{logged}"
    );
    assert!(logged.contains("http +1 -0 ~0"), "{logged}");
    assert!(status.success(), "exited with {status}");
}

async fn client_token(base: &str, client: &str, secret: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/pools/main/oauth2/token"))
        .basic_auth(client, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "reports/read"),
        ])
        .send()
        .await
        .expect("token request")
}

#[tokio::test]
async fn a_pool_client_added_by_a_reload_gets_tokens() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = |name: &str| {
        format!(
            "[pools.main.clients.{name}]\nsecret = \"{name}-secret-123\"\ngrants = [\"client_credentials\"]\nallowed_scopes = [\"reports/read\"]\n"
        )
    };
    let pool = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\npublic_url = \"{base}\"\n\n\
         [store]\nurl = \"sqlite://{}/idp.db\"\n\n\
         [pools.main]\n[pools.main.resource_servers.reports]\nscopes = [\"read\"]\n{}",
        dir.path().display(),
        client("first")
    );
    let gw = TestGateway::start_full(&pool).await;
    let first = client_token(&base, "first", "first-secret-123").await;
    assert_eq!(
        first.status().as_u16(),
        200,
        "the configured client gets tokens"
    );
    let refused = client_token(&base, "second", "second-secret-123").await;
    assert_eq!(
        refused.status().as_u16(),
        401,
        "an unknown client is refused"
    );

    let with_second = format!("{pool}{}", client("second"));
    let config = match portcullis_config::load_str(&with_second, "test.toml", &|_| None) {
        Ok(c) => c,
        Err(d) => panic!("{d}"),
    };
    let changes = gw.running().reload(config).await.expect("applied");
    assert!(changes.identity);
    let token = client_token(&base, "second", "second-secret-123").await;
    assert_eq!(token.status().as_u16(), 200);
    let token: serde_json::Value = token.json().await.expect("json");
    assert_eq!(token["token_type"], "Bearer");
    let first = client_token(&base, "first", "first-secret-123").await;
    assert_eq!(
        first.status().as_u16(),
        200,
        "the configured client gets tokens"
    );
}

#[tokio::test]
async fn a_socket_whose_connect_was_under_way_when_its_api_was_removed_is_closed() {
    // `$connect` answers after 2 s: the reload happens while it is pending.
    let backend = Backend::start(
        |event| match event["requestContext"]["eventType"].as_str() {
            Some("CONNECT") => Reply::Delay(Duration::from_secs(2), Box::new(Reply::ok())),
            _ => Reply::ok(),
        },
    )
    .await;
    let gw = TestGateway::start(&apis_of(&backend, &["chat", "games"])).await;
    let (connecting, id) = connect_under_way(&gw, "/games", &backend).await;
    gw.running()
        .reload(config(&apis_of(&backend, &["chat"])))
        .await
        .expect("applied");
    let mut games = connecting.await.expect("join");
    assert_eq!(close_code(&mut games).await, Some(1001));
    let event = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(event["requestContext"]["disconnectReason"], "API removed");
}

#[tokio::test]
async fn an_event_stream_added_by_a_reload_is_served_and_closed_when_its_api_is_removed() {
    use portcullis_testkit::jwt::Issuer;
    use portcullis_testkit::sse::Protocol;

    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    let authorizer = format!(
        "[authorizers.users]\ntype = \"jwt\"\nidentity_source = [\"route.request.header.Authorization\"]\n\
         issuers = [{{ issuer = \"{}\" }}]\n\n",
        issuer.issuer
    );
    let base = format!(
        "{}{authorizer}{}",
        backend_integration(&backend.url),
        backend_ws_api("games", "")
    );
    let with_stream = format!(
        "{base}[websocket.chat]\nauthorizer = \"users\"\nsse = true\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\"$disconnect\" = {{ integration = \"backend\" }}\n\n"
    );
    let gw = TestGateway::start(&base).await;
    let bearer = format!(
        "Bearer {}",
        issuer.token(serde_json::json!({"sub": "alice"}))
    );
    let headers = [("authorization", bearer.as_str())];
    let url = gw.http_url("/chat/events");
    assert!(
        portcullis_testkit::sse::connect(&url, &headers, Protocol::Http1)
            .await
            .is_err(),
        "no stream before the reload"
    );

    gw.running()
        .reload(config(&with_stream))
        .await
        .expect("applied");
    // HTTP/1.1: the listener learns the new stream path from the reload.
    let mut stream = match portcullis_testkit::sse::connect(&url, &headers, Protocol::Http1).await {
        Ok(stream) => stream,
        Err((status, _, body)) => panic!("stream refused: {status} {body}"),
    };
    let first = stream.event().await;
    assert_eq!(first.event, "connected");
    let id = serde_json::from_str::<serde_json::Value>(&first.data).expect("json")["connectionId"]
        .as_str()
        .expect("connectionId")
        .to_owned();

    gw.running().reload(config(&base)).await.expect("applied");
    let ending = stream.event().await;
    assert_eq!(ending.event, "close");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ending.data).expect("json"),
        serde_json::json!({"code": 1001, "reason": "API removed"})
    );
    let event = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1001);
}
