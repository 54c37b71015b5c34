//! The cluster as the gateway's registry: this node's connections are answered by its
//! [`LocalRegistry`](crate::registry::LocalRegistry), the others' through their nodes.

use std::sync::Arc;

use portcullis_core::close::Close;
use portcullis_core::id::{ConnectionId, NodeId};

use super::announce::Change;
use super::interest::Key;
use super::wire::{Body, CloseReason, Outcome, Scope as WireScope};
use super::{Cluster, keys};
use crate::registry::{
    BoxFuture, ConnectionHandle, ConnectionInfo, ConnectionRegistry, ConnectionSummary, Data,
    Fanout, Outbound, Scope, SendError, SessionConnection, SubscribeError, Topic, TopicLimits,
    Transport, Unavailable,
};
use crate::session_key::SessionKey;

/// A message's payload and whether it is binary (a close has none).
fn payload(message: &Outbound) -> (&[u8], bool, Option<u64>) {
    match message {
        Outbound::Text(text) => (text.as_bytes(), false, None),
        Outbound::Binary(bytes) => (bytes, true, None),
        Outbound::Logged { seq, data } => match data {
            Data::Text(text) => (text.as_bytes(), false, Some(*seq)),
            Data::Binary(bytes) => (bytes, true, Some(*seq)),
        },
        Outbound::Close(_) => (b"", false, None),
    }
}

fn sent(outcome: Result<Outcome, ()>) -> Result<(), SendError> {
    match outcome {
        Ok(Outcome::Ok) => Ok(()),
        Ok(Outcome::Full) => Err(SendError::Full),
        Ok(_) => Err(SendError::Gone),
        Err(()) => Err(SendError::Unavailable),
    }
}

fn fanout(outcomes: Vec<Outcome>) -> Fanout {
    let mut total = Fanout::default();
    for outcome in outcomes {
        if let Outcome::Fanout { delivered, full } = outcome {
            total.add(Fanout { delivered, full });
        }
    }
    total
}

fn summaries(outcomes: Vec<Outcome>) -> Vec<ConnectionSummary> {
    let mut found = Vec::new();
    for outcome in outcomes {
        let Outcome::Members { connections } = outcome else {
            continue;
        };
        found.extend(connections.into_iter().filter_map(|c| {
            Some(ConnectionSummary {
                id: ConnectionId::parse(&c.id)?,
                connected_at_ms: c.connected_at,
                transport: if c.transport == "sse" {
                    Transport::Sse
                } else {
                    Transport::WebSocket
                },
            })
        }));
    }
    found
}

impl Cluster {
    fn owner(&self, id: &ConnectionId) -> Option<NodeId> {
        let node = id.node();
        (node != self.node).then_some(node)
    }

    fn channel(scope: Scope, api: &str, key: &str) -> Vec<u8> {
        Key {
            scope,
            api: api.to_owned(),
            key: key.to_owned(),
        }
        .channel()
    }

    async fn post_remote(
        &self,
        node: NodeId,
        id: &ConnectionId,
        message: Outbound,
    ) -> Result<(), SendError> {
        if let Outbound::Close(close) = message {
            return self.close_remote(node, id, close).await;
        }
        let (bytes, binary, _) = payload(&message);
        let body = Body::Post {
            id: id.as_str().to_owned(),
            binary,
        };
        sent(self.call_one(node, "post", body, bytes).await)
    }

    async fn close_remote(
        &self,
        node: NodeId,
        id: &ConnectionId,
        close: Close,
    ) -> Result<(), SendError> {
        let reason = match close {
            Close::Revoked => CloseReason::Revoked,
            _ => CloseReason::Deleted,
        };
        let body = Body::Close {
            id: id.as_str().to_owned(),
            reason,
        };
        sent(self.call_one(node, "close", body, b"").await)
    }

