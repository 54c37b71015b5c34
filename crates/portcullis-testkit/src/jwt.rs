//! A real OIDC issuer for tests: discovery and JWKS over HTTP on loopback, RSA keys generated
//! at test time, tokens minted by an independent library (jsonwebtoken).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

/// An RSA signing key (test-only).
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    /// The public key as a JWK.
    pub jwk: Value,
    /// The public key as PEM (for the "HS256 signed with the public key" attack).
    pub public_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
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

impl SigningKey {
    pub fn generate(kid: &str) -> SigningKey {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa key");
        let private_pem = pem("PRIVATE KEY", pair.as_der().expect("der").as_ref());
        let public_pem = pem(
            "PUBLIC KEY",
            pair.public_key().as_der().expect("der").as_ref(),
        );
        let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let jwk = json!({
            "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&parts.n), "e": URL_SAFE_NO_PAD.encode(&parts.e),
        });
        SigningKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("pem"),
            jwk,
            public_pem,
        }
    }

    /// An RS256 token with this key's `kid`.
    pub fn mint(&self, claims: &Value) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("encode")
    }

    /// An HS256 token whose HMAC secret is this key's public PEM (algorithm confusion).
    pub fn mint_hs256_with_public_key(&self, claims: &Value) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_secret(self.public_pem.as_bytes()),
        )
        .expect("encode")
    }
}

#[derive(Clone)]
struct IssuerState {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

/// An OIDC issuer on loopback: `{issuer}/.well-known/openid-configuration` and `{issuer}/jwks.json`.
pub struct Issuer {
    pub issuer: String,
    pub key: SigningKey,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    pub async fn start(kid: &str) -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let issuer = format!("http://{addr}/pool");
        let key = SigningKey::generate(kid);
        let keys = Arc::new(Mutex::new(vec![key.jwk.clone()]));
        let fetches = Arc::new(AtomicUsize::new(0));
        let state = IssuerState {
            issuer: issuer.clone(),
            keys: keys.clone(),
            fetches: fetches.clone(),
        };
        let app = Router::new()
            .route("/pool/.well-known/openid-configuration", get(discovery))
            .route("/pool/jwks.json", get(jwks))
            .with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Issuer {
            issuer,
            key,
            keys,
            fetches,
        }
    }

    /// Standard claims for this issuer plus `extra` (a `null` value removes a claim).
    pub fn claims(&self, extra: Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({"iss": self.issuer, "sub": "user-1", "iat": now, "exp": now + 3600, "token_use": "access", "client_id": "web"});
        if let (Some(c), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            for (k, v) in extra {
                if v.is_null() {
                    c.remove(&k);
                } else {
                    c.insert(k, v);
                }
            }
        }
        claims
    }

    pub fn token(&self, extra: Value) -> String {
        self.key.mint(&self.claims(extra))
    }

    /// Publish another key in the JWKS.
    pub fn publish(&self, jwk: Value) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.push(jwk);
        }
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn discovery(State(s): State<IssuerState>) -> axum::Json<Value> {
    axum::Json(json!({"issuer": s.issuer, "jwks_uri": format!("{}/jwks.json", s.issuer)}))
}

async fn jwks(State(s): State<IssuerState>) -> axum::Json<Value> {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    let keys = s.keys.lock().map(|k| k.clone()).unwrap_or_default();
    axum::Json(json!({"keys": keys}))
}
