//! Seed 002's Python Lambda authorizer, unchanged, behind the REQUEST authorizer client.
//!
//! Runs `tests/python/authorizers/seed002_authorizer.py` (which serves the verbatim handler) with
//! a local JWKS server standing in for Cognito, and drives it with HTTP payload format 1.0 — the
//! handler reads `authorizationToken` and `methodArn`. Needs a Python 3 with PyJWT and
//! `cryptography`: `$PORTCULLIS_PYTHON`, `python3` or `/usr/bin/python3`, the first that has
//! them; without one the test prints why and passes without running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use portcullis_auth::error::AuthError;
use portcullis_auth::identity::RequestParts;
use portcullis_auth::request::{
    AnswerCache, AuthorizerAnswer, HttpAuthorizerRequest, PayloadFormat, RequestAuthorizerClient,
    WebSocketAuthorizerRequest,
};
use portcullis_config::RequestAuthorizer;
use portcullis_core::event::{EventType, WsEventContext};
use portcullis_core::policy::http_arn;
use serde_json::Value;

const POOL: &str = "us-east-1_examplePool1";

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/authorizers")
}

/// A Python interpreter that can import what the seed's handler imports.
fn python() -> Option<String> {
    let candidates = std::env::var("PORTCULLIS_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_owned(), "/usr/bin/python3".to_owned()]);
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-c", "import jwt, jwt.algorithms, cryptography"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(py);
        }
    }
    None
}

/// Kills the wrapper when the test ends, however it ends.
struct Wrapper(Child);

impl Drop for Wrapper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(url: &str) -> RequestAuthorizer {
    RequestAuthorizer {
        payload_format: portcullis_config::PayloadFormat::V2,
        name: "seed002".into(),
        target: portcullis_config::Target::Url(portcullis_config::HttpUrl::parse(url).unwrap()),
        identity_source: vec!["$request.header.Authorization".into()],
        cache_ttl: Duration::from_secs(300),
        csrf: None,
        timeout: Duration::from_secs(10),
    }
}

fn request<'a>(
    arn: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
) -> HttpAuthorizerRequest<'a> {
    HttpAuthorizerRequest {
        route_arn: arn,
        route_key: "GET /orders/{id}",
        method: "GET",
        raw_path: path,
        raw_query_string: "",
        protocol: "HTTP/1.1",
        source_ip: "127.0.0.1",
        request_id: "Yq5aB1cDoAMEbcd=",
        account_id: "000000000000",
        api_id: "content",
        domain_name: "localhost",
        stage: "$default",
        time_epoch_ms: 1_740_996_131_004,
        path_parameters: &[],
        stage_variables: &[],
        request: RequestParts {
            headers,
            query: &[],
        },
    }
}

#[tokio::test]
async fn seed002_handler_unchanged() {
    let Some(py) = python() else {
        eprintln!(
            "SKIPPED seed002_handler_unchanged: no python3 with PyJWT and cryptography \
             (set PORTCULLIS_PYTHON)"
        );
        return;
    };

    // Keys and tokens, made by the fixture script.
    let out = Command::new(&py)
        .arg(scripts().join("seed002_keys.py"))
        .arg(POOL)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fixture: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = |name: &str| fixture["tokens"][name].as_str().unwrap().to_owned();

    // Cognito stand-in: the JWKS of the first pool (the second pool's URL answers 404, which the
    // handler skips like any other failure).
    let jwks = fixture["jwks"].clone();
    let app = Router::new().route(
        &format!("/{POOL}/.well-known/jwks.json"),
        get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cognito = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let verbose = std::env::var_os("SEED002_DEBUG").is_some();
    let child = Command::new(&py)
        .arg(scripts().join("seed002_authorizer.py"))
        .env("PORT", "0")
        .env("SEED002_COGNITO_BASE", &cognito)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if verbose {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap();
    let mut wrapper = Wrapper(child);
    let mut line = String::new();
    BufReader::new(wrapper.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("wrapper did not start: {line:?}"))
        .to_owned();

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let client = RequestAuthorizerClient::new(&config(&url), http, None).unwrap();
    let cache = AnswerCache::new(100);
    let orders = http_arn(
        "us-east-1",
        "000000000000",
        "content",
        "$default",
        "GET",
        "/orders/42",
    );
    let invoices = http_arn(
        "us-east-1",
        "000000000000",
        "content",
        "$default",
        "GET",
        "/invoices/7",
    );

    // A valid token: the handler allows exactly methodArn, principalId = sub.
    let valid = token("valid");
    let headers = [("Authorization", valid.as_str()), ("Host", "localhost")];
    let ok = client
        .authorize_http(
            &request(&orders, "/orders/42", &headers),
            PayloadFormat::V1,
            &cache,
        )
        .await
        .unwrap();
    assert!(!ok.from_cache);
    assert_eq!(ok.granted.principal_id.as_deref(), Some("user-7781"));

    // Same token, another route: the cached policy names only /orders/42 → 403 (the stale-policy
    // behaviour API Gateway documents for this very pattern), without calling the handler again.
    assert_eq!(
        client
            .authorize_http(
                &request(&invoices, "/invoices/7", &headers),
                PayloadFormat::V1,
                &cache
            )
            .await,
        Err(AuthError::Forbidden)
    );

    // Tokens the handler rejects: it returns a Deny policy → 403.
    for bad in ["wrong_aud", "expired", "other_key"] {
        let t = token(bad);
        let headers = [("Authorization", t.as_str())];
        assert_eq!(
            client
                .authorize_http(
                    &request(&orders, "/orders/42", &headers),
                    PayloadFormat::V1,
                    &cache
                )
                .await,
            Err(AuthError::Forbidden),
            "{bad}"
        );
    }
    // The seed passes authorizationToken straight to jwt: a "Bearer " prefix is a Deny too.
    let bearer = format!("Bearer {valid}");
    let headers = [("Authorization", bearer.as_str())];
    let answer = client
        .call_http(
            &request(&orders, "/orders/42", &headers),
            std::slice::from_ref(&bearer),
            PayloadFormat::V1,
        )
        .await
        .unwrap();
    assert!(
        matches!(answer, AuthorizerAnswer::Policy { principal_id: Some(ref p), .. } if p == "user")
    );

    // No Authorization header: 401 before the handler is called.
    assert_eq!(
        client
            .authorize_http(
                &request(&orders, "/orders/42", &[]),
                PayloadFormat::V1,
                &cache
            )
            .await,
        Err(AuthError::Unauthorized)
    );

    // The WebSocket REQUEST shape has no authorizationToken: the handler's KeyError is a 500.
    let ws_headers = [("Authorization", valid.as_str())];
    let ws = WebSocketAuthorizerRequest {
        method_arn: "arn:aws:execute-api:us-east-1:000000000000:chat/prod/$connect",
        request: RequestParts {
            headers: &ws_headers,
            query: &[],
        },
        context: WsEventContext {
            route_key: "$connect",
            event_type: EventType::Connect,
            connection_id: "Yq3jQfP1oAMCJzA=",
            connected_at_ms: 0,
            request_id: "Yq3jQhTboAMFa1w=",
            message_id: None,
            request_time_ms: 0,
            stage: "prod",
            api_id: "chat",
            domain_name: "localhost",
            source_ip: "127.0.0.1",
            user_agent: None,
            authorizer: None,
            disconnect_status_code: None,
            disconnect_reason: None,
            connection_type: None,
            caller: None,
        },
        stage_variables: &[],
    };
    let got = client.call_websocket(&ws).await;
    assert!(matches!(got, Err(AuthError::Misconfigured(_))), "{got:?}");

    drop(wrapper);
}
