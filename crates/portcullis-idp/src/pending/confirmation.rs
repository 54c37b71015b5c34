//! The confirmation and reset codes of one pool: a pure state machine over injected time.
//!
//! Each entry belongs to one (username, purpose) and holds the pending code (its HMAC only,
//! never the code), how many codes were issued in the current window, how many wrong guesses
//! were made in the current window across all codes, and a lock. The book never learns whether
//! the username exists: the JSON API runs the same calls for unknown names (with a code nobody
//! receives), so every answer — `LimitExceededException` included — is the same for both.
//!
//! Invariants:
//! * A code allows [`Limits::attempts_per_code`] wrong guesses; then even the right one is
//!   refused.
//! * At most [`Limits::codes_per_window`] codes are issued per entry and window.
//! * [`Limits::failures_per_window`] wrong guesses at live codes per entry and window, across
//!   codes, lock the entry for [`Limits::lock_secs`]: no code is checked or issued meanwhile,
//!   and a fresh code does not reset the count.
//! * Live codes issued to one client address (IPv4 address, IPv6 /64) number at most
//!   [`Limits::codes_per_client`], so one source cannot fill the book.
//! * The book holds at most [`Limits::max_entries`] entries. A full book first drops entries
//!   that carry nothing (code expired, windows passed, no lock), then the least recently used
//!   entry without wrong guesses or a lock, then the least recently used one: it never refuses
//!   everyone.
//!
//! The rules of one entry are [`CodeEntry`]'s methods. The identity store keeps one row per
//! entry (so a code issued on one gateway node is checked on another) and applies the book's
//! bounds (client share, eviction order) in SQL; `CodeBook`, the in-memory model of those
//! bounds, exists for the tests.

#[cfg(test)]
use std::collections::HashMap;
#[cfg(test)]
use std::hash::Hash;
use std::net::IpAddr;

/// The limits of a pool's confirmation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wrong guesses allowed per code.
    pub attempts_per_code: u32,
    /// Codes issued per entry and window.
    pub codes_per_window: u32,
    /// Wrong guesses per entry and window, across codes, before the entry locks.
    pub failures_per_window: u32,
    /// Length of the issue and failure windows, in seconds.
    pub window_secs: i64,
    /// How long a locked entry stays locked, in seconds.
    pub lock_secs: i64,
    /// Live codes per client address; 0 = no limit.
    pub codes_per_client: usize,
    /// Entries kept.
    pub max_entries: usize,
}

/// Where a request came from, as far as limits go: its [`portcullis_core::client::client_key`] (an IPv4 address, or
/// the /64 of an IPv6 one).
pub type ClientPrefix = IpAddr;

/// Why no code was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueRefusal {
    /// The entry issued its codes for this window.
    TooManyCodes,
    /// The entry is locked after too many wrong guesses.
    Locked,
    /// The client address holds its share of live codes.
    ClientFull,
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckRefusal {
    /// Wrong code, or no code pending.
    Mismatch,
    /// The code has expired (and is dropped).
    Expired,
    /// The code used up its attempts, or the entry is locked.
    LimitExceeded,
}

/// A count within a fixed window that starts with its first event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub count: u32,
    pub since: i64,
}

impl Window {
    fn count_at(&self, now: i64, len: i64) -> u32 {
        if now >= self.since.saturating_add(len) {
            0
        } else {
            self.count
        }
    }

    fn add(&mut self, now: i64, len: i64) {
        if self.count_at(now, len) == 0 {
            *self = Window {
                count: 0,
                since: now,
            };
        }
        self.count = self.count.saturating_add(1);
    }

    /// From when on the window counts nothing.
    fn ends(&self, len: i64) -> i64 {
        if self.count == 0 {
            i64::MIN
        } else {
            self.since.saturating_add(len)
        }
    }
}

/// The pending code of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    /// HMAC of the code (the book never sees the code).
    pub mac: Vec<u8>,
    pub expires_at: i64,
    pub attempts: u32,
    pub origin: Option<ClientPrefix>,
}

/// The state of one (username, purpose): what the store keeps per row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeEntry {
    pub code: Option<PendingCode>,
    pub issued: Window,
    pub failures: Window,
    /// Unix seconds; 0 = not locked.
    pub locked_until: i64,
}

impl CodeEntry {
    fn locked(&self, now: i64) -> bool {
        self.locked_until > now
    }

