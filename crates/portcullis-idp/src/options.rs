//! The provider's tunables and its clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::lockout;

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Tunables that are not (yet) configuration keys.
#[derive(Debug, Clone)]
pub struct IdpOptions {
    /// How long a new signing key is published before it signs. Default 5 minutes.
    pub key_grace: Duration,
    /// Most client IPs tracked by each pool's rate limiter (the rate itself is the pool's
    /// `rate_limit_per_ip`). Default 10,000.
    pub rate_limit_entries: usize,
    /// Argon2 hashes running at once. Default: one per core.
    pub hash_concurrency: usize,
    /// How often a serving gateway reads the store's revocation log (see
    /// [`IdentityProvider::poll_revocation_events`](crate::IdentityProvider::poll_revocation_events)):
    /// revocations made on another node reach this one's live connections within it. One
    /// indexed query per poll (events after the last id seen). Default 500 ms.
    pub revocation_poll_interval: Duration,
    /// Most revocation events read by one poll. Default 256.
    pub revocation_poll_batch: u32,
    /// Most unknown usernames whose failed sign-ins each pool counts (so they lock out like
    /// real users); the least recently failed is forgotten first. Default 10,000.
    pub unknown_name_entries: usize,
    /// The clock of lockouts, sessions and sign-outs (the system's unless a test fixes it).
    pub clock: Clock,
    /// What runs the `[functions.NAME]` a pool's triggers name (given by the gateway); `None`:
    /// such a trigger fails with `UnexpectedLambdaException`.
    pub trigger_functions: Option<crate::triggers::FunctionInvoker>,
}

/// Unix seconds as the provider sees them: the system clock, or a time a test sets.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// A clock that stands at `now` until [`set`](Self::set).
    pub fn fixed(now: i64) -> Self {
        Clock(Some(Arc::new(AtomicI64::new(now))))
    }

    /// Moves a fixed clock (the system clock ignores this).
    pub fn set(&self, now: i64) {
        if let Some(t) = &self.0 {
            t.store(now, Ordering::SeqCst);
        }
    }

    pub fn now(&self) -> i64 {
        match &self.0 {
            Some(t) => t.load(Ordering::SeqCst),
            None => unix_now(),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(t) => write!(f, "Clock(fixed at {})", t.load(Ordering::SeqCst)),
            None => f.write_str("Clock(system)"),
        }
    }
}

impl Default for IdpOptions {
    fn default() -> Self {
        IdpOptions {
            key_grace: Duration::from_secs(300),
            rate_limit_entries: 10_000,
            hash_concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            revocation_poll_interval: Duration::from_millis(500),
            revocation_poll_batch: 256,
            unknown_name_entries: lockout::DEFAULT_UNKNOWN_NAMES,
            clock: Clock::default(),
            trigger_functions: None,
        }
    }
}
