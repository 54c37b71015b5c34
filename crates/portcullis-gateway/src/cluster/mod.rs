//! Several nodes, one gateway, on Redis (`[cluster]`, CONTRACT §3).
//!
//! Each node keeps its own connections in a [`LocalRegistry`] and reaches the others through
//! Redis pub/sub ([`keys`] lists every key and channel):
//! - **One hop to a connection's owner.** A connection id names its node
//!   ([`ConnectionId::node`]); `@connections` calls for another node's connection are published
//!   on that node's channel, which answers on the asker's channel ([`wire`]).
//! - **Interest-based fan-out.** A node listens on a principal's or a topic's channel only while
//!   it holds one of its connections ([`interest`]); a push is published once and answered by
//!   each receiving node with what it delivered, so `@users`/`@topics` count every node's
//!   receivers. Pub/sub is at-most-once: what is lost is counted
//!   (`portcullis_cluster_lost_messages_total`), never hidden.
//! - **Membership.** Every heartbeat a node stamps itself in `portcullis:nodes` with Redis's
//!   clock; one not heard for 3 heartbeats is dead: a survivor moves it to `portcullis:dead`
//!   and every survivor then claims its connection records one by one (`HDEL` answers 1 to
//!   exactly one of them) and sends each its `$disconnect` (`disconnectReason = "node lost"`).
//! - **Faults.** Redis down: local connections go on, calls that need another node answer 503;
//!   the node reconnects, resubscribes and re-announces its records (Redis may come back
//!   empty) by itself.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use portcullis_core::id::{ConnectionId, NodeId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::registry::{BoxFuture, LocalRegistry};

mod announce;
mod calls;
mod dispatch;
mod interest;
pub mod keys;
mod membership;
mod registry;
mod tasks;
pub mod wire;

use announce::Announcer;
use calls::Calls;
use interest::Interests;
use wire::{Body, Header, Outcome};

/// Messages from Redis waiting for the dispatcher; beyond this they are dropped and counted.
const INBOX: usize = 8192;
/// Bytes of messages waiting for the dispatcher; beyond this they are dropped and counted.
const INBOX_BYTES: usize = 64 * 1024 * 1024;

/// A message from Redis and its size, as it waits in the inbox.
pub(crate) type Inbound = (PushInfo, usize);

/// The size of a push's payload.
fn size_of(push: &PushInfo) -> usize {
    push.data
        .iter()
        .map(|v| match v {
            Value::BulkString(b) => b.len(),
            _ => 16,
        })
        .sum()
}
/// How long a call waits for another node's answer before it answers 503.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Replies being sent at once; the dispatcher waits for a slot beyond this.
const REPLY_SLOTS: usize = 1024;

/// Sends the `$disconnect` of a dead node's connection (the server knows the APIs).
pub type LostConnection =
    Arc<dyn Fn(ConnectionId, wire::Record) -> BoxFuture<'static, ()> + Send + Sync>;

/// This node's part of the cluster: its registry, its Redis connections and what it knows of
/// the other nodes. It is the gateway's [`ConnectionRegistry`](crate::registry::ConnectionRegistry).
pub struct Cluster {
    node: NodeId,
    name: String,
    heartbeat: Duration,
    /// Commands, pipelines, scripts and `PUBLISH`.
    commands: ConnectionManager,
    /// `SUBSCRIBE`/`UNSUBSCRIBE` only; what arrives on it goes to the inbox.
    subscriber: ConnectionManager,
    local: Arc<LocalRegistry>,
    interests: Arc<Interests>,
    announcer: Announcer,
    calls: Calls,
    /// Nodes heard within 3 heartbeats at the last heartbeat (this one included).
    live: RwLock<HashSet<NodeId>>,
    /// Whether Redis answered the last heartbeat.
    up: AtomicBool,
    /// Set by the push sender when the subscriber connection dropped: subscriptions are gone.
    resubscribe: Arc<AtomicBool>,
    /// Unix ms since when Redis has answered without a break (0: it does not).
    up_since_ms: AtomicI64,
    reply_slots: Arc<Semaphore>,
    /// Bytes waiting in the inbox (bounded by [`INBOX_BYTES`]).
    inbox_bytes: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

/// Redis's URL with the password hidden, for messages: `redis://:<redacted>@host:6379/0`.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let auth = match (u.username(), u.password()) {
                (user, Some(_)) => format!("{user}:<redacted>@"),
                ("", None) => String::new(),
                (user, None) => format!("{user}@"),
            };
            let host = u.host_str().unwrap_or_default();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{auth}{host}{port}{}", u.scheme(), u.path())
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