    /// Ends a lock that has passed, with the failures that caused it.
    fn unlock_if_passed(&mut self, now: i64) {
        if self.locked_until != 0 && self.locked_until <= now {
            self.locked_until = 0;
            self.failures = Window::default();
        }
    }

    fn live_code(&self, now: i64) -> Option<&PendingCode> {
        self.code.as_ref().filter(|c| c.expires_at > now)
    }

    /// Carries nothing the limits need any more.
    pub fn is_dead(&self, now: i64, limits: &Limits) -> bool {
        now >= self.dead_from(limits)
    }

    /// From when on the entry carries nothing (its code expired, its windows passed, no
    /// lock): the store may drop it then.
    pub fn dead_from(&self, limits: &Limits) -> i64 {
        let code = self.code.as_ref().map_or(i64::MIN, |c| c.expires_at);
        code.max(self.locked_until)
            .max(self.issued.ends(limits.window_secs))
            .max(self.failures.ends(limits.window_secs))
    }

    /// Wrong guesses or a lock: evicted last.
    pub fn guarded(&self, now: i64, limits: &Limits) -> bool {
        self.locked(now) || self.failures.count_at(now, limits.window_secs) > 0
    }

    /// Whether the entry has a code that has not expired.
    pub fn has_live_code(&self, now: i64) -> bool {
        self.live_code(now).is_some()
    }

    /// The live code's client address, if it has one.
    pub fn live_origin(&self, now: i64) -> Option<ClientPrefix> {
        self.live_code(now).and_then(|c| c.origin)
    }

    /// Whether a new code may be issued at `now` (`fresh`: the first code of a new account,
    /// which only the client's share limits). May end a passed lock.
    pub fn admit(&mut self, limits: &Limits, now: i64, fresh: bool) -> Result<(), IssueRefusal> {
        if fresh {
            return Ok(());
        }
        self.unlock_if_passed(now);
        if self.locked(now) {
            return Err(IssueRefusal::Locked);
        }
        if self.issued.count_at(now, limits.window_secs) >= limits.codes_per_window {
            return Err(IssueRefusal::TooManyCodes);
        }
        Ok(())
    }

    /// Stores a new code (its HMAC `mac`) once [`admit`](Self::admit)ted and the client's
    /// share checked; `fresh` drops what the entry collected before.
    pub fn store(
        &mut self,
        limits: &Limits,
        mac: Vec<u8>,
        expires_at: i64,
        origin: Option<ClientPrefix>,
        now: i64,
        fresh: bool,
    ) {
        if fresh {
            *self = CodeEntry::default();
        }
        self.issued.add(now, limits.window_secs);
        self.code = Some(PendingCode {
            mac,
            expires_at,
            attempts: 0,
            origin,
        });
    }

    /// Checks `mac` (the HMAC of a guess) against the pending code, consuming the code when
    /// it matches. Only guesses at a live code count as failures.
    pub fn check(&mut self, limits: &Limits, mac: &[u8], now: i64) -> Result<(), CheckRefusal> {
        self.unlock_if_passed(now);
        if self.locked(now) {
            return Err(CheckRefusal::LimitExceeded);
        }
        let matched = match &mut self.code {
            Some(code) if code.expires_at <= now => {
                self.code = None;
                return Err(CheckRefusal::Expired);
            }
            Some(code) if code.attempts >= limits.attempts_per_code => {
                return Err(CheckRefusal::LimitExceeded);
            }
            Some(code) => {
                let ok = aws_lc_rs::constant_time::verify_slices_are_equal(&code.mac, mac).is_ok();
                if !ok {
                    code.attempts = code.attempts.saturating_add(1);
                }
                ok
            }
            // Nothing to guess: a mismatch that counts nothing, as for a name without entry.
            None => return Err(CheckRefusal::Mismatch),
        };
        if matched {
            self.code = None;
            self.failures = Window::default();
            return Ok(());
        }
        self.failures.add(now, limits.window_secs);
        if self.failures.count_at(now, limits.window_secs) >= limits.failures_per_window {
            self.locked_until = now.saturating_add(limits.lock_secs);
        }
        Err(CheckRefusal::Mismatch)
    }

    /// Drops the pending code (its issue did not go through); the counts stay.
    pub fn withdraw(&mut self) {
        self.code = None;
    }
}

