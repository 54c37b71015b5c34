//! The JSON API over real HTTP (axum::serve on 127.0.0.1:0).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_config::Secret;
use serde_json::{Value, json};

use super::*;
use crate::delivery::CodeDelivery;
use crate::{IdentityProvider, IdpOptions};

const SECRET: &str = "confidential-secret-0123456789";

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
public_url = "http://localhost:8080"

[store]
url = "sqlite::memory:"

[pools.main]
self_sign_up = true
password_policy = { min_length = 8, require_digits = true }

[pools.main.clients.web]
public = true

[pools.main.clients.confidential]
secret = "confidential-secret-0123456789"
grants = ["password", "refresh_token"]

[pools.main.clients.m2m]
secret = "m2m-secret-0123456789abcdef"
grants = ["client_credentials"]

[pools.closed]

[pools.closed.clients.closed-web]
public = true
"#;

/// The test configuration with `extra` added to `[pools.main]`.
fn config_with(extra: &str) -> portcullis_config::Config {
    let source = CONFIG.replace("[pools.main]\n", &format!("[pools.main]\n{extra}\n"));
    portcullis_config::load_str(&source, "test.toml", &|_| None).unwrap()
}

struct Harness {
    addr: SocketAddr,
    idp: Arc<IdentityProvider>,
    codes: Arc<Mutex<Vec<CodeDelivery>>>,
    clock: Clock,
}

async fn harness() -> Harness {
    harness_with("").await
}

/// A harness whose `[pools.main]` has the extra keys `extra`.
async fn harness_with(extra: &str) -> Harness {
    harness_with_options(extra, CognitoOptions::default()).await
}

/// A harness with explicit options (their `on_code` is replaced by the harness's sink, their
/// clock by a manual one).
async fn harness_with_options(extra: &str, options: CognitoOptions) -> Harness {
    let idp = IdentityProvider::open_with(
        &config_with(extra),
        IdpOptions {
            hash_concurrency: 1,
            ..IdpOptions::default()
        },
    )
    .await
    .unwrap();
    let codes: Arc<Mutex<Vec<CodeDelivery>>> = Arc::default();
    let sink = codes.clone();
    let options = CognitoOptions {
        on_code: Some(Arc::new(move |d: &CodeDelivery| {
            sink.lock().unwrap().push(d.clone());
        })),
        clock: Clock::manual(),
        ..options
    };
    let clock = options.clock.clone();
    let app = cognito_router_with(idp.clone(), options);
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
    Harness {
        addr,
        idp,
        codes,
        clock,
    }
}

impl Harness {
    async fn raw(
        &self,
        target: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.raw_from(reqwest::Client::new(), target, body).await
    }

