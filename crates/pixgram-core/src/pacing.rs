//! Pacing and congestion control: how fast the sender may put bytes on the wire.
//!
//! [`RateController`] is a rate-based AIMD with slow start: the rate doubles every round trip
//! until the first loss, then grows by one datagram per round trip, and is cut to 70% at most
//! once per round trip when loss is seen (a NACK or a retransmission timeout). Loss-based rather
//! than delay-based, because on the links pixgram targets (Wi-Fi, loopback, LANs) the dominant
//! signal is the receiver's socket buffer overflowing, which shows only as loss, and because a
//! loss-based controller competes fairly with TCP on a shared link. Queueing delay (smoothed RTT
//! minus the lowest RTT seen) is reported, not acted on.
//!
//! [`Pacer`] spreads datagrams at that rate with a token bucket, so a 2 MB frame leaves as a
//! steady stream instead of a burst that overflows the first queue on its way.

use std::time::Duration;

use crate::time::Timestamp;

/// A token bucket: `rate` bytes per second, at most `burst` bytes at once.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Timestamp>,
}

impl Pacer {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        Pacer {
            rate: rate.max(1.0),
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Changes the rate and the bucket size; tokens already earned are kept up to the new size.
    pub fn set_rate(&mut self, rate: f64, burst: f64) {
        self.rate = rate.max(1.0);
        self.burst = burst;
        self.tokens = self.tokens.min(burst);
    }

    fn refill(&mut self, now: Timestamp) {
        if let Some(last) = self.last {
            let dt = now.saturating_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        }
        self.last = Some(now);
    }

    /// When `len` bytes may be sent: `now` or later.
    pub fn ready_at(&mut self, now: Timestamp, len: usize) -> Timestamp {
        self.refill(now);
        let need = (len as f64).min(self.burst) - self.tokens;
        if need <= 0.0 {
            now
        } else {
            now + Duration::from_micros((need / self.rate * 1e6).ceil() as u64)
        }
    }

    /// Spends tokens for `len` bytes sent at `now`.
    pub fn on_sent(&mut self, now: Timestamp, len: usize) {
        self.refill(now);
        self.tokens -= len as f64;
    }
}

/// Settings of the [`RateController`].
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

/// Rate-based AIMD with slow start. See the module documentation.
#[derive(Debug, Clone)]
pub struct RateController {
    config: RateConfig,
    rate: f64,
    slow_start: bool,
    last_change: Option<Timestamp>,
    last_decrease: Option<Timestamp>,
    min_rtt: Option<Duration>,
}

impl RateController {
    /// A controller starting at `config.initial`, in slow start.
    pub fn new(config: RateConfig) -> Self {
        let rate = config.initial.clamp(config.min, config.max);
        RateController {
            config,
            rate,
            slow_start: true,
            last_change: None,
            last_decrease: None,
            min_rtt: None,
        }
    }

    /// Bytes per second the sender may use now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether still in slow start.
    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// The lowest RTT seen: the path's delay without queueing.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Something was delivered; `srtt` is the current smoothed RTT. Grows the rate at most once
    /// per round trip.
    pub fn on_delivered(&mut self, now: Timestamp, rtt_sample: Option<Duration>, srtt: Duration) {
        if let Some(s) = rtt_sample {
            self.min_rtt = Some(self.min_rtt.map_or(s, |m| m.min(s)));
        }
        let srtt = srtt.max(Duration::from_micros(100));
        if self
            .last_change
            .is_some_and(|t| now.saturating_since(t) < srtt)
        {
            return;
        }
        self.last_change = Some(now);
        self.rate = if self.slow_start {
            self.rate * 2.0
        } else {
            self.rate + self.config.datagram / srtt.as_secs_f64()
        }
        .clamp(self.config.min, self.config.max);
    }

    /// Loss was seen. Cuts the rate to 70%, at most once per round trip, and ends slow start.
    pub fn on_loss(&mut self, now: Timestamp, srtt: Duration) {
        if self
            .last_decrease
            .is_some_and(|t| now.saturating_since(t) < srtt)
        {
            return;
        }
        self.last_decrease = Some(now);
        self.last_change = Some(now);
        self.slow_start = false;
        self.rate = (self.rate * 0.7).clamp(self.config.min, self.config.max);
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

    fn controller() -> RateController {
        RateController::new(RateConfig {
            initial: 1e6,
            min: 1e4,
            max: 1e9,
            datagram: 1200.0,
        })
    }

    #[test]
    fn slow_start_doubles_per_round_trip_then_loss_halves_it_roughly() {
        let mut c = controller();
        let rtt = Duration::from_millis(10);
        for i in 0..4 {
            c.on_delivered(Timestamp::from_millis(i * 10), Some(rtt), rtt);
        }
        assert_eq!(c.rate(), 16e6);
        c.on_loss(Timestamp::from_millis(41), rtt);
        assert_eq!(c.rate(), 16e6 * 0.7);
        // A second loss in the same round trip is the same event.
        c.on_loss(Timestamp::from_millis(45), rtt);
        assert_eq!(c.rate(), 16e6 * 0.7);
        assert!(!c.in_slow_start());
        // Additive increase afterwards: one datagram per RTT.
        c.on_delivered(Timestamp::from_millis(60), Some(rtt), rtt);
        assert!((c.rate() - (16e6 * 0.7 + 120_000.0)).abs() < 1.0);
    }

    #[test]
    fn rate_stays_within_bounds() {
        let mut c = controller();
        let rtt = Duration::from_millis(1);
        for i in 0..100 {
            c.on_loss(Timestamp::from_millis(i * 2), rtt);
        }
        assert_eq!(c.rate(), 1e4);
        for i in 0..100 {
            c.on_delivered(Timestamp::from_millis(1000 + i * 2), Some(rtt), rtt);
        }
        assert!(c.rate() <= 1e9);
    }
}