/// The in-memory model of a pool's book: entries by key with the client share and the
/// eviction order the store applies in SQL (`crate::store`). The rules' tests drive it.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct CodeBook<K> {
    limits: Limits,
    entries: HashMap<K, (CodeEntry, u64)>,
    /// Counts uses, to order entries by recency.
    uses: u64,
}

#[cfg(test)]
impl<K: Clone + Eq + Hash> CodeBook<K> {
    pub(crate) fn new(limits: Limits) -> Self {
        CodeBook {
            limits,
            entries: HashMap::new(),
            uses: 0,
        }
    }

    pub(crate) fn issue(
        &mut self,
        key: &K,
        mac: Vec<u8>,
        expires_at: i64,
        origin: Option<ClientPrefix>,
        now: i64,
    ) -> Result<(), IssueRefusal> {
        self.put(key, mac, expires_at, origin, now, false)
    }

    pub(crate) fn start(
        &mut self,
        key: &K,
        mac: Vec<u8>,
        expires_at: i64,
        origin: Option<ClientPrefix>,
        now: i64,
    ) -> Result<(), IssueRefusal> {
        self.put(key, mac, expires_at, origin, now, true)
    }

    fn put(
        &mut self,
        key: &K,
        mac: Vec<u8>,
        expires_at: i64,
        origin: Option<ClientPrefix>,
        now: i64,
        fresh: bool,
    ) -> Result<(), IssueRefusal> {
        let limits = self.limits;
        let mut entry = self
            .entries
            .get(key)
            .map(|e| e.0.clone())
            .unwrap_or_default();
        entry.admit(&limits, now, fresh)?;
        if let Some(origin) = origin
            && limits.codes_per_client > 0
        {
            let held = self
                .entries
                .iter()
                .filter(|(k, e)| *k != key && e.0.live_origin(now) == Some(origin))
                .count();
            if held >= limits.codes_per_client {
                return Err(IssueRefusal::ClientFull);
            }
        }
        if !self.entries.contains_key(key) {
            self.make_room(now);
        }
        entry.store(&limits, mac, expires_at, origin, now, fresh);
        self.uses = self.uses.wrapping_add(1);
        self.entries.insert(key.clone(), (entry, self.uses));
        Ok(())
    }

    pub(crate) fn check(&mut self, key: &K, mac: &[u8], now: i64) -> Result<(), CheckRefusal> {
        let limits = self.limits;
        let Some((entry, touched)) = self.entries.get_mut(key) else {
            return Err(CheckRefusal::Mismatch);
        };
        self.uses = self.uses.wrapping_add(1);
        *touched = self.uses;
        entry.check(&limits, mac, now)
    }

    pub(crate) fn withdraw(&mut self, key: &K) {
        if let Some((entry, _)) = self.entries.get_mut(key) {
            entry.withdraw();
        }
    }

    pub(crate) fn has_live_code(&self, key: &K, now: i64) -> bool {
        self.entries
            .get(key)
            .is_some_and(|e| e.0.has_live_code(now))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn make_room(&mut self, now: i64) {
        if self.entries.len() < self.limits.max_entries {
            return;
        }
        let limits = self.limits;
        self.entries.retain(|_, e| !e.0.is_dead(now, &limits));
        while self.entries.len() >= limits.max_entries.max(1) {
            let victim = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.0.guarded(now, &limits), e.1))
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        attempts_per_code: 5,
        codes_per_window: 5,
        failures_per_window: 10,
        window_secs: 3600,
        lock_secs: 3600,
        codes_per_client: 3,
        max_entries: 4,
    };

    fn mac(code: &str) -> Vec<u8> {
        code.as_bytes().to_vec()
    }

    fn ip(s: &str) -> Option<ClientPrefix> {
        Some(portcullis_core::client::client_key(s.parse().unwrap()))
    }

    #[test]
    fn a_code_allows_its_attempts_then_refuses_even_the_right_one() {
        let mut book = CodeBook::new(LIMITS);
        book.issue(&"u", mac("111111"), 100, None, 0).unwrap();
        for _ in 0..5 {
            assert_eq!(
                book.check(&"u", &mac("000000"), 1),
                Err(CheckRefusal::Mismatch)
            );
        }
        assert_eq!(
            book.check(&"u", &mac("111111"), 1),
            Err(CheckRefusal::LimitExceeded)
        );
        // a fresh code works
        book.issue(&"u", mac("222222"), 100, None, 2).unwrap();
        assert_eq!(book.check(&"u", &mac("222222"), 3), Ok(()));
        // single use
        assert_eq!(
            book.check(&"u", &mac("222222"), 3),
            Err(CheckRefusal::Mismatch)
        );
    }

