//! Reading the store's revocation log: which events a reader has applied.
//!
//! Every revocation appends a [`RevocationEventRecord`](crate::store::RevocationEventRecord)
//! with an increasing id. A gateway polls `id > cursor` and turns the events other processes
//! wrote into [`Revocation`](crate::Revocation)s for its live connections. On PostgreSQL ids are
//! handed out when an insert starts but become visible when it commits, so two writers can make
//! id 8 visible before id 7: the cursor therefore only advances over contiguous ids, remembers
//! the ids it already applied above a gap, and gives a gap up after [`GAP_WAIT`] (an id can also
//! be lost for good: a rolled-back insert burns it). This module does no I/O.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long a hole in the ids is waited for before it counts as an id that will never appear.
pub const GAP_WAIT: Duration = Duration::from_secs(5);

/// The applied prefix of the log plus the ids applied beyond it.
#[derive(Debug, Clone)]
pub struct EventCursor {
    /// Every id up to this one is applied or given up.
    applied: i64,
    /// Ids above `applied` already applied (there is a gap below them).
    seen: BTreeSet<i64>,
    /// When the current gap was first noticed.
    gap_since: Option<Instant>,
}

impl EventCursor {
    /// A cursor that starts after `last` (events up to it are history, not news).
    pub fn new(last: i64) -> Self {
        EventCursor {
            applied: last,
            seen: BTreeSet::new(),
            gap_since: None,
        }
    }

    /// Read the events with ids above this one.
    pub fn after(&self) -> i64 {
        self.applied
    }

    /// Notes that event `id` was read; true when it is new (apply it), false for a repeat.
    pub fn accept(&mut self, id: i64) -> bool {
        id > self.applied && self.seen.insert(id)
    }

    /// After a batch: advances over contiguous ids and decides about a gap. `limit` is the batch
    /// size: when the ids held above a gap fill a batch, waiting would stall the reader, so the
    /// gap is given up at once.
    pub fn settle(&mut self, now: Instant, limit: usize) {
        loop {
            while self.seen.remove(&(self.applied + 1)) {
                self.applied += 1;
            }
            let Some(&first) = self.seen.first() else {
                self.gap_since = None;
                return;
            };
            let since = *self.gap_since.get_or_insert(now);
            if now.duration_since(since) < GAP_WAIT && self.seen.len() < limit {
                return;
            }
            // Give the hole up: continue from the first id seen above it.
            self.applied = first - 1;
            self.gap_since = None;
        }
    }

    /// Ids held above a gap (for tests and logs).
    pub fn pending(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_ids_advance() {
        let mut c = EventCursor::new(10);
        let now = Instant::now();
        assert!(!c.accept(9), "history is not news");
        assert!(!c.accept(10));
        assert!(c.accept(11));
        assert!(c.accept(12));
        assert!(!c.accept(12), "a repeat in the same batch");
        c.settle(now, 100);
        assert_eq!((c.after(), c.pending()), (12, 0));
    }

    #[test]
    fn a_gap_is_held_then_filled() {
        let mut c = EventCursor::new(0);
        let t0 = Instant::now();
        assert!(c.accept(1));
        assert!(c.accept(3));
        c.settle(t0, 100);
        assert_eq!((c.after(), c.pending()), (1, 1));
        // next poll reads 2 (committed late) and 3 again: 3 is not applied twice
        assert!(c.accept(2));
        assert!(!c.accept(3));
        c.settle(t0 + Duration::from_millis(100), 100);
        assert_eq!((c.after(), c.pending()), (3, 0));
    }

    #[test]
    fn a_gap_is_given_up_after_the_wait() {
        let mut c = EventCursor::new(0);
        let t0 = Instant::now();
        assert!(c.accept(2));
        assert!(c.accept(3));
        assert!(c.accept(6));
        c.settle(t0, 100);
        assert_eq!(c.after(), 0);
        c.settle(t0 + GAP_WAIT / 2, 100);
        assert_eq!(c.after(), 0);
        // 1 never comes: skipped, then 4-5 are waited for afresh
        c.settle(t0 + GAP_WAIT, 100);
        assert_eq!((c.after(), c.pending()), (3, 1));
        c.settle(t0 + GAP_WAIT + Duration::from_secs(1), 100);
        assert_eq!(c.after(), 3);
        assert!(c.accept(4));
        assert!(c.accept(5));
        c.settle(t0 + GAP_WAIT + Duration::from_secs(2), 100);
        assert_eq!((c.after(), c.pending()), (6, 0));
    }

    #[test]
    fn a_full_batch_above_a_gap_gives_it_up_at_once() {
        let mut c = EventCursor::new(0);
        for id in 2..=5 {
            assert!(c.accept(id));
        }
        c.settle(Instant::now(), 4);
        assert_eq!((c.after(), c.pending()), (5, 0));
    }
}
