//! `authorization = "AWS_IAM"`: users of a built-in pool exchange their ID token for
//! identity-pool credentials (the Cognito Identity JSON API), presign the `wss://` URL with
//! SigV4 (`portcullis_auth::sigv4::presign`, botocore's form), and the role of their group
//! decides `$connect` and every message route; HTTP routes take header-signed requests.

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_auth::sigv4::{self, SignableRequest};
use portcullis_config::Secret;
use portcullis_idp::IdentityProvider;
use portcullis_testkit::*;
use serde_json::{Value, json};

const REGION: &str = "us-east-1";

struct Setup {
    gw: TestGateway,
    backend: Backend,
    base: String,
    host: String,
    toml: String,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let backend = Backend::start(|e| match e["requestContext"]["eventType"].as_str() {
        Some("CONNECT" | "DISCONNECT") => Reply::ok(),
        Some("MESSAGE") => Reply::body("pong"),
        _ => Reply::Json(
            200,
            json!({"statusCode": 200, "body": "orders"}).to_string(),
        ),
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let host = format!("127.0.0.1:{port}");
    let base = format!("http://{host}");
    let member_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": [
            "arn:aws:execute-api:*:*:*/prod/$connect",
            "arn:aws:execute-api:*:*:*/prod/$default",
            "arn:aws:execute-api:*:*:*/prod/sendmessage",
            "arn:aws:execute-api:*:*:*/*/GET/orders"]}]});
    let admin_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "execute-api:*", "Resource": "*"}]});
    let toml = format!(
        "[server]\nlisten = \"{host}\"\nadmin_listen = \"127.0.0.1:0\"\npublic_url = \"{base}\"\n\n\
         [websocket.chat]\nauthorization = \"AWS_IAM\"\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"lambda\" }}\n\"$disconnect\" = {{ integration = \"lambda\" }}\n\
         \"$default\" = {{ integration = \"lambda\", response = true }}\n\
         sendmessage = {{ integration = \"lambda\", response = true }}\n\
         admin = {{ integration = \"lambda\", response = true }}\n\n\
         [websocket.ops]\nstage = \"ops\"\nauthorization = \"AWS_IAM\"\n[websocket.ops.routes]\n\
         \"$default\" = {{ integration = \"lambda\", response = true }}\n\n\
         [http.shop]\nbase_path = \"/api\"\nauthorization = \"AWS_IAM\"\n[http.shop.routes]\n\
         \"GET /orders\" = {{ integration = \"lambda\" }}\n\
         \"POST /orders\" = {{ integration = \"lambda\" }}\n\n\
         [integrations.lambda]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [store]\nurl = \"sqlite://{}/idp.db\"\n\n\
         [pools.main]\ngroups = [\"admins\", \"members\"]\n\
         [pools.main.clients.web]\npublic = true\ncallback_urls = [\"{base}/demo/\"]\nallowed_scopes = [\"openid\", \"email\"]\n\n\
         [identity_pools.app]\nuser_pools = [\"main\"]\n\
         roles = {{ authenticated = \"chat-user\", by_group = {{ admins = \"chat-admin\" }} }}\n\n\
         [roles.chat-user]\npolicy = '{member_policy}'\n\n\
         [roles.chat-admin]\npolicy = '{admin_policy}'\n",
        backend.url,
        dir.path().display()
    );
    let gw = TestGateway::start_full(&toml).await;
    Setup {
        gw,
        backend,
        base,
        host,
        toml,
        _dir: dir,
    }
}

/// Temporary credentials of an identity-pool identity.
#[derive(Clone)]
struct Credentials {
    access_key_id: String,
    secret_key: String,
    session_token: String,
}

async fn cognito(base: &str, target: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/"))
        .header("X-Amz-Target", target)
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .expect("cognito call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Signs `username` in (user pool), then exchanges the ID token for credentials.
async fn credentials(s: &Setup, username: &str) -> Credentials {
    let (status, auth) = cognito(
        &s.base,
        "AWSCognitoIdentityProviderService.InitiateAuth",
        json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "web",
               "AuthParameters": {"USERNAME": username, "PASSWORD": "Correct-Horse-9"}}),
    )
    .await;
    assert_eq!(status, 200, "{auth}");
    let id_token = auth["AuthenticationResult"]["IdToken"].clone();
    let logins = json!({ format!("{}/pools/main", s.host): id_token });
    let (status, id) = cognito(
        &s.base,
        "AWSCognitoIdentityService.GetId",
        json!({"IdentityPoolId": format!("{REGION}:app"), "Logins": logins}),
    )
    .await;
    assert_eq!(status, 200, "{id}");
    let (status, creds) = cognito(
        &s.base,
        "AWSCognitoIdentityService.GetCredentialsForIdentity",
        json!({"IdentityId": id["IdentityId"], "Logins": logins}),
    )
    .await;
    assert_eq!(status, 200, "{creds}");
    let c = &creds["Credentials"];
    Credentials {
        access_key_id: c["AccessKeyId"].as_str().expect("akid").to_owned(),
        secret_key: c["SecretKey"].as_str().expect("secret").to_owned(),
        session_token: c["SessionToken"].as_str().expect("token").to_owned(),
    }
}

