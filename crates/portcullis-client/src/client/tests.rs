//! The client against a loopback server that verifies each signature as the gateway does and
//! records what it was asked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes as Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::IntoResponse;
use portcullis_auth::sigv4::{self, SignableRequest, VerifyParams};

use super::*;

const SECRET: &str = "client-test-secret";

type Seen = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

fn credentials(secret: &str) -> Credentials {
    Credentials {
        access_key_id: "AKIDCLIENT".into(),
        secret_access_key: secret.into(),
        region: "us-east-1".into(),
    }
}

/// Answers like the management API: 403 `ForbiddenException` for a bad signature, 410 `{}` for
/// connection `gone`, `{"connections": 2}` for pushes, a list for GETs, 204 otherwise.
async fn gateway(
    State(seen): State<Seen>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> impl IntoResponse {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let request = SignableRequest {
        method: method.as_str(),
        path: uri.path(),
        query: "",
        headers: &pairs,
        body: &body,
    };
    let params = VerifyParams {
        region: "us-east-1",
        service: "execute-api",
        now: chrono::Utc::now(),
        max_skew: Duration::from_secs(300),
    };
    let secret = |id: &str| (id == "AKIDCLIENT").then(|| SECRET.to_owned());
    if sigv4::verify(&request, &params, &secret).is_err() {
        return (
            StatusCode::FORBIDDEN,
            [("x-amzn-ErrorType", "ForbiddenException")],
            r#"{"message":"Forbidden"}"#.to_owned(),
        );
    }
    if let Ok(mut seen) = seen.lock() {
        seen.push((method.to_string(), uri.path().to_owned(), body.to_vec()));
    }
    let path = uri.path();
    if path.contains("/@connections/gone") {
        return (
            StatusCode::GONE,
            [("x-amzn-ErrorType", "GoneException")],
            "{}".to_owned(),
        );
    }
    match method {
        HttpMethod::POST if path.contains("/@connections/") => {
            (StatusCode::OK, [("x-amzn-ErrorType", "")], String::new())
        }
        HttpMethod::POST => (
            StatusCode::OK,
            [("x-amzn-ErrorType", "")],
            r#"{"connections":2}"#.to_owned(),
        ),
        HttpMethod::GET => (
            StatusCode::OK,
            [("x-amzn-ErrorType", "")],
            r#"{"connections":[{"connectionId":"a=","connectedAt":"2025-03-03T09:14:02.118Z","transport":"websocket"}]}"#
                .to_owned(),
        ),
        _ => (StatusCode::NO_CONTENT, [("x-amzn-ErrorType", "")], String::new()),
    }
}

async fn serve() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .fallback(gateway)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/prod"), seen)
}

fn calls(seen: &Seen) -> Vec<(String, String, Vec<u8>)> {
    seen.lock().map(|s| s.clone()).unwrap_or_default()
}

#[tokio::test]
async fn every_call_is_signed_and_goes_to_its_path() {
    let (url, seen) = serve().await;
    let m = Management::new(&url, credentials(SECRET)).expect("client");
    assert_eq!(
        m.push_to_user("user 42", Bytes::from("hi")).await.ok(),
        Some(2)
    );
    assert_eq!(m.publish("room:1", Bytes::from("news")).await.ok(), Some(2));
    m.post_to_connection("a=", Bytes::from("one"))
        .await
        .expect("posted");
    m.subscribe("a=", "room:1").await.expect("subscribed");
    m.unsubscribe("a=", "room:1").await.expect("unsubscribed");
    m.disconnect_user("alice").await.expect("disconnected");
    m.delete_connection("a=").await.expect("deleted");
    let listed = m.user_connections("alice").await.expect("listed");
    assert_eq!(listed[0].transport.as_deref(), Some("websocket"));
    assert_eq!(
        m.topic_subscribers("room:1").await.expect("listed").len(),
        1
    );
    assert_eq!(
        m.list_connections().await.expect("listed")[0].connection_id,
        "a="
    );
    let got: Vec<(String, String)> = calls(&seen)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let want = [
        ("POST", "/prod/@users/user%2042"),
        ("POST", "/prod/@topics/room:1"),
        ("POST", "/prod/@connections/a%3D"),
        ("PUT", "/prod/@connections/a%3D/topics/room:1"),
        ("DELETE", "/prod/@connections/a%3D/topics/room:1"),
        ("DELETE", "/prod/@users/alice"),
        ("DELETE", "/prod/@connections/a%3D"),
        ("GET", "/prod/@users/alice"),
        ("GET", "/prod/@topics/room:1"),
        ("GET", "/prod/@connections"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(calls(&seen)[0].2, b"hi");
}

#[tokio::test]
async fn refusals_carry_the_aws_code() {
    let (url, seen) = serve().await;
    let wrong = Management::new(&url, credentials("not-the-secret")).expect("client");
    let err = wrong
        .push_to_user("alice", Bytes::from("x"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some("ForbiddenException"));
    assert_eq!(err.to_string(), "Forbidden (ForbiddenException, HTTP 403)");
    assert!(calls(&seen).is_empty());

    let m = Management::new(&url, credentials(SECRET)).expect("client");
    let gone = m
        .post_to_connection("gone", Bytes::from("x"))
        .await
        .expect_err("gone");
    assert!(gone.is_gone(), "{gone:?}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let m = Management::new(
        &format!("http://127.0.0.1:{port}/prod"),
        credentials(SECRET),
    )
    .expect("client");
    match m.publish("t", Bytes::from("x")).await {
        Err(ClientError::Unreachable { url, reason }) => {
            assert_eq!(url, format!("http://127.0.0.1:{port}/prod/@topics/t"));
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
