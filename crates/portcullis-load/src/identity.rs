//! `tokens` and `sign-ins`: the identity provider's benchmarks (P6).
//!
//! `tokens` asks the token endpoint for `client_credentials` access tokens (HTTP Basic client
//! authentication) from keep-alive clients; `sign-ins` calls the Cognito JSON API's
//! `InitiateAuth` with `USER_PASSWORD_AUTH` for one existing user. Every answer must be a 200
//! that carries a token; anything else is counted and reported, never silently included.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::histogram::micros;
use crate::keepalive::{self, BodyCheck, Endpoint, Outcome};
use crate::process::raise_nofile_limit;
use crate::report::json_line;

pub struct TokensOptions {
    /// The token endpoint, e.g. `http://127.0.0.1:8080/pools/bench/oauth2/token`.
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Requested scopes (space-separated); none: every scope the client may have.
    pub scope: Option<String>,
    pub concurrency: usize,
    pub duration: Duration,
}

pub struct SignInOptions {
    /// Where the Cognito JSON API is served, e.g. `http://127.0.0.1:8080/`.
    pub url: String,
    pub client_id: String,
    pub username: String,
    pub password: String,
    pub concurrency: usize,
    pub duration: Duration,
}

/// The parameters the identity provider hashes passwords with (reported next to sign-ins/s).
pub fn argon2_parameters() -> Value {
    use portcullis_idp::password::{HASH_BYTES, M_COST_KIB, P_COST, T_COST};
    json!({"algorithm": "argon2id", "m_cost_kib": M_COST_KIB, "t_cost": T_COST, "p_cost": P_COST, "output_bytes": HASH_BYTES})
}

/// The request form of `client_credentials`.
pub fn token_form(scope: Option<&str>) -> String {
    let mut form = String::from("grant_type=client_credentials");
    if let Some(scope) = scope {
        form.push_str("&scope=");
        form.extend(utf8_percent_encode(scope, NON_ALPHANUMERIC));
    }
    form
}

/// `Authorization: Basic` of a client: `id:secret` as sent by most clients (not form-encoded
/// first; the benchmark's ids and secrets need no encoding).
pub fn basic_auth(client_id: &str, client_secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{client_id}:{client_secret}"))
    )
}

/// True when `body` is JSON whose `pointer` is a non-empty string.
fn has_string(body: &[u8], pointer: &str) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer(pointer).and_then(Value::as_str).map(str::len))
        .is_some_and(|n| n > 0)
}

fn check_for(pointer: &'static str) -> BodyCheck {
    Arc::new(move |body: &[u8]| has_string(body, pointer))
}

fn headers(pairs: &[(&str, String)]) -> Result<keepalive::Signer> {
    let parsed: Vec<(HeaderName, HeaderValue)> = pairs
        .iter()
        .map(|(n, v)| {
            Ok((
                HeaderName::from_bytes(n.as_bytes())?,
                HeaderValue::from_str(v)?,
            ))
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(move |_| Ok(parsed.clone())))
}

fn path_of(url: &str) -> Result<String> {
    let uri: http::Uri = url.parse()?;
    Ok(uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned()))
}

/// Prints the human line and returns the common JSON fields.
fn summarize(what: &str, unit: &str, concurrency: usize, out: &Outcome) -> Value {
    let valid = out.valid();
    let rate = valid as f64 / out.seconds.max(1e-9);
    let (p50, p99) = (
        micros(out.latency.quantile(0.5)),
        micros(out.latency.quantile(0.99)),
    );
    println!(
        "{what}: {valid} {unit} in {:.2} s = {rate:.0}/s; statuses {}; {} 2xx without a token; {} transport errors; p50 {p50} µs, p99 {p99} µs",
        out.seconds,
        out.statuses_json(),
        out.invalid,
        out.transport_errors
    );
    if let Some(body) = &out.first_error_body {
        println!("{what}: first failed answer: {body}");
    }
    json!({
        "bench": what,
        "concurrency": concurrency,
        "seconds": out.seconds,
        "requests": out.latency.count(),
        "valid": valid,
        "per_second": rate.round(),
        "statuses": out.statuses_json(),
        "invalid": out.invalid,
        "transport_errors": out.transport_errors,
        "p50_us": p50,
        "p99_us": p99,
    })
}