    #[test]
    fn codes_per_window_then_limit_until_the_window_passes() {
        let mut book = CodeBook::new(LIMITS);
        let issued: Vec<_> = (0..12)
            .map(|i| book.issue(&"u", mac("1"), 10_000, None, i))
            .collect();
        assert_eq!(issued.iter().filter(|r| r.is_ok()).count(), 5);
        assert_eq!(issued[5], Err(IssueRefusal::TooManyCodes));
        // the window started with the first code (t = 0)
        assert_eq!(
            book.issue(&"u", mac("1"), 10_000, None, 3599),
            Err(IssueRefusal::TooManyCodes)
        );
        assert_eq!(book.issue(&"u", mac("1"), 10_000, None, 3600), Ok(()));
    }

    #[test]
    fn wrong_guesses_across_fresh_codes_lock_the_entry() {
        let mut book = CodeBook::new(LIMITS);
        let mut now = 0;
        // 5 codes × 2 wrong guesses = 10 failures across codes
        for _ in 0..5 {
            book.issue(&"u", mac("right"), 10_000, None, now).unwrap();
            for _ in 0..2 {
                assert_eq!(
                    book.check(&"u", &mac("wrong"), now),
                    Err(CheckRefusal::Mismatch)
                );
            }
            now += 1;
        }
        // locked: no code is issued, and none is accepted
        assert_eq!(
            book.issue(&"u", mac("right"), 10_000, None, now),
            Err(IssueRefusal::Locked)
        );
        assert_eq!(
            book.check(&"u", &mac("right"), now),
            Err(CheckRefusal::LimitExceeded)
        );
        // the lock lasts lock_secs from the 10th failure (at t = 4)
        let until = 4 + LIMITS.lock_secs;
        assert_eq!(
            book.check(&"u", &mac("right"), until - 1),
            Err(CheckRefusal::LimitExceeded)
        );
        // afterwards the last code (still live) works, and a new window starts clean
        assert_eq!(book.check(&"u", &mac("right"), until), Ok(()));
        assert_eq!(book.issue(&"u", mac("next"), 20_000, None, until), Ok(()));
    }

    #[test]
    fn a_fresh_code_does_not_reset_the_failures() {
        let mut book = CodeBook::new(Limits {
            codes_per_window: 100,
            ..LIMITS
        });
        let mut refusals = Vec::new();
        for i in 0..30 {
            if i % 3 == 0 {
                let _ = book.issue(&"u", mac("right"), 10_000, None, i);
            }
            refusals.push(book.check(&"u", &mac("wrong"), i));
        }
        let mismatches = refusals
            .iter()
            .filter(|r| **r == Err(CheckRefusal::Mismatch))
            .count();
        assert_eq!(mismatches, 10, "{refusals:?}");
    }

    #[test]
    fn expiry_answers_expired_once() {
        let mut book = CodeBook::new(LIMITS);
        book.issue(&"u", mac("1"), 100, None, 0).unwrap();
        assert_eq!(book.check(&"u", &mac("1"), 100), Err(CheckRefusal::Expired));
        assert_eq!(
            book.check(&"u", &mac("1"), 100),
            Err(CheckRefusal::Mismatch)
        );
        assert!(!book.has_live_code(&"u", 100));
    }

    #[test]
    fn unknown_keys_leave_no_trace() {
        let mut book: CodeBook<&str> = CodeBook::new(LIMITS);
        for _ in 0..100 {
            assert_eq!(book.check(&"x", &mac("1"), 0), Err(CheckRefusal::Mismatch));
        }
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn one_client_holds_at_most_its_share_of_live_codes() {
        let mut book = CodeBook::new(Limits {
            max_entries: 100,
            ..LIMITS
        });
        let a = ip("2001:db8::1");
        let a2 = ip("2001:db8::2"); // same /64
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            book.issue(&k, mac("1"), 100, a, i64::try_from(i).unwrap())
                .unwrap();
        }
        assert_eq!(
            book.issue(&"d", mac("1"), 100, a2, 5),
            Err(IssueRefusal::ClientFull)
        );
        // a new code for a name it already holds does not add to its share
        assert_eq!(book.issue(&"a", mac("2"), 100, a, 5), Ok(()));
        // another client is not affected
        assert_eq!(book.issue(&"d", mac("1"), 100, ip("10.0.0.1"), 5), Ok(()));
        // a consumed code frees a slot; so does an expired one
        assert_eq!(book.check(&"b", &mac("1"), 6), Ok(()));
        assert_eq!(book.issue(&"e", mac("1"), 100, a, 6), Ok(()));
        assert_eq!(
            book.issue(&"f", mac("1"), 100, a, 7),
            Err(IssueRefusal::ClientFull)
        );
        assert_eq!(book.issue(&"f", mac("1"), 200, a, 100), Ok(()));
    }

