//! `lambda` integrations and `function` request authorizers: real Python and Node handlers,
//! written here into a temporary directory and run by the gateway, driven by a real WebSocket
//! client and real HTTP requests. Covers the events handlers see, their results, and the
//! answers clients get when a handler fails or runs too long (nothing of the handler's error
//! reaches them).

use std::path::Path;
use std::time::Duration;

use portcullis_testkit::*;
use serde_json::{Value, json};

/// WebSocket and HTTP handler: echoes what it saw; the message or path says how to misbehave.
const APP_PY: &str = r#"
import json, os, time

def record(event):
    with open(os.environ["EVENTS"], "a") as f:
        f.write(json.dumps(event) + "\n")

def chat(event, context):
    rc = event["requestContext"]
    route = rc["routeKey"]
    if route in ("$connect", "$disconnect"):
        record(event)
        q = event.get("queryStringParameters") or {}
        if q.get("raise"):
            raise ValueError("secret connect detail")
        if q.get("refuse"):
            return {"statusCode": int(q["refuse"])}
        return {"statusCode": 200}
    body = json.loads(event.get("body") or "{}")
    action = body.get("action")
    if action == "fail":
        raise RuntimeError("secret message detail")
    if action in ("sleepy", "overtime"):
        time.sleep(2)
    return {"statusCode": 200, "body": json.dumps({
        "route": route, "eventType": rc["eventType"], "connectionId": rc["connectionId"],
        "authorizer": rc.get("authorizer"), "data": body.get("data"),
    })}

def web(event, context):
    path = event["rawPath"]
    if path == "/full":
        return {"statusCode": 201, "headers": {"x-handler": "python"}, "body": "made"}
    if path == "/dict":
        return {"hello": "world"}
    if path == "/string":
        return "plain text"
    if path == "/fail":
        raise Exception("secret http detail")
    if path in ("/slow", "/overtime"):
        time.sleep(2)
    return {"statusCode": 200, "body": json.dumps({
        "routeKey": event["routeKey"],
        "authorizer": event["requestContext"].get("authorizer"),
    })}
"#;

/// Request authorizers: the token says what to answer.
const AUTH_PY: &str = r#"
def simple(event, context):
    token = event["headers"].get("authorization")
    if token == "allow":
        return {"isAuthorized": True, "context": {"user": "ada", "tier": 2}}
    if token == "deny":
        return {"isAuthorized": False}
    if token == "unauthorized":
        raise Exception("Unauthorized")
    raise Exception("secret authorizer detail")

def policy(event, context):
    token = (event.get("queryStringParameters") or {}).get("token")
    if token == "unauthorized":
        raise Exception("Unauthorized")
    if token not in ("allow", "deny"):
        raise Exception("secret authorizer detail")
    return {
        "principalId": "ada",
        "policyDocument": {"Version": "2012-10-17", "Statement": [{
            "Action": "execute-api:Invoke",
            "Effect": "Allow" if token == "allow" else "Deny",
            "Resource": event["methodArn"],
        }]},
        "context": {"plan": "pro"},
    }
"#;

const AUTH_JS: &str = r#"
exports.handler = (event, context, callback) => callback("Unauthorized");
"#;

