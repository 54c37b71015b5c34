//! Server-sent events as the gateway writes them (the `text/event-stream` format of the HTML
//! standard, §9.2): the events of a stream, their ids, and where a stream that resumes with a
//! `Last-Event-ID` starts. Every function appends to a byte buffer, so a burst of events
//! becomes one chunk.
//!
//! Event ids are opaque to clients. The gateway writes `{generation}-{seq}`: `generation` names
//! one replay log (eight hex digits, random per log, so ids of a log that no longer exists are
//! recognised as such), `seq` is the log's sequence number of an `@users` push. Events that are
//! not in the log (topic and `@connections` pushes, `connected`) carry the sequence number the
//! stream had reached followed by `.{n}`, a counter of the stream: a client that resumes after
//! one of those still resumes at the right place in its own sequence.
//!
//! A stream's events, in order: `connected` (data `{"connectionId": ...}`), `reset` (data `{}`)
//! when the client's last id cannot be resumed from, the replayed pushes, then live ones;
//! `: ping` comment lines in between; `close` (data `{"code", "reason"}`) when the gateway ends
//! the stream.

use std::fmt;
use std::io::Write as _;

use base64::Engine;

pub mod replay;

/// Longest `Last-Event-ID` read; a longer one cannot be an id the gateway wrote.
pub const MAX_EVENT_ID_BYTES: usize = 64;

/// An event id (see the module documentation for its form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    pub generation: u32,
    /// The log's sequence number of the push, or the one the stream had reached.
    pub seq: u64,
    /// For an event that is not in the log: the stream's counter of such events.
    pub live: Option<u64>,
}

impl EventId {
    /// The id of an `@users` push.
    pub fn logged(generation: u32, seq: u64) -> Self {
        EventId {
            generation,
            seq,
            live: None,
        }
    }

    /// The id of the `n`-th event of a stream that is not in the log, once the stream has
    /// reached `seq`.
    pub fn live(generation: u32, seq: u64, n: u64) -> Self {
        EventId {
            generation,
            seq,
            live: Some(n),
        }
    }

    /// Reads an id the gateway wrote; `None` for anything else.
    pub fn parse(text: &str) -> Option<EventId> {
        if text.len() > MAX_EVENT_ID_BYTES {
            return None;
        }
        let (generation, rest) = text.split_once('-')?;
        if generation.len() != 8 {
            return None;
        }
        let generation = u32::from_str_radix(generation, 16).ok()?;
        let (seq, live) = match rest.split_once('.') {
            Some((seq, n)) => (seq, Some(decimal(n)?)),
            None => (rest, None),
        };
        Some(EventId {
            generation,
            seq: decimal(seq)?,
            live,
        })
    }
}

/// A decimal number of digits only (no sign, no spaces), as the gateway writes them.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}-{}", self.generation, self.seq)?;
        if let Some(n) = self.live {
            write!(f, ".{n}")?;
        }
        Ok(())
    }
}

/// Where a stream starts, given the client's `Last-Event-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The id cannot be resumed from: unknown, of another log, or older than what the log
    /// still holds for this principal. The stream says `reset` before replaying.
    pub reset: bool,
    /// Replay the logged pushes after this sequence number.
    pub after: u64,
}

/// Where a stream of a log with `generation` starts when the client sent `last` (the header
/// or query value, if any). `floor`: every push to the principal after it is still in the log;
/// `current`: the log's latest sequence number.
///
/// Without an id the stream starts live (nothing replayed, no reset).
pub fn resume(last: Option<&str>, generation: u32, floor: u64, current: u64) -> Resume {
    let Some(last) = last else {
        return Resume {
            reset: false,
            after: current,
        };
    };
    match EventId::parse(last.trim()) {
        Some(id) if id.generation == generation && id.seq >= floor && id.seq <= current => Resume {
            reset: false,
            after: id.seq,
        },
        _ => Resume {
            reset: true,
            after: floor,
        },
    }
}

/// Headers of a stream that only the gateway sets; a `$connect` result's are dropped.
const STREAM_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "x-accel-buffering",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "vary",
];

/// The headers of a stream's `200`, in order, names in lower case: `Content-Type:
/// text/event-stream`, `Cache-Control: no-cache`, `X-Accel-Buffering: no` (proxies such as
/// nginx pass each event on at once); for a cross-origin `EventSource` from an origin the API
/// lists (`cors_origin`), the CORS headers that let it read the stream with its cookies; then
/// the `$connect` result's headers, except the stream's own and invalid ones.
pub fn response_headers(
    cors_origin: Option<&str>,
    connect_headers: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [
        ("content-type", "text/event-stream"),
        ("cache-control", "no-cache"),
        ("x-accel-buffering", "no"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    if let Some(origin) = cors_origin.filter(|o| crate::handshake::is_header_value(o)) {
        out.push(("access-control-allow-origin".to_owned(), origin.to_owned()));
        out.push((
            "access-control-allow-credentials".to_owned(),
            "true".to_owned(),
        ));
        out.push(("vary".to_owned(), "origin".to_owned()));
    }
    for (name, value) in connect_headers {
        let lower = name.to_ascii_lowercase();
        if STREAM_HEADERS.contains(&lower.as_str())
            || !crate::handshake::is_header_name(&lower)
            || !crate::handshake::is_header_value(value)
        {
            continue;
        }
        out.push((lower, value.clone()));
    }
    out
}

/// `event: connected` with the connection's id, named `id` (the stream's starting point).
pub fn connected(out: &mut Vec<u8>, id: EventId, connection_id: &str) {
    let data = serde_json::json!({ "connectionId": connection_id }).to_string();
    event(out, Some(id), Some("connected"), &data);
}

/// `event: reset`: what follows does not continue where the client's last id left off.
pub fn reset(out: &mut Vec<u8>) {
    // Browsers drop an event without data.
    event(out, None, Some("reset"), "{}");
}

/// A text push: one `data:` line per line of `text`.
pub fn text(out: &mut Vec<u8>, id: EventId, text: &str) {
    event(out, Some(id), None, text);
}

/// A binary push: `event: binary`, the bytes in standard base64.
pub fn binary(out: &mut Vec<u8>, id: EventId, bytes: &[u8]) {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    event(out, Some(id), Some("binary"), &data);
}

/// `event: close`: the gateway ends the stream, with the code and reason a WebSocket of the
/// same API would have been closed with.
pub fn close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let data = serde_json::json!({ "code": code, "reason": reason }).to_string();
    event(out, None, Some("close"), &data);
}

/// A heartbeat: a comment line, which clients ignore and proxies see as traffic.
pub fn heartbeat(out: &mut Vec<u8>) {
    out.extend_from_slice(b": ping\n\n");
}

/// One event. `data` is split at every line break (`\r\n`, `\r` or `\n`) into `data:` lines,
/// which a client joins back with `\n`.
fn event(out: &mut Vec<u8>, id: Option<EventId>, name: Option<&str>, data: &str) {
    if let Some(id) = id {
        // Writing to a Vec cannot fail.
        let _ = writeln!(out, "id: {id}");
    }
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in lines(data) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// The lines of `text`, split at `\r\n`, `\r` and `\n` (a trailing break ends in an empty
/// line, so the client gets the break back).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(at) => {
                let skip = if current[at..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[at + skip..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
