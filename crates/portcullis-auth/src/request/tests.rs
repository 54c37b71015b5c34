#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use portcullis_config::{Csrf, RequestAuthorizer};
use portcullis_core::event::EventType;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

const WS_ARN: &str = "arn:aws:execute-api:eu-west-1:111122223333:k3v9q2m7xa/prod/$connect";
const HTTP_ARN: &str =
    "arn:aws:execute-api:eu-west-1:111122223333:h4t8w2k9mz/$default/GET/orders/42";
const OTHER_HTTP_ARN: &str =
    "arn:aws:execute-api:eu-west-1:111122223333:h4t8w2k9mz/$default/GET/invoices/7";

fn answer(v: Value) -> Result<AuthorizerAnswer, AuthError> {
    parse_answer(200, v.to_string().as_bytes())
}

fn allow_policy(resource: &str) -> Value {
    json!({
        "principalId": "user-7781",
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}
        ]},
        "context": {"tenant": "acme", "tier": 3, "admin": false}
    })
}

fn is_misconfigured(r: &Result<impl std::fmt::Debug, AuthError>) -> bool {
    matches!(r, Err(AuthError::Misconfigured(_)))
}

// ---------------------------------------------------------------------------------------------
// Answer parsing

#[test]
fn parses_policy_answers() {
    let a = answer(allow_policy("*")).unwrap();
    let AuthorizerAnswer::Policy {
        principal_id,
        policy,
        context,
    } = &a
    else {
        panic!("{a:?}")
    };
    assert_eq!(principal_id.as_deref(), Some("user-7781"));
    assert_eq!(policy.statements.len(), 1);
    assert_eq!(
        Value::Object(context.clone()),
        json!({"tenant": "acme", "tier": 3, "admin": false})
    );
    // principalId may be missing (a Deny without it is still a valid answer).
    let a = answer(json!({"policyDocument": {"Statement": {"Action": "*", "Effect": "Deny", "Resource": "*"}}}))
        .unwrap();
    assert!(matches!(
        a,
        AuthorizerAnswer::Policy {
            principal_id: None,
            ..
        }
    ));
    // usageIdentifierKey and other members are ignored.
    let mut v = allow_policy("*");
    v["usageIdentifierKey"] = json!("k");
    assert!(answer(v).is_ok());
}

#[test]
fn parses_simple_answers() {
    let a = answer(json!({"isAuthorized": true, "context": {"roles": ["r", "w"], "m": {"k": 1}}}))
        .unwrap();
    assert_eq!(
        a,
        AuthorizerAnswer::Simple {
            is_authorized: true,
            context: json!({"roles": ["r", "w"], "m": {"k": 1}})
                .as_object()
                .unwrap()
                .clone()
        }
    );
    let a = answer(json!({"isAuthorized": false})).unwrap();
    assert_eq!(
        a,
        AuthorizerAnswer::Simple {
            is_authorized: false,
            context: Map::new()
        }
    );
}

#[test]
fn invalid_answers_are_authorizer_errors() {
    let cases = [
        json!({"principalId": "u", "policyDocument": {"Statement": []}, "context": {"o": {"a": 1}}}),
        json!({"principalId": "u", "policyDocument": {"Statement": []}, "context": {"a": [1]}}),
        json!({"principalId": "u", "policyDocument": {"Statement": []}, "context": {"n": null}}),
        json!({"principalId": "u", "policyDocument": {"Statement": []}, "context": "flat"}),
        json!({"principalId": 5, "policyDocument": {"Statement": []}}),
        json!({"principalId": "u", "policyDocument": {}}),
        json!({"principalId": "u", "policyDocument": {"Statement": {"Effect": "allow", "Action": "*", "Resource": "*"}}}),
        json!({"principalId": "u"}),
        json!({"isAuthorized": "true"}),
        json!({"isAuthorized": true, "context": [1]}),
        json!({}),
        json!([1]),
        json!(true),
        json!("Forbidden"),
        json!("unauthorized"),
        json!({"errorMessage": "Unauthorized: expired"}),
    ];
    for c in cases {
        assert!(is_misconfigured(&answer(c.clone())), "{c}");
    }
    for raw in [&b"not json"[..], b"", b"{", b"\"Unauthorized"] {
        assert!(is_misconfigured(&parse_answer(200, raw)), "{raw:?}");
    }
    // Non-2xx other than 401 with a valid-looking body.
    for status in [403, 404, 500, 502, 302, 100] {
        let body = allow_policy("*").to_string();
        assert!(
            is_misconfigured(&parse_answer(status, body.as_bytes())),
            "{status}"
        );
    }
}

