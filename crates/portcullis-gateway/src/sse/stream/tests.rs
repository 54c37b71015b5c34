use std::time::Duration;

use http_body_util::BodyExt;

use super::*;
use crate::registry::Transport;
use crate::websocket::admission::Attempt;

fn state() -> Arc<State> {
    State::for_tests()
}

fn api(state: &State) -> Arc<WsApi> {
    let toml = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
                [websocket.chat]\nsse = { heartbeat = \"1d\" }\n";
    let config = portcullis_config::load_str(toml, "test.toml", &|_| None).unwrap();
    let api = WsApi::new(
        &config.websocket["chat"],
        "localhost",
        &Default::default(),
        &state.metrics,
        None,
    )
    .unwrap();
    Arc::new(api)
}

/// A registered SSE connection of `principal`.
fn connection(state: &Arc<State>, api: &Arc<WsApi>, principal: &str) -> Arc<ConnectionHandle> {
    let request = http::Request::get("/chat/events")
        .body(Body::empty())
        .unwrap();
    let attempt = Attempt::new(
        state,
        api.clone(),
        Transport::Sse,
        &request,
        "127.0.0.1:5000".parse().unwrap(),
    );
    let mut handle = attempt.handle(None);
    handle.principal = Some(principal.to_owned());
    let handle = Arc::new(handle);
    state.registry.register(handle.clone());
    handle
}

/// The body's text until it ends (each chunk within 5 s).
async fn read_all(mut body: Body) -> String {
    let mut text = String::new();
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("a chunk within 5 s")
    {
        if let Ok(data) = frame.unwrap().into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    text
}

fn text(s: &str) -> Data {
    Data::Text(s.to_owned().into())
}

#[tokio::test]
async fn replayed_pushes_are_not_written_again_and_live_ones_follow_in_order() {
    let state = state();
    let api = api(&state);
    let replay = api.replay.clone().unwrap();
    let handle = connection(&state, &api, "alice");
    // Logged while the connection is registered: queued for it and in the snapshot.
    for payload in ["one", "two"] {
        let logged = replay
            .log("alice", &Outbound::from(text(payload)))
            .await
            .unwrap()
            .unwrap();
        handle.try_send(logged).unwrap();
    }
    let generation = replay.snapshot(None, None).await.generation;
    let start = EventId::logged(generation, 0).to_string();
    let snapshot = replay.snapshot(Some("alice"), Some(&start)).await;
    let three = replay
        .log("alice", &Outbound::from(text("three")))
        .await
        .unwrap()
        .unwrap();
    handle.try_send(three).unwrap();
    handle.try_send(Outbound::from(text("topic"))).unwrap();
    handle.try_send(Outbound::Close(Close::Deleted)).unwrap();
    let body = open(
        Stream {
            state: state.clone(),
            api: api.clone(),
            handle: handle.clone(),
            identity: None,
        },
        snapshot,
    );
    let g = format!("{generation:08x}");
    let connection_id = handle.id.as_str();
    assert_eq!(
        read_all(body).await,
        format!(
            "id: {g}-0.0\nevent: connected\ndata: {{\"connectionId\":\"{connection_id}\"}}\n\n\
             id: {g}-1\ndata: one\n\n\
             id: {g}-2\ndata: two\n\n\
             id: {g}-3\ndata: three\n\n\
             id: {g}-3.1\ndata: topic\n\n\
             event: close\ndata: {{\"code\":1000,\"reason\":\"Connection deleted\"}}\n\n"
        )
    );
    // The body is gone: so is the connection.
    assert!(state.registry.info(&handle.id).await.is_err());
    assert_eq!(
        handle.try_send(Outbound::from(text("late"))),
        Err(crate::registry::SendError::Gone)
    );
}

#[tokio::test]
async fn a_long_replay_comes_in_bounded_chunks_then_a_killed_queue_ends_the_stream() {
    let state = state();
    let api = api(&state);
    let replay = api.replay.clone().unwrap();
    let big = "x".repeat(CHUNK_BYTES / 2);
    for _ in 0..5 {
        replay
            .log("bob", &Outbound::from(text(&big)))
            .await
            .unwrap();
    }
    let handle = connection(&state, &api, "bob");
    let generation = replay.snapshot(None, None).await.generation;
    let start = EventId::logged(generation, 0).to_string();
    let snapshot = replay.snapshot(Some("bob"), Some(&start)).await;
    let mut body = open(
        Stream {
            state: state.clone(),
            api,
            handle: handle.clone(),
            identity: None,
        },
        snapshot,
    );
    let mut sizes = Vec::new();
    let mut events = 0;
    while events < 5 {
        let frame = body.frame().await.unwrap().unwrap();
        let data = frame.into_data().unwrap();
        sizes.push(data.len());
        events += std::str::from_utf8(&data).unwrap().matches(&big).count();
    }
    assert!(sizes.len() >= 3, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s < 2 * CHUNK_BYTES), "{sizes:?}");
    handle.queue.kill();
    assert!(read_all(body).await.is_empty());
    assert_eq!(state.registry.local_count(), 0);
}
