//! The tunables of the JSON API and the clock of its codes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::delivery::CodeCallback;
use crate::pending::confirmation;
use crate::unix_now;

/// The JSON API's clock for codes: unix seconds. Tests use a [`manual`](Clock::manual) one,
/// which moves only by [`advance`](Clock::advance). Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Seconds added to the system clock, or (manual clocks) the time itself.
    offset: Arc<AtomicI64>,
    manual: bool,
}

impl Clock {
    /// A clock stopped at the current time.
    pub fn manual() -> Self {
        Clock {
            offset: Arc::new(AtomicI64::new(unix_now())),
            manual: true,
        }
    }

    /// Unix seconds.
    pub fn now(&self) -> i64 {
        let offset = self.offset.load(Ordering::Relaxed);
        if self.manual {
            offset
        } else {
            unix_now().saturating_add(offset)
        }
    }

    /// Moves this clock (and its clones) forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Tunables of the JSON API.
#[derive(Clone)]
pub struct CognitoOptions {
    pub on_code: Option<CodeCallback>,
    /// Lifetime of sign-up confirmation codes. Default 24 h.
    pub sign_up_code_ttl: Duration,
    /// Lifetime of password reset codes. Default 1 h.
    pub reset_code_ttl: Duration,
    /// Wrong guesses allowed per code. Default 5.
    pub max_code_attempts: u32,
    /// Codes issued per user and purpose (sign-up, reset) within [`code_window`]. Default 5.
    ///
    /// [`code_window`]: CognitoOptions::code_window
    pub codes_per_window: u32,
    /// Wrong guesses per user and purpose within [`code_window`], across codes, before the
    /// confirmation or reset of that user is locked for [`code_lock`]. Default 10.
    ///
    /// [`code_window`]: CognitoOptions::code_window
    /// [`code_lock`]: CognitoOptions::code_lock
    pub code_failures_per_window: u32,
    /// The window of the two limits above. Default 1 h.
    pub code_window: Duration,
    /// How long a confirmation or reset stays locked after too many wrong guesses. Default 1 h.
    pub code_lock: Duration,
    /// Live codes issued to one client address (IPv4 address, IPv6 /64) per pool, while the
    /// pool limits per address (`rate_limit_per_ip` > 0). Default 100.
    pub max_codes_per_ip: usize,
    /// Most pending sessions kept, and most users with code state kept per pool. Default
    /// 10,000.
    pub max_pending: usize,
    /// The clock of codes and sessions.
    pub clock: Clock,
    /// The `[management]` credentials and region the Admin operations must be signed with;
    /// `None` refuses every Admin operation.
    pub management: Option<portcullis_config::Management>,
}

impl Default for CognitoOptions {
    fn default() -> Self {
        CognitoOptions {
            on_code: None,
            sign_up_code_ttl: Duration::from_secs(86_400),
            reset_code_ttl: Duration::from_secs(3600),
            max_code_attempts: 5,
            codes_per_window: 5,
            code_failures_per_window: 10,
            code_window: Duration::from_secs(3600),
            code_lock: Duration::from_secs(3600),
            max_codes_per_ip: 100,
            max_pending: 10_000,
            clock: Clock::default(),
            management: None,
        }
    }
}

impl CognitoOptions {
    pub(super) fn code_limits(&self) -> confirmation::Limits {
        confirmation::Limits {
            attempts_per_code: self.max_code_attempts,
            codes_per_window: self.codes_per_window,
            failures_per_window: self.code_failures_per_window.max(1),
            window_secs: crate::secs(self.code_window),
            lock_secs: crate::secs(self.code_lock),
            codes_per_client: self.max_codes_per_ip,
            max_entries: self.max_pending.max(1),
        }
    }
}

impl std::fmt::Debug for CognitoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoOptions")
            .field("on_code", &self.on_code.is_some())
            .field("max_code_attempts", &self.max_code_attempts)
            .field("codes_per_window", &self.codes_per_window)
            .field("code_failures_per_window", &self.code_failures_per_window)
            .field("max_codes_per_ip", &self.max_codes_per_ip)
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}
