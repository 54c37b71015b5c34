//! Several gateway nodes sharing one identity store: two [`IdentityProvider`]s opened on the
//! same database (a SQLite file, and a throwaway PostgreSQL server), each serving HTTP of its
//! own, and every sign-in flow with its steps alternating between them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use portcullis_config::{Config, Secret};
use serde_json::{Value, json};

use crate::delivery::{CodeDelivery, CodePurpose};
use crate::http::cognito::Clock as CodeClock;
use crate::store::tests::TempPostgres;
use crate::store::{self, CodeRedemption, Store};
use crate::{CognitoOptions, IdentityProvider, IdpOptions, cognito_router_with, router};

const CALLBACK: &str = "http://localhost:8080/demo/";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

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
callback_urls = ["http://localhost:8080/demo/"]
allowed_scopes = ["openid", "email"]
"#;

/// One node: a provider on the shared store, serving the pool routes and the JSON API.
struct Node {
    idp: Arc<IdentityProvider>,
    base: String,
    api: String,
    codes: Arc<Mutex<Vec<CodeDelivery>>>,
}

async fn node(url: &str) -> Node {
    let config: Config = portcullis_config::load_str(CONFIG, "test.toml", &|_| None).unwrap();
    let store = store::open(url).await.unwrap();
    let idp = IdentityProvider::with_store(
        &config,
        store,
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
        clock: CodeClock::default(),
        ..CognitoOptions::default()
    };
    let mut addrs = Vec::new();
    for app in [
        router(Arc::clone(&idp)),
        cognito_router_with(Arc::clone(&idp), options),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    }
    Node {
        idp,
        base: format!("http://{}/pools/main", addrs[0]),
        api: format!("http://{}/", addrs[1]),
        codes,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_owned()
}

impl Node {
    async fn call(&self, op: &str, body: Value) -> (u16, Value) {
        let r = http()
            .post(&self.api)
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "x-amz-target",
                format!("AWSCognitoIdentityProviderService.{op}"),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
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

    async fn redeem(&self, code: &str) -> (u16, Value) {
        let r = http()
            .post(format!("{}/oauth2/token", self.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "web"),
                ("code", code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

async fn user(node: &Node, name: &str, password: &str, permanent: bool) {
    let attrs = BTreeMap::from([
        ("email".to_owned(), format!("{name}@example.com")),
        ("email_verified".to_owned(), "true".to_owned()),
    ]);
    node.idp
        .create_user(
            "main",
            name,
            attrs,
            Some((&Secret::new(password), permanent)),
        )
        .await
        .unwrap();
}

/// Hosted page: authorize on A, the login form on B, the code redeemed on A (its token
/// accepted by B: the same keys), a second redemption on B refused and its session revoked.
async fn hosted_page_across_nodes(a: &Node, b: &Node) {
    user(a, "alice", "password1", true).await;
    let authorize = url::Url::parse_with_params(
        &format!("{}/oauth2/authorize", a.base),
        &[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid email"),
            ("state", "st-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let page = http().get(authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let login = http()
        .post(format!("{}/login", b.base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("request_id", hidden(&html, "request_id").as_str()),
            ("username", "alice"),
            ("password", "password1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302, "{}", login.text().await.unwrap());
    let location = url::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(CALLBACK));
    let query: BTreeMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "st-1");
    let code = &query["code"];

    let (status, body) = a.redeem(code).await;
    assert_eq!(status, 200, "{body}");
    // an access token minted by A is accepted by B (one signing key for the pool)
    let access = body["access_token"].as_str().unwrap();
    let info = http()
        .get(format!("{}/oauth2/userInfo", b.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let (status, again) = b.redeem(code).await;
    assert_eq!(status, 400, "{again}");
    assert_eq!(again["error"], "invalid_grant");
    // the replay took back what the first redemption issued
    let refresh = body["refresh_token"].as_str().unwrap();
    let r = http()
        .post(format!("{}/oauth2/token", a.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("refresh_token", refresh),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a replayed code's session is revoked");

    // the login form's request was used up on B: posting it again to A is refused
    let reused = http()
        .post(format!("{}/login", a.base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("request_id", hidden(&html, "request_id").as_str()),
            ("username", "alice"),
            ("password", "password1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 400);
}

/// Cognito JSON API: InitiateAuth's challenge on A answered on B; the session cannot be
/// answered twice.
async fn challenge_across_nodes(a: &Node, b: &Node) {
    user(a, "frank", "Temporary1", false).await;
    let (status, started) = a
        .call(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "frank", "PASSWORD": "Temporary1"}}),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    let answer = json!({"ClientId": "web", "ChallengeName": "NEW_PASSWORD_REQUIRED",
        "Session": started["Session"],
        "ChallengeResponses": {"USERNAME": "frank", "NEW_PASSWORD": "Chosen123"}});
    let (status, done) = b.call("RespondToAuthChallenge", answer.clone()).await;
    assert_eq!(status, 200, "{done}");
    assert!(done["AuthenticationResult"]["AccessToken"].is_string());
    let (status, replay) = a.call("RespondToAuthChallenge", answer).await;
    assert_eq!(status, 400, "{replay}");
}

/// SignUp on A confirmed on B; ForgotPassword on A confirmed on B.
async fn codes_across_nodes(a: &Node, b: &Node) {
    let (status, body) = a
        .call(
            "SignUp",
            json!({"ClientId": "web", "Username": "gina", "Password": "password1",
                   "UserAttributes": [{"Name": "email", "Value": "gina@example.com"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let code = a.last_code("gina", CodePurpose::SignUp);
    let (status, body) = b
        .call(
            "ConfirmSignUp",
            json!({"ClientId": "web", "Username": "gina", "ConfirmationCode": code}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // used up: a second confirmation on A finds no code
    let (status, body) = a
        .call(
            "ConfirmSignUp",
            json!({"ClientId": "web", "Username": "gina", "ConfirmationCode": code}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["__type"], "CodeMismatchException");

    let (status, body) = a
        .call(
            "ForgotPassword",
            json!({"ClientId": "web", "Username": "gina"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let code = a.last_code("gina", CodePurpose::ForgotPassword);
    let (status, body) = b
        .call(
            "ConfirmForgotPassword",
            json!({"ClientId": "web", "Username": "gina", "ConfirmationCode": code,
                   "Password": "changed123"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = a
        .call(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "gina", "PASSWORD": "changed123"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Wrong guesses counted on A and B together lock the code as on one node.
async fn wrong_guesses_add_up_across_nodes(a: &Node, b: &Node) {
    user(a, "hugo", "password1", true).await;
    a.call(
        "ForgotPassword",
        json!({"ClientId": "web", "Username": "hugo"}),
    )
    .await;
    let code = a.last_code("hugo", CodePurpose::ForgotPassword);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let guess = |c: &str| {
        json!({"ClientId": "web", "Username": "hugo", "ConfirmationCode": c,
               "Password": "changed123"})
    };
    for n in 0..5 {
        let node = if n % 2 == 0 { a } else { b };
        let (_, body) = node.call("ConfirmForgotPassword", guess(wrong)).await;
        assert_eq!(body["__type"], "CodeMismatchException");
    }
    // five wrong guesses on two nodes used up the code's attempts
    let (_, body) = b.call("ConfirmForgotPassword", guess(&code)).await;
    assert_eq!(body["__type"], "LimitExceededException");
}

/// SRP: the challenge from A (its `SECRET_BLOCK` sealed under the store's key), answered on B;
/// the same answer replayed on A is refused (the block was recorded in the store).
async fn srp_across_nodes(a: &Node, b: &Node) {
    use crate::srp::client_tests::SrpClient;
    user(a, "sara", "password1", true).await;
    let client = SrpClient::new();
    let (status, r) = a
        .call(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "USER_SRP_AUTH",
                   "AuthParameters": {"USERNAME": "sara", "SRP_A": client.a_hex()}}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let p = &r["ChallengeParameters"];
    let param = |name: &str| p[name].as_str().expect("challenge parameter").to_owned();
    let timestamp = crate::srp::format_timestamp(chrono::Utc::now());
    let signature = client.signature(
        "main",
        "sara",
        "password1",
        &param("SALT"),
        &param("SRP_B"),
        &param("SECRET_BLOCK"),
        &timestamp,
    );
    let answer = json!({"ClientId": "web", "ChallengeName": "PASSWORD_VERIFIER",
        "ChallengeResponses": {"USERNAME": "sara", "TIMESTAMP": timestamp,
            "PASSWORD_CLAIM_SECRET_BLOCK": param("SECRET_BLOCK"),
            "PASSWORD_CLAIM_SIGNATURE": signature}});
    let (status, r) = b.call("RespondToAuthChallenge", answer.clone()).await;
    assert_eq!(status, 200, "{r}");
    assert!(r["AuthenticationResult"]["IdToken"].is_string());
    let (status, r) = a.call("RespondToAuthChallenge", answer).await;
    assert_eq!(status, 400);
    assert_eq!(r["__type"], "NotAuthorizedException");
}

async fn every_flow(url: &str) {
    let a = node(url).await;
    let b = node(url).await;
    hosted_page_across_nodes(&a, &b).await;
    challenge_across_nodes(&a, &b).await;
    codes_across_nodes(&a, &b).await;
    wrong_guesses_add_up_across_nodes(&a, &b).await;
    srp_across_nodes(&a, &b).await;
}

#[tokio::test]
async fn sign_in_steps_alternate_between_nodes_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idp.db").display());
    every_flow(&url).await;
}

#[tokio::test]
async fn sign_in_steps_alternate_between_nodes_on_postgres() {
    let Some(pg) = TempPostgres::start("sign_in_steps_alternate_between_nodes_on_postgres").await
    else {
        return;
    };
    every_flow(&pg.url).await;
}

/// Two nodes redeem one code (and take one pending request) at the same moment, many times
/// over: exactly one wins each time.
async fn racing_redemptions(url: &str) {
    let (a, b) = (
        store::open(url).await.unwrap(),
        store::open(url).await.unwrap(),
    );
    a.migrate().await.unwrap();
    for n in 0..20u8 {
        let row = crate::store::AuthCodeRow {
            code_hash: vec![n; 32],
            pool: "main".into(),
            client_id: "web".into(),
            body: "{}".into(),
            expires_at: 1_000,
        };
        assert!(a.issue_authorization_code(&row, 100, 10).await.unwrap());
        let redeem = |s: &Arc<dyn Store>| {
            let s = Arc::clone(s);
            tokio::spawn(async move {
                s.redeem_authorization_code(&[n; 32], "main", "web", 20)
                    .await
                    .unwrap()
            })
        };
        let (x, y) = (redeem(&a), redeem(&b));
        let outcomes = [x.await.unwrap(), y.await.unwrap()];
        let fresh = outcomes
            .iter()
            .filter(|o| matches!(o, CodeRedemption::Fresh(_)))
            .count();
        assert_eq!(fresh, 1, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, CodeRedemption::Replayed(_)))
        );

        // the login form's request, posted to two nodes at once: one takes it
        let pending = crate::store::PendingRequestRow {
            id_hash: vec![n; 32],
            pool: "main".into(),
            holder: None,
            body: "{}".into(),
            expires_at: 1_000,
        };
        a.insert_pending_request(&pending, &crate::pending::PendingLimits::default(), 10)
            .await
            .unwrap()
            .unwrap();
        let take = |s: &Arc<dyn Store>| {
            let s = Arc::clone(s);
            tokio::spawn(async move { s.take_pending_request(&[n; 32], "main", 20).await.unwrap() })
        };
        let (x, y) = (take(&a), take(&b));
        let taken = [x.await.unwrap(), y.await.unwrap()];
        assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1);
    }
}

#[tokio::test]
async fn of_two_racing_redemptions_exactly_one_wins_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    racing_redemptions(&format!("sqlite://{}", dir.path().join("idp.db").display())).await;
}

#[tokio::test]
async fn of_two_racing_redemptions_exactly_one_wins_on_postgres() {
    let Some(pg) =
        TempPostgres::start("of_two_racing_redemptions_exactly_one_wins_on_postgres").await
    else {
        return;
    };
    racing_redemptions(&pg.url).await;
}

/// Failed sign-ins of a name the pool does not have lock it out on every node, as a real
/// user's do (so a lockout does not tell known names from unknown ones).
async fn unknown_names_lock_out_on_every_node(url: &str) {
    let config: Config = portcullis_config::load_str(CONFIG, "test.toml", &|_| None).unwrap();
    let clock = crate::Clock::fixed(crate::unix_now());
    let open = || async {
        IdentityProvider::with_store(
            &config,
            store::open(url).await.unwrap(),
            IdpOptions {
                hash_concurrency: 1,
                clock: clock.clone(),
                ..IdpOptions::default()
            },
        )
        .await
        .unwrap()
    };
    let (a, b) = (open().await, open().await);
    user(
        &Node {
            idp: Arc::clone(&a),
            base: String::new(),
            api: String::new(),
            codes: Arc::default(),
        },
        "ivan",
        "password1",
        true,
    )
    .await;
    let wrong = Secret::new("wrong-password1");
    for name in ["ivan", "nobody"] {
        for n in 0..crate::LOCK_AFTER {
            let node = if n % 2 == 0 { &a } else { &b };
            let check = node.sign_in_password("main", name, &wrong).await.unwrap();
            assert!(
                matches!(check, crate::PasswordCheck::Invalid),
                "{name} #{n}: {check:?}"
            );
        }
        for node in [&a, &b] {
            let check = node.sign_in_password("main", name, &wrong).await.unwrap();
            assert!(
                matches!(check, crate::PasswordCheck::Locked),
                "{name}: {check:?}"
            );
        }
    }
}

#[tokio::test]
async fn unknown_names_lock_out_on_every_node_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    unknown_names_lock_out_on_every_node(&format!(
        "sqlite://{}",
        dir.path().join("idp.db").display()
    ))
    .await;
}

#[tokio::test]
async fn unknown_names_lock_out_on_every_node_on_postgres() {
    let Some(pg) = TempPostgres::start("unknown_names_lock_out_on_every_node_on_postgres").await
    else {
        return;
    };
    unknown_names_lock_out_on_every_node(&pg.url).await;
}

/// A key rotated on A is published by B after B's next housekeeping (its first revocation
/// poll here; then once a minute), long before the new key signs.
#[tokio::test]
async fn a_rotation_on_one_node_reaches_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idp.db").display());
    let (a, b) = (node(&url).await, node(&url).await);
    let kids = |n: &Node| -> Vec<String> {
        n.idp
            .key_source("main")
            .jwks()
            .into_iter()
            .filter_map(|k| k.kid)
            .collect()
    };
    assert_eq!(kids(&a), kids(&b), "one key, created by the first node");
    let kid = a.idp.rotate_keys("main").await.unwrap();
    assert!(kids(&a).contains(&kid));
    assert!(!kids(&b).contains(&kid));
    b.idp.poll_revocation_events().await.unwrap();
    assert!(kids(&b).contains(&kid));
}

mod mfa;
