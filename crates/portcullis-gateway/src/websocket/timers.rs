//! The deadlines of one connection, WebSocket or SSE: the idle timeout, the maximum duration
//! and the next ping (a WebSocket ping frame, an SSE heartbeat). Pure: times are passed in, so
//! the session needs one timer, set for whichever comes first.

use std::time::Duration;

use tokio::time::Instant;

/// What the connection's single timer is waiting for.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    MaxDuration,
    Idle,
    Ping,
}

/// The deadlines of one connection (pure: times are passed in).
pub struct Timers {
    idle_timeout: Duration,
    idle_at: Instant,
    max_at: Instant,
    ping_every: Option<Duration>,
    ping_at: Option<Instant>,
}

impl Timers {
    pub fn new(
        now: Instant,
        idle_timeout: Duration,
        max_duration: Duration,
        ping_every: Duration,
    ) -> Self {
        let ping_every = (!ping_every.is_zero()).then_some(ping_every);
        Timers {
            idle_timeout,
            idle_at: now + idle_timeout,
            max_at: now + max_duration,
            ping_every,
            ping_at: ping_every.map(|p| now + p),
        }
    }

    /// A data frame went either way.
    pub fn active(&mut self, now: Instant) {
        self.idle_at = now + self.idle_timeout;
    }

    /// The earliest deadline.
    pub fn next(&self) -> Instant {
        let first = self.idle_at.min(self.max_at);
        self.ping_at.map_or(first, |p| first.min(p))
    }

    /// What is due at `now` (the most important first); schedules the next ping.
    pub fn due(&mut self, now: Instant) -> Option<Due> {
        if now >= self.max_at {
            return Some(Due::MaxDuration);
        }
        if now >= self.idle_at {
            return Some(Due::Idle);
        }
        if let (Some(at), Some(every)) = (self.ping_at, self.ping_every)
            && now >= at
        {
            self.ping_at = Some(now + every);
            return Some(Due::Ping);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timer_serves_idle_max_duration_and_pings() {
        let start = Instant::now();
        let mut t = Timers::new(
            start,
            Duration::from_secs(10),
            Duration::from_secs(25),
            Duration::from_secs(3),
        );
        assert_eq!(t.next(), start + Duration::from_secs(3));
        assert_eq!(t.due(start + Duration::from_secs(1)), None);
        assert_eq!(t.due(start + Duration::from_secs(3)), Some(Due::Ping));
        // The next ping is scheduled from when the last one went out.
        assert!(t.next() >= start + Duration::from_secs(5));
        assert_eq!(t.due(start + Duration::from_secs(10)), Some(Due::Idle));
        t.active(start + Duration::from_secs(10));
        assert_eq!(t.due(start + Duration::from_secs(10)), Some(Due::Ping));
        assert_eq!(t.due(start + Duration::from_secs(11)), None);
        assert_eq!(
            t.due(start + Duration::from_secs(26)),
            Some(Due::MaxDuration)
        );
    }

    #[test]
    fn pings_can_be_disabled() {
        let start = Instant::now();
        let mut t = Timers::new(
            start,
            Duration::from_secs(10),
            Duration::from_secs(25),
            Duration::ZERO,
        );
        assert_eq!(t.due(start + Duration::from_secs(9)), None);
        assert_eq!(t.next(), start + Duration::from_secs(10));
    }
}
