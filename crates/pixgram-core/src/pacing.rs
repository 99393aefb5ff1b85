//! Pacing: how the sender spreads datagrams at the rate the congestion controller
//! ([`crate::bbr`]) sets, and the settings that bound that rate.
//!
//! [`Pacer`] is a token bucket: `rate` bytes per second, at most one send quantum at once
//! ([`crate::bbr::Bbr::send_quantum_for`]: about a millisecond of data, from 2 datagrams to 64 KB
//! or 32 datagrams of the size in use, whichever is more), so a 2 MB frame at 100 MB/s leaves
//! as a steady stream instead of a burst that overflows the first queue on its way, while a
//! driver that sends every datagram released at one wake-up in one batch (UDP GSO) sends up to
//! 64 KB per batch at high rates, and 64 KB datagrams (loopback) go several at once.
//!
//! Nothing here ever panics on the numbers it is given: [`RateConfig::sanitised`] replaces a
//! non-finite or non-positive bound (and lowers the floor to the ceiling when a user's
//! `--rate` is below it, so `min <= max` always holds), and [`Pacer::new`] /
//! [`Pacer::set_rate`] take any `f64` (NaN, infinite, zero, negative) and pace at a rate
//! between [`MIN_RATE`] and unlimited.

use std::time::Duration;

use crate::time::Timestamp;

/// The slowest rate anything here paces at, bytes per second: the floor a NaN, zero or negative
/// rate is raised to (100 bytes/s, far below any useful `--rate`; the CLI refuses < 0.1 Mbit/s).
pub const MIN_RATE: f64 = 100.0;

/// `rate` if it is a usable rate, `MIN_RATE` if it is NaN, zero, negative or tiny; `+inf` (no
/// limit) is kept.
fn sane_rate(rate: f64) -> f64 {
    if rate.is_nan() {
        MIN_RATE
    } else {
        rate.max(MIN_RATE)
    }
}

/// A bucket size: NaN, negative and infinite become 0 and `f64::MAX` respectively (a bucket of
/// 0 still releases one datagram at a time, see [`Pacer::ready_at`]).
fn sane_burst(burst: f64) -> f64 {
    if burst.is_nan() {
        0.0
    } else {
        burst.clamp(0.0, f64::MAX)
    }
}

/// The most lateness the bucket makes up for (see [`Pacer::on_late`]).
pub const MAX_LATENESS: Duration = Duration::from_millis(20);
/// How long the highest lateness sample is remembered.
const LATENESS_WINDOW: Duration = Duration::from_millis(250);

/// A token bucket: `rate` bytes per second, at most `burst` bytes at once and what the rate
/// earns in the driver's recent lateness.
///
/// A driver whose timer wakes it late (a socket read timeout in whole jiffies: 4-10 ms on
/// Linux) would otherwise send one quantum per wake-up, a fraction of the rate, and the
/// controller would measure that fraction as the path's rate. The bucket therefore also holds
/// what the rate earns over the highest lateness of the last 250 ms (at most 20 ms): the
/// long-run rate stays the rate, and bursts are only as long as the driver's own lateness
/// forces. A driver on time (the simulator, an async runtime with fine timers) gets bursts of
/// one quantum.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Timestamp>,
    /// The highest lateness reported in the current window, and since when.
    lateness: Duration,
    lateness_since: Timestamp,
}

