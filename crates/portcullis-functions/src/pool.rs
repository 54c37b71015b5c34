//! The execution environments of one function: at most `concurrency` of them, started on
//! demand and kept warm between calls. A call finding them all busy waits for one, in a queue
//! of at most [`QUEUE_PER_ENVIRONMENT`] × `concurrency` calls; beyond that it is refused.
//!
//! Why a semaphore and an idle list rather than a channel of environments: an environment is
//! created lazily by whoever gets a permit and finds none idle, and one that died (timeout,
//! crash) is simply not put back, so the count never exceeds the permits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::FunctionError;
use crate::environment::{Done, Environment};
use crate::host::Host;

/// Calls that may wait per environment before new ones are refused as `Overloaded`.
pub const QUEUE_PER_ENVIRONMENT: usize = 8;

pub(crate) struct Pool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    idle: Mutex<Vec<Environment>>,
}

/// Decrements the waiting count when the wait ends, however it ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pool {
    pub(crate) fn new(concurrency: usize) -> Pool {
        Pool {
            permits: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting: concurrency.saturating_mul(QUEUE_PER_ENVIRONMENT),
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(crate) async fn invoke(
        &self,
        host: &Host,
        name: &str,
        event: Bytes,
    ) -> Result<Done, FunctionError> {
        let _permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(FunctionError::Overloaded(name.to_owned()));
                }
                let _waiting = Waiting(&self.waiting);
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| FunctionError::Gateway("pool closed".to_owned()))?
            }
        };
        let mut env = match self.take_idle() {
            Some(env) => env,
            None => Environment::start(host, name).await?,
        };
        let result = env.invoke(host, name, event).await;
        if matches!(result, Ok(_) | Err(FunctionError::Handled { .. })) && env.alive() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(env);
        }
        result
    }

    /// Calls waiting for an environment now.
    pub(crate) fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// A warm environment whose process is still running, dropping dead ones.
    fn take_idle(&self) -> Option<Environment> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(mut env) = idle.pop() {
            if env.alive() {
                return Some(env);
            }
        }
        None
    }
}
