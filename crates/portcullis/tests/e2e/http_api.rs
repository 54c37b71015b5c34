//! HTTP APIs end to end: route priority, the `http` (payload 2.0) and `http_proxy`
//! integrations, authorization with scopes and groups, CORS preflights and throttling.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::response::IntoResponse;
use portcullis_testkit::jwt::Issuer;
use portcullis_testkit::*;
use serde_json::{Value, json};

/// A plain HTTP service for `http_proxy`: answers with what it received.
async fn mirror() -> String {
    async fn handler(req: Request) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let body: Bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        if parts.uri.path().ends_with("/slow") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let headers: serde_json::Map<String, Value> = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
            .collect();
        let out = json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        (
            [
                ("x-backend", "mirror"),
                ("connection", "keep-alive, x-secret-hop"),
                ("access-control-allow-origin", "*"),
            ],
            axum::Json(out),
        )
            .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, Router::new().fallback(handler)).await;
    });
    format!("http://{addr}")
}

fn lambda_backend() -> impl Fn(&Value) -> Reply + Send + Sync + 'static {
    |e| {
        let path = e["rawPath"].as_str().unwrap_or_default();
        if path.ends_with("/plain") {
            Reply::Json(200, json!({"hello": "world"}).to_string())
        } else if path.ends_with("/broken") {
            Reply::Json(200, "{not json".into())
        } else if path.ends_with("/slow") {
            Reply::Delay(Duration::from_secs(3), Box::new(Reply::ok()))
        } else {
            Reply::Json(
                200,
                json!({
                    "statusCode": 201,
                    "headers": {"x-route": e["routeKey"], "content-type": "application/json"},
                    "cookies": ["a=1; Path=/", "b=2"],
                    "body": json!({"routeKey": e["routeKey"], "pathParameters": e["pathParameters"]}).to_string()
                })
                .to_string(),
            )
        }
    }
}

async fn http_gateway(backend: &Backend, proxy: &str, issuer: Option<&Issuer>) -> TestGateway {
    let authorizer = match issuer {
        Some(i) => format!(
            "[authorizers.m2m]\ntype = \"jwt\"\nidentity_source = [\"$request.header.Authorization\"]\nissuers = [{{ issuer = \"{}\" }}]\n",
            i.issuer
        ),
        None => String::new(),
    };
    let secured = if issuer.is_some() {
        "\"GET /premium\" = { integration = \"lambda\", authorizer = \"m2m\", scopes = [\"premium-content/read\"] }\n\
         \"POST /premium\" = { integration = \"lambda\", authorizer = \"m2m\", scopes = [\"premium-content/write\"] }\n\
         \"GET /admins\" = { integration = \"lambda\", authorizer = \"m2m\", groups = [\"admins\"] }\n"
    } else {
        ""
    };
    let toml = format!(
        "[http.content]\nbase_path = \"/api\"\n\
         cors = {{ allow_origins = [\"http://app.example\"], allow_headers = [\"authorization\"], allow_methods = [\"GET\", \"POST\"] }}\n\n\
         [http.content.routes]\n\
         \"GET /pets/dog/1\" = {{ integration = \"lambda\" }}\n\
         \"GET /pets/dog/{{id}}\" = {{ integration = \"lambda\" }}\n\
         \"GET /pets/{{kind}}/{{id}}\" = {{ integration = \"lambda\" }}\n\
         \"ANY /pets/{{rest+}}\" = {{ integration = \"lambda\" }}\n\
         \"GET /plain\" = {{ integration = \"lambda\" }}\n\
         \"GET /broken\" = {{ integration = \"lambda\" }}\n\
         \"GET /slow\" = {{ integration = \"lambda\" }}\n\
         \"GET /limited\" = {{ integration = \"lambda\", throttle = {{ rate = 1, burst = 2 }} }}\n\
         \"ANY /proxy/{{path+}}\" = {{ integration = \"mirror\" }}\n\
         {secured}\n\
         [integrations.lambda]\ntype = \"http\"\nurl = \"{}\"\ntimeout = \"1s\"\n\n\
         [integrations.mirror]\ntype = \"http_proxy\"\nurl = \"{proxy}\"\ntimeout = \"1s\"\n\n{authorizer}",
        backend.url
    );
    TestGateway::start(&toml).await
}