impl Cluster {
    /// Connect to Redis and claim a node tag; the node's tasks start with [`Cluster::run`].
    pub async fn connect(
        config: &portcullis_config::Cluster,
        metrics: Arc<Metrics>,
    ) -> Result<(Arc<Cluster>, mpsc::Receiver<Inbound>), GatewayError> {
        let url = redacted(&config.redis);
        let fail = |what: &str, e: redis::RedisError| {
            GatewayError::Cluster(format!("{what} Redis at {url}: {e}"))
        };
        let info = config
            .redis
            .as_str()
            .into_connection_info()
            .map_err(|e| fail("invalid URL for", e))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| fail("cannot use", e))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let commands = ConnectionManager::new_with_config(client.clone(), manager.clone())
            .await
            .map_err(|e| fail("cannot reach", e))?;
        let (inbox, receiver) = mpsc::channel::<Inbound>(INBOX);
        let inbox_bytes = Arc::new(AtomicUsize::new(0));
        let waiting = inbox_bytes.clone();
        let resubscribe = Arc::new(AtomicBool::new(false));
        let interests = Arc::new(Interests::default());
        let dropped = resubscribe.clone();
        let subscriber_task = interests.clone();
        let lost_metrics = metrics.clone();
        let sender = move |push: PushInfo| -> Result<(), ()> {
            if push.kind == PushKind::Disconnection {
                dropped.store(true, Ordering::SeqCst);
                subscriber_task.wake.notify_one();
            }
            let size = size_of(&push);
            let over = waiting.fetch_add(size, Ordering::SeqCst) + size > INBOX_BYTES;
            if over || inbox.try_send((push, size)).is_err() {
                waiting.fetch_sub(size, Ordering::SeqCst);
                lost_metrics.cluster.lost("queue_full");
            }
            Ok(())
        };
        let subscriber =
            ConnectionManager::new_with_config(client, manager.set_push_sender(sender))
                .await
                .map_err(|e| fail("cannot reach", e))?;

