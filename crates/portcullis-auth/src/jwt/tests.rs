//! End-to-end tests of [`JwtVerifier`] against a real JWKS/discovery server on loopback (axum),
//! with tokens minted by an independent encoder (jsonwebtoken) from keys generated at test time.

use std::collections::HashMap;

use portcullis_core::fault::{Fault, HasFault};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use portcullis_config::{HttpUrl, JwtAuthorizer, JwtIssuer};
use serde_json::{Value, json};

use super::*;

// ---- keys -------------------------------------------------------------------------------------

/// A test-only signing key: the private half for minting, the JWK for the server.
struct TestKey {
    kid: &'static str,
    alg: jsonwebtoken::Algorithm,
    encoding: EncodingKey,
    jwk: Jwk,
    /// RSA only: raw signer (for hand-made tokens) and the public key as PEM.
    rsa: Option<(RsaKeyPair, String)>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn rsa_key(kid: &'static str) -> TestKey {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let private_pem = pem("PRIVATE KEY", pair.as_der().unwrap().as_ref());
    let public_pem = pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref());
    let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    TestKey {
        kid,
        alg: jsonwebtoken::Algorithm::RS256,
        encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        jwk: Jwk::rsa(kid, Algorithm::RS256, &parts.n, &parts.e),
        rsa: Some((pair, public_pem)),
    }
}

fn ec_key(kid: &'static str) -> TestKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    assert_eq!(point.len(), 65);
    TestKey {
        kid,
        alg: jsonwebtoken::Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref()),
        // No `alg` in the JWK: the curve alone decides (ES256).
        jwk: Jwk {
            alg: None,
            ..Jwk::ec(kid, Algorithm::ES256, &point[1..33], &point[33..])
        },
        rsa: None,
    }
}

fn ed_key(kid: &'static str) -> TestKey {
    let pair = Ed25519KeyPair::generate().unwrap();
    TestKey {
        kid,
        alg: jsonwebtoken::Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(pair.to_pkcs8().unwrap().as_ref()),
        jwk: Jwk::ed25519(kid, pair.public_key().as_ref()),
        rsa: None,
    }
}

struct Keys {
    rsa1: TestKey,
    rsa2: TestKey,
    rsa3: TestKey,
    ec: TestKey,
    ed: TestKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa1: rsa_key("rsa-1"),
        rsa2: rsa_key("rsa-2"),
        rsa3: rsa_key("rsa-3"),
        ec: ec_key("ec-1"),
        ed: ed_key("ed-1"),
    })
}

// ---- tokens -----------------------------------------------------------------------------------

fn now() -> i64 {
    unix_now()
}

fn claims(iss: &str, extra: Value) -> Value {
    let mut c = json!({"iss": iss, "sub": "user-1", "iat": now(), "exp": now() + 3600});
    if let (Value::Object(c), Value::Object(extra)) = (&mut c, extra) {
        for (k, v) in extra {
            if v.is_null() {
                c.remove(&k);
            } else {
                c.insert(k, v);
            }
        }
    }
    c
}

/// A token from the independent encoder, `kid` = the key's.
fn mint(key: &TestKey, claims: &Value) -> String {
    mint_kid(key, Some(key.kid), claims)
}

