//! A secondary index of the registry: key → ids of the live connections filed under it.
//!
//! Sharded like the registry itself so connections of unrelated keys never wait for each
//! other. A key is dropped with its last connection, so the index never holds more entries than
//! there are connections filed in it.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::RwLock;

use portcullis_core::id::ConnectionId;

const SHARDS: usize = 32;

/// A key holds as many ids as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Overflow;

pub(super) struct Index<K> {
    shards: Vec<RwLock<HashMap<K, Vec<ConnectionId>>>>,
    hasher: RandomState,
}

impl<K: Hash + Eq> Index<K> {
    pub(super) fn new() -> Self {
        Index {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, Vec<ConnectionId>>> {
        // `K: Borrow<Q>` guarantees a key and its borrowed form hash alike.
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        &self.shards[i]
    }

    /// File `id` under `key`; `true` when the key is new (its first id).
    pub(super) fn insert(&self, key: K, id: ConnectionId) -> bool {
        let mut shard = self.shard(&key).write().unwrap_or_else(|p| p.into_inner());
        let ids = shard.entry(key).or_default();
        let new = ids.is_empty();
        if !ids.contains(&id) {
            ids.push(id);
        }
        new
    }

    /// File `id` under `key` unless `cap` ids are filed there already; `true` when the key
    /// is new.
    pub(super) fn insert_capped(
        &self,
        key: K,
        id: ConnectionId,
        cap: usize,
    ) -> Result<bool, Overflow> {
        let mut shard = self.shard(&key).write().unwrap_or_else(|p| p.into_inner());
        if let Some(ids) = shard.get_mut(&key) {
            if ids.contains(&id) {
                return Ok(false);
            }
            if ids.len() >= cap {
                return Err(Overflow);
            }
            ids.push(id);
            return Ok(false);
        }
        if cap == 0 {
            return Err(Overflow);
        }
        shard.insert(key, vec![id]);
        Ok(true)
    }

    /// Take `id` out of `key`, dropping the key with its last id; `true` when it was dropped.
    pub(super) fn remove<Q>(&self, key: &Q, id: &ConnectionId) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut shard = self.shard(key).write().unwrap_or_else(|p| p.into_inner());
        let Some(ids) = shard.get_mut(key) else {
            return false;
        };
        if let Some(at) = ids.iter().position(|i| i == id) {
            ids.swap_remove(at);
        }
        if ids.is_empty() {
            shard.remove(key);
            return true;
        } else if ids.capacity() > 2 * ids.len() + 4 {
            // A key that once had many connections gives the memory back as they end.
            ids.shrink_to_fit();
        }
        false
    }

    /// The ids filed under `key`.
    pub(super) fn get<Q>(&self, key: &Q) -> Vec<ConnectionId>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        shard.get(key).cloned().unwrap_or_default()
    }

    /// Every key with an id filed under it.
    pub(super) fn all_keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            all.extend(shard.keys().cloned());
        }
        all
    }

    /// Whether any id is filed under `key`.
    pub(super) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        shard.contains_key(key)
    }

    /// Number of keys (test inspection: an index with no connections has none).
    #[cfg(test)]
    pub(super) fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}
