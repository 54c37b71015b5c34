//! The identity admin API (`/admin/...` on the admin listener, SigV4-signed like the management
//! API) against a real gateway, and revocations made by another process (the `portcullis` CLI
//! on the same SQLite store) closing live WebSocket connections of the running gateway.

use std::path::PathBuf;
use std::process::Command;

use portcullis_testkit::*;
use serde_json::{Value, json};

const PASSWORD: &str = "Correct-Horse-9";

struct Setup {
    gw: TestGateway,
    backend: Backend,
    base: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

/// A backend's credential: the default scope (`connections`) only.
const BACKEND_KEY: (&str, &str) = ("AKIDBACKEND", "backend-secret-0123456789");
/// An operator's credential: `admin` only.
const OPS_KEY: (&str, &str) = ("AKIDOPS", "ops-secret-0123456789");

/// A gateway with pool `main` on a SQLite file, a WebSocket API whose `$connect` needs one of the
/// pool's access tokens, and three management credentials: the testkit's (both scopes),
/// [`BACKEND_KEY`] and [`OPS_KEY`]. The configuration is also written to a file, for the CLI.
async fn setup() -> Setup {
    let backend = Backend::echo().await;
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\npublic_url = \"{base}\"\nshutdown_grace = \"5s\"\n\n\
         [management]\nregion = \"{REGION}\"\ncredentials = [{{ access_key_id = \"{ACCESS_KEY_ID}\", secret_access_key = \"{SECRET_ACCESS_KEY}\", scopes = [\"connections\", \"admin\"] }}, \
         {{ access_key_id = \"{}\", secret_access_key = \"{}\" }}, {{ access_key_id = \"{}\", secret_access_key = \"{}\", scopes = [\"admin\"] }}]\n\n\
         [websocket.chat]\nauthorizer = \"users\"\nsse = true\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"lambda\" }}\n\"$disconnect\" = {{ integration = \"lambda\" }}\n\"$default\" = {{ integration = \"lambda\", response = true }}\n\n\
         [integrations.lambda]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.users]\ntype = \"jwt\"\nidentity_source = [\"route.request.querystring.access_token\"]\nissuers = [{{ issuer = \"{base}/pools/main\" }}]\n\n\
         [store]\nurl = \"sqlite://{}/idp.db\"\n\n\
         [pools.main]\ngroups = [\"admins\", \"members\"]\npassword_policy = {{ min_length = 8, require_digits = true }}\n\
         [pools.main.clients.web]\npublic = true\ncallback_urls = [\"{base}/demo/\"]\nallowed_scopes = [\"openid\", \"email\"]\n",
        BACKEND_KEY.0,
        BACKEND_KEY.1,
        OPS_KEY.0,
        OPS_KEY.1,
        backend.url,
        dir.path().display()
    );
    let config = dir.path().join("portcullis.toml");
    std::fs::write(&config, &toml).expect("write config");
    let gw = TestGateway::start_full(&toml).await;
    Setup {
        gw,
        backend,
        base,
        config,
        _dir: dir,
    }
}

/// An admin API call signed like botocore's `SigV4Auth` signs it (service `execute-api`).
async fn call(
    gw: &TestGateway,
    method: &str,
    path_and_query: &str,
    body: Option<Value>,
    secret: Option<&str>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    raw_call(gw, method, path_and_query, body, secret).await
}

async fn raw_call(
    gw: &TestGateway,
    method: &str,
    path_and_query: &str,
    body: Vec<u8>,
    secret: Option<&str>,
) -> (u16, Value) {
    raw_call_as(gw, ACCESS_KEY_ID, method, path_and_query, body, secret).await
}