    async fn info_remote(
        &self,
        node: NodeId,
        id: &ConnectionId,
    ) -> Result<ConnectionInfo, SendError> {
        let body = Body::Get {
            id: id.as_str().to_owned(),
        };
        match self.call_one(node, "get", body, b"").await {
            Ok(Outcome::Info(doc)) => Ok(ConnectionInfo {
                api: Arc::from(doc.api),
                connected_at_ms: doc.connected_at,
                last_active_ms: doc.last_active,
                source_ip: doc.source_ip,
                user_agent: doc.user_agent,
                principal: doc.principal,
            }),
            Ok(_) => Err(SendError::Gone),
            Err(()) => Err(SendError::Unavailable),
        }
    }

    async fn list_all(&self, api: &str) -> Result<Vec<ConnectionId>, Unavailable> {
        let body = Body::List {
            api: api.to_owned(),
        };
        let (mut ids, outcomes) = self
            .call_interested(keys::ALL.as_bytes(), "list", body, b"", || {
                self.local.list_now(api)
            })
            .await
            .map_err(|()| Unavailable)?;
        for outcome in outcomes {
            if let Outcome::Ids { ids: theirs } = outcome {
                ids.extend(theirs.iter().filter_map(|id| ConnectionId::parse(id)));
            }
        }
        Ok(ids)
    }

    async fn members(
        &self,
        scope: Scope,
        api: &str,
        key: &str,
    ) -> Result<Vec<ConnectionSummary>, Unavailable> {
        let body = Body::Members {
            scope: wire_scope(scope),
            api: api.to_owned(),
            key: key.to_owned(),
        };
        let channel = Self::channel(scope, api, key);
        let (mut found, outcomes) = self
            .call_interested(&channel, "members", body, b"", || match scope {
                Scope::User => self.local.by_principal_now(api, key),
                Scope::Topic => self.local.by_topic_now(api, key),
            })
            .await
            .map_err(|()| Unavailable)?;
        found.extend(summaries(outcomes));
        Ok(found)
    }

    async fn push(
        &self,
        scope: Scope,
        api: &str,
        key: &str,
        message: &Outbound,
    ) -> Result<Fanout, Unavailable> {
        let (bytes, binary, seq) = payload(message);
        let body = Body::Push {
            scope: wire_scope(scope),
            api: api.to_owned(),
            key: key.to_owned(),
            binary,
            seq,
        };
        let channel = Self::channel(scope, api, key);
        // This node's receivers are served directly, once the others have been told.
        let (mut total, outcomes) = self
            .call_interested(&channel, "push", body, bytes, || match scope {
                Scope::User => self.local.push_principal_now(api, key, message),
                Scope::Topic => self.local.push_topic_now(api, key, message),
            })
            .await
            .map_err(|()| Unavailable)?;
        total.add(fanout(outcomes));
        Ok(total)
    }

    async fn close_all(&self, api: &str, principal: &str) -> Result<usize, Unavailable> {
        let body = Body::CloseAll {
            scope: WireScope::User,
            api: api.to_owned(),
            key: principal.to_owned(),
        };
        let channel = Self::channel(Scope::User, api, principal);
        let (mine, outcomes) = self
            .call_interested(&channel, "close_all", body, b"", || {
                self.local
                    .close_principal_now(api, principal, &Close::Deleted)
            })
            .await
            .map_err(|()| Unavailable)?;
        Ok(mine + fanout(outcomes).delivered)
    }

    async fn subscribe_remote(
        &self,
        node: NodeId,
        id: &ConnectionId,
        topic: &Topic,
        limits: TopicLimits,
    ) -> Result<(), SubscribeError> {
        let body = Body::Subscribe {
            id: id.as_str().to_owned(),
            topic: topic.as_str().to_owned(),
            per_connection: limits.per_connection,
            per_topic: limits.per_topic,
        };
        match self.call_one(node, "subscribe", body, b"").await {
            Ok(Outcome::Ok) => Ok(()),
            Ok(Outcome::TooManyTopics { cap }) => Err(SubscribeError::TooManyTopics(cap)),
            Ok(Outcome::TooManySubscribers { cap }) => Err(SubscribeError::TooManySubscribers(cap)),
            Ok(_) => Err(SubscribeError::Gone),
            Err(()) => Err(SubscribeError::Unavailable),
        }
    }

