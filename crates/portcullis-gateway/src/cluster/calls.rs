//! Requests waiting for other nodes' replies: a bounded table of waiters by request id.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::wire::Outcome;

/// Most requests this node waits on at once; more answer 503 at once.
pub const MAX_IN_FLIGHT: usize = 10_000;
/// Most replies one request takes (one per node).
pub const MAX_REPLIES: usize = 1024;

#[derive(Default)]
pub struct Calls {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, mpsc::Sender<Outcome>>>,
}

/// A request's place in the table; dropping it forgets the request (late replies are
/// ignored).
pub struct Waiter<'a> {
    calls: &'a Calls,
    pub rid: u64,
    pub replies: mpsc::Receiver<Outcome>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.calls.lock().remove(&self.rid);
    }
}

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::Sender<Outcome>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new request id and where its replies arrive; `None` when too many are in flight.
    pub fn wait(&self, replies: usize) -> Option<Waiter<'_>> {
        let (tx, rx) = mpsc::channel(replies.clamp(1, MAX_REPLIES));
        let rid = self.next.fetch_add(1, Ordering::Relaxed);
        let mut waiting = self.lock();
        if waiting.len() >= MAX_IN_FLIGHT {
            return None;
        }
        waiting.insert(rid, tx);
        Some(Waiter {
            calls: self,
            rid,
            replies: rx,
        })
    }

    /// Hand a reply to its request; `false` when nobody waits for it any more (or it sent
    /// more replies than expected).
    pub fn complete(&self, rid: u64, outcome: Outcome) -> bool {
        let waiting = self.lock();
        match waiting.get(&rid) {
            Some(tx) => tx.try_send(outcome).is_ok(),
            None => false,
        }
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_reaches_its_request_and_a_dropped_request_is_forgotten() {
        let calls = Calls::default();
        let mut a = calls.wait(1).unwrap();
        let b = calls.wait(1).unwrap();
        assert_ne!(a.rid, b.rid);
        assert!(calls.complete(a.rid, Outcome::Ok));
        assert_eq!(a.replies.recv().await, Some(Outcome::Ok));
        let rid = b.rid;
        drop(b);
        assert!(!calls.complete(rid, Outcome::Gone));
        drop(a);
        assert_eq!(calls.in_flight(), 0);
    }

    #[test]
    fn more_replies_than_asked_for_are_refused() {
        let calls = Calls::default();
        let w = calls.wait(2).unwrap();
        assert!(calls.complete(w.rid, Outcome::Ok));
        assert!(calls.complete(w.rid, Outcome::Ok));
        assert!(!calls.complete(w.rid, Outcome::Ok));
    }
}
