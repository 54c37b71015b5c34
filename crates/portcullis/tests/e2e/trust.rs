//! What crosses the gateway's trust boundaries: headers a client may not forge reach no
//! backend in any spelling, the gateway's session cookies reach no backend in any event,
//! tokens in configured query parameters reach no log, CSRF cookies tossed in by a sibling
//! site are refused, and secrets left at their `${VAR:-default}` fallback are warned about.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use portcullis_testkit::jwt::Issuer;
use portcullis_testkit::*;
use serde_json::{Value, json};

/// A plain HTTP service for `http_proxy`: answers with the headers it received, as sent
/// (names lower-cased by its HTTP parser, underscores kept).
async fn header_mirror() -> String {
    async fn handler(req: Request) -> axum::response::Response {
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        axum::Json(json!(headers)).into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, Router::new().fallback(handler)).await;
    });
    format!("http://{addr}")
}

/// A WebSocket API and an HTTP API (an `http` route and an `http_proxy` route), all behind
/// `jwt` authorizers that read the token from the cookie session's `portcullis_access` cookie
/// or, for the proxy, an `Authorization` header.
fn apis(backend: &Backend, mirror: &str, issuer: &Issuer) -> String {
    format!(
        "[websocket.chat]\nauthorizer = \"cookie\"\n\
         [websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\", response = true }}\n\n\
         [http.api]\nbase_path = \"/api\"\n\
         [http.api.routes]\n\
         \"GET /event\" = {{ integration = \"backend\", authorizer = \"http_cookie\" }}\n\
         \"ANY /proxy/{{path+}}\" = {{ integration = \"mirror\", authorizer = \"bearer\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [integrations.mirror]\ntype = \"http_proxy\"\nurl = \"{mirror}\"\n\n\
         [authorizers.cookie]\ntype = \"jwt\"\nidentity_source = [\"route.request.cookie.portcullis_access\"]\nissuers = [{{ issuer = \"{issuer}\" }}]\ntoken_use = \"access\"\n\n\
         [authorizers.http_cookie]\ntype = \"jwt\"\nidentity_source = [\"$request.cookie.portcullis_access\"]\nissuers = [{{ issuer = \"{issuer}\" }}]\ntoken_use = \"access\"\n\n\
         [authorizers.bearer]\ntype = \"jwt\"\nidentity_source = [\"$request.header.Authorization\"]\nissuers = [{{ issuer = \"{issuer}\" }}]\ntoken_use = \"access\"\n",
        backend.url,
        issuer = issuer.issuer,
    )
}

/// Whether a header name is one only the gateway may set, in the spelling a CGI-style backend
/// would read it (`_` as `-`, any case).
fn owned(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('_', "-");
    n.starts_with("x-portcullis-")
        || n.starts_with("x-forwarded-")
        || n == "forwarded"
        || n == "x-real-ip"
}

#[tokio::test]
async fn http_proxy_backends_never_see_forged_identity_or_address_headers() {
    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    let mirror = header_mirror().await;
    let gw = TestGateway::start(&apis(&backend, &mirror, &issuer)).await;
    let token = issuer.token(json!({"sub": "alice"}));
    let response = reqwest::Client::new()
        .get(format!("http://{}/api/proxy/whoami", gw.listen))
        .header("Authorization", format!("Bearer {token}"))
        .header("X_Portcullis_Principal", "admin")
        .header("x-portcullis-principal", "admin")
        .header("X_PORTCULLIS_AUTHORIZER", "{\"groups\":\"admins\"}")
        .header("X-Real-IP", "10.0.0.1")
        .header("X_Real_IP", "10.0.0.1")
        .header("Forwarded", "for=10.0.0.1;proto=https")
        .header("X_Forwarded_For", "10.0.0.1")
        .header("X_Forwarded_Proto", "https")
        .header("X-Custom_Header", "kept")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    let seen: Vec<(String, String)> = response.json().await.expect("json");
    let owned_seen: Vec<&str> = seen
        .iter()
        .filter(|(n, _)| owned(n))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        owned_seen,
        [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-portcullis-principal",
            "x-portcullis-authorizer",
        ],
        "only the gateway's own headers, once each: {seen:?}"
    );
    let value = |name: &str| {
        seen.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(value("x-forwarded-for"), "127.0.0.1");
    assert_eq!(value("x-forwarded-proto"), "http");
    assert_eq!(value("x-portcullis-principal"), "alice");
    let context: Value =
        serde_json::from_str(&value("x-portcullis-authorizer")).expect("authorizer JSON");
    assert_eq!(context["principalId"], "alice");
    assert!(
        seen.iter()
            .any(|(n, v)| n == "x-custom_header" && v == "kept"),
        "other underscore names pass: {seen:?}"
    );
}

