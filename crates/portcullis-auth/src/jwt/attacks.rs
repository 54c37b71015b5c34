//! The attacker's view of shared-secret issuers: tokens forged, re-labelled or replayed against
//! a verifier trusting one HMAC issuer (`my-app`, HS256 only) and one public-key issuer
//! (`https://idp.example`, RS256 from an in-process key source). Tokens are made by an
//! independent encoder (jsonwebtoken) or by hand where it refuses to.

use std::sync::{Arc, OnceLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use portcullis_config::{HmacSecret, JwsAlgorithm, JwtAuthorizer, JwtIssuer, Secret};
use serde_json::{Value, json};

use super::*;

const SECRET: &str = "a-shared-secret-of-at-least-32-bytes!";
const APP: &str = "my-app";
const IDP: &str = "https://idp.example";

struct Rsa {
    encoding: EncodingKey,
    jwk: Jwk,
    /// The public key as a PEM document: what an attacker uses as "HMAC secret".
    public_pem: String,
    /// The public key as DER `RSAPublicKey`, the other form an attacker may try.
    public_der: Vec<u8>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<String> = body
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn rsa() -> &'static Rsa {
    static KEY: OnceLock<Rsa> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        Rsa {
            encoding: EncodingKey::from_rsa_pem(
                pem("PRIVATE KEY", pair.as_der().unwrap().as_ref()).as_bytes(),
            )
            .unwrap(),
            jwk: Jwk::rsa("rsa-1", Algorithm::RS256, &parts.n, &parts.e),
            public_pem: pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref()),
            public_der: pair.public_key().as_ref().to_vec(),
        }
    })
}

struct Local(Vec<Jwk>);

impl KeySource for Local {
    fn jwks(&self) -> Vec<Jwk> {
        self.0.clone()
    }
}

fn verifier(options: JwtOptions) -> JwtVerifier {
    let config = JwtAuthorizer {
        name: "shared_secret".into(),
        identity_source: vec!["route.request.querystring.access_token".into()],
        issuers: vec![
            JwtIssuer {
                issuer: APP.into(),
                algorithms: vec![JwsAlgorithm::HS256],
                secret: Some(HmacSecret::Value(Secret::new(SECRET))),
                ..JwtIssuer::default()
            },
            JwtIssuer {
                issuer: IDP.into(),
                ..JwtIssuer::default()
            },
        ],
        token_use: None,
        principal_claim: Some("userId".into()),
        cache_ttl: std::time::Duration::ZERO,
        csrf: None,
    };
    let v = JwtVerifier::new(&config, reqwest::Client::new(), options).unwrap();
    v.set_local_keys(IDP, Arc::new(Local(vec![rsa().jwk.clone()])));
    v
}

fn claims(iss: &str) -> Value {
    let now = unix_now();
    json!({"iss": iss, "sub": "s-1", "userId": "u1", "firstName": "Ada", "lastName": "Lovelace",
           "iat": now, "exp": now + 3600})
}

