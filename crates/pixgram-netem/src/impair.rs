//! A seeded model of a bad network, free of I/O: what the simulator tests and the CLI's
//! impairment relay apply to each datagram.
//!
//! [`Impairment::apply`] decides the fate of one datagram sent at `now`: dropped (larger than
//! the path's MTU, random loss, Gilbert-Elliott burst loss, or a full queue behind a rate
//! limit), or delivered at some later instant, perhaps corrupted, truncated, duplicated or
//! overtaken by later datagrams. A [`DelayLine`](crate::DelayLine) holds the copies until they
//! are due. Instants are [`Duration`]s since the caller's epoch (see the crate docs).

use std::time::Duration;

use crate::rng::SimRng;

/// Two-state burst loss (Gilbert-Elliott): in the good state no loss beyond
/// [`ImpairConfig::loss`], in the bad state each datagram is lost with `loss_in_bad`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstLoss {
    /// Per datagram, probability of moving from good to bad.
    pub enter: f64,
    /// Per datagram, probability of moving from bad back to good (mean burst = 1/leave).
    pub leave: f64,
    /// Loss probability while bad.
    pub loss_in_bad: f64,
}

/// What to do to datagrams. `Default` is a perfect link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImpairConfig {
    /// Independent random loss probability.
    pub loss: f64,
    /// Burst loss on top of `loss`.
    pub burst: Option<BurstLoss>,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per datagram (reorders datagrams).
    pub jitter: Duration,
    /// Probability that a datagram is held back by `reorder_delay` more.
    pub reorder: f64,
    /// How long a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that one random bit of a datagram is flipped.
    pub corrupt: f64,
    /// Probability that a datagram is cut to a random shorter length.
    pub truncate: f64,
    /// Link rate in bytes per second; `None` is unlimited.
    pub rate: Option<u64>,
    /// Bytes that may wait for the rate-limited link before new datagrams are dropped.
    pub queue_bytes: u64,
    /// Bytes of tokens the rate limiter saves up while idle, as tbf's `burst`: after a pause,
    /// this much passes at once (at the speed of the link before it), then the rate holds
    /// again. 0 (the default) is a plain rate.
    pub bucket_bytes: u64,
    /// Largest datagram the path carries, in bytes; a larger one is dropped (a router with
    /// the don't-fragment bit set). `None` carries any size.
    pub mtu: Option<usize>,
}

impl ImpairConfig {
    /// A tbf-like bottleneck: a link of `rate` bytes per second behind a drop-tail queue that
    /// holds `queue` of the link's time (`rate * queue` bytes, at least one datagram gets
    /// through); a datagram arriving at a full queue is dropped. Nothing else is impaired;
    /// set the other fields with struct-update syntax.
    pub fn bottleneck(rate: u64, queue: Duration) -> Self {
        let bytes = u128::from(rate) * queue.as_micros() / 1_000_000;
        ImpairConfig {
            rate: Some(rate),
            queue_bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
            ..ImpairConfig::default()
        }
    }

    /// Linux's tbf qdisc as `tc qdisc ... tbf rate R burst B latency L` sets it up: a link of
    /// `rate` bytes per second with a bucket of `burst` bytes (after a pause, that much passes
    /// at once), and a queue of `rate * latency + burst` bytes (tbf's `limit`).
    pub fn tbf(rate: u64, burst: u64, latency: Duration) -> Self {
        let queued = Self::bottleneck(rate, latency);
        ImpairConfig {
            queue_bytes: queued.queue_bytes.saturating_add(burst),
            bucket_bytes: burst,
            ..queued
        }
    }
}

/// Counters of what an [`Impairment`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImpairStats {
    /// Datagrams offered.
    pub offered: u64,
    /// Copies scheduled for delivery (duplicates included).
    pub delivered: u64,
    /// Dropped by random loss.
    pub dropped_random: u64,
    /// Dropped in a loss burst.
    pub dropped_burst: u64,
    /// Dropped because the rate limiter's queue was full.
    pub dropped_queue: u64,
    /// Dropped for being larger than [`ImpairConfig::mtu`].
    pub dropped_oversize: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Copies with a bit flipped.
    pub corrupted: u64,
    /// Copies cut short.
    pub truncated: u64,
    /// Copies held back to be overtaken.
    pub reordered: u64,
}

/// One direction of an impaired link.
#[derive(Debug, Clone)]
pub struct Impairment {
    config: ImpairConfig,
    rng: SimRng,
    in_burst: bool,
    link_free_at: Duration,
    stats: ImpairStats,
}

