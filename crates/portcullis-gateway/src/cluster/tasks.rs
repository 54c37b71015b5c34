//! The two tasks that keep Redis in step with this node: the subscriber (interest channels
//! and the node channel) and the writer of connection records.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::announce::Change;
use super::interest::Key;
use super::{Cluster, keys, wire};
use crate::registry::ConnectionHandle;

/// How often each task retries what failed (while Redis is down).
const RETRY: Duration = Duration::from_millis(500);
/// Most commands in one pipeline.
const BATCH: usize = 1000;

/// Subscribes the node channel and the channels of the principals and topics this node
/// holds, unsubscribes the others; resubscribes everything after the connection dropped.
pub(super) async fn subscriber(cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let own = [
        keys::node_channel(cluster.node).into_bytes(),
        keys::ALL.as_bytes().to_vec(),
    ];
    let mut subscribed: HashSet<Vec<u8>> = HashSet::new();
    // Subscribed when the node joined.
    let mut node_channel = true;
    loop {
        if cluster.resubscribe.swap(false, Ordering::SeqCst) {
            // The connection dropped: Redis forgot every subscription, and if it restarted
            // (even between two heartbeats) it forgot this node's records too. Nobody is
            // judged until every node has had 3 heartbeats to stamp itself again.
            subscribed.clear();
            node_channel = false;
            cluster.interests.mark(held_keys(&cluster));
            cluster.announcer.reannounce();
            cluster.up_since_ms.store(super::now_ms(), Ordering::SeqCst);
        }
        let mut sub = cluster.subscriber.clone();
        if !node_channel {
            node_channel = sub.subscribe(&own[..]).await.is_ok();
        }
        let (dirty, marked) = cluster.interests.take_dirty();
        let mut add = Vec::new();
        let mut remove = Vec::new();
        for key in &dirty {
            let channel = key.channel();
            let held = cluster.local.holds(key.scope, &key.api, &key.key);
            if held && !subscribed.contains(&channel) {
                add.push(channel);
            } else if !held && subscribed.contains(&channel) {
                remove.push(channel);
            }
        }
        let mut failed = !node_channel;
        for chunk in add.chunks(BATCH) {
            if sub.subscribe(chunk).await.is_ok() {
                subscribed.extend(chunk.iter().cloned());
            } else {
                failed = true;
            }
        }
        for chunk in remove.chunks(BATCH) {
            if sub.unsubscribe(chunk).await.is_ok() {
                for channel in chunk {
                    subscribed.remove(channel);
                }
            } else {
                failed = true;
            }
        }
        if failed {
            // Look at every key again once Redis answers.
            cluster.interests.mark(dirty);
        } else {
            cluster.interests.acted(marked);
        }
        cluster
            .metrics
            .cluster
            .interests
            .set(i64::try_from(subscribed.len()).unwrap_or(i64::MAX));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = cluster.interests.wake.notified(), if !failed => {}
            _ = tokio::time::sleep(RETRY), if failed => {}
        }
    }
}

fn held_keys(cluster: &Cluster) -> Vec<Key> {
    cluster
        .local
        .held()
        .into_iter()
        .map(|(scope, api, key)| Key { scope, api, key })
        .collect()
}

/// The record of a connection, as JSON.
fn record(handle: &ConnectionHandle) -> Vec<u8> {
    let record = wire::Record {
        api: handle.api.to_string(),
        connected_at: handle.connected_at_ms,
        source_ip: handle.source_ip.clone(),
        user_agent: handle.user_agent.clone(),
        principal: handle.principal.clone(),
        authorizer: handle
            .identity
            .as_ref()
            .and_then(|i| i.event_authorizer())
            .map(ToOwned::to_owned),
        transport: handle.transport.as_str().to_owned(),
    };
    serde_json::to_vec(&record).unwrap_or_default()
}

/// Writes connection records as the registry changes, in pipelined batches; replaces them
/// all when a re-announce is due.
pub(super) async fn writer(cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let key = keys::conns(cluster.node);
    loop {
        let mut failed = false;
        if cluster.announcer.take_full() {
            // Changes marked before the snapshot are in it; later ones follow it.
            drop(cluster.announcer.take());
            let handles = cluster.local.handles();
            let mut conn = cluster.commands.clone();
            let mut result: redis::RedisResult<()> =
                redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
            for chunk in handles.chunks(BATCH) {
                if result.is_err() {
                    break;
                }
                let mut pipe = redis::pipe();
                for handle in chunk {
                    pipe.cmd("HSET")
                        .arg(&key)
                        .arg(handle.id.as_str())
                        .arg(record(handle))
                        .ignore();
                }
                result = pipe.query_async(&mut conn).await;
            }
            match result {
                Ok(()) => debug!(
                    connections = handles.len(),
                    "connection records re-announced"
                ),
                Err(_) => {
                    cluster.announcer.reannounce();
                    failed = true;
                }
            }
        }
        let changes = cluster.announcer.take();
        if !changes.is_empty() && !failed {
            let mut pipe = redis::pipe();
            for (id, change) in &changes {
                match change {
                    Change::Add(handle) => pipe
                        .cmd("HSET")
                        .arg(&key)
                        .arg(id.as_str())
                        .arg(record(handle))
                        .ignore(),
                    Change::Remove => pipe.cmd("HDEL").arg(&key).arg(id.as_str()).ignore(),
                };
            }
            let mut conn = cluster.commands.clone();
            if pipe.query_async::<()>(&mut conn).await.is_err() {
                cluster.announcer.put_back(changes);
                failed = true;
            }
        } else if failed {
            cluster.announcer.put_back(changes);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = cluster.announcer.wake.notified(), if !failed => {}
            _ = tokio::time::sleep(RETRY), if failed => {}
        }
    }
}
