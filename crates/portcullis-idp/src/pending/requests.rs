//! The table of pending sign-in requests (what `/oauth2/authorize` leaves for the hosted page),
//! bounded so that nobody can crowd everybody else out of signing in. This module does no I/O.
//!
//! Rules, with the clock passed in (`now`, unix seconds):
//! - an entry lives [`PendingLimits::ttl_secs`]; expired entries are dropped first;
//! - one client ([`crate::ratelimit::client_key`]: an IPv4 address or an IPv6 /64) holds at
//!   most [`PendingLimits::per_client`] entries in a pool; beyond that its new requests are
//!   refused ([`PendingError::ClientFull`](super::PendingError::ClientFull)) — its own earlier requests are not touched;
//! - a pool holds at most [`PendingLimits::per_pool`], the whole table
//!   [`PendingLimits::total`]; when either is full, the oldest entry of the client holding the
//!   most entries (in that pool, or overall) makes room. A flood therefore evicts the flooders'
//!   requests before a user's single one, and never refuses a newcomer.
//!
//! Entries whose client is not known (`None`: no address, or addresses that mean nothing
//! behind a proxy) share one holder per pool and have no per-client cap.
//!
//! The identity store keeps the requests (so the login form may reach another gateway node
//! than the authorization request) and applies these rules in SQL; `PendingTable` is their
//! in-memory model, which the tests drive.

#[cfg(test)]
use std::collections::{BTreeMap, HashMap};
#[cfg(test)]
use std::net::IpAddr;

use super::PENDING_TTL_SECS;
#[cfg(test)]
use super::PendingError;

/// Most pending sign-in requests of one client address (IPv4) or IPv6 /64 in a pool.
pub const PENDING_PER_CLIENT: usize = 20;
/// Most pending sign-in requests of one pool.
pub const PENDING_PER_POOL: usize = 10_000;
/// Most pending sign-in requests in all.
pub const PENDING_TOTAL: usize = 20_000;

/// The bounds of the pending sign-in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    pub per_client: usize,
    pub per_pool: usize,
    pub total: usize,
    pub ttl_secs: i64,
}

impl PendingLimits {
    /// The limits with every bound at least 1.
    pub fn sane(self) -> PendingLimits {
        PendingLimits {
            per_client: self.per_client.max(1),
            per_pool: self.per_pool.max(1),
            total: self.total.max(1),
            ttl_secs: self.ttl_secs.max(1),
        }
    }

    /// When an entry inserted at `now` expires.
    pub fn expiry(&self, now: i64) -> i64 {
        now.saturating_add(self.ttl_secs)
    }
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            per_client: PENDING_PER_CLIENT,
            per_pool: PENDING_PER_POOL,
            total: PENDING_TOTAL,
            ttl_secs: PENDING_TTL_SECS,
        }
    }
}

#[cfg(test)]
type Client = Option<IpAddr>;

#[cfg(test)]
#[derive(Debug)]
struct Entry<T> {
    value: T,
    pool: String,
    client: Client,
    seq: u64,
    expires_at: i64,
}

#[cfg(test)]
/// Pending requests by id, with the bookkeeping of the rules above.
#[derive(Debug)]
pub struct PendingTable<T> {
    limits: PendingLimits,
    entries: HashMap<String, Entry<T>>,
    /// Ids in insertion order (oldest first).
    order: BTreeMap<u64, String>,
    /// Per pool and client: ids in insertion order.
    holders: HashMap<(String, Client), BTreeMap<u64, String>>,
    per_pool: HashMap<String, usize>,
    next_seq: u64,
}

#[cfg(test)]
impl<T> Default for PendingTable<T> {
    fn default() -> Self {
        Self::new(PendingLimits::default())
    }
}

#[cfg(test)]
impl<T> PendingTable<T> {
    pub fn new(limits: PendingLimits) -> Self {
        PendingTable {
            limits: Self::sane(limits),
            entries: HashMap::new(),
            order: BTreeMap::new(),
            holders: HashMap::new(),
            per_pool: HashMap::new(),
            next_seq: 0,
        }
    }

