//! A token bucket for the RTP sender: at most `rate` bytes per second on average. The sender
//! may run up to [`AHEAD`] ahead of the rate before it sleeps, and what a late wake-up costs
//! is made up by the next sends (up to [`CREDIT`] of them), so the average holds on a busy
//! machine whose sleeps overshoot; the receiver's socket buffer (8 MiB by default, 20 ms at
//! 400 MB/s) takes the bursts.

use std::time::{Duration, Instant};

/// How far ahead of the rate the sender may get before it sleeps.
pub const AHEAD: Duration = Duration::from_millis(1);
/// How much sending time a late or idle sender may make up.
pub const CREDIT: Duration = Duration::from_millis(2);

/// Pacing state.
#[derive(Debug)]
pub struct Pacer {
    /// Bytes per second; `None`: unpaced.
    rate: Option<f64>,
    /// When the bytes booked so far are paid for.
    paid_until: Option<Instant>,
}

impl Pacer {
    pub fn new(rate: Option<f64>) -> Self {
        Pacer {
            rate: rate.filter(|r| *r > 0.0),
            paid_until: None,
        }
    }

    /// Books `bytes` sent at `now`; returns how long to sleep first (zero if allowed now).
    pub fn book(&mut self, now: Instant, bytes: usize) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let floor = now.checked_sub(CREDIT).unwrap_or(now);
        let start = self.paid_until.map_or(now, |p| p.max(floor));
        let wait = start.saturating_duration_since(now);
        self.paid_until = Some(start + Duration::from_secs_f64(bytes as f64 / rate));
        if wait > AHEAD {
            wait
        } else {
            Duration::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_holds_and_bursts_stay_short() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(1e6)); // 1 MB/s: 10 KB take 10 ms
        assert_eq!(p.book(t0, 10_000), Duration::ZERO);
        assert_eq!(p.book(t0, 10_000), Duration::from_millis(10));
        // Woken 5 ms late: the next send goes at once, the one after waits less.
        let late = t0 + Duration::from_millis(25);
        assert_eq!(p.book(late, 1_000), Duration::ZERO);
        assert_eq!(p.book(late, 1_000), Duration::ZERO, "within the credit");
        // Idle time earns at most CREDIT.
        let idle = t0 + Duration::from_secs(1);
        assert_eq!(p.book(idle, 2_000), Duration::ZERO);
        assert_eq!(p.book(idle, 1_000), Duration::ZERO);
        assert_eq!(
            p.book(idle, 10_000),
            Duration::ZERO,
            "1 ms ahead: not yet a sleep"
        );
        assert_eq!(p.book(idle, 1_000), Duration::from_millis(11));
        assert_eq!(Pacer::new(None).book(t0, 1 << 30), Duration::ZERO);
    }
}