#[test]
fn unauthorized_forms() {
    let cases: &[(u16, &[u8])] = &[
        (401, b""),
        (401, b"anything at all"),
        (
            401,
            br#"{"principalId":"u","policyDocument":{"Statement":[]}}"#,
        ),
        (200, br#""Unauthorized""#),
        (200, br#" "Unauthorized" "#),
        (200, br#"{"message":"Unauthorized"}"#),
        (200, br#"{"errorMessage":"Unauthorized"}"#),
        (
            200,
            br#"{"errorMessage":"Unauthorized","errorType":"Exception","stackTrace":[]}"#,
        ),
        (
            500,
            br#"{"errorMessage":"Unauthorized","errorType":"Exception"}"#,
        ),
        (403, br#"{"message":"Unauthorized"}"#),
    ];
    for (status, body) in cases {
        assert_eq!(
            parse_answer(*status, body),
            Err(AuthError::Unauthorized),
            "{status} {}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn oversize_answer_is_rejected() {
    let mut v = allow_policy("*");
    v["context"]["pad"] = json!("x".repeat(MAX_ANSWER_BYTES));
    let body = v.to_string();
    assert!(body.len() > MAX_ANSWER_BYTES);
    assert!(is_misconfigured(&parse_answer(200, body.as_bytes())));
    // Exactly at the limit is fine.
    let mut v = allow_policy("*");
    v["context"]["pad"] = json!("");
    let base = v.to_string().len();
    v["context"]["pad"] = json!("x".repeat(MAX_ANSWER_BYTES - base));
    let body = v.to_string();
    assert_eq!(body.len(), MAX_ANSWER_BYTES);
    assert!(parse_answer(200, body.as_bytes()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Decisions

#[test]
fn decide_table() {
    let a = "arn:aws:execute-api:eu-west-1:111122223333:k3v9q2m7xa";
    let deny_connect = json!({"principalId": "u", "policyDocument": {"Statement": [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"},
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": WS_ARN}
    ]}});
    let cases: Vec<(Value, &str, Result<(), AuthError>)> = vec![
        (allow_policy(&format!("{a}/prod/*")), WS_ARN, Ok(())),
        (allow_policy(WS_ARN), WS_ARN, Ok(())),
        // Implicit deny: the documented `/*/*` pitfall.
        (
            allow_policy(&format!("{a}/prod/*/*")),
            WS_ARN,
            Err(AuthError::Forbidden),
        ),
        (
            allow_policy(&format!("{a}/dev/*")),
            WS_ARN,
            Err(AuthError::Forbidden),
        ),
        // Explicit deny wins.
        (deny_connect, WS_ARN, Err(AuthError::Forbidden)),
        (json!({"isAuthorized": true}), HTTP_ARN, Ok(())),
        (
            json!({"isAuthorized": false}),
            HTTP_ARN,
            Err(AuthError::Forbidden),
        ),
    ];
    for (i, (v, arn, want)) in cases.into_iter().enumerate() {
        let got = decide(&answer(v).unwrap(), INVOKE, arn).map(|_| ());
        assert_eq!(got, want, "case {i}");
    }
}

#[test]
fn stale_policy_is_reevaluated_per_arn() {
    // A cached policy naming only the first route's ARN does not allow another route.
    let cached = answer(allow_policy(HTTP_ARN)).unwrap();
    assert!(decide(&cached, INVOKE, HTTP_ARN).is_ok());
    assert_eq!(
        decide(&cached, INVOKE, OTHER_HTTP_ARN),
        Err(AuthError::Forbidden)
    );
}

#[test]
fn granted_contexts() {
    let g = decide(&answer(allow_policy("*")).unwrap(), INVOKE, WS_ARN).unwrap();
    assert_eq!(g.principal_id.as_deref(), Some("user-7781"));
    assert_eq!(
        g.websocket_authorizer_context(12),
        json!({"principalId": "user-7781", "integrationLatency": 12, "tenant": "acme", "tier": 3, "admin": false})
    );
    assert_eq!(
        g.http_authorizer_context(),
        json!({"lambda": {"tenant": "acme", "tier": 3, "admin": false}})
    );
    // Context keys cannot override the gateway's own members.
    let mut v = allow_policy("*");
    v["context"] = json!({"principalId": "spoof", "integrationLatency": "x", "k": "v"});
    let g = decide(&answer(v).unwrap(), INVOKE, WS_ARN).unwrap();
    assert_eq!(
        g.websocket_authorizer_context(0),
        json!({"principalId": "user-7781", "integrationLatency": 0, "k": "v"})
    );
    let simple = decide(
        &answer(json!({"isAuthorized": true})).unwrap(),
        INVOKE,
        HTTP_ARN,
    )
    .unwrap();
    assert_eq!(
        simple.websocket_authorizer_context(3),
        json!({"integrationLatency": 3})
    );
}

// ---------------------------------------------------------------------------------------------
// A real webhook on loopback

#[derive(Default)]
struct Hook {
    calls: AtomicUsize,
    bodies: Mutex<Vec<(String, Value)>>,
}

/// Serves `reply` on `POST /`; records every request's content type and body.
async fn webhook(
    reply: impl Fn() -> (StatusCode, String) + Clone + Send + Sync + 'static,
    delay: Duration,
) -> (String, Arc<Hook>) {
    let hook = Arc::new(Hook::default());
    let h = hook.clone();
    let app = Router::new().route(
        "/",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let h = h.clone();
            let reply = reply.clone();
            async move {
                h.calls.fetch_add(1, Ordering::SeqCst);
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                h.bodies.lock().unwrap().push((ct, v));
                tokio::time::sleep(delay).await;
                let (status, body) = reply();
                (status, [("content-type", "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/"), hook)
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn config(url: &str, sources: &[&str]) -> RequestAuthorizer {
    RequestAuthorizer {
        payload_format: portcullis_config::PayloadFormat::V2,
        name: "legacy".into(),
        target: portcullis_config::Target::Url(portcullis_config::HttpUrl::parse(url).unwrap()),
        identity_source: sources.iter().map(|s| (*s).to_owned()).collect(),
        cache_ttl: Duration::from_secs(300),
        csrf: None,
        timeout: Duration::from_secs(10),
    }
}

fn ws_context() -> WsEventContext<'static> {
    WsEventContext {
        route_key: "$connect",
        event_type: EventType::Connect,
        connection_id: "Yq3jQfP1oAMCJzA=",
        connected_at_ms: 1_740_993_242_118,
        request_id: "Yq3jQhTboAMFa1w=",
        message_id: None,
        request_time_ms: 1_740_993_242_119,
        stage: "prod",
        api_id: "k3v9q2m7xa",
        domain_name: "k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com",
        source_ip: "198.51.100.23",
        user_agent: None,
        authorizer: None,
        disconnect_status_code: None,
        disconnect_reason: None,
        connection_type: None,
        caller: None,
    }
}

const WS_HEADERS: &[(&str, &str)] = &[
    ("Host", "k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com"),
    ("Connection", "upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Key", "q8m3c1YbK0uD1lqvXyZ2Qw=="),
    ("Sec-WebSocket-Version", "13"),
    ("Cookie", "JWT=abc.def.ghi; CSRF-TOKEN=t0k"),
    ("X-Forwarded-For", "198.51.100.23"),
    ("x-forwarded-for", "10.0.0.1"),
];

fn ws_query() -> Vec<(String, String)> {
    vec![
        ("room".into(), "lobby".into()),
        ("csrf".into(), "t0k".into()),
        ("room".into(), "annex".into()),
    ]
}

fn ok_reply() -> (StatusCode, String) {
    (
        StatusCode::OK,
        allow_policy("arn:aws:execute-api:eu-west-1:111122223333:*/prod/*").to_string(),
    )
}

#[tokio::test]
async fn websocket_event_on_the_wire() {
    let (url, hook) = webhook(ok_reply, Duration::ZERO).await;
    let client = RequestAuthorizerClient::new(
        &config(&url, &["route.request.header.Cookie"]),
        http_client(),
        None,
    )
    .unwrap();
    let query = ws_query();
    let input = WebSocketAuthorizerRequest {
        method_arn: WS_ARN,
        request: RequestParts {
            headers: WS_HEADERS,
            query: &query,
        },
        context: ws_context(),
        stage_variables: &[],
    };
    let got = client.call_websocket(&input).await.unwrap();
    assert!(matches!(got, AuthorizerAnswer::Policy { .. }));
    let bodies = hook.bodies.lock().unwrap();
    let (ct, body) = &bodies[0];
    assert_eq!(ct, "application/json");
    let want = json!({
        "type": "REQUEST",
        "methodArn": WS_ARN,
        "headers": {
            "Connection": "upgrade",
            "Cookie": "JWT=abc.def.ghi; CSRF-TOKEN=t0k",
            "Host": "k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com",
            "Sec-WebSocket-Key": "q8m3c1YbK0uD1lqvXyZ2Qw==",
            "Sec-WebSocket-Version": "13",
            "Upgrade": "websocket",
            "X-Forwarded-For": "10.0.0.1"
        },
        "multiValueHeaders": {
            "Connection": ["upgrade"],
            "Cookie": ["JWT=abc.def.ghi; CSRF-TOKEN=t0k"],
            "Host": ["k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com"],
            "Sec-WebSocket-Key": ["q8m3c1YbK0uD1lqvXyZ2Qw=="],
            "Sec-WebSocket-Version": ["13"],
            "Upgrade": ["websocket"],
            "X-Forwarded-For": ["198.51.100.23", "10.0.0.1"]
        },
        "queryStringParameters": {"csrf": "t0k", "room": "annex"},
        "multiValueQueryStringParameters": {"csrf": ["t0k"], "room": ["lobby", "annex"]},
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": "Yq3jQhTboAMFa1w=",
            "requestTime": "03/Mar/2025:09:14:02 +0000",
            "messageDirection": "IN",
            "stage": "prod",
            "connectedAt": 1_740_993_242_118_i64,
            "requestTimeEpoch": 1_740_993_242_119_i64,
            "identity": {"sourceIp": "198.51.100.23"},
            "requestId": "Yq3jQhTboAMFa1w=",
            "domainName": "k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com",
            "connectionId": "Yq3jQfP1oAMCJzA=",
            "apiId": "k3v9q2m7xa"
        }
    });
    assert_eq!(body, &want);
    // Member order as in AWS's example.
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "methodArn",
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "stageVariables",
            "requestContext"
        ]
    );
}

#[test]
fn websocket_event_without_query_and_with_user_agent() {
    let mut ctx = ws_context();
    ctx.user_agent = Some("wscat");
    let input = WebSocketAuthorizerRequest {
        method_arn: WS_ARN,
        request: RequestParts {
            headers: &[("Host", "h")],
            query: &[],
        },
        context: ctx,
        stage_variables: &[("env".to_owned(), "prod".to_owned())],
    };
    let v: Value = serde_json::from_slice(&websocket_event(&input)).unwrap();
    assert!(v.get("queryStringParameters").is_none());
    assert!(v.get("multiValueQueryStringParameters").is_none());
    assert_eq!(v["stageVariables"], json!({"env": "prod"}));
    assert_eq!(
        v["requestContext"]["identity"],
        json!({"sourceIp": "198.51.100.23", "userAgent": "wscat"})
    );
}

fn http_input<'a>(
    headers: &'a [(&'a str, &'a str)],
    query: &'a [(String, String)],
    path_parameters: &'a [(String, String)],
) -> HttpAuthorizerRequest<'a> {
    HttpAuthorizerRequest {
        route_arn: HTTP_ARN,
        route_key: "GET /orders/{id}",
        method: "GET",
        raw_path: "/orders/42",
        raw_query_string: "expand=lines&expand=notes",
        protocol: "HTTP/1.1",
        source_ip: "198.51.100.23",
        request_id: "Yq5aB1cDoAMEbcd=",
        account_id: "111122223333",
        api_id: "h4t8w2k9mz",
        domain_name: "h4t8w2k9mz.execute-api.eu-west-1.amazonaws.com",
        stage: "$default",
        time_epoch_ms: 1_740_996_131_004,
        path_parameters,
        stage_variables: &[],
        request: RequestParts { headers, query },
    }
}

const HTTP_HEADERS: &[(&str, &str)] = &[
    ("Authorization", "Bearer abc.def.ghi"),
    ("Host", "h4t8w2k9mz.execute-api.eu-west-1.amazonaws.com"),
    ("User-Agent", "curl/8.5.0"),
    ("Cookie", "session=9f2c; theme=dark"),
    ("X-Multi", "a"),
    ("x-multi", "b"),
];

fn http_query() -> Vec<(String, String)> {
    vec![
        ("expand".into(), "lines".into()),
        ("expand".into(), "notes".into()),
    ]
}

#[tokio::test]
async fn http_v2_event_on_the_wire() {
    let (url, hook) = webhook(
        || {
            (
                StatusCode::OK,
                json!({"isAuthorized": true, "context": {"roles": ["r"]}}).to_string(),
            )
        },
        Duration::ZERO,
    )
    .await;
    let client = RequestAuthorizerClient::new(
        &config(
            &url,
            &["$request.header.Authorization", "$request.cookie.session"],
        ),
        http_client(),
        None,
    )
    .unwrap();
    let query = http_query();
    let params = vec![("id".to_owned(), "42".to_owned())];
    let input = http_input(HTTP_HEADERS, &query, &params);
    let cache = AnswerCache::new(10);
    let ok = client
        .authorize_http(&input, PayloadFormat::V2, &cache)
        .await
        .unwrap();
    assert_eq!(
        ok.granted.http_authorizer_context(),
        json!({"lambda": {"roles": ["r"]}})
    );
    let bodies = hook.bodies.lock().unwrap();
    let want = json!({
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": HTTP_ARN,
        "identitySource": ["Bearer abc.def.ghi", "9f2c"],
        "routeKey": "GET /orders/{id}",
        "rawPath": "/orders/42",
        "rawQueryString": "expand=lines&expand=notes",
        "cookies": ["session=9f2c", "theme=dark"],
        "headers": {
            "authorization": "Bearer abc.def.ghi",
            "host": "h4t8w2k9mz.execute-api.eu-west-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-multi": "a,b"
        },
        "queryStringParameters": {"expand": "lines,notes"},
        "requestContext": {
            "accountId": "111122223333",
            "apiId": "h4t8w2k9mz",
            "domainName": "h4t8w2k9mz.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "h4t8w2k9mz",
            "http": {"method": "GET", "path": "/orders/42", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.23", "userAgent": "curl/8.5.0"},
            "requestId": "Yq5aB1cDoAMEbcd=",
            "routeKey": "GET /orders/{id}",
            "stage": "$default",
            "time": "03/Mar/2025:10:02:11 +0000",
            "timeEpoch": 1_740_996_131_004_i64
        },
        "pathParameters": {"id": "42"}
    });
    assert_eq!(bodies[0].1, want);
}

#[test]
fn http_v2_event_omits_empty_members() {
    let input = http_input(&[("Host", "localhost:8080")], &[], &[]);
    let v: Value = serde_json::from_slice(&http_event(&input, &[])).unwrap();
    for absent in [
        "identitySource",
        "cookies",
        "queryStringParameters",
        "pathParameters",
        "stageVariables",
    ] {
        assert!(v.get(absent).is_none(), "{absent}: {v}");
    }
    assert_eq!(v["headers"], json!({"host": "localhost:8080"}));
    assert_eq!(v["requestContext"]["http"]["userAgent"], json!(""));
}

#[test]
fn http_v1_event_shape() {
    let query = http_query();
    let params = vec![("id".to_owned(), "42".to_owned())];
    let input = http_input(HTTP_HEADERS, &query, &params);
    let v: Value = serde_json::from_slice(&http_v1_event(
        &input,
        &["abc.def.ghi".to_owned(), "x".to_owned()],
    ))
    .unwrap();
    assert_eq!(v["version"], "1.0");
    assert_eq!(v["type"], "REQUEST");
    assert_eq!(v["methodArn"], HTTP_ARN);
    assert_eq!(v["identitySource"], "abc.def.ghi,x");
    assert_eq!(v["authorizationToken"], "abc.def.ghi,x");
    assert_eq!(v["resource"], "/orders/{id}");
    assert_eq!(v["path"], "/orders/42");
    assert_eq!(v["httpMethod"], "GET");
    assert_eq!(v["headers"]["X-Multi"], "b");
    assert_eq!(v["multiValueHeaders"]["X-Multi"], json!(["a", "b"]));
    assert_eq!(v["queryStringParameters"], json!({"expand": "notes"}));
    assert_eq!(
        v["multiValueQueryStringParameters"],
        json!({"expand": ["lines", "notes"]})
    );
    assert_eq!(v["pathParameters"], json!({"id": "42"}));
    assert_eq!(v["stageVariables"], Value::Null);
    assert_eq!(v["requestContext"]["resourcePath"], "/orders/{id}");
    assert_eq!(
        v["requestContext"]["requestTime"],
        "03/Mar/2025:10:02:11 +0000"
    );
    assert_eq!(
        v["requestContext"]["identity"],
        json!({"sourceIp": "198.51.100.23", "userAgent": "curl/8.5.0"})
    );
    let none: Value = serde_json::from_slice(&http_v1_event(&input, &[])).unwrap();
    assert!(none.get("authorizationToken").is_none());
}

#[tokio::test]
async fn webhook_status_mapping() {
    let cases: Vec<(StatusCode, &str, Option<AuthError>)> = vec![
        (StatusCode::UNAUTHORIZED, "", Some(AuthError::Unauthorized)),
        (
            StatusCode::OK,
            r#""Unauthorized""#,
            Some(AuthError::Unauthorized),
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"errorMessage":"Unauthorized","errorType":"Exception"}"#,
            Some(AuthError::Unauthorized),
        ),
        (
            StatusCode::OK,
            r#"{"message":"Unauthorized"}"#,
            Some(AuthError::Unauthorized),
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"errorMessage":"boom"}"#,
            None,
        ),
        (StatusCode::FORBIDDEN, "", None),
        (StatusCode::OK, "not json", None),
    ];
    for (status, body, want) in cases {
        let body = body.to_owned();
        let (url, _) = webhook(move || (status, body.clone()), Duration::ZERO).await;
        let client = RequestAuthorizerClient::new(&config(&url, &[]), http_client(), None).unwrap();
        let input = http_input(HTTP_HEADERS, &[], &[]);
        let got = client.call_http(&input, &[], PayloadFormat::V2).await;
        match want {
            Some(e) => assert_eq!(got, Err(e), "{status}"),
            None => {
                assert!(is_misconfigured(&got), "{status}: {got:?}");
                assert_eq!(got.unwrap_err().status(), 500);
            }
        }
    }
}

#[tokio::test]
async fn webhook_timeout() {
    let (url, hook) = webhook(ok_reply, Duration::from_secs(5)).await;
    let mut cfg = config(&url, &[]);
    cfg.timeout = Duration::from_millis(200);
    let client = RequestAuthorizerClient::new(&cfg, http_client(), None).unwrap();
    let started = Instant::now();
    let got = client
        .call_http(&http_input(HTTP_HEADERS, &[], &[]), &[], PayloadFormat::V2)
        .await;
    assert!(is_misconfigured(&got), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn webhook_answer_limit() {
    // With Content-Length.
    let big = {
        let mut v = allow_policy("*");
        v["context"]["pad"] = json!("x".repeat(MAX_ANSWER_BYTES));
        v.to_string()
    };
    let (url, _) = webhook(move || (StatusCode::OK, big.clone()), Duration::ZERO).await;
    let client = RequestAuthorizerClient::new(&config(&url, &[]), http_client(), None).unwrap();
    let input = http_input(HTTP_HEADERS, &[], &[]);
    let got = client.call_http(&input, &[], PayloadFormat::V2).await;
    assert!(is_misconfigured(&got), "{got:?}");

    // Chunked, without Content-Length, and never-ending: reading stops at the limit.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let _ = sock.read(&mut buf).await;
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        let chunk = format!("400\r\n{}\r\n", " ".repeat(0x400));
        for _ in 0..1000 {
            if sock.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let client = RequestAuthorizerClient::new(
        &config(&format!("http://{addr}/"), &[]),
        http_client(),
        None,
    )
    .unwrap();
    let got = client.call_http(&input, &[], PayloadFormat::V2).await;
    let Err(AuthError::Misconfigured(msg)) = got else {
        panic!("{got:?}")
    };
    assert!(msg.contains("larger than"), "{msg}");
}

#[tokio::test]
async fn unreachable_webhook_is_an_authorizer_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = RequestAuthorizerClient::new(
        &config(&format!("http://{addr}/"), &[]),
        http_client(),
        None,
    )
    .unwrap();
    let got = client
        .call_http(&http_input(HTTP_HEADERS, &[], &[]), &[], PayloadFormat::V2)
        .await;
    assert!(is_misconfigured(&got), "{got:?}");
}

#[tokio::test]
async fn authorize_websocket_pipeline() {
    // The policy names only $connect of this API.
    let (url, hook) = webhook(
        || (StatusCode::OK, allow_policy(WS_ARN).to_string()),
        Duration::ZERO,
    )
    .await;
    let mut cfg = config(
        &url,
        &[
            "route.request.header.Cookie",
            "route.request.querystring.room",
        ],
    );
    cfg.csrf = Some(Csrf {
        cookie: "CSRF-TOKEN".into(),
        query: Some("csrf".into()),
        header: None,
    });
    let client = RequestAuthorizerClient::new(&cfg, http_client(), None).unwrap();
    let cache = AnswerCache::new(100);
    let query = ws_query();
    let mut input = WebSocketAuthorizerRequest {
        method_arn: WS_ARN,
        request: RequestParts {
            headers: WS_HEADERS,
            query: &query,
        },
        context: ws_context(),
        stage_variables: &[],
    };
    let first = client.authorize_websocket(&input, &cache).await.unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.granted.principal_id.as_deref(), Some("user-7781"));
    let ctx = first.websocket_authorizer_context();
    assert_eq!(ctx["principalId"], "user-7781");
    assert_eq!(ctx["tenant"], "acme");
    assert!(ctx["integrationLatency"].is_u64());
    let second = client.authorize_websocket(&input, &cache).await.unwrap();
    assert!(second.from_cache);
    assert_eq!(second.integration_latency_ms, 0);
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
    assert_eq!((cache.hits(), cache.misses()), (1, 1));

    // The cached policy is re-evaluated: another API's $connect is denied.
    let other = "arn:aws:execute-api:eu-west-1:111122223333:zzzzzzzzzz/prod/$connect";
    input.method_arn = other;
    assert_eq!(
        client.authorize_websocket(&input, &cache).await,
        Err(AuthError::Forbidden)
    );
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
    input.method_arn = WS_ARN;

    // Missing identity source: 401 without calling the webhook.
    let no_room: Vec<(String, String)> = vec![("csrf".into(), "t0k".into())];
    input.request.query = &no_room;
    assert_eq!(
        client.authorize_websocket(&input, &cache).await,
        Err(AuthError::Unauthorized)
    );
    // CSRF mismatch: 403 without calling the webhook, even with a cached answer.
    let bad_csrf: Vec<(String, String)> = vec![
        ("room".into(), "annex".into()),
        ("csrf".into(), "nope".into()),
    ];
    input.request.query = &bad_csrf;
    assert_eq!(
        client.authorize_websocket(&input, &cache).await,
        Err(AuthError::Forbidden)
    );
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);

    // A different identity (another room) is another cache key.
    let other_room: Vec<(String, String)> = vec![
        ("room".into(), "attic".into()),
        ("csrf".into(), "t0k".into()),
    ];
    input.request.query = &other_room;
    assert!(
        !client
            .authorize_websocket(&input, &cache)
            .await
            .unwrap()
            .from_cache
    );
    assert_eq!(hook.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn zero_ttl_and_no_sources_do_not_cache() {
    let (url, hook) = webhook(ok_reply, Duration::ZERO).await;
    let cache = AnswerCache::new(100);
    let mut cfg = config(&url, &["route.request.header.Cookie"]);
    cfg.cache_ttl = Duration::ZERO;
    let zero = RequestAuthorizerClient::new(&cfg, http_client(), None).unwrap();
    let none = RequestAuthorizerClient::new(&config(&url, &[]), http_client(), None).unwrap();
    let query = ws_query();
    let input = WebSocketAuthorizerRequest {
        method_arn: WS_ARN,
        request: RequestParts {
            headers: WS_HEADERS,
            query: &query,
        },
        context: ws_context(),
        stage_variables: &[],
    };
    for client in [&zero, &zero, &none, &none] {
        assert!(
            !client
                .authorize_websocket(&input, &cache)
                .await
                .unwrap()
                .from_cache
        );
    }
    assert_eq!(hook.calls.load(Ordering::SeqCst), 4);
    assert!(cache.is_empty());
}

#[tokio::test]
async fn stale_policy_over_http_routes() {
    // Caches the answer for route A; a call to route B with the same token gets 403 until the
    // TTL expires (API Gateway's documented stale-policy behaviour), without a webhook call.
    let (url, hook) = webhook(
        || (StatusCode::OK, allow_policy(HTTP_ARN).to_string()),
        Duration::ZERO,
    )
    .await;
    let client = RequestAuthorizerClient::new(
        &config(&url, &["$request.header.Authorization"]),
        http_client(),
        None,
    )
    .unwrap();
    let cache = AnswerCache::new(100);
    let mut input = http_input(HTTP_HEADERS, &[], &[]);
    assert!(
        client
            .authorize_http(&input, PayloadFormat::V2, &cache)
            .await
            .is_ok()
    );
    input.route_arn = OTHER_HTTP_ARN;
    assert_eq!(
        client
            .authorize_http(&input, PayloadFormat::V2, &cache)
            .await,
        Err(AuthError::Forbidden)
    );
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn client_rejects_bad_config() {
    // A webhook URL that is not an http(s) URL cannot reach the client: it is an `HttpUrl`.
    assert!(portcullis_config::HttpUrl::parse("not a url").is_err());
    assert!(
        RequestAuthorizerClient::new(
            &config("http://127.0.0.1:1/", &["route.request.body.x"]),
            http_client(),
            None
        )
        .is_err()
    );
}