    fn sane(limits: PendingLimits) -> PendingLimits {
        limits.sane()
    }

    /// Changes the bounds; they apply from the next insertion on.
    pub fn set_limits(&mut self, limits: PendingLimits) {
        self.limits = Self::sane(limits);
    }

    pub fn limits(&self) -> PendingLimits {
        self.limits
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries held by `client` (already keyed) in `pool`.
    pub fn held_by(&self, pool: &str, client: Client) -> usize {
        self.holders
            .get(&(pool.to_owned(), client))
            .map_or(0, BTreeMap::len)
    }

    /// When an entry inserted at `now` expires.
    pub fn expiry(&self, now: i64) -> i64 {
        now.saturating_add(self.limits.ttl_secs)
    }

    /// Adds `value` under `id` for `pool` and `client` (already keyed); returns how many
    /// entries were evicted to make room.
    pub fn insert(
        &mut self,
        id: String,
        pool: &str,
        client: Client,
        value: T,
        now: i64,
    ) -> Result<usize, PendingError> {
        self.expire(now);
        self.remove(&id);
        if client.is_some() && self.held_by(pool, client) >= self.limits.per_client {
            return Err(PendingError::ClientFull);
        }
        let mut evicted = 0;
        while self.per_pool.get(pool).copied().unwrap_or(0) >= self.limits.per_pool
            && self.evict_one(Some(pool))
        {
            evicted += 1;
        }
        while self.entries.len() >= self.limits.total && self.evict_one(None) {
            evicted += 1;
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.order.insert(seq, id.clone());
        self.holders
            .entry((pool.to_owned(), client))
            .or_default()
            .insert(seq, id.clone());
        *self.per_pool.entry(pool.to_owned()).or_insert(0) += 1;
        let expires_at = self.expiry(now);
        self.entries.insert(
            id,
            Entry {
                value,
                pool: pool.to_owned(),
                client,
                seq,
                expires_at,
            },
        );
        Ok(evicted)
    }

    /// The live entry `id` of `pool` (an expired one is dropped).
    pub fn get(&mut self, pool: &str, id: &str, now: i64) -> Option<&T> {
        self.get_mut(pool, id, now).map(|v| &*v)
    }

    /// The live entry `id` of `pool`, to change (an expired one is dropped).
    pub fn get_mut(&mut self, pool: &str, id: &str, now: i64) -> Option<&mut T> {
        let expired = self.entries.get(id)?.expires_at <= now;
        if expired {
            self.remove(id);
            return None;
        }
        self.entries
            .get_mut(id)
            .filter(|e| e.pool == pool)
            .map(|e| &mut e.value)
    }

    /// Removes and returns the live entry `id` of `pool`.
    pub fn take(&mut self, pool: &str, id: &str, now: i64) -> Option<T> {
        let entry = self.entries.get(id)?;
        if entry.pool != pool {
            return None;
        }
        let live = now < entry.expires_at;
        let value = self.remove(id)?;
        live.then_some(value)
    }

    /// Drops the expired entries (oldest first; stops at the first live one).
    pub fn expire(&mut self, now: i64) {
        while let Some((_, id)) = self.order.first_key_value() {
            let expired = self.entries.get(id).is_none_or(|e| e.expires_at <= now);
            if !expired {
                break;
            }
            let id = id.clone();
            if self.remove(&id).is_none() {
                self.order.pop_first();
            }
        }
    }

    /// Evicts the oldest entry of the client holding the most (in `pool`, or anywhere).
    fn evict_one(&mut self, pool: Option<&str>) -> bool {
        let victim = self
            .holders
            .iter()
            .filter(|((p, _), _)| pool.is_none_or(|pool| p == pool))
            .filter_map(|(_, ids)| ids.first_key_value().map(|(seq, id)| (ids.len(), *seq, id)))
            // most entries first, then the oldest
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, _, id)| id.clone());
        match victim {
            Some(id) => self.remove(&id).is_some(),
            None => false,
        }
    }