struct Setup {
    dir: tempfile::TempDir,
    toml: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tmp");
    let py = dir.path().join("py");
    let js = dir.path().join("js");
    std::fs::create_dir_all(&py).expect("mkdir");
    std::fs::create_dir_all(&js).expect("mkdir");
    std::fs::write(py.join("app.py"), APP_PY).expect("write");
    std::fs::write(py.join("auth.py"), AUTH_PY).expect("write");
    std::fs::write(js.join("index.js"), AUTH_JS).expect("write");
    let events = dir.path().join("events.jsonl");
    let function = |name: &str, handler: &str, timeout: &str| {
        format!(
            "[functions.{name}]\nruntime = \"python3.11\"\nhandler = \"{handler}\"\ncode = \"{}\"\n\
             timeout = \"{timeout}\"\nconcurrency = 2\nenvironment = {{ EVENTS = \"{}\" }}\n\n",
            py.display(),
            events.display()
        )
    };
    let mut toml = String::new();
    toml += &function("chat", "app.chat", "10s");
    toml += &function("chat_short", "app.chat", "1s");
    toml += &function("web", "app.web", "10s");
    toml += &function("web_short", "app.web", "1s");
    toml += &function("simple", "auth.simple", "5s");
    toml += &function("policy", "auth.policy", "5s");
    toml += &format!(
        "[functions.node_auth]\nruntime = \"nodejs20.x\"\nhandler = \"index.handler\"\ncode = \"{}\"\n\n",
        js.display()
    );
    toml += r#"
[integrations.chat]
type = "lambda"
function = "chat"

[integrations.chat_impatient]
type = "lambda"
function = "chat"
timeout = "300ms"

[integrations.chat_short]
type = "lambda"
function = "chat_short"

[integrations.web]
type = "lambda"
function = "web"

[integrations.web_impatient]
type = "lambda"
function = "web"
timeout = "300ms"

[integrations.web_short]
type = "lambda"
function = "web_short"

[authorizers.simple]
type = "request"
function = "simple"
identity_source = ["$request.header.Authorization"]
cache_ttl = "0s"

[authorizers.policy]
type = "request"
function = "policy"
identity_source = ["route.request.querystring.token"]

[authorizers.node]
type = "request"
function = "node_auth"
identity_source = ["$request.header.Authorization"]
cache_ttl = "0s"

[websocket.chat]
[websocket.chat.routes]
"$connect" = { integration = "chat" }
"$disconnect" = { integration = "chat" }
"$default" = { integration = "chat", response = true }
sleepy = { integration = "chat_impatient", response = true }
overtime = { integration = "chat_short", response = true }

[websocket.secure]
authorizer = "policy"
[websocket.secure.routes]
"$default" = { integration = "chat", response = true }

[http.api]
[http.api.routes]
"GET /full" = { integration = "web" }
"GET /dict" = { integration = "web" }
"GET /string" = { integration = "web" }
"GET /fail" = { integration = "web" }
"GET /slow" = { integration = "web_impatient" }
"GET /overtime" = { integration = "web_short" }
"GET /me" = { integration = "web", authorizer = "simple" }
"GET /node" = { integration = "web", authorizer = "node" }
"#;
    Setup { dir, toml }
}

