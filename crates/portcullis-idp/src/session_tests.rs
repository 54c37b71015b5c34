//! Sign-in lockout under parallel guesses, lockout answers for unknown users, sign-out and
//! password changes that end sessions, refresh-token rotation with reuse detection, and
//! revocation of access tokens: over the Cognito JSON API and the OAuth endpoints (real HTTP),
//! and on the provider itself on SQLite and PostgreSQL. The provider's clock is fixed, so
//! no test races the wall clock: "the same second" is the same second.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_config::Secret;
use serde_json::{Value, json};

use crate::delivery::{CodeDelivery, CodePurpose};
use crate::{
    ClientAuth, Clock, CognitoOptions, IdentityProvider, IdpOptions, LOCK_AFTER, OAuthError,
    PasswordCheck, Revocation, cognito_router_with, router, unix_now,
};

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
public_url = "http://localhost:8080"

[store]
url = "STORE"

[pools.main]
self_sign_up = true
rate_limit_per_ip = 0
password_policy = { min_length = 8, require_digits = true }

[pools.main.clients.web]
public = true
grants = ["password", "refresh_token", "authorization_code"]

[pools.main.clients.other]
public = true
grants = ["password", "refresh_token"]

[pools.main.clients.confidential]
secret = "confidential-secret-0123456789"
grants = ["password", "refresh_token"]

[pools.main.clients.sticky]
public = true
grants = ["password", "refresh_token"]
refresh_token_rotation = false

[pools.main.clients.m2m]
secret = "m2m-secret-0123456789abcdef"
grants = ["client_credentials"]
allowed_scopes = ["api/read"]

[pools.main.resource_servers.api]
scopes = ["read"]
"#;

const PASSWORD: &str = "password1";

struct Harness {
    addr: SocketAddr,
    idp: Arc<IdentityProvider>,
    clock: Clock,
    codes: Arc<Mutex<Vec<CodeDelivery>>>,
}

async fn provider(store_url: &str, clock: &Clock) -> Arc<IdentityProvider> {
    let config =
        portcullis_config::load_str(&CONFIG.replace("STORE", store_url), "test.toml", &|_| None)
            .unwrap();
    let idp = IdentityProvider::open_with(
        &config,
        IdpOptions {
            hash_concurrency: 2,
            clock: clock.clone(),
            ..IdpOptions::default()
        },
    )
    .await
    .unwrap();
    // stand still from now on (the signing key was made a moment ago, by the system clock)
    clock.set(unix_now());
    idp
}

async fn harness_on(store_url: &str) -> Harness {
    let clock = Clock::fixed(unix_now());
    let idp = provider(store_url, &clock).await;
    let codes: Arc<Mutex<Vec<CodeDelivery>>> = Arc::default();
    let sink = codes.clone();
    let options = CognitoOptions {
        on_code: Some(Arc::new(move |d: &CodeDelivery| {
            sink.lock().unwrap().push(d.clone());
        })),
        ..CognitoOptions::default()
    };
    let app = cognito_router_with(idp.clone(), options).merge(router(idp.clone()));
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
        clock,
        codes,
    }
}

async fn harness() -> Harness {
    harness_on("sqlite::memory:").await
}

type Answer = Result<Value, (String, String)>;

impl Harness {
    async fn call(&self, op: &str, body: Value) -> Answer {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/", self.addr))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "x-amz-target",
                format!("AWSCognitoIdentityProviderService.{op}"),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let ok = resp.status().is_success();
        let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        if ok {
            Ok(body)
        } else {
            Err((
                body["__type"].as_str().unwrap().to_owned(),
                body["message"].as_str().unwrap().to_owned(),
            ))
        }
    }

