//! Authorizer result cache (reference §4.7).
//!
//! Keys are SHA-256 digests of the authorizer name and its identity-source values
//! ([`CacheKey::new`]), so raw tokens and cookies are never kept in memory as keys. Values are
//! whole authorizer answers (policies), which the caller re-evaluates against each request's ARN
//! — so a policy naming only the first route does not wrongly allow others (and the stale-policy
//! 403 of API Gateway is reproduced faithfully rather than papered over).
//!
//! Bounded: at most `max_entries` entries; when full, the oldest inserted entry is evicted.
//! Expired entries are dropped when looked up and whenever the insertion-order queue is
//! compacted. Every operation is O(1) amortized under one `std::sync::Mutex`. A TTL of zero
//! disables caching for that insert.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Default bound on entries.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// A cache key: SHA-256 over the authorizer name and identity-source values (length-prefixed,
/// so `["ab", "c"]` and `["a", "bc"]` differ).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    pub fn new<S: AsRef<str>>(authorizer: &str, values: &[S]) -> CacheKey {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(authorizer.as_bytes());
        for v in values {
            field(v.as_ref().as_bytes());
        }
        CacheKey(h.finalize().into())
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A digest prefix is enough to tell keys apart in logs.
        write!(
            f,
            "CacheKey({})",
            hex::encode(self.0.get(..6).unwrap_or_default())
        )
    }
}

struct Entry<V> {
    value: V,
    expires: Instant,
    generation: u64,
}

struct Inner<V> {
    map: HashMap<CacheKey, Entry<V>>,
    /// Insertion order; an item is stale when the map holds a newer generation (or nothing).
    order: VecDeque<(CacheKey, u64)>,
    next_generation: u64,
}

/// A bounded TTL cache of authorizer answers.
pub struct AuthCache<V: Clone> {
    inner: Mutex<Inner<V>>,
    max_entries: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl<V: Clone> Default for AuthCache<V> {
    fn default() -> Self {
        AuthCache::new(DEFAULT_MAX_ENTRIES)
    }
}

impl<V: Clone> std::fmt::Debug for AuthCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

impl<V: Clone> AuthCache<V> {
    /// A cache holding at most `max_entries` (0: caches nothing).
    pub fn new(max_entries: usize) -> Self {
        AuthCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                next_generation: 0,
            }),
            max_entries,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // The map stays consistent even if a holder panicked: every mutation is a single call.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live value for `key`, counting a hit or a miss.
    pub fn get(&self, key: &CacheKey) -> Option<V> {
        self.get_at(key, Instant::now())
    }