    /// [`raw`](Self::raw) through `client` (e.g. one bound to another loopback address).
    async fn raw_from(
        &self,
        client: reqwest::Client,
        target: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = client
            .post(format!("http://{}/", self.addr))
            .header("content-type", "application/x-amz-json-1.1")
            .body(body);
        if let Some(t) = target {
            req = req.header(
                "x-amz-target",
                format!("AWSCognitoIdentityProviderService.{t}"),
            );
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, (u16, String, String)> {
        let (status, headers, body) = self.raw(Some(op), body.to_string().into_bytes()).await;
        if status == 200 {
            assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
            Ok(body)
        } else {
            let name = body["__type"].as_str().unwrap().to_owned();
            assert_eq!(
                headers["x-amzn-errortype"].to_str().unwrap(),
                format!("{name}:")
            );
            Err((status, name, body["message"].as_str().unwrap().to_owned()))
        }
    }

    /// An operation's whole answer: status and body.
    async fn answer(&self, op: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self.raw(Some(op), body.to_string().into_bytes()).await;
        (status, body)
    }

    /// Codes delivered to `username` for `purpose`.
    fn delivered(&self, username: &str, purpose: CodePurpose) -> usize {
        let codes = self.codes.lock().unwrap();
        codes
            .iter()
            .filter(|d| d.username == username && d.purpose == purpose)
            .count()
    }

    fn last_code(&self, username: &str, purpose: CodePurpose) -> String {
        let codes = self.codes.lock().unwrap();
        let d = codes
            .iter()
            .rev()
            .find(|d| d.username == username && d.purpose == purpose)
            .unwrap();
        d.code.expose().to_owned()
    }

    async fn login(
        &self,
        client: &str,
        user: &str,
        pw: &str,
    ) -> Result<Value, (u16, String, String)> {
        self.call(
            "InitiateAuth",
            json!({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": user, "PASSWORD": pw}}),
        )
        .await
    }
}

fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn secret_hash(username: &str, client_id: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    STANDARD.encode(hmac::sign(&key, format!("{username}{client_id}").as_bytes()).as_ref())
}

fn error_name(r: Result<Value, (u16, String, String)>) -> String {
    let (status, name, _) = r.unwrap_err();
    assert_eq!(status, 400, "{name}");
    name
}

#[tokio::test]
async fn sign_up_confirm_sign_in_refresh_change_sign_out() {
    let h = harness().await;
    let r = h
        .call(
            "SignUp",
            json!({"ClientId": "web", "Username": "bob", "Password": "password1",
                   "UserAttributes": [{"Name": "email", "Value": "bob@example.com"}]}),
        )
        .await
        .unwrap();
    assert_eq!(r["UserConfirmed"], false);
    assert_eq!(r["CodeDeliveryDetails"]["Destination"], "b***@example.com");
    let sub = r["UserSub"].as_str().unwrap().to_owned();
    // duplicates, weak passwords
    let dup = h
        .call(
            "SignUp",
            json!({"ClientId": "web", "Username": "bob", "Password": "password1"}),
        )
        .await;
    assert_eq!(error_name(dup), "UsernameExistsException");
    let weak = h
        .call(
            "SignUp",
            json!({"ClientId": "web", "Username": "eve", "Password": "short"}),
        )
        .await;
    assert_eq!(error_name(weak), "InvalidPasswordException");
    // not confirmed yet
    assert_eq!(
        error_name(h.login("web", "bob", "password1").await),
        "UserNotConfirmedException"
    );
    let code = h.last_code("bob", CodePurpose::SignUp);
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let bad = h
        .call(
            "ConfirmSignUp",
            json!({"ClientId": "web", "Username": "bob", "ConfirmationCode": wrong}),
        )
        .await;
    assert_eq!(error_name(bad), "CodeMismatchException");
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "bob", "ConfirmationCode": code}),
    )
    .await
    .unwrap();
    // sign in
    let auth = h.login("web", "bob", "password1").await.unwrap();
    let result = &auth["AuthenticationResult"];
    assert_eq!(result["TokenType"], "Bearer");
    assert_eq!(result["ExpiresIn"], 3600);
    let access = result["AccessToken"].as_str().unwrap().to_owned();
    let refresh = result["RefreshToken"].as_str().unwrap().to_owned();
    let at = claims(&access);
    assert_eq!(at["token_use"], "access");
    assert_eq!(at["client_id"], "web");
    assert_eq!(at["sub"], sub.as_str());
    assert_eq!(at["scope"], "aws.cognito.signin.user.admin");
    let it = claims(result["IdToken"].as_str().unwrap());
    assert_eq!(it["aud"], "web");
    assert_eq!(it["email"], "bob@example.com");
    // GetUser
    let me = h
        .call("GetUser", json!({"AccessToken": access}))
        .await
        .unwrap();
    assert_eq!(me["Username"], "bob");
    assert!(
        me["UserAttributes"]
            .as_array()
            .unwrap()
            .contains(&json!({"Name": "sub", "Value": sub}))
    );
    // refresh
    let r = h
        .call(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "REFRESH_TOKEN_AUTH",
                                     "AuthParameters": {"REFRESH_TOKEN": refresh}}),
        )
        .await
        .unwrap();
    // a public client rotates its refresh tokens: a new one with every refresh
    let next = r["AuthenticationResult"]["RefreshToken"].as_str().unwrap();
    assert_ne!(next, refresh);
    assert!(r["AuthenticationResult"]["IdToken"].is_string());
    // change password
    let wrong_prev = h
        .call("ChangePassword", json!({"AccessToken": access, "PreviousPassword": "nope12345", "ProposedPassword": "password2"}))
        .await;
    assert_eq!(error_name(wrong_prev), "NotAuthorizedException");
    h.call("ChangePassword", json!({"AccessToken": access, "PreviousPassword": "password1", "ProposedPassword": "password2"}))
        .await
        .unwrap();
    assert_eq!(
        error_name(h.login("web", "bob", "password1").await),
        "NotAuthorizedException"
    );
    h.login("web", "bob", "password2").await.unwrap();
    // global sign out: the access token and the refresh token die
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.call("GlobalSignOut", json!({"AccessToken": access}))
        .await
        .unwrap();
    let (_, name, message) = h
        .call("GetUser", json!({"AccessToken": access}))
        .await
        .unwrap_err();
    assert_eq!(
        (name.as_str(), message.as_str()),
        ("NotAuthorizedException", "Access Token has been revoked")
    );
    let r = h
        .call(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "REFRESH_TOKEN_AUTH",
                                     "AuthParameters": {"REFRESH_TOKEN": refresh}}),
        )
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    // garbage tokens
    let r = h.call("GetUser", json!({"AccessToken": "a.b.c"})).await;
    assert_eq!(error_name(r), "NotAuthorizedException");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same_and_lockout_applies() {
    let h = harness().await;
    h.idp
        .create_user(
            "main",
            "carol",
            Default::default(),
            Some((&Secret::new("password1"), true)),
        )
        .await
        .unwrap();
    let (_, n1, m1) = h.login("web", "nobody", "password1").await.unwrap_err();
    let (_, n2, m2) = h.login("web", "carol", "wrong-pass1").await.unwrap_err();
    assert_eq!(
        (n1.as_str(), m1.as_str()),
        ("NotAuthorizedException", "Incorrect username or password.")
    );
    assert_eq!((n1, m1), (n2, m2));
    for _ in 0..4 {
        h.login("web", "carol", "wrong-pass1").await.unwrap_err();
    }
    // 5 failures: locked (the lock's length is set by hand below, so no clock is raced)
    let mut user = h
        .idp
        .store()
        .get_user("main", "carol")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.failed_attempts, 5);
    assert!(user.locked_until.is_some());
    // even the right password is refused while locked
    user.locked_until = Some(crate::unix_now() + 600);
    h.idp.store().update_user(&user).await.unwrap();
    let (_, name, message) = h.login("web", "carol", "password1").await.unwrap_err();
    assert_eq!(name, "NotAuthorizedException");
    assert_eq!(message, "Password attempts exceeded");
    // once the lock has passed, the right password works and resets the counter
    user.locked_until = Some(crate::unix_now() - 1);
    h.idp.store().update_user(&user).await.unwrap();
    h.login("web", "carol", "password1").await.unwrap();
    let user = h
        .idp
        .store()
        .get_user("main", "carol")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.failed_attempts, 0);
}