    async fn login(&self, client: &str, user: &str, pw: &str) -> Answer {
        self.call(
            "InitiateAuth",
            json!({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": user, "PASSWORD": pw}}),
        )
        .await
    }

    /// Signs in: (access token, refresh token).
    async fn session(&self, client: &str, user: &str) -> (String, String) {
        let r = self.login(client, user, PASSWORD).await.unwrap();
        let r = &r["AuthenticationResult"];
        (
            r["AccessToken"].as_str().unwrap().to_owned(),
            r["RefreshToken"].as_str().unwrap().to_owned(),
        )
    }

    async fn refresh(&self, client: &str, refresh: &str) -> Answer {
        self.call(
            "InitiateAuth",
            json!({"ClientId": client, "AuthFlow": "REFRESH_TOKEN_AUTH",
                   "AuthParameters": {"REFRESH_TOKEN": refresh}}),
        )
        .await
    }

    async fn get_user(&self, access: &str) -> Answer {
        self.call("GetUser", json!({"AccessToken": access})).await
    }

    async fn user(&self, name: &str) {
        self.idp
            .create_user(
                "main",
                name,
                Default::default(),
                Some((&Secret::new(PASSWORD), true)),
            )
            .await
            .unwrap();
    }

    fn verifications(&self) -> u64 {
        self.idp.hasher().verifications()
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = reqwest::Client::new()
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Whether the provider refuses this access token (as every verifier of the gateway asks it).
async fn refused(idp: &IdentityProvider, access: &str) -> bool {
    let c = claims(access);
    idp.is_revoked(
        c["origin_jti"].as_str(),
        c["sub"].as_str().unwrap(),
        c["iat"].as_i64().unwrap(),
    )
    .await
}

// ---- lockout under parallel guesses ----

const PARALLEL_GUESSES: usize = 40;

#[tokio::test]
async fn parallel_wrong_guesses_over_the_json_api_check_at_most_the_limit() {
    let h = Arc::new(harness().await);
    h.user("carol").await;
    let before = h.verifications();
    let tasks: Vec<_> = (0..PARALLEL_GUESSES)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move { h.login("web", "carol", &format!("wrong-{i}")).await })
        })
        .collect();
    let mut locked = 0;
    for t in tasks {
        let (name, message) = t.await.unwrap().unwrap_err();
        assert_eq!(name, "NotAuthorizedException");
        if message == "Password attempts exceeded" {
            locked += 1;
        }
    }
    let checked = h.verifications() - before;
    assert!(
        checked <= LOCK_AFTER as u64,
        "{checked} passwords checked for {PARALLEL_GUESSES} parallel guesses"
    );
    assert!(checked >= 1);
    assert_eq!(locked, PARALLEL_GUESSES - checked as usize);
    // the right password is refused while the lock holds (the clock stands still)
    let (_, message) = h.login("web", "carol", PASSWORD).await.unwrap_err();
    assert_eq!(message, "Password attempts exceeded");
    let user = h
        .idp
        .store()
        .get_user("main", "carol")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.failed_attempts as u64, checked);
}

