//! The connection registry: which connections exist and how to reach them.
//!
//! The management API and every later push path go through the [`ConnectionRegistry`] trait,
//! never through a concrete map, so a Redis-backed, multi-node registry can replace the
//! in-process [`LocalRegistry`]. A [`ConnectionId`] carries the id of the node that owns the
//! socket, so any node can tell where to forward a push without a lookup.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use portcullis_core::close::Close;
use portcullis_core::id::{ConnectionId, NodeId};

use crate::queue::OutboundQueue;

/// Something to deliver to a client from outside its session task.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Bytes),
    /// Close the connection for this reason (e.g. `DELETE @connections`).
    Close(Close),
}

/// The built-in identity provider's session a connection was admitted with, so a revocation
/// (sign-out, revoked token, disabled user) can close it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub issuer: String,
    pub sub: String,
    pub origin_jti: Option<String>,
    pub iat: i64,
}

impl SessionRef {
    /// Whether `revocation` covers this session.
    pub fn revoked_by(&self, revocation: &portcullis_idp::Revocation) -> bool {
        match revocation {
            portcullis_idp::Revocation::Session { issuer, origin_jti } => {
                *issuer == self.issuer && self.origin_jti.as_deref() == Some(origin_jti.as_str())
            }
            portcullis_idp::Revocation::User {
                issuer,
                sub,
                before,
            } => *issuer == self.issuer && *sub == self.sub && self.iat < *before,
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
    /// The principal the authorizer established, if any.
    pub principal: Option<String>,
    /// Set when the connection was admitted with a token of a built-in pool.
    pub session: Option<SessionRef>,
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

/// A snapshot for `GET @connections/{id}`.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub connected_at_ms: i64,
    pub last_active_ms: i64,
    pub source_ip: String,
    pub user_agent: String,
    pub principal: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("connection is gone")]
    Gone,
    #[error("connection send queue is full")]
    Full,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where connections are found. Implementations: [`LocalRegistry`] (one node); a Redis one
/// can forward to the owning node given by [`ConnectionId::node`].
pub trait ConnectionRegistry: Send + Sync + 'static {
    /// This node's id: minted into every connection id created here.
    fn node(&self) -> NodeId;
    fn register(&self, handle: Arc<ConnectionHandle>);
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
    /// Number of open connections on this node.
    fn local_count(&self) -> usize;
}

const SHARDS: usize = 32;

/// The in-process registry: a sharded map of live sessions.
pub struct LocalRegistry {
    node: NodeId,
    shards: Vec<RwLock<HashMap<ConnectionId, Arc<ConnectionHandle>>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl LocalRegistry {
    pub fn new(node: NodeId) -> Self {
        LocalRegistry {
            node,
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, id: &ConnectionId) -> &RwLock<HashMap<ConnectionId, Arc<ConnectionHandle>>> {
        let i = (self.hasher.hash_one(id) as usize) % SHARDS;
        &self.shards[i]
    }

    /// The live handle of a local connection.
    pub fn get(&self, id: &ConnectionId) -> Option<Arc<ConnectionHandle>> {
        let shard = self.shard(id).read().unwrap_or_else(|p| p.into_inner());
        shard.get(id).cloned()
    }

    /// Every local handle (used by graceful shutdown).
    pub fn all(&self) -> Vec<Arc<ConnectionHandle>> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            out.extend(shard.values().cloned());
        }
        out
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
        shard.insert(handle.id, handle);
    }

    fn unregister(&self, id: &ConnectionId) {
        let mut shard = self.shard(id).write().unwrap_or_else(|p| p.into_inner());
        shard.remove(id);
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

    fn local_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_idp::Revocation;

    fn session() -> SessionRef {
        SessionRef {
            issuer: "http://idp/pools/main".into(),
            sub: "u-1".into(),
            origin_jti: Some("o-1".into()),
            iat: 100,
        }
    }

    #[test]
    fn revocations_cover_only_their_session_or_user() {
        let s = session();
        let issuer = || "http://idp/pools/main".to_owned();
        assert!(s.revoked_by(&Revocation::Session {
            issuer: issuer(),
            origin_jti: "o-1".into()
        }));
        assert!(!s.revoked_by(&Revocation::Session {
            issuer: issuer(),
            origin_jti: "o-2".into()
        }));
        assert!(!s.revoked_by(&Revocation::Session {
            issuer: "http://other/pools/main".into(),
            origin_jti: "o-1".into()
        }));
        assert!(s.revoked_by(&Revocation::User {
            issuer: issuer(),
            sub: "u-1".into(),
            before: 101
        }));
        assert!(
            !s.revoked_by(&Revocation::User {
                issuer: issuer(),
                sub: "u-1".into(),
                before: 100
            }),
            "issued after the sign-out"
        );
        assert!(!s.revoked_by(&Revocation::User {
            issuer: issuer(),
            sub: "u-2".into(),
            before: i64::MAX
        }));
    }
}
