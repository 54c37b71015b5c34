//! The rows of sign-in steps: what waits between two requests of one sign-in, kept in the store
//! so that each request may land on another gateway node. The rules are `crate::pending`'s;
//! the store applies them atomically (SQL conditions, compare-and-swap), so two nodes racing
//! over one entry never both win.

use crate::pending::challenges::Challenged;
use crate::pending::confirmation::CodeEntry;

/// A pending sign-in request of the hosted page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequestRow {
    /// SHA-256 of the id the login form carries.
    pub id_hash: Vec<u8>,
    pub pool: String,
    /// The client address key the request counts against; `None`: not known (no cap).
    pub holder: Option<String>,
    /// The validated request, as the code flow serialises it (JSON).
    pub body: String,
    pub expires_at: i64,
}

/// A one-time authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCodeRow {
    /// SHA-256 of the code.
    pub code_hash: Vec<u8>,
    pub pool: String,
    pub client_id: String,
    /// What the code was issued for, as the code flow serialises it (JSON).
    pub body: String,
    pub expires_at: i64,
}

/// The outcome of redeeming an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// The first use: the code's body. Of parallel first uses exactly one gets this.
    Fresh(String),
    /// A later use: what the first use issued (handed out to the first replay only).
    Replayed(Option<Vec<u8>>),
    /// No such code, or another pool's or client's (it stays usable by its owner).
    Unknown,
    /// The code's time is over (it is dropped).
    Expired,
}

/// A challenge session of the Cognito JSON API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    /// SHA-256 of the `Session` string.
    pub session_hash: Vec<u8>,
    pub who: Challenged,
    pub expires_at: i64,
}

/// The confirmation or reset code state of one user name and purpose, with the version a
/// compare-and-swap writes against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationRow {
    pub entry: CodeEntry,
    pub version: i64,
}

/// Names one confirmation entry: pool, user name, purpose (`sign_up`, `forgot_password`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmationKey<'a> {
    pub pool: &'a str,
    pub username: &'a str,
    pub purpose: &'a str,
}

/// Most expired rows one prune deletes per table (bounded work per call).
pub const PRUNE_BATCH: u32 = 1000;
