//! The public listener's workers: one thread per core, each with a single-threaded runtime
//! and a listening socket of its own on the same address (`SO_REUSEPORT`: the kernel spreads
//! new connections over them). A connection is accepted, served, and its backend calls made
//! on one thread: no hand-over between threads, no wake-up of another core per request.
//! Everything else (the admin listener, timers of the node, the cluster) runs on the main
//! runtime.
//!
//! A worker's runtime lives until the gateway is dropped: tasks a request started (WebSocket
//! sessions, `$disconnect` deliveries) keep running on it while the node drains.

use std::cell::Cell;
use std::future::Future;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::error::GatewayError;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The worker this thread is (1, 2, …), or 0 for any other thread.
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// Make this thread count as worker `index` (tests of what is kept per worker).
#[cfg(test)]
pub fn pretend(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// How many workers `server.workers` asks for: `0` means one per core.
pub fn count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The running worker threads; dropping this stops them (and every task left on them).
pub struct Workers {
    handles: Vec<Handle>,
    stop: CancellationToken,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn start(count: usize) -> Result<Workers, GatewayError> {
        let stop = CancellationToken::new();
        let mut workers = Workers {
            handles: Vec::with_capacity(count),
            stop: stop.clone(),
            threads: Vec::with_capacity(count),
        };
        for index in 1..=count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| GatewayError::Internal(format!("cannot start worker {index}: {e}")))?;
            workers.handles.push(runtime.handle().clone());
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("portcullis-worker-{index}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(index));
                    runtime.block_on(stop.cancelled());
                })
                .map_err(|e| GatewayError::Internal(format!("cannot start worker {index}: {e}")))?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Run `task(index)` on every worker (index 0, 1, …).
    pub fn spawn_each<F, Fut>(&self, mut task: F)
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        for (index, handle) in self.handles.iter().enumerate() {
            handle.spawn(task(index));
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
        // Not joined: a worker finishes its current poll and drops its runtime on its own
        // thread; waiting here could block the runtime this is dropped on.
        self.threads.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::listener::bind_many;

    /// Every worker accepts on its own socket of one address, and what it accepts is served
    /// on its own thread: 40 connections (the kernel spreads them by address and port) reach
    /// both workers, and each is answered with the index of the worker that served it.
    #[tokio::test]
    async fn the_kernel_spreads_connections_over_the_workers() {
        let workers = Workers::start(2).expect("workers");
        let listeners =
            bind_many("127.0.0.1:0".parse().expect("addr"), workers.len()).expect("bind");
        let addr = listeners[0].local_addr().expect("addr");
        assert!(listeners.iter().all(|l| l.local_addr().ok() == Some(addr)));
        let mut listeners = listeners.into_iter().map(Some).collect::<Vec<_>>();
        let accepted_on = Arc::new(Mutex::new(BTreeMap::<usize, usize>::new()));
        workers.spawn_each(|index| {
            let listener = listeners[index].take().expect("one listener per worker");
            let accepted_on = accepted_on.clone();
            async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("register");
                while let Ok((mut socket, _)) = listener.accept().await {
                    *accepted_on
                        .lock()
                        .expect("lock")
                        .entry(current())
                        .or_default() += 1;
                    tokio::spawn(async move {
                        let _ = socket.write_all(&[current() as u8]).await;
                    });
                }
            }
        });
        let mut served_by = BTreeMap::<u8, usize>::new();
        for _ in 0..40 {
            let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let mut index = [0u8];
            socket
                .read_exact(&mut index)
                .await
                .expect("the worker's index");
            *served_by.entry(index[0]).or_default() += 1;
        }
        assert_eq!(served_by.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        let accepted = accepted_on.lock().expect("lock").clone();
        assert_eq!(
            accepted.into_iter().collect::<Vec<_>>(),
            served_by
                .into_iter()
                .map(|(k, v)| (usize::from(k), v))
                .collect::<Vec<_>>()
        );
    }
}