#[tokio::test]
async fn secret_hash_clients() {
    let h = harness().await;
    h.idp
        .create_user(
            "main",
            "dave",
            Default::default(),
            Some((&Secret::new("password1"), true)),
        )
        .await
        .unwrap();
    let missing = h
        .login("confidential", "dave", "password1")
        .await
        .unwrap_err();
    assert_eq!(missing.1, "NotAuthorizedException");
    assert!(
        missing.2.contains("SECRET_HASH was not received"),
        "{}",
        missing.2
    );
    let wrong = h
        .call(
            "InitiateAuth",
            json!({"ClientId": "confidential", "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "dave", "PASSWORD": "password1",
                               "SECRET_HASH": secret_hash("dave", "web")}}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        wrong.2,
        "Unable to verify secret hash for client confidential"
    );
    let ok = h
        .call(
            "InitiateAuth",
            json!({"ClientId": "confidential", "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "dave", "PASSWORD": "password1",
                               "SECRET_HASH": secret_hash("dave", "confidential")}}),
        )
        .await
        .unwrap();
    let refresh = ok["AuthenticationResult"]["RefreshToken"].as_str().unwrap();
    let r = h
        .call("InitiateAuth", json!({"ClientId": "confidential", "AuthFlow": "REFRESH_TOKEN_AUTH",
            "AuthParameters": {"REFRESH_TOKEN": refresh, "SECRET_HASH": secret_hash("dave", "confidential")}}))
        .await
        .unwrap();
    assert!(r["AuthenticationResult"]["AccessToken"].is_string());
    let r = h
        .call(
            "InitiateAuth",
            json!({"ClientId": "confidential", "AuthFlow": "REFRESH_TOKEN_AUTH",
            "AuthParameters": {"REFRESH_TOKEN": refresh}}),
        )
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    // RevokeToken needs the client secret
    let r = h
        .call(
            "RevokeToken",
            json!({"ClientId": "confidential", "Token": refresh}),
        )
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    h.call(
        "RevokeToken",
        json!({"ClientId": "confidential", "Token": refresh, "ClientSecret": SECRET}),
    )
    .await
    .unwrap();
    let r = h
        .call("InitiateAuth", json!({"ClientId": "confidential", "AuthFlow": "REFRESH_TOKEN_AUTH",
            "AuthParameters": {"REFRESH_TOKEN": refresh, "SECRET_HASH": secret_hash("dave", "confidential")}}))
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    // M2M clients cannot sign users in
    let r = h.login("m2m", "dave", "password1").await;
    assert_eq!(error_name(r), "InvalidParameterException");
}

