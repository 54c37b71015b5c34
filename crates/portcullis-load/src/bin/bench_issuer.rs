//! `bench-issuer`: an OIDC issuer for authorizer benchmarks. It generates an RSA-2048 key,
//! serves `{issuer}/.well-known/openid-configuration` and `{issuer}/jwks.json`, and writes
//! RS256 access tokens (valid for `--ttl`) to `--token-file`, one per line (`--tokens N`
//! distinct subjects), for `portcullis-load --query access_token=...`. `POST /authorize` is a
//! request-authorizer webhook that allows everything (for authorizer-cache benchmarks).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use clap::Parser;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "bench-issuer",
    about = "OIDC issuer with a generated RSA key, for authorizer benchmarks"
)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:7100")]
    listen: SocketAddr,
    /// Where to write the tokens, one per line.
    #[arg(long)]
    token_file: std::path::PathBuf,
    #[arg(long, default_value_t = 1)]
    tokens: usize,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: i64,
}

const ALLOW: &[u8] = br#"{"principalId":"bench","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]},"context":{"tier":"bench"}}"#;

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn mint(key: &RsaKeyPair, issuer: &str, subject: &str, ttl: i64) -> Result<String> {
    let now = chrono::Utc::now().timestamp();
    let header = serde_json::json!({"alg": "RS256", "kid": "bench-1"});
    let claims = serde_json::json!({
        "iss": issuer, "sub": subject, "client_id": "bench", "token_use": "access",
        "scope": "chat/write", "iat": now, "exp": now + ttl,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| anyhow!("signing failed"))?;
    Ok(format!("{signing_input}.{}", b64(&signature)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let key =
        RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow!("key generation failed"))?;
    let parts = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
    let issuer = format!("http://{}", cli.listen);
    let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "bench-1", "alg": "RS256", "use": "sig", "n": b64(&parts.n), "e": b64(&parts.e)}]}).to_string();
    let discovery =
        serde_json::json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json")})
            .to_string();
    let mut lines = String::new();
    for i in 0..cli.tokens.max(1) {
        lines.push_str(&mint(&key, &issuer, &format!("bench-user-{i}"), cli.ttl)?);
        lines.push('\n');
    }
    std::fs::write(&cli.token_file, lines)
        .with_context(|| format!("writing {}", cli.token_file.display()))?;
    let routes = Arc::new((Bytes::from(discovery), Bytes::from(jwks)));
    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    println!(
        "bench-issuer: issuer {issuer}, tokens in {}",
        cli.token_file.display()
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let routes = routes.clone();
                async move {
                    let body = match req.uri().path() {
                        "/.well-known/openid-configuration" => Some(routes.0.clone()),
                        "/jwks.json" => Some(routes.1.clone()),
                        // A request-authorizer webhook that allows everything (cache benchmarks).
                        "/authorize" => Some(Bytes::from_static(ALLOW)),
                        _ => None,
                    };
                    let mut response = Response::new(Full::new(body.clone().unwrap_or_default()));
                    if body.is_none() {
                        *response.status_mut() = StatusCode::NOT_FOUND;
                    }
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