fn url(gw: &TestGateway, path: &str) -> String {
    format!("http://{}{}", gw.listen, path)
}

#[tokio::test]
async fn routes_match_with_api_gateway_priority() {
    let backend = Backend::start(lambda_backend()).await;
    let proxy = mirror().await;
    let gw = http_gateway(&backend, &proxy, None).await;
    let client = reqwest::Client::new();
    for (method, path, expected) in [
        ("GET", "/api/pets/dog/1", "GET /pets/dog/1"),
        ("GET", "/api/pets/dog/2", "GET /pets/dog/{id}"),
        ("GET", "/api/pets/cat/2", "GET /pets/{kind}/{id}"),
        ("POST", "/api/pets/cat/2", "ANY /pets/{rest+}"),
        ("GET", "/api/pets/a/b/c", "ANY /pets/{rest+}"),
    ] {
        let response = client
            .request(method.parse().expect("method"), url(&gw, path))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 201, "{method} {path}");
        assert_eq!(response.headers()["x-route"], expected, "{method} {path}");
    }
    for path in [
        "/api/nothing",
        "/api/pets",
        "/elsewhere",
        "/apix/pets/dog/1",
    ] {
        let response = client.get(url(&gw, path)).send().await.expect("send");
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert_eq!(
            response.text().await.expect("text"),
            r#"{"message":"Not Found"}"#
        );
    }
}

#[tokio::test]
async fn http_integration_sends_payload_2_and_maps_the_result() {
    let backend = Backend::start(lambda_backend()).await;
    let proxy = mirror().await;
    let gw = http_gateway(&backend, &proxy, None).await;
    let client = reqwest::Client::new();
    let response = client
        .post(url(&gw, "/api/pets/cat/42?expand=a&expand=b"))
        .header("Cookie", "session=9f2c; theme=dark")
        .header("X-Multi", "one")
        .body("{\"k\":\"v\"}")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 201);
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    let event = backend
        .wait_for(|e| e["rawPath"] == "/api/pets/cat/42")
        .await;
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "ANY /pets/{rest+}");
    assert_eq!(event["rawQueryString"], "expand=a&expand=b");
    assert_eq!(event["queryStringParameters"]["expand"], "a,b");
    assert_eq!(event["cookies"], json!(["session=9f2c", "theme=dark"]));
    assert_eq!(event["headers"]["x-multi"], "one");
    assert_eq!(event["pathParameters"]["rest"], "cat/42");
    assert_eq!(event["body"], "{\"k\":\"v\"}");
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(event["requestContext"]["routeKey"], "ANY /pets/{rest+}");

    // A result without statusCode is 200 JSON of the whole value.
    let plain = client
        .get(url(&gw, "/api/plain"))
        .send()
        .await
        .expect("send");
    assert_eq!(plain.status().as_u16(), 200);
    assert_eq!(plain.headers()["content-type"], "application/json");
    assert_eq!(
        plain.json::<Value>().await.expect("json"),
        json!({"hello": "world"})
    );
}

#[tokio::test]
async fn integration_failures_answer_500_and_504() {
    let backend = Backend::start(lambda_backend()).await;
    let proxy = mirror().await;
    let gw = http_gateway(&backend, &proxy, None).await;
    let client = reqwest::Client::new();
    let broken = client
        .get(url(&gw, "/api/broken"))
        .send()
        .await
        .expect("send");
    assert_eq!(broken.status().as_u16(), 500);
    assert_eq!(
        broken.text().await.expect("text"),
        r#"{"message":"Internal Server Error"}"#
    );
    let slow = client
        .get(url(&gw, "/api/slow"))
        .send()
        .await
        .expect("send");
    assert_eq!(slow.status().as_u16(), 504);
    let slow_proxy = client
        .get(url(&gw, "/api/proxy/slow"))
        .send()
        .await
        .expect("send");
    assert_eq!(slow_proxy.status().as_u16(), 504);
}

