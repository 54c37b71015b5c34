//! The `@connections` API over HTTP with SigV4 (boto3 itself is exercised in tests/python).

use std::time::Duration;

use portcullis_testkit::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

fn api(backend: &Backend) -> String {
    format!(
        "[websocket.chat]\nstage = \"prod\"\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n",
        backend.url
    )
}

#[tokio::test]
async fn post_get_delete_in_every_path_form() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend)).await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    let enc = encode_id(&id);
    for (i, prefix) in [
        "/@connections",
        "/prod/@connections",
        "/%40connections",
        "/prod/%40connections",
    ]
    .iter()
    .enumerate()
    {
        let text = format!("push {i}");
        let response = management(
            &gw,
            "POST",
            &format!("{prefix}/{enc}"),
            text.as_bytes(),
            SECRET_ACCESS_KEY,
        )
        .await;
        assert_eq!(response.status().as_u16(), 200, "{prefix}");
        assert_eq!(next_text(&mut client).await, text);
    }

    let response = management(
        &gw,
        "GET",
        &format!("/prod/@connections/{enc}"),
        b"",
        SECRET_ACCESS_KEY,
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let info: Value = response.json().await.expect("json");
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");
    assert!(info["identity"]["userAgent"].is_string());
    let connected = info["connectedAt"].as_str().expect("connectedAt");
    assert!(
        connected.ends_with('Z') && connected.contains('T'),
        "{connected}"
    );
    assert!(info["lastActiveAt"].as_str().expect("lastActiveAt") >= connected);

    let response = management(
        &gw,
        "DELETE",
        &format!("/prod/@connections/{enc}"),
        b"",
        SECRET_ACCESS_KEY,
    )
    .await;
    assert_eq!(response.status().as_u16(), 204);
    assert!(matches!(
        next_message(&mut client).await,
        Some(Message::Close(_)) | None
    ));
    backend.wait_event("DISCONNECT", &id).await;

    // Now gone, for every operation.
    for method in ["POST", "GET", "DELETE"] {
        let response = management(
            &gw,
            method,
            &format!("/prod/@connections/{enc}"),
            b"late",
            SECRET_ACCESS_KEY,
        )
        .await;
        assert_eq!(response.status().as_u16(), 410, "{method}");
        assert_eq!(response.headers()["x-amzn-errortype"], "GoneException");
    }
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_gone() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend)).await;
    for id in ["AAAAAAAAAAAAAAAAAAAA", "short", "Yq3jQfP1oAMCJzA%3D"] {
        let response = management(
            &gw,
            "POST",
            &format!("/@connections/{id}"),
            b"x",
            SECRET_ACCESS_KEY,
        )
        .await;
        assert_eq!(response.status().as_u16(), 410, "{id}");
    }
}

#[tokio::test]
async fn unsigned_and_badly_signed_requests_are_forbidden() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend)).await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    let path = format!("/@connections/{}", encode_id(&id));

    let response = management(&gw, "POST", &path, b"forged", "wrong-secret").await;
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(response.headers()["x-amzn-errortype"], "ForbiddenException");

    let unsigned = reqwest::Client::new()
        .post(gw.admin_url(&path))
        .body("forged")
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status().as_u16(), 403);

    // A signature for another body does not carry over.
    let host = gw.admin.to_string();
    let headers = [("host", host.as_str())];
    let signed = sigv4::sign(
        &sigv4::SignableRequest {
            method: "POST",
            path: &path,
            query: "",
            headers: &headers,
            body: b"original",
        },
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        REGION,
        "execute-api",
        chrono::Utc::now(),
    );
    let mut request = reqwest::Client::new()
        .post(gw.admin_url(&path))
        .body("tampered");
    for (n, v) in &signed {
        request = request.header(n, v);
    }
    assert_eq!(request.send().await.expect("post").status().as_u16(), 403);

    // A signature from 10 minutes ago is outside the clock window.
    let old = chrono::Utc::now() - chrono::Duration::minutes(10);
    let signed = sigv4::sign(
        &sigv4::SignableRequest {
            method: "POST",
            path: &path,
            query: "",
            headers: &headers,
            body: b"old",
        },
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        REGION,
        "execute-api",
        old,
    );
    let mut request = reqwest::Client::new().post(gw.admin_url(&path)).body("old");
    for (n, v) in &signed {
        request = request.header(n, v);
    }
    assert_eq!(request.send().await.expect("post").status().as_u16(), 403);

    // None of it reached the client.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), next_text(&mut client))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn oversized_posts_get_413() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend)).await;
    let (_client, id) = connect_and_id(&gw, "/chat", &backend).await;
    let path = format!("/@connections/{}", encode_id(&id));
    let ok = management(&gw, "POST", &path, &vec![b'a'; 131_072], SECRET_ACCESS_KEY).await;
    assert_eq!(ok.status().as_u16(), 200);
    let big = management(&gw, "POST", &path, &vec![b'a'; 131_073], SECRET_ACCESS_KEY).await;
    assert_eq!(big.status().as_u16(), 413);
    assert_eq!(
        big.headers()["x-amzn-errortype"],
        "PayloadTooLargeException"
    );
}

#[tokio::test]
async fn posts_while_connect_runs_are_gone() {
    let backend = Backend::start(|e| {
        if e["requestContext"]["eventType"] == "CONNECT" {
            Reply::Delay(Duration::from_millis(800), Box::new(Reply::ok()))
        } else {
            Reply::ok()
        }
    })
    .await;
    let gw = TestGateway::start(&api(&backend)).await;
    let (connecting, id) = connect_under_way(&gw, "/chat", &backend).await;
    let path = format!("/@connections/{}", encode_id(&id));
    let during = management(&gw, "POST", &path, b"too early", SECRET_ACCESS_KEY).await;
    assert_eq!(during.status().as_u16(), 410);
    let mut client = connecting.await.expect("join");
    // Registration follows the 101 closely; retry briefly.
    let mut status = 0;
    for _ in 0..50 {
        status = management(&gw, "POST", &path, b"welcome", SECRET_ACCESS_KEY)
            .await
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
    assert_eq!(next_text(&mut client).await, "welcome");
}

#[tokio::test]
async fn list_extension_returns_open_connections() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend)).await;
    let (_a, id_a) = connect_and_id(&gw, "/chat", &backend).await;
    let (_b, id_b) = connect_and_id(&gw, "/chat", &backend).await;
    let response = management(&gw, "GET", "/prod/@connections", b"", SECRET_ACCESS_KEY).await;
    assert_eq!(response.status().as_u16(), 200);
    let list: Value = response.json().await.expect("json");
    let ids: Vec<&str> = list["connections"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["connectionId"].as_str())
        .collect();
    assert!(
        ids.contains(&id_a.as_str()) && ids.contains(&id_b.as_str()),
        "{ids:?}"
    );
    let other_stage = management(&gw, "GET", "/dev/@connections", b"", SECRET_ACCESS_KEY).await;
    let list: Value = other_stage.json().await.expect("json");
    assert_eq!(list["connections"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn non_utf8_posts_arrive_as_binary_frames() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend)).await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    let path = format!("/@connections/{}", encode_id(&id));
    let response = management(&gw, "POST", &path, &[0xff, 0xfe, 0x00], SECRET_ACCESS_KEY).await;
    assert_eq!(response.status().as_u16(), 200);
    match next_message(&mut client).await {
        Some(Message::Binary(b)) => assert_eq!(b.as_ref(), &[0xff, 0xfe, 0x00]),
        other => panic!("expected binary, got {other:?}"),
    }
}