/// The events the chat handler recorded (`$connect`, `$disconnect`).
fn recorded(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

async fn wait_recorded(dir: &Path, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        if let Some(e) = recorded(dir).into_iter().find(&pred) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no such event in {:#?}", recorded(dir));
}

fn error_frame(text: &str) -> Value {
    let frame: Value = serde_json::from_str(text).expect("json frame");
    assert!(!text.contains("secret"), "handler detail leaked: {text}");
    frame
}

#[tokio::test]
async fn websocket_routes_run_a_python_handler() {
    let s = setup();
    let gw = TestGateway::start(&s.toml).await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    let connected = wait_recorded(s.dir.path(), |e| {
        e["requestContext"]["eventType"] == "CONNECT"
    })
    .await;
    assert_eq!(connected["requestContext"]["routeKey"], "$connect");
    let id = connected["requestContext"]["connectionId"]
        .as_str()
        .expect("connection id")
        .to_owned();

    // The handler's `body` is the reply.
    send_text(&mut client, r#"{"action":"hello","data":"hi"}"#).await;
    let reply: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
    assert_eq!(reply["route"], "$default");
    assert_eq!(reply["eventType"], "MESSAGE");
    assert_eq!(reply["connectionId"], id.as_str());
    assert_eq!(reply["data"], "hi");

    // A handler that raises: API Gateway's frame, and the connection stays.
    send_text(&mut client, r#"{"action":"fail"}"#).await;
    let frame = error_frame(&next_text(&mut client).await);
    assert_eq!(frame["message"], "Internal server error");
    assert_eq!(frame["connectionId"], id.as_str());
    assert!(frame["requestId"].as_str().is_some_and(|r| !r.is_empty()));

    // The integration gives up before the handler is done: a timeout frame.
    send_text(&mut client, r#"{"action":"sleepy"}"#).await;
    let frame = error_frame(&next_text(&mut client).await);
    assert_eq!(frame["message"], "Endpoint request timed out");

    // The function runs past its own timeout: a failed invocation, as on AWS.
    send_text(&mut client, r#"{"action":"overtime"}"#).await;
    let frame = error_frame(&next_text(&mut client).await);
    assert_eq!(frame["message"], "Internal server error");

    send_text(&mut client, r#"{"action":"hello","data":"still here"}"#).await;
    let reply: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
    assert_eq!(reply["data"], "still here");

    client.close(None).await.expect("close");
    let disconnected = wait_recorded(s.dir.path(), |e| {
        e["requestContext"]["eventType"] == "DISCONNECT"
    })
    .await;
    assert_eq!(disconnected["requestContext"]["routeKey"], "$disconnect");
    assert_eq!(disconnected["requestContext"]["connectionId"], id.as_str());
    gw.shutdown().await;
}

#[tokio::test]
async fn connect_through_a_function_refuses_with_its_status_or_502() {
    let s = setup();
    let gw = TestGateway::start(&s.toml).await;
    let url = gw.ws_url("/chat");
    assert_eq!(
        handshake_status(&format!("{url}?refuse=403"), &[]).await,
        Some(403)
    );
    assert_eq!(
        handshake_status(&format!("{url}?raise=1"), &[]).await,
        Some(502)
    );
    assert_eq!(handshake_status(&url, &[]).await, None);
    gw.shutdown().await;
}

#[tokio::test]
async fn http_routes_read_a_python_result_with_payload_2_rules() {
    let s = setup();
    let gw = TestGateway::start(&s.toml).await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(gw.http_url(path)).send();

    let full = get("/full").await.expect("send");
    assert_eq!(full.status(), 201);
    assert_eq!(full.headers()["x-handler"], "python");
    assert_eq!(full.text().await.expect("body"), "made");

    let dict = get("/dict").await.expect("send");
    assert_eq!(dict.status(), 200);
    assert_eq!(dict.headers()["content-type"], "application/json");
    assert_eq!(
        dict.json::<Value>().await.expect("json"),
        json!({"hello": "world"})
    );

    let string = get("/string").await.expect("send");
    assert_eq!(string.status(), 200);
    assert_eq!(string.text().await.expect("body"), "plain text");

    for (path, status, message) in [
        ("/fail", 500, "Internal Server Error"),
        ("/slow", 504, "Endpoint request timed out"),
        ("/overtime", 500, "Internal Server Error"),
    ] {
        let response = get(path).await.expect("send");
        assert_eq!(response.status(), status, "{path}");
        let body = response.text().await.expect("body");
        assert!(!body.contains("secret"), "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("json"),
            json!({ "message": message }),
            "{path}"
        );
    }
    let metrics = gw.metrics_text().await;
    assert!(metrics.contains("function_error"), "{metrics}");
    assert!(metrics.contains("function_timeout"), "{metrics}");
    gw.shutdown().await;
}

#[tokio::test]
async fn function_authorizers_on_http_routes() {
    let s = setup();
    let gw = TestGateway::start(&s.toml).await;
    let client = reqwest::Client::new();
    let call = |path: &str, token: &str| {
        client
            .get(gw.http_url(path))
            .header("authorization", token)
            .send()
    };

    let allowed = call("/me", "allow").await.expect("send");
    assert_eq!(allowed.status(), 200);
    let seen: Value = allowed.json().await.expect("json");
    assert_eq!(
        seen["authorizer"]["lambda"],
        json!({"user": "ada", "tier": 2})
    );

    for (token, status) in [("deny", 403), ("unauthorized", 401), ("boom", 500)] {
        let response = call("/me", token).await.expect("send");
        assert_eq!(response.status(), status, "{token}");
        let body = response.text().await.expect("body");
        assert!(!body.contains("secret"), "{body}");
    }
    // Node: `callback("Unauthorized")`.
    assert_eq!(call("/node", "x").await.expect("send").status(), 401);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_function_authorizer_with_an_iam_policy_guards_websocket_connect() {
    let s = setup();
    let gw = TestGateway::start(&s.toml).await;
    let url = gw.ws_url("/secure");
    for (token, status) in [("deny", 403), ("unauthorized", 401), ("boom", 500)] {
        assert_eq!(
            handshake_status(&format!("{url}?token={token}"), &[]).await,
            Some(status),
            "{token}"
        );
    }
    let mut client = connect(&format!("{url}?token=allow")).await;
    send_text(&mut client, r#"{"action":"hello"}"#).await;
    let reply: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
    assert_eq!(reply["authorizer"]["principalId"], "ada");
    assert_eq!(reply["authorizer"]["plan"], "pro");
    gw.shutdown().await;
}
