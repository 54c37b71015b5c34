//! Which principal and topic channels this node listens on: those of the principals and topics
//! it holds a connection of, and its own node channel, nothing else (a push reaches only the
//! nodes that have a receiver for it).
//!
//! The registry tells [`Interests`] which keys changed (under its locks, so this only marks
//! them); the subscriber task asks the registry whether each is still held and subscribes or
//! unsubscribes. After Redis comes back, every held key is marked again and resubscribed.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::keys;
use crate::registry::{Interest, Scope};

/// A principal or a topic of one API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub scope: Scope,
    pub api: String,
    pub key: String,
}

impl Key {
    pub fn channel(&self) -> Vec<u8> {
        let kind = match self.scope {
            Scope::User => keys::Kind::User,
            Scope::Topic => keys::Kind::Topic,
        };
        keys::interest(kind, &self.api, &self.key)
    }
}

/// Longest a new connection waits for its channels to be subscribed.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Interests {
    /// Keys whose holding may have changed since the subscriber task last looked.
    dirty: Mutex<HashSet<Key>>,
    pub wake: Notify,
    /// Number of marks so far, and the number the subscriber has acted on.
    marked: AtomicU64,
    done: watch::Sender<u64>,
}

impl Default for Interests {
    fn default() -> Self {
        Interests {
            dirty: Mutex::default(),
            wake: Notify::new(),
            marked: AtomicU64::new(0),
            done: watch::Sender::new(0),
        }
    }
}

impl Interests {
    /// The keys to look at now (and forget), and the mark count they cover.
    pub fn take_dirty(&self) -> (HashSet<Key>, u64) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        let marked = self.marked.load(Ordering::SeqCst);
        (std::mem::take(&mut *dirty), marked)
    }

    /// Look at `keys` again on the next round.
    pub fn mark(&self, keys: impl IntoIterator<Item = Key>) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        dirty.extend(keys);
        self.marked.fetch_add(1, Ordering::SeqCst);
        drop(dirty);
        self.wake.notify_one();
    }

    /// The subscriber acted on every mark up to `marked`.
    pub fn acted(&self, marked: u64) {
        self.done.send_if_modified(|done| {
            let newer = marked > *done;
            if newer {
                *done = marked;
            }
            newer
        });
    }

    /// Wait until the subscriber has acted on every mark made so far (at most
    /// [`SETTLE_TIMEOUT`]: Redis may be down).
    pub async fn settled(&self) {
        let target = self.marked.load(Ordering::SeqCst);
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout(SETTLE_TIMEOUT, done.wait_for(|d| *d >= target)).await;
    }
}

impl Interest for Interests {
    fn changed(&self, scope: Scope, api: &str, key: &str, _held: bool) {
        self.mark([Key {
            scope,
            api: api.to_owned(),
            key: key.to_owned(),
        }]);
    }
}