        let name = config.node_id.clone().unwrap_or_default();
        let node = membership::claim_tag(&commands, &name, config.heartbeat)
            .await
            .map_err(|e| fail("cannot register this node in", e))?;
        let name = if name.is_empty() {
            format!("node-{node}")
        } else {
            name
        };
        // Listening on its own channels before the node serves anything.
        let mut listening = subscriber.clone();
        listening
            .subscribe(
                &[
                    keys::node_channel(node).into_bytes(),
                    keys::ALL.as_bytes().to_vec(),
                ][..],
            )
            .await
            .map_err(|e| fail("cannot subscribe in", e))?;
        let local = Arc::new(LocalRegistry::with_interest(node, interests.clone()));
        let cluster = Arc::new(Cluster {
            node,
            name,
            heartbeat: config.heartbeat,
            commands,
            subscriber,
            local,
            interests,
            announcer: Announcer::default(),
            calls: Calls::default(),
            live: RwLock::new(HashSet::from([node])),
            up: AtomicBool::new(true),
            resubscribe,
            up_since_ms: AtomicI64::new(now_ms()),
            reply_slots: Arc::new(Semaphore::new(REPLY_SLOTS)),
            inbox_bytes,
            metrics,
        });
        cluster.metrics.cluster.redis_up.set(1);
        cluster.metrics.cluster.nodes.set(1);
        info!(node = %cluster.name, tag = %node, redis = %url, "joined the cluster");
        Ok((cluster, receiver))
    }

    /// Start the node's tasks on `tasks` until `shutdown`: the dispatcher of what arrives from
    /// Redis, the subscriber, the record writer and the heartbeat (which also reaps dead
    /// nodes, sending their connections' `$disconnect` through `lost`).
    pub fn run(
        self: &Arc<Self>,
        inbox: mpsc::Receiver<Inbound>,
        lost: LostConnection,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        tasks.spawn(dispatch::run(self.clone(), inbox, shutdown.clone()));
        tasks.spawn(tasks::subscriber(self.clone(), shutdown.clone()));
        tasks.spawn(tasks::writer(self.clone(), shutdown.clone()));
        tasks.spawn(membership::run(self.clone(), lost, shutdown));
    }

    /// Leave the cluster on a graceful shutdown, once every connection has had its
    /// `$disconnect`: no survivor reports them again.
    pub async fn leave(&self) {
        let mut conn = self.commands.clone();
        let result: redis::RedisResult<()> = redis::pipe()
            .cmd("ZREM")
            .arg(keys::NODES)
            .arg(self.node.0)
            .ignore()
            .cmd("DEL")
            .arg(keys::conns(self.node))
            .arg(keys::node_name(self.node))
            .ignore()
            .query_async(&mut conn)
            .await;
        match result {
            Ok(()) => info!(node = %self.name, "left the cluster"),
            Err(e) => warn!(node = %self.name, error = %e, "could not leave the cluster cleanly"),
        }
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Whether Redis answered the last heartbeat (shared state elsewhere in the gateway, such
    /// as the SSE replay logs, fails fast while it does not).
    pub(crate) fn redis_up(&self) -> bool {
        self.is_up()
    }

    /// One `PING` on the command connection: whether Redis answers now, for `/readyz`.
    pub async fn ping(&self) -> Result<(), GatewayError> {
        let mut conn = self.commands.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| GatewayError::Cluster(format!("PING: {e}")))
    }

    /// The command connection, for shared state kept in Redis elsewhere in the gateway.
    pub(crate) fn commands(&self) -> ConnectionManager {
        self.commands.clone()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn is_live(&self, node: NodeId) -> bool {
        self.live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&node)
    }

    /// `PUBLISH`: the number of nodes that received it.
    async fn publish(&self, channel: &[u8], message: Vec<u8>) -> Result<usize, redis::RedisError> {
        let mut conn = self.commands.clone();
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(message)
            .query_async::<usize>(&mut conn)
            .await
    }

    /// Ask `node` (not this one) and wait for its answer: `Gone` when the node is not a live
    /// member (a dead node's connections are gone), `Err` when it cannot be reached.
    async fn call_one(
        &self,
        node: NodeId,
        op: &str,
        body: Body,
        payload: &[u8],
    ) -> Result<Outcome, ()> {
        if !self.is_up() {
            self.metrics.cluster.unavailable(op);
            return Err(());
        }
        let Some(mut waiter) = self.calls.wait(1) else {
            self.metrics.cluster.unavailable(op);
            return Err(());
        };
        let header = Header {
            from: self.node.0,
            rid: waiter.rid,
            body,
        };
        self.metrics.cluster.forwarded(op);
        let channel = keys::node_channel(node);
        match self
            .publish(channel.as_bytes(), wire::encode(&header, payload))
            .await
        {
            Ok(0) if !self.is_live(node) => return Ok(Outcome::Gone),
            Ok(0) | Err(_) => {
                self.metrics.cluster.unavailable(op);
                return Err(());
            }
            Ok(_) => {}
        }
        match tokio::time::timeout(CALL_TIMEOUT, waiter.replies.recv()).await {
            Ok(Some(outcome)) => Ok(outcome),
            _ => {
                self.metrics.cluster.lost("timeout");
                self.metrics.cluster.unavailable(op);
                Err(())
            }
        }
    }

    /// Publish on an interest channel, then run `local` (this node's part), then gather one
    /// answer per other node that received it (none when no node holds a receiver). `Err`
    /// when Redis cannot be reached, and then `local` has not run: a call answered 503 did
    /// nothing anywhere. A node that does not answer in time is left out and counted.
    async fn call_interested<T>(
        &self,
        channel: &[u8],
        op: &str,
        body: Body,
        payload: &[u8],
        local: impl FnOnce() -> T,
    ) -> Result<(T, Vec<Outcome>), ()> {
        if !self.is_up() {
            self.metrics.cluster.unavailable(op);
            return Err(());
        }
        let Some(mut waiter) = self.calls.wait(calls::MAX_REPLIES) else {
            self.metrics.cluster.unavailable(op);
            return Err(());
        };
        let header = Header {
            from: self.node.0,
            rid: waiter.rid,
            body,
        };
        self.metrics.cluster.forwarded(op);
        let receivers = match self.publish(channel, wire::encode(&header, payload)).await {
            Ok(n) => n,
            Err(_) => {
                self.metrics.cluster.unavailable(op);
                return Err(());
            }
        };
        let mine = local();
        let mut outcomes = Vec::with_capacity(receivers);
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        while outcomes.len() < receivers {
            match tokio::time::timeout_at(deadline, waiter.replies.recv()).await {
                Ok(Some(outcome)) => outcomes.push(outcome),
                _ => {
                    self.metrics.cluster.lost("timeout");
                    break;
                }
            }
        }
        Ok((mine, outcomes))
    }
}

/// Unix time in ms.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The channel and the message of a pub/sub push, if it is one.
fn message_of(push: PushInfo) -> Option<(Vec<u8>, Vec<u8>)> {
    if push.kind != PushKind::Message {
        return None;
    }
    let mut data = push.data.into_iter();
    match (data.next(), data.next()) {
        (Some(Value::BulkString(channel)), Some(Value::BulkString(message))) => {
            Some((channel, message))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn the_redis_password_never_shows() {
        assert_eq!(
            redacted("redis://:hunter2@10.0.0.5:6380/0"),
            "redis://:<redacted>@10.0.0.5:6380/0"
        );
        assert_eq!(
            redacted("rediss://app:p%40ss@cache.internal:6379"),
            "rediss://app:<redacted>@cache.internal:6379"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("not a url :hunter2@"), "<unparsable URL>");
    }
}
