//! Per-client token buckets for the identity provider's endpoints, in a map of bounded size.
//!
//! A client is its address ([`client_key`]): an IPv4 address, or the /64 network of an IPv6
//! address (one customer's allocation; an attacker holding a /64 would otherwise have 2^64
//! buckets). When the map is full it drops the buckets that carry no information (refilled
//! completely) and then the least recently used ones, so an active client keeps its bucket —
//! a flood of new addresses cannot hand it a fresh burst.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

pub use portcullis_core::client::client_key;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket per client ([`client_key`]), at most `max_entries` of them.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    max_entries: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate_per_second: f64, burst: u32, max_entries: usize) -> Self {
        RateLimiter {
            rate: rate_per_second.max(0.0),
            burst: f64::from(burst.max(1)),
            max_entries: max_entries.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`'s client; false when its bucket is empty.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    pub(crate) fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let key = client_key(ip);
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !buckets.contains_key(&key) && buckets.len() >= self.max_entries {
            self.make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Frees at least one slot of a full map: first the refilled buckets, then the least
    /// recently used ones, down to 7/8 of the bound (so a flood does not scan on every call).
    fn make_room(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
        });
        if buckets.len() < self.max_entries {
            return;
        }
        let keep = (self.max_entries - self.max_entries / 8).saturating_sub(1);
        let mut by_age: Vec<(Instant, IpAddr)> =
            buckets.iter().map(|(k, b)| (b.last, *k)).collect();
        let drop = by_age.len().saturating_sub(keep);
        if drop == 0 {
            return;
        }
        if drop < by_age.len() {
            by_age.select_nth_unstable_by_key(drop - 1, |(last, _)| *last);
        }
        for (_, key) in by_age.iter().take(drop) {
            buckets.remove(key);
        }
    }

    pub fn tracked(&self) -> usize {
        self.buckets.lock().map_or(0, |b| b.len())
    }

    #[cfg(test)]
    fn tracks(&self, ip: IpAddr) -> bool {
        self.buckets
            .lock()
            .is_ok_and(|b| b.contains_key(&client_key(ip)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_empties_and_refills_and_map_is_bounded() {
        let limiter = RateLimiter::new(1.0, 2, 3);
        let ip = ip("10.0.0.1");
        let t0 = Instant::now();
        assert!(limiter.allow_at(ip, t0));
        assert!(limiter.allow_at(ip, t0));
        assert!(!limiter.allow_at(ip, t0));
        assert!(limiter.allow_at(ip, t0 + Duration::from_secs(1)));
        for i in 0..10u8 {
            limiter.allow_at(IpAddr::from([10, 0, 1, i]), t0);
            assert!(limiter.tracked() <= 3);
        }
    }

    #[test]
    fn addresses_of_one_ipv6_64_share_a_bucket() {
        let limiter = RateLimiter::new(1.0, 2, 100);
        let t0 = Instant::now();
        assert!(limiter.allow_at(ip("2001:db8:0:1::1"), t0));
        assert!(limiter.allow_at(ip("2001:db8:0:1::2"), t0));
        // a third address of the same /64: the shared bucket is empty
        assert!(!limiter.allow_at(ip("2001:db8:0:1:ffff::3"), t0));
        assert_eq!(limiter.tracked(), 1);
        // the next /64 is another client
        assert!(limiter.allow_at(ip("2001:db8:0:2::1"), t0));
        assert_eq!(limiter.tracked(), 2);
    }

    #[test]
    fn a_flood_of_new_addresses_neither_resets_an_active_client_nor_clears_the_table() {
        let max = 16;
        let limiter = RateLimiter::new(0.001, 2, max);
        let t0 = Instant::now();
        let at = |step: u64| t0 + Duration::from_millis(step);
        let active = ip("10.9.9.9");
        assert!(limiter.allow_at(active, at(0)));
        assert!(limiter.allow_at(active, at(1)));
        assert!(!limiter.allow_at(active, at(2)), "burst used up");
        let mut step = 3;
        for i in 0..1000u32 {
            let [_, _, a, b] = i.to_be_bytes();
            assert!(limiter.allow_at(IpAddr::from([10, 1, a, b]), at(step)));
            step += 1;
            assert!(limiter.tracked() <= max);
            if i % 4 == 0 {
                // the active client keeps trying: never a fresh burst
                assert!(
                    !limiter.allow_at(active, at(step)),
                    "reset after {i} new addresses"
                );
                step += 1;
            }
        }
        // the newest entries were kept, not the whole table cleared
        assert!(limiter.tracked() >= max - max / 8, "{}", limiter.tracked());
        assert!(
            limiter.tracks(IpAddr::from([10, 1, 3, 231])),
            "the newest (999)"
        );
        assert!(limiter.tracks(active));
        assert!(!limiter.tracks(IpAddr::from([10, 1, 0, 0])), "the oldest");
    }
}
