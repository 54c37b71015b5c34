//! Watches each function's `code` directory and recycles the function's environments when
//! something in it changes (`changes::is_noise` says what does not count). The watch is
//! recursive inotify through `notify`; changes are debounced (an editor's save or a `git
//! checkout` is many events) and then each function touched is recycled once. A directory
//! that cannot be watched (no inotify instance left, too many watches) is polled every second
//! by its fingerprint instead, with a warning.
//!
//! Threads rather than tasks: `Functions::start` need not run inside a runtime, and the work
//! is a blocking wait. The threads hold the pools weakly; they end when `Functions` is
//! dropped (the watcher with it, which closes the wake-up channel; the poller sees no pool).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::changes::{self, Entry, is_noise};
use crate::pool::Pool;

/// Quiet time after the last change before recycling.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Longest delay of a recycle under a stream of changes.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Period of the fingerprint poll for directories that cannot be watched.
const POLL: Duration = Duration::from_secs(1);
/// Entries of a tree a poll looks at; beyond them changes go unnoticed (with a warning).
const MAX_ENTRIES: usize = 10_000;
/// Directory depth a poll descends to.
const MAX_DEPTH: usize = 32;

/// A function whose code is watched.
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) code: PathBuf,
    pub(crate) pool: Weak<Pool>,
}

struct Watched {
    name: String,
    /// Canonical, as the watcher reports paths under it.
    code: PathBuf,
    pool: Weak<Pool>,
    /// Changed since the last recycle.
    dirty: AtomicBool,
    /// The poller warned that the tree is too large.
    warned: AtomicBool,
}

/// Keeps the watch alive; dropping it stops the watching.
pub(crate) struct Watch {
    _watcher: Option<RecommendedWatcher>,
}

pub(crate) fn start(targets: Vec<Target>) -> Watch {
    let watched: Arc<Vec<Watched>> = Arc::new(
        targets
            .into_iter()
            .map(|t| Watched {
                code: t.code.canonicalize().unwrap_or(t.code),
                name: t.name,
                pool: t.pool,
                dirty: AtomicBool::new(false),
                warned: AtomicBool::new(false),
            })
            .collect(),
    );
    if watched.is_empty() {
        return Watch { _watcher: None };
    }
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    let events = watched.clone();
    let mut watcher = match notify::recommended_watcher(move |e| on_event(&events, e, &wake)) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch functions' code directories; polling them every second");
            None
        }
    };
    if watcher.is_some() {
        let shared = watched.clone();
        let spawned = std::thread::Builder::new()
            .name("portcullis-functions-watch".to_owned())
            .spawn(move || debounce(&woken, &shared));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the code watcher; polling functions' code directories every second");
            watcher = None;
        }
    }
    let mut polled = Vec::new();
    let mut seen: Vec<(&Path, bool)> = Vec::new();
    for (i, w) in watched.iter().enumerate() {
        let Some(watcher) = watcher.as_mut() else {
            polled.push(i);
            continue;
        };
        // Functions sharing a directory share its watch: events are matched by path.
        let ok = match seen.iter().find(|(code, _)| *code == w.code) {
            Some(&(_, ok)) => ok,
            None => {
                let ok = match watcher.watch(&w.code, RecursiveMode::Recursive) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(function = %w.name, code = %w.code.display(), error = %e,
                            "cannot watch the code directory; polling it every second");
                        false
                    }
                };
                seen.push((&w.code, ok));
                ok
            }
        };
        if !ok {
            polled.push(i);
        }
    }
    if !polled.is_empty() {
        let shared = watched.clone();
        let spawned = std::thread::Builder::new()
            .name("portcullis-functions-poll".to_owned())
            .spawn(move || poll(&shared, &polled));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the code poller; code changes need a restart");
        }
    }
    Watch { _watcher: watcher }
}

