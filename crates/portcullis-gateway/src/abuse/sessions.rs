//! `server.max_connections`: WebSocket connections and SSE streams open at once on this node.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Open sessions, at most `max`. An upgrade takes a [`SessionPermit`] before its authorizer and
/// `$connect` run (so upgrades in progress count too); the session holds it until it ends. The
/// count outlives a reload; a reload may change `max` (sessions already open stay).
pub struct Sessions {
    open: AtomicUsize,
    max: AtomicUsize,
}

impl Sessions {
    pub fn new(max: usize) -> Arc<Sessions> {
        Arc::new(Sessions {
            open: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
        })
    }

    /// A new limit for new sessions.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Release);
    }

    /// A place for one more session, or `None` when `max` are open.
    pub fn try_open(self: &Arc<Self>) -> Option<SessionPermit> {
        let max = self.max.load(Ordering::Acquire);
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(SessionPermit {
            sessions: self.clone(),
        })
    }

    /// Sessions open (and upgrades being admitted).
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One session's place; given back when dropped.
pub struct SessionPermit {
    sessions: Arc<Sessions>,
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        self.sessions.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_and_places_come_back() {
        let sessions = Sessions::new(2);
        let a = sessions.try_open();
        let b = sessions.try_open();
        assert!(a.is_some() && b.is_some());
        assert!(sessions.try_open().is_none());
        drop(a);
        assert_eq!(sessions.open(), 1);
        let c = sessions.try_open();
        assert!(c.is_some());
        drop((b, c));
        assert_eq!(sessions.open(), 0);
        // A lower limit applies to new sessions; those open stay.
        let held: Vec<_> = (0..2).filter_map(|_| sessions.try_open()).collect();
        sessions.set_max(1);
        assert!(sessions.try_open().is_none());
        drop(held);
        assert!(sessions.try_open().is_some());
    }

    #[test]
    fn parallel_openers_never_exceed_max() {
        let sessions = Sessions::new(10);
        let held = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        if let Some(permit) = sessions.try_open() {
                            held.lock().unwrap_or_else(|e| e.into_inner()).push(permit);
                        }
                    }
                });
            }
        });
        assert_eq!(held.lock().unwrap_or_else(|e| e.into_inner()).len(), 10);
        assert_eq!(sessions.open(), 10);
    }
}
