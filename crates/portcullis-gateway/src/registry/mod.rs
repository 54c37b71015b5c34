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
    /// What the authorizer established (its `requestContext.authorizer` goes into the
    /// connection's record in a cluster, for a `$disconnect` sent by another node). Set
    /// before the handle is registered.
    pub identity: Option<Arc<crate::authorizers::Identity>>,
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
            identity: None,
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
    #[error("the node holding the connection cannot be reached")]
    Unavailable,
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

/// A listing or a fan-out that needed another node could not reach it: Redis is down, or a
/// node did not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("another node of the cluster cannot be reached")]
pub struct Unavailable;

/// Where connections are found. Implementations: [`LocalRegistry`] (one node) and the
/// cluster's registry, which keeps a `LocalRegistry` for this node's connections and reaches
/// the others' through Redis (the owner of a connection is [`ConnectionId::node`]).
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
    /// A connection's description, from whichever node owns it (`Gone` if none does).
    fn info<'a>(&'a self, id: &'a ConnectionId)
    -> BoxFuture<'a, Result<ConnectionInfo, SendError>>;
    /// Ask the owning node to close the connection; `$disconnect` follows.
    fn close<'a>(
        &'a self,
        id: &'a ConnectionId,
        close: Close,
    ) -> BoxFuture<'a, Result<(), SendError>>;
    /// Ids of the open connections of one API (on every node).
    fn list<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Result<Vec<ConnectionId>, Unavailable>>;
    /// The open connections of API `api` whose authorizer established `principal`.
    fn by_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ConnectionSummary>, Unavailable>>;
    /// The open connections of API `api` subscribed to `topic`.
    fn by_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
    ) -> BoxFuture<'a, Result<Vec<ConnectionSummary>, Unavailable>>;
    /// Queue `message` for every connection of API `api` whose principal is `principal`,
    /// without waiting: a connection whose queue is full is skipped and counted.
    fn push_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Result<Fanout, Unavailable>>;
    /// Queue `message` for every subscriber of `topic` in API `api`, as
    /// [`push_principal`](Self::push_principal) does.
    fn push_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Result<Fanout, Unavailable>>;
    /// Close every connection of `principal` in API `api` (`DELETE @users`); how many.
    fn close_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
        close: Close,
    ) -> BoxFuture<'a, Result<usize, Unavailable>>;
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
    /// This node's open connections whose identity-provider session is filed under `key`:
    /// the only candidates a revocation naming that key can cover. (Every node reads the
    /// revocations and closes its own.)
    fn by_session<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Vec<SessionConnection>>;
    /// Number of open connections on this node.
    fn local_count(&self) -> usize;
    /// Wait (briefly) until the connections registered and the subscriptions made so far can
    /// be reached by pushes from every node. Nothing to wait for on one node.
    fn settle(&self) -> BoxFuture<'_, ()> {
        ready(())
    }
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
    /// Told when this node starts or stops holding a principal's or a topic's connections.
    interest: Option<Arc<dyn Interest>>,
}

/// What an interest is about: a principal's connections or a topic's subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    User,
    Topic,
}