#[tokio::test]
async fn http_proxy_forwards_the_request_without_hop_by_hop_headers() {
    let backend = Backend::start(lambda_backend()).await;
    let proxy = mirror().await;
    let gw = http_gateway(&backend, &proxy, None).await;
    let response = reqwest::Client::new()
        .put(url(&gw, "/api/proxy/items/7?x=1"))
        .header("Connection", "keep-alive, x-drop-me")
        .header("x-drop-me", "hop")
        .header("x-keep", "end-to-end")
        .header("x-portcullis-principal", "spoofed")
        .header("x-forwarded-for", "10.9.8.7")
        .header(
            "cookie",
            "theme=dark; portcullis_access=eyJ.session.token; portcullis_refresh=r",
        )
        .body("payload")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-backend"], "mirror");
    assert!(response.headers().get("x-secret-hop").is_none());
    let seen: Value = response.json().await.expect("json");
    assert_eq!(seen["method"], "PUT");
    assert_eq!(
        seen["path"], "/proxy/items/7",
        "the path inside the API is forwarded"
    );
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["body"], "payload");
    let headers = &seen["headers"];
    assert_eq!(headers["x-keep"], "end-to-end");
    assert!(headers.get("x-drop-me").is_none(), "{headers}");
    assert!(
        headers.get("x-portcullis-principal").is_none(),
        "a client cannot spoof the principal"
    );
    assert_eq!(
        headers["cookie"], "theme=dark",
        "the gateway's session cookies stay with the gateway"
    );
    assert_eq!(headers["x-forwarded-for"], "10.9.8.7, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], gw.listen.to_string());
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let backend = Backend::start(lambda_backend()).await;
    let proxy = mirror().await;
    let gw = http_gateway(&backend, &proxy, None).await;
    let toml_limit = 10 * 1024 * 1024;
    let big = vec![b'a'; toml_limit + 1];
    let response = reqwest::Client::new()
        .post(url(&gw, "/api/pets/x/y"))
        .body(big)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 413);
}

