//! The Cognito Identity API over real HTTP: which role each caller gets (not visible to the
//! client, so checked here by opening the returned credentials), logins, guests, limits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use portcullis_config::Secret;
use serde_json::{Value, json};

use crate::http::cognito_router;
use crate::{IdentityProvider, IdpOptions, unix_now};

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}]}"#;

fn config() -> portcullis_config::Config {
    let source = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
public_url = "http://localhost:8080"

[store]
url = "sqlite::memory:"

[pools.main]
groups = ["admins", "members", "ops"]
[pools.main.clients.web]
public = true
[pools.main.clients.m2m]
secret = "m2m-secret-0123456789abcdef"
grants = ["client_credentials"]

[pools.other]
[pools.other.clients.other-web]
public = true

[identity_pools.app]
user_pools = ["main"]
roles = {{ authenticated = "chat-user", by_group = {{ ops = "chat-ops", admins = "chat-admin" }} }}

[identity_pools.open]
user_pools = ["main"]
allow_unauthenticated = true
rate_limit_per_ip = 1
roles = {{ authenticated = "chat-user", unauthenticated = "guest" }}

[roles.chat-user]
policy = '{POLICY}'
[roles.chat-admin]
policy = '{POLICY}'
[roles.chat-ops]
policy = '{POLICY}'
[roles.guest]
policy = '{POLICY}'
"#
    );
    portcullis_config::load_str(&source, "test.toml", &|_| None).unwrap()
}

struct Harness {
    addr: SocketAddr,
    idp: Arc<IdentityProvider>,
}

