//! The connection registry: which connections exist and how to reach them.
//!
//! The management API, revocation and every later push path go through the
//! [`ConnectionRegistry`] trait, never through a concrete map, so a Redis-backed, multi-node
//! registry can replace the in-process [`LocalRegistry`]. A [`ConnectionId`] carries the id of
//! the node that owns the socket, so any node can tell where to forward a push without a
//! lookup. Besides ids, the trait finds connections by principal, by topic and by
//! identity-provider session ([`SessionKey`]); the local registry keeps an index for each,
//! updated with the connection map, so none of these lookups scans every socket.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use portcullis_core::close::Close;
use portcullis_core::id::{ConnectionId, NodeId};

use crate::outbound::OutboundQueue;
pub use crate::outbound::{Data, Outbound, SendError, Utf8Bytes};
use crate::session_key::{self, LiveSession, SessionKey};

mod index;
mod topic;

use index::{Index, Overflow};
pub use topic::{Topic, TopicError};

/// How a connection reaches its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    WebSocket,
    /// A server-sent events stream (`GET {path}/events`): pushes only, nothing from the client.
    Sse,
}

impl Transport {
    /// As the management API and `requestContext.connectionType` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Sse => "sse",
        }
    }
}

/// What a node knows about one of its live connections.
#[derive(Debug)]
pub struct ConnectionHandle {
    pub id: ConnectionId,
    /// Name of the WebSocket API the connection belongs to.
    pub api: Arc<str>,
    pub connected_at_ms: i64,
    pub source_ip: String,
    pub user_agent: String,
    /// Last data frame in either direction (ms since epoch).
    pub last_active_ms: AtomicI64,
    /// The principal the authorizer established, if any (indexed: see
    /// [`ConnectionRegistry::by_principal`]).
    pub principal: Option<String>,
    /// Set when the connection was admitted with a token of a built-in pool (indexed: see
    /// [`ConnectionRegistry::by_session`]). Set before the handle is registered.
    pub session: Option<LiveSession>,
    /// WebSocket unless set before the handle is registered.
    pub transport: Transport,
    /// The topics this connection is subscribed to (indexed: see
    /// [`ConnectionRegistry::by_topic`]); taken out of the index when the connection ends.
    topics: Mutex<Vec<Topic>>,
    /// Frames waiting for the session to write them (bounded by `send_queue`).
    pub queue: OutboundQueue,
}

impl ConnectionHandle {
    pub fn new(
        id: ConnectionId,
        api: Arc<str>,
        connected_at_ms: i64,
        source_ip: String,
        user_agent: String,
        principal: Option<String>,
        send_queue: usize,
    ) -> Self {
        ConnectionHandle {
            id,
            api,
            connected_at_ms,
            source_ip,
            user_agent,
            last_active_ms: AtomicI64::new(connected_at_ms),
            principal,
            session: None,
            transport: Transport::WebSocket,
            topics: Mutex::new(Vec::new()),
            queue: OutboundQueue::new(send_queue),
        }
    }

    pub fn touch(&self, now_ms: i64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Queue a frame for the client without waiting.
    pub fn try_send(&self, message: Outbound) -> Result<(), SendError> {
        self.queue.try_push(message)
    }

    /// Queue a frame, waiting for room.
    pub async fn send(&self, message: Outbound) -> Result<(), SendError> {
        self.queue.push(message).await
    }
}

/// A connection as `GET @users/{principal}` and `GET @topics/{topic}` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSummary {
    pub id: ConnectionId,
    pub connected_at_ms: i64,
    pub transport: Transport,
}

/// What one push to many connections did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fanout {
    /// Connections whose queue took the message.
    pub delivered: usize,
    /// Connections skipped because their queue was full.
    pub full: usize,
}

impl Fanout {
    pub fn add(&mut self, other: Fanout) {
        self.delivered += other.delivered;
        self.full += other.full;
    }
}

