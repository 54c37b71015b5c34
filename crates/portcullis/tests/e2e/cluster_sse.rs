#![allow(clippy::unwrap_used)]
//! SSE streams of a cluster: the replay log is shared in Redis, so a stream that reconnects to
//! another node (what any load balancer does) resumes there with what it missed, under the
//! same ids; ids of another generation (Redis came back empty) and a log that cannot be read
//! (Redis down) get `reset`.

use portcullis_testkit::redis::TempRedis;
use portcullis_testkit::sse::{self, Protocol, SseClient};
use portcullis_testkit::*;
use serde_json::{Value, json};

use crate::cluster::{call, eventually, metric, webhook};

fn config(backend: &Backend, webhook: &Backend, redis: &TempRedis, node: &str) -> String {
    format!(
        "[websocket.chat]\nstage = \"prod\"\nauthorizer = \"cookie\"\nsse = {{ replay = 5 }}\n\
         [websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.cookie]\ntype = \"request\"\nurl = \"{}\"\nidentity_source = [\"route.request.header.Cookie\"]\n\n\
         [cluster]\nredis = \"{}\"\nnode_id = \"{node}\"\nheartbeat = \"1s\"\n",
        backend.url,
        webhook.url,
        redis.url()
    )
}

/// bob's stream on `gw`, resuming after `last` if given.
async fn open(gw: &TestGateway, last: Option<&str>) -> SseClient {
    let mut headers = vec![("cookie", "user=bob")];
    if let Some(last) = last {
        headers.push(("last-event-id", last));
    }
    match sse::connect(&gw.http_url("/chat/events"), &headers, Protocol::Http1).await {
        Ok(client) => client,
        Err((status, _, body)) => panic!("stream refused: {status} {body}"),
    }
}

/// The `connected` event, which must come first: (connection id, its event id).
async fn connected(client: &mut SseClient) -> (String, String) {
    let event = client.event().await;
    assert_eq!(event.event, "connected");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    let id = event.id.unwrap();
    (data["connectionId"].as_str().unwrap().to_owned(), id)
}

fn generation_of(id: &str) -> &str {
    id.split_once('-').unwrap().0
}

async fn push(gw: &TestGateway, text: &str) -> (u16, Value) {
    call(gw, "POST", "/prod/@users/bob", text.as_bytes()).await
}

#[tokio::test]
async fn a_stream_resumes_on_another_node_with_what_it_missed() {
    let Some(mut redis) = TempRedis::start("a_stream_resumes_on_another_node").await else {
        return;
    };
    let (backend, webhook) = (Backend::echo().await, webhook().await);
    let mut nodes = Vec::new();
    for name in ["node-a", "node-b", "node-c"] {
        nodes.push(TestGateway::start(&config(&backend, &webhook, &redis, name)).await);
    }

    // bob's stream on node A gets pushes made on A and on B, numbered by the shared log.
    let mut on_a = open(&nodes[0], None).await;
    let (id_a, start) = connected(&mut on_a).await;
    let generation = generation_of(&start).to_owned();
    assert_eq!(
        push(&nodes[0], "one").await,
        (200, json!({"connections": 1}))
    );
    assert_eq!(
        push(&nodes[1], "two").await,
        (200, json!({"connections": 1}))
    );
    let one = on_a.event().await;
    let two = on_a.event().await;
    assert_eq!((one.data.as_str(), two.data.as_str()), ("one", "two"));
    assert_eq!(generation_of(two.id.as_deref().unwrap()), generation);
    drop(on_a);
    backend.wait_event("DISCONNECT", &id_a).await;

    // While he is away, two pushes are made on node C: a stream of his that resumes with
    // the id of the first one (an auditor's view of the ids every stream gives them).
    let mut watcher = open(&nodes[2], one.id.as_deref()).await;
    connected(&mut watcher).await;
    assert_eq!(
        watcher.event().await,
        two,
        "replayed on another node, same id"
    );
    for text in ["three", "four\nlines"] {
        assert_eq!(
            push(&nodes[2], text).await,
            (200, json!({"connections": 1}))
        );
    }
    let missed = [watcher.event().await, watcher.event().await];
    assert_eq!(missed[1].data, "four\nlines");

    // He reconnects to node B with his last id: exactly what he missed, in order, same ids,
    // then live pushes, each once.
    let mut on_b = open(&nodes[1], two.id.as_deref()).await;
    let (_, resumed) = connected(&mut on_b).await;
    assert_eq!(generation_of(&resumed), generation);
    assert_eq!([on_b.event().await, on_b.event().await], missed);
    assert_eq!(
        push(&nodes[0], "five").await,
        (200, json!({"connections": 2}))
    );
    let five = on_b.event().await;
    assert_eq!(five.data, "five");
    assert_eq!(watcher.event().await, five);

    // Six pushes, five kept: the start of the first stream is older than what is kept.
    assert_eq!(
        push(&nodes[1], "six").await,
        (200, json!({"connections": 2}))
    );
    let mut replayed = Vec::new();
    let mut from_start = open(&nodes[2], Some(&start)).await;
    connected(&mut from_start).await;
    for _ in 0..6 {
        let event = from_start.event().await;
        replayed.push(format!("{}: {}", event.event, event.data));
    }
    assert_eq!(
        replayed,
        [
            "reset: {}",
            "message: two",
            "message: three",
            "message: four\nlines",
            "message: five",
            "message: six"
        ]
    );

    // An id of another generation: reset, then what is kept.
    let other = format!(
        "{:08x}-1",
        u32::from_str_radix(&generation, 16).unwrap() ^ 1
    );
    let mut stranger = open(&nodes[1], Some(&other)).await;
    connected(&mut stranger).await;
    assert_eq!(stranger.event().await.event, "reset");
    assert_eq!(stranger.event().await.data, "two");
    drop((on_b, watcher, from_start, stranger));

    // Redis down: a push to bob is refused (503) like every push of the cluster, and a
    // stream that resumes is told it may have missed something.
    redis.stop();
    eventually("node B sees Redis down", || async {
        metric(
            &nodes[1].metrics_text().await,
            "portcullis_cluster_redis_up",
        ) == Some(0.0)
    })
    .await;
    assert_eq!(push(&nodes[1], "lost").await.0, 503);
    let mut blind = open(&nodes[1], five.id.as_deref()).await;
    connected(&mut blind).await;
    assert_eq!(blind.event().await.event, "reset");
    drop(blind);

    // Redis comes back empty: a new generation, so the old ids are reset.
    redis.restart().await;
    eventually("pushes are logged again", || async {
        push(&nodes[2], "seven").await.0 == 200
    })
    .await;
    let mut after = open(&nodes[0], five.id.as_deref()).await;
    let (_, restarted) = connected(&mut after).await;
    let new_generation = generation_of(&restarted);
    assert_ne!(new_generation, generation);
    assert_eq!(after.event().await.event, "reset");
    let seven = after.event().await;
    assert_eq!(seven.data, "seven");
    assert_eq!(generation_of(seven.id.as_deref().unwrap()), new_generation);
    for node in nodes {
        node.shutdown().await;
    }
}
