//! One SSE stream, from the `200` to `$disconnect`.
//!
//! The stream is the response body itself: each time the listener is ready to send more, it
//! asks for the next chunk, and the stream waits for the first of: the shutdown signal, the
//! connection's outbound queue (pushes, and closes from `DELETE @connections` or a
//! revocation), and the one timer of [`Timers`] (idle timeout, maximum duration, heartbeat).
//! No task of its own: an idle stream costs its state and a timer entry.
//!
//! Invariants:
//! - Events leave in this order: `connected` (with `reset` after it when the client's last id
//!   could not be resumed from), the replayed pushes, then live ones, each burst as one chunk
//!   of at most [`CHUNK_BYTES`] (beyond, the rest follows in the next chunk).
//! - A logged push (`@users`) numbered up to the snapshot's `position` was replayed or predates
//!   the stream; arriving live as well, it is skipped, so nothing is written twice and nothing
//!   between the replay and the live pushes is lost.
//! - The idle timeout counts pushes written, not heartbeats: an SSE client never sends, so a
//!   stream with nothing pushed for `idle_timeout` is closed (its client reconnects with its
//!   last id and loses nothing logged).
//! - However the stream ends (the gateway ended it, or the client went away and the listener
//!   dropped the body), dropping it unregisters the connection and delivers `$disconnect`; an
//!   end the client did not see explained by a `close` event is reported as a client close
//!   without status (1005).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::body::Body;
use bytes::Bytes;
use portcullis_core::close::Close;
use portcullis_core::event;
use portcullis_core::sse::replay::Snapshot;
use portcullis_core::sse::{self as events, EventId};
use prometheus_client::metrics::counter::Counter;
use tokio::time::{Instant, sleep_until};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::info;

use crate::authorizers::Identity;
use crate::metrics::{ApiLabel, DisconnectLabels};
use crate::registry::{ConnectionHandle, Data, Outbound};
use crate::state::State;
use crate::websocket::timers::{Due, Timers};
use crate::websocket::{WsApi, deliver_disconnect};

/// Largest chunk assembled from replayed or queued pushes before it is handed to the listener.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// What a stream serves: the connection, registered already.
pub struct Stream {
    pub state: Arc<State>,
    pub api: Arc<WsApi>,
    pub handle: Arc<ConnectionHandle>,
    pub identity: Option<Arc<Identity>>,
}

/// The response body of a stream that starts where `snapshot` says.
pub fn open(stream: Stream, snapshot: Snapshot<Data>) -> Body {
    let session = Session::new(stream, snapshot);
    Body::from_stream(futures_util::stream::unfold(
        session,
        |mut session| async move {
            let chunk = session.next_chunk().await?;
            Some((Ok::<Bytes, Infallible>(chunk), session))
        },
    ))
}

struct Session {
    stream: Stream,
    generation: u32,
    /// The sequence number the stream has reached: the id of an event outside the log names
    /// it, so a client resuming after that event replays what came later.
    reached: u64,
    /// Logged pushes numbered up to this were in the snapshot (or predate the stream).
    position: u64,
    /// Events outside the log written so far (`connected` is the 0th).
    live: u64,
    /// `connected` (and `reset`), until the first chunk is asked for.
    opening: Vec<u8>,
    replay: VecDeque<(u64, Data)>,
    timers: Timers,
    events_out: Counter<u64, AtomicU64>,
    /// Why the gateway ended the stream, once it has.
    ending: Option<Close>,
    finished: bool,
    /// A graceful shutdown waits for the stream to end and its `$disconnect` to be delivered.
    _tracked: TaskTrackerToken,
}

impl Session {
    fn new(stream: Stream, snapshot: Snapshot<Data>) -> Self {
        let label = ApiLabel {
            api: stream.api.name.to_string(),
        };
        let metrics = &stream.state.metrics.sse;
        metrics.connections_open.get_or_create(&label).inc();
        metrics.connects.get_or_create(&label).inc();
        let mut opening = Vec::with_capacity(128);
        events::connected(
            &mut opening,
            EventId::live(snapshot.generation, snapshot.from, 0),
            stream.handle.id.as_str(),
        );
        if snapshot.reset {
            events::reset(&mut opening);
            metrics.resets.get_or_create(&label).inc();
        }
        if !snapshot.events.is_empty() {
            let replayed = snapshot.events.len() as u64;
            metrics.replayed.get_or_create(&label).inc_by(replayed);
        }
        let config = &stream.api.config;
        let heartbeat = config
            .sse
            .as_ref()
            .map_or(portcullis_config::Sse::DEFAULT_HEARTBEAT, |s| s.heartbeat);
        let timers = Timers::new(
            Instant::now(),
            config.idle_timeout,
            config.max_duration,
            heartbeat,
        );
        let events_out = metrics.events_out.get_or_create(&label).clone();
        Session {
            generation: snapshot.generation,
            reached: snapshot.from,
            position: snapshot.position,
            live: 0,
            opening,
            replay: snapshot.events.into(),
            timers,
            events_out,
            ending: None,
            finished: false,
            _tracked: stream.state.tasks.token(),
            stream,
        }
    }