/// `ws://host/path?X-Amz-...`, presigned as botocore's `SigV4QueryAuth` does.
fn presigned(
    s: &Setup,
    path: &str,
    creds: &Credentials,
    at: chrono::DateTime<chrono::Utc>,
) -> String {
    let headers = [("host", s.host.as_str())];
    let req = SignableRequest {
        method: "GET",
        path,
        query: "",
        headers: &headers,
        body: &[],
    };
    let query = sigv4::presign(
        &req,
        &creds.access_key_id,
        &creds.secret_key,
        Some(&creds.session_token),
        REGION,
        "execute-api",
        at,
        Duration::from_secs(60),
    );
    format!("ws://{}{path}?{query}", s.host)
}

async fn users(s: &Setup) {
    let config = portcullis_config::load_str(&s.toml, "test.toml", &|_| None).expect("config");
    let idp = IdentityProvider::open(&config).await.expect("idp");
    let password = Secret::new("Correct-Horse-9");
    for (user, group) in [("alice", "admins"), ("bob", "members")] {
        idp.create_user("main", user, BTreeMap::new(), Some((&password, true)))
            .await
            .expect("create");
        idp.confirm_user("main", user).await.expect("confirm");
        idp.add_user_to_group("main", user, group)
            .await
            .expect("group");
    }
}

