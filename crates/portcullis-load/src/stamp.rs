//! The payload a fan-out publisher sends and every receiver checks: which publisher, its
//! sequence number and the send time, so receivers can measure publish-to-receive latency and
//! see reordering or missing deliveries without parsing JSON on the hot path.
//!
//! Wire form (valid JSON, fixed field order): `{"p":3,"s":17,"t":1764700000123456789,"x":"…"}`
//! where `t` is nanoseconds since the Unix epoch and `x` pads the payload to the asked size.

use std::time::{SystemTime, UNIX_EPOCH};

/// What a receiver reads back from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

/// Nanoseconds since the Unix epoch (all processes of a run share this machine's clock).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The payload for `stamp`, padded with `x` up to `size` bytes when it is shorter.
pub fn encode(stamp: Stamp, size: usize) -> String {
    let head = format!(
        "{{\"p\":{},\"s\":{},\"t\":{}",
        stamp.publisher, stamp.seq, stamp.sent_ns
    );
    // `,"x":""}` is 8 bytes: padding is added only when it fits.
    let Some(pad) = size.checked_sub(head.len() + 8) else {
        return head + "}";
    };
    let mut out = String::with_capacity(size);
    out.push_str(&head);
    out.push_str(",\"x\":\"");
    out.extend(std::iter::repeat_n('x', pad));
    out.push_str("\"}");
    out
}

/// Reads a payload made by [`encode`]; `None` for anything else.
pub fn decode(text: &str) -> Option<Stamp> {
    let rest = text.strip_prefix("{\"p\":")?;
    let (publisher, rest) = number(rest)?;
    let rest = rest.strip_prefix(",\"s\":")?;
    let (seq, rest) = number(rest)?;
    let rest = rest.strip_prefix(",\"t\":")?;
    let (sent_ns, rest) = number(rest)?;
    if !(rest.starts_with('}') || rest.starts_with(',')) {
        return None;
    }
    Some(Stamp {
        publisher: u32::try_from(publisher).ok()?,
        seq,
        sent_ns,
    })
}

/// Leading decimal digits (at least one, no overflow) and what follows them.
fn number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for b in s[..end].bytes() {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((value, &s[end..]))
}

/// One receiver's view of each publisher's sequence: publishers number their payloads 1, 2, 3…
/// and a receiver subscribed before the first publish must see them in that order.
#[derive(Debug, Clone, Default)]
pub struct Order {
    last: Vec<u64>,
}

/// What a delivery says about the order of one publisher's payloads at one receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The next one.
    InOrder,
    /// Later than the next one: this many before it never arrived (skipped or lost).
    AfterGap(u64),
    /// Not later than one already seen: out of order or a duplicate.
    Reordered,
}

impl Order {
    /// `publishers` is how many publishers number payloads (more are tracked as they appear,
    /// up to [`MAX_PUBLISHERS`]).
    pub fn new(publishers: usize) -> Self {
        Order {
            last: vec![0; publishers.min(MAX_PUBLISHERS)],
        }
    }

    pub fn see(&mut self, publisher: u32, seq: u64) -> Seen {
        let i = publisher as usize;
        if i >= MAX_PUBLISHERS {
            return Seen::Reordered;
        }
        if i >= self.last.len() {
            self.last.resize(i + 1, 0);
        }
        let last = self.last[i];
        if seq <= last {
            return Seen::Reordered;
        }
        self.last[i] = seq;
        match seq - last - 1 {
            0 => Seen::InOrder,
            missing => Seen::AfterGap(missing),
        }
    }
}

impl Order {
    /// How many of `publisher`'s payloads numbered up to `last_sent` came after the last one
    /// seen here: missing at the end of a run, where no later payload shows the gap.
    pub fn behind(&self, publisher: usize, last_sent: u64) -> u64 {
        last_sent.saturating_sub(self.last.get(publisher).copied().unwrap_or(0))
    }
}

/// Most publishers a receiver tracks (the payload's `p` is attacker-free here, but bounded).
pub const MAX_PUBLISHERS: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_size() {
        let stamp = Stamp {
            publisher: 3,
            seq: 17,
            sent_ns: 1_764_700_000_123_456_789,
        };
        for size in [0, 10, 40, 48, 49, 50, 64, 1000] {
            let text = encode(stamp, size);
            assert!(
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "{text}"
            );
            // The stamp alone is 38 bytes; padding makes it exactly `size` from 46 on.
            if size >= 46 {
                assert_eq!(text.len(), size, "{text}");
            } else {
                assert_eq!(text.len(), 38, "{text}");
            }
            assert_eq!(decode(&text), Some(stamp), "{text}");
        }
    }

    #[test]
    fn refuses_other_payloads() {
        assert_eq!(decode("pong"), None);
        assert_eq!(decode(r#"{"p":1,"s":2}"#), None);
        assert_eq!(decode(r#"{"p":1,"s":2,"t":}"#), None);
        assert_eq!(decode(r#"{"p":1,"s":2,"t":3x}"#), None);
        assert_eq!(decode(r#"{"p":1,"s":99999999999999999999999,"t":3}"#), None);
        assert_eq!(decode(r#"{"p":99999999999,"s":1,"t":3}"#), None);
    }

    #[test]
    fn order_per_publisher() {
        let mut order = Order::new(2);
        assert_eq!(order.see(0, 1), Seen::InOrder);
        assert_eq!(order.see(1, 1), Seen::InOrder);
        assert_eq!(order.see(0, 2), Seen::InOrder);
        assert_eq!(order.see(0, 5), Seen::AfterGap(2));
        assert_eq!(order.see(0, 4), Seen::Reordered);
        assert_eq!(order.see(0, 5), Seen::Reordered);
        assert_eq!(order.see(1, 2), Seen::InOrder);
        assert_eq!(order.see(7, 1), Seen::InOrder);
        assert_eq!(order.see(5000, 1), Seen::Reordered);
        assert_eq!(order.behind(0, 7), 2);
        assert_eq!(order.behind(1, 2), 0);
        assert_eq!(order.behind(3, 4), 4);
    }
}