#[tokio::test]
async fn session_cookies_reach_the_authorizer_but_no_event() {
    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    let mirror = header_mirror().await;
    let gw = TestGateway::start(&apis(&backend, &mirror, &issuer)).await;
    let token = issuer.token(json!({"sub": "alice"}));
    let cookie = format!("theme=dark; portcullis_access={token}; portcullis_refresh=r3fresh");

    // $connect: the authorizer took the token from the cookie; the event does not carry it.
    let (_client, response) = try_connect_response(&gw.ws_url("/chat"), &[("Cookie", &cookie)])
        .await
        .expect("the cookie's token is accepted");
    assert_eq!(response.status().as_u16(), 101);
    let connect = backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;
    assert_eq!(
        connect["requestContext"]["authorizer"]["principalId"],
        "alice"
    );
    assert_eq!(connect["headers"]["Cookie"], "theme=dark");
    assert_eq!(
        connect["multiValueHeaders"]["Cookie"],
        json!(["theme=dark"])
    );
    assert!(!connect.to_string().contains(&token));
    assert!(!connect.to_string().contains("r3fresh"));

    // An `http` integration: neither in `cookies` nor in `headers`.
    let answer = reqwest::Client::new()
        .get(format!("http://{}/api/event", gw.listen))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status().as_u16(), 200);
    let event = backend.wait_for(|e| e["rawPath"] == "/api/event").await;
    assert_eq!(
        event["requestContext"]["authorizer"]["principalId"],
        "alice"
    );
    assert_eq!(event["cookies"], json!(["theme=dark"]));
    assert!(!event.to_string().contains(&token));
    assert!(!event.to_string().contains("r3fresh"));

    // Only the session cookies: the event gets no Cookie header at all.
    let alone = format!("portcullis_access={token}");
    let (_second, _) = try_connect_response(&gw.ws_url("/chat"), &[("Cookie", &alone)])
        .await
        .expect("accepted");
    let second = backend
        .wait_for(|e| {
            e["requestContext"]["eventType"] == "CONNECT" && e["headers"].get("Cookie").is_none()
        })
        .await;
    assert!(
        second["multiValueHeaders"].get("Cookie").is_none(),
        "{second}"
    );
    assert!(!second.to_string().contains(&token));
}

#[tokio::test]
async fn a_csrf_cookie_sent_twice_is_refused() {
    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&format!(
        "[websocket.chat]\nauthorizer = \"users\"\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.users]\ntype = \"jwt\"\nidentity_source = [\"route.request.cookie.portcullis_access\"]\n\
         issuers = [{{ issuer = \"{}\" }}]\ntoken_use = \"access\"\ncsrf = {{ cookie = \"portcullis_csrf\", query = \"csrf\" }}\n",
        backend.url, issuer.issuer
    ))
    .await;
    let token = issuer.token(json!({"sub": "alice"}));
    let url = gw.ws_url("/chat");
    // A sibling subdomain's cookie comes first, with a value the attacker knows and echoes.
    let tossed = format!("portcullis_csrf=known; portcullis_access={token}; portcullis_csrf=real");
    for echo in ["known", "real"] {
        assert_eq!(
            handshake_status(&format!("{url}?csrf={echo}"), &[("Cookie", &tossed)]).await,
            Some(403),
            "echo {echo}"
        );
    }
    assert!(
        backend.events().is_empty(),
        "no $connect for refused upgrades"
    );
    // Sent once, it works.
    let once = format!("portcullis_access={token}; portcullis_csrf=real");
    assert_eq!(
        handshake_status(&format!("{url}?csrf=real"), &[("Cookie", &once)]).await,
        None
    );
}

// ---- the real binary's log ---------------------------------------------------------------

/// Environment variable the test configuration leaves unset, so its `${VAR:-default}` falls back.
const UNSET_VAR: &str = "PORTCULLIS_TRUST_TEST_UNSET_SECRET";
const FALLBACK_SECRET: &str = "fallback-s3cret-in-the-file";

