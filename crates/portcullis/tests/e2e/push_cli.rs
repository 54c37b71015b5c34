//! `portcullis push`: the real binary against a gateway running in this process, both reading
//! the same configuration file. Principals come from a request authorizer that names the caller
//! after the `user` query parameter. With `admin_tls`, the certificate of a test CA is trusted
//! through `--ca-file` or `server.ca_file`.

use std::path::{Path, PathBuf};

use portcullis_testkit::{
    ACCESS_KEY_ID, Backend, Client, REGION, Reply, SECRET_ACCESS_KEY, TestGateway, connect_and_id,
    encode_id, free_port, management, next_text,
};
use serde_json::json;

use super::cli::{Out, portcullis};
use super::tls::{TestCa, write_pair};

struct World {
    dir: tempfile::TempDir,
    config: PathBuf,
    gateway: TestGateway,
    backend: Backend,
    _webhook: Backend,
}

/// The gateway's configuration: `chat` under stage `prod`, `ops` under stage `ops`.
fn config_text(port: u16, admin: u16, secret: &str, backend: &str, webhook: &str) -> String {
    let api = |name: &str, stage: &str| {
        format!(
            "[websocket.{name}]\npath = \"/{name}\"\nstage = \"{stage}\"\nauthorizer = \"who\"\n\
             [websocket.{name}.routes]\n\"$connect\" = {{ integration = \"backend\" }}\n\
             \"$disconnect\" = {{ integration = \"backend\" }}\n\
             \"$default\" = {{ integration = \"backend\" }}\n"
        )
    };
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
         shutdown_grace = \"5s\"\n\n\
         [management]\nregion = \"{REGION}\"\n\
         credentials = [{{ access_key_id = \"{ACCESS_KEY_ID}\", secret_access_key = \"{secret}\" }}]\n\n\
         {}{}\
         [integrations.backend]\ntype = \"http\"\nurl = \"{backend}\"\n\n\
         [authorizers.who]\ntype = \"request\"\nurl = \"{webhook}\"\n\
         identity_source = [\"route.request.querystring.user\"]\ncache_ttl = \"0s\"\n",
        api("chat", "prod"),
        api("ops", "ops"),
    )
}

async fn world() -> World {
    world_in(tempfile::tempdir().expect("tmp"), "").await
}

/// The world in `dir`, with `server` added to the configuration's `[server]`.
async fn world_in(dir: tempfile::TempDir, server: &str) -> World {
    let backend = Backend::echo().await;
    let webhook = Backend::start(|event| {
        let user = event["queryStringParameters"]["user"]
            .as_str()
            .unwrap_or("");
        Reply::Json(
            200,
            json!({
                "principalId": user,
                "policyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]}
            })
            .to_string(),
        )
    })
    .await;
    let toml = config_text(
        free_port(),
        free_port(),
        SECRET_ACCESS_KEY,
        &backend.url,
        &webhook.url,
    )
    .replacen("[server]\n", &format!("[server]\n{server}"), 1);
    let config = dir.path().join("gw.toml");
    std::fs::write(&config, &toml).expect("write config");
    let gateway = TestGateway::start_full(&toml).await;
    World {
        dir,
        config,
        gateway,
        backend,
        _webhook: webhook,
    }
}

/// `portcullis push --config FILE ARGS...`, off the runtime that serves the gateway.
async fn push(config: &Path, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(<[u8]>::to_vec);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        portcullis(&["push"], &config, &args, stdin.as_deref())
    })
    .await
    .expect("push runs")
}

/// Nothing reached `client` before now: a marker pushed now is the next frame it reads (pushes
/// to one connection arrive in order).
async fn assert_nothing_before_now(gateway: &TestGateway, client: &mut Client, id: &str) {
    let path = format!("/prod/@connections/{}", encode_id(id));
    let posted = management(gateway, "POST", &path, b"marker", SECRET_ACCESS_KEY).await;
    assert_eq!(posted.status(), 200);
    assert_eq!(next_text(client).await, "marker");
}

#[tokio::test]
async fn a_connection_gets_the_message_and_push_prints_one() {
    let w = world().await;
    let (mut ws, id) = connect_and_id(&w.gateway, "/chat?user=alice", &w.backend).await;
    let out = push(
        &w.config,
        &["--api", "chat", "--connection", &id, "héllo ✓"],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"connections\":1}\n");
    assert_eq!(next_text(&mut ws).await, "héllo ✓");
    w.gateway.shutdown().await;
}

