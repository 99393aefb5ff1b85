//! A token bucket for the RTP sender: at most `rate` bytes per second on average, in bursts
//! of at most one GSO send, so a receiver's socket buffer (the only buffer RTP has) takes
//! each burst whole.

use std::time::{Duration, Instant};

/// Pacing state.
#[derive(Debug)]
pub struct Pacer {
    /// Bytes per second; `None`: unpaced.
    rate: Option<f64>,
    /// When the bytes sent so far are paid for.
    paid_until: Option<Instant>,
}

impl Pacer {
    pub fn new(rate: Option<f64>) -> Self {
        Pacer {
            rate: rate.filter(|r| *r > 0.0),
            paid_until: None,
        }
    }

    /// How long to wait before sending `bytes` now (zero if allowed), and books them.
    pub fn book(&mut self, now: Instant, bytes: usize) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        // Credit does not pile up while idle beyond one burst.
        let start = self.paid_until.map_or(now, |p| p.max(now));
        let wait = start.saturating_duration_since(now);
        self.paid_until = Some(start + Duration::from_secs_f64(bytes as f64 / rate));
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_spaced_by_their_size_over_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(1e6));
        assert_eq!(p.book(t0, 10_000), Duration::ZERO);
        assert_eq!(p.book(t0, 10_000), Duration::from_millis(10));
        // Idle time earns no burst larger than one.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(p.book(later, 10_000), Duration::ZERO);
        assert_eq!(p.book(later, 10_000), Duration::from_millis(10));
        assert_eq!(Pacer::new(None).book(t0, 1 << 30), Duration::ZERO);
    }
}
