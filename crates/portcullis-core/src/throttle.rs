//! Request throttling: a token bucket (API Gateway's rate + burst model) and a bounded map of
//! buckets by key (route, client, …).
//!
//! Time is passed in as seconds (`f64`) from any monotonic origin — the caller typically uses
//! `Instant::elapsed().as_secs_f64()` of a start instant — so everything here is deterministic
//! and testable. A clock that steps backwards never adds tokens. Nothing here locks; the caller
//! wraps [`KeyedBuckets`] in a mutex (or shards it by key hash).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// A token bucket holding up to `burst` tokens, refilled at `rate_per_sec`; each request takes
/// one. A new bucket is full. `burst < 1` rejects every request (AWS: a burst of 0 blocks all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: f64,
}

/// Negative, NaN and infinite inputs become 0 (infinite rate: effectively unlimited is not
/// representable safely, so it is treated as misconfiguration and blocks).
fn sane(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 { x } else { 0.0 }
}

impl TokenBucket {
    /// A full bucket at time `now_secs`.
    pub fn new(rate_per_sec: f64, burst: u32, now_secs: f64) -> Self {
        let burst = f64::from(burst);
        TokenBucket {
            rate_per_sec: sane(rate_per_sec),
            burst,
            tokens: burst,
            last: if now_secs.is_finite() { now_secs } else { 0.0 },
        }
    }

    fn refill(&mut self, now_secs: f64) {
        if now_secs.is_finite() && now_secs > self.last {
            let added = (now_secs - self.last) * self.rate_per_sec;
            self.tokens = (self.tokens + added).min(self.burst);
            self.last = now_secs;
        }
    }

