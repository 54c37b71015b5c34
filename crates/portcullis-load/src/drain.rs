//! Receiving connections that read and count every frame pushed to them, so the gateway's send
//! queues never fill while a push benchmark runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// How long a receiver may take to close once told to stop.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections being drained; every text or binary frame they receive is counted.
pub struct Drain {
    received: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Drain {
    pub fn start(sockets: Vec<WebSocketStream<TcpStream>>) -> Self {
        let received = Arc::new(AtomicU64::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for mut ws in sockets {
            let received = received.clone();
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        frame = ws.next() => match frame {
                            Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => return,
                        },
                        _ = stop.changed() => break,
                    }
                }
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
            });
        }
        Drain {
            received,
            stop,
            tasks,
        }
    }

    /// Frames received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Waits up to `limit` until `expected` frames have arrived (pushes still in flight when
    /// the load stopped); the count reached.
    pub async fn settle(&self, expected: u64, limit: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + limit;
        while self.received() < expected && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.received()
    }

    /// Closes every connection; the final count.
    pub async fn stop(mut self) -> u64 {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT * 2, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        self.received()
    }
}