    #[test]
    fn a_full_book_evicts_instead_of_refusing_and_keeps_guarded_entries() {
        let mut book = CodeBook::new(Limits {
            codes_per_client: 0,
            ..LIMITS
        });
        book.issue(&"victim".to_owned(), mac("1"), 10_000, None, 0)
            .unwrap();
        assert_eq!(
            book.check(&"victim".to_owned(), &mac("2"), 0),
            Err(CheckRefusal::Mismatch)
        );
        for i in 0..50 {
            assert_eq!(
                book.issue(&format!("flood{i}"), mac("1"), 10_000, None, i + 1),
                Ok(())
            );
            assert!(book.len() <= LIMITS.max_entries);
        }
        // the entry with a wrong guess survived the flood: its code still works
        assert_eq!(book.check(&"victim".to_owned(), &mac("1"), 60), Ok(()));
    }

    #[test]
    fn the_least_recently_used_goes_first_within_one_second() {
        let mut book = CodeBook::new(Limits {
            codes_per_client: 0,
            ..LIMITS
        });
        for k in ["a", "b", "c", "d"] {
            book.issue(&k, mac("1"), 100, None, 0).unwrap();
        }
        // "a" is used again: "b" is now the least recently used
        assert_eq!(book.check(&"a", &mac("1"), 0), Ok(()));
        book.issue(&"e", mac("1"), 100, None, 0).unwrap();
        assert!(book.has_live_code(&"c", 0) && book.has_live_code(&"e", 0));
        assert!(!book.has_live_code(&"b", 0));
        assert_eq!(book.len(), 4);
    }

    #[test]
    fn a_new_account_starts_clean() {
        let mut book = CodeBook::new(LIMITS);
        // codes nobody received for a free name, guesses at them, a lock
        for i in 0..5 {
            book.issue(&"u", mac("x"), 100, None, i).unwrap();
            for _ in 0..2 {
                let _ = book.check(&"u", &mac("y"), i);
            }
        }
        assert_eq!(
            book.issue(&"u", mac("x"), 100, None, 5),
            Err(IssueRefusal::Locked)
        );
        // the account's first code goes through and works
        assert_eq!(book.start(&"u", mac("1"), 100, None, 5), Ok(()));
        assert_eq!(book.check(&"u", &mac("1"), 5), Ok(()));
        // its client's share still applies
        let mut book = CodeBook::new(Limits {
            codes_per_client: 1,
            ..LIMITS
        });
        book.start(&"a", mac("1"), 100, ip("10.0.0.1"), 0).unwrap();
        assert_eq!(
            book.start(&"b", mac("1"), 100, ip("10.0.0.1"), 0),
            Err(IssueRefusal::ClientFull)
        );
    }

    #[test]
    fn dead_entries_go_first() {
        let mut book = CodeBook::new(LIMITS);
        for (i, k) in ["a", "b", "c", "d"].into_iter().enumerate() {
            book.issue(&k, mac("1"), 10, None, i64::try_from(i).unwrap())
                .unwrap();
        }
        // after the codes expired and the window passed, all four carry nothing
        book.issue(&"e", mac("1"), 10_000, None, 4000).unwrap();
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn withdraw_drops_the_code_but_keeps_the_count() {
        let mut book = CodeBook::new(LIMITS);
        for i in 0..5 {
            book.issue(&"u", mac("1"), 100, None, i).unwrap();
            book.withdraw(&"u");
        }
        assert!(!book.has_live_code(&"u", 5));
        assert_eq!(book.check(&"u", &mac("1"), 5), Err(CheckRefusal::Mismatch));
        assert_eq!(
            book.issue(&"u", mac("1"), 100, None, 5),
            Err(IssueRefusal::TooManyCodes)
        );
    }
}
