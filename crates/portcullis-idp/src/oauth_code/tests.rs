//! The authorization-code flow over real HTTP: hosted page, CSRF, codes, PKCE, userInfo,
//! logout, and the hostile cases.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_auth::jwt::{JwtOptions, JwtVerifier};
use portcullis_config::{Config, JwtAuthorizer, JwtIssuer, Secret};
use serde_json::Value;

use super::*;
use crate::unix_now;
use crate::{IdpOptions, router};

const ISSUER: &str = "http://localhost:8080/pools/main";
const CALLBACK: &str = "http://localhost:8080/demo/";
const APP_CALLBACK: &str = "http://localhost:8080/app/";
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
password_policy = { min_length = 8, require_digits = true }

[pools.main.clients.web]
name = "Portcullis <chat>"
public = true
callback_urls = ["http://localhost:8080/demo/"]
logout_urls = ["http://localhost:8080/bye"]
allowed_scopes = ["openid", "email", "profile"]

[pools.main.clients.webapp]
secret = "webapp-secret"
grants = ["authorization_code", "refresh_token"]
callback_urls = ["http://localhost:8080/app/"]
allowed_scopes = ["openid", "email"]

[pools.main.clients.nocode]
public = true
grants = ["refresh_token"]
callback_urls = ["http://localhost:8080/demo/"]
allowed_scopes = ["openid"]
"#;

fn config() -> Config {
    config_from(CONFIG)
}

fn config_from(source: &str) -> Config {
    portcullis_config::load_str(source, "test.toml", &|_| None).unwrap()
}

struct Env {
    idp: Arc<IdentityProvider>,
    base: String,
    http: reqwest::Client,
}

async fn env() -> Env {
    env_from(config()).await
}

async fn env_from(config: Config) -> Env {
    // The provider's clock stands still once the signing keys are made (by the system clock),
    // so expiries are decided by the test's moves alone.
    let clock = crate::Clock::fixed(unix_now());
    let idp = IdentityProvider::open_with(
        &config,
        IdpOptions {
            hash_concurrency: 1,
            clock: clock.clone(),
            ..IdpOptions::default()
        },
    )
    .await
    .unwrap();
    clock.set(unix_now());
    let mut attrs = BTreeMap::new();
    attrs.insert("email".to_owned(), "alice@example.com".to_owned());
    attrs.insert("email_verified".to_owned(), "true".to_owned());
    attrs.insert("name".to_owned(), "Alice".to_owned());
    idp.create_user(
        "main",
        "alice",
        attrs,
        Some((&Secret::new("password1"), true)),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(Arc::clone(&idp));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Env {
        idp,
        base: format!("http://{addr}/pools/main"),
        http,
    }
}

/// The hosted page's hidden field `name`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_owned()
}

struct Page {
    html: String,
    cookie: String,
    csrf: String,
    request_id: String,
}

fn authorize_url(base: &str, params: &[(&str, &str)]) -> String {
    append_query(&format!("{base}/oauth2/authorize"), params)
}