/// A call signed with the key pair `access_key_id` / `secret`.
async fn raw_call_as(
    gw: &TestGateway,
    access_key_id: &str,
    method: &str,
    path_and_query: &str,
    body: Vec<u8>,
    secret: Option<&str>,
) -> (u16, Value) {
    let host = gw.admin.to_string();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut request = reqwest::Client::new()
        .request(
            http::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("http://{host}{path_and_query}"),
        )
        .header("content-type", "application/json");
    if let Some(secret) = secret {
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/json"),
        ];
        let signable = sigv4::SignableRequest {
            method,
            path,
            query,
            headers: &headers,
            body: &body,
        };
        for (name, value) in sigv4::sign(
            &signable,
            access_key_id,
            secret,
            REGION,
            "execute-api",
            chrono::Utc::now(),
        ) {
            request = request.header(name, value);
        }
    }
    let response = request.body(body).send().await.expect("admin request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

async fn admin(gw: &TestGateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(gw, method, path, body, Some(SECRET_ACCESS_KEY)).await
}

/// `InitiateAuth` (`USER_PASSWORD_AUTH`) on the public listener: the HTTP status and the result.
async fn sign_in(base: &str, username: &str, password: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/"))
        .header(
            "X-Amz-Target",
            "AWSCognitoIdentityProviderService.InitiateAuth",
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(
            json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "web",
                   "AuthParameters": {"USERNAME": username, "PASSWORD": password}})
            .to_string(),
        )
        .send()
        .await
        .expect("InitiateAuth");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    (status, body["AuthenticationResult"].clone())
}

/// Signs in and opens a WebSocket with the access token; returns it and its connection id.
async fn open_socket(s: &Setup, username: &str) -> (Client, String) {
    let (status, tokens) = sign_in(&s.base, username, PASSWORD).await;
    assert_eq!(status, 200, "{username} signs in");
    let token = tokens["AccessToken"].as_str().expect("access token");
    let url = format!("{}?access_token={token}", s.gw.ws_url("/chat"));
    let known: Vec<Value> = s
        .backend
        .events()
        .iter()
        .map(|e| e["requestContext"]["connectionId"].clone())
        .collect();
    let socket = connect(&url).await;
    let event = s
        .backend
        .wait_for(|e| {
            e["requestContext"]["eventType"] == "CONNECT"
                && e["requestContext"]["authorizer"]["jwt"]["claims"]["username"] == username
                && !known.contains(&e["requestContext"]["connectionId"])
        })
        .await;
    let id = event["requestContext"]["connectionId"]
        .as_str()
        .expect("id")
        .to_owned();
    (socket, id)
}

/// The socket closes with 1008 and the backend gets its `$disconnect` saying so.
async fn assert_revoked(s: &Setup, socket: &mut Client, connection_id: &str) {
    assert_eq!(close_code(socket).await, Some(1008));
    // reading on sends tungstenite's close reply, so the gateway need not wait for it
    drain(socket).await;
    let disconnect = s
        .backend
        .wait_for(|e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
                && e["requestContext"]["connectionId"] == connection_id
        })
        .await;
    assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1008);
    assert_eq!(
        disconnect["requestContext"]["disconnectReason"],
        "Token revoked"
    );
}