#[tokio::test]
async fn new_password_required_challenge() {
    let h = harness().await;
    let attrs = [("email".to_owned(), "f@example.com".to_owned())]
        .into_iter()
        .collect();
    h.idp
        .create_user(
            "main",
            "frank",
            attrs,
            Some((&Secret::new("temporary1"), false)),
        )
        .await
        .unwrap();
    let r = h.login("web", "frank", "temporary1").await.unwrap();
    assert_eq!(r["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    let session = r["Session"].as_str().unwrap().to_owned();
    let params = &r["ChallengeParameters"];
    assert_eq!(params["USER_ID_FOR_SRP"], "frank");
    let ua: Value = serde_json::from_str(params["userAttributes"].as_str().unwrap()).unwrap();
    assert_eq!(ua["email"], "f@example.com");
    let ra: Value = serde_json::from_str(params["requiredAttributes"].as_str().unwrap()).unwrap();
    assert!(ra.as_array().unwrap().is_empty());
    let answer = |pw: &str, session: &str| {
        json!({"ClientId": "web", "ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": session,
               "ChallengeResponses": {"USERNAME": "frank", "NEW_PASSWORD": pw}})
    };
    let r = h
        .call("RespondToAuthChallenge", answer("weak", &session))
        .await;
    assert_eq!(error_name(r), "InvalidPasswordException");
    let r = h
        .call(
            "RespondToAuthChallenge",
            answer("newpassword1", "AYABebogus-session-value"),
        )
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    let r = h
        .call("RespondToAuthChallenge", answer("newpassword1", &session))
        .await
        .unwrap();
    assert!(r["AuthenticationResult"]["IdToken"].is_string());
    assert!(r["AuthenticationResult"]["RefreshToken"].is_string());
    // single use
    let r = h
        .call("RespondToAuthChallenge", answer("newpassword2", &session))
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    h.login("web", "frank", "newpassword1").await.unwrap();
}

#[tokio::test]
async fn forgot_password_and_code_rules() {
    let h = harness().await;
    h.idp
        .create_user(
            "main",
            "gina",
            Default::default(),
            Some((&Secret::new("password1"), true)),
        )
        .await
        .unwrap();
    // unknown users get a simulated delivery and no code
    h.call(
        "ForgotPassword",
        json!({"ClientId": "web", "Username": "ghost"}),
    )
    .await
    .unwrap();
    assert!(h.codes.lock().unwrap().is_empty());
    let r = h
        .call("ConfirmForgotPassword", json!({"ClientId": "web", "Username": "ghost", "ConfirmationCode": "123456", "Password": "password9"}))
        .await;
    assert_eq!(error_name(r), "CodeMismatchException");
    h.call(
        "ForgotPassword",
        json!({"ClientId": "web", "Username": "gina"}),
    )
    .await
    .unwrap();
    let code = h.last_code("gina", CodePurpose::ForgotPassword);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let r = h
            .call("ConfirmForgotPassword", json!({"ClientId": "web", "Username": "gina", "ConfirmationCode": wrong, "Password": "password9"}))
            .await;
        assert_eq!(error_name(r), "CodeMismatchException");
    }
    // attempts exhausted: even the right code is refused
    let r = h
        .call("ConfirmForgotPassword", json!({"ClientId": "web", "Username": "gina", "ConfirmationCode": code, "Password": "password9"}))
        .await;
    assert_eq!(error_name(r), "LimitExceededException");
    h.call(
        "ForgotPassword",
        json!({"ClientId": "web", "Username": "gina"}),
    )
    .await
    .unwrap();
    let code = h.last_code("gina", CodePurpose::ForgotPassword);
    let r = h
        .call("ConfirmForgotPassword", json!({"ClientId": "web", "Username": "gina", "ConfirmationCode": code, "Password": "weak"}))
        .await;
    assert_eq!(error_name(r), "InvalidPasswordException");
    h.call("ConfirmForgotPassword", json!({"ClientId": "web", "Username": "gina", "ConfirmationCode": code, "Password": "password9"}))
        .await
        .unwrap();
    h.login("web", "gina", "password9").await.unwrap();
    // a code is single use
    let r = h
        .call("ConfirmForgotPassword", json!({"ClientId": "web", "Username": "gina", "ConfirmationCode": code, "Password": "password8"}))
        .await;
    assert_eq!(error_name(r), "CodeMismatchException");
}

#[tokio::test]
async fn protocol_errors() {
    let h = harness().await;
    // unknown client
    let r = h.login("no-such-client", "x", "y").await;
    assert_eq!(error_name(r), "ResourceNotFoundException");
    // sign-up disabled in the pool
    let r = h
        .call(
            "SignUp",
            json!({"ClientId": "closed-web", "Username": "x", "Password": "password1"}),
        )
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    // missing parameters
    let r = h.call("InitiateAuth", json!({"ClientId": "web"})).await;
    assert_eq!(error_name(r), "InvalidParameterException");
    // no target, bad JSON, oversized body, unknown operation
    let (status, _, _) = h.raw(None, b"{}".to_vec()).await;
    assert_eq!(status, 400);
    let (status, _, body) = h.raw(Some("InitiateAuth"), b"{not json".to_vec()).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("SerializationException"))
    );
    let big = json!({"ClientId": "web", "Username": "x".repeat(20_000)})
        .to_string()
        .into_bytes();
    let (status, _, body) = h.raw(Some("SignUp"), big).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    // Admin operations need a signature (admin/tests.rs); others are unknown
    let r = h.call("AdminDeleteUser", json!({})).await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    let r = h.call("NoSuchOperation", json!({})).await;
    assert_eq!(error_name(r), "UnknownOperationException");
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_ip() {
    // rate_limit_per_ip = 1: bursts of 2, then one request per second
    let h = harness_with("rate_limit_per_ip = 1").await;
    let mut refused = None;
    for _ in 0..10 {
        let r = h.login("web", "nobody", "x").await;
        if let Err((status, name, _)) = r
            && name == "TooManyRequestsException"
        {
            refused = Some(status);
            break;
        }
    }
    // `call` has checked `__type` against `x-amzn-ErrorType: TooManyRequestsException:`
    assert_eq!(
        refused,
        Some(400),
        "no TooManyRequestsException within 10 sign-ins"
    );
    let (status, headers, body) = h
        .raw(
            Some("SignUp"),
            json!({"ClientId": "web", "Username": "x", "Password": "password1"})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "TooManyRequestsException");
    assert_eq!(headers["x-amzn-errortype"], "TooManyRequestsException:");
    // other pools have their own limit
    let r = h
        .call(
            "SignUp",
            json!({"ClientId": "closed-web", "Username": "x", "Password": "password1"}),
        )
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    // unknown clients are answered without touching any pool's limit
    assert_eq!(
        error_name(h.login("no-such-client", "x", "y").await),
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn rate_limit_zero_is_off() {
    let h = harness_with("rate_limit_per_ip = 0").await;
    // one name each (a name gets 5 codes an hour)
    for i in 0..30 {
        let r = h
            .call(
                "ForgotPassword",
                json!({"ClientId": "web", "Username": format!("ghost{i}")}),
            )
            .await;
        assert!(r.is_ok(), "{r:?}");
    }
}

/// One POST a webhook listener received: headers, raw body, body as JSON.
type Post = (http::HeaderMap, Vec<u8>, Value);
type Received = Arc<Mutex<Vec<Post>>>;

/// A real HTTP listener on 127.0.0.1:0 that records every POST to `/codes` and answers
/// `status` after `delay`.
async fn webhook_listener(status: u16, delay: Duration) -> (SocketAddr, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/codes",
        axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                sink.lock().unwrap().push((headers, body.to_vec(), value));
                tokio::time::sleep(delay).await;
                http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, received)
}

/// Waits (up to 10 s) until the listener has received `n` deliveries.
async fn wait_for_deliveries(received: &Received, n: usize) -> Vec<Post> {
    for _ in 0..500 {
        {
            let got = received.lock().unwrap();
            if got.len() >= n {
                return got.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the webhook did not receive {n} deliveries within 10 s");
}

#[tokio::test]
async fn codes_are_posted_to_the_webhook_and_confirm_the_user() {
    let (hook, received) = webhook_listener(200, Duration::ZERO).await;
    let h = harness_with(&format!(
        "code_webhook = \"http://{hook}/codes\"\ncode_webhook_secret = \"hook-secret\""
    ))
    .await;
    h.call(
        "SignUp",
        json!({"ClientId": "web", "Username": "hank", "Password": "password1",
               "UserAttributes": [{"Name": "email", "Value": "hank@example.com"}]}),
    )
    .await
    .unwrap();
    let got = wait_for_deliveries(&received, 1).await;
    let (headers, raw, body) = &got[0];
    let code = body["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    assert_eq!(
        *body,
        json!({"pool": "main", "username": "hank", "kind": "SIGN_UP", "code": code,
               "client_id": "web", "destination": {"email": "hank@example.com"}})
    );
    assert_eq!(headers["content-type"], "application/json");
    // the signature: HMAC-SHA256 of the exact bytes received, in hex
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"hook-secret");
    let tag = hmac::sign(&key, raw);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        headers[crate::delivery::SIGNATURE_HEADER].to_str().unwrap(),
        format!("sha256={hex}")
    );
    // the callback saw the same code
    assert_eq!(h.last_code("hank", CodePurpose::SignUp), code);
    // the code from the webhook confirms the user
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "hank", "ConfirmationCode": code}),
    )
    .await
    .unwrap();
    h.login("web", "hank", "password1").await.unwrap();

    // a reset code, through the confidential client
    h.call(
        "ForgotPassword",
        json!({"ClientId": "confidential", "Username": "hank",
               "SecretHash": secret_hash("hank", "confidential")}),
    )
    .await
    .unwrap();
    let got = wait_for_deliveries(&received, 2).await;
    let body = &got[1].2;
    assert_eq!(body["kind"], "FORGOT_PASSWORD");
    assert_eq!(body["client_id"], "confidential");
    h.call(
        "ConfirmForgotPassword",
        json!({"ClientId": "confidential", "Username": "hank",
               "SecretHash": secret_hash("hank", "confidential"),
               "ConfirmationCode": body["code"], "Password": "password9"}),
    )
    .await
    .unwrap();
    h.login("web", "hank", "password9").await.unwrap();
    // no code for unknown users: only the two above were sent
    h.call(
        "ForgotPassword",
        json!({"ClientId": "web", "Username": "ghost"}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(received.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn resend_confirmation_code_replaces_the_code() {
    let (hook, received) = webhook_listener(204, Duration::ZERO).await;
    let h = harness_with(&format!("code_webhook = \"http://{hook}/codes\"")).await;
    h.call(
        "SignUp",
        json!({"ClientId": "web", "Username": "ivy", "Password": "password1"}),
    )
    .await
    .unwrap();
    let first = wait_for_deliveries(&received, 1).await[0].2.clone();
    assert!(first.get("destination").is_none(), "{first}");
    assert!(first["code"].is_string());
    // no secret configured: no signature
    assert!(
        !wait_for_deliveries(&received, 1).await[0]
            .0
            .contains_key(crate::delivery::SIGNATURE_HEADER)
    );
    let r = h
        .call(
            "ResendConfirmationCode",
            json!({"ClientId": "web", "Username": "ivy"}),
        )
        .await
        .unwrap();
    assert_eq!(r["CodeDeliveryDetails"]["DeliveryMedium"], "EMAIL");
    let second = wait_for_deliveries(&received, 2).await[1].2.clone();
    assert_eq!(second["kind"], "SIGN_UP");
    let new_code = second["code"].as_str().unwrap();
    if first["code"] != second["code"] {
        let r = h
            .call(
                "ConfirmSignUp",
                json!({"ClientId": "web", "Username": "ivy", "ConfirmationCode": first["code"]}),
            )
            .await;
        assert_eq!(error_name(r), "CodeMismatchException");
    }
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "ivy", "ConfirmationCode": new_code}),
    )
    .await
    .unwrap();
    // confirmed and unknown users: a simulated delivery, no code
    for username in ["ivy", "nobody"] {
        h.call(
            "ResendConfirmationCode",
            json!({"ClientId": "web", "Username": username}),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(received.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_slow_or_dead_webhook_never_fails_the_call() {
    // answers only after a minute (the delivery times out after 200 ms)
    let (slow, received) = webhook_listener(200, Duration::from_secs(60)).await;
    let h = harness_with(&format!(
        "code_webhook = \"http://{slow}/codes\"\ncode_webhook_timeout = \"200ms\""
    ))
    .await;
    h.call(
        "SignUp",
        json!({"ClientId": "web", "Username": "jack", "Password": "password1"}),
    )
    .await
    .unwrap();
    // The webhook still holds this delivery (it answers after a minute) while the call has
    // already answered: delivery runs beside the API call, not inside it.
    wait_for_deliveries(&received, 1).await;
    // the code is still valid (and still reached the in-process callback)
    let code = h.last_code("jack", CodePurpose::SignUp);
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "jack", "ConfirmationCode": code}),
    )
    .await
    .unwrap();

    // nothing listens at all
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let h = harness_with(&format!("code_webhook = \"http://{closed}/codes\"")).await;
    h.call(
        "SignUp",
        json!({"ClientId": "web", "Username": "kate", "Password": "password1"}),
    )
    .await
    .unwrap();
    h.call(
        "ForgotPassword",
        json!({"ClientId": "web", "Username": "kate"}),
    )
    .await
    .unwrap();
}

// ---- limits on codes, and answers that do not tell known names from unknown ones ----

fn forgot(username: &str) -> Value {
    json!({"ClientId": "web", "Username": username})
}

fn confirm_forgot(username: &str, code: &str) -> Value {
    json!({"ClientId": "web", "Username": username, "ConfirmationCode": code,
           "Password": "password9"})
}

fn other_code(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

async fn confirmed_user(h: &Harness, username: &str) {
    let attrs = [("email".to_owned(), format!("{username}@example.com"))]
        .into_iter()
        .collect();
    h.idp
        .create_user(
            "main",
            username,
            attrs,
            Some((&Secret::new("password1"), true)),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn twelve_forgot_passwords_issue_at_most_five_codes_an_hour() {
    let h = harness().await;
    confirmed_user(&h, "lena").await;
    let mut answers = Vec::new();
    for _ in 0..12 {
        answers.push(h.call("ForgotPassword", forgot("lena")).await.map(|_| ()));
    }
    assert_eq!(h.delivered("lena", CodePurpose::ForgotPassword), 5);
    assert!(answers[..5].iter().all(Result::is_ok), "{answers:?}");
    let (status, name, message) = answers[5].clone().unwrap_err();
    assert_eq!(
        (status, name.as_str(), message.as_str()),
        (
            400,
            "LimitExceededException",
            "Attempt limit exceeded, please try after some time."
        )
    );
    assert_eq!(answers.iter().filter(|a| a.is_err()).count(), 7);
    // the last code issued still works
    let code = h.last_code("lena", CodePurpose::ForgotPassword);
    h.call("ConfirmForgotPassword", confirm_forgot("lena", &code))
        .await
        .unwrap();
    // an hour after the first code, codes are issued again
    h.clock.advance(3600);
    h.call("ForgotPassword", forgot("lena")).await.unwrap();
    assert_eq!(h.delivered("lena", CodePurpose::ForgotPassword), 6);
}

#[tokio::test]
async fn wrong_guesses_across_fresh_codes_lock_the_reset() {
    let h = harness().await;
    confirmed_user(&h, "mia").await;
    // 5 fresh codes, 2 wrong guesses at each: 10 wrong guesses across codes
    let mut code = String::new();
    for _ in 0..5 {
        h.call("ForgotPassword", forgot("mia")).await.unwrap();
        code = h.last_code("mia", CodePurpose::ForgotPassword);
        for _ in 0..2 {
            let r = h
                .call(
                    "ConfirmForgotPassword",
                    confirm_forgot("mia", other_code(&code)),
                )
                .await;
            assert_eq!(error_name(r), "CodeMismatchException");
        }
    }
    // locked: the right code is refused, and no new code is issued
    let r = h
        .call("ConfirmForgotPassword", confirm_forgot("mia", &code))
        .await;
    assert_eq!(error_name(r), "LimitExceededException");
    let r = h.call("ForgotPassword", forgot("mia")).await;
    assert_eq!(error_name(r), "LimitExceededException");
    assert_eq!(h.delivered("mia", CodePurpose::ForgotPassword), 5);
    // still locked a moment before the hour has passed
    h.clock.advance(3599);
    let r = h
        .call("ConfirmForgotPassword", confirm_forgot("mia", &code))
        .await;
    assert_eq!(error_name(r), "LimitExceededException");
    h.login("web", "mia", "password9").await.unwrap_err();
    // once it has, a fresh code resets the password
    h.clock.advance(1);
    h.call("ForgotPassword", forgot("mia")).await.unwrap();
    let code = h.last_code("mia", CodePurpose::ForgotPassword);
    h.call("ConfirmForgotPassword", confirm_forgot("mia", &code))
        .await
        .unwrap();
    h.login("web", "mia", "password9").await.unwrap();
}

#[tokio::test]
async fn parallel_wrong_guesses_check_at_most_the_attempts_of_a_code() {
    let h = Arc::new(harness().await);
    confirmed_user(&h, "nora").await;
    h.call("ForgotPassword", forgot("nora")).await.unwrap();
    let code = h.last_code("nora", CodePurpose::ForgotPassword);
    let wrong = other_code(&code);
    let guesses: Vec<_> = (0..40)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                h.call("ConfirmForgotPassword", confirm_forgot("nora", wrong))
                    .await
                    .unwrap_err()
                    .1
            })
        })
        .collect();
    let mut names = Vec::new();
    for g in guesses {
        names.push(g.await.unwrap());
    }
    let checked = names
        .iter()
        .filter(|n| *n == "CodeMismatchException")
        .count();
    assert_eq!(checked, 5, "{names:?}");
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "LimitExceededException")
            .count(),
        35
    );
}

