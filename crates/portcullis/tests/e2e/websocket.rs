//! WebSocket API behaviour: events, routing, two-way routes, `$connect` outcomes, error
//! frames, subprotocols and the Origin allow-list.

use std::time::Duration;

use futures_util::SinkExt;
use portcullis_testkit::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

fn api(backend: &Backend, extra: &str, routes: &str) -> String {
    format!(
        "[websocket.chat]\nstage = \"prod\"\n{extra}\n\n[websocket.chat.routes]\n{routes}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\ntimeout = \"1s\"\n",
        backend.url
    )
}

const ALL_ROUTES: &str = r#""$connect" = { integration = "backend" }
"$disconnect" = { integration = "backend" }
"$default" = { integration = "backend", response = true }
sendmessage = { integration = "backend" }
echo = { integration = "backend", response = true }"#;

#[tokio::test]
async fn connect_event_has_the_api_gateway_shape() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
    let url = format!("{}?room=lobby&room=hall&token=abc", gw.ws_url("/chat"));
    let _client = try_connect(&url, &[("User-Agent", "e2e-test/1.0"), ("X-Custom", "one")])
        .await
        .expect("connect");
    let event = backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;

    let rc = &event["requestContext"];
    assert_eq!(rc["routeKey"], "$connect");
    assert_eq!(rc["messageDirection"], "IN");
    assert_eq!(rc["stage"], "prod");
    assert_eq!(rc["requestId"], rc["extendedRequestId"]);
    assert_eq!(rc["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(rc["identity"]["userAgent"], "e2e-test/1.0");
    assert_eq!(rc["domainName"], gw.listen.to_string());
    let api_id = rc["apiId"].as_str().expect("apiId");
    assert_eq!(api_id.len(), 10, "apiId {api_id}");
    let id = rc["connectionId"].as_str().expect("connectionId");
    assert!(
        id.len() >= 16
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "url-safe id {id}"
    );
    assert!(
        rc["connectedAt"].as_i64().expect("connectedAt")
            <= rc["requestTimeEpoch"].as_i64().expect("epoch")
    );
    let time = rc["requestTime"].as_str().expect("requestTime");
    assert!(
        time.ends_with(" +0000") && time.len() == 26,
        "CLF time {time}"
    );
    assert!(rc.get("messageId").is_none());

    assert_eq!(event["headers"]["X-Custom"], "one");
    assert_eq!(event["headers"]["Sec-WebSocket-Version"], "13");
    assert_eq!(event["headers"]["Host"], gw.listen.to_string());
    assert_eq!(event["headers"]["X-Forwarded-For"], "127.0.0.1");
    assert_eq!(
        event["multiValueHeaders"]["X-Custom"],
        serde_json::json!(["one"])
    );
    assert_eq!(event["queryStringParameters"]["room"], "hall");
    assert_eq!(
        event["multiValueQueryStringParameters"]["room"],
        serde_json::json!(["lobby", "hall"])
    );
    assert_eq!(event["isBase64Encoded"], false);
    assert!(event.get("body").is_none());
}

#[tokio::test]
async fn connect_without_query_omits_query_maps() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
    let _client = connect(&gw.ws_url("/chat")).await;
    let event = backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;
    assert!(event.get("queryStringParameters").is_none());
    assert!(event.get("multiValueQueryStringParameters").is_none());
}