    async fn unsubscribe_remote(
        &self,
        node: NodeId,
        id: &ConnectionId,
        topic: &Topic,
    ) -> Result<(), SendError> {
        let body = Body::Unsubscribe {
            id: id.as_str().to_owned(),
            topic: topic.as_str().to_owned(),
        };
        sent(self.call_one(node, "unsubscribe", body, b"").await)
    }
}

fn wire_scope(scope: Scope) -> WireScope {
    match scope {
        Scope::User => WireScope::User,
        Scope::Topic => WireScope::Topic,
    }
}

impl ConnectionRegistry for Cluster {
    fn node(&self) -> NodeId {
        self.node
    }

    fn register(&self, handle: Arc<ConnectionHandle>) {
        let id = handle.id;
        self.local.register(handle.clone());
        self.announcer.mark(id, Change::Add(handle));
    }

    fn unregister(&self, id: &ConnectionId) {
        self.local.unregister(id);
        self.announcer.mark(*id, Change::Remove);
    }

    fn post<'a>(
        &'a self,
        id: &'a ConnectionId,
        message: Outbound,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            match self.owner(id) {
                None => self.local.post_now(id, message),
                Some(node) => self.post_remote(node, id, message).await,
            }
        })
    }

    fn info<'a>(
        &'a self,
        id: &'a ConnectionId,
    ) -> BoxFuture<'a, Result<ConnectionInfo, SendError>> {
        Box::pin(async move {
            match self.owner(id) {
                None => self.local.info_now(id),
                Some(node) => self.info_remote(node, id).await,
            }
        })
    }

    fn close<'a>(
        &'a self,
        id: &'a ConnectionId,
        close: Close,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            match self.owner(id) {
                None => self.local.close_now(id, close),
                Some(node) => self.close_remote(node, id, close).await,
            }
        })
    }

    fn list<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Result<Vec<ConnectionId>, Unavailable>> {
        Box::pin(self.list_all(api))
    }

    fn by_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ConnectionSummary>, Unavailable>> {
        Box::pin(self.members(Scope::User, api, principal))
    }

    fn by_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
    ) -> BoxFuture<'a, Result<Vec<ConnectionSummary>, Unavailable>> {
        Box::pin(self.members(Scope::Topic, api, topic.as_str()))
    }

    fn push_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Result<Fanout, Unavailable>> {
        Box::pin(self.push(Scope::User, api, principal, message))
    }

    fn push_topic<'a>(
        &'a self,
        api: &'a str,
        topic: &'a Topic,
        message: &'a Outbound,
    ) -> BoxFuture<'a, Result<Fanout, Unavailable>> {
        Box::pin(self.push(Scope::Topic, api, topic.as_str(), message))
    }

    fn close_principal<'a>(
        &'a self,
        api: &'a str,
        principal: &'a str,
        _close: Close,
    ) -> BoxFuture<'a, Result<usize, Unavailable>> {
        Box::pin(self.close_all(api, principal))
    }

    fn subscribe<'a>(
        &'a self,
        id: &'a ConnectionId,
        topic: &'a Topic,
        limits: TopicLimits,
    ) -> BoxFuture<'a, Result<(), SubscribeError>> {
        Box::pin(async move {
            match self.owner(id) {
                None => {
                    self.local.subscribe_now(id, topic, limits)?;
                    self.settle().await;
                    Ok(())
                }
                Some(node) => self.subscribe_remote(node, id, topic, limits).await,
            }
        })
    }

    fn unsubscribe<'a>(
        &'a self,
        id: &'a ConnectionId,
        topic: &'a Topic,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            match self.owner(id) {
                None => self.local.unsubscribe_now(id, topic),
                Some(node) => self.unsubscribe_remote(node, id, topic).await,
            }
        })
    }

    fn by_session<'a>(&'a self, key: &'a SessionKey) -> BoxFuture<'a, Vec<SessionConnection>> {
        Box::pin(std::future::ready(self.local.by_session_now(key)))
    }

    fn local_count(&self) -> usize {
        self.local.count()
    }

    fn settle(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.is_up() {
                self.interests.settled().await;
            }
        })
    }
}