    /// [`get`](Self::get) at a given instant (tests, or a caller with its own clock).
    pub fn get_at(&self, key: &CacheKey, now: Instant) -> Option<V> {
        let found = {
            let mut inner = self.lock();
            match inner.map.get(key) {
                Some(e) if e.expires > now => Some(e.value.clone()),
                Some(_) => {
                    inner.map.remove(key);
                    None
                }
                None => None,
            }
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores `value` for `ttl` (a zero TTL stores nothing).
    pub fn insert(&self, key: CacheKey, value: V, ttl: Duration) {
        self.insert_at(key, value, ttl, Instant::now());
    }

    /// [`insert`](Self::insert) at a given instant.
    pub fn insert_at(&self, key: CacheKey, value: V, ttl: Duration, now: Instant) {
        if ttl.is_zero() || self.max_entries == 0 {
            return;
        }
        let Some(expires) = now.checked_add(ttl) else {
            return;
        };
        let mut evicted = 0u64;
        {
            let mut inner = self.lock();
            let inner = &mut *inner;
            if !inner.map.contains_key(&key) {
                while inner.map.len() >= self.max_entries {
                    let Some((old, generation)) = inner.order.pop_front() else {
                        break;
                    };
                    if inner
                        .map
                        .get(&old)
                        .is_some_and(|e| e.generation == generation)
                    {
                        inner.map.remove(&old);
                        evicted += 1;
                    }
                }
            }
            let generation = inner.next_generation;
            inner.next_generation = generation.wrapping_add(1);
            inner.order.push_back((key, generation));
            inner.map.insert(
                key,
                Entry {
                    value,
                    expires,
                    generation,
                },
            );
            // Re-inserted and expired keys leave stale order items behind; drop them before the
            // queue can outgrow the map by much.
            if inner.order.len() > 2 * self.max_entries + 16 {
                let map = &mut inner.map;
                map.retain(|_, e| e.expires > now);
                inner
                    .order
                    .retain(|(k, g)| map.get(k).is_some_and(|e| e.generation == *g));
            }
        }
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    /// Drops every entry (API Gateway's `ResetAuthorizersCache`).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
    }

    /// Entries held (including expired ones not yet dropped).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Lookups that found a live entry.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that found nothing (or an expired entry).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Live entries pushed out because the cache was full.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn order_len(&self) -> usize {
        self.lock().order.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn key(v: &str) -> CacheKey {
        CacheKey::new("users", &[v])
    }

    #[test]
    fn keys() {
        assert_eq!(
            CacheKey::new("a", &["x", "y"]),
            CacheKey::new("a", &["x", "y"])
        );
        assert_ne!(
            CacheKey::new("a", &["x", "y"]),
            CacheKey::new("b", &["x", "y"])
        );
        assert_ne!(
            CacheKey::new("a", &["ab", "c"]),
            CacheKey::new("a", &["a", "bc"])
        );
        assert_ne!(
            CacheKey::new("a", &["x", "y"]),
            CacheKey::new("a", &["y", "x"])
        );
        assert_ne!(
            CacheKey::new("ax", &[] as &[&str]),
            CacheKey::new("a", &["x"])
        );
        // The token never appears in the key's Debug form.
        let dbg = format!("{:?}", CacheKey::new("a", &["secret-token"]));
        assert!(!dbg.contains("secret"), "{dbg}");
    }

    #[test]
    fn ttl_and_counters() {
        let c: AuthCache<u32> = AuthCache::new(10);
        let t0 = Instant::now();
        assert_eq!(c.get_at(&key("a"), t0), None);
        c.insert_at(key("a"), 1, MIN, t0);
        assert_eq!(c.get_at(&key("a"), t0), Some(1));
        assert_eq!(
            c.get_at(&key("a"), t0 + MIN - Duration::from_millis(1)),
            Some(1)
        );
        assert_eq!(c.get_at(&key("a"), t0 + MIN), None);
        assert_eq!(c.len(), 0, "expired entry dropped on lookup");
        assert_eq!(c.get_at(&key("b"), t0), None);
        assert_eq!((c.hits(), c.misses()), (2, 3));
        // Re-insert refreshes value and TTL.
        c.insert_at(key("a"), 2, MIN, t0);
        c.insert_at(key("a"), 3, MIN, t0 + MIN);
        assert_eq!(c.get_at(&key("a"), t0 + MIN + MIN / 2), Some(3));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn zero_ttl_disables() {
        let c: AuthCache<u32> = AuthCache::new(10);
        c.insert(key("a"), 1, Duration::ZERO);
        assert_eq!(c.len(), 0);
        assert_eq!(c.get(&key("a")), None);
        let off: AuthCache<u32> = AuthCache::new(0);
        off.insert(key("a"), 1, MIN);
        assert_eq!(off.get(&key("a")), None);
        // Absurd TTLs do not panic.
        c.insert(key("b"), 1, Duration::MAX);
    }

    #[test]
    fn bounded_evicts_oldest() {
        let c: AuthCache<usize> = AuthCache::new(3);
        let t0 = Instant::now();
        for i in 0..3 {
            c.insert_at(key(&i.to_string()), i, MIN, t0);
        }
        // Refreshing "0" makes "1" the oldest.
        c.insert_at(key("0"), 10, MIN, t0);
        c.insert_at(key("3"), 3, MIN, t0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.evictions(), 1);
        assert_eq!(c.get_at(&key("1"), t0), None);
        assert_eq!(c.get_at(&key("0"), t0), Some(10));
        assert_eq!(c.get_at(&key("2"), t0), Some(2));
        assert_eq!(c.get_at(&key("3"), t0), Some(3));
        for i in 0..10_000 {
            c.insert_at(key(&format!("k{i}")), i, MIN, t0);
            assert!(c.len() <= 3);
        }
        assert_eq!(c.get_at(&key("k9999"), t0), Some(9999));
    }

    #[test]
    fn order_queue_does_not_grow_with_reinserts() {
        let c: AuthCache<u32> = AuthCache::new(4);
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            // One hot key re-inserted forever plus expired one-offs: the map never fills.
            c.insert_at(key("hot"), i, MIN, t0);
            if i % 7 == 0 {
                c.insert_at(key(&i.to_string()), i, Duration::from_nanos(1), t0);
            }
            assert!(c.order_len() <= 2 * 4 + 17, "{}", c.order_len());
        }
        assert_eq!(c.get_at(&key("hot"), t0), Some(99_999));
    }

    #[test]
    fn shared_across_threads() {
        let c: std::sync::Arc<AuthCache<u32>> = std::sync::Arc::new(AuthCache::new(100));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u32 {
                        c.insert(key(&format!("{t}-{}", i % 50)), i, MIN);
                        c.get(&key(&format!("{t}-{}", i % 50)));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(c.len() <= 100);
        assert_eq!(c.hits() + c.misses(), 4000);
    }
}
