//! What a management API path names: `/[{stage}/]@connections[/{id}[/topics/{topic}]]`,
//! `/[{stage}/]@users/{principalId}` and `/[{stage}/]@topics/{topic}` (the `@` may be sent as
//! `%40`). Segments after the `@` word are percent-decoded.

/// The resource a path names, under an optional stage.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Path {
    pub stage: Option<String>,
    pub target: Target,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// `@connections`: the list (a Portcullis extension).
    Connections,
    /// `@connections/{id}`.
    Connection(String),
    /// `@connections/{id}/topics/{topic}`.
    Subscription { id: String, topic: String },
    /// `@users/{principalId}`.
    User(String),
    /// `@topics/{topic}`.
    Topic(String),
}

/// Longest decoded segment (a connection id, principal or topic) worth looking up.
const MAX_SEGMENT_BYTES: usize = 1024;

#[derive(Clone, Copy)]
enum Collection {
    Connections,
    Users,
    Topics,
}

fn collection(segment: &str) -> Option<Collection> {
    let word = match segment.strip_prefix('@') {
        Some(word) => word,
        None => match (segment.get(..3), segment.get(3..)) {
            (Some(at), Some(word)) if at.eq_ignore_ascii_case("%40") => word,
            _ => return None,
        },
    };
    match word {
        "connections" => Some(Collection::Connections),
        "users" => Some(Collection::Users),
        "topics" => Some(Collection::Topics),
        _ => None,
    }
}

fn decode(segment: &str) -> Option<String> {
    if segment.is_empty() {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?;
    (decoded.len() <= MAX_SEGMENT_BYTES).then(|| decoded.into_owned())
}

/// A topic segment: like [`decode`], but an empty one is kept, so that the empty name is
/// refused as a bad topic name (400) rather than as a path that names nothing (404).
fn decode_topic(segment: &str) -> Option<String> {
    if segment.is_empty() {
        return Some(String::new());
    }
    decode(segment)
}

/// `None` when the path names nothing the management API serves (404).
pub(super) fn parse(raw_path: &str) -> Option<Path> {
    let segments: Vec<&str> = raw_path.strip_prefix('/')?.split('/').collect();
    let (stage, kind, rest) = match segments.as_slice() {
        [first, rest @ ..] if collection(first).is_some() => (None, collection(first)?, rest),
        [stage, second, rest @ ..] if collection(second).is_some() => {
            (Some((*stage).to_owned()), collection(second)?, rest)
        }
        _ => return None,
    };
    let target = match (kind, rest) {
        (Collection::Connections, [] | [""]) => Target::Connections,
        (Collection::Connections, [id]) => Target::Connection(decode(id)?),
        (Collection::Connections, [id, "topics", topic]) => Target::Subscription {
            id: decode(id)?,
            topic: decode_topic(topic)?,
        },
        (Collection::Users, [principal]) => Target::User(decode(principal)?),
        (Collection::Topics, [topic]) => Target::Topic(decode_topic(topic)?),
        _ => return None,
    };
    Some(Path { stage, target })
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
