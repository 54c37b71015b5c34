//! What nodes say to each other over Redis pub/sub, and the record a node keeps in Redis for
//! each of its connections. Pure: encoding and decoding, no I/O.
//!
//! A message is a JSON [`Header`] line, `\n`, then the payload (the pushed data, raw: a push
//! of 128 KiB is not escaped or base64-encoded on its way to another node).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Largest message a node accepts from Redis (a reply listing many connections is the
/// largest); larger ones are dropped and counted.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// The header of every message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The sending node's tag.
    pub from: u32,
    /// Correlates a reply with its request (unique per sender while it waits).
    pub rid: u64,
    #[serde(flatten)]
    pub body: Body,
}

/// Which connections a fan-out covers: a principal's or a topic's, in one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    User,
    Topic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Body {
    // ---- to the owner of one connection (its node channel) ----
    /// `POST @connections/{id}`: the payload is the data.
    Post {
        id: String,
        binary: bool,
    },
    /// `GET @connections/{id}`.
    Get {
        id: String,
    },
    /// `DELETE @connections/{id}` (or a close for another reason, by label).
    Close {
        id: String,
        reason: CloseReason,
    },
    Subscribe {
        id: String,
        topic: String,
        per_connection: usize,
        per_topic: usize,
    },
    Unsubscribe {
        id: String,
        topic: String,
    },
    /// `GET @connections`: the ids of an API's connections.
    List {
        api: String,
    },
    // ---- to every node holding a principal's or a topic's connections (interest channel) ----
    /// The payload is the data; `seq` is its number in the API's replay log, if logged.
    Push {
        scope: Scope,
        api: String,
        key: String,
        binary: bool,
        seq: Option<u64>,
    },
    Members {
        scope: Scope,
        api: String,
        key: String,
    },
    /// `DELETE @users/{principal}`.
    CloseAll {
        scope: Scope,
        api: String,
        key: String,
    },
    // ---- the answer, on the asker's node channel ----
    Reply {
        outcome: Outcome,
    },
}

/// Why a forwarded close happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    Deleted,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Gone,
    Full,
    Info(InfoDoc),
    Fanout { delivered: usize, full: usize },
    Members { connections: Vec<MemberDoc> },
    Ids { ids: Vec<String> },
    TooManyTopics { cap: usize },
    TooManySubscribers { cap: usize },
}

/// `GET @connections/{id}` as the owner answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoDoc {
    pub api: String,
    pub connected_at: i64,
    pub last_active: i64,
    pub source_ip: String,
    pub user_agent: String,
    pub principal: Option<String>,
}

/// One connection of a `GET @users` / `GET @topics` listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDoc {
    pub id: String,
    pub connected_at: i64,
    pub transport: String,
}

/// What a node keeps in Redis about each connection it holds: everything a surviving node
/// needs to send the connection's `$disconnect` if this node dies.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub api: String,
    pub connected_at: i64,
    pub source_ip: String,
    pub user_agent: String,
    pub principal: Option<String>,
    /// `requestContext.authorizer` of the connection's events.
    pub authorizer: Option<Box<RawValue>>,
    /// `websocket` or `sse`.
    pub transport: String,
}

/// A message: the header line, `\n`, the payload.
pub fn encode(header: &Header, payload: &[u8]) -> Vec<u8> {
    // A header of strings and numbers always serialises.
    let mut out = serde_json::to_vec(header).unwrap_or_default();
    out.reserve(1 + payload.len());
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

/// Why a message from Redis was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadMessage {
    #[error("message over {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("message without a header line")]
    NoHeader,
    #[error("unreadable header")]
    Header,
}

/// The header and the payload of a message (the payload's offset in `message`).
pub fn decode(message: &[u8]) -> Result<(Header, usize), BadMessage> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(BadMessage::TooLarge);
    }
    let end = message
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(BadMessage::NoHeader)?;
    let header = serde_json::from_slice(&message[..end]).map_err(|_| BadMessage::Header)?;
    Ok((header, end + 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_push_carries_its_payload_raw_after_the_header() {
        let header = Header {
            from: 7,
            rid: 42,
            body: Body::Push {
                scope: Scope::User,
                api: "chat".into(),
                key: "bob\n\"x\"".into(),
                binary: true,
                seq: Some(9),
            },
        };
        let payload = b"\x00\xffline\nbreak";
        let message = encode(&header, payload);
        let (back, at) = decode(&message).unwrap();
        assert_eq!(back, header);
        assert_eq!(&message[at..], payload);
    }

    #[test]
    fn replies_round_trip() {
        for outcome in [
            Outcome::Ok,
            Outcome::Gone,
            Outcome::Fanout {
                delivered: 3,
                full: 1,
            },
            Outcome::TooManyTopics { cap: 100 },
            Outcome::Members {
                connections: vec![MemberDoc {
                    id: "abc".into(),
                    connected_at: 5,
                    transport: "sse".into(),
                }],
            },
        ] {
            let header = Header {
                from: 1,
                rid: 2,
                body: Body::Reply { outcome },
            };
            let (back, at) = decode(&encode(&header, b"")).unwrap();
            assert_eq!(back, header);
            assert_eq!(at, encode(&header, b"").len());
        }
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert_eq!(decode(b"no newline"), Err(BadMessage::NoHeader));
        assert_eq!(decode(b"{\"from\":1}\n"), Err(BadMessage::Header));
        assert_eq!(decode(b"\xff\xfe\n"), Err(BadMessage::Header));
        let huge = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(decode(&huge), Err(BadMessage::TooLarge));
    }
}
