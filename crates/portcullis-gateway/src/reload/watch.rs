//! Reloading when the configuration file changes. The file's directory is watched, not the
//! file: editors save by writing a new file and renaming it over the old one, and a Kubernetes
//! ConfigMap swaps a symlink beside it, so a watch on the file itself would stay on the
//! replaced inode. Any event in the directory starts a quiet period ([`DEBOUNCE`]); after it
//! the file is read, and only a content different from the last one read is reloaded (other
//! files of the directory, or a save without a change, do nothing).

use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Reloader;
use crate::error::GatewayError;

/// Quiet time after the last event in the directory before the file is read.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watch `path`'s directory until `stop` is cancelled or the gateway is gone.
pub fn spawn(
    reloader: Weak<Reloader>,
    path: &Path,
    stop: CancellationToken,
) -> Result<(), GatewayError> {
    let path = std::path::absolute(path)
        .map_err(|e| GatewayError::Internal(format!("{}: {e}", path.display())))?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    // One pending wake-up is enough: the task reads the file after the burst anyway.
    let (wake, woken) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = wake.try_send(());
        }
    })
    .map_err(|e| GatewayError::Internal(format!("cannot watch {}: {e}", dir.display())))?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| GatewayError::Internal(format!("cannot watch {}: {e}", dir.display())))?;
    info!(file = %path.display(), "watching the configuration file; a change reloads it");
    let last = std::fs::read(&path).ok();
    tokio::spawn(run(watcher, woken, reloader, path, last, stop));
    Ok(())
}

async fn run(
    _watcher: RecommendedWatcher,
    mut woken: mpsc::Receiver<()>,
    reloader: Weak<Reloader>,
    path: PathBuf,
    mut last: Option<Vec<u8>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            w = woken.recv() => if w.is_none() { return },
        }
        // Debounce: wait until the directory has been quiet for a while.
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                w = woken.recv() => if w.is_none() { return },
                _ = tokio::time::sleep(DEBOUNCE) => break,
            }
        }
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || std::fs::read(path)).await
        };
        let content = match read {
            Ok(Ok(content)) => content,
            // Between a delete and a rename, or removed for good: wait for the next event.
            Ok(Err(e)) => {
                if last.is_some() {
                    warn!(file = %path.display(), error = %e, "cannot read the configuration file; the running configuration stays");
                }
                last = None;
                continue;
            }
            Err(_) => continue,
        };
        if last.as_deref() == Some(content.as_slice()) {
            continue;
        }
        last = Some(content);
        let Some(reloader) = reloader.upgrade() else {
            return;
        };
        info!(file = %path.display(), "configuration file changed; reloading");
        // The outcome is logged and counted by the reload itself.
        let _ = reloader.reload_file(&path).await;
    }
}
