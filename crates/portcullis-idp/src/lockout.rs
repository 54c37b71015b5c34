//! Sign-in lockout arithmetic, and the failure counts of usernames that do not exist.
//!
//! A password check is *reserved* before it runs: the failure is counted first (and, from the
//! [`LOCK_AFTER`]th on, the lock that would follow it is set at once), so parallel guesses can
//! never run more checks than the count allows; a matching password then clears the count.
//! Counting is a compare-and-swap of the user's row in the store (shared by every process);
//! unknown usernames are counted with the same arithmetic in a bounded store table of their
//! own (by [`name_key`], forgotten at [`forgotten_at`]), so they answer exactly like real users
//! on every node (`UnknownNames` is that table's in-memory model, for the tests).
//! [`reserve`] (before a check) and [`settle`] (after it) do no I/O.

#[cfg(test)]
use std::collections::{BTreeMap, HashMap};
#[cfg(test)]
use std::sync::Mutex;

/// Failures in a row before sign-in locks a user out.
pub const LOCK_AFTER: i64 = 5;
/// Longest lockout.
pub const LOCK_CAP_SECS: i64 = 900;
/// Quiet time after which earlier failures are forgotten.
pub const LOCK_RESET_SECS: i64 = 900;

/// The lockout state of one username: failures so far, the lock, and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockState {
    pub failures: i64,
    pub locked_until: Option<i64>,
    /// When the count last changed (a quiet [`LOCK_RESET_SECS`] after it forgets them).
    pub changed_at: i64,
}

/// Seconds a user is locked out after `failures` failures in a row: none before
/// [`LOCK_AFTER`], then 1 s, 2 s, 4 s … at most [`LOCK_CAP_SECS`].
pub fn lock_secs(failures: i64) -> Option<i64> {
    if failures < LOCK_AFTER {
        return None;
    }
    let exp = u32::try_from(failures - LOCK_AFTER).unwrap_or(u32::MAX);
    Some(
        2i64.checked_pow(exp)
            .unwrap_or(LOCK_CAP_SECS)
            .min(LOCK_CAP_SECS),
    )
}

/// Reserves one password check at `now`: `None` while locked (refuse without checking),
/// otherwise the state to store before checking: one more failure, and the lock that failure
/// brings. A quiet [`LOCK_RESET_SECS`] since the last change starts the count afresh.
pub fn reserve(state: LockState, now: i64) -> Option<LockState> {
    let quiet = now.saturating_sub(state.changed_at) >= LOCK_RESET_SECS;
    let (failures, locked_until) = if state.failures > 0 && quiet {
        (0, None)
    } else {
        (state.failures, state.locked_until)
    };
    if locked_until.is_some_and(|t| t > now) {
        return None;
    }
    let failures = failures.saturating_add(1);
    Some(LockState {
        failures,
        locked_until: lock_secs(failures)
            .map(|s| now.saturating_add(s))
            .or(locked_until),
        changed_at: now,
    })
}

/// What to store once a reserved check has been answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// The password matched: forget the failures and the lock.
    Clear,
    /// Leave the reserved state as it is.
    Keep,
    /// The check failed and locks: the lock runs from the answer, so it restarts at the
    /// answer's time (stored only if the row still holds the reservation).
    Restart(LockState),
}

/// The state after a check reserved at `reserved_at` (as `reserved`, from [`reserve`]) was
/// answered at `answered_at`: `valid` clears the failures; a failure that brings a lock
/// restarts it from the answer when time passed meanwhile (a slow hash must not shorten it).
pub fn settle(reserved: LockState, reserved_at: i64, valid: bool, answered_at: i64) -> Settle {
    if valid {
        return Settle::Clear;
    }
    match lock_secs(reserved.failures) {
        Some(secs) if answered_at > reserved_at => Settle::Restart(LockState {
            locked_until: Some(answered_at.saturating_add(secs)),
            ..reserved
        }),
        _ => Settle::Keep,
    }
}

/// When a name's failures are forgotten (a quiet [`LOCK_RESET_SECS`] after the last change, and
/// no lock left): the store may drop its row then.
pub fn forgotten_at(state: &LockState) -> i64 {
    state
        .changed_at
        .saturating_add(LOCK_RESET_SECS)
        .max(state.locked_until.unwrap_or(i64::MIN))
}

/// Most unknown usernames tracked per pool by default (oldest forgotten first).
pub const DEFAULT_UNKNOWN_NAMES: usize = 10_000;

/// Failure counts of usernames that do not exist, at most `max` (the least recently changed
/// entry is evicted first).
#[cfg(test)]
#[derive(Debug)]
pub struct UnknownNames {
    max: usize,
    inner: Mutex<Table>,
}

/// SHA-256 of a username: every name costs the same few bytes, however long it is.
pub type NameKey = [u8; 32];

/// What the store keeps of an unknown user name: its SHA-256.
pub fn name_key(name: &str) -> NameKey {
    let mut key = [0u8; 32];
    key.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, name.as_bytes()).as_ref(),
    );
    key
}

#[cfg(test)]
#[derive(Debug, Default)]
struct Table {
    by_name: HashMap<NameKey, (LockState, u64)>,
    /// Change sequence → name, oldest first.
    order: BTreeMap<u64, NameKey>,
    next: u64,
}

#[cfg(test)]
impl UnknownNames {
    pub fn new(max: usize) -> Self {
        UnknownNames {
            max: max.max(1),
            inner: Mutex::new(Table::default()),
        }
    }