fn mint_kid(key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A hand-made token with any header, signed RS256-style by an RSA test key.
fn mint_raw_rsa(key: &TestKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64json(header), b64json(claims));
    let (pair, _) = key.rsa.as_ref().unwrap();
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

// ---- the JWKS / discovery server --------------------------------------------------------------

#[derive(Default)]
struct Backend {
    base: OnceLock<String>,
    jwks: Mutex<HashMap<String, Value>>,
    jwks_hits: Mutex<HashMap<String, usize>>,
    discovery_hits: AtomicUsize,
    down: AtomicBool,
}

impl Backend {
    fn publish(&self, pool: &str, keys: &[&Jwk]) {
        let doc = json!({ "keys": keys });
        self.jwks.lock().unwrap().insert(pool.into(), doc);
    }
    fn hits(&self, pool: &str) -> usize {
        self.jwks_hits
            .lock()
            .unwrap()
            .get(pool)
            .copied()
            .unwrap_or(0)
    }
    fn issuer(&self, pool: &str) -> String {
        format!("{}/{pool}", self.base.get().unwrap())
    }
}

async fn discovery(State(b): State<Arc<Backend>>, Path(pool): Path<String>) -> Response {
    b.discovery_hits.fetch_add(1, Ordering::SeqCst);
    if b.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let issuer = if pool == "evil" {
        "https://someone-else.example".to_owned()
    } else {
        b.issuer(&pool)
    };
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/jwks.json", b.issuer(&pool)),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

async fn jwks(State(b): State<Arc<Backend>>, Path(pool): Path<String>) -> Response {
    *b.jwks_hits.lock().unwrap().entry(pool.clone()).or_default() += 1;
    if b.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match pool.as_str() {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            axum::Json(json!({"keys": []})).into_response()
        }
        "huge" => {
            let padding = "x".repeat(200_000);
            axum::Json(json!({"keys": [], "padding": padding})).into_response()
        }
        _ => match b.jwks.lock().unwrap().get(&pool) {
            Some(doc) => axum::Json(doc.clone()).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        },
    }
}

async fn spawn_backend() -> Arc<Backend> {
    let backend = Arc::new(Backend::default());
    let app = Router::new()
        .route("/{pool}/.well-known/openid-configuration", get(discovery))
        .route("/{pool}/jwks.json", get(jwks))
        .with_state(Arc::clone(&backend));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    backend.base.set(format!("http://{addr}")).unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    backend
}

/// `explicit`: configure `jwks_uri` (else OIDC discovery finds it).
fn issuer_config(b: &Backend, pool: &str, audience: &[&str], explicit: bool) -> JwtIssuer {
    JwtIssuer {
        issuer: b.issuer(pool),
        audience: audience.iter().map(|s| (*s).to_owned()).collect(),
        jwks_uri: explicit
            .then(|| HttpUrl::parse(&format!("{}/jwks.json", b.issuer(pool))).unwrap()),
        ..JwtIssuer::default()
    }
}

fn verifier(issuers: Vec<JwtIssuer>, token_use: Option<&str>, options: JwtOptions) -> JwtVerifier {
    let config = JwtAuthorizer {
        cache_ttl: std::time::Duration::from_secs(300),
        csrf: None,
        name: "users".into(),
        identity_source: vec!["$request.header.Authorization".into()],
        issuers,
        token_use: token_use.map(str::to_owned),
        principal_claim: None,
    };
    JwtVerifier::new(&config, reqwest::Client::new(), options).unwrap()
}

/// Issuer `a`: discovery, audience `web`, keys rsa-1 + ec-1 + ed-1 + an encryption-only key.
/// Issuer `b`: explicit `jwks_uri`, any audience, key rsa-2.
async fn standard_setup(options: JwtOptions) -> (Arc<Backend>, JwtVerifier) {
    let b = spawn_backend().await;
    let k = keys();
    let enc_only = Jwk {
        kid: Some("enc-1".into()),
        key_use: Some("enc".into()),
        alg: None,
        ..k.rsa3.jwk.clone()
    };
    b.publish("a", &[&k.rsa1.jwk, &k.ec.jwk, &k.ed.jwk, &enc_only]);
    b.publish("b", &[&k.rsa2.jwk]);
    let v = verifier(
        vec![
            issuer_config(&b, "a", &["web"], false),
            issuer_config(&b, "b", &[], true),
        ],
        None,
        options,
    );
    (b, v)
}

// ---- tests ------------------------------------------------------------------------------------

#[tokio::test]
async fn accepts_valid_tokens_and_builds_the_authorizer_context() {
    let (b, v) = standard_setup(JwtOptions::default()).await;
    let k = keys();
    let (a_iss, b_iss) = (b.issuer("a"), b.issuer("b"));

    let token = mint(
        &k.rsa1,
        &claims(
            &a_iss,
            json!({"aud": "web", "scope": "openid chat/write",
            "cognito:groups": ["admins", "editors"], "token_use": "id", "email_verified": true,
            "address": {"country": "NL"}}),
        ),
    );
    let t = v.verify(&token).await.unwrap();
    assert_eq!(t.issuer, a_iss);
    assert_eq!(t.subject.as_deref(), Some("user-1"));
    assert_eq!(t.scopes, ["openid", "chat/write"]);
    assert_eq!(t.groups, ["admins", "editors"]);
    assert_eq!(t.token_use.as_deref(), Some("id"));
    assert!(t.has_any_scope(&["x".into(), "chat/write".into()]) && !t.has_any_scope(&["x".into()]));
    assert!(t.has_any_group(&["admins".into()]) && !t.has_any_group(&["root".into()]));
    assert_eq!(t.claims.get("aud"), Some(&json!("web")));

    let ctx = t.authorizer_context();
    assert_eq!(ctx["principalId"], "user-1");
    assert_eq!(ctx["jwt"]["scopes"], json!(["openid", "chat/write"]));
    let c = &ctx["jwt"]["claims"];
    assert_eq!(c["cognito:groups"], "[admins editors]");
    assert_eq!(c["exp"], t.expires_at.to_string());
    assert_eq!(c["email_verified"], "true");
    assert_eq!(c["address"], r#"{"country":"NL"}"#);
    assert!(c.as_object().unwrap().values().all(Value::is_string));

    // ES256 and EdDSA keys of the same issuer; an access token without `aud` but with an
    // accepted `client_id` (API Gateway's rule).
    let es = mint(
        &k.ec,
        &claims(&a_iss, json!({"client_id": "web", "token_use": "access"})),
    );
    assert_eq!(
        v.verify(&es).await.unwrap().token_use.as_deref(),
        Some("access")
    );
    let ed = mint(&k.ed, &claims(&a_iss, json!({"aud": ["other", "web"]})));
    v.verify(&ed).await.unwrap();

    // Issuer b has no audience list: anything goes; a float `exp` is fine.
    let bt = mint(
        &k.rsa2,
        &claims(
            &b_iss,
            json!({"aud": "whatever", "exp": now() as f64 + 60.5}),
        ),
    );
    v.verify(&bt).await.unwrap();

    // Within the clock skew.
    let late = mint(
        &k.rsa1,
        &claims(&a_iss, json!({"aud": "web", "exp": now() - 30})),
    );
    v.verify(&late).await.unwrap();

    // One fetch per issuer, one discovery (issuer a only).
    assert_eq!((b.hits("a"), b.hits("b")), (1, 1));
    assert_eq!(b.discovery_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn hostile_tokens_are_refused() {
    let (b, v) = standard_setup(JwtOptions::default()).await;
    let k = keys();
    let a_iss = b.issuer("a");
    let ok = claims(&a_iss, json!({"aud": "web"}));
    // Warm the cache so the counts below isolate refreshes caused by hostile tokens.
    v.verify(&mint(&k.rsa1, &ok)).await.unwrap();

    let good = mint(&k.rsa1, &ok);
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let forged_payload = b64json(&claims(&a_iss, json!({"aud": "web", "sub": "admin"})));
    let mut sig_bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig_bytes[10] ^= 1;
    let flipped = URL_SAFE_NO_PAD.encode(&sig_bytes);

    let none_header = b64json(&json!({"alg": "none", "kid": "rsa-1"}));
    let (_, public_pem) = k.rsa1.rsa.as_ref().unwrap();
    let mut hs_header = Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some("rsa-1".into());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &ok,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    let long_kid = "k".repeat(10_000);

    let cases: Vec<(&str, String, JwtError)> = vec![
        (
            "alg none, empty signature",
            format!("{none_header}.{payload}."),
            JwtError::UnsupportedAlgorithm("none".into()),
        ),
        (
            "alg none, kept signature",
            format!("{none_header}.{payload}.{sig}"),
            JwtError::UnsupportedAlgorithm("none".into()),
        ),
        (
            "HS256 keyed with the RSA public key PEM",
            hs256,
            JwtError::UnsupportedAlgorithm("HS256".into()),
        ),
        (
            "unknown kid",
            mint_kid(&k.rsa1, Some("nope"), &ok),
            JwtError::UnknownKey,
        ),
        (
            "path-injection kid",
            mint_kid(&k.rsa1, Some("../../../../etc/passwd"), &ok),
            JwtError::UnknownKey,
        ),
        (
            "very long kid",
            mint_kid(&k.rsa1, Some(&long_kid), &ok),
            JwtError::UnknownKey,
        ),
        (
            "kid with control characters",
            mint_kid(&k.rsa1, Some("rsa-1\r\nX-Injected: 1"), &ok),
            JwtError::UnknownKey,
        ),
        (
            "kid of an encryption key",
            mint_kid(&k.rsa3, Some("enc-1"), &ok),
            JwtError::UnknownKey,
        ),
        (
            "no kid, several keys",
            mint_kid(&k.rsa1, None, &ok),
            JwtError::MissingKeyId,
        ),
        (
            "expired",
            mint(
                &k.rsa1,
                &claims(&a_iss, json!({"aud": "web", "exp": now() - 120})),
            ),
            JwtError::Expired,
        ),
        (
            "no exp",
            mint(&k.rsa1, &claims(&a_iss, json!({"aud": "web", "exp": null}))),
            JwtError::Malformed(""),
        ),
        (
            "nbf in the future",
            mint(
                &k.rsa1,
                &claims(&a_iss, json!({"aud": "web", "nbf": now() + 600})),
            ),
            JwtError::NotYetValid,
        ),
        (
            "iat in the future",
            mint(
                &k.rsa1,
                &claims(&a_iss, json!({"aud": "web", "iat": now() + 600})),
            ),
            JwtError::IssuedInFuture,
        ),
        (
            "wrong iss",
            mint(
                &k.rsa1,
                &claims("https://evil.example/a", json!({"aud": "web"})),
            ),
            JwtError::UnknownIssuer,
        ),
        (
            "iss with trailing slash",
            mint(
                &k.rsa1,
                &claims(&format!("{a_iss}/"), json!({"aud": "web"})),
            ),
            JwtError::UnknownIssuer,
        ),
        (
            "no iss",
            mint(&k.rsa1, &claims(&a_iss, json!({"aud": "web", "iss": null}))),
            JwtError::UnknownIssuer,
        ),
        (
            "wrong aud",
            mint(&k.rsa1, &claims(&a_iss, json!({"aud": "mobile"}))),
            JwtError::WrongAudience,
        ),
        (
            "wrong aud, right client_id",
            mint(
                &k.rsa1,
                &claims(&a_iss, json!({"aud": "mobile", "client_id": "web"})),
            ),
            JwtError::WrongAudience,
        ),
        (
            "no aud, wrong client_id",
            mint(&k.rsa1, &claims(&a_iss, json!({"client_id": "mobile"}))),
            JwtError::WrongAudience,
        ),
        (
            "no aud, no client_id",
            mint(&k.rsa1, &claims(&a_iss, json!({}))),
            JwtError::WrongAudience,
        ),
        (
            "tampered payload",
            format!("{head}.{forged_payload}.{sig}"),
            JwtError::BadSignature,
        ),
        (
            "tampered signature",
            format!("{head}.{payload}.{flipped}"),
            JwtError::BadSignature,
        ),
        (
            "signed by another RSA key under rsa-1",
            mint_kid(&k.rsa2, Some("rsa-1"), &ok),
            JwtError::BadSignature,
        ),
        (
            "signature of another token",
            format!(
                "{head}.{payload}.{}",
                mint(&k.rsa1, &claims(&a_iss, json!({"aud": "web", "x": 1})))
                    .rsplit_once('.')
                    .unwrap()
                    .1
            ),
            JwtError::BadSignature,
        ),
        (
            "malformed base64 payload",
            format!("{head}.{}*.{sig}", &payload[..payload.len() - 1]),
            JwtError::Malformed(""),
        ),
        (
            "standard-base64 signature",
            format!("{head}.{payload}.{}", STANDARD.encode(&sig_bytes)),
            JwtError::Malformed(""),
        ),
        (
            "two segments",
            format!("{head}.{payload}"),
            JwtError::Malformed(""),
        ),
        (
            "four segments",
            format!("{good}.{sig}"),
            JwtError::Malformed(""),
        ),
        (
            "Bearer prefix left on",
            format!("Bearer {good}"),
            JwtError::Malformed(""),
        ),
        (
            "huge token",
            format!("{head}.{}.{sig}", "A".repeat(20_000)),
            JwtError::TooLarge,
        ),
        (
            "JWK pins RS256, token says RS384",
            mint_raw_rsa(&k.rsa1, &json!({"alg": "RS384", "kid": "rsa-1"}), &ok),
            JwtError::KeyMismatch,
        ),
        (
            "EC key named by an RS256 token",
            mint_raw_rsa(&k.rsa1, &json!({"alg": "RS256", "kid": "ec-1"}), &ok),
            JwtError::KeyMismatch,
        ),
        (
            "Ed25519 key named by an RS256 token",
            mint_raw_rsa(&k.rsa1, &json!({"alg": "RS256", "kid": "ed-1"}), &ok),
            JwtError::KeyMismatch,
        ),
        (
            "P-256 key named by an ES384 token",
            mint_raw_rsa(&k.rsa1, &json!({"alg": "ES384", "kid": "ec-1"}), &ok),
            JwtError::KeyMismatch,
        ),
        (
            "RSA key named by an ES256 token",
            mint_raw_rsa(&k.rsa1, &json!({"alg": "ES256", "kid": "rsa-1"}), &ok),
            JwtError::KeyMismatch,
        ),
        (
            "embedded jwk header is not trusted",
            mint_raw_rsa(
                &k.rsa3,
                &json!({"alg": "RS256", "kid": "rsa-1", "jwk": k.rsa3.jwk}),
                &ok,
            ),
            JwtError::BadSignature,
        ),
        (
            "crit header",
            mint_raw_rsa(
                &k.rsa1,
                &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
                &ok,
            ),
            JwtError::Malformed(""),
        ),
    ];
    for (name, token, want) in cases {
        let got = v.verify(&token).await.map(|_| ()).unwrap_err();
        match (&got, &want) {
            (JwtError::Malformed(_), JwtError::Malformed(_)) => {}
            _ => assert_eq!(got, want, "{name}"),
        }
        assert_eq!(got.fault(), Fault::Client, "{name}");
        let shown = got.to_string();
        assert!(
            !shown.contains(payload) && !shown.contains(sig),
            "{name}: error leaks the token"
        );
    }
    assert_eq!(JwtError::Expired.description(), "the token has expired");
    assert_eq!(
        JwtError::WrongAudience.description(),
        "the token does not have a valid audience"
    );
    // Dozens of unknown kids inside one refresh interval: not a single extra fetch.
    assert_eq!(b.hits("a"), 1);
    // And the good token still passes.
    v.verify(&good).await.unwrap();
}

#[tokio::test]
async fn token_use_is_enforced_when_configured() {
    let b = spawn_backend().await;
    let k = keys();
    b.publish("a", &[&k.rsa1.jwk]);
    let v = verifier(
        vec![issuer_config(&b, "a", &[], true)],
        Some("access"),
        JwtOptions::default(),
    );
    let iss = b.issuer("a");
    v.verify(&mint(
        &k.rsa1,
        &claims(&iss, json!({"token_use": "access"})),
    ))
    .await
    .unwrap();
    let id = mint(&k.rsa1, &claims(&iss, json!({"token_use": "id"})));
    assert_eq!(v.verify(&id).await.unwrap_err(), JwtError::WrongTokenUse);
    let none = mint(&k.rsa1, &claims(&iss, json!({})));
    assert_eq!(v.verify(&none).await.unwrap_err(), JwtError::WrongTokenUse);
    // A single key: a token without `kid` is matched to it.
    v.verify(&mint_kid(
        &k.rsa1,
        None,
        &claims(&iss, json!({"token_use": "access"})),
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn several_issuers_each_with_only_their_own_keys() {
    let b = spawn_backend().await;
    let k = keys();
    // The same kid at both issuers, different keys.
    let shared_a = Jwk {
        kid: Some("shared".into()),
        ..k.rsa1.jwk.clone()
    };
    let shared_b = Jwk {
        kid: Some("shared".into()),
        ..k.rsa2.jwk.clone()
    };
    b.publish("a", &[&shared_a]);
    b.publish("b", &[&shared_b]);
    let v = verifier(
        vec![
            issuer_config(&b, "a", &["web"], true),
            issuer_config(&b, "b", &["svc"], true),
        ],
        None,
        JwtOptions::default(),
    );
    let (a, bi) = (b.issuer("a"), b.issuer("b"));
    let a_token = mint_kid(&k.rsa1, Some("shared"), &claims(&a, json!({"aud": "web"})));
    let b_token = mint_kid(&k.rsa2, Some("shared"), &claims(&bi, json!({"aud": "svc"})));
    assert_eq!(v.verify(&a_token).await.unwrap().issuer, a);
    assert_eq!(v.verify(&b_token).await.unwrap().issuer, bi);
    // Issuer a's key cannot sign for issuer b, and audiences are per issuer.
    let cross = mint_kid(&k.rsa1, Some("shared"), &claims(&bi, json!({"aud": "svc"})));
    assert_eq!(v.verify(&cross).await.unwrap_err(), JwtError::BadSignature);
    let cross_aud = mint_kid(&k.rsa2, Some("shared"), &claims(&bi, json!({"aud": "web"})));
    assert_eq!(
        v.verify(&cross_aud).await.unwrap_err(),
        JwtError::WrongAudience
    );
    // An issuer nobody configured costs no fetch.
    let stranger = mint(&k.rsa1, &claims(&b.issuer("c"), json!({})));
    assert_eq!(
        v.verify(&stranger).await.unwrap_err(),
        JwtError::UnknownIssuer
    );
    assert_eq!((b.hits("a"), b.hits("b"), b.hits("c")), (1, 1, 0));
}

#[tokio::test]
async fn key_rotation_is_picked_up_within_the_refresh_rate_limit() {
    let interval = Duration::from_millis(400);
    let b = spawn_backend().await;
    let k = keys();
    b.publish("a", &[&k.rsa1.jwk]);
    let v = verifier(
        vec![issuer_config(&b, "a", &[], false)],
        None,
        JwtOptions {
            min_refresh_interval: interval,
            ..JwtOptions::default()
        },
    );
    let iss = b.issuer("a");
    let old = mint(&k.rsa1, &claims(&iss, json!({})));
    let new = mint(&k.rsa2, &claims(&iss, json!({})));
    v.verify(&old).await.unwrap();
    assert_eq!(b.hits("a"), 1);

    // The issuer rotates: rsa-2 appears. Within the interval the verifier may not refetch.
    b.publish("a", &[&k.rsa1.jwk, &k.rsa2.jwk]);
    assert_eq!(v.verify(&new).await.unwrap_err(), JwtError::UnknownKey);
    assert_eq!(b.hits("a"), 1);

    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    v.verify(&new).await.unwrap();
    v.verify(&old).await.unwrap();
    assert_eq!(b.hits("a"), 2);

    // A burst of unknown kids right after: no fetch; after the interval: exactly one.
    for i in 0..20 {
        let t = mint_kid(
            &k.rsa1,
            Some(&format!("bogus-{i}")),
            &claims(&iss, json!({})),
        );
        assert_eq!(v.verify(&t).await.unwrap_err(), JwtError::UnknownKey);
    }
    assert_eq!(b.hits("a"), 2);
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    for i in 0..20 {
        let t = mint_kid(
            &k.rsa1,
            Some(&format!("bogus-{i}")),
            &claims(&iss, json!({})),
        );
        assert_eq!(v.verify(&t).await.unwrap_err(), JwtError::UnknownKey);
    }
    assert_eq!(b.hits("a"), 3);

    // rsa-1 retired: removed from the JWKS, gone after the next refresh.
    b.publish("a", &[&k.rsa2.jwk, &k.rsa3.jwk]);
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    v.verify(&mint(&k.rsa3, &claims(&iss, json!({}))))
        .await
        .unwrap();
    assert_eq!(v.verify(&old).await.unwrap_err(), JwtError::UnknownKey);
    // Discovery ran once for all of it.
    assert_eq!(b.discovery_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_first_tokens_share_one_fetch() {
    let b = spawn_backend().await;
    let k = keys();
    b.publish("a", &[&k.rsa1.jwk]);
    let v = verifier(
        vec![issuer_config(&b, "a", &[], false)],
        None,
        JwtOptions::default(),
    );
    let token = mint(&k.rsa1, &claims(&b.issuer("a"), json!({})));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(b.hits("a"), 1);
    assert_eq!(b.discovery_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn jwks_outage_keeps_the_old_keys() {
    let interval = Duration::from_millis(200);
    let (b, v) = standard_setup(JwtOptions {
        min_refresh_interval: interval,
        ..JwtOptions::default()
    })
    .await;
    let k = keys();
    let iss = b.issuer("a");
    let known = mint(&k.rsa1, &claims(&iss, json!({"aud": "web"})));
    v.verify(&known).await.unwrap();

    b.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    let unknown = mint_kid(&k.rsa2, Some("rsa-2"), &claims(&iss, json!({"aud": "web"})));
    let err = v.verify(&unknown).await.unwrap_err();
    assert!(
        matches!(err, JwtError::KeysUnavailable(ref m) if m.contains("503")),
        "{err:?}"
    );
    assert_ne!(err.fault(), Fault::Client);
    assert!(
        !err.to_string().contains("127.0.0.1"),
        "no URL in the error: {err}"
    );
    // Known keys keep working, without touching the network.
    let hits = b.hits("a");
    v.verify(&known).await.unwrap();
    assert_eq!(b.hits("a"), hits);

    // A verifier that never got keys: KeysUnavailable, then rate-limited (no new request).
    let fresh = verifier(
        vec![issuer_config(&b, "b", &[], true)],
        None,
        JwtOptions::default(),
    );
    let bt = mint(&k.rsa2, &claims(&b.issuer("b"), json!({})));
    assert!(matches!(
        fresh.verify(&bt).await,
        Err(JwtError::KeysUnavailable(_))
    ));
    assert!(matches!(
        fresh.verify(&bt).await,
        Err(JwtError::KeysUnavailable(_))
    ));
    assert_eq!(b.hits("b"), 1);

    // Back up: the new key is found after the interval.
    b.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    b.publish("a", &[&k.rsa1.jwk, &k.rsa2.jwk]);
    v.verify(&unknown).await.unwrap();
}

#[tokio::test]
async fn jwks_fetch_is_bounded_in_size_and_time() {
    let b = spawn_backend().await;
    let k = keys();
    let options = JwtOptions {
        fetch_timeout: Duration::from_millis(300),
        ..JwtOptions::default()
    };
    let v = verifier(
        vec![
            issuer_config(&b, "huge", &[], true),
            issuer_config(&b, "slow", &[], true),
        ],
        None,
        options.clone(),
    );
    let huge = mint(&k.rsa1, &claims(&b.issuer("huge"), json!({})));
    let err = v.verify(&huge).await.unwrap_err();
    assert!(
        matches!(err, JwtError::KeysUnavailable(ref m) if m.contains("larger")),
        "{err:?}"
    );

    let slow = mint(&k.rsa1, &claims(&b.issuer("slow"), json!({})));
    let started = Instant::now();
    let err = v.verify(&slow).await.unwrap_err();
    assert!(matches!(err, JwtError::KeysUnavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A JWKS just over the configured limit.
    b.publish("a", &[&k.rsa1.jwk]);
    let small = verifier(
        vec![issuer_config(&b, "a", &[], true)],
        None,
        JwtOptions {
            max_jwks_bytes: 200,
            ..options
        },
    );
    let t = mint(&k.rsa1, &claims(&b.issuer("a"), json!({})));
    assert!(matches!(
        small.verify(&t).await,
        Err(JwtError::KeysUnavailable(_))
    ));
}

#[tokio::test]
async fn discovery_must_name_the_same_issuer() {
    let b = spawn_backend().await;
    let k = keys();
    b.publish("evil", &[&k.rsa1.jwk]);
    let v = verifier(
        vec![issuer_config(&b, "evil", &[], false)],
        None,
        JwtOptions::default(),
    );
    let t = mint(&k.rsa1, &claims(&b.issuer("evil"), json!({})));
    let err = v.verify(&t).await.unwrap_err();
    assert!(
        matches!(err, JwtError::KeysUnavailable(ref m) if m.contains("another issuer")),
        "{err:?}"
    );
    assert_eq!(b.hits("evil"), 0);
    // A JWKS that is not there (404) is also KeysUnavailable.
    let missing = verifier(
        vec![issuer_config(&b, "nothing", &[], true)],
        None,
        JwtOptions::default(),
    );
    let t = mint(&k.rsa1, &claims(&b.issuer("nothing"), json!({})));
    assert!(
        matches!(missing.verify(&t).await, Err(JwtError::KeysUnavailable(m)) if m.contains("404"))
    );
}

struct LocalKeys {
    keys: Mutex<Vec<Jwk>>,
    calls: AtomicUsize,
}

impl KeySource for LocalKeys {
    fn jwks(&self) -> Vec<Jwk> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.keys.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn local_key_source_replaces_fetching() {
    let b = spawn_backend().await;
    let k = keys();
    let v = verifier(
        vec![issuer_config(&b, "idp", &["web"], false)],
        None,
        JwtOptions::default(),
    );
    let local = Arc::new(LocalKeys {
        keys: Mutex::new(vec![k.rsa1.jwk.clone()]),
        calls: AtomicUsize::new(0),
    });
    v.set_local_keys(&b.issuer("idp"), local.clone());
    v.set_local_keys("https://not-configured.example", local.clone()); // ignored
    let iss = b.issuer("idp");
    v.verify(&mint(&k.rsa1, &claims(&iss, json!({"aud": "web"}))))
        .await
        .unwrap();
    v.verify(&mint(&k.rsa1, &claims(&iss, json!({"aud": "web"}))))
        .await
        .unwrap();
    assert_eq!(local.calls.load(Ordering::SeqCst), 1);

    // Rotation in-process: visible at once (no rate limit for a local source).
    let rotated = mint(&k.ed, &claims(&iss, json!({"aud": "web"})));
    assert_eq!(v.verify(&rotated).await.unwrap_err(), JwtError::UnknownKey);
    local.keys.lock().unwrap().push(k.ed.jwk.clone());
    v.verify(&rotated).await.unwrap();
    // Security checks still apply to local keys.
    let wrong_aud = mint(&k.rsa1, &claims(&iss, json!({"aud": "other"})));
    assert_eq!(
        v.verify(&wrong_aud).await.unwrap_err(),
        JwtError::WrongAudience
    );
    assert_eq!(
        b.discovery_hits.load(Ordering::SeqCst) + b.hits("idp"),
        0,
        "no HTTP at all"
    );
}

#[tokio::test]
async fn prefetch_loads_every_issuer() {
    let (b, v) = standard_setup(JwtOptions::default()).await;
    v.prefetch().await.unwrap();
    assert_eq!((b.hits("a"), b.hits("b")), (1, 1));
    v.prefetch().await.unwrap();
    assert_eq!((b.hits("a"), b.hits("b")), (1, 1));
    let k = keys();
    v.verify(&mint(&k.rsa2, &claims(&b.issuer("b"), json!({}))))
        .await
        .unwrap();
    assert_eq!(b.hits("b"), 1);
}

#[test]
fn configuration_errors() {
    let config = |issuers: Vec<JwtIssuer>| JwtAuthorizer {
        cache_ttl: std::time::Duration::from_secs(300),
        csrf: None,
        name: "x".into(),
        identity_source: vec![],
        issuers,
        token_use: None,
        principal_claim: None,
    };
    let iss = |uri: Option<&str>| JwtIssuer {
        issuer: "https://i.example".into(),
        audience: vec![],
        jwks_uri: uri.map(|u| HttpUrl::parse(u).unwrap()),
        ..JwtIssuer::default()
    };
    let build =
        |c: JwtAuthorizer| JwtVerifier::new(&c, reqwest::Client::new(), JwtOptions::default());
    assert!(matches!(
        build(config(vec![])),
        Err(JwtError::InvalidConfig(_))
    ));
    assert!(matches!(
        build(config(vec![iss(None), iss(None)])),
        Err(JwtError::InvalidConfig(_))
    ));
    // A `jwks_uri` that is not an http(s) URL cannot reach the verifier: it is an `HttpUrl`.
    assert!(HttpUrl::parse("file:///etc/jwks").is_err());
    assert!(build(config(vec![iss(Some("https://i.example/jwks"))])).is_ok());
}

#[tokio::test]
async fn principal_claim_names_the_principal_instead_of_sub() {
    let b = spawn_backend().await;
    let k = keys();
    b.publish("a", &[&k.rsa1.jwk]);
    let config = JwtAuthorizer {
        cache_ttl: std::time::Duration::from_secs(300),
        csrf: None,
        name: "shared".into(),
        identity_source: vec!["$request.header.Authorization".into()],
        issuers: vec![issuer_config(&b, "a", &[], false)],
        token_use: None,
        principal_claim: Some("userId".into()),
    };
    let v = JwtVerifier::new(&config, reqwest::Client::new(), JwtOptions::default()).unwrap();
    let iss = b.issuer("a");
    let principal = |extra: Value| {
        let token = mint(&k.rsa1, &claims(&iss, extra));
        let v = v.clone();
        async move {
            let t = v.verify(&token).await.unwrap();
            (
                t.principal.clone(),
                t.authorizer_context()["principalId"].clone(),
            )
        }
    };
    assert_eq!(
        principal(json!({"userId": "u1"})).await,
        (Some("u1".into()), json!("u1"))
    );
    assert_eq!(
        principal(json!({"userId": 42})).await,
        (Some("42".into()), json!("42"))
    );
    // No claim, an empty or a non-scalar one: no principal, not `sub` in its place.
    for extra in [
        json!({}),
        json!({"userId": ""}),
        json!({"userId": ["a"]}),
        json!({"userId": 1.5}),
    ] {
        assert_eq!(
            principal(extra.clone()).await,
            (None, Value::Null),
            "{extra}"
        );
    }
}