impl Pacer {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        let burst = sane_burst(burst);
        Pacer {
            rate: sane_rate(rate),
            burst,
            tokens: burst,
            last: None,
            lateness: Duration::ZERO,
            lateness_since: Timestamp::ZERO,
        }
    }

    /// The sender was called `late` after the instant the pacer had said it could send (at
    /// `now`): the bucket grows to make up for lateness like it (see [`Pacer`]).
    pub fn on_late(&mut self, now: Timestamp, late: Duration) {
        let late = late.min(MAX_LATENESS);
        if late >= self.lateness || now.saturating_since(self.lateness_since) > LATENESS_WINDOW {
            self.lateness = late;
            self.lateness_since = now;
        }
    }

    /// Bytes the bucket holds at most: the burst and the rate's worth of recent lateness.
    fn capacity(&self) -> f64 {
        let late = self.rate * self.lateness.as_secs_f64();
        if late.is_finite() {
            (self.burst + late).min(f64::MAX)
        } else {
            self.burst
        }
    }

    /// Changes the rate and the bucket size from `now` on; tokens already earned are kept up to
    /// the new size.
    pub fn set_rate(&mut self, now: Timestamp, rate: f64, burst: f64) {
        self.refill(now);
        self.rate = sane_rate(rate);
        self.burst = sane_burst(burst);
        self.tokens = self.tokens.min(self.capacity());
    }

    fn tokens_at(&self, now: Timestamp) -> f64 {
        match self.last {
            Some(last) => (self.tokens + now.saturating_since(last).as_secs_f64() * self.rate)
                .min(self.capacity()),
            None => self.tokens,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        self.tokens = self.tokens_at(now);
        self.last = Some(now);
    }

    /// When `len` bytes may be sent: `now` or later.
    pub fn ready_at(&self, now: Timestamp, len: usize) -> Timestamp {
        let need = (len as f64).min(self.burst) - self.tokens_at(now);
        if need <= 0.0 || need.is_nan() {
            now
        } else {
            // `as` saturates: a wait beyond u64 microseconds is u64::MAX, and the addition
            // saturates too.
            now + Duration::from_micros((need / self.rate * 1e6).ceil() as u64)
        }
    }

    /// When the last datagram was sent.
    pub fn last_send(&self) -> Option<Timestamp> {
        self.last
    }

    /// Spends tokens for `len` bytes sent at `now`.
    pub fn on_sent(&mut self, now: Timestamp, len: usize) {
        self.refill(now);
        self.tokens -= len as f64;
    }

    /// Spends `len` tokens at `now` if the bucket holds them; `false` (nothing spent) if it
    /// does not. For budgets counted in datagrams rather than bytes (the receiver's limits on
    /// what one peer or the whole first exchange may cost); like every rate here, at least
    /// [`MIN_RATE`] a second.
    pub fn try_take(&mut self, now: Timestamp, len: usize) -> bool {
        if self.ready_at(now, len) > now {
            return false;
        }
        self.on_sent(now, len);
        true
    }
}

/// Settings of the congestion controller ([`crate::bbr::Bbr`]). Any values are accepted; see [`RateConfig::sanitised`].
#[derive(Debug, Clone)]
pub struct RateConfig {
    /// Rate before anything is known, bytes per second.
    pub initial: f64,
    /// Never slower than this.
    pub min: f64,
    /// Never faster than this (the user's `--rate`).
    pub max: f64,
    /// Bytes of one datagram, the additive step per round trip.
    pub datagram: f64,
}

impl RateConfig {
    /// The settings the controller actually uses: `max` NaN or `+inf` means no limit
    /// (`f64::MAX`), and is raised to [`MIN_RATE`] if lower; `min` is at least [`MIN_RATE`] and
    /// never above `max` (a `--rate` below the usual floor lowers the floor with it); `initial`
    /// NaN starts at `max`'s bound, otherwise it is clamped into `min..=max`; `datagram` is at
    /// least one byte.
    pub fn sanitised(&self) -> RateConfig {
        let max = if self.max.is_nan() {
            f64::MAX
        } else {
            self.max.clamp(MIN_RATE, f64::MAX)
        };
        let min = if self.min.is_nan() {
            MIN_RATE
        } else {
            self.min.clamp(MIN_RATE, max)
        };
        let initial = if self.initial.is_nan() {
            max
        } else {
            self.initial.clamp(min, max)
        };
        let datagram = if self.datagram.is_nan() {
            1.0
        } else {
            self.datagram.clamp(1.0, f64::from(u32::MAX))
        };
        RateConfig {
            initial,
            min,
            max,
            datagram,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_spreads_datagrams_at_the_rate() {
        // 1 MB/s, room for two 1000-byte datagrams at once.
        let mut p = Pacer::new(1e6, 2000.0);
        let t0 = Timestamp::ZERO;
        assert_eq!(p.ready_at(t0, 1000), t0);
        p.on_sent(t0, 1000);
        p.on_sent(t0, 1000);
        assert_eq!(p.ready_at(t0, 1000), Timestamp::from_millis(1));
        assert_eq!(
            p.ready_at(Timestamp::from_millis(1), 1000),
            Timestamp::from_millis(1)
        );
    }

    #[test]
    fn any_f64_is_sanitised_without_panicking() {
        let weird = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            -1.0,
            1e-300,
            f64::MAX,
            f64::MIN,
            12_500.0,
        ];
        for &initial in &weird {
            for &min in &weird {
                for &max in &weird {
                    for &datagram in &[f64::NAN, 0.0, -5.0, 1200.0, f64::INFINITY] {
                        let cfg = RateConfig {
                            initial,
                            min,
                            max,
                            datagram,
                        };
                        let s = cfg.sanitised();
                        assert!(s.min <= s.max, "{cfg:?} -> {s:?}");
                        assert!(s.min >= MIN_RATE && s.max.is_finite(), "{cfg:?} -> {s:?}");
                        assert!((s.min..=s.max).contains(&s.initial), "{s:?}");
                    }
                }
            }
        }
        // A user's limit is kept exactly; no limit (NaN, +inf) is unlimited.
        let max_of = |max| {
            RateConfig {
                initial: 1e6,
                min: 100e3,
                max,
                datagram: 1200.0,
            }
            .sanitised()
            .max
        };
        assert_eq!(max_of(12_500.0), 12_500.0);
        assert_eq!(max_of(f64::INFINITY), f64::MAX);
        assert_eq!(max_of(f64::NAN), f64::MAX);
        assert_eq!(max_of(-3.0), MIN_RATE);
    }

    #[test]
    fn a_driver_that_wakes_late_still_gets_the_rate() {
        // 1 MB/s, a quantum of two 1000-byte datagrams; the driver wakes every 10 ms, however
        // soon the pacer asks to be called.
        let run = |late_credit: bool| {
            let mut p = Pacer::new(1e6, 2000.0);
            let mut t = Timestamp::ZERO;
            let mut sent = 0usize;
            let mut due = None;
            for _ in 0..100 {
                if let Some(d) = due.take().filter(|_| late_credit) {
                    p.on_late(t, t.saturating_since(d));
                }
                while p.ready_at(t, 1000) <= t {
                    p.on_sent(t, 1000);
                    sent += 1000;
                }
                due = Some(p.ready_at(t, 1000));
                t = t + Duration::from_millis(10);
            }
            sent as f64 // bytes in one second
        };
        // Without the credit: one quantum per wake-up, a fifth of the rate.
        assert!(run(false) < 0.25e6, "{}", run(false));
        // With it: the rate (the first wake-ups teach the pacer the lateness).
        assert!(run(true) > 0.9e6, "{}", run(true));
    }

    #[test]
    fn the_pacer_takes_any_rate_and_burst() {
        let t0 = Timestamp::from_millis(5);
        let weird = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -1.0,
            f64::MAX,
            1000.0,
        ];
        for &rate in &weird {
            for &burst in &weird {
                let mut p = Pacer::new(rate, burst);
                p.on_sent(t0, 1200);
                let at = p.ready_at(t0, 1200);
                assert!(at >= t0);
                p.set_rate(at, rate, burst);
                assert!(p.ready_at(at, 65_507) >= at);
            }
        }
        // NaN paces at the floor instead of not at all: 1,000 bytes owed take 10 s at 100 B/s.
        let mut p = Pacer::new(f64::NAN, 1000.0);
        p.on_sent(t0, 1000);
        assert_eq!(
            p.ready_at(t0, 1000),
            t0 + Duration::from_secs_f64(1000.0 / MIN_RATE)
        );
    }