#[tokio::test]
async fn jwt_routes_check_tokens_scopes_and_groups() {
    let issuer = Issuer::start("m2m-key").await;
    let backend = Backend::start(lambda_backend()).await;
    let proxy = mirror().await;
    let gw = http_gateway(&backend, &proxy, Some(&issuer)).await;
    let client = reqwest::Client::new();
    let premium = url(&gw, "/api/premium");

    let missing = client.get(&premium).send().await.expect("send");
    assert_eq!(missing.status().as_u16(), 401);
    assert!(
        missing.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Bearer")
    );
    assert_eq!(
        missing.text().await.expect("text"),
        r#"{"message":"Unauthorized"}"#
    );

    let expired = issuer.token(
        json!({"exp": chrono::Utc::now().timestamp() - 600, "scope": "premium-content/read"}),
    );
    let response = client
        .get(&premium)
        .bearer_auth(&expired)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        challenge.contains("error=\"invalid_token\"")
            && challenge.contains("the token has expired"),
        "{challenge}"
    );

    // Seed 004: read scope may GET but not POST.
    let reader = issuer.token(json!({"sub": "reporting-service", "client_id": "reporting-service", "scope": "premium-content/read"}));
    let ok = client
        .get(&premium)
        .bearer_auth(&reader)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status().as_u16(), 201);
    let event = backend.wait_for(|e| e["routeKey"] == "GET /premium").await;
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["client_id"],
        "reporting-service"
    );
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["scopes"],
        json!(["premium-content/read"])
    );
    let denied = client
        .post(&premium)
        .bearer_auth(&reader)
        .send()
        .await
        .expect("send");
    assert_eq!(denied.status().as_u16(), 403);
    assert_eq!(
        denied.text().await.expect("text"),
        r#"{"message":"Forbidden"}"#
    );

    let writer = issuer.token(json!({"scope": "premium-content/write"}));
    assert_eq!(
        client
            .post(&premium)
            .bearer_auth(&writer)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        201
    );

    let member = issuer.token(json!({"cognito:groups": ["members"]}));
    let admin = issuer.token(json!({"cognito:groups": ["admins"]}));
    assert_eq!(
        client
            .get(url(&gw, "/api/admins"))
            .bearer_auth(&member)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        client
            .get(url(&gw, "/api/admins"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        201
    );
}

#[tokio::test]
async fn cors_preflights_are_answered_by_the_gateway() {
    let backend = Backend::start(lambda_backend()).await;
    let proxy = mirror().await;
    let gw = http_gateway(&backend, &proxy, None).await;
    let client = reqwest::Client::new();
    let preflight = client
        .request(http::Method::OPTIONS, url(&gw, "/api/pets/dog/1"))
        .header("Origin", "http://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .expect("send");
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .expect("ascii")
            .contains("POST")
    );
    assert!(
        backend.events().is_empty(),
        "preflights never reach the backend"
    );

    let foreign = client
        .request(http::Method::OPTIONS, url(&gw, "/api/pets/dog/1"))
        .header("Origin", "http://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .expect("send");
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // Actual requests carry the gateway's CORS headers, not the backend's.
    let actual = client
        .get(url(&gw, "/api/proxy/x"))
        .header("Origin", "http://app.example")
        .send()
        .await
        .expect("send");
    assert_eq!(
        actual.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let actual = client
        .get(url(&gw, "/api/proxy/x"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .expect("send");
    assert!(
        actual
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "the backend's `*` is replaced"
    );
}

#[tokio::test]
async fn throttled_routes_answer_429_beyond_the_burst() {
    let backend = Backend::start(lambda_backend()).await;
    let proxy = mirror().await;
    let gw = http_gateway(&backend, &proxy, None).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            client
                .get(url(&gw, "/api/limited"))
                .send()
                .await
                .expect("send")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..2], &[201, 201]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    let limited = client
        .get(url(&gw, "/api/limited"))
        .send()
        .await
        .expect("send");
    if limited.status().as_u16() == 429 {
        assert_eq!(
            limited.text().await.expect("text"),
            r#"{"message":"Too Many Requests"}"#
        );
    }
    // Other routes are not affected.
    assert_eq!(
        client
            .get(url(&gw, "/api/pets/dog/1"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        201
    );
}

#[tokio::test]
async fn request_authorizers_guard_http_routes_with_payload_2() {
    let webhook = Backend::start(|e| {
        let token = e["identitySource"][0].as_str().unwrap_or_default();
        Reply::Json(200, json!({"isAuthorized": token == "letmein", "context": {"tenant": "acme", "roles": ["r"]}}).to_string())
    })
    .await;
    let backend = Backend::start(lambda_backend()).await;
    let toml = format!(
        "[http.api]\n[http.api.routes]\n\"GET /thing\" = {{ integration = \"lambda\", authorizer = \"hook\" }}\n\
         [integrations.lambda]\ntype = \"http\"\nurl = \"{}\"\n\
         [authorizers.hook]\ntype = \"request\"\nurl = \"{}\"\nidentity_source = [\"$request.header.X-Api-Token\"]\n",
        backend.url, webhook.url
    );
    let gw = TestGateway::start(&toml).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(url(&gw, "/thing"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        client
            .get(url(&gw, "/thing"))
            .header("x-api-token", "nope")
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        client
            .get(url(&gw, "/thing"))
            .header("x-api-token", "letmein")
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        201
    );
    let call = webhook
        .wait_for(|e| e["identitySource"][0] == "letmein")
        .await;
    assert_eq!(call["version"], "2.0");
    assert_eq!(call["routeKey"], "GET /thing");
    assert!(
        call["routeArn"]
            .as_str()
            .expect("arn")
            .ends_with("/$default/GET/thing")
    );
    let event = backend.wait_for(|e| e["routeKey"] == "GET /thing").await;
    assert_eq!(
        event["requestContext"]["authorizer"]["lambda"]["tenant"],
        "acme"
    );
}
