//! One-time authorization codes: issued with an expiry into a bounded table, redeemed at most
//! once. A redeemed code stays until it expires, so a second use is recognised as a replay and
//! can take back what the first use issued. Keys are what the caller stores for a code (a hash
//! of it, never the code itself). This module does no I/O: the identity store keeps the codes
//! (so a code issued by one gateway node is redeemed at another, exactly once) and applies
//! these rules in SQL; `CodeTable` is their in-memory model, which the tests drive.

#[cfg(test)]
use std::collections::HashMap;

#[cfg(test)]
use super::PendingError;

/// The outcome of redeeming a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed<T> {
    /// The first use: the code's value.
    Fresh(T),
    /// A second use: what the first use issued, if it was recorded (handed out once).
    Replayed(Option<Vec<u8>>),
}

#[cfg(test)]
#[derive(Debug)]
struct Code<T> {
    value: T,
    expires_at: i64,
    used: bool,
    issued: Option<Vec<u8>>,
}

#[cfg(test)]
/// Codes by key, at most `max` (expired ones make room first).
#[derive(Debug)]
pub struct CodeTable<T> {
    max: usize,
    ttl_secs: i64,
    codes: HashMap<Vec<u8>, Code<T>>,
}

#[cfg(test)]
impl<T: Clone> CodeTable<T> {
    /// A table of at most `max` codes, each redeemable for `ttl_secs`.
    pub fn new(max: usize, ttl_secs: i64) -> Self {
        CodeTable {
            max: max.max(1),
            ttl_secs,
            codes: HashMap::new(),
        }
    }

    /// Codes held (live, used or expired but not yet dropped).
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Issues a code under `key` at `now`; returns when it expires. When the table is full,
    /// expired codes are dropped; if that frees nothing, [`PendingError::Full`].
    pub fn issue(&mut self, key: Vec<u8>, value: T, now: i64) -> Result<i64, PendingError> {
        if self.codes.len() >= self.max {
            self.codes.retain(|_, c| now < c.expires_at);
            if self.codes.len() >= self.max {
                return Err(PendingError::Full);
            }
        }
        let expires_at = now.saturating_add(self.ttl_secs);
        self.codes.insert(
            key,
            Code {
                value,
                expires_at,
                used: false,
                issued: None,
            },
        );
        Ok(expires_at)
    }

    /// Redeems the code `key` for a caller that `owns` it: the first time its value, after
    /// that [`Redeemed::Replayed`]. A code the caller does not own is [`PendingError::Unknown`]
    /// and stays usable by its owner; an expired one is [`PendingError::Expired`] and dropped.
    pub fn redeem(
        &mut self,
        key: &[u8],
        owns: impl FnOnce(&T) -> bool,
        now: i64,
    ) -> Result<Redeemed<T>, PendingError> {
        let Some(code) = self.codes.get_mut(key) else {
            return Err(PendingError::Unknown);
        };
        if !owns(&code.value) {
            return Err(PendingError::Unknown);
        }
        if now >= code.expires_at {
            self.codes.remove(key);
            return Err(PendingError::Expired);
        }
        if code.used {
            return Ok(Redeemed::Replayed(code.issued.take()));
        }
        code.used = true;
        Ok(Redeemed::Fresh(code.value.clone()))
    }

    /// Records what redeeming `key` issued (to take back on a replay); false when the code is
    /// gone (dropped to make room, or expired and dropped) and nothing could be recorded.
    pub fn record_issued(&mut self, key: &[u8], issued: Vec<u8>) -> bool {
        match self.codes.get_mut(key) {
            Some(code) => {
                code.issued = Some(issued);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max: usize) -> CodeTable<&'static str> {
        CodeTable::new(max, 300)
    }

    fn mine(v: &&str) -> bool {
        *v == "alice"
    }

    #[test]
    fn a_code_is_redeemed_once_then_replayed() {
        let mut t = table(10);
        assert_eq!(t.issue(b"k".to_vec(), "alice", 100), Ok(400));
        assert_eq!(t.redeem(b"k", mine, 100), Ok(Redeemed::Fresh("alice")));
        assert_eq!(t.redeem(b"k", mine, 101), Ok(Redeemed::Replayed(None)));
        assert!(t.record_issued(b"k", b"refresh".to_vec()));
        assert_eq!(
            t.redeem(b"k", mine, 102),
            Ok(Redeemed::Replayed(Some(b"refresh".to_vec())))
        );
        assert_eq!(
            t.redeem(b"k", mine, 103),
            Ok(Redeemed::Replayed(None)),
            "what was issued is handed out once"
        );
    }

    #[test]
    fn redemption_rules() {
        // (owner, redeemed at, outcome, still held)
        let table_ = [
            ("alice", 100, Ok(Redeemed::Fresh("alice")), true),
            ("alice", 399, Ok(Redeemed::Fresh("alice")), true),
            ("alice", 400, Err(PendingError::Expired), false),
            ("alice", 10_000, Err(PendingError::Expired), false),
            // another caller's code: refused, not burnt, even when expired
            ("bob", 100, Err(PendingError::Unknown), true),
            ("bob", 400, Err(PendingError::Unknown), true),
        ];
        for (owner, at, want, held) in table_ {
            let mut t = table(10);
            t.issue(b"k".to_vec(), "alice", 100).unwrap();
            assert_eq!(t.redeem(b"k", |v| *v == owner, at), want, "{owner} at {at}");
            assert_eq!(t.len() == 1, held, "{owner} at {at}");
        }
        let mut t = table(10);
        t.issue(b"k".to_vec(), "alice", 100).unwrap();
        assert_eq!(t.redeem(b"x", mine, 100), Err(PendingError::Unknown));
        assert_eq!(
            t.redeem(b"k", |v| *v == "bob", 100),
            Err(PendingError::Unknown)
        );
        assert_eq!(
            t.redeem(b"k", mine, 100),
            Ok(Redeemed::Fresh("alice")),
            "the owner's code survived a foreign attempt"
        );
    }

    #[test]
    fn the_table_is_bounded_and_expired_codes_make_room() {
        let mut t = table(2);
        t.issue(b"a".to_vec(), "alice", 100).unwrap();
        t.issue(b"b".to_vec(), "alice", 200).unwrap();
        assert_eq!(
            t.issue(b"c".to_vec(), "alice", 300),
            Err(PendingError::Full)
        );
        assert_eq!(t.len(), 2, "a refused code changes nothing");
        // at 400 the first code has expired: it makes room
        assert_eq!(t.issue(b"c".to_vec(), "alice", 400), Ok(700));
        assert_eq!(t.len(), 2);
        assert_eq!(t.redeem(b"a", mine, 400), Err(PendingError::Unknown));
        assert_eq!(t.redeem(b"b", mine, 400), Ok(Redeemed::Fresh("alice")));
        // used codes count until they expire (replays are recognised)
        assert_eq!(
            t.issue(b"d".to_vec(), "alice", 450),
            Err(PendingError::Full)
        );
    }

    #[test]
    fn nothing_is_recorded_for_a_code_that_is_gone() {
        let mut t = table(1);
        assert!(!t.record_issued(b"k", b"x".to_vec()));
        t.issue(b"k".to_vec(), "alice", 100).unwrap();
        assert_eq!(t.redeem(b"k", mine, 400), Err(PendingError::Expired));
        assert!(!t.record_issued(b"k", b"x".to_vec()));
    }
}
