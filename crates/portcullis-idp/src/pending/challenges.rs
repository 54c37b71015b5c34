//! Challenge sessions of the Cognito JSON API (`NEW_PASSWORD_REQUIRED`): opened with an expiry
//! into a bounded table, looked up while live, closed when answered. Keys are what the caller
//! stores for a session string (a hash of it). This module does no I/O.

use std::collections::HashMap;

use super::PendingError;

/// Open challenge sessions by key, at most `max` (expired ones make room first).
#[derive(Debug)]
pub struct ChallengeTable<T> {
    max: usize,
    sessions: HashMap<Vec<u8>, (T, i64)>,
}

impl<T> ChallengeTable<T> {
    pub fn new(max: usize) -> Self {
        ChallengeTable {
            max: max.max(1),
            sessions: HashMap::new(),
        }
    }

    /// Sessions held (live or expired but not yet dropped).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Opens a session under `key` that lives until `expires_at`. When the table is full,
    /// expired sessions are dropped; if that frees nothing, [`PendingError::Full`].
    pub fn open(
        &mut self,
        key: Vec<u8>,
        value: T,
        expires_at: i64,
        now: i64,
    ) -> Result<(), PendingError> {
        if self.sessions.len() >= self.max {
            self.sessions.retain(|_, (_, until)| *until > now);
            if self.sessions.len() >= self.max {
                return Err(PendingError::Full);
            }
        }
        self.sessions.insert(key, (value, expires_at));
        Ok(())
    }

    /// The live session `key`.
    pub fn get(&self, key: &[u8], now: i64) -> Result<&T, PendingError> {
        match self.sessions.get(key) {
            Some((value, until)) if *until > now => Ok(value),
            Some(_) => Err(PendingError::Expired),
            None => Err(PendingError::Unknown),
        }
    }

    /// Ends the session `key` (answered); returns its value if it was held.
    pub fn close(&mut self, key: &[u8]) -> Option<T> {
        self.sessions.remove(key).map(|(value, _)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_over_time() {
        let mut t = ChallengeTable::new(10);
        t.open(b"s".to_vec(), "bob", 400, 100).unwrap();
        let table = [
            (b"s".as_slice(), 100, Ok(&"bob")),
            (b"s", 399, Ok(&"bob")),
            (b"s", 400, Err(PendingError::Expired)),
            (b"x", 100, Err(PendingError::Unknown)),
        ];
        for (key, at, want) in table {
            assert_eq!(t.get(key, at), want, "{key:?} at {at}");
        }
        assert_eq!(t.close(b"s"), Some("bob"));
        assert_eq!(
            t.get(b"s", 100),
            Err(PendingError::Unknown),
            "answered once"
        );
        assert_eq!(t.close(b"s"), None);
    }

    #[test]
    fn the_table_is_bounded_and_expired_sessions_make_room() {
        let mut t = ChallengeTable::new(2);
        t.open(b"a".to_vec(), 1, 200, 100).unwrap();
        t.open(b"b".to_vec(), 2, 300, 100).unwrap();
        assert_eq!(t.open(b"c".to_vec(), 3, 400, 150), Err(PendingError::Full));
        assert_eq!(t.len(), 2);
        // at 200 "a" is over and makes room; "b" stays
        t.open(b"c".to_vec(), 3, 500, 200).unwrap();
        assert_eq!(t.get(b"a", 200), Err(PendingError::Unknown));
        assert_eq!(t.get(b"b", 200), Ok(&2));
        assert_eq!(t.get(b"c", 200), Ok(&3));
    }
}
