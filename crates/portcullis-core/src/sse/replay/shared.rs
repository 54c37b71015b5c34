//! The rules of a replay log that several nodes share in Redis (`[cluster]`), apart from the
//! Redis commands that keep it (the gateway's `replay::shared`).
//!
//! Redis keeps, per API, a generation and a sequence shared by every node, and per principal
//! its latest pushes (a stream trimmed to `replay` entries, with the sequence number of the
//! latest push trimmed away: its `trimmed` floor). A principal's log expires [`RETENTION_MS`]
//! after its latest push; that is what bounds the memory of principals nobody pushes to any
//! more (Redis cannot count bytes per API the way the in-process log does).
//!
//! A log that expired leaves nothing behind, so the floor of a principal also has to cover
//! logs that are gone: every push made before `now - RETENTION_MS` may have been in one. The
//! API keeps marks of its sequence over time (per [`SLICE_MS`] slice of the clock, the
//! sequence number before the slice's first push); the [`horizon`] is the first mark at or
//! after `now - RETENTION_MS`, a sequence number no smaller than any push of an expired log.
//! A client whose last id is older than that gets `reset`, even when it missed nothing: ids
//! younger than `RETENTION_MS - SLICE_MS` always resume.

use super::Snapshot;
use crate::sse::{Resume, resume};

/// How long a principal's log is kept after its latest push.
pub const RETENTION_MS: u64 = 60 * 60 * 1000;
/// The clock slices of the sequence marks: an id younger than `RETENTION_MS - SLICE_MS`
/// is never reset for its age.
pub const SLICE_MS: u64 = 5 * 60 * 1000;

/// What Redis holds for a new stream, read at once (one script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    pub generation: u32,
    /// The API's latest sequence number.
    pub current: u64,
    /// The latest push to the principal trimmed from its log (`replay` reached), if any.
    pub trimmed: Option<u64>,
    /// Redis's clock, ms.
    pub now_ms: u64,
    /// `(slice, sequence number before the slice's first push)`, in any order.
    pub marks: Vec<(u64, u64)>,
    /// The principal's pushes read for this stream, oldest first (after the client's id when
    /// it names this generation, else all of them).
    pub events: Vec<(u64, T)>,
}

/// A sequence number no smaller than any push of a log that expired by `now_ms`: the mark of
/// the first slice that starts at or after `now_ms - RETENTION_MS`; `current` when there is
/// none (nothing was pushed since, so every log is gone or about to be).
pub fn horizon(marks: &[(u64, u64)], now_ms: u64, current: u64) -> u64 {
    let oldest = now_ms.saturating_sub(RETENTION_MS);
    marks
        .iter()
        .filter(|(slice, _)| slice.saturating_mul(SLICE_MS) >= oldest)
        .min_by_key(|(slice, _)| *slice)
        .map_or(current, |(_, seq)| (*seq).min(current))
}

/// Where a new stream starts, given what Redis holds (`principal`: whether the stream has
/// one; an anonymous stream has nothing logged) and its client's `last_event_id`: the rule
/// of the in-process log, with a floor that also covers expired logs.
pub fn snapshot<T>(stored: Stored<T>, principal: bool, last_event_id: Option<&str>) -> Snapshot<T> {
    let floor = if principal {
        stored
            .trimmed
            .unwrap_or(0)
            .max(horizon(&stored.marks, stored.now_ms, stored.current))
    } else {
        0
    };
    let Resume { reset, after } = resume(last_event_id, stored.generation, floor, stored.current);
    let events = if principal {
        stored
            .events
            .into_iter()
            .filter(|(seq, _)| *seq > after && *seq <= stored.current)
            .collect()
    } else {
        Vec::new()
    };
    Snapshot {
        generation: stored.generation,
        reset,
        from: after,
        events,
        position: stored.current,
    }
}

/// What a stream asks Redis for, given its client's `last_event_id`: nothing (no id: it
/// starts live), the pushes after `(generation, seq)` if that generation is still the log's,
/// or every push kept (an id that is not the gateway's, which is reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Nothing,
    After { generation: u32, seq: u64 },
    All,
}

pub fn wanted(last_event_id: Option<&str>) -> Wanted {
    match last_event_id.map(|id| crate::sse::EventId::parse(id.trim())) {
        None => Wanted::Nothing,
        Some(Some(id)) => Wanted::After {
            generation: id.generation,
            seq: id.seq,
        },
        Some(None) => Wanted::All,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