/// `verify_password_with_lockout` (what the hosted form and the JSON API both use) under 40
/// parallel wrong guesses, on `store_url`.
async fn parallel_guesses_on(store_url: &str) {
    let clock = Clock::fixed(unix_now());
    let idp = provider(store_url, &clock).await;
    idp.create_user(
        "main",
        "dave",
        Default::default(),
        Some((&Secret::new(PASSWORD), true)),
    )
    .await
    .unwrap();
    for name in ["dave", "nobody"] {
        let before = idp.hasher().verifications();
        let tasks: Vec<_> = (0..PARALLEL_GUESSES)
            .map(|i| {
                let idp = idp.clone();
                tokio::spawn(async move {
                    idp.sign_in_password("main", name, &Secret::new(format!("wrong-{i}")))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut invalid = 0;
        for t in tasks {
            match t.await.unwrap() {
                PasswordCheck::Invalid => invalid += 1,
                PasswordCheck::Locked => {}
                PasswordCheck::Valid(_) => panic!("a wrong password was accepted"),
            }
        }
        let checked = idp.hasher().verifications() - before;
        assert!(
            checked <= LOCK_AFTER as u64 && invalid as u64 == checked,
            "{name}: {checked} checks, {invalid} counted of {PARALLEL_GUESSES} parallel guesses"
        );
        // locked now, for the right password too, without a check
        let before = idp.hasher().verifications();
        let again = idp
            .sign_in_password("main", name, &Secret::new(PASSWORD))
            .await
            .unwrap();
        assert!(matches!(again, PasswordCheck::Locked), "{name}: {again:?}");
        assert_eq!(idp.hasher().verifications(), before);
    }
    // once the lock has passed, the right password works and clears the count
    clock.set(clock.now() + 1);
    let ok = idp
        .sign_in_password("main", "dave", &Secret::new(PASSWORD))
        .await
        .unwrap();
    assert!(matches!(ok, PasswordCheck::Valid(_)), "{ok:?}");
    let user = idp.store().get_user("main", "dave").await.unwrap().unwrap();
    assert_eq!((user.failed_attempts, user.locked_until), (0, None));
}

#[tokio::test]
async fn parallel_wrong_guesses_check_at_most_the_limit_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    // a file, so several connections run the guesses at once
    parallel_guesses_on(&format!("sqlite://{}", dir.path().join("idp.db").display())).await;
}

#[tokio::test]
async fn parallel_wrong_guesses_check_at_most_the_limit_on_postgres() {
    let Some(pg) =
        crate::store::tests::TempPostgres::start("parallel_wrong_guesses_on_postgres").await
    else {
        return;
    };
    parallel_guesses_on(&pg.url).await;
}

// ---- the same answers for real and unknown users ----

#[tokio::test]
async fn lockout_answers_are_the_same_for_real_and_unknown_users() {
    let h = harness().await;
    h.user("erin").await;
    let mut runs = Vec::new();
    for name in ["erin", "no-such-user"] {
        let before = h.verifications();
        let mut answers = Vec::new();
        for _ in 0..7 {
            answers.push(h.login("web", name, "wrong-pass1").await.unwrap_err());
        }
        runs.push((answers, h.verifications() - before));
    }
    assert_eq!(runs[0], runs[1], "real vs unknown user");
    let (answers, checks) = &runs[0];
    assert_eq!(*checks, LOCK_AFTER as u64, "the same hashing work");
    assert_eq!(answers[4].1, "Incorrect username or password.");
    assert_eq!(answers[5].1, "Password attempts exceeded");
    assert_eq!(answers[6].1, "Password attempts exceeded");
}

// ---- sign-out ----

#[tokio::test]
async fn global_sign_out_refuses_tokens_of_the_same_second_and_later_sign_ins_work() {
    let h = harness().await;
    h.user("frank").await;
    let mut live = h.idp.subscribe_revocations();
    let (access, refresh) = h.session("web", "frank").await;
    let (other_access, _) = h.session("other", "frank").await;
    h.call("GlobalSignOut", json!({"AccessToken": access}))
        .await
        .unwrap();
    // the tokens were issued in the very second of the sign-out
    assert_eq!(claims(&access)["iat"].as_i64(), Some(h.clock.now()));
    assert!(refused(&h.idp, &access).await);
    assert!(refused(&h.idp, &other_access).await);
    let (name, _) = h.get_user(&other_access).await.unwrap_err();
    assert_eq!(name, "NotAuthorizedException");
    h.refresh("web", &refresh).await.unwrap_err();
    // live connections hear of it
    assert!(matches!(live.try_recv(), Ok(Revocation::User { .. })));
    // a new sign-in, still in the same second, works
    let (fresh, _) = h.session("web", "frank").await;
    assert!(!refused(&h.idp, &fresh).await);
    h.get_user(&fresh).await.unwrap();
}

#[tokio::test]
async fn a_sign_out_in_one_process_refuses_tokens_in_another() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idp.db").display());
    let clock = Clock::fixed(unix_now());
    let a = provider(&url, &clock).await;
    let b = provider(&url, &clock).await;
    a.create_user(
        "main",
        "gina",
        Default::default(),
        Some((&Secret::new(PASSWORD), true)),
    )
    .await
    .unwrap();
    let tokens = b.issue_session("main", "web", "gina", &[]).await.unwrap();
    let access = tokens.access_token.expose().to_owned();
    a.global_sign_out("main", "gina").await.unwrap();
    assert!(refused(&b, &access).await);
    let fresh = b.issue_session("main", "web", "gina", &[]).await.unwrap();
    assert!(!refused(&a, fresh.access_token.expose()).await);
    // the other process's connections hear of it through the revocation log
    let mut live = b.subscribe_revocations();
    assert_eq!(b.poll_revocation_events().await.unwrap().announced, 1);
    assert!(matches!(live.try_recv(), Ok(Revocation::User { .. })));
}

// ---- password changes ----

#[tokio::test]
async fn change_password_ends_every_other_session_and_every_refresh_token() {
    let h = harness().await;
    h.user("hank").await;
    let (access, refresh) = h.session("web", "hank").await;
    let (other_access, other_refresh) = h.session("sticky", "hank").await;
    let mut live = h.idp.subscribe_revocations();
    h.call(
        "ChangePassword",
        json!({"AccessToken": access, "PreviousPassword": PASSWORD,
               "ProposedPassword": "password2"}),
    )
    .await
    .unwrap();
    h.refresh("web", &refresh).await.unwrap_err();
    h.refresh("sticky", &other_refresh).await.unwrap_err();
    assert!(refused(&h.idp, &other_access).await);
    // the caller's own access token lives on until it expires (as in Cognito)
    h.get_user(&access).await.unwrap();
    let Ok(Revocation::Session { origin_jti, .. }) = live.try_recv() else {
        panic!("the other session was not announced");
    };
    assert_eq!(
        Some(origin_jti.as_str()),
        claims(&other_access)["origin_jti"].as_str()
    );
    h.login("web", "hank", "password2").await.unwrap();
}

#[tokio::test]
async fn confirm_forgot_password_ends_every_session() {
    let h = harness().await;
    h.idp
        .create_user(
            "main",
            "ivy",
            [("email".to_owned(), "ivy@example.com".to_owned())].into(),
            Some((&Secret::new(PASSWORD), true)),
        )
        .await
        .unwrap();
    let (access, refresh) = h.session("web", "ivy").await;
    h.call(
        "ForgotPassword",
        json!({"ClientId": "web", "Username": "ivy"}),
    )
    .await
    .unwrap();
    let code = {
        let codes = h.codes.lock().unwrap();
        let d = codes
            .iter()
            .rev()
            .find(|d| d.username == "ivy" && d.purpose == CodePurpose::ForgotPassword)
            .unwrap();
        d.code.expose().to_owned()
    };
    h.call(
        "ConfirmForgotPassword",
        json!({"ClientId": "web", "Username": "ivy", "ConfirmationCode": code,
               "Password": "password2"}),
    )
    .await
    .unwrap();
    h.refresh("web", &refresh).await.unwrap_err();
    assert!(refused(&h.idp, &access).await);
    h.login("web", "ivy", "password2").await.unwrap();
}

#[tokio::test]
async fn admin_set_password_ends_every_session() {
    let h = harness().await;
    h.user("jack").await;
    let (access, refresh) = h.session("sticky", "jack").await;
    crate::manage::set_password(&h.idp, "main", "jack", &Secret::new("password2"), true)
        .await
        .unwrap();
    h.refresh("sticky", &refresh).await.unwrap_err();
    assert!(refused(&h.idp, &access).await);
}

// ---- refresh-token rotation ----

fn public(client: &str) -> ClientAuth {
    ClientAuth {
        client_id: client.to_owned(),
        secret: None,
        basic: false,
    }
}

#[tokio::test]
async fn rotation_replaces_the_refresh_token_and_reuse_ends_the_session() {
    let h = harness().await;
    h.user("kate").await;
    let (access, first) = h.session("web", "kate").await;
    // Cognito API: a new refresh token with every refresh
    let r = h.refresh("web", &first).await.unwrap();
    let second = r["AuthenticationResult"]["RefreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    // OAuth token endpoint: the same
    let (status, body) = h
        .post_form(
            "/pools/main/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "web"),
                ("refresh_token", &second),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let third = body["refresh_token"].as_str().unwrap().to_owned();
    let refreshed_access = body["access_token"].as_str().unwrap().to_owned();
    // the used token is refused: a reuse, which ends the whole session
    let (status, body) = h
        .post_form(
            "/pools/main/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "web"),
                ("refresh_token", &first),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (name, _) = h.refresh("web", &third).await.unwrap_err();
    assert_eq!(name, "NotAuthorizedException");
    assert!(refused(&h.idp, &access).await);
    assert!(refused(&h.idp, &refreshed_access).await);
}

#[tokio::test]
async fn parallel_uses_of_one_refresh_token_succeed_at_most_once() {
    let h = harness().await;
    h.user("liam").await;
    let (_, refresh) = h.session("web", "liam").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let idp = h.idp.clone();
            let token = Secret::new(refresh.clone());
            tokio::spawn(async move { idp.refresh("main", &public("web"), &token).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(OAuthError::InvalidGrant) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(ok <= 1, "{ok} parallel uses of one refresh token succeeded");
}

#[tokio::test]
async fn without_rotation_the_refresh_token_is_kept() {
    let h = harness().await;
    h.user("mia").await;
    for client in ["sticky", "confidential"] {
        let auth = ClientAuth {
            client_id: client.to_owned(),
            secret: (client == "confidential")
                .then(|| Secret::new("confidential-secret-0123456789")),
            basic: false,
        };
        let tokens = h
            .idp
            .issue_session("main", client, "mia", &[])
            .await
            .unwrap();
        let refresh = tokens.refresh_token.unwrap();
        for _ in 0..2 {
            let grant = h.idp.refresh("main", &auth, &refresh).await.unwrap();
            assert!(grant.refresh_token.is_none(), "{client}");
        }
    }
}

// ---- revoking an access token ----

#[tokio::test]
async fn revoking_an_access_token_ends_its_session() {
    let h = harness().await;
    h.user("noah").await;
    let (access, refresh) = h.session("sticky", "noah").await;
    let (kept, _) = h.session("sticky", "noah").await;
    // another client's token: refused, nothing changes
    let (status, body) = h
        .post_form(
            "/pools/main/oauth2/revoke",
            &[("client_id", "web"), ("token", &access)],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(!refused(&h.idp, &access).await);
    let mut live = h.idp.subscribe_revocations();
    let (status, _) = h
        .post_form(
            "/pools/main/oauth2/revoke",
            &[("client_id", "sticky"), ("token", &access)],
        )
        .await;
    assert_eq!(status, 200);
    assert!(refused(&h.idp, &access).await);
    h.refresh("sticky", &refresh).await.unwrap_err();
    assert!(matches!(live.try_recv(), Ok(Revocation::Session { .. })));
    // only that session
    assert!(!refused(&h.idp, &kept).await);
    // garbage and client-credentials tokens
    let (status, _) = h
        .post_form(
            "/pools/main/oauth2/revoke",
            &[("client_id", "sticky"), ("token", "a.b.c")],
        )
        .await;
    assert_eq!(status, 200);
    let m2m = ClientAuth {
        client_id: "m2m".into(),
        secret: Some(Secret::new("m2m-secret-0123456789abcdef")),
        basic: false,
    };
    let grant = h.idp.client_credentials("main", &m2m, None).await.unwrap();
    assert!(matches!(
        h.idp.revoke("main", &m2m, &grant.access_token).await,
        Err(OAuthError::UnsupportedTokenType)
    ));
    // the JSON API's RevokeToken does the same
    h.call("RevokeToken", json!({"ClientId": "sticky", "Token": kept}))
        .await
        .unwrap();
    assert!(refused(&h.idp, &kept).await);
}
