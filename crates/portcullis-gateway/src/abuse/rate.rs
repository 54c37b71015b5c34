//! Rates: new sessions per client address (one table for the listener, bounded) and messages
//! per connection (one bucket each, no table). Both are token buckets whose burst is the rate:
//! a client may use a whole second's allowance at once, then one more every `1/rate` seconds.

use std::net::IpAddr;
use std::sync::Mutex;

use portcullis_core::client::client_key;
use portcullis_core::throttle::{KeyedBuckets, TokenBucket};
use tokio::time::Instant;

/// Client addresses (IPv6: /64 networks) the connect-rate table tracks at most. A bucket that
/// has refilled is forgotten first (that changes no decision); when every tracked address is
/// mid-burst, the least recently seen go. About 60 bytes each: a few MB at worst.
pub const MAX_TRACKED: usize = 50_000;

/// `server.connect_rate_per_ip`: new WebSocket connections and SSE streams per second per
/// client address.
pub struct ConnectRate {
    buckets: Mutex<KeyedBuckets<IpAddr>>,
    epoch: Instant,
}

impl ConnectRate {
    /// `None` for a rate of 0 (no limit).
    pub fn new(per_second: u32) -> Option<ConnectRate> {
        ConnectRate::bounded(per_second, MAX_TRACKED)
    }

    fn bounded(per_second: u32, max_tracked: usize) -> Option<ConnectRate> {
        (per_second > 0).then(|| ConnectRate {
            buckets: Mutex::new(KeyedBuckets::new(
                f64::from(per_second),
                per_second,
                max_tracked,
            )),
            epoch: Instant::now(),
        })
    }

    /// Whether `ip` may open one more session now (and if so, it is counted).
    pub fn try_take(&self, ip: IpAddr) -> bool {
        self.take_at(ip, self.epoch.elapsed().as_secs_f64())
    }

    fn take_at(&self, ip: IpAddr, now_secs: f64) -> bool {
        let key = client_key(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.try_take(&key, now_secs)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// `websocket.NAME.message_rate`: one connection's inbound messages per second.
pub struct MessageRate {
    bucket: Option<TokenBucket>,
    epoch: Instant,
}

impl MessageRate {
    /// A full allowance; a rate of 0 allows everything.
    pub fn new(per_second: u32) -> MessageRate {
        MessageRate {
            bucket: (per_second > 0)
                .then(|| TokenBucket::new(f64::from(per_second), per_second, 0.0)),
            epoch: Instant::now(),
        }
    }

    /// Whether one more message may be handled now (and if so, it is counted).
    pub fn allow(&mut self) -> bool {
        self.allow_at(self.epoch.elapsed().as_secs_f64())
    }

    fn allow_at(&mut self, now_secs: f64) -> bool {
        self.bucket.as_mut().is_none_or(|b| b.try_take(now_secs))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_of_the_rate_then_one_per_interval() {
        let rate = ConnectRate::new(2).unwrap();
        let a = ip("192.0.2.1");
        assert!(rate.take_at(a, 0.0));
        assert!(rate.take_at(a, 0.0));
        assert!(!rate.take_at(a, 0.1), "the third within the second");
        assert!(rate.take_at(ip("192.0.2.2"), 0.1), "another address");
        assert!(rate.take_at(a, 0.6), "one more after half a second");
        assert!(!rate.take_at(a, 0.6));
        assert!(ConnectRate::new(0).is_none(), "0: no limit");
    }

    #[test]
    fn one_ipv6_network_shares_one_allowance() {
        let rate = ConnectRate::new(1).unwrap();
        assert!(rate.take_at(ip("2001:db8::1"), 0.0));
        assert!(!rate.take_at(ip("2001:db8::ffff:1"), 0.0), "same /64");
        assert!(rate.take_at(ip("2001:db8:0:1::1"), 0.0), "another /64");
        assert!(rate.take_at(ip("192.0.2.9"), 0.0));
        assert!(
            !rate.take_at(ip("::ffff:192.0.2.9"), 0.0),
            "a mapped address is IPv4"
        );
    }

    #[test]
    fn a_flood_of_distinct_addresses_stays_within_the_bound() {
        let rate = ConnectRate::bounded(5, 1000).unwrap();
        let victim = ip("192.0.2.1");
        for _ in 0..5 {
            assert!(rate.take_at(victim, 0.0));
        }
        // 200,000 addresses, each once, over ten seconds: IPv4 addresses and IPv6 networks.
        for i in 0u32..200_000 {
            let now = f64::from(i) / 20_000.0;
            let address = if i % 2 == 0 {
                IpAddr::from((0x0a00_0000u32 + i).to_be_bytes())
            } else {
                IpAddr::from((u128::from(i) << 64 | 0x2001_0db8 << 96).to_be_bytes())
            };
            assert!(rate.take_at(address, now), "a new address has its burst");
            assert!(rate.tracked() <= 1000, "at {i}: {}", rate.tracked());
        }
        // The rate still holds for an address seen now.
        let late = ip("198.51.100.1");
        for _ in 0..5 {
            assert!(rate.take_at(late, 10.0));
        }
        assert!(!rate.take_at(late, 10.0));
    }

    #[tokio::test]
    async fn messages_over_the_rate_are_refused_until_it_refills() {
        let mut rate = MessageRate::new(3);
        assert!((0..3).all(|_| rate.allow_at(0.0)));
        assert!(!rate.allow_at(0.1));
        assert!(rate.allow_at(0.34), "one more a third of a second later");
        assert!(!rate.allow_at(0.34));
        let mut unlimited = MessageRate::new(0);
        assert!((0..10_000).all(|_| unlimited.allow()));
    }
}
