//! The replay log of one API: the latest `@users` pushes of each principal, numbered, so a
//! stream that reconnects with `Last-Event-ID` gets what it missed, including pushes made
//! while the principal had no connection at all.
//!
//! Bounded twice: at most `per_principal` pushes per principal (the oldest go first), and at
//! most `max_bytes` in all, counting payloads and the log's own bookkeeping (a fixed cost per
//! push and per principal, plus the principal's name). Over `max_bytes`, the whole log of the
//! principal pushed to least recently goes, so a flood of pushes to ever new principals
//! costs no more than `max_bytes` and forgets the quiet principals first.
//!
//! Sequence numbers are the log's, shared by all its principals and never reused. What was
//! dropped is remembered as a floor: each principal's log holds every push to it after its
//! `floor`; a principal without a log holds everything after the latest eviction
//! (`watermark`). A client whose last id is below the floor may have missed something and is
//! told so (`reset`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{Resume, resume};

pub mod shared;

/// Bookkeeping counted per logged push, on top of its payload.
pub const EVENT_OVERHEAD: usize = 64;
/// Bookkeeping counted per principal with a log, on top of twice its name (the name is kept in
/// the map and in the recency order).
pub const PRINCIPAL_OVERHEAD: usize = 160;

struct Logged<T> {
    seq: u64,
    item: T,
    weight: usize,
}

/// One principal's pushes, oldest first.
struct PrincipalLog<T> {
    /// Every push to the principal after this is in `events`.
    floor: u64,
    /// Sequence number of the latest push (the principal's place in the recency order).
    last: u64,
    events: VecDeque<Logged<T>>,
}

/// What a new stream of a principal starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<T> {
    pub generation: u32,
    /// The client's last id could not be resumed from: the stream says `reset` first.
    pub reset: bool,
    /// The sequence number the stream starts after (named by its `connected` event).
    pub from: u64,
    /// The pushes to replay, oldest first: every logged push to the principal after `from`.
    pub events: Vec<(u64, T)>,
    /// The log's latest sequence number when the snapshot was taken: a push numbered up to
    /// this that also arrives live was replayed (or predates the stream) and is skipped.
    pub position: u64,
}

/// The log (pure: the caller holds the lock and picks the generation).
pub struct ReplayLog<T> {
    generation: u32,
    per_principal: usize,
    max_bytes: usize,
    seq: u64,
    /// Sequence number of the latest eviction of a whole principal log.
    watermark: u64,
    bytes: usize,
    principals: HashMap<String, PrincipalLog<T>>,
    /// Principals by the sequence number of their latest push: the first is the one pushed to
    /// least recently.
    recency: BTreeMap<u64, String>,
}

fn principal_cost(name: &str) -> usize {
    PRINCIPAL_OVERHEAD + 2 * name.len()
}

impl<T: Clone> ReplayLog<T> {
    pub fn new(generation: u32, per_principal: usize, max_bytes: usize) -> Self {
        ReplayLog {
            generation,
            per_principal,
            max_bytes,
            seq: 0,
            watermark: 0,
            bytes: 0,
            principals: HashMap::new(),
            recency: BTreeMap::new(),
        }
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Bytes counted against `max_bytes`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Principals with a log.
    pub fn principals(&self) -> usize {
        self.principals.len()
    }

    /// Log a push of `weight` payload bytes to `principal`; returns its sequence number and
    /// how many principal logs were evicted to stay within `max_bytes`.
    pub fn record(&mut self, principal: &str, item: T, weight: usize) -> (u64, usize) {
        self.seq += 1;
        let seq = self.seq;
        let log = match self.principals.get_mut(principal) {
            Some(log) => {
                self.recency.remove(&log.last);
                log
            }
            None => {
                self.bytes += principal_cost(principal);
                self.principals
                    .entry(principal.to_owned())
                    .or_insert(PrincipalLog {
                        floor: self.watermark,
                        last: 0,
                        events: VecDeque::new(),
                    })
            }
        };
        log.last = seq;
        self.recency.insert(seq, principal.to_owned());
        if self.per_principal == 0 {
            log.floor = seq;
        } else {
            log.events.push_back(Logged { seq, item, weight });
            self.bytes += weight + EVENT_OVERHEAD;
            while log.events.len() > self.per_principal {
                if let Some(old) = log.events.pop_front() {
                    log.floor = old.seq;
                    self.bytes -= old.weight + EVENT_OVERHEAD;
                }
            }
        }
        let evicted = self.shrink(principal);
        (seq, evicted)
    }

    /// Back within `max_bytes`: whole logs of the principals pushed to least recently first,
    /// then the oldest pushes of `keep` (the principal just pushed to).
    fn shrink(&mut self, keep: &str) -> usize {
        let mut evicted = 0;
        while self.bytes > self.max_bytes {
            let oldest = self
                .recency
                .values()
                .find(|name| name.as_str() != keep)
                .cloned();
            match oldest {
                Some(name) => {
                    if let Some(log) = self.principals.remove(&name) {
                        self.recency.remove(&log.last);
                        self.bytes -= principal_cost(&name)
                            + log
                                .events
                                .iter()
                                .map(|e| e.weight + EVENT_OVERHEAD)
                                .sum::<usize>();
                    }
                    self.watermark = self.seq;
                    evicted += 1;
                }
                None => {
                    let Some(log) = self.principals.get_mut(keep) else {
                        break;
                    };
                    let Some(old) = log.events.pop_front() else {
                        break;
                    };
                    log.floor = old.seq;
                    self.bytes -= old.weight + EVENT_OVERHEAD;
                }
            }
        }
        evicted
    }

    /// Where a new stream of `principal` (none: an anonymous connection, which has nothing
    /// logged) starts when its client sent `last_event_id`.
    pub fn snapshot(&self, principal: Option<&str>, last_event_id: Option<&str>) -> Snapshot<T> {
        let log = principal.and_then(|p| self.principals.get(p));
        let floor = match (principal, log) {
            (_, Some(log)) => log.floor,
            (Some(_), None) => self.watermark,
            // Nothing is ever logged for an anonymous stream: nothing can have been missed.
            (None, None) => 0,
        };
        let Resume { reset, after } = resume(last_event_id, self.generation, floor, self.seq);
        let events = log
            .map(|log| {
                log.events
                    .iter()
                    .filter(|e| e.seq > after)
                    .map(|e| (e.seq, e.item.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Snapshot {
            generation: self.generation,
            reset,
            from: after,
            events,
            position: self.seq,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
