//! This node's connection records in Redis (`portcullis:node:{tag}:conns`), kept in step with
//! the registry by one writer task: registrations and removals are marked here (never
//! blocking the connection) and written in pipelined batches; a full re-announce replaces the
//! lot after Redis comes back (it may have come back empty).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use portcullis_core::id::ConnectionId;
use tokio::sync::Notify;

use crate::registry::ConnectionHandle;

/// What to write for one connection: its record, or its removal.
pub enum Change {
    Add(Arc<ConnectionHandle>),
    Remove,
}

#[derive(Default)]
pub struct Announcer {
    /// Latest change per connection since the last write (bounded by the connections).
    pending: Mutex<HashMap<ConnectionId, Change>>,
    /// Set when Redis's copy cannot be trusted: the writer replaces it whole.
    full: AtomicBool,
    pub wake: Notify,
}

impl Announcer {
    pub fn mark(&self, id: ConnectionId, change: Change) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, change);
        self.wake.notify_one();
    }

    pub fn take(&self) -> HashMap<ConnectionId, Change> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Put back changes that could not be written, unless newer ones came meanwhile.
    pub fn put_back(&self, changes: HashMap<ConnectionId, Change>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (id, change) in changes {
            pending.entry(id).or_insert(change);
        }
    }

    /// Ask for a full re-announce.
    pub fn reannounce(&self) {
        self.full.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Whether a full re-announce is due (and clear the request).
    pub fn take_full(&self) -> bool {
        self.full.swap(false, Ordering::SeqCst)
    }
}