pub async fn tokens(opts: TokensOptions) -> Result<()> {
    raise_nofile_limit()?;
    let endpoint = Endpoint::parse(&opts.url)?;
    let path = path_of(&opts.url)?;
    println!(
        "tokens: {} keep-alive clients, client_credentials for {:?} at http://{}{path} for {:?}",
        opts.concurrency, opts.client_id, endpoint.host, opts.duration
    );
    let out = keepalive::run(keepalive::Load {
        endpoint,
        method: Method::POST,
        path,
        body: Bytes::from(token_form(opts.scope.as_deref())),
        signer: Some(headers(&[
            (
                "authorization",
                basic_auth(&opts.client_id, &opts.client_secret),
            ),
            (
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ])?),
        check: Some(check_for("/access_token")),
        concurrency: opts.concurrency,
        duration: opts.duration,
        pace: None,
    })
    .await?;
    let mut line = summarize("tokens", "tokens", opts.concurrency, &out);
    line["tokens_per_second"] = line["per_second"].clone();
    json_line(line);
    Ok(())
}

/// The `InitiateAuth` body of `USER_PASSWORD_AUTH`.
pub fn initiate_auth_body(client_id: &str, username: &str, password: &str) -> String {
    json!({
        "AuthFlow": "USER_PASSWORD_AUTH",
        "ClientId": client_id,
        "AuthParameters": {"USERNAME": username, "PASSWORD": password},
    })
    .to_string()
}

pub async fn sign_ins(opts: SignInOptions) -> Result<()> {
    raise_nofile_limit()?;
    let endpoint = Endpoint::parse(&opts.url)?;
    let path = path_of(&opts.url)?;
    let argon2 = argon2_parameters();
    println!(
        "sign-ins: {} keep-alive clients, InitiateAuth USER_PASSWORD_AUTH as {:?} at http://{}{path} for {:?}; passwords are {argon2}",
        opts.concurrency, opts.username, endpoint.host, opts.duration
    );
    let out = keepalive::run(keepalive::Load {
        endpoint,
        method: Method::POST,
        path,
        body: Bytes::from(initiate_auth_body(
            &opts.client_id,
            &opts.username,
            &opts.password,
        )),
        signer: Some(headers(&[
            (
                "x-amz-target",
                "AWSCognitoIdentityProviderService.InitiateAuth".to_owned(),
            ),
            ("content-type", "application/x-amz-json-1.1".to_owned()),
        ])?),
        check: Some(check_for("/AuthenticationResult/AccessToken")),
        concurrency: opts.concurrency,
        duration: opts.duration,
        pace: None,
    })
    .await?;
    let mut line = summarize("sign-ins", "sign-ins", opts.concurrency, &out);
    line["sign_ins_per_second"] = line["per_second"].clone();
    line["argon2"] = argon2;
    json_line(line);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_requests() {
        assert_eq!(token_form(None), "grant_type=client_credentials");
        assert_eq!(
            token_form(Some("api/read api/write")),
            "grant_type=client_credentials&scope=api%2Fread%20api%2Fwrite"
        );
        // "m2m:s3cret" in base64
        assert_eq!(basic_auth("m2m", "s3cret"), "Basic bTJtOnMzY3JldA==");
    }

    #[test]
    fn answers_are_checked_for_tokens() {
        let tokens = check_for("/access_token");
        assert!(tokens(br#"{"access_token":"eyJ.x.y","expires_in":3600}"#));
        assert!(!tokens(br#"{"access_token":""}"#));
        assert!(!tokens(br#"{"error":"invalid_client"}"#));
        assert!(!tokens(b"not json"));
        let sign_ins = check_for("/AuthenticationResult/AccessToken");
        assert!(sign_ins(
            br#"{"AuthenticationResult":{"AccessToken":"a","IdToken":"b"},"ChallengeParameters":{}}"#
        ));
        assert!(!sign_ins(br#"{"ChallengeName":"NEW_PASSWORD_REQUIRED"}"#));
        let body: Value =
            serde_json::from_str(&initiate_auth_body("web", "u", "p\"w")).expect("JSON");
        assert_eq!(body["AuthParameters"]["PASSWORD"], "p\"w");
        assert_eq!(argon2_parameters()["algorithm"], "argon2id");
    }
}