fn pkce_params<'a>(client: &'a str, redirect: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("scope", "openid email profile"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

async fn open_page(e: &Env, params: &[(&str, &str)]) -> Page {
    let r = e
        .http
        .get(authorize_url(&e.base, params))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/pools/main"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let html = r.text().await.unwrap();
    assert!(html.contains("autocomplete=\"username\""));
    assert!(html.contains("autocomplete=\"current-password\""));
    assert!(html.contains("<label for=\"password\">"));
    assert!(!html.contains("<script"));
    let csrf = hidden(&html, "csrf");
    let request_id = hidden(&html, "request_id");
    assert_eq!(cookie, format!("portcullis_signin_csrf={csrf}"));
    Page {
        html,
        cookie,
        csrf,
        request_id,
    }
}

async fn post_login(e: &Env, cookie: Option<&str>, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut req = e.http.post(format!("{}/login", e.base)).form(fields);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

async fn login(e: &Env, page: &Page, username: &str, password: &str) -> reqwest::Response {
    post_login(
        e,
        Some(&page.cookie),
        &[
            ("csrf", &page.csrf),
            ("request_id", &page.request_id),
            ("username", username),
            ("password", password),
        ],
    )
    .await
}

/// The `code` of a successful sign-in redirect (checks `state` and the target).
fn code_of(r: &reqwest::Response, redirect: &str) -> String {
    assert_eq!(r.status(), 302);
    let location = r.headers().get("location").unwrap().to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    assert!(location.starts_with(redirect), "{location}");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    q["code"].clone()
}

async fn sign_in(e: &Env, client: &str, redirect: &str) -> String {
    let page = open_page(e, &pkce_params(client, redirect)).await;
    let r = login(e, &page, "alice", "password1").await;
    code_of(&r, redirect)
}

async fn exchange(e: &Env, fields: &[(&str, &str)]) -> (u16, Value) {
    let r = e
        .http
        .post(format!("{}/oauth2/token", e.base))
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn exchange_public(e: &Env, code: &str, redirect: &str, verifier: &str) -> (u16, Value) {
    exchange(
        e,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "web"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
    )
    .await
}

fn remote_verifier(e: &Env, audience: &str) -> JwtVerifier {
    let cfg = JwtAuthorizer {
        cache_ttl: Duration::from_secs(0),
        csrf: None,
        name: "t".into(),
        identity_source: vec!["$request.header.Authorization".into()],
        issuers: vec![JwtIssuer {
            issuer: ISSUER.into(),
            audience: vec![audience.into()],
            jwks_uri: Some(
                portcullis_config::HttpUrl::parse(&format!("{}/.well-known/jwks.json", e.base))
                    .unwrap(),
            ),
            ..JwtIssuer::default()
        }],
        token_use: None,
        principal_claim: None,
    };
    JwtVerifier::new(&cfg, reqwest::Client::new(), JwtOptions::default()).unwrap()
}

#[test]
fn pkce_s256_rfc7636_vector() {
    assert!(pkce_s256_matches(VERIFIER, CHALLENGE));
    assert!(!pkce_s256_matches(
        VERIFIER,
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
    ));
    assert!(!pkce_s256_matches("short", CHALLENGE));
    let other = "x".repeat(43);
    assert!(!pkce_s256_matches(&other, CHALLENGE));
}

#[tokio::test]
async fn full_flow_public_client_with_pkce() {
    let e = env().await;
    let code = sign_in(&e, "web", CALLBACK).await;
    let (status, body) = exchange_public(&e, &code, CALLBACK, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let access = body["access_token"].as_str().unwrap();
    let id = body["id_token"].as_str().unwrap();
    assert!(body["refresh_token"].as_str().is_some());

    // both verify against the JWKS over HTTP, with the right claims
    let v = remote_verifier(&e, "web");
    let at = v.verify(access).await.unwrap();
    assert_eq!(at.token_use.as_deref(), Some("access"));
    assert_eq!(at.claims["client_id"], "web");
    assert_eq!(at.claims["username"], "alice");
    assert_eq!(at.scopes, ["openid", "email", "profile"]);
    let it = v.verify(id).await.unwrap();
    assert_eq!(it.token_use.as_deref(), Some("id"));
    assert_eq!(it.claims["aud"], "web");
    assert_eq!(it.claims["nonce"], "n-456");
    assert_eq!(it.claims["email"], "alice@example.com");
    assert_eq!(it.claims["cognito:username"], "alice");
    assert_eq!(it.subject, at.subject);

    // userInfo, GET and POST
    for post in [false, true] {
        let url = format!("{}/oauth2/userInfo", e.base);
        let req = if post {
            e.http.post(url)
        } else {
            e.http.get(url)
        };
        let r = req.bearer_auth(access).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let info: Value = r.json().await.unwrap();
        assert_eq!(info["sub"], Value::from(at.subject.clone().unwrap()));
        assert_eq!(info["username"], "alice");
        assert_eq!(info["email"], "alice@example.com");
        assert_eq!(info["email_verified"], true);
        assert_eq!(info["name"], "Alice");
    }
    // userInfo refuses a missing, tampered or ID token
    let url = format!("{}/oauth2/userInfo", e.base);
    let r = e.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(www.starts_with("Bearer error=\"invalid_token\""), "{www}");
    let mut tampered = access.to_owned();
    tampered.push('A');
    let r = e
        .http
        .get(&url)
        .bearer_auth(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = e.http.get(&url).bearer_auth(id).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // the refresh token works until the code is replayed; the replay revokes the session
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh_fields = [
        ("grant_type", "refresh_token"),
        ("client_id", "web"),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, _) = exchange(&e, &refresh_fields).await;
    assert_eq!(status, 200);
    let (status, replay) = exchange_public(&e, &code, CALLBACK, VERIFIER).await;
    assert_eq!(status, 400);
    assert_eq!(replay["error"], "invalid_grant");
    let (status, refused) = exchange(&e, &refresh_fields).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    let r = e.http.get(&url).bearer_auth(access).send().await.unwrap();
    assert_eq!(
        r.status(),
        401,
        "access token of a replayed code still accepted"
    );
}

#[tokio::test]
async fn confidential_client_basic_auth() {
    let e = env().await;
    // confidential clients may skip PKCE
    let page = open_page(
        &e,
        &[
            ("response_type", "code"),
            ("client_id", "webapp"),
            ("redirect_uri", APP_CALLBACK),
            ("scope", "openid"),
            ("state", "st-123"),
        ],
    )
    .await;
    let code = code_of(&login(&e, &page, "alice", "password1").await, APP_CALLBACK);
    // without its secret: invalid_client
    let (status, body) = exchange(
        &e,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "webapp"),
            ("code", &code),
            ("redirect_uri", APP_CALLBACK),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let r = e
        .http
        .post(format!("{}/oauth2/token", e.base))
        .basic_auth("webapp", Some("webapp-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", APP_CALLBACK),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert!(body["id_token"].is_string());
    assert!(body["refresh_token"].is_string());
}

#[tokio::test]
async fn csrf_is_enforced() {
    let e = env().await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let rid = page.request_id.as_str();
    let wrong = "A".repeat(43);
    // missing field
    let r = post_login(
        &e,
        Some(&page.cookie),
        &[
            ("request_id", rid),
            ("username", "alice"),
            ("password", "password1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("location").is_none());
    let attempt = |csrf: String| {
        vec![
            ("request_id", rid.to_owned()),
            ("csrf", csrf),
            ("username", "alice".to_owned()),
            ("password", "password1".to_owned()),
        ]
    };
    let send = |cookie: Option<String>, fields: Vec<(&'static str, String)>| {
        let mut req = e.http.post(format!("{}/login", e.base)).form(&fields);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    // wrong field
    let r = send(Some(page.cookie.clone()), attempt(wrong.clone()))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // right field, no cookie (cross-site POST)
    let r = send(None, attempt(page.csrf.clone())).await.unwrap();
    assert_eq!(r.status(), 403);
    // matching attacker cookie + field, but not the token bound to the request
    let r = send(
        Some(format!("portcullis_signin_csrf={wrong}")),
        attempt(wrong.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    // unknown request id
    let r = post_login(
        &e,
        Some(&page.cookie),
        &[
            ("csrf", page.csrf.as_str()),
            ("request_id", "nope"),
            ("username", "alice"),
            ("password", "password1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    // the genuine cookie and field, plus a second cookie of the same name tossed in by a
    // sibling subdomain: refused rather than guessed at (and the request is not used up)
    for tossed in [
        format!("{}; portcullis_signin_csrf={wrong}", page.cookie),
        format!("portcullis_signin_csrf={wrong}; {}", page.cookie),
    ] {
        let r = send(Some(tossed), attempt(page.csrf.clone()))
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    // authorize does not adopt a tossed token either: the page gets a fresh one
    let r = e
        .http
        .get(authorize_url(&e.base, &pkce_params("web", CALLBACK)))
        .header(
            "cookie",
            format!("portcullis_signin_csrf={wrong}; portcullis_signin_csrf={wrong}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert_ne!(hidden(&html, "csrf"), wrong);
    // the genuine form still works
    let r = login(&e, &page, "alice", "password1").await;
    code_of(&r, CALLBACK);
    // and the request is single-use
    let r = login(&e, &page, "alice", "password1").await;
    assert_eq!(r.status(), 400);
    assert!(page.html.contains(&page.request_id));
}

#[tokio::test]
async fn failed_sign_ins_are_generic() {
    let e = env().await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let wrong = login(&e, &page, "alice", "wrong-password1").await;
    assert_eq!(wrong.status(), 200);
    let wrong = wrong.text().await.unwrap();
    let unknown = login(&e, &page, "mallory", "password1")
        .await
        .text()
        .await
        .unwrap();
    assert!(wrong.contains("Incorrect username or password."));
    assert!(unknown.contains("Incorrect username or password."));
    // the request survives failures
    code_of(&login(&e, &page, "alice", "password1").await, CALLBACK);
    // disabled users get the same answer
    e.idp.disable_user("main", "alice").await.unwrap();
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = login(&e, &page, "alice", "password1").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Incorrect username or password.")
    );
    // unconfirmed users learn it (only with the right password)
    e.idp
        .create_user("main", "bob", BTreeMap::new(), None)
        .await
        .unwrap();
    e.idp
        .set_password("main", "bob", &Secret::new("password2"), true)
        .await
        .unwrap();
    let mut bob = e
        .idp
        .store()
        .get_user("main", "bob")
        .await
        .unwrap()
        .unwrap();
    bob.status = crate::UserStatus::Unconfirmed;
    e.idp.store().update_user(&bob).await.unwrap();
    let r = login(&e, &page, "bob", "password2").await;
    assert!(r.text().await.unwrap().contains("not confirmed"));
    let r = login(&e, &page, "bob", "nope-password3").await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Incorrect username or password.")
    );
}

#[tokio::test]
async fn force_change_password_step() {
    let e = env().await;
    e.idp
        .set_password("main", "alice", &Secret::new("temporary1"), false)
        .await
        .unwrap();
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = login(&e, &page, "alice", "temporary1").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("autocomplete=\"new-password\""), "{html}");
    let step = |new: &'static str, confirm: &'static str| {
        vec![
            ("csrf", page.csrf.clone()),
            ("request_id", page.request_id.clone()),
            ("new_password", new.to_owned()),
            ("confirm_password", confirm.to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        e.http
            .post(format!("{}/login", e.base))
            .header("cookie", &page.cookie)
            .form(&fields)
            .send()
    };
    let r = post(step("newpassword9", "different9")).await.unwrap();
    assert!(r.text().await.unwrap().contains("do not match"));
    let r = post(step("short", "short")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("location").is_none());
    let r = post(step("newpassword9", "newpassword9")).await.unwrap();
    code_of(&r, CALLBACK);
    assert!(
        e.idp
            .check_password("main", "alice", &Secret::new("newpassword9"))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn new_password_step_needs_the_old_password_first() {
    let e = env().await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = post_login(
        &e,
        Some(&page.cookie),
        &[
            ("csrf", page.csrf.as_str()),
            ("request_id", page.request_id.as_str()),
            ("new_password", "newpassword9"),
            ("confirm_password", "newpassword9"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn pkce_mismatch_and_missing_verifier() {
    let e = env().await;
    let code = sign_in(&e, "web", CALLBACK).await;
    let other = "a".repeat(43);
    let (status, body) = exchange_public(&e, &code, CALLBACK, &other).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // the failed attempt burnt the code
    let (status, _) = exchange_public(&e, &code, CALLBACK, VERIFIER).await;
    assert_eq!(status, 400);
    // no verifier at all
    let code = sign_in(&e, "web", CALLBACK).await;
    let (status, body) = exchange(
        &e,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "web"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn authorize_errors_redirect_only_to_registered_uris() {
    let e = env().await;
    // missing PKCE for a public client: redirected error with state
    let r = e
        .http
        .get(authorize_url(
            &e.base,
            &[
                ("response_type", "code"),
                ("client_id", "web"),
                ("redirect_uri", CALLBACK),
                ("state", "st-123"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(CALLBACK), "{location}");
    assert!(location.contains("error=invalid_request"), "{location}");
    assert!(location.contains("state=st-123"), "{location}");
    // plain method, disallowed scope, unsupported response type, client without the grant
    for (params, error) in [
        (
            vec![
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("scope", "openid phone"),
            ],
            "invalid_scope",
        ),
    ] {
        let mut all = vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
        ];
        all.extend(params);
        let r = e
            .http
            .get(authorize_url(&e.base, &all))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let location = r.headers()["location"].to_str().unwrap();
        assert!(location.contains(&format!("error={error}")), "{location}");
    }
    let mut p = pkce_params("nocode", CALLBACK);
    p.retain(|(k, _)| *k != "scope");
    let r = e.http.get(authorize_url(&e.base, &p)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=unauthorized_client")
    );

    // unregistered redirect_uri, unknown client, missing redirect: HTML page, never a redirect
    for params in [
        pkce_params("web", "http://evil.example/cb"),
        pkce_params("web", "http://localhost:8080/demo/extra"),
        pkce_params("unknown", CALLBACK),
        pkce_params("webapp", CALLBACK),
        vec![("response_type", "code"), ("client_id", "web")],
    ] {
        let r = e
            .http
            .get(authorize_url(&e.base, &params))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{params:?}");
        assert!(r.headers().get("location").is_none());
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = r.text().await.unwrap();
        assert!(!html.contains("evil.example"));
    }
    // repeated parameters
    let url = format!(
        "{}&client_id=web",
        authorize_url(&e.base, &pkce_params("web", CALLBACK))
    );
    let r = e.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn redirect_uri_must_match_at_token_time() {
    let e = env().await;
    let code = sign_in(&e, "web", CALLBACK).await;
    let (status, body) = exchange_public(&e, &code, "http://localhost:8080/other/", VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = exchange(
        &e,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "web"),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn expired_code_is_refused() {
    let e = env().await;
    let code = sign_in(&e, "web", CALLBACK).await;
    e.idp.code_flow().advance_clock(CODE_TTL_SECS + 1);
    let (status, body) = exchange_public(&e, &code, CALLBACK, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // a code used just in time works
    let code = sign_in(&e, "web", CALLBACK).await;
    e.idp.code_flow().advance_clock(CODE_TTL_SECS - 5);
    let (status, _) = exchange_public(&e, &code, CALLBACK, VERIFIER).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn expired_sign_in_request_is_refused() {
    let e = env().await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    e.idp.code_flow().advance_clock(PENDING_TTL_SECS + 1);
    let r = login(&e, &page, "alice", "password1").await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn code_of_another_client_is_refused() {
    let e = env().await;
    let code = sign_in(&e, "web", CALLBACK).await;
    let r = e
        .http
        .post(format!("{}/oauth2/token", e.base))
        .basic_auth("webapp", Some("webapp-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    // an unknown client
    let (status, body) = exchange(
        &e,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "ghost"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // the rightful client can still redeem it
    let (status, _) = exchange_public(&e, &code, CALLBACK, VERIFIER).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn logout_validates_and_clears_cookie() {
    let e = env().await;
    let r = e
        .http
        .get(format!(
            "{}/logout?client_id=web&logout_uri=http%3A%2F%2Flocalhost%3A8080%2Fbye",
            e.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "http://localhost:8080/bye");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("portcullis_signin_csrf=;"), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    for q in [
        "client_id=web&logout_uri=http%3A%2F%2Fevil.example%2F",
        "client_id=webapp&logout_uri=http%3A%2F%2Flocalhost%3A8080%2Fbye",
        "logout_uri=http%3A%2F%2Flocalhost%3A8080%2Fbye",
    ] {
        let r = e
            .http
            .get(format!("{}/logout?{q}", e.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        assert!(r.headers().get("location").is_none());
    }
}

#[tokio::test]
async fn discovery_lists_the_endpoints() {
    let e = env().await;
    let d: Value = e
        .http
        .get(format!("{}/.well-known/openid-configuration", e.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["authorization_endpoint"],
        format!("{ISSUER}/oauth2/authorize")
    );
    assert_eq!(d["userinfo_endpoint"], format!("{ISSUER}/oauth2/userInfo"));
    assert_eq!(d["end_session_endpoint"], format!("{ISSUER}/logout"));
    assert_eq!(d["code_challenge_methods_supported"][0], "S256");
    // the code's URL-safe alphabet
    let code = sign_in(&e, "web", CALLBACK).await;
    assert_eq!(URL_SAFE_NO_PAD.decode(&code).unwrap().len(), 32);
}

mod flood;
mod hosted_mfa;
mod hosted_page;
mod triggers;
mod web_session;

#[tokio::test]
async fn the_hosted_page_counts_failures_and_honours_lockout() {
    let e = env().await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    for _ in 0..crate::LOCK_AFTER {
        let r = login(&e, &page, "alice", "wrong-password-1").await;
        assert_eq!(r.status(), 200, "a failure shows the form again");
    }
    let user = e
        .idp
        .store()
        .get_user("main", "alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.failed_attempts, crate::LOCK_AFTER);
    assert!(
        user.locked_until.is_some(),
        "locked after {} failures",
        crate::LOCK_AFTER
    );

    // While locked, even the right password is refused, without a code.
    let mut locked = user;
    locked.locked_until = Some(unix_now() + 600);
    e.idp.store().update_user(&locked).await.unwrap();
    let r = login(&e, &page, "alice", "password1").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("Too many failed attempts"));
}