fn start_binary(config: &Path, log: &Path, format: &str) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--log-format", format, "serve", "--config"])
        .arg(config)
        .env("PORTCULLIS_LOG", "debug")
        .env_remove(UNSET_VAR)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn")
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// Polls the log (each line is written before the answer it belongs to is sent, so this
/// only waits for the file system) until it has `count` lines containing `needle`.
async fn wait_for_log(path: &Path, needle: &str, count: usize) -> String {
    for _ in 0..200 {
        let text = read(path);
        if text.matches(needle).count() >= count {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{needle:?} did not appear {count} time(s) in the log:\n{}",
        read(path)
    );
}

#[tokio::test]
async fn a_token_in_a_configured_query_parameter_never_reaches_the_log() {
    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().expect("tmp");
        let (port, admin) = (free_port(), free_port());
        let config = dir.path().join("gw.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\n\
                 [management]\ncredentials = [{{ access_key_id = \"AKIDLOG\", secret_access_key = \"${{{UNSET_VAR}:-{FALLBACK_SECRET}}}\" }}]\n\n\
                 [websocket.chat]\nauthorizer = \"users\"\n[websocket.chat.routes]\n\
                 \"$connect\" = {{ integration = \"backend\" }}\n\
                 \"$disconnect\" = {{ integration = \"backend\" }}\n\n\
                 [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
                 [authorizers.users]\ntype = \"jwt\"\nidentity_source = [\"route.request.querystring.jwt\"]\n\
                 issuers = [{{ issuer = \"{}\" }}]\ntoken_use = \"access\"\n",
                backend.url, issuer.issuer
            ),
        )
        .expect("write config");
        let log = dir.path().join("log.txt");
        let mut child = start_binary(&config, &log, format);
        let healthz = format!("http://127.0.0.1:{admin}/healthz");
        let mut up = false;
        for _ in 0..200 {
            if reqwest::get(&healthz).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "gateway did not start:\n{}", read(&log));

        let good = issuer.token(json!({"sub": "alice"}));
        let expired = issuer.token(json!({"exp": chrono::Utc::now().timestamp() - 600}));
        let url = format!("ws://127.0.0.1:{port}/chat");
        let client = connect(&format!("{url}?jwt={good}&room=lobby")).await;
        assert_eq!(
            handshake_status(&format!("{url}?jwt={expired}"), &[]).await,
            Some(401)
        );
        wait_for_log(&log, "connected", 1).await;
        let text = wait_for_log(&log, "upgrade refused", 1).await;
        drop(client);
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();

        assert!(
            text.contains("jwt=<redacted>"),
            "{format}: the path is logged redacted:\n{text}"
        );
        for token in [&good, &expired] {
            let signature = token.rsplit('.').next().unwrap_or_default();
            assert!(signature.len() > 20);
            assert!(
                !text.contains(signature),
                "{format}: a token reached the log:\n{text}"
            );
        }
        // The fallback secret is warned about by key and variable, never by value.
        let warning = text
            .lines()
            .find(|l| l.contains("management.credentials[0].secret_access_key"))
            .unwrap_or_else(|| panic!("{format}: no warning about the fallback secret:\n{text}"));
        assert!(
            warning.contains("WARN") || warning.contains("\"level\":\"WARN\""),
            "{warning}"
        );
        assert!(warning.contains(UNSET_VAR), "{warning}");
        assert!(
            !text.contains(FALLBACK_SECRET),
            "{format}: the secret reached the log"
        );
    }
}

#[test]
fn check_warns_about_secret_fallbacks_and_id_tokens_without_showing_secrets() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("gw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n\
             [management]\ncredentials = [{{ access_key_id = \"AK\", secret_access_key = \"${{{UNSET_VAR}:-{FALLBACK_SECRET}}}\" }}]\n\
             [authorizers.external]\ntype = \"jwt\"\nidentity_source = [\"$request.header.Authorization\"]\n\
             issuers = [{{ issuer = \"https://issuer.example\" }}]\n"
        ),
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&config)
        .env_remove(UNSET_VAR)
        .output()
        .expect("run check");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings[0].contains(":5:")
            && warnings[0].contains("management.credentials[0].secret_access_key")
            && warnings[0].contains(UNSET_VAR),
        "{stderr}"
    );
    assert!(
        warnings[1].contains("authorizers.external.token_use"),
        "{stderr}"
    );
    assert!(!stdout.contains(FALLBACK_SECRET) && !stderr.contains(FALLBACK_SECRET));
    assert!(stdout.contains("scopes = [\"connections\"]"), "{stdout}");
}
