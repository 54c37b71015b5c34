//! Challenge sessions: the `Session` string a sign-in answers with when the user must first
//! meet a challenge (`NEW_PASSWORD_REQUIRED`), and what it stands for.
//!
//! Pure rules over injected time: the caller draws the session string and passes `now`. Only
//! the SHA-256 of each session string ([`session_hash`]) is kept (by the identity store, so
//! the answer may reach another gateway node), so a dump does not hold usable sessions. A session is bound to its pool, app client and user and lives
//! [`SESSION_TTL_SECS`]; it is ended by the caller once the challenge is met, so a failed
//! answer (a password the policy refuses) can be retried within its lifetime and a met one
//! cannot be replayed. At most `max` sessions are kept: when full the expired ones are
//! dropped, and a new one is refused only when every kept session is still live.
//! `ChallengeBook` is the in-memory model of these rules the tests drive; the store applies
//! them in SQL. The same table records the SRP `SECRET_BLOCK`s that were answered
//! ([`used_block_hash`]), under the same bound.

#[cfg(test)]
use std::collections::HashMap;

use aws_lc_rs::digest;
use portcullis_core::fault::{Fault, HasFault};

/// How long a challenge session lives, in seconds.
pub const SESSION_TTL_SECS: i64 = 180;

/// Whom a challenge session was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenged {
    pub pool: String,
    pub client_id: String,
    pub username: String,
}

/// Why a challenge session was not opened or not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The book holds its most live sessions.
    #[error("too many pending sign-ins")]
    Full,
    /// Unknown, expired, ended, or issued to another pool, client or user.
    #[error("invalid session")]
    Invalid,
}

impl HasFault for ChallengeError {
    fn fault(&self) -> Fault {
        Fault::Client
    }
}

#[cfg(test)]
#[derive(Debug, Clone)]
struct Entry {
    who: Challenged,
    expires_at: i64,
}

/// The live challenge sessions, by the SHA-256 of their session string.
#[cfg(test)]
#[derive(Debug)]
pub struct ChallengeBook {
    sessions: HashMap<Vec<u8>, Entry>,
    max: usize,
}

/// What is kept of a session string: its SHA-256.
pub fn session_hash(session: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, session.as_bytes())
        .as_ref()
        .to_vec()
}

/// What is kept of an SRP `SECRET_BLOCK` that was answered (its random id), in the same table as
/// the sessions so that a block is answered once across every node sharing the store: the
/// SHA-256 of a byte string that starts with 0xFF, which no UTF-8 `Session` string does, so the
/// record can never be taken for a session.
pub fn used_block_hash(block_id: &[u8]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"\xffsrp-block\0");
    ctx.update(block_id);
    ctx.finish().as_ref().to_vec()
}

/// When a session opened at `now` ends.
pub fn session_expiry(now: i64) -> i64 {
    now.saturating_add(SESSION_TTL_SECS)
}

#[cfg(test)]
impl ChallengeBook {
    /// An empty book that keeps at most `max` sessions.
    pub fn new(max: usize) -> Self {
        ChallengeBook {
            sessions: HashMap::new(),
            max,
        }
    }

    /// Records `session` for `who`, live until `now` + [`SESSION_TTL_SECS`].
    pub fn open(&mut self, session: &str, who: Challenged, now: i64) -> Result<(), ChallengeError> {
        if self.sessions.len() >= self.max {
            self.sessions.retain(|_, e| e.expires_at > now);
            if self.sessions.len() >= self.max {
                return Err(ChallengeError::Full);
            }
        }
        let expires_at = now.saturating_add(SESSION_TTL_SECS);
        self.sessions
            .insert(session_hash(session), Entry { who, expires_at });
        Ok(())
    }

    /// Accepts `session` when it is live at `now` and was issued to `who`. The session stays
    /// open until [`end`](Self::end).
    pub fn check(&self, session: &str, who: &Challenged, now: i64) -> Result<(), ChallengeError> {
        match self.sessions.get(&session_hash(session)) {
            Some(e) if e.expires_at > now && e.who == *who => Ok(()),
            _ => Err(ChallengeError::Invalid),
        }
    }

    /// Ends `session`: it is not accepted again.
    pub fn end(&mut self, session: &str) {
        self.sessions.remove(&session_hash(session));
    }

    /// Sessions kept (live or not yet dropped).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is kept.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests;
