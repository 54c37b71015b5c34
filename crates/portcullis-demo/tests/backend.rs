//! The demo backend against a fake `@connections` API that verifies every SigV4 signature with
//! `portcullis_auth::sigv4::verify`, as the gateway does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_auth::sigv4::{self, SignableRequest, VerifyParams};
use portcullis_demo::backend::router;
use portcullis_demo::management::{BroadcastReport, Credentials, Management, broadcast};
use serde_json::{Value, json};

const SECRET: &str = "test-secret";

#[derive(Default)]
struct Fake {
    /// (method, raw path) of every request whose signature checked out.
    verified: Vec<(String, String)>,
    /// (raw path, body) of every accepted POST.
    delivered: Vec<(String, Vec<u8>)>,
    refused: usize,
}

type Shared = Arc<Mutex<Fake>>;

/// `live=` accepts, `gone` answers 410, `broken` answers 500.
async fn fake_management(State(fake): State<Shared>, req: Request) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signable = SignableRequest {
        method: &method,
        path: &path,
        query: &query,
        headers: &header_refs,
        body: &body,
    };
    let params = VerifyParams {
        region: "eu-west-3",
        service: "execute-api",
        now: chrono::Utc::now(),
        max_skew: Duration::from_secs(900),
    };
    let secret_for = |akid: &str| (akid == "AKIDDEMO").then(|| SECRET.to_owned());
    let mut fake = fake.lock().expect("lock");
    if sigv4::verify(&signable, &params, &secret_for).is_err() {
        fake.refused += 1;
        return (
            StatusCode::FORBIDDEN,
            [("x-amzn-ErrorType", "ForbiddenException")],
            "{}",
        )
            .into_response();
    }
    fake.verified.push((method.clone(), path.clone()));
    match (method.as_str(), path.as_str()) {
        ("GET", "/prod/@connections") => axum::Json(json!({
            "connections": [{"connectionId": "live="}, {"connectionId": "gone"}, {"connectionId": "broken"}]
        }))
        .into_response(),
        ("POST", "/prod/@connections/live%3D") => {
            fake.delivered.push((path, body.to_vec()));
            StatusCode::OK.into_response()
        }
        ("POST", "/prod/@connections/gone") => StatusCode::GONE.into_response(),
        ("PUT" | "DELETE", p) if p.starts_with("/prod/@connections/abc%3D/topics/") => {
            fake.delivered.push((format!("{method} {path}"), Vec::new()));
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", "/prod/@users/bob") | ("POST", "/prod/@topics/room:lobby") => {
            fake.delivered.push((path, body.to_vec()));
            axum::Json(json!({"connections": 2})).into_response()
        }
        ("POST", "/prod/@users/nobody") => axum::Json(json!({"connections": 0})).into_response(),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

async fn start_fake() -> (String, Shared) {
    let fake = Shared::default();
    let base = serve(
        Router::new()
            .fallback(fake_management)
            .with_state(fake.clone()),
    )
    .await;
    (base, fake)
}

fn management(base: &str, secret: &str) -> Management {
    Management::new(
        &format!("{base}/prod"),
        Credentials {
            access_key_id: "AKIDDEMO".into(),
            secret_access_key: secret.into(),
            region: "eu-west-3".into(),
        },
    )
    .expect("valid URL")
}

#[tokio::test]
async fn broadcast_signs_every_call_and_counts_gone_connections() {
    let (base, fake) = start_fake().await;
    let report = broadcast(
        &management(&base, SECRET),
        Bytes::from_static(b"hi \xe2\x9c\x93"),
    )
    .await
    .expect("broadcast");
    assert_eq!(
        report,
        BroadcastReport {
            delivered: 1,
            gone: 1,
            failed: 1
        }
    );
    let fake = fake.lock().expect("lock");
    assert_eq!(fake.refused, 0);
    assert_eq!(fake.verified.len(), 4, "{:?}", fake.verified);
    assert_eq!(
        fake.delivered,
        [(
            "/prod/@connections/live%3D".to_owned(),
            "hi ✓".as_bytes().to_vec()
        )]
    );
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_reported() {
    let (base, fake) = start_fake().await;
    let err = broadcast(&management(&base, "wrong"), Bytes::from_static(b"x"))
        .await
        .expect_err("refused");
    assert!(format!("{err:#}").contains("403"), "{err:#}");
    assert_eq!(fake.lock().expect("lock").refused, 1);
}

#[tokio::test]
async fn events_endpoint_routes_and_broadcasts() {
    let (fake_base, fake) = start_fake().await;
    let backend = serve(router(management(&fake_base, SECRET))).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let post = |body: Value| {
        let http = http.clone();
        let url = format!("{backend}/events");
        async move {
            let r = http
                .post(url)
                .body(body.to_string())
                .send()
                .await
                .expect("send");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json answer"))
        }
    };
    let ctx = |event_type: &str, route: &str| json!({"eventType": event_type, "routeKey": route, "connectionId": "abc=", "stage": "prod"});

    assert_eq!(
        post(json!({"requestContext": ctx("CONNECT", "$connect")})).await,
        (200, json!({"statusCode": 200}))
    );
    let (status, sent) = post(json!({
        "requestContext": ctx("MESSAGE", "sendmessage"),
        "body": r#"{"action":"sendmessage","data":"hello all"}"#
    }))
    .await;
    assert_eq!((status, sent), (200, json!({"statusCode": 200})));
    assert_eq!(fake.lock().expect("lock").delivered[0].1, b"hello all");

    let (status, me) =
        post(json!({"requestContext": ctx("MESSAGE", "whoami"), "body": "{}"})).await;
    assert_eq!(status, 200);
    let body: Value =
        serde_json::from_str(me["body"].as_str().expect("body string")).expect("body JSON");
    assert_eq!(body["connectionId"], "abc=");

    let r = http
        .post(format!("{backend}/events"))
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        post(json!({"requestContext": ctx("DISCONNECT", "$disconnect")}))
            .await
            .1,
        json!({"statusCode": 200})
    );
}

/// Waits until the fake has seen `count` deliveries (calls made after the backend answered).
async fn delivered(fake: &Shared, count: usize) -> Vec<(String, Vec<u8>)> {
    for _ in 0..200 {
        let now = fake.lock().expect("lock").delivered.clone();
        if now.len() >= count {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "expected {count} calls, got {:?}",
        fake.lock().expect("lock").delivered
    );
}

#[tokio::test]
async fn signed_in_users_are_subscribed_chat_in_rooms_and_get_direct_messages() {
    let (fake_base, fake) = start_fake().await;
    let backend = serve(router(management(&fake_base, SECRET))).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let post = |body: Value| {
        let http = http.clone();
        let url = format!("{backend}/events");
        async move {
            let r = http
                .post(url)
                .body(body.to_string())
                .send()
                .await
                .expect("send");
            r.json::<Value>().await.expect("json answer")
        }
    };
    let ctx = |event_type: &str, route: &str| {
        json!({
            "eventType": event_type, "routeKey": route, "connectionId": "abc=", "stage": "prod",
            "authorizer": {"principalId": "alice", "jwt": {"claims": {"username": "alice"}}}
        })
    };
    assert_eq!(
        post(json!({"requestContext": ctx("CONNECT", "$connect")})).await,
        json!({"statusCode": 200})
    );
    let calls = delivered(&fake, 3).await;
    assert_eq!(
        calls[..2]
            .iter()
            .map(|(what, _)| what.as_str())
            .collect::<Vec<_>>(),
        [
            "PUT /prod/@connections/abc%3D/topics/room:lobby",
            "PUT /prod/@connections/abc%3D/topics/announcements",
        ]
    );
    assert_eq!(calls[2].0, "/prod/@topics/room:lobby");
    let joined: Value = serde_json::from_slice(&calls[2].1).expect("json");
    assert_eq!(joined["text"], "alice joined");

    let receipt = post(json!({
        "requestContext": ctx("MESSAGE", "direct"),
        "body": r#"{"action":"direct","to":"bob","data":"hi bob"}"#
    }))
    .await;
    let receipt: Value =
        serde_json::from_str(receipt["body"].as_str().expect("body")).expect("json");
    assert_eq!(receipt["type"], "direct-sent");
    assert_eq!(receipt["connections"], 2);
    let calls = delivered(&fake, 4).await;
    assert_eq!(calls[3].0, "/prod/@users/bob");
    let pushed: Value = serde_json::from_slice(&calls[3].1).expect("json");
    assert_eq!(
        (pushed["type"].as_str(), pushed["from"].as_str()),
        (Some("direct"), Some("alice"))
    );

    let nobody = post(json!({
        "requestContext": ctx("MESSAGE", "direct"),
        "body": r#"{"action":"direct","to":"nobody","data":"anyone?"}"#
    }))
    .await;
    let nobody: Value = serde_json::from_str(nobody["body"].as_str().expect("body")).expect("json");
    assert_eq!(nobody["connections"], 0);

    let fake = fake.lock().expect("lock");
    assert_eq!(fake.refused, 0);
    assert!(
        fake.verified
            .iter()
            .all(|(_, p)| !p.ends_with("/@connections")),
        "a signed-in user's message listed every connection: {:?}",
        fake.verified
    );
}
