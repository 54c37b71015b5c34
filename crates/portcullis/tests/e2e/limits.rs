//! Limits: frame and message sizes, fragmentation, binary frames, idle timeout, maximum
//! duration, pings, and the bounded send queue.

use std::time::Duration;

use base64::Engine;
use futures_util::SinkExt;
use portcullis_testkit::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

fn api(backend: &Backend, extra: &str) -> String {
    format!(
        "[websocket.chat]\n{extra}\n\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\", response = true }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n",
        backend.url
    )
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(
        &backend,
        "max_frame_bytes = 1024\nmax_message_bytes = 4096",
    ))
    .await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    send_text(&mut client, &"x".repeat(1024)).await;
    assert_eq!(next_text(&mut client).await.len(), 1024);
    let _ = client.send(Message::text("y".repeat(1025))).await;
    assert_eq!(close_code(&mut client).await, Some(1009));
    let event = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1009);
}

fn fragment(payload: &str, first: bool, last: bool) -> Message {
    let opcode = if first {
        OpCode::Data(Data::Text)
    } else {
        OpCode::Data(Data::Continue)
    };
    Message::Frame(Frame::message(payload.as_bytes().to_vec(), opcode, last))
}

#[tokio::test]
async fn fragmented_messages_are_reassembled_up_to_the_message_limit() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(
        &backend,
        "max_frame_bytes = 1024\nmax_message_bytes = 3000",
    ))
    .await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    let parts = ["a".repeat(1000), "b".repeat(1000), "c".repeat(1000)];
    client
        .send(fragment(&parts[0], true, false))
        .await
        .expect("send");
    client
        .send(fragment(&parts[1], false, false))
        .await
        .expect("send");
    client
        .send(fragment(&parts[2], false, true))
        .await
        .expect("send");
    assert_eq!(next_text(&mut client).await, parts.concat());

    // One more fragment than the message limit allows.
    for (i, part) in parts.iter().enumerate() {
        client
            .send(fragment(part, i == 0, false))
            .await
            .expect("send");
    }
    let _ = client.send(fragment("d", false, true)).await;
    assert_eq!(close_code(&mut client).await, Some(1009));
}

#[tokio::test]
async fn binary_frames_close_with_1003_by_default() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "")).await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    client
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    assert_eq!(close_code(&mut client).await, Some(1003));
    let event = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1003);
}

#[tokio::test]
async fn binary_frames_pass_as_base64_when_configured() {
    let backend = Backend::start(|e| {
        if e["requestContext"]["eventType"] == "MESSAGE" {
            // Answer with binary content, base64-encoded.
            Reply::Json(
                200,
                r#"{"statusCode":200,"body":"AAEC/w==","isBase64Encoded":true}"#.into(),
            )
        } else {
            Reply::ok()
        }
    })
    .await;
    let gw = TestGateway::start(&api(&backend, "binary_frames = \"base64\"")).await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    client
        .send(Message::binary(vec![0xffu8, 0x00, 0x10]))
        .await
        .expect("send");
    match next_message(&mut client).await {
        Some(Message::Binary(bytes)) => assert_eq!(bytes.as_ref(), &[0u8, 1, 2, 255]),
        other => panic!("expected binary, got {other:?}"),
    }
    let event = backend
        .wait_for(|e| e["requestContext"]["eventType"] == "MESSAGE")
        .await;
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(
        event["body"],
        base64::engine::general_purpose::STANDARD.encode([0xffu8, 0x00, 0x10])
    );
    assert_eq!(event["requestContext"]["routeKey"], "$default");
}

#[tokio::test]
async fn idle_connections_are_closed_and_disconnected() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(
        &backend,
        "idle_timeout = \"1s\"\nping_interval = \"0s\"",
    ))
    .await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    assert_eq!(close_code(&mut client).await, Some(1001));
    let event = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1001);
    assert_eq!(event["requestContext"]["disconnectReason"], "Idle timeout");
}

#[tokio::test]
async fn activity_keeps_a_connection_past_the_idle_timeout() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(
        &backend,
        "idle_timeout = \"1s\"\nping_interval = \"0s\"",
    ))
    .await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let text = format!("keepalive {i}");
        send_text(&mut client, &text).await;
        assert_eq!(next_text(&mut client).await, text);
    }
}

#[tokio::test]
async fn max_duration_closes_even_busy_connections() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "max_duration = \"1s\"")).await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    send_text(&mut client, "busy").await;
    assert_eq!(next_text(&mut client).await, "busy");
    assert_eq!(close_code(&mut client).await, Some(1001));
    let event = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(
        event["requestContext"]["disconnectReason"],
        "Maximum connection duration reached"
    );
}

#[tokio::test]
async fn server_sends_pings() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "ping_interval = \"200ms\"")).await;
    let mut client = connect(&gw.ws_url("/chat")).await;
    let got_ping = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        while let Some(Ok(m)) = client.next().await {
            if matches!(m, Message::Ping(_)) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got_ping, Ok(true));
}

#[tokio::test]
async fn a_client_that_never_reads_fills_its_queue_and_pushes_get_429() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "send_queue = 4")).await;
    let (client, id) = connect_and_id(&gw, "/chat", &backend).await;
    let path = format!("/@connections/{}", encode_id(&id));
    let payload = vec![b'x'; 128 * 1024];
    let mut statuses = Vec::new();
    // The socket buffers fill first, then the gateway's bounded queue: pushes start failing.
    for _ in 0..200 {
        let status = management(&gw, "POST", &path, &payload, SECRET_ACCESS_KEY)
            .await
            .status()
            .as_u16();
        statuses.push(status);
        if status == 429 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "statuses: {statuses:?}");
    let response = management(&gw, "POST", &path, b"more", SECRET_ACCESS_KEY).await;
    if response.status().as_u16() == 429 {
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "LimitExceededException"
        );
    }
    drop(client);
}

/// Bytes written straight to the socket after the handshake, bypassing the client library.
async fn send_raw(client: &mut Client, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    match client.get_mut() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => {
            tcp.write_all(bytes).await.expect("raw write")
        }
        _ => panic!("plain TCP expected"),
    }
}

#[tokio::test]
async fn malformed_frames_close_with_1002_and_disconnect() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&api(&backend, "")).await;
    // An unmasked client frame, a reserved opcode, and a fragmented control frame.
    for (name, frame) in [
        ("unmasked", vec![0x81u8, 0x02, b'h', b'i']),
        ("reserved opcode", vec![0x83u8, 0x80, 1, 2, 3, 4]),
        ("fragmented ping", vec![0x09u8, 0x80, 1, 2, 3, 4]),
    ] {
        let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
        send_raw(&mut client, &frame).await;
        assert_eq!(close_code(&mut client).await, Some(1002), "{name}");
        let event = backend.wait_event("DISCONNECT", &id).await;
        assert_eq!(
            event["requestContext"]["disconnectStatusCode"], 1002,
            "{name}"
        );
    }
    // The gateway is unharmed.
    let mut client = connect(&gw.ws_url("/chat")).await;
    send_text(&mut client, "still here").await;
    assert_eq!(next_text(&mut client).await, "still here");
}
