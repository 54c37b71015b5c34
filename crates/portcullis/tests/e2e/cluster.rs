#![allow(clippy::unwrap_used)]
//! Three gateways in this process sharing a throwaway `redis-server` (`[cluster]`): every
//! management call works on every node for connections held by any node, pushes to users and
//! topics count every node's receivers, and a Redis outage answers 503 for what needs another
//! node while local delivery goes on, until Redis comes back (empty) and the nodes recover by
//! themselves. (Killed nodes and `$disconnect` from a survivor: tests/python/test_cluster.py,
//! with real processes.)

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portcullis_testkit::redis::TempRedis;
use portcullis_testkit::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn allow(principal: &str) -> Reply {
    Reply::Json(
        200,
        json!({
            "principalId": principal,
            "policyDocument": {"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke",
                "Effect": "Allow", "Resource": "arn:aws:execute-api:*:*:*/*/*"}]},
        })
        .to_string(),
    )
}

pub(crate) async fn webhook() -> Backend {
    Backend::start(|e| {
        let cookie = e["headers"]["Cookie"].as_str().unwrap_or_default();
        match cookie.strip_prefix("user=") {
            Some(user) => allow(user),
            None => Reply::Json(401, "\"Unauthorized\"".into()),
        }
    })
    .await
}

fn config(backend: &Backend, webhook: &Backend, redis: &TempRedis, node: &str) -> String {
    format!(
        "[websocket.chat]\nstage = \"prod\"\nauthorizer = \"cookie\"\n\
         [websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.cookie]\ntype = \"request\"\nurl = \"{}\"\nidentity_source = [\"route.request.header.Cookie\"]\n\n\
         [cluster]\nredis = \"{}\"\nnode_id = \"{node}\"\nheartbeat = \"1s\"\n",
        backend.url,
        webhook.url,
        redis.url()
    )
}

async fn connect_as(gw: &TestGateway, backend: &Backend, user: &str) -> (Client, String) {
    let id_of = |e: &Value| {
        e["requestContext"]["connectionId"]
            .as_str()
            .map(str::to_owned)
    };
    let known: Vec<String> = backend.events().iter().filter_map(id_of).collect();
    let cookie = format!("user={user}");
    let client = try_connect(&gw.ws_url("/chat"), &[("Cookie", cookie.as_str())])
        .await
        .expect("handshake");
    let event = backend
        .wait_for(|e| {
            e["requestContext"]["eventType"] == "CONNECT"
                && id_of(e).is_some_and(|id| !known.contains(&id))
        })
        .await;
    (client, id_of(&event).expect("id"))
}

pub(crate) async fn call(gw: &TestGateway, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let response = management(gw, method, path, body, SECRET_ACCESS_KEY).await;
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn next_text_of(client: &mut Client) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), client.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Poll until `check` holds (Redis membership and subscriptions settle within heartbeats).
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

async fn three_nodes(test: &str) -> Option<(TempRedis, Backend, Backend, Vec<TestGateway>)> {
    let redis = TempRedis::start(test).await?;
    let (backend, webhook) = (Backend::echo().await, webhook().await);
    let mut nodes = Vec::new();
    for name in ["node-a", "node-b", "node-c"] {
        nodes.push(TestGateway::start(&config(&backend, &webhook, &redis, name)).await);
    }
    Some((redis, backend, webhook, nodes))
}