/// Caps on topic subscriptions (`[websocket.NAME]`'s `max_topics_per_connection` and
/// `max_subscribers_per_topic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLimits {
    pub per_connection: usize,
    pub per_topic: usize,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("connection is gone")]
    Gone,
    #[error(
        "The connection is subscribed to {0} topics, the most allowed (max_topics_per_connection)"
    )]
    TooManyTopics(usize),
    #[error("The topic has {0} subscribers, the most allowed (max_subscribers_per_topic)")]
    TooManySubscribers(usize),
}

/// A snapshot for `GET @connections/{id}`.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Name of the WebSocket API the connection belongs to.
    pub api: Arc<str>,
    pub connected_at_ms: i64,
    pub last_active_ms: i64,
    pub source_ip: String,
    pub user_agent: String,
    pub principal: Option<String>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A connection admitted with an identity-provider session, as a session lookup finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConnection {
    pub id: ConnectionId,
    pub session: LiveSession,
}

/// Where connections are found. Implementations: [`LocalRegistry`] (one node); a Redis one
/// can forward to the owning node given by [`ConnectionId::node`].
pub trait ConnectionRegistry: Send + Sync + 'static {
    /// This node's id: minted into every connection id created here.
    fn node(&self) -> NodeId;
    /// Add a connection, filed under its principal and session.
    fn register(&self, handle: Arc<ConnectionHandle>);
    /// Remove a connection and every index entry of it.
    fn unregister(&self, id: &ConnectionId);
    /// Deliver a frame to a connection (on whichever node owns it).
    fn post<'a>(
        &'a self,
        id: &'a ConnectionId,
        message: Outbound,
    ) -> BoxFuture<'a, Result<(), SendError>>;
    fn info<'a>(&'a self, id: &'a ConnectionId) -> BoxFuture<'a, Option<ConnectionInfo>>;
    /// Ask the owning node to close the connection; `$disconnect` follows.
    fn close<'a>(
        &'a self,
        id: &'a ConnectionId,
        close: Close,
    ) -> BoxFuture<'a, Result<(), SendError>>;
    /// Ids of the open connections of one API.
    fn list<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Vec<ConnectionId>>;
    /// The open connections of API `api` whose authorizer established `principal`.
    fn by_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
    ) -> BoxFuture<'a, Vec<ConnectionSummary>>;
    /// The open connections of API `api` subscribed to `topic`.
    fn by_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
    ) -> BoxFuture<'a, Vec<ConnectionSummary>>;
    /// Queue `message` for every connection of API `api` whose principal is `principal`,
    /// without waiting: a connection whose queue is full is skipped and counted.
    fn push_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Fanout>;
    /// Queue `message` for every subscriber of `topic` in API `api`, as
    /// [`push_principal`](Self::push_principal) does.
    fn push_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Fanout>;
    /// Subscribe a connection to a topic of its API (subscribing twice is one subscription).
    fn subscribe<'a>(
        &'a self,
        id: &'a ConnectionId,
        topic: &'a Topic,
        limits: TopicLimits,
    ) -> BoxFuture<'a, Result<(), SubscribeError>>;
    /// End a subscription (none is not an error); `Gone` for an unknown connection.
    fn unsubscribe<'a>(
        &'a self,
        id: &'a ConnectionId,
        topic: &'a Topic,
    ) -> BoxFuture<'a, Result<(), SendError>>;
    /// The open connections whose identity-provider session is filed under `key`: the only
    /// candidates a revocation naming that key can cover.
    fn by_session<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Vec<SessionConnection>>;
    /// Number of open connections on this node.
    fn local_count(&self) -> usize;
}

const SHARDS: usize = 32;

type Shard = RwLock<HashMap<ConnectionId, Arc<ConnectionHandle>>>;

/// The in-process registry: a sharded map of live sessions and an index by principal, by topic
/// and by identity-provider session.
///
/// The indexes are updated while the connection's shard is write-locked (shard first, then
/// index, never the other way), so a register and an unregister of the same id cannot leave
/// an index entry behind; an entry lives exactly as long as its connection.
pub struct LocalRegistry {
    node: NodeId,
    shards: Vec<Shard>,
    hasher: std::collections::hash_map::RandomState,
    /// Keyed by [`scoped`] API and principal.
    principals: Index<String>,
    /// Keyed by [`scoped`] API and topic.
    topics: Index<String>,
    sessions: Index<SessionKey>,
}

