//! The binary's memory allocator, chosen at build time (docs/BENCHMARKS.md, "Memory after a
//! burst", has the measurements behind the choice):
//!
//! - `jemalloc` (default feature): jemalloc with its background threads on, which purge
//!   unused pages (`dirty_decay_ms`, default 10 s) even when the process is idle, so RSS falls
//!   back after a burst of connections. `_RJEM_MALLOC_CONF` tunes it at run time
//!   (e.g. `_RJEM_MALLOC_CONF=dirty_decay_ms:1000`).
//! - `mimalloc`: mimalloc.
//! - neither (`--no-default-features`): the system's malloc.

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Name of the allocator in use, for the startup log.
pub const NAME: &str = if cfg!(feature = "jemalloc") {
    "jemalloc"
} else if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system"
};

/// Start the allocator's background purging, where it has any. Returns a message when that
/// failed (the gateway runs on; memory is then only given back while it allocates).
pub fn init() -> Option<String> {
    #[cfg(feature = "jemalloc")]
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        return Some(format!("jemalloc background threads: {e}"));
    }
    None
}