#[tokio::test]
async fn a_user_push_reaches_every_socket_of_that_principal_and_no_other() {
    let w = world().await;
    let (mut a1, _) = connect_and_id(&w.gateway, "/chat?user=alice", &w.backend).await;
    let (mut a2, _) = connect_and_id(&w.gateway, "/chat?user=alice", &w.backend).await;
    let (mut bob, bob_id) = connect_and_id(&w.gateway, "/chat?user=bob", &w.backend).await;
    // another API, under another stage: a push to stage `prod` does not reach it
    let (mut ops_alice, ops_id) = connect_and_id(&w.gateway, "/ops?user=alice", &w.backend).await;
    let out = push(
        &w.config,
        &["--api", "chat", "--user", "alice", "hi alice"],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"connections\":2}\n");
    assert_eq!(next_text(&mut a1).await, "hi alice");
    assert_eq!(next_text(&mut a2).await, "hi alice");
    assert_nothing_before_now(&w.gateway, &mut bob, &bob_id).await;
    assert_nothing_before_now(&w.gateway, &mut ops_alice, &ops_id).await;

    let nobody = push(
        &w.config,
        &["--api", "chat", "--user", "carol", "-"],
        Some(b"x"),
    )
    .await;
    assert_eq!(nobody.code, 0, "{}", nobody.stderr);
    assert_eq!(nobody.stdout, "{\"connections\":0}\n");
    w.gateway.shutdown().await;
}

