//! Names of the Redis keys and channels a cluster uses, all under `portcullis:`.
//!
//! - `portcullis:nodes` (sorted set): node tag → time of its last heartbeat (Redis's clock,
//!   ms), the membership every node reads;
//! - `portcullis:node:{tag}` (channel): requests to a node and replies to its requests;
//! - `portcullis:all` (channel): requests to every node;
//! - `portcullis:node:{tag}:conns` (hash): connection id → [`Record`](super::wire::Record) of
//!   each connection the node holds, what a survivor needs to send `$disconnect` for it;
//! - `portcullis:node:{tag}:name` (string): the node's `node_id`, for logs;
//! - `portcullis:dead` (set): nodes declared dead whose records survivors are still claiming;
//! - `portcullis:u:{len}:{api}:{principal}` and `portcullis:t:{len}:{api}:{topic}` (channels):
//!   pushes to a principal's or a topic's connections, listened to only by the nodes that hold
//!   one (the API name is length-prefixed, so no principal can forge another API's channel);
//! - `portcullis:replay:{len}:{api}:…`: the SSE replay log of an API ([`Replay`]).

use portcullis_core::id::NodeId;

pub const NODES: &str = "portcullis:nodes";

/// The channel every node listens on (listings of every node's connections).
pub const ALL: &str = "portcullis:all";

pub fn node_channel(node: NodeId) -> String {
    format!("portcullis:node:{node}")
}

pub fn conns(node: NodeId) -> String {
    format!("portcullis:node:{node}:conns")
}

pub fn node_name(node: NodeId) -> String {
    format!("portcullis:node:{node}:name")
}

/// What an interest channel is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    User,
    Topic,
}

/// The channel of a principal's (`Kind::User`) or a topic's connections in API `api`.
pub fn interest(kind: Kind, api: &str, key: &str) -> Vec<u8> {
    let letter = match kind {
        Kind::User => 'u',
        Kind::Topic => 't',
    };
    format!("portcullis:{letter}:{}:{api}:{key}", api.len()).into_bytes()
}

/// The keys of API `api`'s SSE replay log (`crate::replay::SharedReplay`).
#[derive(Debug, Clone)]
pub struct Replay {
    prefix: String,
}

impl Replay {
    pub fn new(api: &str) -> Self {
        Replay {
            prefix: format!("portcullis:replay:{}:{api}:", api.len()),
        }
    }

    /// (string) the log's generation, shared by every node.
    pub fn generation(&self) -> String {
        format!("{}gen", self.prefix)
    }

    /// (string) the latest sequence number.
    pub fn seq(&self) -> String {
        format!("{}seq", self.prefix)
    }

    /// (hash) clock slice → sequence number before the slice's first push.
    pub fn marks(&self) -> String {
        format!("{}marks", self.prefix)
    }

    /// (stream) the latest pushes to `principal`, entry id `{seq}-0`.
    pub fn log(&self, principal: &str) -> String {
        format!("{}p:{principal}", self.prefix)
    }

    /// (string) the latest push trimmed from `principal`'s log.
    pub fn trimmed(&self, principal: &str) -> String {
        format!("{}f:{principal}", self.prefix)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn interest_channels_of_different_apis_never_meet() {
        // API "a" with principal "b:c" and API "a:b" with principal "c" must differ.
        assert_ne!(
            interest(Kind::User, "a", "b:c"),
            interest(Kind::User, "a:b", "c")
        );
        assert_ne!(
            interest(Kind::User, "chat", "x"),
            interest(Kind::Topic, "chat", "x")
        );
        assert_eq!(
            interest(Kind::Topic, "chat", "room:1"),
            b"portcullis:t:4:chat:room:1"
        );
        assert_ne!(Replay::new("a").log("b:p:c"), Replay::new("a:p:b").log("c"));
        assert_eq!(Replay::new("chat").seq(), "portcullis:replay:4:chat:seq");
    }
}