#[tokio::test]
async fn every_node_reaches_every_connection() {
    let Some((_redis, backend, _webhook, nodes)) = three_nodes("every_node_reaches").await else {
        return;
    };
    // bob has a socket on each node; alice one on node C.
    let mut bob = Vec::new();
    for node in &nodes {
        bob.push(connect_as(node, &backend, "bob").await);
    }
    let (mut alice, alice_id) = connect_as(&nodes[2], &backend, "alice").await;

    // A push to a user, made on node A, counts and reaches the sockets of all three nodes.
    let (status, body) = call(&nodes[0], "POST", "/@users/bob", b"hello bob").await;
    assert_eq!((status, body), (200, json!({"connections": 3})));
    for (client, _) in &mut bob {
        assert_eq!(next_text_of(client).await, "hello bob");
    }
    let (status, listing) = call(&nodes[1], "GET", "/@users/bob", b"").await;
    assert_eq!(status, 200);
    let mut listed: Vec<&str> = listing["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connectionId"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut want: Vec<&str> = bob.iter().map(|(_, id)| id.as_str()).collect();
    want.sort();
    assert_eq!(listed, want);

    // @connections on node A for a socket on node C: POST, GET (the owner's data), subscribe.
    let path = format!("/@connections/{}", encode_id(&alice_id));
    assert_eq!(call(&nodes[0], "POST", &path, b"to alice").await.0, 200);
    assert_eq!(next_text_of(&mut alice).await, "to alice");
    let (status, info) = call(&nodes[0], "GET", &path, b"").await;
    assert_eq!(status, 200);
    assert_eq!(info["principalId"], "alice");
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");

    // Topic fan-out across nodes: subscriptions made on node B for sockets on A and C.
    for id in [&bob[0].1, &alice_id] {
        let sub = format!("/@connections/{}/topics/room:1", encode_id(id));
        assert_eq!(call(&nodes[1], "PUT", &sub, b"").await.0, 204);
    }
    let (status, body) = call(&nodes[1], "POST", "/@topics/room:1", b"room news").await;
    assert_eq!((status, body), (200, json!({"connections": 2})));
    assert_eq!(next_text_of(&mut bob[0].0).await, "room news");
    assert_eq!(next_text_of(&mut alice).await, "room news");
    let (_, subscribers) = call(&nodes[2], "GET", "/@topics/room:1", b"").await;
    assert_eq!(subscribers["connections"].as_array().unwrap().len(), 2);

    // The list names every node's connections.
    let (_, all) = call(&nodes[1], "GET", "/@connections", b"").await;
    assert_eq!(all["connections"].as_array().unwrap().len(), 4);

    // DELETE on node A closes the socket on node C; then it is gone everywhere.
    assert_eq!(call(&nodes[0], "DELETE", &path, b"").await.0, 204);
    backend.wait_event("DISCONNECT", &alice_id).await;
    assert_eq!(call(&nodes[1], "POST", &path, b"late").await.0, 410);
    assert_eq!(call(&nodes[1], "GET", &path, b"").await.0, 410);

    // An id of no live node: 410 at once.
    let unknown = format!("/@connections/{}", encode_id("AAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(call(&nodes[0], "POST", &unknown, b"x").await.0, 410);

    // DELETE @users on node C closes bob's sockets on every node.
    assert_eq!(call(&nodes[2], "DELETE", "/@users/bob", b"").await.0, 204);
    for (_, id) in &bob {
        backend.wait_event("DISCONNECT", id).await;
    }
    for node in nodes {
        node.shutdown().await;
    }
}

pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_redis_outage_keeps_local_delivery_and_heals_by_itself() {
    let Some((mut redis, backend, _webhook, nodes)) = three_nodes("a_redis_outage").await else {
        return;
    };
    let (mut on_a, id_a) = connect_as(&nodes[0], &backend, "carol").await;
    let (mut on_b, id_b) = connect_as(&nodes[1], &backend, "carol").await;
    let path_a = format!("/@connections/{}", encode_id(&id_a));
    let path_b = format!("/@connections/{}", encode_id(&id_b));
    eventually("three live nodes", || async {
        metric(&nodes[0].metrics_text().await, "portcullis_cluster_nodes") == Some(3.0)
    })
    .await;

    redis.stop();
    eventually("node A sees Redis down", || async {
        metric(
            &nodes[0].metrics_text().await,
            "portcullis_cluster_redis_up",
        ) == Some(0.0)
    })
    .await;
    // Local delivery goes on; what needs another node answers 503.
    assert_eq!(call(&nodes[0], "POST", &path_a, b"local").await.0, 200);
    assert_eq!(next_text_of(&mut on_a).await, "local");
    let (status, body) = call(&nodes[0], "POST", &path_b, b"remote").await;
    assert_eq!(
        (status, body),
        (503, json!({"message": "Service Unavailable"}))
    );
    assert_eq!(call(&nodes[0], "POST", "/@users/carol", b"x").await.0, 503);
    // Messages still reach the backend.
    on_a.send(Message::text("still here")).await.expect("send");
    backend
        .wait_for(|e| {
            e["body"] == "still here" && e["requestContext"]["connectionId"] == id_a.as_str()
        })
        .await;

    // Redis comes back empty: the nodes reconnect, resubscribe and re-announce by themselves.
    redis.restart().await;
    eventually("cross-node delivery resumes", || async {
        call(&nodes[0], "POST", &path_b, b"back").await.0 == 200
    })
    .await;
    assert_eq!(next_text_of(&mut on_b).await, "back");
    eventually("pushes to the user reach both nodes again", || async {
        call(&nodes[2], "GET", "/@users/carol", b"").await.1["connections"]
            .as_array()
            .is_some_and(|c| c.len() == 2)
    })
    .await;
    let (status, body) = call(&nodes[2], "POST", "/@users/carol", b"both").await;
    assert_eq!((status, body), (200, json!({"connections": 2})));
    assert_eq!(next_text_of(&mut on_a).await, "both");
    assert_eq!(next_text_of(&mut on_b).await, "both");
    for node in nodes {
        node.shutdown().await;
    }
}

/// A node that stopped heartbeating (here: its last stamp is a minute old and its records are
/// written as a node would write them) is declared dead by the survivors, and each of its
/// connections gets exactly one `$disconnect`, `node lost`, from one of them.
#[tokio::test]
async fn a_dead_nodes_connections_get_one_disconnect_each_from_the_survivors() {
    use portcullis_core::id::{ConnectionId, NodeId};
    let Some(redis) = TempRedis::start("a_dead_nodes_connections").await else {
        return;
    };
    let (backend, webhook) = (Backend::echo().await, webhook().await);
    let survivors = [
        TestGateway::start(&config(&backend, &webhook, &redis, "node-a")).await,
        TestGateway::start(&config(&backend, &webhook, &redis, "node-b")).await,
    ];
    let dead = NodeId(0x00AB_CDEF);
    let ids: Vec<ConnectionId> = (0..40).map(|_| ConnectionId::generate(dead)).collect();
    let conns = format!("portcullis:node:{dead}:conns");
    for (i, id) in ids.iter().enumerate() {
        let record = json!({
            "api": "chat", "connected_at": 1_700_000_000_000i64 + i as i64,
            "source_ip": "198.51.100.7", "user_agent": "ghost-agent",
            "principal": "ghost", "authorizer": {"principalId": "ghost", "plan": "gold"},
            "transport": "websocket",
        });
        redis.cli(&["HSET", &conns, id.as_str(), &record.to_string()]);
    }
    let stale = chrono::Utc::now().timestamp_millis() - 60_000;
    redis.cli(&[
        "ZADD",
        "portcullis:nodes",
        &stale.to_string(),
        &dead.0.to_string(),
    ]);

    // Before the survivors have judged, the connections are not reachable: 503 or 410.
    let first = format!("/@connections/{}", encode_id(ids[0].as_str()));
    assert!(matches!(
        call(&survivors[0], "POST", &first, b"x").await.0,
        503 | 410
    ));

    let lost = |e: &Value| {
        e["requestContext"]["eventType"] == "DISCONNECT"
            && e["requestContext"]["disconnectReason"] == "node lost"
    };
    eventually("every connection of the dead node reported", || async {
        backend.events().iter().filter(|e| lost(e)).count() >= ids.len()
    })
    .await;
    // Give a duplicate the time to show up, then count: exactly one each.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = backend.events();
    for id in &ids {
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| lost(e) && e["requestContext"]["connectionId"] == id.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{id}: {} $disconnect events", mine.len());
        let ctx = &mine[0]["requestContext"];
        assert_eq!(ctx["disconnectStatusCode"], 1006);
        assert_eq!(ctx["authorizer"]["plan"], "gold");
        assert_eq!(ctx["identity"]["sourceIp"], "198.51.100.7");
        assert_eq!(ctx["routeKey"], "$disconnect");
    }
    let mut delivered = 0.0;
    for node in &survivors {
        delivered += metric(
            &node.metrics_text().await,
            "portcullis_cluster_disconnects_delivered_total",
        )
        .unwrap_or(0.0);
    }
    assert_eq!(delivered, ids.len() as f64);
    // Nothing of the dead node is left in Redis, and its ids answer 410.
    eventually("the dead node forgotten", || async {
        redis.cli(&["EXISTS", &conns]) == "0" && redis.cli(&["SCARD", "portcullis:dead"]) == "0"
    })
    .await;
    assert_eq!(call(&survivors[1], "POST", &first, b"x").await.0, 410);
    for node in survivors {
        node.shutdown().await;
    }
}

/// A node that shuts down gracefully delivers its own `$disconnect`s and leaves no record a
/// survivor would report again.
#[tokio::test]
async fn a_graceful_shutdown_leaves_nothing_to_reap() {
    let Some(redis) = TempRedis::start("a_graceful_shutdown").await else {
        return;
    };
    let (backend, webhook) = (Backend::echo().await, webhook().await);
    let stays = TestGateway::start(&config(&backend, &webhook, &redis, "node-a")).await;
    let leaves = TestGateway::start(&config(&backend, &webhook, &redis, "node-b")).await;
    let (_client, id) = connect_as(&leaves, &backend, "dave").await;
    leaves.shutdown().await;
    let event = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(event["requestContext"]["disconnectReason"], "Going away");
    assert_eq!(redis.cli(&["ZCARD", "portcullis:nodes"]), "1");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let reports = backend
        .events()
        .iter()
        .filter(|e| e["requestContext"]["connectionId"] == id.as_str())
        .filter(|e| e["requestContext"]["eventType"] == "DISCONNECT")
        .count();
    assert_eq!(reports, 1);
    stays.shutdown().await;
}

/// Redis restarted empty between two heartbeats: the nodes notice through their dropped
/// connections, not only through a failed heartbeat, and write their records again (a node
/// killed afterwards still gets its connections reported).
#[tokio::test]
async fn a_redis_blip_between_heartbeats_is_healed_too() {
    let Some(mut redis) = TempRedis::start("a_redis_blip").await else {
        return;
    };
    let (backend, webhook) = (Backend::echo().await, webhook().await);
    let a = TestGateway::start(&config(&backend, &webhook, &redis, "node-a")).await;
    let b = TestGateway::start(&config(&backend, &webhook, &redis, "node-b")).await;
    let (mut on_b, id_b) = connect_as(&b, &backend, "erin").await;
    let path_b = format!("/@connections/{}", encode_id(&id_b));
    assert_eq!(call(&a, "POST", &path_b, b"before").await.0, 200);
    assert_eq!(next_text_of(&mut on_b).await, "before");

    redis.restart().await;
    eventually("cross-node delivery after the blip", || async {
        call(&a, "POST", &path_b, b"after").await.0 == 200
    })
    .await;
    assert_eq!(next_text_of(&mut on_b).await, "after");
    // B's record is back in Redis, under B's tag (the first 4 characters of its ids).
    eventually("records re-announced", || async {
        redis
            .cli(&["KEYS", "portcullis:node:*:conns"])
            .lines()
            .count()
            == 1
            && redis
                .cli(&[
                    "HKEYS",
                    redis.cli(&["KEYS", "portcullis:node:*:conns"]).trim(),
                ])
                .contains(id_b.as_str())
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}
