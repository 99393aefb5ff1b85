//! A seeded model of a bad network, free of I/O: what the simulator tests and the CLI's
//! impairment relay apply to each datagram.
//!
//! [`Impairment::apply`] decides the fate of one datagram sent at `now`: dropped (random loss,
//! Gilbert-Elliott burst loss, or a full queue behind a rate limit), or delivered at some later
//! instant, perhaps corrupted, truncated, duplicated or overtaken by later datagrams. A
//! [`DelayLine`] holds the copies until they are due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::rng::SimRng;
use crate::time::Timestamp;

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
    link_free_at: Timestamp,
    stats: ImpairStats,
}

impl Impairment {
    /// A link direction with `config`, its randomness seeded by `seed`.
    pub fn new(config: ImpairConfig, seed: u64) -> Self {
        Impairment {
            config,
            rng: SimRng::new(seed),
            in_burst: false,
            link_free_at: Timestamp::ZERO,
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
    pub fn apply(&mut self, now: Timestamp, datagram: &[u8], out: &mut Vec<(Timestamp, Vec<u8>)>) {
        self.stats.offered += 1;
        let c = &self.config;
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
            let start = self.link_free_at.max(now);
            // In u128: a huge --queue lets the backlog outgrow u64 micro-bytes.
            let backlog = start.saturating_since(now).as_micros() * u128::from(rate) / 1_000_000;
            let backlog_bytes = u64::try_from(backlog).unwrap_or(u64::MAX);
            if backlog_bytes + datagram.len() as u64 > c.queue_bytes.max(datagram.len() as u64) {
                self.stats.dropped_queue += 1;
                return;
            }
            let serialise = Duration::from_micros(datagram.len() as u64 * 1_000_000 / rate);
            self.link_free_at = start + serialise;
            depart = self.link_free_at;
        }
        let copies = if self.rng.chance(c.duplicate) { 2 } else { 1 };
        self.stats.duplicated += copies - 1;
        for _ in 0..copies {
            let c = &self.config;
            let mut at = depart + c.delay;
            if !c.jitter.is_zero() {
                at = at + Duration::from_micros(self.rng.below(c.jitter.as_micros() as u64 + 1));
            }
            if self.rng.chance(c.reorder) {
                at = at + c.reorder_delay;
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

/// Items waiting until their instant, released in time order (ties in insertion order).
#[derive(Debug)]
pub struct DelayLine<T> {
    heap: BinaryHeap<Reverse<(Timestamp, u64, Slot<T>)>>,
    seq: u64,
}

/// Wrapper that makes any item orderable by ignoring it.
#[derive(Debug)]
struct Slot<T>(T);
impl<T> PartialEq for Slot<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T> Default for DelayLine<T> {
    fn default() -> Self {
        DelayLine {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> DelayLine<T> {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds `item` until `at`.
    pub fn push(&mut self, at: Timestamp, item: T) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, Slot(item))));
    }

    /// The instant of the earliest item.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Removes and returns the earliest item if it is due at `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, T)> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((t, _, Slot(item)))| (t, item))
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
            imp.apply(Timestamp::ZERO, &[0u8; 10], &mut out);
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
            imp.apply(Timestamp::ZERO, &[0u8; 1000], &mut out);
        }
        // 1 ms per datagram at 1 MB/s; ten fit in the queue.
        assert_eq!(out.len(), 10);
        assert_eq!(out[9].0, Timestamp::from_millis(10));
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
            imp.apply(Timestamp::ZERO, &[0u8; 1000], &mut out);
        }
        assert_eq!(out.len(), 10);
        assert_eq!(imp.stats().dropped_queue, 10);
        // Once the queue drained for 5 ms, five more fit.
        out.clear();
        for _ in 0..10 {
            imp.apply(Timestamp::from_millis(5), &[0u8; 1000], &mut out);
        }
        assert_eq!(out.len(), 5);
        assert_eq!(out[4].0, Timestamp::from_millis(15));
    }

    #[test]
    fn delay_line_releases_in_time_order() {
        let mut d = DelayLine::new();
        d.push(Timestamp::from_millis(5), "b");
        d.push(Timestamp::from_millis(1), "a");
        d.push(Timestamp::from_millis(5), "c");
        assert_eq!(d.pop_due(Timestamp::ZERO), None);
        let all: Vec<_> = std::iter::from_fn(|| d.pop_due(Timestamp::from_millis(9)))
            .map(|(_, x)| x)
            .collect();
        assert_eq!(all, ["a", "b", "c"]);
    }
}