/// An index key of one API: principals and topics of different APIs never meet. API names
/// are configuration keys, which cannot hold a NUL.
fn scoped(api: &str, key: &str) -> String {
    let mut scoped = String::with_capacity(api.len() + 1 + key.len());
    scoped.push_str(api);
    scoped.push('\0');
    scoped.push_str(key);
    scoped
}

impl LocalRegistry {
    pub fn new(node: NodeId) -> Self {
        LocalRegistry {
            node,
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            principals: Index::new(),
            topics: Index::new(),
            sessions: Index::new(),
        }
    }

    fn shard(&self, id: &ConnectionId) -> &Shard {
        let i = (self.hasher.hash_one(id) as usize) % SHARDS;
        &self.shards[i]
    }

    /// The live handle of a local connection.
    pub fn get(&self, id: &ConnectionId) -> Option<Arc<ConnectionHandle>> {
        let shard = self.shard(id).read().unwrap_or_else(|p| p.into_inner());
        shard.get(id).cloned()
    }

    fn index(&self, handle: &ConnectionHandle) {
        if let Some(principal) = &handle.principal {
            self.principals
                .insert(scoped(&handle.api, principal), handle.id);
        }
        for key in handle.session.iter().flat_map(session_key::keys) {
            self.sessions.insert(key, handle.id);
        }
    }

    fn summaries(&self, ids: Vec<ConnectionId>) -> Vec<ConnectionSummary> {
        ids.into_iter()
            .filter_map(|id| {
                let h = self.get(&id)?;
                Some(ConnectionSummary {
                    id,
                    connected_at_ms: h.connected_at_ms,
                    transport: h.transport,
                })
            })
            .collect()
    }

    /// Queue a clone of `message` (no payload copy) for each connection, never waiting.
    fn fan_out(&self, ids: &[ConnectionId], message: &Outbound) -> Fanout {
        let mut fanout = Fanout::default();
        for id in ids {
            let Some(handle) = self.get(id) else { continue };
            match handle.try_send(message.clone()) {
                Ok(()) => fanout.delivered += 1,
                Err(SendError::Full) => fanout.full += 1,
                Err(SendError::Gone) => {}
            }
        }
        fanout
    }

    /// Under the connection's shard lock, so an unregister of the same connection either
    /// finishes first (`Gone`) or sees and removes the new subscription.
    fn subscribe_now(
        &self,
        id: &ConnectionId,
        topic: &Topic,
        limits: TopicLimits,
    ) -> Result<(), SubscribeError> {
        let shard = self.shard(id).read().unwrap_or_else(|p| p.into_inner());
        let handle = shard.get(id).ok_or(SubscribeError::Gone)?;
        let mut topics = lock(&handle.topics);
        if topics.contains(topic) {
            return Ok(());
        }
        if topics.len() >= limits.per_connection {
            return Err(SubscribeError::TooManyTopics(limits.per_connection));
        }
        self.topics
            .insert_capped(scoped(&handle.api, topic.as_str()), *id, limits.per_topic)
            .map_err(|Overflow| SubscribeError::TooManySubscribers(limits.per_topic))?;
        topics.push(topic.clone());
        Ok(())
    }

    fn unsubscribe_now(&self, id: &ConnectionId, topic: &Topic) -> Result<(), SendError> {
        let shard = self.shard(id).read().unwrap_or_else(|p| p.into_inner());
        let handle = shard.get(id).ok_or(SendError::Gone)?;
        let mut topics = lock(&handle.topics);
        if let Some(at) = topics.iter().position(|t| t == topic) {
            topics.swap_remove(at);
            self.topics
                .remove(scoped(&handle.api, topic.as_str()).as_str(), id);
        }
        Ok(())
    }