/// The same operations against a known name and an unknown one answer the same, byte for
/// byte (status and body): with the user confirmed, unconfirmed (created by an
/// administrator) or disabled.
#[tokio::test]
async fn code_answers_do_not_tell_known_from_unknown_names() {
    let h = harness().await;
    confirmed_user(&h, "known-confirmed").await;
    h.idp
        .create_user("main", "known-unconfirmed", Default::default(), None)
        .await
        .unwrap();
    confirmed_user(&h, "known-disabled").await;
    let mut disabled = h
        .idp
        .store()
        .get_user("main", "known-disabled")
        .await
        .unwrap()
        .unwrap();
    disabled.enabled = false;
    h.idp.store().update_user(&disabled).await.unwrap();

    let script = |name: &str| -> Vec<(&'static str, Value)> {
        let mut ops = Vec::new();
        // 6 requests for each kind of code: 5 issued, the 6th refused
        for _ in 0..6 {
            ops.push(("ForgotPassword", forgot(name)));
            ops.push((
                "ResendConfirmationCode",
                json!({"ClientId": "web", "Username": name}),
            ));
        }
        // wrong guesses (7 digits: never a code): 5 per code, then refused
        for _ in 0..7 {
            ops.push(("ConfirmForgotPassword", confirm_forgot(name, "9999999")));
            ops.push((
                "ConfirmSignUp",
                json!({"ClientId": "web", "Username": name, "ConfirmationCode": "9999999"}),
            ));
        }
        ops
    };
    for (known, unknown) in [
        ("known-confirmed", "unknown-1"),
        ("known-unconfirmed", "unknown-2"),
        ("known-disabled", "unknown-3"),
    ] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (op, body) in script(known) {
            a.push((op, h.answer(op, body).await));
        }
        for (op, body) in script(unknown) {
            b.push((op, h.answer(op, body).await));
        }
        assert_eq!(a, b, "{known} vs {unknown}");
        // the answers are the ones a user expects, not errors of another kind
        assert_eq!(a[0].1.0, 200, "{:?}", a[0]);
        assert_eq!(
            a[0].1.1["CodeDeliveryDetails"],
            json!({"Destination": "***", "DeliveryMedium": "EMAIL", "AttributeName": "email"})
        );
        assert!(
            a.iter()
                .any(|(_, (_, body))| body["__type"] == "LimitExceededException")
        );
        assert!(
            a.iter()
                .any(|(_, (_, body))| body["__type"] == "CodeMismatchException")
        );
    }
    // only real, eligible users got codes: the confirmed one a reset code, the unconfirmed
    // one a sign-up code
    assert_eq!(
        h.delivered("known-confirmed", CodePurpose::ForgotPassword),
        5
    );
    assert_eq!(h.delivered("known-confirmed", CodePurpose::SignUp), 0);
    assert_eq!(h.delivered("known-unconfirmed", CodePurpose::SignUp), 5);
    assert_eq!(
        h.delivered("known-unconfirmed", CodePurpose::ForgotPassword),
        0
    );
    assert_eq!(
        h.delivered("known-disabled", CodePurpose::ForgotPassword),
        0
    );
    assert_eq!(h.codes.lock().unwrap().len(), 10);
}