#[tokio::test]
async fn messages_are_routed_by_the_selection_expression() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;

    let body = r#"{"action":"sendmessage","data":"hi"}"#;
    send_text(&mut client, body).await;
    let event = backend
        .wait_for(|e| e["requestContext"]["routeKey"] == "sendmessage")
        .await;
    let rc = &event["requestContext"];
    assert_eq!(rc["eventType"], "MESSAGE");
    assert_eq!(rc["connectionId"], id.as_str());
    assert!(rc["messageId"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(event["body"], body);
    assert_eq!(event["isBase64Encoded"], false);
    assert!(event.get("headers").is_none());

    // Each of these falls back to $default, whose reply (an echo) comes back.
    for text in [
        "not json at all",
        r#"{"data":"no action"}"#,
        r#"{"action":"unknown"}"#,
        r#"{"action":"$connect"}"#,
        r#"{"action":{"nested":1}}"#,
    ] {
        send_text(&mut client, text).await;
        assert_eq!(next_text(&mut client).await, text);
        let e = backend.wait_for(|e| e["body"] == text).await;
        assert_eq!(e["requestContext"]["routeKey"], "$default", "for {text}");
    }
}

#[tokio::test]
async fn two_way_routes_reply_and_one_way_routes_do_not() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    send_text(&mut client, r#"{"action":"sendmessage","data":"one-way"}"#).await;
    send_text(&mut client, r#"{"action":"echo","data":"two-way"}"#).await;
    // The only frame that arrives is the two-way reply.
    assert_eq!(
        next_text(&mut client).await,
        r#"{"action":"echo","data":"two-way"}"#
    );
    backend
        .wait_for(|e| e["requestContext"]["routeKey"] == "sendmessage")
        .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), next_text(&mut client))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn custom_selection_expressions_with_braces_work() {
    let backend = Backend::echo().await;
    let routes = r#""chat/join" = { integration = "backend", response = true }"#;
    let extra = r#"route_selection_expression = "${request.body.service}/${request.body.action}""#;
    let gw = TestGateway::start(&api(&backend, extra, routes)).await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    let body = r#"{"service":"chat","action":"join"}"#;
    send_text(&mut client, body).await;
    assert_eq!(next_text(&mut client).await, body);
    let e = backend.wait_for(|e| e["body"] == body).await;
    assert_eq!(e["requestContext"]["routeKey"], "chat/join");
}

#[tokio::test]
async fn no_route_and_no_default_answers_forbidden_and_stays_open() {
    let backend = Backend::echo().await;
    let routes = r#"echo = { integration = "backend", response = true }"#;
    let gw = TestGateway::start(&api(&backend, "", routes)).await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    send_text(&mut client, r#"{"action":"nothing"}"#).await;
    let frame = next_text(&mut client).await;
    assert!(
        frame.starts_with(r#"{"message": "Forbidden", "connectionId":""#),
        "{frame}"
    );
    let v: Value = serde_json::from_str(&frame).expect("json");
    assert!(v["requestId"].as_str().is_some_and(|r| r.len() == 16));
    // Still open: a routed message works.
    send_text(&mut client, r#"{"action":"echo"}"#).await;
    assert_eq!(next_text(&mut client).await, r#"{"action":"echo"}"#);
}

#[tokio::test]
async fn connect_status_from_the_backend_decides_the_upgrade() {
    for status in [400u16, 401, 403, 429, 500] {
        let backend = Backend::start(move |_| Reply::status(status)).await;
        let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
        assert_eq!(
            handshake_status(&gw.ws_url("/chat"), &[]).await,
            Some(status)
        );
        assert_eq!(gw.open_connections(), 0);
    }
    // 2xx other than 200 accepts; a result without statusCode accepts.
    for reply in [
        Reply::status(201),
        Reply::Json(200, "{}".into()),
        Reply::Json(200, String::new()),
    ] {
        let backend = Backend::start(move |_| reply.clone()).await;
        let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
        assert_eq!(handshake_status(&gw.ws_url("/chat"), &[]).await, None);
    }
}

#[tokio::test]
async fn failing_connect_integrations_answer_502() {
    // Backend errors, invalid results, and an unreachable backend.
    for reply in [
        Reply::Json(500, "oops".into()),
        Reply::Json(200, "not json".into()),
    ] {
        let backend = Backend::start(move |_| reply.clone()).await;
        let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
        assert_eq!(handshake_status(&gw.ws_url("/chat"), &[]).await, Some(502));
    }
    let unreachable = "[websocket.chat]\n[websocket.chat.routes]\n\"$connect\" = { integration = \"down\" }\n\
        [integrations.down]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/nothing\"\n";
    let gw = TestGateway::start(unreachable).await;
    assert_eq!(handshake_status(&gw.ws_url("/chat"), &[]).await, Some(502));
}

#[tokio::test]
async fn connect_result_headers_go_on_the_101() {
    let backend = Backend::start(|e| match e["requestContext"]["eventType"].as_str() {
        Some("CONNECT") => Reply::Json(
            200,
            r#"{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"chat.v2","X-Demo":"yes"}}"#
                .into(),
        ),
        _ => Reply::ok(),
    })
    .await;
    let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
    let (_client, response) = try_connect_response(
        &gw.ws_url("/chat"),
        &[("Sec-WebSocket-Protocol", "chat.v1, chat.v2")],
    )
    .await
    .expect("connect");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2");
    assert_eq!(response.headers()["x-demo"], "yes");
}

#[tokio::test]
async fn subprotocol_token_is_never_echoed() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, r#"subprotocols = ["chat.v1"]"#, ALL_ROUTES)).await;
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";
    let (_client, response) = try_connect_response(
        &gw.ws_url("/chat"),
        &[("Sec-WebSocket-Protocol", &format!("chat.v1, {token}"))],
    )
    .await
    .expect("connect");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    assert!(
        response
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .all(|v| !v.to_str().unwrap_or("").contains(token))
    );
}

#[tokio::test]
async fn origin_allow_list_is_enforced_on_the_upgrade() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(
        &backend,
        r#"allowed_origins = ["http://app.example"]"#,
        ALL_ROUTES,
    ))
    .await;
    let url = gw.ws_url("/chat");
    assert_eq!(
        handshake_status(&url, &[("Origin", "http://evil.example")]).await,
        Some(403)
    );
    assert_eq!(
        handshake_status(&url, &[("Origin", "http://app.example")]).await,
        None
    );
    // Non-browser clients send no Origin.
    assert_eq!(handshake_status(&url, &[]).await, None);
    // A refused origin never reaches $connect.
    let connects = backend
        .events()
        .iter()
        .filter(|e| e["requestContext"]["eventType"] == "CONNECT")
        .count();
    assert_eq!(connects, 2);
}

#[tokio::test]
async fn message_integration_failures_send_aws_error_frames_and_keep_the_socket() {
    let backend = Backend::start(|e| {
        let body = e["body"].as_str().unwrap_or_default();
        if body.contains("crash") {
            Reply::Json(500, "boom".into())
        } else if body.contains("garbage") {
            Reply::Json(200, "{not json".into())
        } else if body.contains("slow") {
            Reply::Delay(Duration::from_secs(3), Box::new(Reply::ok()))
        } else if e["requestContext"]["eventType"] == "MESSAGE" {
            Reply::body("fine")
        } else {
            Reply::ok()
        }
    })
    .await;
    let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    for (msg, expected) in [
        ("crash", "Internal server error"),
        ("garbage", "Internal server error"),
        ("slow", "Endpoint request timed out"),
    ] {
        send_text(
            &mut client,
            &format!(r#"{{"action":"echo","data":"{msg}"}}"#),
        )
        .await;
        let frame = next_text(&mut client).await;
        let prefix = format!(r#"{{"message": "{expected}", "connectionId":"{id}", "requestId":""#);
        assert!(frame.starts_with(&prefix), "{msg}: {frame}");
    }
    send_text(&mut client, r#"{"action":"echo","data":"ok"}"#).await;
    assert_eq!(next_text(&mut client).await, "fine");
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("portcullis_errors_total{kind=\"integration_status\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_errors_total{kind=\"integration_timeout\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_way_route_failures_also_send_the_error_frame() {
    let backend = Backend::start(|e| {
        if e["requestContext"]["eventType"] == "MESSAGE" {
            Reply::Json(502, "bad".into())
        } else {
            Reply::ok()
        }
    })
    .await;
    let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    send_text(&mut client, r#"{"action":"sendmessage"}"#).await;
    assert!(
        next_text(&mut client)
            .await
            .starts_with(r#"{"message": "Internal server error""#)
    );
}

#[tokio::test]
async fn disconnect_event_reports_the_close_code() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;

    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    client
        .close(Some(CloseFrame {
            code: 4001u16.into(),
            reason: "bye now".into(),
        }))
        .await
        .expect("close");
    let event = backend.wait_event("DISCONNECT", &id).await;
    let rc = &event["requestContext"];
    assert_eq!(rc["routeKey"], "$disconnect");
    assert_eq!(rc["disconnectStatusCode"], 4001);
    assert_eq!(rc["disconnectReason"], "bye now");
    assert_eq!(event["headers"]["Host"], gw.listen.to_string());
    assert_eq!(event["headers"]["x-api-key"], "");
    assert_eq!(event["headers"]["X-Forwarded-For"], "");
    assert_eq!(event["headers"]["x-restapi"], "");
    assert_eq!(
        event["multiValueHeaders"]["x-restapi"],
        serde_json::json!([""])
    );
    assert_eq!(event["isBase64Encoded"], false);

    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    client.send(Message::Close(None)).await.expect("close");
    let event = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1005);
    assert_eq!(
        event["requestContext"]["disconnectReason"],
        "Client-side close frame status not set"
    );

    // A dropped TCP connection without a close frame.
    let (client, id) = connect_and_id(&gw, "/chat", &backend).await;
    drop(client);
    let event = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1006);
}

#[tokio::test]
async fn connect_without_connect_route_is_accepted() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(
        &backend,
        "",
        r#""$default" = { integration = "backend", response = true }"#,
    ))
    .await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    send_text(&mut client, "hello").await;
    assert_eq!(next_text(&mut client).await, "hello");
    assert!(
        backend
            .events()
            .iter()
            .all(|e| e["requestContext"]["eventType"] == "MESSAGE")
    );
}

#[tokio::test]
async fn unknown_paths_and_plain_http_are_refused() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "", ALL_ROUTES)).await;
    assert_eq!(handshake_status(&gw.ws_url("/nope"), &[]).await, Some(404));
    let plain = reqwest::get(format!("http://{}/chat", gw.listen))
        .await
        .expect("get");
    assert_eq!(plain.status().as_u16(), 426);
}

