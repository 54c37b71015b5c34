//! A fixed-size log-linear latency histogram (≈1.6 % resolution), one per worker, merged at the
//! end: recording is an array increment, with no allocation and no shared state.

use std::time::Duration;

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS; // 64
/// Values below `2 * SUB` ns are exact; above, each power of two has `SUB` buckets.
const BUCKETS: usize = (64 - SUB_BITS as usize) * SUB + 2 * SUB;

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max_ns: 0,
        }
    }

    fn index(ns: u64) -> usize {
        if ns < (2 * SUB) as u64 {
            return ns as usize;
        }
        let msb = 63 - ns.leading_zeros();
        let shift = msb - SUB_BITS;
        let mantissa = (ns >> shift) as usize; // in [SUB, 2*SUB)
        shift as usize * SUB + mantissa
    }

    /// Midpoint of the bucket's value range, in nanoseconds.
    fn value(index: usize) -> u64 {
        if index < 2 * SUB {
            return index as u64;
        }
        let shift = (index / SUB - 1) as u32;
        let mantissa = (index - shift as usize * SUB) as u64;
        let low = mantissa << shift;
        low + ((1u64 << shift) >> 1)
    }

    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += *b;
        }
        self.total += other.total;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q`-quantile (0.0–1.0), or zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(Self::value(i).min(self.max_ns));
            }
        }
        Duration::from_nanos(self.max_ns)
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }
}

/// Microseconds with two decimals, for reports.
pub fn micros(d: Duration) -> f64 {
    (d.as_nanos() as f64 / 10.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_monotonic_and_value_close() {
        let mut last = 0;
        for ns in (0..1_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
            let i = Histogram::index(ns);
            assert!(i >= last, "index not monotonic at {ns}");
            assert!(i < BUCKETS);
            last = i;
            let v = Histogram::value(i) as f64;
            assert!(
                (v - ns as f64).abs() <= ns as f64 * 0.02 + 1.0,
                "{ns} -> {v}"
            );
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_nanos() as f64;
        assert!((p50 - 50_000.0).abs() < 1_000.0, "{p50}");
        let p99 = h.quantile(0.99).as_nanos() as f64;
        assert!((p99 - 99_000.0).abs() < 2_000.0, "{p99}");
        let mut other = Histogram::new();
        other.record(Duration::from_secs(1));
        h.merge(&other);
        assert_eq!(h.count(), 101);
        assert_eq!(h.max(), Duration::from_secs(1));
        assert_eq!(Histogram::new().quantile(0.5), Duration::ZERO);
    }
}