/// Told when this node may have started holding connections of a principal or subscribers
/// of a topic, or stopped holding any (`held` says which, but two changes of one key can be
/// told out of order: ask [`LocalRegistry::holds`] for the truth). A cluster listens for that
/// principal's or topic's pushes only meanwhile. Called with registry locks held: it must
/// not block.
pub trait Interest: Send + Sync {
    fn changed(&self, scope: Scope, api: &str, key: &str, held: bool);
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
            interest: None,
        }
    }

    /// A registry that tells `interest` which principals and topics it holds.
    pub fn with_interest(node: NodeId, interest: Arc<dyn Interest>) -> Self {
        LocalRegistry {
            interest: Some(interest),
            ..LocalRegistry::new(node)
        }
    }

    fn tell(&self, scope: Scope, api: &str, key: &str, held: bool) {
        if let Some(interest) = &self.interest {
            interest.changed(scope, api, key, held);
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
        if let Some(principal) = &handle.principal
            && self
                .principals
                .insert(scoped(&handle.api, principal), handle.id)
        {
            self.tell(Scope::User, &handle.api, principal, true);
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
                Err(SendError::Gone | SendError::Unavailable) => {}
            }
        }
        fanout
    }

    /// Under the connection's shard lock, so an unregister of the same connection either
    /// finishes first (`Gone`) or sees and removes the new subscription.
    pub fn subscribe_now(
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
        let new = self
            .topics
            .insert_capped(scoped(&handle.api, topic.as_str()), *id, limits.per_topic)
            .map_err(|Overflow| SubscribeError::TooManySubscribers(limits.per_topic))?;
        if new {
            self.tell(Scope::Topic, &handle.api, topic.as_str(), true);
        }
        topics.push(topic.clone());
        Ok(())
    }

    pub fn unsubscribe_now(&self, id: &ConnectionId, topic: &Topic) -> Result<(), SendError> {
        let shard = self.shard(id).read().unwrap_or_else(|p| p.into_inner());
        let handle = shard.get(id).ok_or(SendError::Gone)?;
        let mut topics = lock(&handle.topics);
        if let Some(at) = topics.iter().position(|t| t == topic) {
            topics.swap_remove(at);
            if self
                .topics
                .remove(scoped(&handle.api, topic.as_str()).as_str(), id)
            {
                self.tell(Scope::Topic, &handle.api, topic.as_str(), false);
            }
        }
        Ok(())
    }

    fn unindex(&self, handle: &ConnectionHandle) {
        if let Some(principal) = &handle.principal
            && self
                .principals
                .remove(scoped(&handle.api, principal).as_str(), &handle.id)
        {
            self.tell(Scope::User, &handle.api, principal, false);
        }
        let topics = std::mem::take(&mut *lock(&handle.topics));
        for topic in topics {
            if self
                .topics
                .remove(scoped(&handle.api, topic.as_str()).as_str(), &handle.id)
            {
                self.tell(Scope::Topic, &handle.api, topic.as_str(), false);
            }
        }
        for key in handle.session.iter().flat_map(session_key::keys) {
            self.sessions.remove(&key, &handle.id);
        }
    }
}

/// This node's connections, answered at once: what the trait's methods do on one node, and
/// what the cluster's registry does for the connections this node holds.
impl LocalRegistry {
    pub fn post_now(&self, id: &ConnectionId, message: Outbound) -> Result<(), SendError> {
        match self.get(id) {
            Some(handle) => handle.try_send(message),
            None => Err(SendError::Gone),
        }
    }

    pub fn info_now(&self, id: &ConnectionId) -> Result<ConnectionInfo, SendError> {
        let h = self.get(id).ok_or(SendError::Gone)?;
        Ok(ConnectionInfo {
            api: h.api.clone(),
            connected_at_ms: h.connected_at_ms,
            last_active_ms: h.last_active_ms.load(Ordering::Relaxed),
            source_ip: h.source_ip.clone(),
            user_agent: h.user_agent.clone(),
            principal: h.principal.clone(),
        })
    }

    pub fn close_now(&self, id: &ConnectionId, close: Close) -> Result<(), SendError> {
        let handle = self.get(id).ok_or(SendError::Gone)?;
        match handle.try_send(Outbound::Close(close)) {
            // A full queue must not stop a DELETE: close without the handshake.
            Err(SendError::Full) => {
                handle.queue.kill();
                Ok(())
            }
            other => other,
        }
    }