async fn harness() -> Harness {
    let options = IdpOptions {
        hash_concurrency: 1,
        ..IdpOptions::default()
    };
    let idp = IdentityProvider::open_with(&config(), options)
        .await
        .unwrap();
    let app = cognito_router(idp.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Harness { addr, idp }
}

impl Harness {
    async fn call(&self, operation: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/", self.addr))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "x-amz-target",
                format!("AWSCognitoIdentityService.{operation}"),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// A user in `groups`, and its ID token.
    async fn user(&self, name: &str, groups: &[&str]) -> String {
        self.idp
            .create_user(
                "main",
                name,
                BTreeMap::new(),
                Some((&Secret::new("password1"), true)),
            )
            .await
            .unwrap();
        for group in groups {
            self.idp
                .add_user_to_group("main", name, group)
                .await
                .unwrap();
        }
        let tokens = self
            .idp
            .issue_session("main", "web", name, &["openid".into()])
            .await
            .unwrap();
        tokens.id_token.expose().to_owned()
    }

    /// The role of the credentials `GetCredentialsForIdentity` hands `body`'s caller.
    async fn role(&self, body: Value) -> Result<String, (u16, Value)> {
        let (status, answer) = self.call("GetCredentialsForIdentity", body).await;
        if status != 200 {
            return Err((status, answer));
        }
        let creds = &answer["Credentials"];
        let session = self
            .idp
            .open_iam_session(
                creds["AccessKeyId"].as_str().unwrap(),
                creds["SessionToken"].as_str().unwrap(),
                unix_now(),
            )
            .unwrap();
        assert_eq!(session.secret_access_key.expose(), creds["SecretKey"]);
        assert_eq!(session.expires_at, creds["Expiration"].as_i64().unwrap());
        assert_eq!(session.identity_id, answer["IdentityId"]);
        Ok(session.role)
    }
}

const PROVIDER: &str = "localhost:8080/pools/main";

fn logins(token: &str) -> Value {
    json!({ PROVIDER: token })
}

fn error_type(answer: &(u16, Value)) -> &str {
    assert_eq!(answer.0, 400, "{answer:?}");
    answer.1["__type"].as_str().unwrap()
}

#[tokio::test]
async fn each_user_gets_the_role_of_its_groups() {
    let h = harness().await;
    for (name, groups, role) in [
        ("alice", &["admins"][..], "chat-admin"),
        ("bob", &["members"][..], "chat-user"),
        ("carol", &[][..], "chat-user"),
        ("dave", &["admins", "ops"][..], "chat-ops"),
    ] {
        let token = h.user(name, groups).await;
        let (status, answer) = h
            .call(
                "GetId",
                json!({"IdentityPoolId": "us-east-1:app", "Logins": logins(&token)}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let id = answer["IdentityId"].as_str().unwrap().to_owned();
        let got = h
            .role(json!({"IdentityId": id, "Logins": logins(&token)}))
            .await
            .unwrap();
        assert_eq!(got, role, "{name}");
    }
}

#[tokio::test]
async fn custom_role_arn_and_preferred_role() {
    let h = harness().await;
    let token = h.user("alice", &["admins"]).await;
    let (_, answer) = h
        .call(
            "GetId",
            json!({"IdentityPoolId": "us-east-1:app", "Logins": logins(&token)}),
        )
        .await;
    let id = answer["IdentityId"].as_str().unwrap().to_owned();
    let arn = |role: &str| format!("arn:aws:iam::000000000000:role/{role}");
    let with_custom = |role: &str| json!({"IdentityId": id, "Logins": logins(&token), "CustomRoleArn": arn(role)});
    assert_eq!(h.role(with_custom("chat-user")).await.unwrap(), "chat-user");
    assert_eq!(
        h.role(with_custom("chat-admin")).await.unwrap(),
        "chat-admin"
    );
    for refused in ["chat-ops", "guest", "nope"] {
        let e = h.role(with_custom(refused)).await.unwrap_err();
        assert_eq!(error_type(&e), "NotAuthorizedException", "{refused}");
    }

    // A token of the pool that carries cognito:preferred_role gets that role.
    let now = unix_now();
    let user = h
        .idp
        .store()
        .get_user("main", "alice")
        .await
        .unwrap()
        .unwrap();
    let claims = json!({
        "sub": user.sub, "iss": "http://localhost:8080/pools/main", "aud": "web",
        "token_use": "id", "cognito:username": "alice", "cognito:groups": ["admins"],
        "cognito:preferred_role": arn("chat-user"), "iat": now, "exp": now + 600,
        "auth_time": now,
    });
    let preferred = h.idp.pools["main"].sign(&claims, now).unwrap();
    let body = json!({"IdentityId": id, "Logins": logins(preferred.expose())});
    assert_eq!(h.role(body).await.unwrap(), "chat-user");
}

#[tokio::test]
async fn logins_that_cannot_be_used() {
    let h = harness().await;
    let alice = h.user("alice", &[]).await;
    let get_id = |logins: Value| json!({"IdentityPoolId": "us-east-1:app", "Logins": logins});

    // Another pool's provider, an unknown provider, a token that is not one.
    for logins in [
        json!({"localhost:8080/pools/other": alice}),
        json!({"cognito-idp.us-east-1.amazonaws.com/us-east-1_abc": alice}),
        json!({PROVIDER: "not-a-jwt"}),
        json!({PROVIDER: format!("{alice}x")}),
    ] {
        let answer = h.call("GetId", get_id(logins.clone())).await;
        assert_eq!(error_type(&answer), "NotAuthorizedException", "{logins}");
        assert!(
            answer.1["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid login token."),
            "{answer:?}"
        );
    }
    let two = json!({PROVIDER: alice, "localhost:8080/pools/other": alice});
    let answer = h.call("GetId", get_id(two)).await;
    assert_eq!(error_type(&answer), "InvalidParameterException");

    // A client-credentials token is no user.
    let now = unix_now();
    let claims = crate::tokens::client_credentials_claims(
        "http://localhost:8080/pools/main",
        "m2m",
        "",
        "jti",
        now,
        600,
    );
    let m2m = h.idp.pools["main"].sign(&claims, now).unwrap();
    let answer = h.call("GetId", get_id(logins(m2m.expose()))).await;
    assert_eq!(error_type(&answer), "NotAuthorizedException");

    // An identity id of another user (or made up) with alice's login.
    let bob = h.user("bob", &[]).await;
    let (_, answer) = h.call("GetId", get_id(logins(&bob))).await;
    let bob_id = answer["IdentityId"].as_str().unwrap().to_owned();
    let answer = h
        .call(
            "GetCredentialsForIdentity",
            json!({"IdentityId": bob_id, "Logins": logins(&alice)}),
        )
        .await;
    assert_eq!(error_type(&answer), "NotAuthorizedException");
    assert!(
        answer.1["message"]
            .as_str()
            .unwrap()
            .starts_with("Logins don't match")
    );

    // Revoked: signed out everywhere.
    h.idp.global_sign_out("main", "alice").await.unwrap();
    let answer = h.call("GetId", get_id(logins(&alice))).await;
    assert_eq!(error_type(&answer), "NotAuthorizedException");
}

#[tokio::test]
async fn guests_only_where_allowed_and_rate_limited() {
    let h = harness().await;
    let answer = h
        .call("GetId", json!({"IdentityPoolId": "us-east-1:app"}))
        .await;
    assert_eq!(error_type(&answer), "NotAuthorizedException");
    let answer = h
        .call("GetId", json!({"IdentityPoolId": "us-east-1:nope"}))
        .await;
    assert_eq!(error_type(&answer), "ResourceNotFoundException");
    let answer = h
        .call(
            "GetId",
            json!({"IdentityPoolId": "us-east-1:open", "AccountId": "999999999999"}),
        )
        .await;
    assert_eq!(error_type(&answer), "ResourceNotFoundException");

    // rate_limit_per_ip = 1: a burst of 2, then TooManyRequests.
    let (status, answer) = h
        .call("GetId", json!({"IdentityPoolId": "us-east-1:open"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let guest = answer["IdentityId"].as_str().unwrap().to_owned();
    assert!(guest.starts_with("us-east-1:"));
    let role = h.role(json!({"IdentityId": guest})).await.unwrap();
    assert_eq!(role, "guest");
    let answer = h
        .call("GetId", json!({"IdentityPoolId": "us-east-1:open"}))
        .await;
    assert_eq!(error_type(&answer), "TooManyRequestsException");

    // A guest id nobody handed out.
    let answer = h
        .call(
            "GetCredentialsForIdentity",
            json!({"IdentityId": "us-east-1:00000000-0000-4000-8000-000000000000"}),
        )
        .await;
    assert_eq!(error_type(&answer), "NotAuthorizedException");
    let answer = h
        .call(
            "GetCredentialsForIdentity",
            json!({"IdentityId": "x".repeat(80)}),
        )
        .await;
    assert_eq!(error_type(&answer), "InvalidParameterException");
    let answer = h.call("ListIdentityPools", json!({})).await;
    assert_eq!(error_type(&answer), "UnknownOperationException");
}

#[tokio::test]
async fn open_id_tokens_name_the_identity() {
    let h = harness().await;
    let token = h.user("alice", &[]).await;
    let (_, answer) = h
        .call(
            "GetId",
            json!({"IdentityPoolId": "us-east-1:app", "Logins": logins(&token)}),
        )
        .await;
    let id = answer["IdentityId"].as_str().unwrap().to_owned();
    let (status, answer) = h
        .call(
            "GetOpenIdToken",
            json!({"IdentityId": id, "Logins": logins(&token)}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["IdentityId"], id);
    let jwt = answer["Token"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "http://localhost:8080/identity-pools/app");
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["aud"], "us-east-1:app");
    assert_eq!(claims["amr"][0], "authenticated");
    assert_eq!(claims["amr"][1], PROVIDER);
}
