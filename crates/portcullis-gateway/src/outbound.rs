//! What a connection's session is given to write from outside its task, and the bounded
//! per-connection queue that holds it until the session does.
//!
//! The queue is allocation-free while empty. A tokio `mpsc` channel allocates its first block
//! of slots when it is created, which costs more than a kilobyte per idle connection. This
//! queue holds a `VecDeque` that allocates only when something is queued and gives the memory
//! back when it drains.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use portcullis_core::close::Close;
use portcullis_core::fault::{Fault, HasFault};
use tokio::sync::Notify;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Something to deliver to a client from outside its session task.
///
/// Payloads are reference-counted: a push to many connections serialises its data once and
/// every receiver's queue holds the same bytes (cloning an `Outbound` copies no payload).
#[derive(Debug, Clone)]
pub enum Outbound {
    Text(Utf8Bytes),
    Binary(Bytes),
    /// A push to a principal (`@users`) as its API's replay log numbered it: an SSE stream
    /// names the event after `seq` (and skips it when it replayed it already); a WebSocket
    /// sends `data` like any other push.
    Logged {
        seq: u64,
        data: Data,
    },
    /// Close the connection for this reason (e.g. `DELETE @connections`).
    Close(Close),
}

/// A push's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Text(Utf8Bytes),
    Binary(Bytes),
}

impl Data {
    /// Payload bytes.
    pub fn len(&self) -> usize {
        match self {
            Data::Text(text) => text.len(),
            Data::Binary(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Data> for Outbound {
    fn from(data: Data) -> Outbound {
        match data {
            Data::Text(text) => Outbound::Text(text),
            Data::Binary(bytes) => Outbound::Binary(bytes),
        }
    }
}

/// Why an [`Outbound`] was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("connection is gone")]
    Gone,
    #[error("connection send queue is full")]
    Full,
    /// The connection is on another node of the cluster, which could not be reached (Redis
    /// down, or the node did not answer in time). Never returned by a queue.
    #[error("the node holding the connection cannot be reached")]
    Unavailable,
}

impl HasFault for SendError {
    /// The caller asked for a connection that has ended, or pushes faster than the client
    /// reads: both are answered to the caller (410, 429), not logged as the gateway's fault.
    fn fault(&self) -> Fault {
        match self {
            SendError::Gone | SendError::Full => Fault::Client,
            SendError::Unavailable => Fault::Operator,
        }
    }
}

/// Capacity kept after draining; larger buffers are released.
const KEEP_CAPACITY: usize = 4;

/// A connection's outbound frames: at most `capacity` wait; the session pops them in order.
#[derive(Debug)]
pub struct OutboundQueue {
    items: Mutex<VecDeque<Outbound>>,
    capacity: usize,
    /// Woken when an item is queued or the queue is killed (the session waits on it).
    ready: Notify,
    /// Woken when room frees up (senders that wait for room wait on it).
    room: Notify,
    closed: AtomicBool,
    killed: AtomicBool,
}

impl OutboundQueue {
    pub fn new(capacity: usize) -> Self {
        OutboundQueue {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            ready: Notify::new(),
            room: Notify::new(),
            closed: AtomicBool::new(false),
            killed: AtomicBool::new(false),
        }
    }

    /// Queue without waiting: `Full` when `capacity` items wait already.
    pub fn try_push(&self, item: Outbound) -> Result<(), SendError> {
        self.offer(item).map_err(|(e, _)| e)
    }

    /// Queue, waiting for room.
    pub async fn push(&self, item: Outbound) -> Result<(), SendError> {
        let mut item = item;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.offer(item) {
                Ok(()) => return Ok(()),
                Err((SendError::Full, Some(back))) => item = back,
                Err((e, _)) => return Err(e),
            }
            room.await;
        }
    }

    /// Queue, or give the item back with the reason it was not queued.
    fn offer(&self, item: Outbound) -> Result<(), (SendError, Option<Outbound>)> {
        if self.closed.load(Ordering::Acquire) {
            return Err((SendError::Gone, None));
        }
        {
            let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
            if items.len() >= self.capacity {
                return Err((SendError::Full, Some(item)));
            }
            items.push_back(item);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The next item, if any (the session calls this after `ready()` fires).
    pub fn pop(&self) -> Option<Outbound> {
        let item = {
            let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
            let item = items.pop_front();
            if items.is_empty() && items.capacity() > KEEP_CAPACITY {
                items.shrink_to(KEEP_CAPACITY);
            }
            item
        };
        if item.is_some() {
            self.room.notify_one();
        }
        item
    }

    /// Resolves when something was queued or the queue was killed.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    pub fn is_empty(&self) -> bool {
        self.items.lock().map(|i| i.is_empty()).unwrap_or(true)
    }

    /// No more pushes are accepted (the session ended); senders waiting for room get `Gone`.
    /// Items queued before stay queued.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.room.notify_waiters();
    }

    /// Ask the session to drop the connection at once: wakes [`ready`](Self::ready). Pushes
    /// are still accepted until the session, seeing [`is_killed`](Self::is_killed), ends and
    /// calls [`close`](Self::close).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.ready.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
