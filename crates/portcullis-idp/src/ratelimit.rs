//! Per-client-IP token buckets for the token endpoint, in a map of bounded size.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket per IP. When the map is full, buckets that have refilled completely (i.e.
/// carry no information) are dropped; if that frees nothing, the map is cleared — the limiter
/// then briefly forgets, which is preferable to refusing every new address.
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

    /// Takes one token for `ip`; false when its bucket is empty.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    pub(crate) fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !buckets.contains_key(&ip) && buckets.len() >= self.max_entries {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
            });
            if buckets.len() >= self.max_entries {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
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

    pub fn tracked(&self) -> usize {
        self.buckets.lock().map_or(0, |b| b.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_empties_and_refills_and_map_is_bounded() {
        let limiter = RateLimiter::new(1.0, 2, 3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
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
}
