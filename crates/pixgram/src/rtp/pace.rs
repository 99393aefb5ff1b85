//! A token bucket for the RTP sender: at most `rate` bytes per second on average. The sender
//! may run up to [`AHEAD`] ahead of the rate before it sleeps, and what a late wake-up costs
//! is made up by the next sends (up to [`CREDIT`] of them), so the average holds on a busy
//! machine whose sleeps overshoot; the receiver's socket buffer (32 MiB by default, 32 ms at
//! the default 1 GB/s) takes the bursts.
//!
//! A frame of a stream with a known frame rate is spread over half its interval
//! ([`Pacer::spread`]) rather than sent at the cap: a 480 KB frame at 30 fps leaves at
//! about 29 MB/s, not in one 0.5 ms burst that a Wi-Fi queue or a receiver's default
//! 208 KB socket buffer drops.

use std::time::{Duration, Instant};

/// How far ahead of the rate the sender may get before it sleeps.
pub const AHEAD: Duration = Duration::from_millis(1);
/// How much sending time a late or idle sender may make up.
pub const CREDIT: Duration = Duration::from_millis(2);

/// The slowest a spread frame is sent: 1 MB/s, so a tiny frame rate never holds a frame
/// back for long.
pub const MIN_SPREAD_RATE: f64 = 1e6;

/// Pacing state.
#[derive(Debug)]
pub struct Pacer {
    /// The configured rate (bytes per second); `None`: unpaced.
    cap: Option<f64>,
    /// The rate in force for the frame being sent: the cap, or a spread frame's rate.
    rate: Option<f64>,
    /// When the bytes booked so far are paid for.
    paid_until: Option<Instant>,
}

impl Pacer {
    pub fn new(rate: Option<f64>) -> Self {
        let cap = rate.filter(|r| *r > 0.0);
        Pacer {
            cap,
            rate: cap,
            paid_until: None,
        }
    }

    /// Sets the rate for the next frame of `bytes`: spread evenly over `within` (never
    /// slower than [`MIN_SPREAD_RATE`], never faster than the cap), or at the cap if `None`.
    pub fn spread(&mut self, bytes: usize, within: Option<Duration>) {
        let spread = within
            .filter(|w| !w.is_zero())
            .map(|w| (bytes as f64 / w.as_secs_f64()).max(MIN_SPREAD_RATE));
        self.rate = match (spread, self.cap) {
            (Some(s), Some(c)) => Some(s.min(c)),
            (s, c) => s.or(c),
        };
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

    #[test]
    fn a_spread_frame_takes_its_share_of_the_interval_and_no_more_than_the_cap_allows() {
        let t0 = Instant::now();
        // 100 KB within 50 ms: 2 MB/s, so the second half waits 25 ms.
        let mut p = Pacer::new(Some(1e9));
        p.spread(100_000, Some(Duration::from_millis(50)));
        assert_eq!(p.book(t0, 50_000), Duration::ZERO);
        assert_eq!(p.book(t0, 50_000), Duration::from_millis(25));
        // The cap still bounds a spread that would be faster.
        let mut p = Pacer::new(Some(1e6));
        p.spread(100_000, Some(Duration::from_millis(1)));
        p.book(t0, 10_000);
        assert_eq!(p.book(t0, 10_000), Duration::from_millis(10));
        // No interval: back at the cap; an unpaced sender spreads too.
        p.spread(100_000, None);
        p.book(t0 + Duration::from_secs(1), 10_000);
        let mut p = Pacer::new(None);
        p.spread(2_000_000, Some(Duration::from_secs(1)));
        p.book(t0, 1_000_000);
        assert_eq!(p.book(t0, 1), Duration::from_millis(500));
        p.spread(2_000_000, None);
        assert_eq!(p.book(t0 + Duration::from_secs(9), 1 << 30), Duration::ZERO);
    }
}