    pub fn list_now(&self, api: &str) -> Vec<ConnectionId> {
        let mut ids = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            ids.extend(shard.values().filter(|h| &*h.api == api).map(|h| h.id));
        }
        ids
    }

    /// Every handle on this node (for re-announcing them to a cluster).
    pub fn handles(&self) -> Vec<Arc<ConnectionHandle>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            all.extend(shard.values().cloned());
        }
        all
    }

    pub fn by_principal_now(&self, api: &str, principal: &str) -> Vec<ConnectionSummary> {
        self.summaries(self.principals.get(scoped(api, principal).as_str()))
    }

    pub fn by_topic_now(&self, api: &str, topic: &str) -> Vec<ConnectionSummary> {
        self.summaries(self.topics.get(scoped(api, topic).as_str()))
    }

    pub fn push_principal_now(&self, api: &str, principal: &str, message: &Outbound) -> Fanout {
        let ids = self.principals.get(scoped(api, principal).as_str());
        self.fan_out(&ids, message)
    }

    pub fn push_topic_now(&self, api: &str, topic: &str, message: &Outbound) -> Fanout {
        let ids = self.topics.get(scoped(api, topic).as_str());
        self.fan_out(&ids, message)
    }

    pub fn close_principal_now(&self, api: &str, principal: &str, close: &Close) -> usize {
        let ids = self.principals.get(scoped(api, principal).as_str());
        ids.iter()
            .filter(|id| self.close_now(id, close.clone()).is_ok())
            .count()
    }

    pub fn by_session_now(&self, key: &SessionKey) -> Vec<SessionConnection> {
        self.sessions
            .get(key)
            .into_iter()
            .filter_map(|id| {
                let handle = self.get(&id)?;
                let session = handle.session.clone()?;
                Some(SessionConnection { id, session })
            })
            .collect()
    }

    /// Whether this node holds a connection of `key` (a principal or a topic) in API `api`.
    pub fn holds(&self, scope: Scope, api: &str, key: &str) -> bool {
        let index = match scope {
            Scope::User => &self.principals,
            Scope::Topic => &self.topics,
        };
        index.contains(scoped(api, key).as_str())
    }

    /// Every principal and topic this node holds a connection of: `(scope, api, key)`.
    pub fn held(&self) -> Vec<(Scope, String, String)> {
        let split = |scope: Scope, scoped: String| {
            let (api, key) = scoped.split_once('\0')?;
            Some((scope, api.to_owned(), key.to_owned()))
        };
        let users = self.principals.all_keys().into_iter();
        let topics = self.topics.all_keys().into_iter();
        users
            .filter_map(|k| split(Scope::User, k))
            .chain(topics.filter_map(|k| split(Scope::Topic, k)))
            .collect()
    }

    pub fn count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
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
        ready(self.post_now(id, message))
    }

    fn info<'a>(
        &'a self,
        id: &'a ConnectionId,
    ) -> BoxFuture<'a, Result<ConnectionInfo, SendError>> {
        ready(self.info_now(id))
    }

    fn close<'a>(
        &'a self,
        id: &'a ConnectionId,
        close: Close,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        ready(self.close_now(id, close))
    }

    fn list<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Result<Vec<ConnectionId>, Unavailable>> {
        ready(Ok(self.list_now(api)))
    }

    fn by_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ConnectionSummary>, Unavailable>> {
        ready(Ok(self.by_principal_now(api, principal)))
    }

    fn by_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
    ) -> BoxFuture<'a, Result<Vec<ConnectionSummary>, Unavailable>> {
        ready(Ok(self.by_topic_now(api, topic.as_str())))
    }

    fn push_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Result<Fanout, Unavailable>> {
        ready(Ok(self.push_principal_now(api, principal, message)))
    }

    fn push_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Result<Fanout, Unavailable>> {
        ready(Ok(self.push_topic_now(api, topic.as_str(), message)))
    }

    fn close_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
        close: Close,
    ) -> BoxFuture<'a, Result<usize, Unavailable>> {
        ready(Ok(self.close_principal_now(api, principal, &close)))
    }

    fn subscribe<'a>(
        &'a self,
        id: &'a ConnectionId,
        topic: &'a Topic,
        limits: TopicLimits,
    ) -> BoxFuture<'a, Result<(), SubscribeError>> {
        ready(self.subscribe_now(id, topic, limits))
    }

    fn unsubscribe<'a>(
        &'a self,
        id: &'a ConnectionId,
        topic: &'a Topic,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        ready(self.unsubscribe_now(id, topic))
    }

    fn by_session<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Vec<SessionConnection>> {
        ready(self.by_session_now(key))
    }

    fn local_count(&self) -> usize {
        self.count()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod topic_tests;
