//! The built-in identity provider behind the gateway: seed 004 end to end with a
//! client-credentials token from the built-in pool, in-process verification (no JWKS fetch),
//! user tokens on WebSocket routes, and revocation reaching the gateway's authorizer.

use std::collections::BTreeMap;

use portcullis_config::Secret;
use portcullis_idp::IdentityProvider;
use portcullis_testkit::*;
use serde_json::{Value, json};

struct Setup {
    gw: TestGateway,
    backend: Backend,
    base: String,
    toml: String,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let backend = Backend::start(|e| match e["requestContext"]["eventType"].as_str() {
        Some("CONNECT" | "DISCONNECT") => Reply::ok(),
        Some("MESSAGE") => Reply::body("pong"),
        _ => Reply::Json(
            200,
            json!({"statusCode": 200, "body": "premium"}).to_string(),
        ),
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\npublic_url = \"{base}\"\n\n\
         [http.content]\nbase_path = \"/api\"\n[http.content.routes]\n\
         \"GET /premium\" = {{ integration = \"lambda\", authorizer = \"m2m\", scopes = [\"premium-content/read\"] }}\n\
         \"POST /premium\" = {{ integration = \"lambda\", authorizer = \"m2m\", scopes = [\"premium-content/write\"] }}\n\n\
         [websocket.chat]\nauthorizer = \"users\"\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"lambda\" }}\n\"$disconnect\" = {{ integration = \"lambda\" }}\n\"$default\" = {{ integration = \"lambda\", response = true }}\n\
         admin = {{ integration = \"lambda\", response = true, groups = [\"admins\"] }}\n\n\
         [integrations.lambda]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.m2m]\ntype = \"jwt\"\nidentity_source = [\"$request.header.Authorization\"]\nissuers = [{{ issuer = \"{base}/pools/main\" }}]\n\n\
         [authorizers.users]\ntype = \"jwt\"\nidentity_source = [\"route.request.querystring.access_token\"]\nissuers = [{{ issuer = \"{base}/pools/main\" }}]\n\n\
         [store]\nurl = \"sqlite://{}/idp.db\"\n\n\
         [pools.main]\ngroups = [\"admins\", \"members\"]\n\
         [pools.main.resource_servers.premium-content]\nscopes = [\"read\", \"write\"]\n\
         [pools.main.clients.reporting-service]\nsecret = \"reporting-secret-123\"\ngrants = [\"client_credentials\"]\nallowed_scopes = [\"premium-content/read\"]\n\
         [pools.main.clients.web]\npublic = true\ncallback_urls = [\"{base}/demo/\"]\nallowed_scopes = [\"openid\", \"email\"]\n",
        backend.url,
        dir.path().display()
    );
    let gw = TestGateway::start_full(&toml).await;
    Setup {
        gw,
        backend,
        base,
        toml,
        _dir: dir,
    }
}

async fn client_credentials(base: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    reqwest::Client::new()
        .post(format!("{base}/pools/main/oauth2/token"))
        .basic_auth("reporting-service", Some("reporting-secret-123"))
        .form(&form)
        .send()
        .await
        .expect("token request")
}

#[tokio::test]
async fn seed_004_client_credentials_from_the_built_in_pool() {
    let s = setup().await;
    let discovery: Value = reqwest::get(format!(
        "{}/pools/main/.well-known/openid-configuration",
        s.base
    ))
    .await
    .expect("discovery")
    .json()
    .await
    .expect("json");
    assert_eq!(discovery["issuer"], format!("{}/pools/main", s.base));
    let jwks: Value = reqwest::get(discovery["jwks_uri"].as_str().expect("jwks_uri"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");

    let token: Value = client_credentials(&s.base, Some("premium-content/read"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(token["token_type"], "Bearer");
    let access = token["access_token"].as_str().expect("access_token");
    let client = reqwest::Client::new();
    let premium = format!("{}/api/premium", s.base);
    let get = client
        .get(&premium)
        .bearer_auth(access)
        .send()
        .await
        .expect("get");
    assert_eq!(get.status().as_u16(), 200);
    assert_eq!(get.text().await.expect("text"), "premium");
    let event = s
        .backend
        .wait_for(|e| e["routeKey"] == "GET /premium")
        .await;
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["client_id"],
        "reporting-service"
    );
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["token_use"],
        "access"
    );
    let post = client
        .post(&premium)
        .bearer_auth(access)
        .send()
        .await
        .expect("post");
    assert_eq!(post.status().as_u16(), 403);

    // The client may not ask for what it was not allowed; a wrong secret changes nothing.
    let denied = client_credentials(&s.base, Some("premium-content/write")).await;
    assert_eq!(denied.status().as_u16(), 400);
    assert_eq!(
        denied.json::<Value>().await.expect("json")["error"],
        "invalid_scope"
    );
    let wrong = reqwest::Client::new()
        .post(format!("{}/pools/main/oauth2/token", s.base))
        .basic_auth("reporting-service", Some("guess"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status().as_u16(), 401);
    assert_eq!(
        wrong.json::<Value>().await.expect("json")["error"],
        "invalid_client"
    );
}

#[tokio::test]
async fn user_tokens_work_on_websocket_routes_and_revocation_reaches_the_gateway() {
    let s = setup().await;
    // An operator's view of the same store (what the CLI does).
    let config = portcullis_config::load_str(&s.toml, "test.toml", &|_| None).expect("config");
    let idp = IdentityProvider::open(&config).await.expect("idp");
    let password = Secret::new("Correct-Horse-9");
    idp.create_user(
        "main",
        "alice",
        BTreeMap::from([("email".to_owned(), "alice@example.com".to_owned())]),
        Some((&password, true)),
    )
    .await
    .expect("create");
    idp.confirm_user("main", "alice").await.expect("confirm");
    idp.add_user_to_group("main", "alice", "admins")
        .await
        .expect("group");
    let tokens = idp
        .issue_session("main", "web", "alice", &["openid".to_owned()])
        .await
        .expect("session");
    let access = tokens.access_token.expose().to_owned();

    let url = format!("{}?access_token={access}", s.gw.ws_url("/chat"));
    let mut socket = connect(&url).await;
    let event = s
        .backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["username"],
        "alice"
    );
    send_text(&mut socket, r#"{"action":"admin"}"#).await;
    assert_eq!(next_text(&mut socket).await, "pong", "alice is in admins");

    // Disabling the user revokes her tokens at once: new connections are refused.
    idp.disable_user("main", "alice").await.expect("disable");
    assert_eq!(handshake_status(&url, &[]).await, Some(401));
}

/// Sign in through the gateway's own Cognito JSON API (the in-process provider).
async fn sign_in(base: &str, username: &str, password: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/"))
        .header("X-Amz-Target", "AWSCognitoIdentityProviderService.InitiateAuth")
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(
            json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "web", "AuthParameters": {"USERNAME": username, "PASSWORD": password}})
                .to_string(),
        )
        .send()
        .await
        .expect("InitiateAuth");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    body["AuthenticationResult"].clone()
}

#[tokio::test]
async fn revocation_closes_live_connections_of_that_session() {
    let s = setup().await;
    let config = portcullis_config::load_str(&s.toml, "test.toml", &|_| None).expect("config");
    let operator = IdentityProvider::open(&config).await.expect("idp");
    let password = Secret::new("Correct-Horse-9");
    for user in ["bob", "carol"] {
        operator
            .create_user("main", user, BTreeMap::new(), Some((&password, true)))
            .await
            .expect("create");
        operator.confirm_user("main", user).await.expect("confirm");
    }
    let bob = sign_in(&s.base, "bob", "Correct-Horse-9").await;
    let bob_again = sign_in(&s.base, "bob", "Correct-Horse-9").await;
    let carol = sign_in(&s.base, "carol", "Correct-Horse-9").await;
    let url = |tokens: &Value| {
        format!(
            "{}?access_token={}",
            s.gw.ws_url("/chat"),
            tokens["AccessToken"].as_str().expect("token")
        )
    };
    let (mut bob_socket, mut bob_other, mut carol_socket) = (
        connect(&url(&bob)).await,
        connect(&url(&bob_again)).await,
        connect(&url(&carol)).await,
    );

    // Revoking one refresh token closes that session's sockets, not the user's other session.
    let revoked = reqwest::Client::new()
        .post(format!("{}/pools/main/oauth2/revoke", s.base))
        .form(&[
            ("token", bob["RefreshToken"].as_str().expect("refresh")),
            ("client_id", "web"),
        ])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status().as_u16(), 200);
    assert_eq!(close_code(&mut bob_socket).await, Some(1008));
    let disconnect = s
        .backend
        .wait_for(|e| e["requestContext"]["disconnectStatusCode"] == 1008)
        .await;
    assert_eq!(
        disconnect["requestContext"]["disconnectReason"],
        "Token revoked"
    );
    send_text(&mut bob_other, "still here").await;
    assert_eq!(next_text(&mut bob_other).await, "pong");

    // GlobalSignOut closes every socket of the user, and only hers.
    let signed_out = reqwest::Client::new()
        .post(format!("{}/", s.base))
        .header(
            "X-Amz-Target",
            "AWSCognitoIdentityProviderService.GlobalSignOut",
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(json!({"AccessToken": bob_again["AccessToken"]}).to_string())
        .send()
        .await
        .expect("GlobalSignOut");
    assert_eq!(signed_out.status().as_u16(), 200);
    assert_eq!(close_code(&mut bob_other).await, Some(1008));
    send_text(&mut carol_socket, "carol stays").await;
    assert_eq!(next_text(&mut carol_socket).await, "pong");
    // And the revoked tokens cannot reconnect.
    assert_eq!(handshake_status(&url(&bob_again), &[]).await, Some(401));
}