#[tokio::test]
async fn a_topic_push_reads_its_message_from_stdin_or_a_file() {
    let w = world().await;
    let (mut sub, id) = connect_and_id(&w.gateway, "/chat?user=alice", &w.backend).await;
    let (mut other, other_id) = connect_and_id(&w.gateway, "/chat?user=bob", &w.backend).await;
    let path = format!("/prod/@connections/{}/topics/room:1", encode_id(&id));
    let subscribed = management(&w.gateway, "PUT", &path, b"", SECRET_ACCESS_KEY).await;
    assert_eq!(subscribed.status(), 204);

    let out = push(
        &w.config,
        &["--api", "chat", "--topic", "room:1", "-"],
        Some(b"line one\nline two"),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"connections\":1}\n");
    assert_eq!(next_text(&mut sub).await, "line one\nline two");

    let file = w.dir.path().join("message.json");
    std::fs::write(&file, br#"{"score": 3}"#).expect("write");
    let file = file.to_string_lossy().into_owned();
    let out = push(
        &w.config,
        &["--api", "chat", "--topic", "room:1", "--data-file", &file],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(next_text(&mut sub).await, r#"{"score": 3}"#);
    assert_nothing_before_now(&w.gateway, &mut other, &other_id).await;
    w.gateway.shutdown().await;
}

#[tokio::test]
async fn refusals_print_the_gateways_message_and_aws_code() {
    let w = world().await;
    let gone = push(
        &w.config,
        &["--api", "chat", "--connection", "Tm9TdWNoQ29ubj0=", "x"],
        None,
    )
    .await;
    assert_eq!(gone.code, 1);
    assert!(gone.stdout.is_empty());
    assert!(gone.stderr.starts_with("push: "), "{}", gone.stderr);
    assert!(
        gone.stderr.contains("(GoneException, HTTP 410)"),
        "{}",
        gone.stderr
    );

    // the same file with another secret: the gateway refuses the signature
    let text = std::fs::read_to_string(&w.config).expect("read");
    let wrong = w.dir.path().join("wrong.toml");
    std::fs::write(&wrong, text.replace(SECRET_ACCESS_KEY, "not-the-secret")).expect("write");
    let forbidden = push(&wrong, &["--api", "chat", "--user", "alice", "x"], None).await;
    assert_eq!(forbidden.code, 1);
    assert!(
        forbidden.stderr.contains("(ForbiddenException, HTTP 403)"),
        "{}",
        forbidden.stderr
    );

    let big = vec![b'x'; 131_073];
    let too_big = push(
        &w.config,
        &["--api", "chat", "--user", "alice", "-"],
        Some(&big),
    )
    .await;
    assert_eq!(too_big.code, 1);
    assert!(
        too_big.stderr.contains("over 131072 bytes"),
        "{}",
        too_big.stderr
    );
    w.gateway.shutdown().await;
}

#[tokio::test]
async fn an_unknown_api_and_a_listener_that_is_down_are_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("down.toml");
    // nothing listens on these ports
    let (port, admin) = (free_port(), free_port());
    let text = config_text(
        port,
        admin,
        "s",
        "http://127.0.0.1:9/events",
        "http://127.0.0.1:9/a",
    );
    std::fs::write(&config, text).expect("write");

    let unknown = push(&config, &["--api", "caht", "--user", "alice", "x"], None).await;
    assert_eq!(unknown.code, 1);
    assert_eq!(
        unknown.stderr,
        format!(
            "push: no WebSocket API \"caht\" in {} (its WebSocket APIs: chat, ops)\n",
            config.display()
        )
    );
    let ambiguous = push(&config, &["--user", "alice", "x"], None).await;
    assert!(
        ambiguous.stderr.contains("choose one with --api"),
        "{}",
        ambiguous.stderr
    );

    let down = push(&config, &["--api", "ops", "--user", "alice", "x"], None).await;
    assert_eq!(down.code, 1);
    assert!(
        down.stderr.starts_with(&format!(
            "push: cannot reach the admin listener at http://127.0.0.1:{admin} (server.admin_listen of {})",
            config.display()
        )),
        "{}",
        down.stderr
    );
    assert!(
        down.stderr.contains("is the gateway running?"),
        "{}",
        down.stderr
    );

    let invalid = dir.path().join("invalid.toml");
    std::fs::write(&invalid, "[server]\nlisten = 3\n").expect("write");
    let out = push(&invalid, &["--user", "alice", "x"], None).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[tokio::test]
async fn over_admin_tls_push_trusts_its_ca_file_or_the_configured_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = TestCa::new();
    let (cert, key, _) = ca.leaf("admin", 2100);
    let (cert, key) = write_pair(dir.path(), "admin", &cert, &key);
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("ca");
    let not_pem = dir.path().join("notes.txt");
    std::fs::write(&not_pem, "not a certificate\n").expect("notes");
    let w = world_in(
        dir,
        &format!("admin_tls = {{ cert = {cert:?}, key = {key:?} }}\n"),
    )
    .await;
    let (mut ws, id) = connect_and_id(&w.gateway, "/chat?user=alice", &w.backend).await;
    let to_alice = ["--api", "chat", "--connection", id.as_str()];
    let with = |extra: &[&str]| -> Vec<String> {
        to_alice
            .iter()
            .chain(extra)
            .map(|a| (*a).to_owned())
            .collect()
    };
    let run = |config: PathBuf, args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        push(&config, &args, None).await
    };

    // The system roots alone do not know the test CA: refused, and the way out is named.
    let untrusted = run(w.config.clone(), with(&["first"])).await;
    assert_eq!(untrusted.code, 1, "{}", untrusted.stdout);
    let admin = w.gateway.admin.port();
    assert!(
        untrusted.stderr.contains(&format!(
            "push: cannot reach the admin listener at https://127.0.0.1:{admin}"
        )),
        "{}",
        untrusted.stderr
    );
    assert!(
        untrusted.stderr.contains("UnknownIssuer") && untrusted.stderr.contains("--ca-file"),
        "{}",
        untrusted.stderr
    );

    // --ca-file: the certificate chains to it; the message arrives.
    let ca_path = ca_file.display().to_string();
    let trusted = run(w.config.clone(), with(&["--ca-file", &ca_path, "over tls"])).await;
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    assert_eq!(trusted.stdout, "{\"connections\":1}\n");
    assert_eq!(next_text(&mut ws).await, "over tls");

    // An unusable --ca-file is named, and nothing is sent.
    let notes = not_pem.display().to_string();
    let unusable = run(w.config.clone(), with(&["--ca-file", &notes, "never"])).await;
    assert_eq!(unusable.code, 1);
    assert_eq!(
        unusable.stderr,
        format!("push: --ca-file: {notes}: no CERTIFICATE block in the file\n")
    );

    // Without the flag, the configuration's server.ca_file is trusted.
    let text = std::fs::read_to_string(&w.config).expect("config");
    let configured = w.dir.path().join("with-ca.toml");
    std::fs::write(
        &configured,
        text.replacen(
            "[server]\n",
            &format!("[server]\nca_file = {ca_path:?}\n"),
            1,
        ),
    )
    .expect("write");
    let from_config = run(configured, with(&["from the config"])).await;
    assert_eq!(from_config.code, 0, "{}", from_config.stderr);
    assert_eq!(next_text(&mut ws).await, "from the config");
    w.gateway.shutdown().await;
}