    fn remove(&mut self, id: &str) -> Option<T> {
        let entry = self.entries.remove(id)?;
        self.order.remove(&entry.seq);
        let key = (entry.pool, entry.client);
        if let Some(ids) = self.holders.get_mut(&key) {
            ids.remove(&entry.seq);
            if ids.is_empty() {
                self.holders.remove(&key);
            }
        }
        decrement(&mut self.per_pool, &key.0);
        Some(entry.value)
    }
}

#[cfg(test)]
fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Client {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    fn limits(per_client: usize, per_pool: usize, total: usize) -> PendingLimits {
        PendingLimits {
            per_client,
            per_pool,
            total,
            ttl_secs: 600,
        }
    }

    /// Checks the bookkeeping agrees with the entries.
    fn consistent<T>(t: &PendingTable<T>) {
        assert_eq!(t.order.len(), t.entries.len());
        assert_eq!(
            t.holders.values().map(BTreeMap::len).sum::<usize>(),
            t.entries.len()
        );
        assert_eq!(t.per_pool.values().sum::<usize>(), t.entries.len());
        assert!(t.entries.len() <= t.limits.total);
    }

    #[test]
    fn insert_lookup_take_and_expire() {
        let mut t = PendingTable::new(limits(5, 10, 10));
        t.insert("a".into(), "main", ip(1), 1, 100).unwrap();
        assert_eq!(t.get("main", "a", 100), Some(&1));
        assert_eq!(t.get("other", "a", 100), None, "another pool's id");
        assert_eq!(t.get("main", "a", 699), Some(&1));
        if let Some(v) = t.get_mut("main", "a", 699) {
            *v = 2;
        }
        assert_eq!(t.take("other", "a", 699), None);
        assert_eq!(t.take("main", "a", 699), Some(2));
        assert_eq!(t.take("main", "a", 699), None, "taken once");
        t.insert("b".into(), "main", ip(1), 3, 100).unwrap();
        assert_eq!(t.get("main", "b", 700), None, "expired at ttl");
        assert!(t.is_empty(), "and dropped");
        t.insert("c".into(), "main", ip(1), 4, 100).unwrap();
        assert_eq!(t.take("main", "c", 700), None, "expired");
        assert!(t.is_empty());
        consistent(&t);
    }

    #[test]
    fn a_client_at_its_cap_is_refused_and_keeps_its_requests() {
        let mut t = PendingTable::new(limits(3, 100, 100));
        for i in 0..3 {
            t.insert(format!("a{i}"), "main", ip(1), i, 100).unwrap();
        }
        assert_eq!(
            t.insert("a3".into(), "main", ip(1), 3, 100),
            Err(PendingError::ClientFull)
        );
        assert_eq!(t.held_by("main", ip(1)), 3);
        // in each pool apart
        t.insert("a4".into(), "other", ip(1), 4, 100).unwrap();
        assert_eq!(t.get("main", "a0", 100), Some(&0));
        // another client is not affected
        t.insert("b0".into(), "main", ip(2), 0, 100).unwrap();
        // a taken request frees a place
        t.take("main", "a1", 100).unwrap();
        t.insert("a5".into(), "main", ip(1), 5, 100).unwrap();
        // and so does expiry
        assert_eq!(
            t.insert("a6".into(), "main", ip(1), 6, 100),
            Err(PendingError::ClientFull)
        );
        t.insert("a7".into(), "main", ip(1), 7, 700).unwrap();
        assert_eq!(t.held_by("main", ip(1)), 1);
        consistent(&t);
    }

    #[test]
    fn unknown_addresses_have_no_client_cap() {
        let mut t = PendingTable::new(limits(1, 100, 100));
        for i in 0..10 {
            t.insert(format!("n{i}"), "main", None, i, 100).unwrap();
        }
        assert_eq!(t.len(), 10);
    }

    #[test]
    fn a_full_pool_evicts_the_heaviest_holders_oldest_not_a_single_users_request() {
        let mut t = PendingTable::new(limits(4, 8, 100));
        // a user's one request, then a flood from many addresses
        t.insert("user".into(), "main", ip(200), 0, 100).unwrap();
        // (fewer flooding addresses than places: each holds more than the user)
        let (mut served, mut refused) = (0, 0);
        for n in 0..6u8 {
            for i in 0..6 {
                match t.insert(format!("f{n}-{i}"), "main", ip(n), 1, 101 + i64::from(n)) {
                    Ok(_) => served += 1,
                    Err(PendingError::ClientFull) => refused += 1,
                    Err(other) => panic!("only the client cap refuses: {other}"),
                }
                assert!(t.per_pool.get("main").copied().unwrap_or(0) <= 8);
            }
        }
        assert!(served > 8, "the full pool made room: {served}");
        assert!(refused > 0, "flooders beyond their cap of 4");
        assert_eq!(
            t.get("main", "user", 200),
            Some(&0),
            "the user's request stays"
        );
        assert_eq!(t.len(), 8);
        consistent(&t);
    }

    #[test]
    fn eviction_takes_the_largest_holders_oldest_then_the_oldest() {
        let mut t = PendingTable::new(limits(4, 4, 100));
        t.insert("a".into(), "main", ip(1), 0, 100).unwrap();
        t.insert("b".into(), "main", ip(2), 0, 101).unwrap();
        t.insert("c".into(), "main", ip(3), 0, 102).unwrap();
        t.insert("d".into(), "main", ip(3), 0, 103).unwrap();
        // ip 3 holds two: its older one goes, not the oldest overall
        assert_eq!(t.insert("e".into(), "main", ip(4), 0, 104), Ok(1));
        assert_eq!(t.get("main", "c", 104), None);
        for kept in ["a", "b", "d", "e"] {
            assert!(t.get("main", kept, 104).is_some(), "{kept}");
        }
        // all hold one: the oldest goes
        assert_eq!(t.insert("f".into(), "main", ip(5), 0, 105), Ok(1));
        assert_eq!(t.get("main", "a", 105), None);
        for kept in ["b", "d", "e", "f"] {
            assert!(t.get("main", kept, 105).is_some(), "{kept}");
        }
        consistent(&t);
    }

    #[test]
    fn pools_are_bounded_apart_and_the_total_too() {
        let mut t = PendingTable::new(limits(100, 5, 8));
        for i in 0..5 {
            t.insert(format!("m{i}"), "main", ip(1), 0, 100).unwrap();
        }
        // a full pool evicts only in itself
        t.insert("o0".into(), "other", ip(1), 0, 100).unwrap();
        t.insert("m5".into(), "main", ip(1), 0, 100).unwrap();
        assert_eq!(t.per_pool.get("main"), Some(&5));
        assert!(t.get("other", "o0", 100).is_some());
        // the total: 8 over both pools
        for i in 1..5 {
            t.insert(format!("o{i}"), "other", ip(2), 0, 100).unwrap();
        }
        assert_eq!(t.len(), 8);
        consistent(&t);
    }

    #[test]
    fn expired_entries_make_room_before_anything_is_evicted() {
        let mut t = PendingTable::new(limits(100, 3, 3));
        t.insert("a".into(), "main", ip(1), 0, 100).unwrap();
        t.insert("b".into(), "main", ip(1), 0, 200).unwrap();
        t.insert("c".into(), "main", ip(1), 0, 300).unwrap();
        assert_eq!(t.insert("d".into(), "main", ip(1), 0, 700), Ok(0));
        assert!(t.get("main", "b", 700).is_some());
        assert_eq!(t.len(), 3);
        consistent(&t);
    }

    #[test]
    fn reinserting_an_id_replaces_it() {
        let mut t = PendingTable::new(limits(2, 10, 10));
        t.insert("a".into(), "main", ip(1), 0, 100).unwrap();
        t.insert("a".into(), "main", ip(1), 1, 100).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.held_by("main", ip(1)), 1);
        assert_eq!(t.get("main", "a", 100), Some(&1));
        consistent(&t);
    }
}
