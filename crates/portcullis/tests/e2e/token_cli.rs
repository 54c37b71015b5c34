//! `portcullis token mint` as a process: shared-secret tokens and built-in pool tokens,
//! verified by a running gateway's `jwt` authorizer; failures print nothing on stdout.

use std::path::Path;
use std::process::{Command, Stdio};

use portcullis_testkit::*;
use serde_json::json;

use crate::cli::portcullis;

const SECRET: &str = "shared-secret-of-the-app-0123456789abcdef";

struct Minted {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `portcullis token mint ARGS` with exactly `env` as its environment (plus PATH).
fn mint(args: &[&str], env: &[(&str, &str)]) -> Minted {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["token", "mint"])
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run portcullis");
    Minted {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn token_of(m: &Minted) -> String {
    assert_eq!(m.code, 0, "stderr: {}", m.stderr);
    assert!(
        m.stdout.ends_with('\n') && m.stdout.lines().count() == 1,
        "{:?}",
        m.stdout
    );
    m.stdout.trim().to_owned()
}

fn config(db: &Path) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
public_url = "http://localhost:8080"

[management]
region = "{REGION}"
credentials = [{{ access_key_id = "{ACCESS_KEY_ID}", secret_access_key = "{SECRET_ACCESS_KEY}" }}]

[store]
url = "sqlite://{}"

[pools.main.resource_servers.premium-content]
scopes = ["read"]

[pools.main.clients.web]
public = true
callback_urls = ["http://localhost:8080/app/"]

[pools.main.clients.reporting]
secret = "reporting-secret-value-0123"
grants = ["client_credentials"]
allowed_scopes = ["premium-content/read"]

[authorizers.app]
type = "jwt"
identity_source = ["route.request.querystring.access_token"]
issuers = [
  {{ issuer = "my-app", secret = "{SECRET}", algorithms = ["HS256", "HS512"] }},
  {{ issuer = "http://localhost:8080/pools/main" }},
]
principal_claim = "userId"

[websocket.chat]
stage = "prod"
authorizer = "app"

[websocket.chat.routes]
"$connect" = {{ integration = "backend" }}
"$default" = {{ integration = "backend", response = true }}

[integrations.backend]
type = "http"
url = "BACKEND"
"#,
        db.display()
    )
}