    fn unindex(&self, handle: &ConnectionHandle) {
        if let Some(principal) = &handle.principal {
            self.principals
                .remove(scoped(&handle.api, principal).as_str(), &handle.id);
        }
        let topics = std::mem::take(&mut *lock(&handle.topics));
        for topic in topics {
            self.topics
                .remove(scoped(&handle.api, topic.as_str()).as_str(), &handle.id);
        }
        for key in handle.session.iter().flat_map(session_key::keys) {
            self.sessions.remove(&key, &handle.id);
        }
    }
}

impl ConnectionRegistry for LocalRegistry {
    fn node(&self) -> NodeId {
        self.node
    }

    fn register(&self, handle: Arc<ConnectionHandle>) {
        let mut shard = self
            .shard(&handle.id)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(replaced) = shard.insert(handle.id, handle.clone()) {
            self.unindex(&replaced);
        }
        self.index(&handle);
    }

    fn unregister(&self, id: &ConnectionId) {
        let mut shard = self.shard(id).write().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = shard.remove(id) {
            self.unindex(&handle);
        }
    }

    fn post<'a>(
        &'a self,
        id: &'a ConnectionId,
        message: Outbound,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        let result = match self.get(id) {
            Some(handle) => handle.try_send(message),
            None => Err(SendError::Gone),
        };
        Box::pin(std::future::ready(result))
    }

    fn info<'a>(&'a self, id: &'a ConnectionId) -> BoxFuture<'a, Option<ConnectionInfo>> {
        let info = self.get(id).map(|h| ConnectionInfo {
            api: h.api.clone(),
            connected_at_ms: h.connected_at_ms,
            last_active_ms: h.last_active_ms.load(Ordering::Relaxed),
            source_ip: h.source_ip.clone(),
            user_agent: h.user_agent.clone(),
            principal: h.principal.clone(),
        });
        Box::pin(std::future::ready(info))
    }

    fn close<'a>(
        &'a self,
        id: &'a ConnectionId,
        close: Close,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        let result = match self.get(id) {
            Some(handle) => match handle.try_send(Outbound::Close(close)) {
                // A full queue must not stop a DELETE: close without the handshake.
                Err(SendError::Full) => {
                    handle.queue.kill();
                    Ok(())
                }
                other => other,
            },
            None => Err(SendError::Gone),
        };
        Box::pin(std::future::ready(result))
    }

    fn list<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Vec<ConnectionId>> {
        let mut ids = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            ids.extend(shard.values().filter(|h| &*h.api == api).map(|h| h.id));
        }
        Box::pin(std::future::ready(ids))
    }

    fn by_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
    ) -> BoxFuture<'a, Vec<ConnectionSummary>> {
        let ids = self.principals.get(scoped(api, principal).as_str());
        Box::pin(std::future::ready(self.summaries(ids)))
    }

    fn by_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
    ) -> BoxFuture<'a, Vec<ConnectionSummary>> {
        let ids = self.topics.get(scoped(api, topic.as_str()).as_str());
        Box::pin(std::future::ready(self.summaries(ids)))
    }

    fn push_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Fanout> {
        let ids = self.principals.get(scoped(api, principal).as_str());
        Box::pin(std::future::ready(self.fan_out(&ids, message)))
    }

    fn push_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Fanout> {
        let ids = self.topics.get(scoped(api, topic.as_str()).as_str());
        Box::pin(std::future::ready(self.fan_out(&ids, message)))
    }

    fn subscribe<'a>(
        &'a self,
        id: &'a ConnectionId,
        topic: &'a Topic,
        limits: TopicLimits,
    ) -> BoxFuture<'a, Result<(), SubscribeError>> {
        Box::pin(std::future::ready(self.subscribe_now(id, topic, limits)))
    }

    fn unsubscribe<'a>(
        &'a self,
        id: &'a ConnectionId,
        topic: &'a Topic,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(std::future::ready(self.unsubscribe_now(id, topic)))
    }

    fn by_session<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Vec<SessionConnection>> {
        let found = self
            .sessions
            .get(key)
            .into_iter()
            .filter_map(|id| {
                let handle = self.get(&id)?;
                let session = handle.session.clone()?;
                Some(SessionConnection { id, session })
            })
            .collect();
        Box::pin(std::future::ready(found))
    }

    fn local_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod topic_tests;