    /// [`reserve`] for an unknown `name`, atomically: false while it is locked.
    pub fn reserve(&self, name: &str, now: i64) -> bool {
        let mut t = match self.inner.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let key = name_key(name);
        let current = t.by_name.get(&key).copied();
        let Some(next) = reserve(current.map(|(s, _)| s).unwrap_or_default(), now) else {
            return false;
        };
        if let Some((_, seq)) = current {
            t.order.remove(&seq);
        }
        while t.by_name.len() >= self.max && current.is_none() {
            let Some((_, oldest)) = t.order.pop_first() else {
                break;
            };
            t.by_name.remove(&oldest);
        }
        let seq = t.next;
        t.next = t.next.wrapping_add(1);
        t.order.insert(seq, key);
        t.by_name.insert(key, (next, seq));
        true
    }

    /// Names tracked now.
    pub fn len(&self) -> usize {
        match self.inner.lock() {
            Ok(t) => t.by_name.len(),
            Err(p) => p.into_inner().by_name.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_lengths() {
        let table = [
            (0, None),
            (4, None),
            (5, Some(1)),
            (6, Some(2)),
            (7, Some(4)),
            (14, Some(512)),
            (15, Some(900)),
            (1000, Some(900)),
            (i64::MAX, Some(900)),
        ];
        for (failures, want) in table {
            assert_eq!(lock_secs(failures), want, "{failures} failures");
        }
    }

    fn st(failures: i64, locked_until: Option<i64>, changed_at: i64) -> LockState {
        LockState {
            failures,
            locked_until,
            changed_at,
        }
    }

    #[test]
    fn reservations() {
        let now = 10_000;
        let table = [
            // fresh user: counted, no lock
            (st(0, None, 0), Some(st(1, None, now))),
            (st(3, None, now - 10), Some(st(4, None, now))),
            // the 5th reservation locks at once (1 s)
            (st(4, None, now - 1), Some(st(5, Some(now + 1), now))),
            // locked: refused, nothing changes
            (st(5, Some(now + 1), now), None),
            // lock over: the next one doubles it
            (st(5, Some(now), now - 1), Some(st(6, Some(now + 2), now))),
            (
                st(9, Some(now - 5), now - 20),
                Some(st(10, Some(now + 32), now)),
            ),
            (
                st(30, Some(now - 1), now - 900 + 1),
                Some(st(31, Some(now + 900), now)),
            ),
            // 15 quiet minutes forget everything, even a lock that would still hold
            (st(4, None, now - 900), Some(st(1, None, now))),
            (st(20, Some(now + 100), now - 900), Some(st(1, None, now))),
        ];
        for (before, want) in table {
            assert_eq!(reserve(before, now), want, "{before:?}");
        }
    }

    #[test]
    fn settling_an_answered_check() {
        let now = 10_000;
        let table = [
            // a match clears, whatever was reserved
            (st(1, None, now), now, true, now + 3, Settle::Clear),
            (st(9, Some(now + 16), now), now, true, now, Settle::Clear),
            // a failure before the lock threshold changes nothing
            (st(4, None, now), now, false, now + 2, Settle::Keep),
            // a failure that locks, answered in the same second: the lock set stands
            (st(5, Some(now + 1), now), now, false, now, Settle::Keep),
            // answered later: the lock runs from the answer
            (
                st(5, Some(now + 1), now),
                now,
                false,
                now + 2,
                Settle::Restart(st(5, Some(now + 3), now)),
            ),
            (
                st(20, Some(now + 900), now),
                now,
                false,
                now + 1,
                Settle::Restart(st(20, Some(now + 901), now)),
            ),
            // a clock that went back does not shorten the lock
            (st(6, Some(now + 2), now), now, false, now - 5, Settle::Keep),
        ];
        for (reserved, at, valid, answered, want) in table {
            assert_eq!(
                settle(reserved, at, valid, answered),
                want,
                "{reserved:?} valid={valid} answered at {answered}"
            );
        }
    }

    #[test]
    fn sequence_of_guesses_at_one_instant() {
        // at one frozen instant: exactly LOCK_AFTER reservations, then refusals
        let mut s = LockState::default();
        let mut granted = 0;
        for _ in 0..40 {
            if let Some(next) = reserve(s, 500) {
                s = next;
                granted += 1;
            }
        }
        assert_eq!(granted, LOCK_AFTER);
    }

    #[test]
    fn unknown_names_lock_like_users_and_stay_bounded() {
        let names = UnknownNames::new(3);
        let granted = (0..7).filter(|_| names.reserve("ghost", 100)).count();
        assert_eq!(granted, 5);
        // the oldest entry goes first when the table is full
        assert!(names.reserve("a", 100));
        assert!(names.reserve("b", 100));
        assert_eq!(names.len(), 3);
        assert!(names.reserve("c", 100)); // evicts "ghost"
        assert_eq!(names.len(), 3);
        assert!(names.reserve("ghost", 100), "evicted: counted afresh");
        // a name that is touched is not the oldest any more
        let names = UnknownNames::new(2);
        assert!(names.reserve("x", 1));
        assert!(names.reserve("y", 1));
        assert!(names.reserve("x", 2));
        assert!(names.reserve("z", 2)); // evicts y
        for _ in 0..3 {
            assert!(names.reserve("x", 2));
        }
        assert!(!names.reserve("x", 2), "x kept its 5 failures");
    }
}