    /// Takes one token if there is one; `false` means the request is throttled (429).
    pub fn try_take(&mut self, now_secs: f64) -> bool {
        self.refill(now_secs);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Tokens available at `now_secs` (without taking any).
    pub fn available(&self, now_secs: f64) -> f64 {
        let mut b = *self;
        b.refill(now_secs);
        b.tokens
    }

    /// Whether the bucket is back to `burst` at `now_secs`, i.e. indistinguishable from a new
    /// one (so it can be forgotten without changing any decision).
    pub fn is_full(&self, now_secs: f64) -> bool {
        self.available(now_secs) >= self.burst
    }

    /// When the bucket last took or was refilled (`now_secs` of the last call).
    pub fn last_seen(&self) -> f64 {
        self.last
    }
}

/// Default bound on the number of keys a [`KeyedBuckets`] tracks.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// One token bucket per key, all with the same rate and burst, never more than `max_keys`.
///
/// When a new key arrives and the map is full, buckets that have refilled completely are
/// dropped first (forgetting them changes no decision). If that frees fewer than an eighth of
/// the capacity, the least recently used buckets are dropped as well until an eighth is free, so
/// the O(n) sweep runs at most once per `max_keys / 8` new keys. Dropping a partly drained bucket
/// hands that key a fresh burst: under a flood of distinct keys the bound wins over exactness.
///
/// Keys are strings unless another type is named (`KeyedBuckets<IpAddr>`).
#[derive(Debug, Clone)]
pub struct KeyedBuckets<K = String> {
    rate_per_sec: f64,
    burst: u32,
    max_keys: usize,
    buckets: HashMap<K, TokenBucket>,
}

impl<K: Hash + Eq + Clone> KeyedBuckets<K> {
    /// `max_keys` below 1 is treated as 1.
    pub fn new(rate_per_sec: f64, burst: u32, max_keys: usize) -> Self {
        KeyedBuckets {
            rate_per_sec,
            burst,
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token from `key`'s bucket (created full on first use).
    pub fn try_take<Q>(&mut self, key: &Q, now_secs: f64) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(bucket) = self.buckets.get_mut(key) {
            return bucket.try_take(now_secs);
        }
        if self.buckets.len() >= self.max_keys {
            self.evict(now_secs);
        }
        let mut bucket = TokenBucket::new(self.rate_per_sec, self.burst, now_secs);
        let allowed = bucket.try_take(now_secs);
        self.buckets.insert(key.to_owned(), bucket);
        allowed
    }

    /// Drops every bucket that has refilled completely (call periodically to keep memory low).
    pub fn purge(&mut self, now_secs: f64) {
        self.buckets.retain(|_, b| !b.is_full(now_secs));
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The bound on [`len`](Self::len).
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    fn evict(&mut self, now_secs: f64) {
        self.purge(now_secs);
        let target = self.max_keys - (self.max_keys / 8).max(1);
        if self.buckets.len() <= target {
            return;
        }
        let excess = self.buckets.len() - target;
        let mut by_age: Vec<(f64, &K)> = self
            .buckets
            .iter()
            .map(|(k, b)| (b.last_seen(), k))
            .collect();
        if excess < by_age.len() {
            by_age.select_nth_unstable_by(excess, |a, b| a.0.total_cmp(&b.0));
        }
        let oldest: Vec<K> = by_age
            .into_iter()
            .take(excess)
            .map(|(_, k)| k.clone())
            .collect();
        for key in oldest {
            self.buckets.remove(&key);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Runs `(time, expected)` steps against one bucket.
    fn run(mut bucket: TokenBucket, steps: &[(f64, bool)]) {
        for (i, &(t, want)) in steps.iter().enumerate() {
            assert_eq!(bucket.try_take(t), want, "step {i} at t={t}");
        }
    }

    #[test]
    fn burst_then_refill() {
        // rate 2/s, burst 3: three at once, then one per half second.
        run(
            TokenBucket::new(2.0, 3, 0.0),
            &[
                (0.0, true),
                (0.0, true),
                (0.0, true),
                (0.0, false),
                (0.25, false),
                (0.5, true),
                (0.5, false),
                (1.0, true),
                // Long idle: refills to burst, never beyond.
                (100.0, true),
                (100.0, true),
                (100.0, true),
                (100.0, false),
            ],
        );
    }

    #[test]
    fn edge_parameters() {
        // Burst 0 blocks everything.
        run(
            TokenBucket::new(100.0, 0, 0.0),
            &[(0.0, false), (10.0, false)],
        );
        // Rate 0: only the initial burst.
        run(
            TokenBucket::new(0.0, 2, 0.0),
            &[(0.0, true), (1.0, true), (1e9, false)],
        );
        // Bad rates are treated as 0.
        for rate in [f64::NAN, f64::INFINITY, -5.0] {
            run(TokenBucket::new(rate, 1, 0.0), &[(0.0, true), (1e6, false)]);
        }
        // Fractional rate.
        run(
            TokenBucket::new(0.5, 1, 0.0),
            &[(0.0, true), (1.0, false), (2.0, true)],
        );
    }

    #[test]
    fn clock_going_backwards_adds_nothing() {
        let mut b = TokenBucket::new(1.0, 1, 10.0);
        assert!(b.try_take(10.0));
        assert!(!b.try_take(5.0));
        assert!(!b.try_take(10.5));
        assert!(!b.try_take(f64::NAN));
        assert!(b.try_take(11.0));
        assert_eq!(b.last_seen(), 11.0);
    }

    #[test]
    fn full_and_available() {
        let mut b = TokenBucket::new(1.0, 2, 0.0);
        assert!(b.is_full(0.0));
        assert!(b.try_take(0.0));
        assert!(!b.is_full(0.5));
        assert_eq!(b.available(0.5), 1.5);
        assert!(b.is_full(1.0));
        // `available` does not mutate.
        assert_eq!(b.available(0.0), 1.0);
    }

    #[test]
    fn keys_are_independent() {
        let mut k = KeyedBuckets::new(1.0, 1, 10);
        assert!(k.try_take("a", 0.0));
        assert!(!k.try_take("a", 0.0));
        assert!(k.try_take("b", 0.0));
        assert!(!k.try_take("a", 0.5));
        assert!(k.try_take("a", 1.0));
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn bounded_keys_prefer_full_buckets() {
        let mut k = KeyedBuckets::new(1.0, 1, 4);
        // "hot" is drained at t=9.5 and stays drained until t=10.5.
        assert!(k.try_take("hot", 9.5));
        for key in ["a", "b", "c"] {
            assert!(k.try_take(key, 0.0));
        }
        assert_eq!(k.len(), 4);
        // At t=10 a, b, c have refilled; "hot" has not, so it survives and stays throttled.
        assert!(k.try_take("new", 10.0));
        assert!(k.len() <= 4);
        assert!(!k.try_take("hot", 10.0));
    }

    #[test]
    fn bounded_keys_under_flood() {
        let max = 1000;
        let mut k = KeyedBuckets::new(0.0, 1, max);
        // Rate 0: no bucket ever refills, so eviction must fall back to least recently used.
        for i in 0..20_000u32 {
            let t = f64::from(i);
            assert!(k.try_take(&format!("k{i}"), t));
            assert!(k.len() <= max, "len {} at {i}", k.len());
        }
        // The most recent keys are still tracked (and drained).
        assert!(!k.try_take("k19999", 20_000.0));
        assert!(!k.try_take("k19990", 20_000.0));
        assert!(k.len() <= max);
    }

    #[test]
    fn purge_and_tiny_bound() {
        let mut k = KeyedBuckets::new(1.0, 2, 0);
        assert_eq!(k.max_keys(), 1);
        assert!(k.try_take("a", 0.0));
        assert!(k.try_take("b", 0.0));
        assert_eq!(k.len(), 1);
        assert!(!k.is_empty());
        k.purge(0.5);
        assert_eq!(k.len(), 1);
        k.purge(1.0);
        assert!(k.is_empty());
    }
}