    /// The next chunk of the body; `None` ends it.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        let mut out = std::mem::take(&mut self.opening);
        self.write_replay(&mut out);
        if !out.is_empty() {
            return Some(out.into());
        }
        let state = self.stream.state.clone();
        let handle = self.stream.handle.clone();
        loop {
            // What a previous chunk left queued is taken without waiting.
            if handle.queue.is_empty() && !handle.queue.is_killed() {
                tokio::select! {
                    biased;
                    _ = state.shutdown.cancelled() => self.end(&mut out, Close::GoingAway),
                    _ = handle.queue.ready() => {}
                    _ = sleep_until(self.timers.next()) => match self.timers.due(Instant::now()) {
                        Some(Due::MaxDuration) => self.end(&mut out, Close::MaxDuration),
                        Some(Due::Idle) => self.end(&mut out, Close::IdleTimeout),
                        Some(Due::Ping) => events::heartbeat(&mut out),
                        None => {}
                    },
                }
            }
            if !self.finished {
                if handle.queue.is_killed() {
                    // Dropped without a word, like a WebSocket whose queue was full.
                    self.ending = Some(Close::Killed);
                    self.finished = true;
                    return None;
                }
                self.drain(&mut out);
            }
            if !out.is_empty() {
                return Some(out.into());
            }
            if self.finished {
                return None;
            }
        }
    }

    /// Write the next replayed pushes (up to [`CHUNK_BYTES`]).
    fn write_replay(&mut self, out: &mut Vec<u8>) {
        if self.replay.is_empty() {
            return;
        }
        let mut written = 0;
        while out.len() < CHUNK_BYTES {
            let Some((seq, data)) = self.replay.pop_front() else {
                break;
            };
            self.write_logged(out, seq, &data);
            written += 1;
        }
        if self.replay.is_empty() {
            // Everything up to the snapshot is written: the stream has reached it.
            self.replay = VecDeque::new();
            self.reached = self.reached.max(self.position);
        }
        self.wrote(written);
    }

    /// Write what the queue holds (up to [`CHUNK_BYTES`]), ending the stream at a close.
    fn drain(&mut self, out: &mut Vec<u8>) {
        let mut written = 0;
        while out.len() < CHUNK_BYTES {
            let Some(item) = self.stream.handle.queue.pop() else {
                break;
            };
            match item {
                Outbound::Text(text) => self.write_live(out, &Data::Text(text)),
                Outbound::Binary(bytes) => self.write_live(out, &Data::Binary(bytes)),
                Outbound::Logged { seq, .. } if seq <= self.position => continue,
                Outbound::Logged { seq, data } => self.write_logged(out, seq, &data),
                Outbound::Close(close) => {
                    self.end(out, close);
                    break;
                }
            }
            written += 1;
        }
        self.wrote(written);
    }

    fn write_logged(&mut self, out: &mut Vec<u8>, seq: u64, data: &Data) {
        self.reached = self.reached.max(seq);
        write(out, EventId::logged(self.generation, seq), data);
    }

    fn write_live(&mut self, out: &mut Vec<u8>, data: &Data) {
        self.live += 1;
        write(
            out,
            EventId::live(self.generation, self.reached, self.live),
            data,
        );
    }

    /// `written` pushes went out: the connection is active.
    fn wrote(&mut self, written: u64) {
        if written > 0 {
            self.events_out.inc_by(written);
            self.stream.handle.touch(event::now_ms());
            self.timers.active(Instant::now());
        }
    }

    /// The gateway ends the stream, telling the client why when a WebSocket would be told.
    fn end(&mut self, out: &mut Vec<u8>, close: Close) {
        if close.sent_by_gateway() {
            events::close(out, close.code(), close.reason());
        }
        self.ending = Some(close);
        self.finished = true;
    }
}

fn write(out: &mut Vec<u8>, id: EventId, data: &Data) {
    match data {
        Data::Text(text) => events::text(out, id, text),
        Data::Binary(bytes) => events::binary(out, id, bytes),
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Stream {
            state,
            api,
            handle,
            identity,
        } = &self.stream;
        let ending = self.ending.take().unwrap_or(Close::ClientWithoutStatus);
        state.registry.unregister(&handle.id);
        handle.queue.close();
        let label = ApiLabel {
            api: api.name.to_string(),
        };
        state
            .metrics
            .sse
            .connections_open
            .get_or_create(&label)
            .dec();
        state
            .metrics
            .sse
            .disconnects
            .get_or_create(&DisconnectLabels {
                api: label.api,
                reason: ending.label().to_owned(),
            })
            .inc();
        info!(api = %api.name, connection_id = %handle.id, transport = "sse", code = ending.code(), reason = ending.label(), "disconnected");
        // The body is dropped by the listener's task; without a runtime (the process is
        // ending) there is nobody left to tell.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (state, api, handle, identity) =
                (state.clone(), api.clone(), handle.clone(), identity.clone());
            state.tasks.clone().spawn_on(
                async move {
                    let context = identity.as_ref().and_then(|i| i.event_authorizer());
                    deliver_disconnect(&state, &api, &handle, context, &ending).await;
                },
                &runtime,
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