impl Impairment {
    /// A link direction with `config`, its randomness seeded by `seed`.
    pub fn new(config: ImpairConfig, seed: u64) -> Self {
        Impairment {
            config,
            rng: SimRng::new(seed),
            in_burst: false,
            link_free_at: Duration::ZERO,
            stats: ImpairStats::default(),
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> &ImpairStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &ImpairConfig {
        &self.config
    }

    /// Changes the impairment from now on (a path whose delay or rate changes); the queue and
    /// the random state carry over.
    pub fn set_config(&mut self, config: ImpairConfig) {
        self.config = config;
    }

    /// Decides the fate of `datagram`, sent at `now`: pushes zero, one or two copies with their
    /// delivery instants onto `out`.
    pub fn apply(&mut self, now: Duration, datagram: &[u8], out: &mut Vec<(Duration, Vec<u8>)>) {
        self.stats.offered += 1;
        let c = &self.config;
        // Before any random draw, so an MTU changes nothing for the datagrams that fit.
        if c.mtu.is_some_and(|mtu| datagram.len() > mtu) {
            self.stats.dropped_oversize += 1;
            return;
        }
        if let Some(b) = c.burst {
            let flip = if self.in_burst { b.leave } else { b.enter };
            if self.rng.chance(flip) {
                self.in_burst = !self.in_burst;
            }
            if self.in_burst && self.rng.chance(b.loss_in_bad) {
                self.stats.dropped_burst += 1;
                return;
            }
        }
        if self.rng.chance(c.loss) {
            self.stats.dropped_random += 1;
            return;
        }
        let mut depart = now;
        if let Some(rate) = c.rate.filter(|&r| r > 0) {
            // `link_free_at` is when the tokens spent so far are earned back; a bucket of B
            // bytes lets that lag now by B's worth of the rate (the tokens saved while idle).
            let saved = Duration::from_micros(
                u64::try_from(u128::from(c.bucket_bytes) * 1_000_000 / u128::from(rate))
                    .unwrap_or(u64::MAX),
            );
            let start = self.link_free_at.max(now.saturating_sub(saved));
            // In u128: a huge --queue lets the backlog outgrow u64 micro-bytes.
            let backlog = start.saturating_sub(now).as_micros() * u128::from(rate) / 1_000_000;
            let backlog_bytes = u64::try_from(backlog).unwrap_or(u64::MAX);
            if backlog_bytes + datagram.len() as u64 > c.queue_bytes.max(datagram.len() as u64) {
                self.stats.dropped_queue += 1;
                return;
            }
            let serialise = Duration::from_micros(datagram.len() as u64 * 1_000_000 / rate);
            self.link_free_at = start.saturating_add(serialise);
            // With tokens in hand a datagram leaves at once, else when they are earned.
            depart = self.link_free_at.max(now);
        }
        let copies = if self.rng.chance(c.duplicate) { 2 } else { 1 };
        self.stats.duplicated += copies - 1;
        for _ in 0..copies {
            let c = &self.config;
            let mut at = depart.saturating_add(c.delay);
            if !c.jitter.is_zero() {
                let jitter = self.rng.below(c.jitter.as_micros() as u64 + 1);
                at = at.saturating_add(Duration::from_micros(jitter));
            }
            if self.rng.chance(c.reorder) {
                at = at.saturating_add(c.reorder_delay);
                self.stats.reordered += 1;
            }
            let mut bytes = datagram.to_vec();
            if !bytes.is_empty() && self.rng.chance(c.truncate) {
                bytes.truncate(self.rng.below(bytes.len() as u64) as usize);
                self.stats.truncated += 1;
            }
            if !bytes.is_empty() && self.rng.chance(c.corrupt) {
                let bit = self.rng.below(bytes.len() as u64 * 8) as usize;
                bytes[bit / 8] ^= 1 << (bit % 8);
                self.stats.corrupted += 1;
            }
            self.stats.delivered += 1;
            out.push((at, bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_rate_is_close_to_configured() {
        let mut imp = Impairment::new(
            ImpairConfig {
                loss: 0.2,
                ..Default::default()
            },
            42,
        );
        let mut out = Vec::new();
        for _ in 0..10_000 {
            imp.apply(Duration::ZERO, &[0u8; 10], &mut out);
        }
        let lost = imp.stats().dropped_random;
        assert!((1800..2200).contains(&lost), "{lost}");
        assert_eq!(out.len() as u64 + lost, 10_000);
    }

    #[test]
    fn rate_limit_spaces_datagrams_and_drops_past_the_queue() {
        let mut imp = Impairment::new(
            ImpairConfig {
                rate: Some(1_000_000),
                queue_bytes: 10_000,
                ..Default::default()
            },
            1,
        );
        let mut out = Vec::new();
        for _ in 0..20 {
            imp.apply(Duration::ZERO, &[0u8; 1000], &mut out);
        }
        // 1 ms per datagram at 1 MB/s; ten fit in the queue.
        assert_eq!(out.len(), 10);
        assert_eq!(out[9].0, Duration::from_millis(10));
        assert_eq!(imp.stats().dropped_queue, 10);
    }

    #[test]
    fn a_bottleneck_queue_holds_its_delay_and_drops_the_rest() {
        // 1 MB/s with a 10 ms queue: 10,000 bytes wait at most, as in the byte-sized queue.
        let config = ImpairConfig::bottleneck(1_000_000, Duration::from_millis(10));
        assert_eq!((config.rate, config.queue_bytes), (Some(1_000_000), 10_000));
        let mut imp = Impairment::new(config, 1);
        let mut out = Vec::new();
        for _ in 0..20 {
            imp.apply(Duration::ZERO, &[0u8; 1000], &mut out);
        }
        assert_eq!(out.len(), 10);
        assert_eq!(imp.stats().dropped_queue, 10);
        // Once the queue drained for 5 ms, five more fit.
        out.clear();
        for _ in 0..10 {
            imp.apply(Duration::from_millis(5), &[0u8; 1000], &mut out);
        }
        assert_eq!(out.len(), 5);
        assert_eq!(out[4].0, Duration::from_millis(15));
    }

    #[test]
    fn a_bucket_lets_a_burst_through_after_a_pause_then_the_rate_holds() {
        // 1 MB/s, a 5,000-byte bucket, 10 ms of latency: the queue holds 15,000 bytes.
        let config = ImpairConfig::tbf(1_000_000, 5_000, Duration::from_millis(10));
        assert_eq!((config.queue_bytes, config.bucket_bytes), (15_000, 5_000));
        let mut imp = Impairment::new(config, 1);
        let mut out = Vec::new();
        // After 100 ms idle the bucket is full: five datagrams leave at once, the next ones a
        // millisecond apart, and 15 more fit in the queue before it drops.
        let t = Duration::from_millis(100);
        for _ in 0..25 {
            imp.apply(t, &[0u8; 1000], &mut out);
        }
        assert_eq!(out.len(), 20);
        assert!(out[..5].iter().all(|(at, _)| *at == t));
        assert_eq!(out[5].0, t + Duration::from_millis(1));
        assert_eq!(out[19].0, t + Duration::from_millis(15));
        assert_eq!(imp.stats().dropped_queue, 5);
        // Sent no faster than the rate, each leaves as it comes (the bucket stays full).
        out.clear();
        let later = Duration::from_millis(200);
        for i in 0..10 {
            imp.apply(later + Duration::from_millis(i), &[0u8; 1000], &mut out);
        }
        assert_eq!(out[9].0 - out[5].0, Duration::from_millis(4));
    }

    #[test]
    fn datagrams_above_the_mtu_are_dropped_before_any_random_draw() {
        let lossy = ImpairConfig {
            loss: 0.5,
            ..Default::default()
        };
        let fates = |mtu| {
            let mut imp = Impairment::new(
                ImpairConfig {
                    mtu,
                    ..lossy.clone()
                },
                9,
            );
            let mut out = Vec::new();
            for i in 0..200u16 {
                let len = if i % 3 == 0 { 1600 } else { 1000 };
                imp.apply(Duration::ZERO, &vec![i as u8; len], &mut out);
            }
            (out, imp.stats().clone())
        };
        let (all, _) = fates(None);
        let (small, stats) = fates(Some(1500));
        assert_eq!(stats.dropped_oversize, 67);
        assert!(small.iter().all(|(_, d)| d.len() == 1000));
        assert_eq!(stats.offered, stats.delivered + stats.dropped_random + 67);
        // The datagrams that fit meet different draws (fewer were made), but the same model.
        assert!(all.len() > small.len());
    }

    #[test]
    fn the_same_seed_gives_the_same_fates_and_jitter_stays_in_bounds() {
        let config = ImpairConfig {
            loss: 0.1,
            burst: Some(BurstLoss {
                enter: 0.05,
                leave: 0.3,
                loss_in_bad: 0.8,
            }),
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            duplicate: 0.05,
            corrupt: 0.05,
            truncate: 0.05,
            reorder: 0.05,
            reorder_delay: Duration::from_millis(30),
            ..Default::default()
        };
        let run = |seed| {
            let mut imp = Impairment::new(config.clone(), seed);
            let mut out = Vec::new();
            for i in 0..2000u32 {
                imp.apply(Duration::from_millis(i.into()), &i.to_be_bytes(), &mut out);
            }
            (out, imp.stats().clone())
        };
        let (a, stats) = run(3);
        assert_eq!(a, run(3).0);
        assert_ne!(a, run(4).0);
        assert!(stats.dropped_burst > 0 && stats.duplicated > 0 && stats.reordered > 0);
        assert_eq!(
            stats.offered + stats.duplicated,
            stats.delivered + stats.dropped_random + stats.dropped_burst
        );
        let max_extra = Duration::from_millis(20 + 5 + 30);
        let mut imp = Impairment::new(config, 3);
        let mut out = Vec::new();
        for i in 0..500u64 {
            let now = Duration::from_millis(i);
            imp.apply(now, b"x", &mut out);
            for (at, _) in out.drain(..) {
                assert!(at >= now + Duration::from_millis(20) && at <= now + max_extra);
            }
        }
    }
}
