//! Facade and HTTP tests: token claims, verification by the gateway's verifier (in-process and
//! over the real JWKS endpoint), the token and revocation endpoints, rotation, admin operations.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_auth::jwt::{JwtOptions, JwtVerifier};
use portcullis_config::{Config, JwtAuthorizer, JwtIssuer, Secret};
use serde_json::{Value, json};

use super::*;

const ISSUER: &str = "http://localhost:8080/pools/main";

fn config(store_url: &str) -> Config {
    let source = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
public_url = "http://localhost:8080"

[store]
url = "{store_url}"

[pools.main]
groups = ["admins", "members"]
custom_attributes = {{ tier = {{}} }}
password_policy = {{ min_length = 8, require_digits = true }}
access_token_ttl = "1h"
id_token_ttl = "2h"

[pools.main.resource_servers.premium-content]
scopes = ["read", "write"]

[pools.main.clients.web]
public = true
callback_urls = ["http://localhost:8080/demo/"]
allowed_scopes = ["openid", "email", "profile"]

[pools.main.clients.reporting-service]
secret = "reporting-secret"
grants = ["client_credentials"]
allowed_scopes = ["premium-content/read"]

[pools.main.clients.webapp]
secret = "webapp-secret"
grants = ["authorization_code", "refresh_token"]
callback_urls = ["http://localhost:8080/app/"]
allowed_scopes = ["openid", "email"]
"#
    );
    portcullis_config::load_str(&source, "test.toml", &|_| None).unwrap()
}

fn test_options(grace: u64) -> IdpOptions {
    IdpOptions {
        key_grace: Duration::from_secs(grace),
        hash_concurrency: 1,
        ..IdpOptions::default()
    }
}

async fn idp_with(grace: u64) -> Arc<IdentityProvider> {
    IdentityProvider::open_with(&config("sqlite::memory:"), test_options(grace))
        .await
        .unwrap()
}