#[tokio::test]
async fn several_apis_are_served_on_their_own_paths() {
    let backend = Backend::echo().await;
    let toml = format!(
        "[websocket.a]\nstage = \"one\"\n[websocket.a.routes]\n\"$default\" = {{ integration = \"b\", response = true }}\n\
         [websocket.b]\npath = \"/ws/b\"\nstage = \"two\"\n[websocket.b.routes]\n\"$default\" = {{ integration = \"b\", response = true }}\n\
         [integrations.b]\ntype = \"http\"\nurl = \"{}\"\n",
        backend.url
    );
    let gw = TestGateway::start(&toml).await;
    let mut a = connect(&gw.ws_url("/a")).await;
    let mut b = connect(&gw.ws_url("/ws/b")).await;
    send_text(&mut a, "to a").await;
    send_text(&mut b, "to b").await;
    assert_eq!(next_text(&mut a).await, "to a");
    assert_eq!(next_text(&mut b).await, "to b");
    let ea = backend.wait_for(|e| e["body"] == "to a").await;
    let eb = backend.wait_for(|e| e["body"] == "to b").await;
    assert_eq!(ea["requestContext"]["stage"], "one");
    assert_eq!(eb["requestContext"]["stage"], "two");
    assert_ne!(ea["requestContext"]["apiId"], eb["requestContext"]["apiId"]);
}