fn hs(alg: jsonwebtoken::Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn rs256(claims: &Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    jsonwebtoken::encode(&header, claims, &rsa().encoding).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// `token` with its header replaced (payload and signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", b64(header))
}

#[tokio::test]
async fn the_right_secret_verifies_and_names_the_principal_by_user_id() {
    let v = verifier(JwtOptions::default());
    let token = hs(
        jsonwebtoken::Algorithm::HS256,
        SECRET.as_bytes(),
        &claims(APP),
    );
    let verified = v.verify(&token).await.unwrap();
    assert_eq!(verified.issuer, APP);
    assert_eq!(verified.principal.as_deref(), Some("u1"));
    assert_eq!(verified.subject.as_deref(), Some("s-1"));
    let context = verified.authorizer_context();
    assert_eq!(context["principalId"], "u1");
    assert_eq!(context["jwt"]["claims"]["firstName"], "Ada");
    // Our own signer agrees with the independent one.
    let Value::Object(map) = claims(APP) else {
        unreachable!()
    };
    let ours = hmac::sign(HmacAlgorithm::HS256, SECRET.as_bytes(), &map);
    assert!(v.verify(&ours).await.is_ok());
    // And the RS256 issuer next to it still works.
    assert!(v.verify(&rs256(&claims(IDP))).await.is_ok());
}

#[tokio::test]
async fn forged_relabelled_and_replayed_tokens_are_refused() {
    let v = verifier(JwtOptions::default());
    let k = rsa();
    let app = claims(APP);
    let good = hs(jsonwebtoken::Algorithm::HS256, SECRET.as_bytes(), &app);
    let mut expired = app.clone();
    expired["exp"] = json!(unix_now() - 3600);
    let mut other_issuer = app.clone();
    other_issuer["iss"] = json!("someone-else");
    let payload = good.split('.').nth(1).unwrap();
    let mut huge = app.clone();
    huge["padding"] = json!("x".repeat(20_000));

    let cases: Vec<(&str, String, JwtError)> = vec![
        (
            "wrong secret",
            hs(
                jsonwebtoken::Algorithm::HS256,
                b"another-secret-of-at-least-32-bytes!!",
                &app,
            ),
            JwtError::BadSignature,
        ),
        (
            "secret one byte short (a prefix)",
            hs(
                jsonwebtoken::Algorithm::HS256,
                &SECRET.as_bytes()[..SECRET.len() - 1],
                &app,
            ),
            JwtError::BadSignature,
        ),
        (
            "payload changed after signing",
            {
                let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
                let mut c = app.clone();
                c["userId"] = json!("admin");
                parts[1] = b64(&c);
                parts.join(".")
            },
            JwtError::BadSignature,
        ),
        (
            "alg relabelled RS256 on an HMAC token",
            with_header(&good, &json!({"alg": "RS256", "typ": "JWT"})),
            JwtError::UnsupportedAlgorithm("RS256".into()),
        ),
        (
            "alg none, signature dropped",
            format!("{}.{payload}.", b64(&json!({"alg": "none"}))),
            JwtError::UnsupportedAlgorithm("none".into()),
        ),
        (
            "alg none with a signature",
            with_header(&good, &json!({"alg": "none"})),
            JwtError::UnsupportedAlgorithm("none".into()),
        ),
        (
            "RS256 token claiming the HMAC issuer",
            rs256(&app),
            JwtError::UnsupportedAlgorithm("RS256".into()),
        ),
        (
            "HS512 with the right secret when only HS256 is allowed",
            hs(jsonwebtoken::Algorithm::HS512, SECRET.as_bytes(), &app),
            JwtError::UnsupportedAlgorithm("HS512".into()),
        ),
        (
            "HS384 with the right secret when only HS256 is allowed",
            hs(jsonwebtoken::Algorithm::HS384, SECRET.as_bytes(), &app),
            JwtError::UnsupportedAlgorithm("HS384".into()),
        ),
        (
            "key confusion: HS256 keyed with the RSA public key PEM",
            hs(
                jsonwebtoken::Algorithm::HS256,
                k.public_pem.as_bytes(),
                &claims(IDP),
            ),
            JwtError::UnsupportedAlgorithm("HS256".into()),
        ),
        (
            "key confusion: HS256 keyed with the RSA public key DER, kid of the RSA key",
            {
                let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
                header.kid = Some("rsa-1".into());
                jsonwebtoken::encode(
                    &header,
                    &claims(IDP),
                    &EncodingKey::from_secret(&k.public_der),
                )
                .unwrap()
            },
            JwtError::UnsupportedAlgorithm("HS256".into()),
        ),
        (
            "HS256 token with the shared secret sent as the JWKS issuer",
            hs(
                jsonwebtoken::Algorithm::HS256,
                SECRET.as_bytes(),
                &claims(IDP),
            ),
            JwtError::UnsupportedAlgorithm("HS256".into()),
        ),
        (
            "expired",
            hs(jsonwebtoken::Algorithm::HS256, SECRET.as_bytes(), &expired),
            JwtError::Expired,
        ),
        (
            "wrong issuer, right secret",
            hs(
                jsonwebtoken::Algorithm::HS256,
                SECRET.as_bytes(),
                &other_issuer,
            ),
            JwtError::UnknownIssuer,
        ),
        (
            "oversized",
            hs(jsonwebtoken::Algorithm::HS256, SECRET.as_bytes(), &huge),
            JwtError::TooLarge,
        ),
        (
            "empty MAC",
            format!("{}.", good.rsplit_once('.').unwrap().0),
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
    }
}

#[tokio::test]
async fn audience_is_checked_for_shared_secret_issuers_when_set() {
    let config = JwtAuthorizer {
        name: "aud".into(),
        identity_source: vec!["$request.header.Authorization".into()],
        issuers: vec![JwtIssuer {
            issuer: APP.into(),
            audience: vec!["chat".into()],
            algorithms: vec![JwsAlgorithm::HS256, JwsAlgorithm::HS512],
            secret: Some(HmacSecret::Value(Secret::new(SECRET))),
            ..JwtIssuer::default()
        }],
        token_use: None,
        principal_claim: None,
        cache_ttl: std::time::Duration::ZERO,
        csrf: None,
    };
    let v = JwtVerifier::new(&config, reqwest::Client::new(), JwtOptions::default()).unwrap();
    let mut c = claims(APP);
    c["aud"] = json!("chat");
    let ok = hs(jsonwebtoken::Algorithm::HS512, SECRET.as_bytes(), &c);
    let verified = v.verify(&ok).await.unwrap();
    assert_eq!(
        verified.principal.as_deref(),
        Some("s-1"),
        "sub without principal_claim"
    );
    c["aud"] = json!("other");
    let wrong = hs(jsonwebtoken::Algorithm::HS256, SECRET.as_bytes(), &c);
    assert_eq!(v.verify(&wrong).await.unwrap_err(), JwtError::WrongAudience);
}

#[test]
fn secrets_are_never_shown_and_bad_secrets_are_refused_at_build() {
    let v = verifier(JwtOptions::default());
    let shown = format!("{v:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("HS256"), "{shown}");

    let build = |secret: HmacSecret, algorithms: Vec<JwsAlgorithm>| {
        let config = JwtAuthorizer {
            name: "x".into(),
            identity_source: vec!["$request.header.Authorization".into()],
            issuers: vec![JwtIssuer {
                issuer: APP.into(),
                algorithms,
                secret: Some(secret),
                ..JwtIssuer::default()
            }],
            token_use: None,
            principal_claim: None,
            cache_ttl: std::time::Duration::ZERO,
            csrf: None,
        };
        JwtVerifier::new(&config, reqwest::Client::new(), JwtOptions::default()).map(|_| ())
    };
    let short = build(
        HmacSecret::Value(Secret::new("too-short")),
        vec![JwsAlgorithm::HS256],
    )
    .unwrap_err();
    assert_eq!(short.fault(), Fault::Operator);
    assert!(!short.to_string().contains("too-short"));
    assert!(
        build(
            HmacSecret::Value(Secret::new(SECRET)),
            vec![JwsAlgorithm::RS256]
        )
        .is_err(),
        "a shared secret with a public-key algorithm"
    );
    assert!(
        build(HmacSecret::Value(Secret::new(SECRET)), vec![]).is_err(),
        "no algorithms"
    );
    let missing = build(
        HmacSecret::File("/nonexistent/portcullis-secret".into()),
        vec![JwsAlgorithm::HS256],
    );
    assert!(matches!(missing, Err(JwtError::InvalidConfig(_))));

    let dir = std::env::temp_dir().join(format!("portcullis-hmac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    assert!(build(HmacSecret::File(file.clone()), vec![JwsAlgorithm::HS256]).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}