async fn idp() -> Arc<IdentityProvider> {
    idp_with(0).await
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

async fn alice(idp: &IdentityProvider) -> UserRecord {
    let attrs = BTreeMap::from([
        ("email".to_owned(), "alice@example.com".to_owned()),
        ("email_verified".to_owned(), "true".to_owned()),
        ("custom:tier".to_owned(), "gold".to_owned()),
    ]);
    let pw = Secret::new("password1");
    let user = idp
        .create_user("main", "alice", attrs, Some((&pw, true)))
        .await
        .unwrap();
    idp.add_user_to_group("main", "alice", "admins")
        .await
        .unwrap();
    user
}

fn verifier(audience: Vec<String>, jwks_uri: Option<String>) -> JwtVerifier {
    let cfg = JwtAuthorizer {
        cache_ttl: std::time::Duration::from_secs(300),
        csrf: None,
        name: "t".into(),
        identity_source: vec!["$request.header.Authorization".into()],
        issuers: vec![JwtIssuer {
            issuer: ISSUER.into(),
            audience,
            jwks_uri: jwks_uri.map(|u| portcullis_config::HttpUrl::parse(&u).unwrap()),
            ..JwtIssuer::default()
        }],
        token_use: None,
        principal_claim: None,
    };
    JwtVerifier::new(&cfg, reqwest::Client::new(), JwtOptions::default()).unwrap()
}

async fn serve(idp: Arc<IdentityProvider>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(idp).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn post_form(
    addr: SocketAddr,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        req = req.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

fn error_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn user_token_claims_are_exactly_cognitos() {
    let idp = idp().await;
    let user = alice(&idp).await;
    let scopes = vec!["openid".to_owned(), "email".to_owned()];
    let s = idp
        .issue_session("main", "webapp", "alice", &scopes)
        .await
        .unwrap();
    assert_eq!(s.expires_in, 3600);
    let header = decode_part(s.access_token.expose(), 0);
    assert_eq!(keys_of(&header), sorted(&["kid", "alg"]));
    assert_eq!(header["alg"], "RS256");

    let a = decode_part(s.access_token.expose(), 1);
    assert_eq!(
        keys_of(&a),
        sorted(&[
            "sub",
            "cognito:groups",
            "iss",
            "version",
            "client_id",
            "origin_jti",
            "event_id",
            "token_use",
            "scope",
            "auth_time",
            "exp",
            "iat",
            "jti",
            "username"
        ])
    );
    assert_eq!(a["sub"], json!(user.sub));
    assert_eq!(a["cognito:groups"], json!(["admins"]));
    assert_eq!(a["iss"], json!(ISSUER));
    assert_eq!(a["version"], json!(2));
    assert_eq!(a["client_id"], json!("webapp"));
    assert_eq!(a["token_use"], json!("access"));
    assert_eq!(a["scope"], json!("openid email"));
    assert_eq!(a["username"], json!("alice"));
    assert_eq!(
        a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(a["auth_time"], a["iat"]);

    let i = decode_part(s.id_token.expose(), 1);
    assert_eq!(
        keys_of(&i),
        sorted(&[
            "sub",
            "cognito:groups",
            "email_verified",
            "iss",
            "cognito:username",
            "origin_jti",
            "aud",
            "event_id",
            "token_use",
            "auth_time",
            "exp",
            "iat",
            "jti",
            "email",
            "custom:tier"
        ])
    );
    assert_eq!(i["sub"], json!(user.sub));
    assert_eq!(i["aud"], json!("webapp"));
    assert_eq!(i["email_verified"], json!(true));
    assert_eq!(i["email"], json!("alice@example.com"));
    assert_eq!(i["custom:tier"], json!("gold"));
    assert_eq!(i["cognito:username"], json!("alice"));
    assert_eq!(i["token_use"], json!("id"));
    assert_eq!(
        i["exp"].as_i64().unwrap() - i["iat"].as_i64().unwrap(),
        7200
    );
    // one session: same origin_jti and event_id, distinct jti
    assert_eq!(i["origin_jti"], a["origin_jti"]);
    assert_eq!(i["event_id"], a["event_id"]);
    assert_ne!(i["jti"], a["jti"]);

    // without groups, cognito:groups is absent from both
    idp.remove_user_from_group("main", "alice", "admins")
        .await
        .unwrap();
    let s = idp
        .issue_session("main", "webapp", "alice", &scopes)
        .await
        .unwrap();
    assert!(
        decode_part(s.access_token.expose(), 1)
            .get("cognito:groups")
            .is_none()
    );
    assert!(
        decode_part(s.id_token.expose(), 1)
            .get("cognito:groups")
            .is_none()
    );
}

#[tokio::test]
async fn minted_tokens_verify_in_process_and_over_http_jwks() {
    let idp = idp().await;
    alice(&idp).await;
    let s = idp
        .issue_session("main", "webapp", "alice", &["openid".to_owned()])
        .await
        .unwrap();
    let cc = idp
        .client_credentials(
            "main",
            &ClientAuth {
                client_id: "reporting-service".into(),
                secret: Some(Secret::new("reporting-secret")),
                basic: true,
            },
            None,
        )
        .await
        .unwrap();

    // in process
    let local = verifier(vec!["webapp".into(), "reporting-service".into()], None);
    local.set_local_keys(ISSUER, idp.key_source("main"));
    let v = local.verify(s.access_token.expose()).await.unwrap();
    assert_eq!(v.groups, ["admins"]);
    assert_eq!(v.scopes, ["openid"]);
    let v = local.verify(s.id_token.expose()).await.unwrap();
    assert_eq!(v.token_use.as_deref(), Some("id"));
    let v = local.verify(cc.access_token.expose()).await.unwrap();
    assert_eq!(v.scopes, ["premium-content/read"]);
    // audience enforced: the webapp-only verifier refuses the M2M token
    let webapp_only = verifier(vec!["webapp".into()], None);
    webapp_only.set_local_keys(ISSUER, idp.key_source("main"));
    assert!(webapp_only.verify(cc.access_token.expose()).await.is_err());
    // a tampered token fails
    let mut t = s.access_token.expose().to_owned();
    t.push('A');
    assert!(local.verify(&t).await.is_err());

    // over HTTP
    let addr = serve(Arc::clone(&idp)).await;
    let remote = verifier(
        vec!["webapp".into()],
        Some(format!("http://{addr}/pools/main/.well-known/jwks.json")),
    );
    let v = remote.verify(s.access_token.expose()).await.unwrap();
    assert_eq!(v.issuer, ISSUER);

    // the JWKS document itself
    let resp = reqwest::get(format!("http://{addr}/pools/main/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let jwks: Value = resp.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(key["kid"], decode_part(s.access_token.expose(), 0)["kid"]);
    assert!(!jwks.to_string().contains("\"d\""));
}

#[tokio::test]
async fn discovery_document() {
    let idp = idp().await;
    let addr = serve(idp).await;
    let doc: Value = reqwest::get(format!(
        "http://{addr}/pools/main/.well-known/openid-configuration"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["token_endpoint"], format!("{ISSUER}/oauth2/token"));
    assert_eq!(
        doc["revocation_endpoint"],
        format!("{ISSUER}/oauth2/revoke")
    );
    assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(
        doc["userinfo_endpoint"],
        format!("{ISSUER}/oauth2/userInfo")
    );
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{ISSUER}/oauth2/authorize")
    );
    assert_eq!(doc["end_session_endpoint"], format!("{ISSUER}/logout"));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert!(
        doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("premium-content/write"))
    );
    let missing = reqwest::get(format!("http://{addr}/pools/nope/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn client_credentials_over_http() {
    let idp = idp().await;
    let addr = serve(Arc::clone(&idp)).await;
    let token = "/pools/main/oauth2/token";
    let basic = Some(("reporting-service", "reporting-secret"));

    // seed 004: allowed read → token with premium-content/read
    let (status, headers, body) = post_form(
        addr,
        token,
        basic,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "premium-content/read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        keys_of(&v),
        sorted(&["access_token", "token_type", "expires_in"])
    );
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    let claims = decode_part(v["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        keys_of(&claims),
        sorted(&[
            "sub",
            "token_use",
            "scope",
            "auth_time",
            "iss",
            "exp",
            "iat",
            "version",
            "jti",
            "client_id"
        ])
    );
    assert_eq!(claims["sub"], "reporting-service");
    assert_eq!(claims["client_id"], "reporting-service");
    assert_eq!(claims["scope"], "premium-content/read");
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["version"], 2);
    assert_eq!(claims["iss"], ISSUER);

    // no scope → all allowed custom scopes; form (client_secret_post) auth works too
    let (status, _, body) = post_form(
        addr,
        token,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "reporting-service"),
            ("client_secret", "reporting-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        decode_part(v["access_token"].as_str().unwrap(), 1)["scope"],
        "premium-content/read"
    );

    // asking for write (exists, not allowed) and for an unknown scope → invalid_scope
    for scope in [
        "premium-content/write",
        "premium-content/read premium-content/write",
        "x/y",
    ] {
        let (status, _, body) = post_form(
            addr,
            token,
            basic,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_eq!(
            (status, error_of(&body).as_str()),
            (400, "invalid_scope"),
            "{scope}"
        );
    }

    // wrong secret (basic and form), unknown client → 401 invalid_client + WWW-Authenticate
    let clients_before = idp.list_clients("main").await.unwrap();
    for (basic, form) in [
        (Some(("reporting-service", "wrong")), vec![]),
        (
            None,
            vec![
                ("client_id", "reporting-service"),
                ("client_secret", "wrong"),
            ],
        ),
        (None, vec![("client_id", "reporting-service")]),
        (Some(("nobody", "reporting-secret")), vec![]),
    ] {
        let mut form = form;
        form.push(("grant_type", "client_credentials"));
        let (status, headers, body) = post_form(addr, token, basic, &form).await;
        assert_eq!((status, error_of(&body).as_str()), (401, "invalid_client"));
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert!(!body.contains("access_token"));
    }
    assert_eq!(idp.list_clients("main").await.unwrap(), clients_before);

    // public client asking for client_credentials → unauthorized_client
    let (status, _, body) = post_form(
        addr,
        token,
        None,
        &[("grant_type", "client_credentials"), ("client_id", "web")],
    )
    .await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (400, "unauthorized_client")
    );
    // confidential client without the grant → unauthorized_client
    let (status, _, body) = post_form(
        addr,
        token,
        Some(("webapp", "webapp-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (400, "unauthorized_client")
    );

    // malformed requests
    let (status, _, body) = post_form(addr, token, basic, &[("grant_type", "password")]).await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (400, "unsupported_grant_type")
    );
    let (status, _, body) = post_form(addr, token, basic, &[("scope", "x")]).await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_request"));
    let (status, _, body) = post_form(
        addr,
        token,
        basic,
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_request"));
    let (status, _, body) = post_form(
        addr,
        token,
        basic,
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "reporting-secret"),
        ],
    )
    .await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_request"));
    let big = "x".repeat(20_000);
    let (status, _, body) = post_form(
        addr,
        token,
        basic,
        &[("grant_type", "client_credentials"), ("pad", &big)],
    )
    .await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_request"));
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}{token}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn token_endpoint_rate_limit_per_ip() {
    // rate_limit_per_ip = 1: bursts of 2, then one request per second
    let mut limited = config("sqlite::memory:");
    limited.pools.get_mut("main").unwrap().rate_limit_per_ip = 1;
    let idp = IdentityProvider::open_with(&limited, test_options(0))
        .await
        .unwrap();
    let addr = serve(idp).await;
    let token = "/pools/main/oauth2/token";
    let form = [("grant_type", "client_credentials")];
    let basic = Some(("reporting-service", "reporting-secret"));
    assert_eq!(post_form(addr, token, basic, &form).await.0, 200);
    assert_eq!(post_form(addr, token, basic, &form).await.0, 200);
    // the bucket refills at 1/s: one of the next requests is refused (all of them, unless
    // this machine stalls for a second between two of them)
    let mut refused = None;
    for _ in 0..10 {
        let (status, headers, body) = post_form(addr, token, basic, &form).await;
        if status == 429 {
            refused = Some((headers, body));
            break;
        }
    }
    let (headers, body) = refused.expect("no 429 within 10 requests at 1 request/s");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "slow_down");
    assert!(body["error_description"].is_string());
    // the limit is per pool: revocation in the same pool is limited too
    let (status, _, _) = post_form(
        addr,
        "/pools/main/oauth2/revoke",
        basic,
        &[("token", "unknown")],
    )
    .await;
    assert_eq!(status, 429);
    // and so is the hosted login form (an HTML page for the browser)
    let (status, headers, _) =
        post_form(addr, "/pools/main/login", None, &[("username", "x")]).await;
    assert_eq!(status, 429);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // rate_limit_per_ip = 0: no limit at all
    let mut off = config("sqlite::memory:");
    off.pools.get_mut("main").unwrap().rate_limit_per_ip = 0;
    let idp = IdentityProvider::open_with(&off, test_options(0))
        .await
        .unwrap();
    assert!(idp.pool("main").unwrap().limiter.is_none());
    let addr = serve(idp).await;
    for _ in 0..20 {
        assert_eq!(post_form(addr, token, basic, &form).await.0, 200);
    }
}

#[tokio::test]
async fn refresh_tokens_and_revocation() {
    let idp = idp().await;
    let user = alice(&idp).await;
    let addr = serve(Arc::clone(&idp)).await;
    let token = "/pools/main/oauth2/token";
    let webapp = Some(("webapp", "webapp-secret"));
    let s = idp
        .issue_session("main", "webapp", "alice", &["openid".to_owned()])
        .await
        .unwrap();
    let refresh = s.refresh_token.clone().unwrap();
    let origin = decode_part(s.access_token.expose(), 1)["origin_jti"].clone();
    // stored hashed only
    let stored = idp
        .store()
        .get_refresh_token(&tokens::refresh_token_hash(refresh.expose()))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(stored.token_hash.0, refresh.expose().as_bytes());

    // valid → new access + id, no refresh token, same origin_jti and auth_time
    let (status, _, body) = post_form(
        addr,
        token,
        webapp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        keys_of(&v),
        sorted(&["access_token", "id_token", "token_type", "expires_in"])
    );
    let a = decode_part(v["access_token"].as_str().unwrap(), 1);
    assert_eq!(a["origin_jti"], origin);
    assert_eq!(a["sub"], json!(user.sub));
    assert_eq!(
        decode_part(v["id_token"].as_str().unwrap(), 1)["aud"],
        "webapp"
    );

    // public client: client_id only
    let pub_session = idp
        .issue_session("main", "web", "alice", &["openid".to_owned()])
        .await
        .unwrap();
    let pub_refresh = pub_session.refresh_token.unwrap();
    let (status, _, body) = post_form(
        addr,
        token,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("refresh_token", pub_refresh.expose()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // wrong client (valid credentials, someone else's token) → invalid_grant
    let (status, _, body) = post_form(
        addr,
        token,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("refresh_token", refresh.expose()),
        ],
    )
    .await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_grant"));
    // unknown token → invalid_grant
    let (status, _, body) = post_form(
        addr,
        token,
        webapp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "bm90LWEtdG9rZW4"),
        ],
    )
    .await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_grant"));

    // expired → invalid_grant
    let expired = tokens::random_token().unwrap();
    let mut record = stored.clone();
    record.token_hash = store::SecretBytes(tokens::refresh_token_hash(&expired));
    record.origin_jti = "expired-session".into();
    record.expires_at = unix_now() - 1;
    idp.store().insert_refresh_token(&record).await.unwrap();
    let (status, _, body) = post_form(
        addr,
        token,
        webapp,
        &[("grant_type", "refresh_token"), ("refresh_token", &expired)],
    )
    .await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_grant"));

    // revoke by another client → refused, nothing changes
    let (status, _, body) = post_form(
        addr,
        "/pools/main/oauth2/revoke",
        None,
        &[("client_id", "web"), ("token", refresh.expose())],
    )
    .await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_grant"));
    assert!(!idp.is_revoked(origin.as_str(), &user.sub, unix_now()).await);
    // revoke with the wrong secret → 401
    let (status, _, _) = post_form(
        addr,
        "/pools/main/oauth2/revoke",
        Some(("webapp", "nope")),
        &[("token", refresh.expose())],
    )
    .await;
    assert_eq!(status, 401);
    // missing token → invalid_request
    let (status, _, body) =
        post_form(addr, "/pools/main/oauth2/revoke", webapp, &[("x", "y")]).await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_request"));

    // revoke → 200 empty; the refresh token and its session are dead
    let (status, _, body) = post_form(
        addr,
        "/pools/main/oauth2/revoke",
        webapp,
        &[("token", refresh.expose())],
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, _, body) = post_form(
        addr,
        token,
        webapp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
        ],
    )
    .await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_grant"));
    assert!(idp.is_revoked(origin.as_str(), &user.sub, unix_now()).await);
    // the other session is unaffected
    let other = decode_part(pub_session.access_token.expose(), 1)["origin_jti"].clone();
    assert!(!idp.is_revoked(other.as_str(), &user.sub, unix_now()).await);
    // revoking an unknown / already revoked token is still 200
    let (status, _, _) = post_form(
        addr,
        "/pools/main/oauth2/revoke",
        webapp,
        &[("token", refresh.expose())],
    )
    .await;
    assert_eq!(status, 200);

    // disabling the user revokes everything and refresh fails
    idp.disable_user("main", "alice").await.unwrap();
    assert!(idp.is_revoked(other.as_str(), &user.sub, unix_now()).await);
    let (status, _, body) = post_form(
        addr,
        token,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("refresh_token", pub_refresh.expose()),
        ],
    )
    .await;
    assert_eq!((status, error_of(&body).as_str()), (400, "invalid_grant"));
}

#[tokio::test]
async fn revocation_rules() {
    let idp = idp().await;
    let user = alice(&idp).await;
    let now = unix_now();
    assert!(!idp.is_revoked(None, &user.sub, now).await);
    // client-credentials tokens: sub is the client id
    assert!(!idp.is_revoked(None, "reporting-service", now).await);
    // unknown sub (deleted user) → revoked
    assert!(
        idp.is_revoked(None, "00000000-0000-4000-8000-000000000000", now)
            .await
    );
    idp.global_sign_out("main", "alice").await.unwrap();
    assert!(idp.is_revoked(None, &user.sub, now - 1).await);
    assert!(!idp.is_revoked(None, &user.sub, unix_now() + 1).await);
    idp.delete_user("main", "alice").await.unwrap();
    assert!(idp.is_revoked(None, &user.sub, unix_now() + 1).await);
}

#[tokio::test]
async fn rotation_publishes_before_signing() {
    // grace 60 s: the new key is in the JWKS but the old one still signs
    let idp = idp_with(60).await;
    let sign_kid = |idp: &Arc<IdentityProvider>| {
        let idp = Arc::clone(idp);
        async move {
            let g = idp
                .client_credentials(
                    "main",
                    &ClientAuth {
                        client_id: "reporting-service".into(),
                        secret: Some(Secret::new("reporting-secret")),
                        basic: false,
                    },
                    None,
                )
                .await
                .unwrap();
            decode_part(g.access_token.expose(), 0)["kid"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let jwks_kids = |idp: &IdentityProvider| -> Vec<String> {
        idp.key_source("main")
            .jwks()
            .into_iter()
            .filter_map(|k| k.kid)
            .collect()
    };
    let old = sign_kid(&idp).await;
    assert_eq!(jwks_kids(&idp), std::slice::from_ref(&old));
    let new = idp.rotate_keys("main").await.unwrap();
    assert_ne!(new, old);
    let kids = jwks_kids(&idp);
    assert!(kids.contains(&old) && kids.contains(&new), "{kids:?}");
    assert_eq!(sign_kid(&idp).await, old);

    // grace 0: the new key signs at once; the old stays published
    let idp = idp_with(0).await;
    let old = sign_kid(&idp).await;
    let new = idp.rotate_keys("main").await.unwrap();
    assert_eq!(sign_kid(&idp).await, new);
    let kids = jwks_kids(&idp);
    assert!(kids.contains(&old) && kids.contains(&new), "{kids:?}");
}

#[tokio::test]
async fn keys_persist_across_restarts_and_secrets_are_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idp.db").display());
    let first = IdentityProvider::open_with(&config(&url), test_options(0))
        .await
        .unwrap();
    let kids: Vec<_> = first.key_source("main").jwks();
    let client = first
        .store()
        .get_client("reporting-service")
        .await
        .unwrap()
        .unwrap();
    let hash = client.secret_hash.clone().unwrap();
    assert_eq!(hash.0.len(), 32);
    assert!(!format!("{client:?}").contains("reporting-secret"));
    drop(first);
    let second = IdentityProvider::open_with(&config(&url), test_options(0))
        .await
        .unwrap();
    assert_eq!(second.key_source("main").jwks(), kids);
    // same pepper → same hash; the raw secret is nowhere in the database file
    let again = second
        .store()
        .get_client("reporting-service")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.secret_hash, Some(hash));
    let raw = std::fs::read(dir.path().join("idp.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("idp.db-wal")).unwrap_or_default();
    for bytes in [raw, wal] {
        assert!(!bytes.windows(16).any(|w| w == b"reporting-secret"));
    }
}

#[tokio::test]
async fn admin_operations() {
    let idp = idp().await;
    let pw = Secret::new("password1");
    // policy: digits required, min 8
    assert!(matches!(
        idp.create_user(
            "main",
            "bob",
            BTreeMap::new(),
            Some((&Secret::new("password"), true))
        )
        .await,
        Err(IdpError::InvalidPassword(PolicyViolation::NoDigit))
    ));
    assert!(matches!(
        idp.create_user("main", "bad name", BTreeMap::new(), None)
            .await,
        Err(IdpError::InvalidParameter(_))
    ));
    assert!(matches!(
        idp.create_user("nopool", "bob", BTreeMap::new(), None)
            .await,
        Err(IdpError::UnknownPool(_))
    ));
    let bob = idp
        .create_user("main", "bob", BTreeMap::new(), None)
        .await
        .unwrap();
    assert_eq!(bob.status, UserStatus::Unconfirmed);
    assert!(matches!(
        idp.create_user("main", "bob", BTreeMap::new(), None).await,
        Err(IdpError::UserExists)
    ));
    idp.confirm_user("main", "bob").await.unwrap();
    assert_eq!(
        idp.show_user("main", "bob").await.unwrap().user.status,
        UserStatus::Confirmed
    );
    idp.set_password("main", "bob", &pw, false).await.unwrap();
    let shown = idp.show_user("main", "bob").await.unwrap();
    assert_eq!(shown.user.status, UserStatus::ForceChangePassword);
    assert!(idp.check_password("main", "bob", &pw).await.unwrap());
    assert!(
        !idp.check_password("main", "bob", &Secret::new("password2"))
            .await
            .unwrap()
    );
    idp.set_password("main", "bob", &pw, true).await.unwrap();
    assert_eq!(
        idp.show_user("main", "bob").await.unwrap().user.status,
        UserStatus::Confirmed
    );
    assert!(!format!("{:?}", idp.show_user("main", "bob").await.unwrap()).contains("argon2"));

    idp.add_user_to_group("main", "bob", "members")
        .await
        .unwrap();
    assert!(matches!(
        idp.add_user_to_group("main", "bob", "nogroup").await,
        Err(IdpError::GroupNotFound)
    ));
    assert_eq!(
        idp.show_user("main", "bob").await.unwrap().groups,
        ["members"]
    );
    assert_eq!(
        idp.list_groups("main").await.unwrap(),
        ["admins", "members"]
    );
    let clients: Vec<String> = idp
        .list_clients("main")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(clients, ["reporting-service", "web", "webapp"]);

    idp.disable_user("main", "bob").await.unwrap();
    assert!(!idp.show_user("main", "bob").await.unwrap().user.enabled);
    assert!(
        idp.issue_session("main", "webapp", "bob", &[])
            .await
            .is_err()
    );
    idp.enable_user("main", "bob").await.unwrap();
    assert!(idp.show_user("main", "bob").await.unwrap().user.enabled);

    let users = idp.list_users("main", None, 10).await.unwrap();
    assert_eq!(users.len(), 1);
    idp.delete_user("main", "bob").await.unwrap();
    assert!(matches!(
        idp.delete_user("main", "bob").await,
        Err(IdpError::UserNotFound)
    ));
    assert_eq!(IdpError::UserNotFound.fault(), Fault::Client);
}

#[tokio::test]
async fn identity_provider_on_postgres() {
    let Some(pg) = store::tests::TempPostgres::start("identity_provider_on_postgres").await else {
        return;
    };
    let idp = IdentityProvider::open_with(&config(&pg.url), test_options(0))
        .await
        .unwrap();
    alice(&idp).await;
    let s = idp
        .issue_session("main", "webapp", "alice", &["openid".to_owned()])
        .await
        .unwrap();
    let local = verifier(vec!["webapp".into()], None);
    local.set_local_keys(ISSUER, idp.key_source("main"));
    local.verify(s.access_token.expose()).await.unwrap();
    let g = idp
        .refresh(
            "main",
            &ClientAuth {
                client_id: "webapp".into(),
                secret: Some(Secret::new("webapp-secret")),
                basic: true,
            },
            s.refresh_token.as_ref().unwrap(),
        )
        .await
        .unwrap();
    assert!(g.id_token.is_some());
}

#[tokio::test]
async fn revocations_of_another_process_are_read_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idp.db").display());
    // the serving gateway's provider and an operator's (the CLI) on the same store; their
    // clock stands still once the signing keys are made (by the system clock)
    let clock = Clock::fixed(unix_now());
    let options = || IdpOptions {
        clock: clock.clone(),
        ..test_options(0)
    };
    let gateway = IdentityProvider::open_with(&config(&url), options())
        .await
        .unwrap();
    let operator = IdentityProvider::open_with(&config(&url), options())
        .await
        .unwrap();
    clock.set(unix_now());
    let user = alice(&operator).await;
    let mut seen = gateway.subscribe_revocations();
    let mut own = operator.subscribe_revocations();
    assert_eq!(
        gateway.poll_revocation_events().await.unwrap(),
        RevocationPoll::default()
    );

    operator.disable_user("main", "alice").await.unwrap();
    let disabled = Revocation::User {
        issuer: ISSUER.into(),
        sub: user.sub.clone(),
        before: i64::MAX,
    };
    // announced at once where it was made, and once only
    assert_eq!(own.try_recv().unwrap(), disabled);
    assert!(seen.try_recv().is_err(), "not yet read");
    let poll = gateway.poll_revocation_events().await.unwrap();
    assert_eq!(poll.announced, 1);
    assert_eq!(seen.try_recv().unwrap(), disabled);
    assert_eq!(gateway.poll_revocation_events().await.unwrap().announced, 0);
    assert_eq!(
        operator.poll_revocation_events().await.unwrap().announced,
        0
    );
    assert!(own.try_recv().is_err(), "its own events are not repeated");

    // sign-out, a revoked refresh token and deletion are logged too
    operator.enable_user("main", "alice").await.unwrap();
    let session = operator
        .issue_session("main", "webapp", "alice", &["openid".to_owned()])
        .await
        .unwrap();
    let origin = decode_part(session.access_token.expose(), 1)["origin_jti"]
        .as_str()
        .unwrap()
        .to_owned();
    // the sign-out covers every token issued up to the second it ran in
    let signed_out_at = clock.now();
    operator.global_sign_out("main", "alice").await.unwrap();
    operator
        .revoke(
            "main",
            &ClientAuth {
                client_id: "webapp".into(),
                secret: Some(Secret::new("webapp-secret")),
                basic: true,
            },
            session.refresh_token.as_ref().unwrap(),
        )
        .await
        .unwrap();
    operator.delete_user("main", "alice").await.unwrap();
    assert_eq!(gateway.poll_revocation_events().await.unwrap().announced, 3);
    assert!(matches!(
        seen.try_recv().unwrap(),
        Revocation::User { ref sub, before, .. } if *sub == user.sub && before == signed_out_at + 1
    ));
    assert_eq!(
        seen.try_recv().unwrap(),
        Revocation::Session {
            issuer: ISSUER.into(),
            origin_jti: origin,
        }
    );
    assert_eq!(seen.try_recv().unwrap(), disabled);

    // a provider opened later does not replay history
    let late = IdentityProvider::open_with(&config(&url), test_options(0))
        .await
        .unwrap();
    assert_eq!(late.poll_revocation_events().await.unwrap().announced, 0);
}

#[tokio::test]
async fn revocation_polls_are_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idp.db").display());
    let options = IdpOptions {
        revocation_poll_batch: 2,
        ..test_options(0)
    };
    let gateway = IdentityProvider::open_with(&config(&url), options)
        .await
        .unwrap();
    let operator = IdentityProvider::open_with(&config(&url), test_options(0))
        .await
        .unwrap();
    alice(&operator).await;
    for _ in 0..3 {
        operator.global_sign_out("main", "alice").await.unwrap();
    }
    let first = gateway.poll_revocation_events().await.unwrap();
    assert_eq!((first.announced, first.more), (2, true));
    let second = gateway.poll_revocation_events().await.unwrap();
    assert_eq!((second.announced, second.more), (1, false));
}

mod user_input;