/// Marks the functions whose code an event touched and wakes the debouncer. Runs on the
/// watcher's thread: no blocking, no allocation beyond the event's own.
fn on_event(watched: &[Watched], event: notify::Result<Event>, wake: &SyncSender<()>) {
    let mut any = false;
    match event {
        // Opening and reading files (the runtime loading the handler) changes nothing.
        Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
        Ok(event) => {
            let rescan = event.need_rescan();
            for w in watched {
                let touched = rescan
                    || event
                        .paths
                        .iter()
                        .any(|p| p.strip_prefix(&w.code).is_ok_and(|rel| !is_noise(rel)));
                if touched {
                    w.dirty.store(true, Ordering::Release);
                    any = true;
                }
            }
        }
        // Events may have been lost: assume everything changed.
        Err(e) => {
            tracing::debug!(error = %e, "code watcher error");
            for w in watched {
                w.dirty.store(true, Ordering::Release);
            }
            any = true;
        }
    }
    if any {
        // Full means a wake-up is already pending.
        let _ = wake.try_send(());
    }
}

fn debounce(woken: &Receiver<()>, watched: &[Watched]) {
    while woken.recv().is_ok() {
        let first = Instant::now();
        loop {
            let left = MAX_DELAY.saturating_sub(first.elapsed());
            if left.is_zero() {
                break;
            }
            match woken.recv_timeout(DEBOUNCE.min(left)) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        for w in watched {
            if w.dirty.swap(false, Ordering::AcqRel)
                && let Some(pool) = w.pool.upgrade()
            {
                pool.recycle();
            }
        }
    }
}

fn poll(watched: &[Watched], polled: &[usize]) {
    let mut last: Vec<u64> = polled
        .iter()
        .map(|&i| tree_fingerprint(&watched[i]))
        .collect();
    loop {
        std::thread::sleep(POLL);
        if polled.iter().all(|&i| watched[i].pool.strong_count() == 0) {
            return;
        }
        for (seen, &i) in last.iter_mut().zip(polled) {
            let now = tree_fingerprint(&watched[i]);
            if now != *seen {
                *seen = now;
                if let Some(pool) = watched[i].pool.upgrade() {
                    pool.recycle();
                }
            }
        }
    }
}

fn tree_fingerprint(w: &Watched) -> u64 {
    let (entries, complete) = walk(&w.code);
    if !complete && !w.warned.swap(true, Ordering::AcqRel) {
        tracing::warn!(function = %w.name, code = %w.code.display(), limit = MAX_ENTRIES,
            "code directory too large to poll whole; changes beyond the limit go unnoticed");
    }
    changes::fingerprint(&entries)
}

/// The entries under `root` in a fixed order (sorted per directory), without following
/// symbolic links or descending into noise; at most [`MAX_ENTRIES`], [`MAX_DEPTH`] deep. The
/// flag says whether the walk saw everything.
fn walk(root: &Path) -> (Vec<Entry>, bool) {
    let mut entries = Vec::new();
    let mut complete = true;
    let mut stack = vec![(PathBuf::new(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(read) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        let mut names: Vec<_> = read.filter_map(Result::ok).map(|e| e.file_name()).collect();
        names.sort();
        for name in names.into_iter().rev() {
            if entries.len() >= MAX_ENTRIES {
                return (entries, false);
            }
            let path = dir.join(&name);
            if is_noise(&path) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(root.join(&path)) else {
                continue;
            };
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path.clone(), depth + 1));
                } else {
                    complete = false;
                }
            }
            entries.push(Entry {
                path,
                len: meta.len(),
                modified: meta.modified().ok(),
                dir: meta.is_dir(),
            });
        }
    }
    (entries, complete)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_polled_tree_changes_with_its_code_and_not_with_byte_code() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("app.py"), "v = 1\n").unwrap();
        std::fs::create_dir(root.join("pkg")).unwrap();
        std::fs::write(root.join("pkg/mod.py"), "").unwrap();
        let print = || changes::fingerprint(&walk(root).0);
        let first = print();
        assert_eq!(print(), first);
        assert_eq!(walk(root).0.len(), 3);

        std::fs::create_dir(root.join("__pycache__")).unwrap();
        std::fs::write(root.join("__pycache__/app.cpython-311.pyc"), "x").unwrap();
        std::fs::write(root.join(".app.py.swp"), "x").unwrap();
        assert_eq!(print(), first, "byte code and swap files are not code");

        std::fs::write(root.join("pkg/mod.py"), "x = 2\n").unwrap();
        let second = print();
        assert_ne!(second, first);
        std::fs::write(root.join("pkg/new.py"), "").unwrap();
        assert_ne!(print(), second);
    }
}