#[tokio::test]
async fn minted_tokens_are_accepted_by_a_running_gateway() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("portcullis.toml");
    let backend = Backend::echo().await;
    let text = config(&dir.path().join("p.db")).replace("BACKEND", &backend.url);
    std::fs::write(&file, &text).expect("write config");
    let gw = TestGateway::start_full(&text).await;
    let created = portcullis(
        &["users", "create"],
        &file,
        &["--pool", "main", "alice"],
        None,
    );
    assert_eq!(created.code, 0, "{}", created.stderr);

    let claims = r#"{"userId":"u1","firstName":"Ada"}"#;
    let shared = token_of(&mint(
        &[
            "--secret-env",
            "JWT_SECRET",
            "--issuer",
            "my-app",
            "--claims",
            claims,
            "--ttl",
            "10m",
        ],
        &[("JWT_SECRET", SECRET)],
    ));
    let hs512 = token_of(&mint(
        &[
            "--secret-env",
            "JWT_SECRET",
            "--issuer",
            "my-app",
            "--claims",
            claims,
            "--algorithm",
            "HS512",
            "--subject",
            "s-1",
        ],
        &[("JWT_SECRET", SECRET)],
    ));
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write secret");
    let from_file = token_of(&mint(
        &[
            "--secret-file",
            secret_file.to_str().expect("utf-8"),
            "--issuer",
            "my-app",
            "--claims",
            claims,
        ],
        &[],
    ));
    let config_arg = file.to_str().expect("utf-8");
    let alice = token_of(&mint(
        &["--config", config_arg, "--pool", "main", "--user", "alice"],
        &[],
    ));
    let service = token_of(&mint(
        &[
            "--config",
            config_arg,
            "--pool",
            "main",
            "--client",
            "reporting",
        ],
        &[],
    ));

    for (token, principal) in [
        (&shared, Some("u1")),
        (&hs512, Some("u1")),
        (&from_file, Some("u1")),
        // Pool tokens have no userId: no principal, but they are let in.
        (&alice, None),
        (&service, None),
    ] {
        let url = format!("{}?access_token={token}", gw.ws_url("/chat"));
        // `None`: no refusal, the upgrade succeeded.
        assert_eq!(handshake_status(&url, &[]).await, None, "{principal:?}");
        let event = backend
            .wait_for(|e| {
                e["requestContext"]["eventType"] == "CONNECT"
                    && e["queryStringParameters"]["access_token"] == json!(token)
            })
            .await;
        let authorizer = &event["requestContext"]["authorizer"];
        match principal {
            Some(p) => {
                assert_eq!(authorizer["principalId"], p);
                // WebSocket events carry every claim at the top, as a Lambda authorizer's context.
                assert_eq!(authorizer["userId"], "u1");
                assert_eq!(authorizer["firstName"], "Ada");
                assert_eq!(authorizer["iss"], "my-app");
            }
            None => assert!(authorizer.get("principalId").is_none(), "{authorizer}"),
        }
    }
    // The pool tokens really are the pool's: alice's names her, the service's its client.
    let claims_of = |t: &str| -> serde_json::Value {
        use base64::Engine;
        let payload = t.split('.').nth(1).expect("payload");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64");
        serde_json::from_slice(&bytes).expect("json")
    };
    assert_eq!(claims_of(&alice)["username"], "alice");
    assert_eq!(claims_of(&alice)["token_use"], "access");
    assert_eq!(claims_of(&service)["client_id"], "reporting");
    assert_eq!(claims_of(&service)["scope"], "premium-content/read");
    assert_eq!(claims_of(&hs512)["sub"], "s-1");

    // A token of the wrong secret is refused by the same gateway.
    let forged = token_of(&mint(
        &[
            "--secret-env",
            "JWT_SECRET",
            "--issuer",
            "my-app",
            "--claims",
            claims,
        ],
        &[("JWT_SECRET", "another-secret-of-at-least-32-bytes!!")],
    ));
    let url = format!("{}?access_token={forged}", gw.ws_url("/chat"));
    assert_eq!(handshake_status(&url, &[]).await, Some(401));

    // Failures: a line on stderr, nothing on stdout, a non-zero exit.
    let failures: Vec<(Minted, &str)> = vec![
        (
            mint(
                &["--config", config_arg, "--pool", "main", "--user", "nobody"],
                &[],
            ),
            "no user \"nobody\" in pool \"main\"",
        ),
        (
            mint(
                &["--config", config_arg, "--pool", "nope", "--user", "alice"],
                &[],
            ),
            "nope",
        ),
        (
            mint(
                &[
                    "--secret-env",
                    "JWT_SECRET",
                    "--issuer",
                    "my-app",
                    "--claims",
                    "{\"userId\":",
                ],
                &[("JWT_SECRET", SECRET)],
            ),
            "--claims is not valid JSON",
        ),
        (
            mint(&["--secret-env", "JWT_SECRET", "--issuer", "my-app"], &[]),
            "JWT_SECRET is not set",
        ),
        (
            mint(
                &["--secret-env", "JWT_SECRET", "--issuer", "my-app"],
                &[("JWT_SECRET", "short")],
            ),
            "at least 32",
        ),
        (
            mint(&["--issuer", "my-app", "--claims", claims], &[]),
            "--secret-env",
        ),
        (
            mint(
                &[
                    "--secret-env",
                    "JWT_SECRET",
                    "--issuer",
                    "my-app",
                    "--algorithm",
                    "RS256",
                ],
                &[("JWT_SECRET", SECRET)],
            ),
            "HS256, HS384 or HS512",
        ),
    ];
    for (m, want) in failures {
        assert_ne!(m.code, 0, "{want}");
        assert_eq!(m.stdout, "", "{want}");
        assert!(m.stderr.contains(want), "{want:?} not in {:?}", m.stderr);
        assert!(!m.stderr.contains(SECRET));
    }
    gw.shutdown().await;
}
