//! The execution environments of one function: at most `concurrency` of them, started on
//! demand and kept warm between calls. A call finding them all busy waits for one, in a queue
//! of at most [`QUEUE_PER_ENVIRONMENT`] × `concurrency` calls; beyond that it is refused.
//!
//! Why a semaphore and an idle list rather than a channel of environments: an environment is
//! created lazily by whoever gets a permit and finds none idle, and one that died (timeout,
//! crash) is simply not put back, so the count never exceeds the permits.
//!
//! Code changes: the pool has a generation, bumped by [`Pool::recycle`] when the function's
//! code changes; each environment remembers the generation it started in. A recycle stops the
//! idle environments; one busy at the time finishes its call on the old code and is then
//! stopped instead of being put back. The generation is read and compared under the idle
//! list's lock, so no old environment slips back after a recycle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::FunctionError;
use crate::environment::{Done, Environment};
use crate::host::Host;
use crate::metrics::{Busy, FunctionMetrics, Meters};
use crate::runtime_api::MAX_PAYLOAD;

/// Calls that may wait per environment before new ones are refused as `Overloaded`.
pub const QUEUE_PER_ENVIRONMENT: usize = 8;

pub(crate) struct Pool {
    name: String,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    idle: Mutex<Idle>,
    meters: Meters,
}

/// The warm environments and the generation of the code they must have been started on.
struct Idle {
    generation: u64,
    warm: Vec<Warm>,
}

struct Warm {
    env: Environment,
    generation: u64,
}

/// Decrements the waiting count when the wait ends, however it ends.
struct Waiting<'a>(&'a Pool);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        self.0.meters.queued.dec();
    }
}

impl Pool {
    pub(crate) fn new(name: &str, concurrency: usize, metrics: &Arc<FunctionMetrics>) -> Pool {
        Pool {
            name: name.to_owned(),
            permits: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting: concurrency.saturating_mul(QUEUE_PER_ENVIRONMENT),
            idle: Mutex::new(Idle {
                generation: 0,
                warm: Vec::new(),
            }),
            meters: metrics.meters(name),
        }
    }

    /// Runs one call, counting it in the function's metrics.
    pub(crate) async fn invoke(&self, host: &Host, event: Bytes) -> Result<Done, FunctionError> {
        self.meters.invocations.inc();
        let result = self.run(host, event).await;
        if let Err(e) = &result {
            self.meters.failed(e);
        }
        result
    }

    async fn run(&self, host: &Host, event: Bytes) -> Result<Done, FunctionError> {
        if event.len() > MAX_PAYLOAD {
            return Err(FunctionError::EventTooLarge {
                size: event.len(),
                limit: MAX_PAYLOAD,
            });
        }
        let _permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(FunctionError::Overloaded(self.name.clone()));
                }
                self.meters.queued.inc();
                let _waiting = Waiting(self);
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| FunctionError::Gateway("pool closed".to_owned()))?
            }
        };
        let mut warm = match self.take_idle() {
            Some(warm) => warm,
            None => {
                let generation = self.lock().generation;
                let env = Environment::start(host, &self.name).await?;
                self.meters.started(env.init_time());
                Warm { env, generation }
            }
        };
        let busy = Busy::new(&self.meters.busy);
        let started = Instant::now();
        let result = warm.env.invoke(host, &self.name, event).await;
        self.meters.ran(started.elapsed());
        if matches!(result, Ok(_) | Err(FunctionError::Handled { .. })) && warm.env.alive() {
            let mut idle = self.lock();
            if warm.generation == idle.generation {
                idle.warm.push(warm);
                self.meters.idle.set(gauge(idle.warm.len()));
            } else {
                // The code changed during the call: this environment ran the old code.
                drop(idle);
                drop(warm);
            }
        }
        drop(busy);
        result
    }

    /// Calls waiting for an environment now.
    pub(crate) fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// The function's code changed: new calls get environments started from now on, the idle
    /// ones are stopped, the busy ones are stopped after their call. Returns how many idle
    /// environments were stopped.
    pub(crate) fn recycle(&self) -> usize {
        let (generation, stopped) = {
            let mut idle = self.lock();
            idle.generation += 1;
            self.meters.idle.set(0);
            (idle.generation, std::mem::take(&mut idle.warm))
        };
        let count = stopped.len();
        drop(stopped);
        self.meters.recycles.inc();
        tracing::info!(
            function = %self.name,
            generation,
            stopped = count,
            "code changed: idle environments stopped, new calls start on the new code"
        );
        count
    }

    /// A warm environment whose process is still running, dropping dead ones.
    fn take_idle(&self) -> Option<Warm> {
        let mut idle = self.lock();
        let generation = idle.generation;
        let mut found = None;
        while let Some(mut warm) = idle.warm.pop() {
            if warm.generation == generation && warm.env.alive() {
                found = Some(warm);
                break;
            }
        }
        self.meters.idle.set(gauge(idle.warm.len()));
        found
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