#[tokio::test]
async fn admin_api_manages_users() {
    let s = setup().await;
    let gw = &s.gw;

    // Unsigned, or signed with a wrong secret: 403 before anything else, unknown paths too.
    for (path, secret) in [
        ("/admin/pools", None),
        ("/admin/pools", Some("wrong-secret")),
        ("/admin/nothing/here", None),
    ] {
        let (status, body) = call(gw, "GET", path, None, secret).await;
        assert_eq!(status, 403, "{path} {secret:?}");
        assert_eq!(body["message"], "Forbidden");
    }

    let (status, pools) = admin(gw, "GET", "/admin/pools", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        pools,
        json!({"pools": [{"name": "main", "id": format!("{REGION}_main"),
                          "issuer": format!("{}/pools/main", s.base)}]})
    );
    let (status, body) = admin(gw, "GET", "/admin/pools/nope/users", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["message"], r#"no pool "nope" in the configuration"#);

    // Create with a permanent password: signing in works at once.
    let (status, alice) = admin(
        gw,
        "POST",
        "/admin/pools/main/users",
        Some(json!({"username": "alice", "password": PASSWORD,
                    "attributes": {"email": "alice@example.com"}})),
    )
    .await;
    assert_eq!(status, 201, "{alice}");
    assert_eq!(alice["status"], "CONFIRMED");
    assert_eq!(alice["password_set"], true);
    assert_eq!(alice["attributes"]["email"], "alice@example.com");
    assert!(alice.get("password").is_none() && alice.get("password_hash").is_none());
    let (status, tokens) = sign_in(&s.base, "alice", PASSWORD).await;
    assert_eq!(status, 200);
    assert!(tokens["AccessToken"].is_string());
    let (status, body) = admin(
        gw,
        "POST",
        "/admin/pools/main/users",
        Some(json!({"username": "alice"})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        body["message"],
        r#"user "alice" already exists in pool "main""#
    );

    // Without a password: UNCONFIRMED; confirm, then set a password, then sign in.
    let (status, bob) = admin(
        gw,
        "POST",
        "/admin/pools/main/users",
        Some(json!({"username": "bob"})),
    )
    .await;
    assert_eq!((status, bob["status"].as_str()), (201, Some("UNCONFIRMED")));
    let (status, bob) = admin(gw, "POST", "/admin/pools/main/users/bob/confirm", None).await;
    assert_eq!((status, bob["status"].as_str()), (200, Some("CONFIRMED")));
    let (status, body) = admin(
        gw,
        "POST",
        "/admin/pools/main/users/bob/password",
        Some(json!({"password": "weakpass"})),
    )
    .await;
    assert_eq!(status, 400, "the pool's policy applies");
    assert!(!body.to_string().contains("weakpass"), "{body}");
    let (status, bob) = admin(
        gw,
        "POST",
        "/admin/pools/main/users/bob/password",
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!((status, bob["password_set"].as_bool()), (200, Some(true)));
    assert_eq!(sign_in(&s.base, "bob", PASSWORD).await.0, 200);
    let (status, body) = admin(
        gw,
        "POST",
        "/admin/pools/main/users/bob/password",
        Some(json!({"password": PASSWORD, "temprary": true})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field `temprary`") && !m.contains(PASSWORD)),
        "{body}"
    );

    // Groups: membership shows in `show`.
    let (status, _) = admin(
        gw,
        "PUT",
        "/admin/pools/main/users/alice/groups/admins",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, shown) = admin(gw, "GET", "/admin/pools/main/users/alice", None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["groups"], json!(["admins"]));
    let (status, body) = admin(gw, "PUT", "/admin/pools/main/users/alice/groups/ops", None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some(r#"no group "ops" in pool "main""#))
    );
    let (status, shown) = admin(
        gw,
        "DELETE",
        "/admin/pools/main/users/alice/groups/admins",
        None,
    )
    .await;
    assert_eq!((status, shown["groups"].clone()), (200, json!([])));
    let (_, groups) = admin(gw, "GET", "/admin/pools/main/groups", None).await;
    assert_eq!(
        groups,
        json!({"groups": [{"name": "admins"}, {"name": "members"}]})
    );
    let (_, clients) = admin(gw, "GET", "/admin/pools/main/clients", None).await;
    assert_eq!(clients["clients"][0]["client_id"], "web");
    assert_eq!(clients["clients"][0]["has_secret"], false);

    // Listing pages by username.
    let (_, users) = admin(gw, "GET", "/admin/pools/main/users", None).await;
    let names: Vec<&str> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let (_, page) = admin(gw, "GET", "/admin/pools/main/users?limit=1", None).await;
    assert_eq!(page["next"], "alice");
    let (_, page) = admin(
        gw,
        "GET",
        "/admin/pools/main/users?after=alice&limit=1",
        None,
    )
    .await;
    assert_eq!(page["users"][0]["username"], "bob");

    // Bodies are bounded: 413 before anything is parsed or verified.
    let big = vec![b'x'; 70 * 1024];
    let (status, body) = raw_call(
        gw,
        "POST",
        "/admin/pools/main/users",
        big,
        Some(SECRET_ACCESS_KEY),
    )
    .await;
    assert_eq!(status, 413);
    assert!(body["message"].is_string());

    // Keys, disable/enable, delete.
    let (status, key) = admin(gw, "POST", "/admin/pools/main/keys/rotate", None).await;
    assert_eq!(status, 200);
    assert!(key["kid"].is_string() && key["signs_from"].is_string());
    let (status, bob) = admin(gw, "POST", "/admin/pools/main/users/bob/disable", None).await;
    assert_eq!((status, bob["enabled"].as_bool()), (200, Some(false)));
    assert_ne!(sign_in(&s.base, "bob", PASSWORD).await.0, 200);
    let (status, bob) = admin(gw, "POST", "/admin/pools/main/users/bob/enable", None).await;
    assert_eq!((status, bob["enabled"].as_bool()), (200, Some(true)));
    let (status, body) = admin(gw, "DELETE", "/admin/pools/main/users/bob", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["deleted"], true);
    let (status, body) = admin(gw, "GET", "/admin/pools/main/users/bob", None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some(r#"no user "bob" in pool "main""#))
    );
    let (status, _) = admin(gw, "PATCH", "/admin/pools/main/users/alice", None).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn admin_disable_and_sign_out_close_the_users_sockets() {
    let s = setup().await;
    for name in ["alice", "carol"] {
        let (status, _) = admin(
            &s.gw,
            "POST",
            "/admin/pools/main/users",
            Some(json!({"username": name, "password": PASSWORD})),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (mut alice, alice_id) = open_socket(&s, "alice").await;
    let (mut carol, _) = open_socket(&s, "carol").await;

    let (status, _) = admin(&s.gw, "POST", "/admin/pools/main/users/alice/disable", None).await;
    assert_eq!(status, 200);
    assert_revoked(&s, &mut alice, &alice_id).await;
    send_text(&mut carol, "carol stays").await;
    assert_eq!(next_text(&mut carol).await, "carol stays");

    let (status, _) = admin(&s.gw, "POST", "/admin/pools/main/users/alice/enable", None).await;
    assert_eq!(status, 200);
    let (mut alice, alice_id) = open_socket(&s, "alice").await;
    let (status, _) = admin(
        &s.gw,
        "POST",
        "/admin/pools/main/users/alice/sign-out",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_revoked(&s, &mut alice, &alice_id).await;
    send_text(&mut carol, "still here").await;
    assert_eq!(next_text(&mut carol).await, "still here");
}

#[tokio::test]
async fn a_revocation_closes_the_users_sse_streams_too() {
    let s = setup().await;
    let (status, _) = admin(
        &s.gw,
        "POST",
        "/admin/pools/main/users",
        Some(json!({"username": "alice", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, tokens) = sign_in(&s.base, "alice", PASSWORD).await;
    assert_eq!(status, 200);
    let token = tokens["AccessToken"].as_str().expect("access token");
    let url = format!("{}/chat/events?access_token={token}", s.base);
    let mut stream = sse::connect(&url, &[], sse::Protocol::Http1)
        .await
        .unwrap_or_else(|e| panic!("refused: {e:?}"));
    let connected: Value = serde_json::from_str(&stream.event().await.data).expect("json");
    let id = connected["connectionId"].as_str().expect("id").to_owned();

    let (status, _) = admin(
        &s.gw,
        "POST",
        "/admin/pools/main/users/alice/sign-out",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let close = stream.event().await;
    assert_eq!(close.event, "close");
    assert_eq!(
        serde_json::from_str::<Value>(&close.data).expect("json"),
        json!({"code": 1008, "reason": "Token revoked"})
    );
    assert!(stream.next_event().await.is_none(), "the stream ends");
    let disconnect = s.backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(disconnect["requestContext"]["connectionType"], "sse");
    assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1008);
    // The revoked token cannot open another.
    let again = sse::connect(&url, &[], sse::Protocol::Http1).await;
    assert_eq!(again.err().map(|(status, _, _)| status), Some(401));
}

/// `portcullis users VERB --config FILE --pool main USER`, run as a separate process.
async fn cli(config: &std::path::Path, verb: &str, username: &str) {
    let config = config.to_owned();
    let (command, username) = (verb.to_owned(), username.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["users", &command, "--config"])
            .arg(&config)
            .args(["--pool", "main", &username])
            .env_remove("PORTCULLIS_LOG")
            .output()
            .expect("run portcullis")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "portcullis users {verb}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn cli_revocations_close_sockets_of_a_running_gateway() {
    let s = setup().await;
    for name in ["alice", "carol"] {
        let (status, _) = admin(
            &s.gw,
            "POST",
            "/admin/pools/main/users",
            Some(json!({"username": name, "password": PASSWORD})),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (mut alice, alice_id) = open_socket(&s, "alice").await;
    let (mut carol, _) = open_socket(&s, "carol").await;

    // Another process disables alice in the shared store: the gateway reads the revocation log.
    cli(&s.config, "disable", "alice").await;
    assert_revoked(&s, &mut alice, &alice_id).await;
    send_text(&mut carol, "carol stays").await;
    assert_eq!(next_text(&mut carol).await, "carol stays");

    // The same for a global sign-out.
    cli(&s.config, "enable", "alice").await;
    let (mut alice, alice_id) = open_socket(&s, "alice").await;
    cli(&s.config, "sign-out", "alice").await;
    assert_revoked(&s, &mut alice, &alice_id).await;
    send_text(&mut carol, "still here").await;
    assert_eq!(next_text(&mut carol).await, "still here");
}

/// A call signed by `key` (access key id, secret).
async fn call_as(
    gw: &TestGateway,
    key: (&str, &str),
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    raw_call_as(gw, key.0, method, path, body, Some(key.1)).await
}

#[tokio::test]
async fn credentials_reach_only_the_apis_their_scopes_name() {
    let s = setup().await;
    let gw = &s.gw;

    // The backend's credential pushes to connections but cannot administer the identity
    // provider: 403 AccessDeniedException, and nothing is done.
    assert_eq!(
        call_as(gw, BACKEND_KEY, "GET", "/prod/@connections", None)
            .await
            .0,
        200
    );
    for (method, path, body) in [
        ("GET", "/admin/pools", None),
        (
            "POST",
            "/admin/pools/main/users",
            Some(json!({"username": "mallory", "password": PASSWORD})),
        ),
        ("PUT", "/admin/pools/main/users/mallory/groups/admins", None),
        ("POST", "/admin/pools/main/keys/rotate", None),
        ("GET", "/admin/no/such/path", None),
    ] {
        let (status, answer) = call_as(gw, BACKEND_KEY, method, path, body).await;
        assert_eq!(status, 403, "{method} {path}");
        assert_eq!(answer["error"], "AccessDeniedException", "{answer}");
    }
    let (status, _) = admin(gw, "GET", "/admin/pools/main/users/mallory", None).await;
    assert_eq!(status, 404, "the refused call created no user");
    assert_eq!(sign_in(&s.base, "mallory", PASSWORD).await.0, 400);

    // The operator's credential administers, but does not reach connections.
    let (status, created) = call_as(
        gw,
        OPS_KEY,
        "POST",
        "/admin/pools/main/users",
        Some(json!({"username": "olive", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, answer) = call_as(gw, OPS_KEY, "GET", "/prod/@connections", None).await;
    assert_eq!(status, 403);
    assert_eq!(
        answer["message"],
        "The credential may not call the connections API: it lacks the \"connections\" scope"
    );

    // A credential with both scopes reaches both; a wrong signature still learns nothing.
    assert_eq!(admin(gw, "GET", "/admin/pools", None).await.0, 200);
    assert_eq!(
        call_as(
            gw,
            (ACCESS_KEY_ID, SECRET_ACCESS_KEY),
            "GET",
            "/prod/@connections",
            None
        )
        .await
        .0,
        200
    );
    let (status, answer) = call_as(gw, (BACKEND_KEY.0, "wrong"), "GET", "/admin/pools", None).await;
    assert_eq!((status, answer["error"].as_str()), (403, Some("Forbidden")));
}

#[tokio::test]
async fn built_in_pool_authorizers_take_access_tokens_and_refuse_id_tokens() {
    let s = setup().await;
    let (status, _) = admin(
        &s.gw,
        "POST",
        "/admin/pools/main/users",
        Some(json!({"username": "ida", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, tokens) = sign_in(&s.base, "ida", PASSWORD).await;
    assert_eq!(status, 200);
    let url = s.gw.ws_url("/chat");
    let id_token = tokens["IdToken"].as_str().expect("id token");
    assert_eq!(
        handshake_status(&format!("{url}?access_token={id_token}"), &[]).await,
        Some(401),
        "an ID token is not an access token"
    );
    let access_token = tokens["AccessToken"].as_str().expect("access token");
    assert_eq!(
        handshake_status(&format!("{url}?access_token={access_token}"), &[]).await,
        None
    );
}
