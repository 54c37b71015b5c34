//! What waits between two requests of one sign-in, with its rules and no I/O:
//! pending authorization requests ([`requests`]: expiry, per-client and per-pool caps),
//! one-time authorization codes ([`codes`]: issued once, redeemed once, a second use is a
//! replay), challenge sessions of the Cognito JSON API ([`challenges`]: expiry, a cap, only
//! hashes kept) and the Cognito confirmation and reset codes ([`confirmation`]: attempts,
//! windows, locks).
//!
//! Every rule takes the time as an argument (`now`, unix seconds), so tests decide it. The
//! identity store ([`crate::store`]) keeps the entries, so that every step of a sign-in may
//! land on another gateway node sharing it; the in-memory tables here are the rules' models.
//! Failures are one typed [`PendingError`].

pub mod challenges;
pub mod codes;
pub mod confirmation;
pub mod requests;

pub use codes::Redeemed;
pub use requests::{PENDING_PER_CLIENT, PENDING_PER_POOL, PENDING_TOTAL, PendingLimits};

/// How long a pending sign-in request (the hosted page's state) lives.
pub const PENDING_TTL_SECS: i64 = 600;
/// How long an authorization code can be redeemed (Cognito: 5 minutes).
pub const CODE_TTL_SECS: i64 = 300;
/// Most authorization codes kept (redeemed ones stay until expiry to detect replays).
pub const MAX_CODES: usize = 10_000;

/// Why a pending entry could not be added or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PendingError {
    /// One client holds as many pending sign-in requests as it may.
    #[error("too many sign-ins in progress from this address")]
    ClientFull,
    /// The table is full of live entries.
    #[error("too many pending entries")]
    Full,
    /// No such entry (or it belongs to someone else).
    #[error("unknown or foreign entry")]
    Unknown,
    /// The entry's time is over.
    #[error("expired")]
    Expired,
}
