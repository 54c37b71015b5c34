//! `bench-crypto`: the same-run baselines of the identity provider's benchmarks (P6) — the bare
//! cost of what dominates each request, on `--threads` threads at once (default: one per core,
//! as many as the server under test may use):
//!
//! - `rs256-sign`: RSA-2048 PKCS#1 v1.5 SHA-256 signatures (aws-lc-rs) over an input the size
//!   of a `client_credentials` access token. One signature per token: the ceiling of a token
//!   endpoint that signs RS256.
//! - `argon2-verify`: Argon2id verifications (hash the password with the stored salt, compare in
//!   constant time) with the identity provider's parameters, exactly what a password sign-in
//!   computes: the ceiling of password sign-ins.
//!
//! Each prints one human line and one JSON line (`{"bench":"rs256-sign",...}`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use portcullis_load::args::parse_duration;
use portcullis_load::identity::argon2_parameters;

#[derive(Parser)]
#[command(
    name = "bench-crypto",
    about = "Bare RS256 signing and Argon2id verification rates (baselines of P6)"
)]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// RSA-2048 RS256 signatures per second over a token-sized input.
    Rs256Sign {
        /// Threads signing at once (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Argon2id verifications per second with the identity provider's parameters.
    Argon2Verify {
        /// Threads verifying at once (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        duration: Duration,
    },
}

/// Runs `op` in a loop on `threads` threads for `duration`; returns (operations, seconds).
fn run_threads(
    threads: usize,
    duration: Duration,
    op: &(dyn Fn() -> Result<()> + Sync),
) -> Result<(u64, f64)> {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let counts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<u64> {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        op()?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow!("worker panicked"))?)
            .collect::<Result<Vec<u64>>>()
    })?;
    Ok((counts.iter().sum(), started.elapsed().as_secs_f64()))
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn rs256_sign(threads: usize, duration: Duration) -> Result<()> {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow!("key generation"))?;
    // the shape of the identity provider's client_credentials access token
    let now = chrono::Utc::now().timestamp();
    let header = b64(br#"{"kid":"q5k0k3m3n1x0pZs0m2B0b3H0dHBzOi8vZXhhbXBsZS5jb20","alg":"RS256"}"#);
    let claims = serde_json::json!({
        "sub": "bench-m2m", "token_use": "access", "scope": "bench-api/read", "auth_time": now,
        "iss": "http://127.0.0.1:8080/pools/bench", "exp": now + 3600, "iat": now, "version": 2,
        "jti": "6f1f1c4e-5b1a-4c1e-9a57-0d1b8a4b7c21", "client_id": "bench-m2m",
    });
    let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let rng = SystemRandom::new();
    let sign = || -> Result<()> {
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
            .map_err(|_| anyhow!("signing failed"))
    };
    sign()?;
    let (n, seconds) = run_threads(threads, duration, &sign)?;
    let rate = n as f64 / seconds;
    println!(
        "rs256-sign: {n} RSA-2048 signatures of a {} byte input on {threads} threads in {seconds:.2} s = {rate:.0}/s ({:.0} µs each per thread)",
        input.len(),
        threads as f64 * seconds / n.max(1) as f64 * 1e6
    );
    println!(
        "{}",
        serde_json::json!({"bench": "rs256-sign", "threads": threads, "seconds": seconds, "signatures": n, "per_second": rate.round()})
    );
    Ok(())
}

fn argon2_verify(threads: usize, duration: Duration) -> Result<()> {
    use portcullis_idp::password::{HASH_BYTES, M_COST_KIB, P_COST, T_COST};
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(HASH_BYTES))
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let password = b"bench-Passw0rd";
    let salt = [7u8; 16];
    let mut expected = vec![0u8; HASH_BYTES];
    argon2
        .hash_password_into(password, &salt, &mut expected)
        .map_err(|e| anyhow!("argon2: {e}"))?;
    let verify = || -> Result<()> {
        let mut out = vec![0u8; HASH_BYTES];
        argon2
            .hash_password_into(password, &salt, &mut out)
            .map_err(|e| anyhow!("argon2: {e}"))?;
        aws_lc_rs::constant_time::verify_slices_are_equal(&out, &expected)
            .map_err(|_| anyhow!("argon2 verification did not match"))
    };
    let (n, seconds) = run_threads(threads, duration, &verify)?;
    let rate = n as f64 / seconds;
    let parameters = argon2_parameters();
    println!(
        "argon2-verify: {n} verifications ({parameters}) on {threads} threads in {seconds:.2} s = {rate:.1}/s ({:.1} ms each per thread)",
        threads as f64 * seconds / n.max(1) as f64 * 1e3
    );
    println!(
        "{}",
        serde_json::json!({"bench": "argon2-verify", "threads": threads, "seconds": seconds, "verifications": n, "per_second": (rate * 10.0).round() / 10.0, "argon2": parameters})
    );
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() -> Result<()> {
    match Cli::parse().what {
        What::Rs256Sign { threads, duration } => {
            rs256_sign(threads.unwrap_or_else(cores), duration)
        }
        What::Argon2Verify { threads, duration } => {
            argon2_verify(threads.unwrap_or_else(cores), duration)
        }
    }
}
