//! What arrives from Redis: replies go to the requests waiting for them, requests are
//! answered from this node's registry (at once: every operation is a non-blocking registry
//! call) and the answer is published to the asker's channel.

use std::sync::Arc;

use bytes::Bytes;
use portcullis_core::close::Close;
use portcullis_core::id::{ConnectionId, NodeId};
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Body, CloseReason, Header, InfoDoc, MemberDoc, Outcome, Scope};
use super::{Cluster, Inbound, keys, message_of};
use crate::registry::{
    ConnectionSummary, Data, Outbound, SendError, SubscribeError, Topic, TopicLimits, Utf8Bytes,
};

pub(super) async fn run(
    cluster: Arc<Cluster>,
    mut inbox: mpsc::Receiver<Inbound>,
    shutdown: CancellationToken,
) {
    let own = keys::node_channel(cluster.node);
    loop {
        let push = tokio::select! {
            _ = shutdown.cancelled() => return,
            push = inbox.recv() => match push {
                Some((push, size)) => {
                    cluster.inbox_bytes.fetch_sub(size, Ordering::SeqCst);
                    push
                }
                None => return,
            },
        };
        let Some((channel, message)) = message_of(push) else {
            continue;
        };
        let Ok((header, at)) = wire::decode(&message) else {
            cluster.metrics.cluster.lost("undecodable");
            continue;
        };
        let payload = Bytes::from(message).slice(at..);
        if let Body::Reply { outcome } = header.body {
            if channel == own.as_bytes() {
                cluster.calls.complete(header.rid, outcome);
            }
            continue;
        }
        if header.from == cluster.node.0 {
            // A fan-out this node published and also receives: it served its own connections
            // before publishing, so its copy counts nothing.
            cluster.calls.complete(header.rid, nothing(&header.body));
            continue;
        }
        let subscribed = matches!(header.body, Body::Subscribe { .. });
        let outcome = answer(&cluster, header.body, payload);
        // A subscription is answered once pushes to the topic from any node reach it.
        let settle = subscribed && outcome == Outcome::Ok;
        let Ok(permit) = cluster.reply_slots.clone().acquire_owned().await else {
            return;
        };
        let reply = wire::encode(
            &Header {
                from: cluster.node.0,
                rid: header.rid,
                body: Body::Reply { outcome },
            },
            b"",
        );
        let to = keys::node_channel(NodeId(header.from).masked());
        let replier = cluster.clone();
        tokio::spawn(async move {
            if settle {
                replier.interests.settled().await;
            }
            if replier.publish(to.as_bytes(), reply).await.is_err() {
                replier.metrics.cluster.lost("reply_unsent");
            }
            drop(permit);
        });
    }
}

/// The answer of a node that holds no receiver.
fn nothing(body: &Body) -> Outcome {
    match body {
        Body::Members { .. } => Outcome::Members {
            connections: Vec::new(),
        },
        Body::List { .. } => Outcome::Ids { ids: Vec::new() },
        _ => Outcome::Fanout {
            delivered: 0,
            full: 0,
        },
    }
}

fn data(payload: Bytes, binary: bool) -> Data {
    if binary {
        return Data::Binary(payload);
    }
    match Utf8Bytes::try_from(payload.clone()) {
        Ok(text) => Data::Text(text),
        Err(_) => Data::Binary(payload),
    }
}

fn sent(result: Result<(), SendError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(SendError::Full) => Outcome::Full,
        Err(SendError::Gone | SendError::Unavailable) => Outcome::Gone,
    }
}

pub(super) fn members(found: Vec<ConnectionSummary>) -> Outcome {
    Outcome::Members {
        connections: found
            .into_iter()
            .map(|c| MemberDoc {
                id: c.id.as_str().to_owned(),
                connected_at: c.connected_at_ms,
                transport: c.transport.as_str().to_owned(),
            })
            .collect(),
    }
}

/// This node's answer to a request.
fn answer(cluster: &Cluster, body: Body, payload: Bytes) -> Outcome {
    let local = &cluster.local;
    let id = |raw: &str| ConnectionId::parse(raw);
    match body {
        Body::Post { id: raw, binary } => match id(&raw) {
            Some(id) => sent(local.post_now(&id, data(payload, binary).into())),
            None => Outcome::Gone,
        },
        Body::Get { id: raw } => match id(&raw).map(|id| local.info_now(&id)) {
            Some(Ok(info)) => Outcome::Info(InfoDoc {
                api: info.api.to_string(),
                connected_at: info.connected_at_ms,
                last_active: info.last_active_ms,
                source_ip: info.source_ip,
                user_agent: info.user_agent,
                principal: info.principal,
            }),
            _ => Outcome::Gone,
        },
        Body::Close { id: raw, reason } => {
            let close = match reason {
                CloseReason::Deleted => Close::Deleted,
                CloseReason::Revoked => Close::Revoked,
            };
            match id(&raw) {
                Some(id) => sent(local.close_now(&id, close)),
                None => Outcome::Gone,
            }
        }
        Body::Subscribe {
            id: raw,
            topic,
            per_connection,
            per_topic,
        } => {
            let (Some(id), Ok(topic)) = (id(&raw), Topic::parse(&topic)) else {
                return Outcome::Gone;
            };
            let limits = TopicLimits {
                per_connection,
                per_topic,
            };
            match local.subscribe_now(&id, &topic, limits) {
                Ok(()) => Outcome::Ok,
                Err(SubscribeError::TooManyTopics(cap)) => Outcome::TooManyTopics { cap },
                Err(SubscribeError::TooManySubscribers(cap)) => Outcome::TooManySubscribers { cap },
                Err(SubscribeError::Gone | SubscribeError::Unavailable) => Outcome::Gone,
            }
        }
        Body::Unsubscribe { id: raw, topic } => {
            let (Some(id), Ok(topic)) = (id(&raw), Topic::parse(&topic)) else {
                return Outcome::Gone;
            };
            sent(local.unsubscribe_now(&id, &topic))
        }
        Body::List { api } => Outcome::Ids {
            ids: local
                .list_now(&api)
                .iter()
                .map(|id| id.as_str().to_owned())
                .collect(),
        },
        Body::Push {
            scope,
            api,
            key,
            binary,
            seq,
        } => {
            let data = data(payload, binary);
            let message = match seq {
                Some(seq) => Outbound::Logged { seq, data },
                None => data.into(),
            };
            let fanout = match scope {
                Scope::User => local.push_principal_now(&api, &key, &message),
                Scope::Topic => local.push_topic_now(&api, &key, &message),
            };
            Outcome::Fanout {
                delivered: fanout.delivered,
                full: fanout.full,
            }
        }
        Body::Members { scope, api, key } => members(match scope {
            Scope::User => local.by_principal_now(&api, &key),
            Scope::Topic => local.by_topic_now(&api, &key),
        }),
        Body::CloseAll { scope, api, key } => {
            let closed = match scope {
                Scope::User => local.close_principal_now(&api, &key, &Close::Deleted),
                // Topics are not closed as a whole.
                Scope::Topic => 0,
            };
            Outcome::Fanout {
                delivered: closed,
                full: 0,
            }
        }
        Body::Reply { .. } => Outcome::Gone,
    }
}