    #[test]
    fn a_sender_limited_to_a_tenth_of_a_megabit_paces_at_it() {
        use crate::ids::{SessionId, StreamId};
        use crate::sender::{OutgoingFrame, Sender, SenderConfig};
        for max in [12_500.0, f64::NAN, 0.0, -1.0, f64::INFINITY] {
            let mut s = Sender::new(
                SenderConfig {
                    max_rate: Some(max),
                    ..SenderConfig::default()
                },
                SessionId(7),
            );
            let t0 = Timestamp::ZERO;
            s.send(t0, OutgoingFrame::frame(StreamId(1), vec![7u8; 100_000]))
                .unwrap();
            let mut buf = vec![0u8; 2000];
            // The receiver's token (the first exchange), so DATA may go.
            let challenge = crate::wire::Challenge {
                session: SessionId(7),
                answered_len: 64,
                token: [1; 32],
            };
            let n = crate::wire::emit_challenge(&mut buf, &challenge);
            s.handle(t0, &buf[..n]);
            let mut sent = 0usize;
            while let Some(t) = s.poll_transmit(t0, &mut buf) {
                sent += t.len;
            }
            assert!(sent > 0);
            if max == 12_500.0 {
                assert_eq!(s.path().rate, 12_500.0);
                // One burst (16 datagrams), then the pacer holds the rest back.
                assert!(sent < 100_000, "{sent}");
                let next = s.poll_timeout().unwrap();
                assert!(next > t0);
            }
        }
    }

    #[test]
    fn try_take_spends_only_what_the_bucket_holds() {
        // A thousand a second, two at once: the receiver's per-peer and CHALLENGE budgets.
        let mut b = Pacer::new(1_000.0, 2.0);
        let t = Timestamp::from_millis(1_000);
        assert!(b.try_take(t, 1) && b.try_take(t, 1));
        assert!(!b.try_take(t, 1));
        assert!(!b.try_take(t + Duration::from_micros(999), 1));
        assert!(b.try_take(t + Duration::from_millis(1), 1));
        // Idle for long, it holds no more than its burst.
        let later = t + Duration::from_secs(60);
        assert!(b.try_take(later, 1) && b.try_take(later, 1) && !b.try_take(later, 1));
    }
}