#[tokio::test]
async fn confirm_sign_up_of_a_confirmed_user_answers_like_an_unknown_name() {
    let h = harness().await;
    confirmed_user(&h, "olga").await;
    let ask =
        |name: &str| json!({"ClientId": "web", "Username": name, "ConfirmationCode": "123456"});
    let known = h.answer("ConfirmSignUp", ask("olga")).await;
    let unknown = h.answer("ConfirmSignUp", ask("nobody")).await;
    assert_eq!(known, unknown);
    assert_eq!(
        known,
        (
            400,
            json!({"__type": "CodeMismatchException",
                   "message": "Invalid verification code provided, please try again."})
        )
    );
}

fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

fn sign_up(username: &str) -> Vec<u8> {
    json!({"ClientId": "web", "Username": username, "Password": "password1"})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn sign_ups_beyond_the_per_address_share_are_refused_and_leave_no_user() {
    let h = harness_with_options(
        "",
        CognitoOptions {
            max_codes_per_ip: 3,
            ..CognitoOptions::default()
        },
    )
    .await;
    let one = client_from([127, 0, 0, 1]);
    let mut statuses = Vec::new();
    for i in 0..5 {
        let (status, _, body) = h
            .raw_from(one.clone(), Some("SignUp"), sign_up(&format!("flood{i}")))
            .await;
        statuses.push((status, body["__type"].as_str().map(str::to_owned)));
    }
    let limited = (400, Some("LimitExceededException".to_owned()));
    assert_eq!(
        statuses,
        [
            (200, None),
            (200, None),
            (200, None),
            limited.clone(),
            limited
        ]
    );
    // the refused sign-ups left no user behind, and no code
    for i in 3..5 {
        let user = h
            .idp
            .store()
            .get_user("main", &format!("flood{i}"))
            .await
            .unwrap();
        assert!(user.is_none(), "flood{i} was created");
    }
    assert_eq!(h.codes.lock().unwrap().len(), 3);
    // another address still signs up
    let (status, _, body) = h
        .raw_from(
            client_from([127, 0, 0, 2]),
            Some("SignUp"),
            sign_up("other"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // a confirmed sign-up frees its share
    let code = h.last_code("flood0", CodePurpose::SignUp);
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "flood0", "ConfirmationCode": code}),
    )
    .await
    .unwrap();
    let (status, _, _) = h.raw_from(one, Some("SignUp"), sign_up("flood3")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_full_code_table_evicts_the_oldest_instead_of_refusing_everyone() {
    let h = harness_with_options(
        "",
        CognitoOptions {
            max_pending: 4,
            max_codes_per_ip: 0,
            ..CognitoOptions::default()
        },
    )
    .await;
    for i in 0..10 {
        h.call(
            "SignUp",
            json!({"ClientId": "web", "Username": format!("u{i}"), "Password": "password1"}),
        )
        .await
        .unwrap();
    }
    // the newest codes work; the oldest was evicted and a new one can be asked for
    let code = h.last_code("u9", CodePurpose::SignUp);
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "u9", "ConfirmationCode": code}),
    )
    .await
    .unwrap();
    let old = h.last_code("u0", CodePurpose::SignUp);
    let r = h
        .call(
            "ConfirmSignUp",
            json!({"ClientId": "web", "Username": "u0", "ConfirmationCode": old}),
        )
        .await;
    assert_eq!(error_name(r), "CodeMismatchException");
    h.call(
        "ResendConfirmationCode",
        json!({"ClientId": "web", "Username": "u0"}),
    )
    .await
    .unwrap();
    let code = h.last_code("u0", CodePurpose::SignUp);
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "u0", "ConfirmationCode": code}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_unconfirmed_sign_up_whose_code_expired_can_be_signed_up_again() {
    let h = harness().await;
    let first = h
        .call(
            "SignUp",
            json!({"ClientId": "web", "Username": "pia", "Password": "password1"}),
        )
        .await
        .unwrap();
    let again = json!({"ClientId": "web", "Username": "pia", "Password": "password2"});
    // while the code lives, the name is taken
    let r = h.call("SignUp", again.clone()).await;
    assert_eq!(error_name(r), "UsernameExistsException");
    // a resent code keeps it taken after the first code expired
    h.clock.advance(86_400 - 60);
    h.call(
        "ResendConfirmationCode",
        json!({"ClientId": "web", "Username": "pia"}),
    )
    .await
    .unwrap();
    h.clock.advance(120);
    let r = h.call("SignUp", again.clone()).await;
    assert_eq!(error_name(r), "UsernameExistsException");
    // once no code lives, a new sign-up replaces the unconfirmed user
    h.clock.advance(86_400);
    let second = h.call("SignUp", again).await.unwrap();
    assert_ne!(second["UserSub"], first["UserSub"]);
    let code = h.last_code("pia", CodePurpose::SignUp);
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "pia", "ConfirmationCode": code}),
    )
    .await
    .unwrap();
    h.login("web", "pia", "password2").await.unwrap();
    // an unconfirmed user an administrator created is never replaced
    h.idp
        .create_user("main", "quinn", Default::default(), None)
        .await
        .unwrap();
    h.clock.advance(2 * 86_400);
    let r = h
        .call(
            "SignUp",
            json!({"ClientId": "web", "Username": "quinn", "Password": "password1"}),
        )
        .await;
    assert_eq!(error_name(r), "UsernameExistsException");
}

#[tokio::test]
async fn requests_about_a_free_name_do_not_keep_it_from_being_signed_up() {
    let h = harness().await;
    // codes nobody receives for a name nobody has, and wrong guesses at them
    for _ in 0..6 {
        let _ = h
            .call(
                "ResendConfirmationCode",
                json!({"ClientId": "web", "Username": "rosa"}),
            )
            .await;
        for _ in 0..2 {
            let _ = h
                .call(
                    "ConfirmSignUp",
                    json!({"ClientId": "web", "Username": "rosa", "ConfirmationCode": "9999999"}),
                )
                .await;
        }
    }
    let r = h
        .call(
            "ResendConfirmationCode",
            json!({"ClientId": "web", "Username": "rosa"}),
        )
        .await;
    assert_eq!(error_name(r), "LimitExceededException");
    // the sign-up of the name goes through, and its code confirms it
    h.call(
        "SignUp",
        json!({"ClientId": "web", "Username": "rosa", "Password": "password1"}),
    )
    .await
    .unwrap();
    let code = h.last_code("rosa", CodePurpose::SignUp);
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "rosa", "ConfirmationCode": code}),
    )
    .await
    .unwrap();
}

mod mfa;
mod refresh;
mod srp;
mod triggers;
mod user_input;
