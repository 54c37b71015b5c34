//! Identifiers: connection ids that carry the owning node, and AWS-looking request ids.
//!
//! A [`ConnectionId`] is 15 bytes — a 3-byte node tag followed by 12 random bytes (96 bits of
//! entropy) — encoded as unpadded base64url, so it is always exactly 20 URL-safe characters and
//! never needs percent-encoding in `@connections/{id}` paths. Any node can tell which node owns a
//! connection by decoding the first four characters, without a lookup.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

/// Length of the string form of a [`ConnectionId`].
pub const CONNECTION_ID_LEN: usize = 20;

/// Identifies a gateway node in a cluster. Only the low 24 bits are used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub u32);

impl NodeId {
    /// Mask of the bits a node id may use.
    pub const MASK: u32 = 0x00FF_FFFF;

    /// The id with the unused high bits cleared.
    pub fn masked(self) -> NodeId {
        NodeId(self.0 & Self::MASK)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0 & Self::MASK)
    }
}

/// A WebSocket connection id: 20 base64url characters, stored inline (no heap).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId([u8; CONNECTION_ID_LEN]);

impl ConnectionId {
    /// A fresh id owned by `node`: 3 bytes of node tag + 12 random bytes.
    pub fn generate(node: NodeId) -> ConnectionId {
        let n = node.0 & NodeId::MASK;
        let random: [u8; 12] = rand::random();
        let mut raw = [0u8; 15];
        raw[0] = (n >> 16) as u8;
        raw[1] = (n >> 8) as u8;
        raw[2] = n as u8;
        raw[3..].copy_from_slice(&random);
        let mut out = [0u8; CONNECTION_ID_LEN];
        // 15 bytes always encode to exactly 20 characters, so this cannot fail.
        let _ = URL_SAFE_NO_PAD.encode_slice(raw, &mut out);
        ConnectionId(out)
    }

    /// Parses the string form; `None` unless it is exactly 20 base64url characters.
    pub fn parse(s: &str) -> Option<ConnectionId> {
        let bytes: [u8; CONNECTION_ID_LEN] = s.as_bytes().try_into().ok()?;
        if bytes.iter().all(|&b| is_base64url(b)) {
            Some(ConnectionId(bytes))
        } else {
            None
        }
    }

    /// The node that created (and owns) this connection.
    pub fn node(&self) -> NodeId {
        let tag = &self.0[..4];
        let mut raw = [0u8; 3];
        match URL_SAFE_NO_PAD.decode_slice(tag, &mut raw) {
            Ok(3) => {
                NodeId((u32::from(raw[0]) << 16) | (u32::from(raw[1]) << 8) | u32::from(raw[2]))
            }
            _ => NodeId(0),
        }
    }

    /// The 20-character string form.
    pub fn as_str(&self) -> &str {
        // Only ASCII base64url bytes are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionId({})", self.as_str())
    }
}

impl AsRef<str> for ConnectionId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::str::FromStr for ConnectionId {
    type Err = InvalidConnectionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnectionId::parse(s).ok_or(InvalidConnectionId)
    }
}

/// The string is not a valid connection id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection id (expected 20 base64url characters)")]
pub struct InvalidConnectionId;

impl serde::Serialize for ConnectionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ConnectionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ConnectionId::parse(&s).ok_or_else(|| serde::de::Error::custom(InvalidConnectionId))
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A 16-character AWS-looking request id such as `Yq3jQhTboAMFa1w=`: base64 (URL-safe alphabet,
/// padded) of 11 random bytes.
pub fn request_id() -> String {
    let random: [u8; 11] = rand::random();
    URL_SAFE.encode(random)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generate_round_trips_node_and_shape() {
        for n in [0u32, 1, 0xAB_CDEF, 0xFF_FFFF, 0xFFFF_FFFF] {
            let id = ConnectionId::generate(NodeId(n));
            assert_eq!(id.as_str().len(), CONNECTION_ID_LEN);
            assert!(id.as_str().bytes().all(is_base64url), "{id}");
            assert_eq!(id.node(), NodeId(n & NodeId::MASK));
            assert_eq!(ConnectionId::parse(id.as_str()), Some(id));
            assert_eq!(id.to_string(), id.as_str());
        }
    }

    #[test]
    fn ids_differ() {
        let a = ConnectionId::generate(NodeId(7));
        let b = ConnectionId::generate(NodeId(7));
        assert_ne!(a, b);
        assert_eq!(a.as_str()[..4], b.as_str()[..4]);
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, bool)] = &[
            ("AAAAAAAAAAAAAAAAAAAA", true),
            ("abcdefghij-_KLMNOPQ9", true),
            ("AAAAAAAAAAAAAAAAAAA", false),
            ("AAAAAAAAAAAAAAAAAAAAA", false),
            ("AAAAAAAAAAAAAAAAAAA=", false),
            ("AAAAAAAAAAAAAAAAAA+/", false),
            ("AAAAAAAAAAAAAAAAAAé", false),
            ("", false),
        ];
        for (s, ok) in cases {
            assert_eq!(ConnectionId::parse(s).is_some(), *ok, "{s:?}");
        }
    }

    #[test]
    fn serde_as_string() {
        let id = ConnectionId::generate(NodeId(3));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: ConnectionId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<ConnectionId>("\"short\"").is_err());
    }

    #[test]
    fn request_id_shape() {
        for _ in 0..100 {
            let r = request_id();
            assert_eq!(r.len(), 16);
            assert!(r.ends_with('='));
            assert!(r[..15].bytes().all(is_base64url), "{r}");
        }
    }
}
