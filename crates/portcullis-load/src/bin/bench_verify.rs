//! `bench-verify`: the cost of one JWT verification by a `jwt` authorizer (keys in memory, as
//! after the first JWKS fetch), next to the bare RS256 signature check with aws-lc-rs on the
//! same token in the same run: what the authorizer adds on top of the cryptography.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use portcullis_auth::jwt::{Algorithm, Jwk, JwtOptions, JwtVerifier, KeySource};

#[derive(Parser)]
#[command(
    name = "bench-verify",
    about = "Cost per JWT verification vs the bare RS256 check"
)]
struct Cli {
    #[arg(long, default_value_t = 20_000)]
    iterations: usize,
}

struct Keys(Vec<Jwk>);

impl KeySource for Keys {
    fn jwks(&self) -> Vec<Jwk> {
        self.0.clone()
    }
}

const ISSUER: &str = "http://bench.invalid/pools/main";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow!("key"))?;
    let parts = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
    let now = chrono::Utc::now().timestamp();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1"}"#);
    let claims = serde_json::json!({"iss": ISSUER, "sub": "u", "client_id": "web", "token_use": "access", "scope": "a b", "iat": now, "exp": now + 3600});
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| anyhow!("sign"))?;
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));

    let config = portcullis_config::JwtAuthorizer {
        cache_ttl: std::time::Duration::from_secs(300),
        csrf: None,
        name: "bench".into(),
        identity_source: vec!["$request.header.Authorization".into()],
        issuers: vec![portcullis_config::JwtIssuer {
            issuer: ISSUER.into(),
            audience: vec![],
            jwks_uri: None,
            ..portcullis_config::JwtIssuer::default()
        }],
        token_use: None,
        principal_claim: None,
    };
    let verifier = JwtVerifier::new(&config, reqwest_client()?, JwtOptions::default())
        .map_err(|e| anyhow!("{e}"))?;
    verifier.set_local_keys(
        ISSUER,
        Arc::new(Keys(vec![Jwk::rsa(
            "k1",
            Algorithm::RS256,
            &parts.n,
            &parts.e,
        )])),
    );
    verifier
        .verify(&token)
        .await
        .map_err(|e| anyhow!("warm-up verification failed: {e}"))?;

    let public = signature::RsaPublicKeyComponents {
        n: &parts.n,
        e: &parts.e,
    };
    let started = Instant::now();
    for _ in 0..cli.iterations {
        public
            .verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                input.as_bytes(),
                &sig,
            )
            .map_err(|_| anyhow!("bare verify"))?;
    }
    let bare = started.elapsed().as_secs_f64() / cli.iterations as f64;

    let started = Instant::now();
    for _ in 0..cli.iterations {
        verifier.verify(&token).await.map_err(|e| anyhow!("{e}"))?;
    }
    let full = started.elapsed().as_secs_f64() / cli.iterations as f64;
    println!(
        "bench-verify: {} iterations; bare RS256 check {:.1} µs; jwt authorizer verification {:.1} µs ({:.2}×); {:.0} verifications/s on one core",
        cli.iterations,
        bare * 1e6,
        full * 1e6,
        full / bare,
        1.0 / full
    );
    println!(
        "{}",
        serde_json::json!({"bench": "verify", "iterations": cli.iterations, "bare_us": bare * 1e6, "jwt_us": full * 1e6, "per_second": 1.0 / full})
    );
    Ok(())
}

fn reqwest_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().build()?)
}