#[tokio::test]
async fn presigned_connect_and_per_message_role_policy() {
    let s = setup().await;
    users(&s).await;
    let alice = credentials(&s, "alice").await;
    let bob = credentials(&s, "bob").await;
    let now = chrono::Utc::now();

    // Unsigned, tampered, expired, wrong service: 403 before any integration runs.
    assert_eq!(
        handshake_status(&s.gw.ws_url("/chat"), &[]).await,
        Some(403)
    );
    let good = presigned(&s, "/chat", &bob, now);
    let tampered = {
        let mut t = good.clone();
        let last = t.pop().expect("signature");
        t.push(if last == '0' { '1' } else { '0' });
        t
    };
    assert_eq!(handshake_status(&tampered, &[]).await, Some(403));
    let expired = presigned(&s, "/chat", &bob, now - chrono::Duration::minutes(20));
    assert_eq!(handshake_status(&expired, &[]).await, Some(403));
    let forged = Credentials {
        secret_key: "not-the-secret-key-of-these-credentials0".into(),
        ..bob.clone()
    };
    assert_eq!(
        handshake_status(&presigned(&s, "/chat", &forged, now), &[]).await,
        Some(403)
    );
    assert!(
        s.backend
            .events()
            .iter()
            .all(|e| e["requestContext"]["eventType"] != "CONNECT"),
        "refused connections never reach $connect"
    );

    // Bob (members → chat-user) connects; his identity reaches the backend.
    let mut bob_socket = connect(&good).await;
    let event = s
        .backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;
    let identity = &event["requestContext"]["identity"];
    assert_eq!(identity["accessKey"], bob.access_key_id.as_str());
    assert_eq!(identity["cognitoAuthenticationType"], "authenticated");
    assert_eq!(identity["cognitoIdentityPoolId"], format!("{REGION}:app"));
    assert!(
        identity["cognitoIdentityId"]
            .as_str()
            .is_some_and(|id| id.starts_with("us-east-1:"))
    );
    assert!(
        identity["userArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":assumed-role/chat-user/CognitoIdentityCredentials"))
    );
    assert!(event["requestContext"].get("authorizer").is_none());

    // Every message is checked against the role's policy: sendmessage yes, admin no.
    send_text(&mut bob_socket, r#"{"action":"sendmessage"}"#).await;
    assert_eq!(next_text(&mut bob_socket).await, "pong");
    send_text(&mut bob_socket, r#"{"action":"admin"}"#).await;
    let denied: Value = serde_json::from_str(&next_text(&mut bob_socket).await).expect("json");
    assert_eq!(denied["message"], "Forbidden");
    send_text(&mut bob_socket, r#"{"action":"sendmessage"}"#).await;
    assert_eq!(
        next_text(&mut bob_socket).await,
        "pong",
        "the socket stays open"
    );
    let message = s
        .backend
        .wait_for(|e| e["requestContext"]["routeKey"] == "sendmessage")
        .await;
    assert_eq!(
        message["requestContext"]["identity"]["accessKey"],
        bob.access_key_id.as_str()
    );

    // Alice (admins → chat-admin) may use the admin route.
    let mut alice_socket = connect(&presigned(&s, "/chat", &alice, now)).await;
    send_text(&mut alice_socket, r#"{"action":"admin"}"#).await;
    assert_eq!(next_text(&mut alice_socket).await, "pong");

    // A role without `$connect` on the ops stage: bob refused, alice admitted.
    assert_eq!(
        handshake_status(&presigned(&s, "/ops", &bob, now), &[]).await,
        Some(403)
    );
    let _ops = connect(&presigned(&s, "/ops", &alice, now)).await;

    // The Authorization header form works for non-browser clients.
    let headers = [
        ("host", s.host.as_str()),
        ("x-amz-security-token", bob.session_token.as_str()),
    ];
    let signed = sigv4::sign(
        &SignableRequest {
            method: "GET",
            path: "/chat",
            query: "",
            headers: &headers,
            body: &[],
        },
        &bob.access_key_id,
        &bob.secret_key,
        REGION,
        "execute-api",
        chrono::Utc::now(),
    );
    let mut extra: Vec<(&str, &str)> = vec![("x-amz-security-token", bob.session_token.as_str())];
    extra.extend(signed.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let _header_signed = try_connect(&s.gw.ws_url("/chat"), &extra)
        .await
        .expect("header-signed upgrade");
}

#[tokio::test]
async fn revoked_user_credentials_are_refused_and_live_sockets_closed() {
    let s = setup().await;
    users(&s).await;
    let bob = credentials(&s, "bob").await;
    let mut socket = connect(&presigned(&s, "/chat", &bob, chrono::Utc::now())).await;
    send_text(&mut socket, r#"{"action":"sendmessage"}"#).await;
    assert_eq!(next_text(&mut socket).await, "pong");

    let config = portcullis_config::load_str(&s.toml, "test.toml", &|_| None).expect("config");
    let operator = IdentityProvider::open(&config).await.expect("idp");
    operator.disable_user("main", "bob").await.expect("disable");
    assert_eq!(close_code(&mut socket).await, Some(1008));
    assert_eq!(
        handshake_status(&presigned(&s, "/chat", &bob, chrono::Utc::now()), &[]).await,
        Some(403)
    );
}

async fn signed_http(
    s: &Setup,
    method: &str,
    path: &str,
    body: &str,
    creds: &Credentials,
) -> (u16, String) {
    let headers = [
        ("host", s.host.as_str()),
        ("x-amz-security-token", creds.session_token.as_str()),
    ];
    let signed = sigv4::sign(
        &SignableRequest {
            method,
            path,
            query: "",
            headers: &headers,
            body: body.as_bytes(),
        },
        &creds.access_key_id,
        &creds.secret_key,
        REGION,
        "execute-api",
        chrono::Utc::now(),
    );
    let mut request = reqwest::Client::new()
        .request(method.parse().expect("method"), format!("{}{path}", s.base))
        .header("x-amz-security-token", &creds.session_token)
        .body(body.to_owned());
    for (name, value) in &signed {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn http_routes_take_header_signed_requests() {
    let s = setup().await;
    users(&s).await;
    let bob = credentials(&s, "bob").await;
    let alice = credentials(&s, "alice").await;

    let unsigned = reqwest::get(format!("{}/api/orders", s.base))
        .await
        .expect("get");
    assert_eq!(unsigned.status().as_u16(), 403);
    assert_eq!(
        unsigned.json::<Value>().await.expect("json"),
        json!({"message": "Forbidden"})
    );

    assert_eq!(signed_http(&s, "GET", "/api/orders", "", &bob).await.0, 200);
    let event = s
        .backend
        .wait_for(|e| e["requestContext"]["http"]["method"] == "GET")
        .await;
    let iam = &event["requestContext"]["authorizer"]["iam"];
    assert_eq!(iam["accessKey"], bob.access_key_id.as_str());
    assert_eq!(
        iam["cognitoIdentity"]["identityPoolId"],
        format!("{REGION}:app")
    );
    assert_eq!(iam["cognitoIdentity"]["amr"][0], "authenticated");

    // POST /orders is not in the members' policy; the admins' allows it.
    let (status, _) = signed_http(&s, "POST", "/api/orders", r#"{"n":1}"#, &bob).await;
    assert_eq!(status, 403);
    let (status, _) = signed_http(&s, "POST", "/api/orders", r#"{"n":1}"#, &alice).await;
    assert_eq!(status, 200);
}
