//! The congestion controller: a model of the path, as BBR builds one
//! (draft-cardwell-iccrg-bbr-congestion-control), fed by pixgram's own feedback.
//!
//! The model has two numbers. The bottleneck bandwidth is the highest delivery rate measured
//! over the last [`BW_WINDOW_ROUNDS`] round trips (delivered bytes, from the receiver's ACKs,
//! NACKs and progress reports, over at least [`MIN_SAMPLE_SPAN`] or the lowest RTT). The
//! round-trip propagation delay is the lowest RTT sampled over the last [`MIN_RTT_WINDOW`]
//! (10 s). Their product is the path's bandwidth-delay product (BDP).
//!
//! The sender paces at `pacing_gain x bandwidth` and keeps at most `cwnd_gain x bandwidth x
//! (min RTT + FEEDBACK_DELAY) + 2 quanta` in flight (bytes sent, not yet reported delivered
//! or lost). [`FEEDBACK_DELAY`] covers the receiver's report interval: a receiver reports
//! every 16 chunks or 5 ms, so the sender learns of deliveries late by about that.
//!
//! - **Start-up**: gain 2.885 (2/ln 2, doubling the rate every round trip) until the bandwidth
//!   stops growing by 25% for three rounds, a round loses more than [`STARTUP_LOSS`] of what
//!   it sent, or the lowest of the last [`QUEUE_SAMPLES`] RTT samples stands above the lowest
//!   RTT by the queueing threshold (HyStart++'s: a eighth of the RTT, 4 to 16 ms): a queue is
//!   building, the pipe is full.
//! - **Drain**: gain 1/2.885 until what is in flight is no more than one BDP: the queue
//!   start-up built empties.
//! - **Probe bandwidth**: gains cycle through 1.25, 0.75 and six times 1, each phase one min
//!   RTT long (at least [`MIN_PHASE`]; the 0.75 phase ends early once in flight is down to
//!   bandwidth x min RTT): the 1.25 phase asks for more (a rate the path now delivers raises
//!   the estimate), the 0.75 phase drains what the probe queued. A standing queue (the same
//!   RTT test as in start-up) ends a phase of gain 1 or more early for the 0.75 phase, once
//!   per cycle: the estimate is above the path's rate (a competing flow arrived). When
//!   [`FUTILE_DRAINS`] such drains in a row leave the RTT where it was, it stands above the
//!   lowest by more than the sender's own window could queue, and the sender is short of
//!   data (a live stream), the path's delay rose: the lowest RTT is reset to the recent one
//!   (else a path whose delay stepped up would be taken as queued, with a window sized for
//!   the old delay, for 10 s).
//!
//! Loss is not a signal of congestion by itself: a radio link loses datagrams at random, and
//! a sender that slows down for them collapses (Reno's rate falls as 1/sqrt(loss)). Only a
//! round that loses more than [`HEAVY_LOSS`] of what it accounted for (a queue overflowing,
//! the bottleneck's rate dropped) cuts the bandwidth estimate, to 0.7 of itself at most.
//!
//! Random loss is paced for: the estimate is what arrives, and a path that loses datagrams
//! before its bottleneck leaves it idle for the share lost, so while no queue stands the rate
//! is divided by (1 - loss), the loss averaged over rounds, up to [`MAX_COMPENSATED_LOSS`].
//!
//! - **Loss to another flow's queue**: a round that loses more than random loss explains (see
//!   `congestion_threshold`) while the RTT stands above what this sender's own window could
//!   queue caps the window at 0.7 of what was in flight, growing back by 1, 2, 3, ...
//!   datagrams a round: AIMD towards a flow that backs off on loss (TCP CUBIC), which a
//!   model-based sender otherwise starves.
//! - **Probe RTT**: flows sharing a bottleneck keep each other's queue up, and neither would
//!   see the path's delay again. A bulk sender (never short of data) whose samples have all
//!   stood above the lowest RTT for [`PROBE_RTT_INTERVAL`] holds [`MIN_WINDOW`] datagrams in
//!   flight for [`PROBE_RTT_TIME`], as BBR does. A live stream (short of data) skips it: it
//!   would lose frames to it, and it queues little; for it, drains that leave the RTT where it
//!   was mean the path's delay rose, and the lowest RTT is reset to the recent one.
//! - **Sharing**: while a queue stands the window is one BDP (with the feedback delay), not
//!   two, and every window holds [`SHARE_DATAGRAMS`] beyond it whatever the rate: flows that
//!   queue at one bottleneck each get window / RTT, and a part the same for all moves their
//!   shares towards equal (as Vegas' alpha does).
//!
//! Never panics on the numbers it is given: the [`RateConfig`] is sanitised, and every rate is
//! kept within its `min..=max`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::pacing::RateConfig;
use crate::time::Timestamp;

/// How long an RTT sample counts towards the path's lowest RTT (as in BBR): a path whose
/// delay rose (a route change, a radio link stepping down) stops looking queued after this.
pub const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// Slots of the windowed minimum: the lowest RTT is known per tenth of the window.
const MIN_RTT_SLOTS: u64 = 10;
/// Round trips the bandwidth estimate remembers its highest sample for.
pub const BW_WINDOW_ROUNDS: u64 = 10;
/// A delivery-rate sample spans at least this long, and at least the lowest RTT: feedback
/// comes in bursts (a receiver reports per 16 chunks, the sender reads in batches).
pub const MIN_SAMPLE_SPAN: Duration = Duration::from_millis(5);
/// Datagrams a flight from idle must carry to be a rate sample before [`MIN_SAMPLE_SPAN`].
pub const SAMPLE_DATAGRAMS: f64 = 8.0;
/// How late the sender learns of deliveries, beyond the RTT: the receiver's report interval.
pub const FEEDBACK_DELAY: Duration = Duration::from_millis(10);
/// The shortest probe-bandwidth phase.
pub const MIN_PHASE: Duration = Duration::from_millis(10);
/// Start-up's pacing and window gain, 2/ln 2: the rate doubles every round trip.
pub const STARTUP_GAIN: f64 = 2.885;
/// Probe-bandwidth's window gain.
pub const CWND_GAIN: f64 = 2.0;
/// Probe-bandwidth's pacing gains, one phase each.
pub const GAIN_CYCLE: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// A start-up round losing more than this share of what it sent has filled the queue.
pub const STARTUP_LOSS: f64 = 0.15;
/// A round losing more than this share of what it sent overflowed a queue (random loss that
/// high is beyond what any link delivers usefully): the bandwidth estimate restarts from what
/// that round delivered.
pub const HEAVY_LOSS: f64 = 0.25;
/// A round losing more than this share of what it accounted for (and more than random loss
/// explains, see `congestion_threshold`) while the RTT shows a queue lost to that queue: the window is cut (see `inflight_hi`).
pub const CONGESTION_LOSS: f64 = 0.02;
/// The most loss [`Bbr::rate`] paces faster for (see `loss_compensation`).
pub const MAX_COMPENSATED_LOSS: f64 = 0.15;
/// What a heavy-loss round keeps of the bandwidth estimate, at least.
pub const HEAVY_LOSS_BACKOFF: f64 = 0.7;
/// RTT samples whose lowest must stand above the path's lowest RTT to show a queue: one
/// late sample (a receiver descheduled for a moment) does not.
pub const QUEUE_SAMPLES: usize = 4;
/// Early drains in a row that leave the RTT where it was before the lowest RTT is taken to
/// have risen (see [`Bbr::on_rtt`]).
pub const FUTILE_DRAINS: u32 = 2;
/// A sender whose RTT samples have all stood above the lowest by half the queueing threshold
/// for this long, and that always had data to send, drains to [`Mode::ProbeRtt`]: flows
/// sharing a bottleneck keep each other's queue up, and each would otherwise take the queued
/// RTT for the path's once the lowest sample leaves the [`MIN_RTT_WINDOW`] (as BBR does).
pub const PROBE_RTT_INTERVAL: Duration = Duration::from_secs(8);
/// How long [`Mode::ProbeRtt`] holds the window down once in flight is down to it (BBR's).
pub const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
/// Datagrams in flight before the first feedback.
pub const INITIAL_WINDOW: u64 = 32;
/// Datagrams the pacer releases at once before the first rate sample.
pub const INITIAL_BURST: u64 = 16;
/// Datagrams every window holds beyond its share of the path, whatever the rate: flows that
/// share a bottleneck and queue at it each get `window / RTT`, and a part that is the same for
/// every flow (not in proportion to its estimate) moves their shares towards equal.
pub const SHARE_DATAGRAMS: f64 = 16.0;
/// The most time [`SHARE_DATAGRAMS`] may stand for at the flow's own estimate.
pub const SHARE_TIME: Duration = Duration::from_millis(20);
/// The smallest window, in datagrams.
pub const MIN_WINDOW: u64 = 4;
/// Granularity of the send times kept for rate samples.
pub const SEND_MARK: Duration = Duration::from_micros(500);
/// The largest send quantum (burst the pacer releases at once) in bytes: 64 KB, one GSO send
/// of small datagrams. Larger datagrams may make a larger one (see [`QUANTUM_DATAGRAMS`]).
pub const MAX_QUANTUM: f64 = 65_536.0;
/// A send quantum may hold this many datagrams of the size in use when that is more than
/// [`MAX_QUANTUM`]: after path MTU discovery settled on 64 KB datagrams (loopback), a 64 KB
/// quantum paced them one at a time, a wake-up of both ends for each (a 1.9 MB frame: 29).
pub const QUANTUM_DATAGRAMS: f64 = 32.0;

/// A deadline-bound sender's queue standing this long measures the bottleneck's rate (see
/// [`Bbr::cap_to_long_term_rate`]).
pub const LONG_TERM_INTERVAL: Duration = Duration::from_millis(200);
/// How long such a measurement caps the estimate without a new one.
pub const LONG_TERM_HOLD: Duration = Duration::from_secs(3);

/// The lowest RTT sampled in the last [`MIN_RTT_WINDOW`] (and in the slot being filled):
/// the lowest sample of each tenth of the window, at most 11 of them.
#[derive(Debug, Clone, Default)]
struct WindowedMin {
    /// (slot number, lowest sample in it), oldest first.
    slots: VecDeque<(u64, Duration)>,
    /// The lowest of them, kept as they change: the window and the rate are read several
    /// times for every datagram sent.
    lowest: Option<Duration>,
}

impl WindowedMin {
    fn slot(now: Timestamp) -> u64 {
        let width = MIN_RTT_WINDOW.as_micros() as u64 / MIN_RTT_SLOTS;
        now.as_micros() / width
    }

    fn on_sample(&mut self, now: Timestamp, rtt: Duration) {
        let oldest = Self::slot(now).saturating_sub(MIN_RTT_SLOTS);
        while self.slots.front().is_some_and(|&(s, _)| s < oldest) {
            self.slots.pop_front();
        }
        let slot = Self::slot(now);
        match self.slots.back_mut() {
            Some((s, m)) if *s >= slot => *m = (*m).min(rtt),
            _ => self.slots.push_back((slot, rtt)),
        }
        self.lowest = self.slots.iter().map(|&(_, m)| m).min();
    }

    fn get(&self) -> Option<Duration> {
        self.lowest
    }

    /// Forgets every sample: `rtt`, sampled at `now`, is the lowest.
    fn reset(&mut self, now: Timestamp, rtt: Duration) {
        self.slots.clear();
        self.on_sample(now, rtt);
    }
}

/// The highest delivery rate of the last [`BW_WINDOW_ROUNDS`] rounds: (round, highest sample
/// in it), oldest first. It only moves on when a sample is taken, so an application-limited
/// sender (whose samples are not taken) keeps its estimate.
#[derive(Debug, Clone, Default)]
struct WindowedMax {
    rounds: VecDeque<(u64, f64)>,
    /// The highest of them, kept as they change (see [`WindowedMin::lowest`]).
    highest: Option<f64>,
}

impl WindowedMax {
    fn on_sample(&mut self, round: u64, rate: f64) {
        let oldest = round.saturating_sub(BW_WINDOW_ROUNDS - 1);
        while self.rounds.front().is_some_and(|&(r, _)| r < oldest) {
            self.rounds.pop_front();
        }
        match self.rounds.back_mut() {
            Some((r, m)) if *r >= round => *m = m.max(rate),
            _ => self.rounds.push_back((round, rate)),
        }
        self.highest = self.rounds.iter().map(|&(_, m)| m).reduce(f64::max);
    }

    fn get(&self) -> Option<f64> {
        self.highest
    }

    fn reset(&mut self, round: u64, rate: f64) {
        self.rounds.clear();
        self.on_sample(round, rate);
    }
}

/// Where the controller is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Doubling the rate every round trip until the pipe is full.
    Startup,
    /// Emptying the queue start-up built.
    Drain,
    /// Cycling gains around the estimate; the phase index into [`GAIN_CYCLE`].
    ProbeBw(usize),
    /// At most [`MIN_WINDOW`] datagrams in flight for [`PROBE_RTT_TIME`], to see the path's
    /// delay without a queue again (see [`PROBE_RTT_INTERVAL`]).
    ProbeRtt,
}

/// A BBR-like congestion controller. See the module documentation.
#[derive(Debug, Clone)]
pub struct Bbr {
    config: RateConfig,
    mode: Mode,
    phase_start: Timestamp,
    bw: WindowedMax,
    min_rtt: WindowedMin,
    /// The last few RTT samples, for the queue test.
    recent_rtts: VecDeque<Duration>,
    /// Bytes sent, reported delivered, reported lost, and forgotten (in flight when the
    /// sender gave their frame up), since the start.
    sent: u64,
    delivered: u64,
    lost: u64,
    forgotten: u64,
    /// (when, `delivered`) at recent feedback, oldest first, for rate samples.
    marks: VecDeque<(Timestamp, u64, u64)>,
    /// While the oldest mark is where a flight from idle began: `sent` then.
    flight_base: Option<u64>,
    /// The sender ran out of data with nothing in flight, and has sent nothing since.
    idle: bool,
    /// (when, `sent` after it) about every [`SEND_MARK`], oldest first: when the bytes a rate
    /// sample covers were sent, to bound the sample by the rate they were sent at.
    sends: VecDeque<(Timestamp, u64)>,
    /// Round trips counted so far; the round ends once `delivered + lost` reaches
    /// `round_end` (everything sent when it began is accounted for), and at least the lowest
    /// RTT after `round_start`: bytes a timeout forgot may be reported delivered later, and
    /// counted twice they would end rounds at every report.
    round: u64,
    round_end: u64,
    round_start: Timestamp,
    round_delivered: u64,
    round_lost: u64,
    /// The share of accounted bytes lost, averaged over rounds (an eighth per round).
    loss: f64,
    /// The most bytes in flight since a round lost to a queue (see [`CONGESTION_LOSS`]):
    /// cut by [`HEAVY_LOSS_BACKOFF`] at such a round, one datagram more each round without.
    inflight_hi: Option<f64>,
    /// Bytes in flight at the latest feedback.
    inflight: u64,
    /// Datagrams `inflight_hi` grows by at the next round without loss to a queue: one more
    /// each round (after a cut the window comes back within a few dozen rounds on a long,
    /// fast path, and over about as many as TCP takes on a short one).
    inflight_hi_step: f64,
    /// The round probe bandwidth began in: losses reported in the first rounds after it are
    /// start-up's overshoot, not a competing flow's queue.
    probing_since_round: u64,
    /// Start-up's full-pipe test: the highest estimate at a round's end, rounds since it
    /// last grew by 25%, and when the test last counted a round (at most once per sample
    /// span, see [`Bbr::end_round`]).
    full_bw: f64,
    full_bw_rounds: u32,
    full_bw_at: Option<Timestamp>,
    /// Deliveries up to this count were sent while the sender had nothing more to send:
    /// their rate samples say nothing about the path unless they exceed the estimate.
    app_limited_until: u64,
    /// When the sender last ran out of data to send.
    app_limited_at: Option<Timestamp>,
    /// A standing queue was seen in this probe cycle (at most one early drain per cycle).
    drained_in_cycle: bool,
    /// Early drains in a row after which the RTT did not come down, and the RTT that
    /// prompted the first: a queue the sender built empties when it drains, a longer path
    /// does not.
    futile_drains: u32,
    drain_rtt: Option<Duration>,
    /// When an RTT sample last came within half the queueing threshold of the lowest.
    min_rtt_seen_at: Timestamp,
    /// In [`Mode::ProbeRtt`]: when it ends, once in flight is down to its window.
    probe_rtt_until: Option<Timestamp>,
    /// Whether the estimate is capped by the long-term delivery rate (see
    /// [`Bbr::cap_to_long_term_rate`]).
    long_term: bool,
    /// Since when a queue has stood in every RTT sample, and `delivered` then.
    queued_since: Option<(Timestamp, u64)>,
    /// The delivery rate over the last [`LONG_TERM_INTERVAL`] of standing queue, and when it
    /// was measured.
    long_term_rate: Option<(f64, Timestamp)>,
    /// When the last RTT sample came.
    last_rtt_at: Option<Timestamp>,
    /// When the sender last dropped a frame for its deadline or a newer one.
    frame_dropped_at: Option<Timestamp>,
}

impl Bbr {
    /// A controller in start-up, pacing at `config.initial` until the first rate sample.
    /// Never panics: the settings are [sanitised](RateConfig::sanitised) first.
    pub fn new(config: RateConfig) -> Self {
        Bbr {
            config: config.sanitised(),
            mode: Mode::Startup,
            phase_start: Timestamp::ZERO,
            bw: WindowedMax::default(),
            min_rtt: WindowedMin::default(),
            recent_rtts: VecDeque::new(),
            sent: 0,
            delivered: 0,
            lost: 0,
            forgotten: 0,
            marks: VecDeque::new(),
            flight_base: None,
            idle: false,
            sends: VecDeque::new(),
            round: 0,
            round_end: 0,
            round_start: Timestamp::ZERO,
            round_delivered: 0,
            round_lost: 0,
            loss: 0.0,
            inflight_hi: None,
            inflight: 0,
            inflight_hi_step: 1.0,
            probing_since_round: 0,
            full_bw: 0.0,
            full_bw_rounds: 0,
            full_bw_at: None,
            app_limited_until: 0,
            app_limited_at: None,
            drained_in_cycle: false,
            futile_drains: 0,
            drain_rtt: None,
            min_rtt_seen_at: Timestamp::ZERO,
            probe_rtt_until: None,
            long_term: false,
            queued_since: None,
            long_term_rate: None,
            last_rtt_at: None,
            frame_dropped_at: None,
        }
    }

    /// Caps the estimate, from now on, by the rate delivered while a queue stood throughout
    /// the last [`LONG_TERM_INTERVAL`] (held for [`LONG_TERM_HOLD`]): with a queue standing
    /// all along, the bottleneck never idled, and what it delivered is its rate (this flow's
    /// share of it). For a sender with deadlines (live frames): after each pause between
    /// frames a token bucket (tbf's `burst`) lets a burst through at the speed of the link
    /// before it, its delivery rate reads far above the bucket's (15-25 Mbit/s through a
    /// 4 Mbit/s tbf), the windowed maximum keeps it, and the window it sizes holds frames
    /// in the queue past their deadlines.
    pub fn cap_to_long_term_rate(&mut self) {
        self.long_term = true;
    }

    /// Forgets the bandwidth estimate (and the long-term rate that caps it): the sender found
    /// it stale (a live sender that sent nothing for long, every frame judged unable to arrive
    /// at it). Until the next rate sample the sender paces at the initial rate; samples span
    /// from `now`, not from before the silence (read over it, the first read 25-36 kB/s, and
    /// the estimate was as stale as before).
    pub fn forget_bandwidth(&mut self, now: Timestamp) {
        self.bw = WindowedMax::default();
        self.long_term_rate = None;
        self.queued_since = None;
        self.marks.clear();
        self.marks
            .push_back((now, self.delivered, self.accounted()));
        self.flight_base = Some(self.sent);
        // The send times too: the next sample is bounded by the time its bytes took to be
        // sent, and measured from a send before the silence that would be the silence.
        self.sends.clear();
    }

    /// The bandwidth estimate in force: the windowed maximum, capped by the long-term rate
    /// while that holds.
    fn estimate(&self) -> Option<f64> {
        let bw = self.bw.get()?;
        Some(match self.long_term_rate {
            Some((rate, _)) if self.long_term => bw.min(rate.max(self.config.min)),
            _ => bw,
        })
    }

    /// The sender dropped a frame at `now` because it could not arrive by its deadline at
    /// the estimate, or a newer one took its place: it has more to send than the path
    /// delivers. (Not a deadline that passed: on a long path that is the ACK's delay.)
    pub fn on_frame_dropped(&mut self, now: Timestamp) {
        self.frame_dropped_at = Some(now);
    }

    /// Forgets a long-term rate measured more than [`LONG_TERM_HOLD`] before `now`.
    fn expire_long_term_rate(&mut self, now: Timestamp) {
        if self
            .long_term_rate
            .is_some_and(|(_, at)| now.saturating_since(at) > LONG_TERM_HOLD)
        {
            self.long_term_rate = None;
        }
    }

    /// After an RTT sample at `now` (the one before at `previous`): measures the long-term
    /// rate while a queue stands. The bottleneck is known busy between two samples only if
    /// they are closer together than the queueing delay they show (a queue takes that long
    /// to drain); a wider gap, a sample without a queue, or start-up (its samples measure
    /// little) starts the measurement again.
    fn track_long_term_rate(&mut self, now: Timestamp, previous: Option<Timestamp>) {
        if !self.long_term {
            return;
        }
        self.expire_long_term_rate(now);
        let queued = match (self.recent_rtt(), self.min_rtt()) {
            (Some(recent), Some(min)) => recent.saturating_sub(min),
            _ => Duration::ZERO,
        };
        let gap = previous.map_or(Duration::MAX, |p| now.saturating_since(p));
        let probing = matches!(self.mode, Mode::ProbeBw(_) | Mode::ProbeRtt);
        if !self.queue_standing() || !probing {
            self.queued_since = None;
            return;
        }
        match self.queued_since {
            Some((since, delivered)) if gap <= queued => {
                let elapsed = now.saturating_since(since);
                let bytes = self.delivered - delivered;
                if elapsed >= LONG_TERM_INTERVAL {
                    // Only if the sender dropped frames meanwhile: it had more to send than
                    // the path delivered. (A path whose delay rose shows a "queue" too, with
                    // the bottleneck idle: what it delivered then is the stream's own rate.)
                    let short = self.frame_dropped_at.is_some_and(|t| t >= since);
                    if short && bytes as f64 >= SAMPLE_DATAGRAMS * self.config.datagram {
                        let rate = bytes as f64 / elapsed.as_secs_f64();
                        self.long_term_rate = Some((rate, now));
                    }
                    self.queued_since = Some((now, self.delivered));
                }
            }
            _ => self.queued_since = Some((now, self.delivered)),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether still in start-up.
    pub fn in_slow_start(&self) -> bool {
        self.mode == Mode::Startup
    }

    /// The bottleneck bandwidth estimate, bytes per second; `None` before a rate sample.
    pub fn bandwidth(&self) -> Option<f64> {
        self.estimate()
    }

    /// The lowest RTT of the last [`MIN_RTT_WINDOW`].
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.get()
    }

    /// Round trips counted so far.
    pub fn rounds(&self) -> u64 {
        self.round
    }

    fn pacing_gain(&self) -> f64 {
        match self.mode {
            Mode::Startup => STARTUP_GAIN,
            Mode::Drain => 1.0 / STARTUP_GAIN,
            Mode::ProbeBw(i) => GAIN_CYCLE[i],
            Mode::ProbeRtt => 1.0,
        }
    }

    /// Bytes per second to pace at now.
    pub fn rate(&self) -> f64 {
        let rate = match self.estimate() {
            // In start-up the rate never falls below where it started (as BBR's pacing rate
            // only grows until the pipe is full): the first samples of an application-limited
            // sender (a live stream's first frame) say little about the path.
            Some(bw) if self.mode == Mode::Startup => {
                (bw * self.pacing_gain()).max(self.config.initial)
            }
            Some(bw) => bw * self.pacing_gain() * self.loss_compensation(),
            None => self.config.initial,
        };
        rate.clamp(self.config.min, self.config.max)
    }

    /// How much faster to pace than the delivery rate, for loss that is not congestion.
    /// The estimate is what arrives; on a path that loses datagrams at random before its
    /// bottleneck (a radio link, a lossy hop), pacing at it leaves the bottleneck idle for the
    /// share lost. So while no queue stands (the recent RTT within half the queueing threshold
    /// of the lowest), the rate is divided by (1 - loss), for loss up to
    /// [`MAX_COMPENSATED_LOSS`]. A queue that overflows builds up first: its RTT turns the
    /// compensation off before its losses come.
    fn loss_compensation(&self) -> f64 {
        let queued = match (self.recent_rtt(), self.min_rtt(), self.queue_threshold()) {
            (Some(recent), Some(min), Some(limit)) => recent > min + limit / 2,
            _ => true,
        };
        if queued {
            1.0
        } else {
            1.0 / (1.0 - self.loss.min(MAX_COMPENSATED_LOSS))
        }
    }

    /// The share of a round's `accounted` bytes whose loss shows a queue overflowing rather
    /// than random loss: [`CONGESTION_LOSS`], or the background loss plus three standard
    /// deviations of a round that size (binomial), whichever is higher. At 5% random loss a
    /// round of 80 datagrams loses up to 12% by chance.
    fn congestion_threshold(&self, accounted: u64) -> f64 {
        let p = self.loss.clamp(0.0, 1.0);
        let n = (accounted as f64 / self.config.datagram).max(1.0);
        CONGESTION_LOSS.max(p + 3.0 * (p * (1.0 - p) / n).sqrt())
    }

    /// The share of bytes lost, averaged over the last rounds.
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// The bandwidth-delay product with the feedback delay, bytes; `None` before the model
    /// knows both.
    fn bdp(&self) -> Option<f64> {
        Some(self.estimate()? * (self.min_rtt.get()? + FEEDBACK_DELAY).as_secs_f64())
    }

    /// The path's own bandwidth-delay product, bytes.
    fn pipe(&self) -> Option<f64> {
        Some(self.estimate()? * self.min_rtt.get()?.as_secs_f64())
    }

    /// Bytes the pacer may release at once at the current rate: about 1 ms of data, at least
    /// two datagrams, at most [`MAX_QUANTUM`] (BBR's send quantum). A driver that sends every
    /// datagram released at one wake-up in one batch (UDP GSO) then sends bursts of up to
    /// 64 KB at high rates, while the long-run rate stays paced.
    /// Before the first rate sample it is [`INITIAL_BURST`] datagrams: the first flight leaves
    /// as it did before pixgram had a model (and as TCP's initial window does).
    pub fn send_quantum(&self) -> f64 {
        self.send_quantum_for(self.config.datagram)
    }

    /// The send quantum of a sender whose datagrams are now `datagram` bytes (path MTU
    /// discovery may have raised them above the configured size): as
    /// [`send_quantum`](Bbr::send_quantum), but at most [`QUANTUM_DATAGRAMS`] of them or
    /// [`MAX_QUANTUM`], whichever is more. The bound that matters for queues stays the
    /// millisecond: a burst adds at most 1 ms of delay at a bottleneck of the pacing rate.
    pub fn send_quantum_for(&self, datagram: f64) -> f64 {
        let configured = self.config.datagram;
        let cap = MAX_QUANTUM
            .max(QUANTUM_DATAGRAMS * datagram.max(configured))
            .max(2.0 * configured);
        let quantum = (self.rate() * 0.001).clamp(2.0 * configured, cap);
        if self.bw.get().is_none() {
            quantum.max(INITIAL_BURST as f64 * configured)
        } else {
            quantum
        }
    }

    /// Bytes that may be in flight (sent, not yet reported delivered or lost).
    pub fn cwnd(&self) -> u64 {
        let cwnd = self.cwnd_unbounded();
        match self.inflight_hi {
            Some(hi) if self.mode != Mode::ProbeRtt => cwnd.min(hi as u64),
            _ => cwnd,
        }
    }

    /// The window the model alone allows, without the bound loss to a queue set.
    fn cwnd_unbounded(&self) -> u64 {
        let datagram = self.config.datagram;
        let cwnd = match self.bdp() {
            _ if self.mode == Mode::ProbeRtt => MIN_WINDOW as f64 * datagram,
            None => INITIAL_WINDOW as f64 * datagram,
            Some(bdp) => {
                let gain = match self.mode {
                    Mode::Startup | Mode::Drain => STARTUP_GAIN,
                    // A standing queue: the path is full, and what is queued is delay for
                    // every flow through it. One BDP (with the feedback delay) is enough.
                    Mode::ProbeBw(_) if self.queue_standing() => 1.0,
                    Mode::ProbeBw(_) | Mode::ProbeRtt => CWND_GAIN,
                };
                let floor = if self.mode == Mode::Startup {
                    INITIAL_WINDOW
                } else {
                    MIN_WINDOW
                };
                // The common part queues at most SHARE_TIME at the flow's own rate: on a slow
                // link 16 datagrams would be most of the queue (77 ms at 2 Mbit/s).
                let bw = self.estimate().unwrap_or(0.0);
                let share = (SHARE_DATAGRAMS * datagram).min(bw * SHARE_TIME.as_secs_f64());
                (gain * bdp + 2.0 * self.send_quantum() + share).max(floor as f64 * datagram)
            }
        };
        cwnd.min(u64::MAX as f64) as u64
    }

    /// The sender is about to send with nothing in flight: a flight starts from idle (a
    /// stop-and-wait sender's next frame). Rate samples start here, as BBR's do: spanning the
    /// idle gap before it, they would measure the application's pauses, and a sender paced
    /// at what it measured would never measure more.
    pub fn on_flight_start(&mut self, now: Timestamp) {
        if !self.idle {
            // Nothing in flight because a timeout forgot it, not because the sender had
            // nothing to send: the samples go on.
            return;
        }
        self.marks.clear();
        self.marks
            .push_back((now, self.delivered, self.accounted()));
        self.flight_base = Some(self.sent);
    }

    /// `bytes` of data were sent at `now`.
    pub fn on_sent(&mut self, now: Timestamp, bytes: u64) {
        if self.sent == 0 {
            self.phase_start = now;
        }
        self.sent += bytes;
        self.idle = false;
        match self.sends.back_mut() {
            Some((t, s)) if now.saturating_since(*t) < SEND_MARK => *s = self.sent,
            _ => {
                self.sends.push_back((now, self.sent));
                if self.sends.len() > 4096 {
                    self.sends.pop_front();
                }
            }
        }
    }

    /// When the byte at position `pos` of everything sent went out (to [`SEND_MARK`]).
    fn sent_at(&self, pos: u64) -> Option<Timestamp> {
        let i = self.sends.partition_point(|&(_, s)| s < pos);
        self.sends.get(i).map(|&(t, _)| t)
    }

    /// The sender has nothing more to send, with `inflight` bytes in flight: rate samples of
    /// what is in flight now measure the application, not the path.
    pub fn on_app_limited(&mut self, now: Timestamp, inflight: u64) {
        self.app_limited_until = self.accounted() + inflight.max(1);
        self.app_limited_at = Some(now);
        self.idle |= inflight == 0;
        self.expire_long_term_rate(now);
    }

    /// Bytes whose fate is known or will never be: delivered, lost or forgotten.
    fn accounted(&self) -> u64 {
        self.delivered + self.lost + self.forgotten
    }

    /// `bytes` in flight will never be reported: their frame was given up (past its deadline,
    /// superseded, timed out). They end rounds as if delivered, but are no rate sample.
    pub fn on_forgotten(&mut self, bytes: u64) {
        self.forgotten += bytes;
    }

    /// `bytes` of a frame the sender had given up (see [`Bbr::on_forgotten`]) were reported
    /// delivered after all: a rate sample, and no longer forgotten.
    pub fn on_late_delivery(&mut self, now: Timestamp, bytes: u64) {
        let was_forgotten = bytes.min(self.forgotten);
        self.forgotten -= was_forgotten;
        self.delivered += bytes;
        // Bytes never counted as in flight (sent before a window reset) may arrive too:
        // they end rounds like any delivery.
        self.sample_rate(now);
    }

    /// An RTT sample that answers a single transmission (not a resent chunk's).
    pub fn on_rtt(&mut self, now: Timestamp, rtt: Duration) {
        self.min_rtt.on_sample(now, rtt);
        if let (Some(min), Some(limit)) = (self.min_rtt(), self.queue_threshold()) {
            if rtt <= min + limit / 2 {
                self.min_rtt_seen_at = now;
            }
        }
        self.recent_rtts.push_back(rtt);
        while self.recent_rtts.len() > QUEUE_SAMPLES {
            self.recent_rtts.pop_front();
        }
        let previous = self.last_rtt_at.replace(now);
        self.track_long_term_rate(now, previous);
        if !self.queue_standing() {
            if self.recent_rtts.len() >= QUEUE_SAMPLES {
                self.futile_drains = 0;
                self.drain_rtt = None;
            }
            return;
        }
        match self.mode {
            Mode::Startup => self.enter_drain(now),
            Mode::ProbeBw(i) if GAIN_CYCLE[i] >= 1.0 && !self.drained_in_cycle => {
                let recent = self.recent_rtt().unwrap_or(rtt);
                let limit = self.queue_threshold().unwrap_or_default();
                // More queueing than this sender's own window could hold is not (only) its
                // own queue.
                let own = self.own_queue_rtt();
                if recent <= own || !self.app_limited_lately(now) {
                    self.futile_drains = 0;
                    self.drain_rtt = None;
                } else if self
                    .drain_rtt
                    .is_some_and(|first| recent + limit / 2 >= first)
                {
                    self.futile_drains += 1;
                } else {
                    self.futile_drains = 1;
                    self.drain_rtt = Some(recent);
                }
                if self.futile_drains > FUTILE_DRAINS {
                    // Draining did not bring the RTT down: the path's delay rose (a longer
                    // route, a radio link stepping down), no queue of ours. Its lowest RTT is
                    // what it is now.
                    self.min_rtt.reset(now, recent);
                    self.futile_drains = 0;
                    self.drain_rtt = None;
                } else {
                    self.drained_in_cycle = true;
                    self.enter_phase(now, 1);
                }
            }
            _ => {}
        }
    }

    /// Whether the sender ran out of data to send in the last [`MIN_RTT_WINDOW`] / 10: then
    /// it cannot be keeping a standing queue up by itself (a live stream is; a bulk sender
    /// with its window full is not).
    fn app_limited_lately(&self, now: Timestamp) -> bool {
        self.app_limited_at
            .is_some_and(|t| now.saturating_since(t) <= MIN_RTT_WINDOW / MIN_RTT_SLOTS as u32)
    }

    /// The highest RTT this sender's own window could cause: the lowest RTT plus the time
    /// the bottleneck takes to send a full window. An RTT above it is (also) another flow's
    /// queue. `Duration::MAX` before the model knows both.
    fn own_queue_rtt(&self) -> Duration {
        match (self.estimate(), self.min_rtt()) {
            (Some(bw), Some(min)) if bw > 0.0 => {
                min + Duration::from_secs_f64((self.cwnd_unbounded() as f64 / bw).min(60.0))
            }
            _ => Duration::MAX,
        }
    }

    /// Queueing delay above which the path counts as queued: HyStart++'s threshold, an eighth
    /// of the lowest RTT within 4 to 16 ms.
    pub fn queue_threshold(&self) -> Option<Duration> {
        Some((self.min_rtt()? / 8).clamp(Duration::from_millis(4), Duration::from_millis(16)))
    }

    /// Whether the lowest of the last [`QUEUE_SAMPLES`] RTT samples shows a queue.
    fn queue_standing(&self) -> bool {
        let (Some(min), Some(limit)) = (self.min_rtt(), self.queue_threshold()) else {
            return false;
        };
        self.recent_rtts.len() >= QUEUE_SAMPLES
            && self
                .recent_rtts
                .iter()
                .min()
                .is_some_and(|&r| r > min + limit)
    }

    /// The lowest RTT sample among the last few: what the queue test looks at.
    pub fn recent_rtt(&self) -> Option<Duration> {
        self.recent_rtts.iter().min().copied()
    }

    /// The receiver reported `delivered` more bytes and the sender took `lost` more as lost
    /// (NACKed), with `inflight` bytes still in flight after it.
    pub fn on_feedback(&mut self, now: Timestamp, delivered: u64, lost: u64, inflight: u64) {
        self.delivered += delivered;
        self.lost += lost;
        self.round_delivered += delivered;
        self.round_lost += lost;
        self.inflight = inflight;
        self.expire_long_term_rate(now);
        if lost > 0 {
            // Dropped at a queue: more was sent than the path delivered, as when the sender
            // drops frames (see `track_long_term_rate`).
            self.frame_dropped_at = Some(now);
        }
        if delivered > 0 {
            self.sample_rate(now);
        }
        let shortest = self.min_rtt().unwrap_or(Duration::ZERO);
        if self.accounted() >= self.round_end && now.saturating_since(self.round_start) >= shortest
        {
            self.end_round(now);
        }
        self.advance(now, inflight);
    }

    /// How long a delivery-rate sample spans at least: the lowest RTT and 5 ms, and long
    /// enough for 8 datagrams (at most 50 ms): at 2 Mbit/s a span of two datagrams would read
    /// 1.5x the rate when a frame's ACK reports a third at once, and the highest-sample filter
    /// keeps such readings.
    fn sample_span(&self) -> Duration {
        let datagrams = Duration::from_secs_f64(
            (SAMPLE_DATAGRAMS * self.config.datagram
                / self.bw.get().unwrap_or(self.rate()).max(self.config.min))
            .min(0.05),
        );
        self.min_rtt()
            .unwrap_or(MIN_SAMPLE_SPAN)
            .max(MIN_SAMPLE_SPAN)
            .max(datagrams)
    }

    /// A delivery-rate sample: bytes delivered since the newest mark at least a span old.
    fn sample_rate(&mut self, now: Timestamp) {
        let span = self.sample_span();
        while self.marks.len() >= 2 && now.saturating_since(self.marks[1].0) >= span {
            self.marks.pop_front();
            self.flight_base = None;
        }
        let accounted = self.accounted();
        if let Some(&(t, d, a)) = self.marks.front() {
            let elapsed = now.saturating_since(t);
            // A flight from idle that is all accounted for is a sample however short, if it
            // carried enough datagrams to say something (a stop-and-wait frame).
            // What a flight from idle delivered is at most what it sent: a late report of an
            // older frame given up must not read as this flight's.
            let delivered = match self.flight_base {
                Some(base) => (self.delivered - d).min(self.sent - base),
                None => self.delivered - d,
            };
            let flight_done = self.flight_base.is_some()
                && accounted >= self.sent
                && delivered as f64 >= SAMPLE_DATAGRAMS * self.config.datagram;
            // A flight from idle: nothing was in flight at its mark, so no byte of it could
            // be reported before one round trip; what it delivered arrived over the time
            // since then. Over all of `elapsed`, a short flight (a live frame, a
            // stop-and-wait frame) would read as its bytes over its send time plus the RTT,
            // always below the rate it was paced at: an application-limited sender could
            // then never measure more than it was pacing at, and settled where a frame's
            // send time is a few RTTs (a 64 KB frame in 12 ms on a 1 Gbit/s path with a
            // 0.2 ms RTT). The last byte's report arrives its send time, its wait in any
            // queue and its RTT (at least the lowest) after the mark, so this time is at
            // least the flight's send time and its queueing: a sample is never above the
            // rate sent at, nor above a bottleneck's rate.
            let from_idle = self.flight_base.is_some();
            let arriving = if from_idle {
                let rtt = self.min_rtt().unwrap_or(Duration::ZERO);
                elapsed.saturating_sub(rtt).max(elapsed / 16)
            } else {
                elapsed
            };
            if (elapsed >= span || flight_done) && !elapsed.is_zero() {
                // As BBR does: over the longer of the time the bytes took to be reported
                // and the time they took to be sent. Feedback that arrives in a burst (a
                // receiver or sender reading its socket in batches) would otherwise read
                // faster than anything was sent, and the highest-sample filter keeps it.
                // A flight from idle began to be sent at its mark (the send mark holding
                // its position `a` is the end of the flight before, a pause ago).
                let first_sent = if from_idle {
                    Some(t)
                } else {
                    self.sent_at(a.min(self.sent))
                };
                let sending = match (first_sent, self.sent_at(accounted.min(self.sent))) {
                    (Some(t0), Some(t1)) => t1.saturating_since(t0),
                    _ => Duration::ZERO,
                };
                // Only a sample above the estimate is bounded so: below it, the send time
                // includes the sender's own idle gaps between frames.
                let bytes = delivered as f64;
                let reported = bytes / arriving.as_secs_f64();
                let bounded = bytes / arriving.max(sending).as_secs_f64();
                let rate = match self.bw.get() {
                    Some(bw) => reported.min(bounded.max(bw)),
                    None => bounded,
                };
                let app_limited = self.delivered < self.app_limited_until;
                // An application-limited sample only raises the estimate (or starts one).
                if !app_limited || self.bw.get().is_none_or(|bw| rate > bw) {
                    self.bw.on_sample(self.round, rate);
                }
            }
        }
        if self.marks.len() < 1024 {
            self.marks.push_back((now, self.delivered, accounted));
        }
    }

    /// At a round's end, with `loss` of its `accounted` bytes lost: loss to a queue (above
    /// the background random loss, with the RTT above what this sender's own window could
    /// queue, so another flow keeps it full) caps the window at 0.7 of what was in flight, as
    /// a flow that backs off on loss (TCP) beside it cuts its own, which would otherwise be
    /// starved. Each round without grows the cap by 1, 2, 3, ... datagrams, until it is no
    /// bound any more.
    fn bound_inflight(&mut self, loss: f64, accounted: u64) {
        let queued = self.recent_rtt().is_some_and(|r| r > self.own_queue_rtt());
        let congested = self.round_lost as f64 >= 2.0 * self.config.datagram
            && loss > self.congestion_threshold(accounted)
            && queued
            && matches!(self.mode, Mode::ProbeBw(_))
            && self.round >= self.probing_since_round + 2;
        let datagram = self.config.datagram;
        if congested {
            let floor = MIN_WINDOW as f64 * datagram;
            let base = self
                .inflight_hi
                .unwrap_or(f64::MAX)
                .min(self.inflight as f64);
            self.inflight_hi = Some((base * HEAVY_LOSS_BACKOFF).max(floor));
            self.inflight_hi_step = 1.0;
        } else if let Some(hi) = &mut self.inflight_hi {
            *hi += self.inflight_hi_step * datagram;
            self.inflight_hi_step += 1.0;
            if *hi as u64 >= self.cwnd_unbounded() {
                self.inflight_hi = None;
            }
        }
    }

    fn end_round(&mut self, now: Timestamp) {
        // The share of what this round accounted for (reported delivered or lost) that was
        // lost. Not of what it sent: a NACK names chunks sent rounds ago, and a short round
        // would read a burst of old losses as most of its own traffic.
        let accounted = self.round_delivered + self.round_lost;
        let loss = self.round_lost as f64 / accounted.max(1) as f64;
        let counted = self.round_lost as f64 >= 4.0 * self.config.datagram;
        let heavy = counted && loss > HEAVY_LOSS;
        let startup_loss = counted && loss > STARTUP_LOSS;
        self.bound_inflight(loss, accounted);
        if accounted as f64 >= 8.0 * self.config.datagram {
            self.loss += (loss - self.loss) / 8.0;
        }
        self.round += 1;
        self.round_end = self.sent;
        self.round_start = now;
        self.round_delivered = 0;
        self.round_lost = 0;
        if heavy {
            // A queue overflowed by a quarter of the traffic: the estimate is above what the
            // path carries now. Back off multiplicatively (as BBRv2 and CUBIC do, by 0.7),
            // or to the latest rate sample if that is higher: one round's sample may be a
            // stall (every frame of the window waiting for resends), not the path's rate.
            if let Some(bw) = self.bw.get() {
                let rate = self
                    .latest_rate()
                    .unwrap_or(0.0)
                    .max(bw * HEAVY_LOSS_BACKOFF);
                self.bw.reset(self.round, rate.min(bw));
            }
        }
        // The full-pipe test counts a round only once a sample span has passed since the
        // last one it counted: a rate sample spans at least that long, so on a path whose
        // RTT is far shorter (loopback: 40 us against 5 ms) three rounds passed before the
        // doubled rate could show in any sample, and start-up ended at 2.9 of 10 Gbit/s in the
        // simulator, leaving the rest to the probe cycle's 25% per 80 ms.
        if self.mode == Mode::Startup {
            let bw = self.bw.get().unwrap_or(0.0);
            let span_passed = self
                .full_bw_at
                .is_none_or(|t| now.saturating_since(t) >= self.sample_span());
            if span_passed {
                self.full_bw_at = Some(now);
                if bw >= self.full_bw * 1.25 {
                    self.full_bw = bw;
                    self.full_bw_rounds = 0;
                } else if self.delivered >= self.app_limited_until {
                    self.full_bw_rounds += 1;
                }
            }
            if self.full_bw_rounds >= 3 || (startup_loss && bw > 0.0) {
                self.enter_drain(now);
            }
        } else if heavy {
            if let Mode::ProbeBw(_) = self.mode {
                self.enter_phase(now, 1);
            }
        }
    }

    /// The delivery rate over the marks kept (about one span).
    fn latest_rate(&self) -> Option<f64> {
        let &(t0, d0, _) = self.marks.front()?;
        let &(t1, d1, _) = self.marks.back()?;
        let elapsed = t1.saturating_since(t0).as_secs_f64();
        (elapsed > 0.0).then(|| (d1 - d0) as f64 / elapsed)
    }

    fn enter_drain(&mut self, now: Timestamp) {
        self.mode = Mode::Drain;
        self.phase_start = now;
    }

    fn enter_phase(&mut self, now: Timestamp, phase: usize) {
        if phase == 0 {
            self.drained_in_cycle = false;
        }
        if !matches!(self.mode, Mode::ProbeBw(_) | Mode::ProbeRtt) {
            self.probing_since_round = self.round;
        }
        self.mode = Mode::ProbeBw(phase);
        self.phase_start = now;
    }

    /// Moves through drain and the gain cycle. Call on feedback and when the pacer holds the
    /// sender back.
    pub fn advance(&mut self, now: Timestamp, inflight: u64) {
        let phase_len = self.min_rtt().unwrap_or(MIN_PHASE).max(MIN_PHASE);
        let bdp = self.bdp();
        if matches!(self.mode, Mode::Drain | Mode::ProbeBw(_))
            && now.saturating_since(self.min_rtt_seen_at) >= PROBE_RTT_INTERVAL
            && !self.app_limited_lately(now)
        {
            self.mode = Mode::ProbeRtt;
            self.phase_start = now;
            self.probe_rtt_until = None;
        }
        match self.mode {
            Mode::Startup => {}
            Mode::ProbeRtt => {
                let window = MIN_WINDOW as f64 * self.config.datagram;
                if self.probe_rtt_until.is_none() && inflight as f64 <= window {
                    let hold = self.min_rtt().unwrap_or(Duration::ZERO).max(PROBE_RTT_TIME);
                    self.probe_rtt_until = Some(now + hold);
                }
                // Bounded even if in flight never comes down (feedback lost): 8 holds.
                let stuck = now.saturating_since(self.phase_start) > PROBE_RTT_TIME * 8;
                if stuck || self.probe_rtt_until.is_some_and(|t| now >= t) {
                    self.min_rtt_seen_at = now;
                    self.probe_rtt_until = None;
                    self.enter_phase(now, 2);
                }
            }
            Mode::Drain => {
                let drained = bdp.is_none_or(|b| inflight as f64 <= b);
                if drained || now.saturating_since(self.phase_start) > phase_len * 8 {
                    // Start the cycle past the probe, as BBR does, so the first phase after
                    // a drain does not queue at once.
                    self.enter_phase(now, 2);
                }
            }
            Mode::ProbeBw(i) => {
                let elapsed = now.saturating_since(self.phase_start);
                let done = match i {
                    // The drain phase ends early once in flight is down to the path's own
                    // BDP (as in BBR; without the feedback delay): nothing is queued any
                    // more, or the sender is application-limited and queued nothing.
                    1 => elapsed >= phase_len || self.pipe().is_none_or(|b| inflight as f64 <= b),
                    _ => elapsed >= phase_len,
                };
                if done {
                    self.enter_phase(now, (i + 1) % GAIN_CYCLE.len());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbr() -> Bbr {
        Bbr::new(RateConfig {
            initial: 1e6,
            min: 1e4,
            max: 1e9,
            datagram: 1000.0,
        })
    }

    /// Feeds a path of `rate` bytes/s and `rtt` for `rounds` round trips, the sender sending
    /// what the controller allows, feedback every millisecond; returns the controller.
    fn drive(c: &mut Bbr, start_ms: u64, ms: u64, path_rate: f64, rtt: Duration) {
        // The path delivers min(sending rate, path rate), an RTT later.
        let mut pipe: VecDeque<(u64, u64)> = VecDeque::new(); // (deliver at ms, bytes)
        let mut inflight = 0u64;
        let rtt_ms = rtt.as_millis() as u64;
        for t in start_ms..start_ms + ms {
            let now = Timestamp::from_millis(t);
            let send = (c.rate() / 1000.0).min((c.cwnd().saturating_sub(inflight)) as f64) as u64;
            c.on_sent(now, send);
            inflight += send;
            // Delivered at the path's rate at most: the rest queues.
            pipe.push_back((t + rtt_ms, send));
            let mut budget = (path_rate / 1000.0) as u64;
            let mut delivered = 0;
            while let Some(&(at, bytes)) = pipe.front() {
                if at > t || budget == 0 {
                    break;
                }
                let take = bytes.min(budget);
                budget -= take;
                delivered += take;
                if take == bytes {
                    pipe.pop_front();
                } else {
                    pipe.front_mut().unwrap().1 -= take;
                }
            }
            inflight -= delivered;
            let queued: u64 = pipe.iter().filter(|(at, _)| *at <= t).map(|(_, b)| b).sum();
            let q = Duration::from_secs_f64(queued as f64 / path_rate);
            if delivered > 0 {
                c.on_rtt(now, rtt + q);
            }
            c.on_feedback(now, delivered, 0, inflight);
        }
    }

    #[test]
    fn start_up_finds_the_bottleneck_then_probes_around_it() {
        let mut c = bbr();
        let rtt = Duration::from_millis(20);
        drive(&mut c, 0, 2_000, 10e6, rtt);
        assert!(!c.in_slow_start());
        let bw = c.bandwidth().unwrap();
        assert!((9e6..=11e6).contains(&bw), "{bw}");
        assert_eq!(c.min_rtt(), Some(rtt));
        assert!(matches!(c.mode(), Mode::ProbeBw(_)));
        // The window is about two BDPs (with the feedback delay) and a few quanta.
        let bdp = bw * 0.030;
        assert!(
            (c.cwnd() as f64) < 2.0 * bdp + 2.0 * MAX_QUANTUM,
            "{}",
            c.cwnd()
        );
    }

    #[test]
    fn random_loss_does_not_lower_the_estimate() {
        let mut c = bbr();
        let rtt = Duration::from_millis(20);
        drive(&mut c, 0, 2_000, 10e6, rtt);
        let before = c.bandwidth().unwrap();
        for t in 2_000..3_000u64 {
            let now = Timestamp::from_millis(t);
            c.on_sent(now, 10_000);
            // 5% of every millisecond's datagrams lost, the rest delivered.
            c.on_rtt(now, rtt);
            c.on_feedback(now, 9_500, 500, 200_000);
        }
        assert!(
            c.bandwidth().unwrap() >= before * 0.9,
            "{:?}",
            c.bandwidth()
        );
    }

    #[test]
    fn a_burst_of_old_losses_in_a_short_round_does_not_reset_the_estimate() {
        let mut c = bbr();
        let rtt = Duration::from_millis(10);
        drive(&mut c, 0, 2_000, 10e6, rtt);
        let before = c.bandwidth().unwrap();
        // A round that sent little, then a NACK naming 20 chunks sent rounds ago: 80% of what
        // the round sent, a small share of what it accounted for.
        let now = Timestamp::from_millis(2_100);
        c.on_sent(now, 17_000);
        c.on_feedback(now, 0, 20_000, 0);
        c.on_feedback(Timestamp::from_millis(2_120), 200_000, 0, 0);
        assert!(
            c.bandwidth().unwrap() >= before * HEAVY_LOSS_BACKOFF,
            "{before} -> {:?}",
            c.bandwidth()
        );
    }

    #[test]
    fn random_loss_without_a_queue_is_paced_for() {
        let mut c = bbr();
        let rtt = Duration::from_millis(20);
        drive(&mut c, 0, 2_000, 10e6, rtt);
        for t in 2_000..4_000u64 {
            let now = Timestamp::from_millis(t);
            c.on_sent(now, 10_000);
            c.on_rtt(now, rtt);
            c.on_feedback(now, 9_500, 500, 200_000);
        }
        assert!((0.04..0.06).contains(&c.loss()), "{}", c.loss());
        c.mode = Mode::ProbeBw(2);
        let bw = c.bandwidth().unwrap();
        assert!(
            (c.rate() / bw - 1.0 / 0.95).abs() < 0.01,
            "{} / {bw}",
            c.rate()
        );
        // With a queue standing, no compensation: the losses may be the queue's.
        for i in 0..QUEUE_SAMPLES as u64 {
            c.on_rtt(Timestamp::from_millis(4_000 + i), rtt * 2);
        }
        c.mode = Mode::ProbeBw(2);
        assert_eq!(c.rate(), c.bandwidth().unwrap());
    }

    #[test]
    fn a_queue_kept_up_by_others_leads_to_probe_rtt_unless_app_limited() {
        for app_limited in [false, true] {
            let mut c = bbr();
            let rtt = Duration::from_millis(10);
            drive(&mut c, 0, 1_000, 10e6, rtt);
            // Another flow keeps 30 ms queued: every sample stands above the lowest.
            let mut entered = None;
            for t in 1_000..1_000 + 9_000u64 {
                let now = Timestamp::from_millis(t);
                if app_limited {
                    c.on_app_limited(now, 1_000);
                }
                c.on_sent(now, 5_000);
                c.on_rtt(now, rtt * 4);
                c.on_feedback(now, 5_000, 0, 100_000);
                if c.mode() == Mode::ProbeRtt && entered.is_none() {
                    entered = Some(t);
                    assert_eq!(c.cwnd(), MIN_WINDOW * 1000);
                }
            }
            if app_limited {
                assert_eq!(entered, None);
            } else {
                let t = entered.expect("entered probe RTT");
                assert!(
                    t >= 1_000 + PROBE_RTT_INTERVAL.as_millis() as u64 - 1_000,
                    "{t}"
                );
            }
        }
    }

    #[test]
    fn loss_to_another_flows_queue_cuts_the_window_random_loss_does_not() {
        for competitor in [false, true] {
            let mut c = bbr();
            let rtt = Duration::from_millis(10);
            drive(&mut c, 0, 2_000, 10e6, rtt);
            // Random: 5% of every millisecond's datagrams, the RTT at its lowest. Competitor:
            // the RTT 60 ms above the lowest (more than this window could queue) and now and
            // then a millisecond losing half of what it sent (the shared queue overflowing).
            let seen = if competitor { rtt * 7 } else { rtt };
            let mut cut = false;
            for t in 2_000..2_500u64 {
                let now = Timestamp::from_millis(t);
                c.on_sent(now, 10_000);
                c.on_rtt(now, seen);
                let lost = match (competitor, t % 100) {
                    (false, _) => 500,
                    (true, 50) => 5_000,
                    (true, _) => 0,
                };
                c.on_feedback(now, 10_000 - lost, lost, 100_000);
                cut |= c.inflight_hi.is_some();
            }
            assert_eq!(cut, competitor, "competitor {competitor}");
        }
    }

    #[test]
    fn stop_and_wait_flights_measure_the_path_not_the_pauses_between_them() {
        // One 300 KB frame at a time through a 100 MB/s path with 0.1 ms RTT, then 5 ms of
        // nothing (the application). Samples spanning the pauses read a few tens of MB/s,
        // and a sender paced at them never learns more.
        let mut c = bbr();
        let path = 100e6;
        let mut t_us = 0u64;
        for _ in 0..60 {
            let now = Timestamp::from_micros(t_us);
            c.on_app_limited(now, 0);
            c.on_flight_start(now);
            let mut left = 300_000u64;
            while left > 0 {
                // 100 µs steps: what the pacer and the path allow, delivered a step later.
                let now = Timestamp::from_micros(t_us);
                let step = (c.rate().min(path) * 1e-4) as u64;
                let send = step.clamp(1, left);
                c.on_sent(now, send);
                left -= send;
                t_us += 100;
                let later = Timestamp::from_micros(t_us);
                c.on_rtt(later, Duration::from_micros(100));
                c.on_feedback(later, send, 0, left.min(1));
            }
            t_us += 5_000;
        }
        let bw = c.bandwidth().unwrap();
        assert!(
            bw >= 0.4 * path,
            "estimate {bw:.0} B/s of a {path:.0} B/s path"
        );
    }

    #[test]
    fn a_queue_standing_while_frames_are_dropped_caps_the_estimate_at_what_it_delivered() {
        // A 20 ms path; then 5 MB/s delivered with 30 ms queued, while a token bucket's
        // bursts left a 40 MB/s sample in the windowed maximum.
        for (capped, dropping) in [(true, true), (false, true), (true, false)] {
            let mut c = bbr();
            let rtt = Duration::from_millis(20);
            drive(&mut c, 0, 2_000, 10e6, rtt);
            if capped {
                c.cap_to_long_term_rate();
            }
            let round = c.round;
            c.bw.on_sample(round, 40e6);
            for t in 2_000..2_300u64 {
                let now = Timestamp::from_millis(t);
                c.on_sent(now, 5_000);
                c.on_rtt(now, rtt + Duration::from_millis(30));
                c.on_feedback(now, 5_000, 0, 100_000);
                if dropping && t % 33 == 0 {
                    c.on_frame_dropped(now);
                }
            }
            let bw = c.bandwidth().unwrap();
            if capped && dropping {
                assert!((4.5e6..=5.5e6).contains(&bw), "{bw}");
                assert!(c.cwnd() < 400_000, "{}", c.cwnd());
            } else {
                // Not asked for, or no frame dropped (a path whose delay rose, the stream
                // below its rate): the windowed maximum stands.
                assert_eq!(bw, 40e6, "capped {capped} dropping {dropping}");
            }
            // No queue and no new measurement for longer than the hold: the cap lapses.
            let later = 2_300 + LONG_TERM_HOLD.as_millis() as u64 + 10;
            for t in 2_300..later {
                let now = Timestamp::from_millis(t);
                c.on_app_limited(now, 1_000);
                c.on_sent(now, 5_000);
                c.on_rtt(now, rtt);
                c.on_feedback(now, 5_000, 0, 1_000);
            }
            let round = c.round;
            c.bw.on_sample(round, 40e6);
            assert_eq!(c.bandwidth(), Some(40e6));
        }
    }

    #[test]
    fn a_standing_queue_ends_start_up() {
        let mut c = bbr();
        c.on_rtt(Timestamp::ZERO, Duration::from_millis(20));
        for i in 1..=QUEUE_SAMPLES as u64 {
            c.on_rtt(Timestamp::from_millis(i), Duration::from_millis(25));
        }
        // 5 ms above 20 ms is above the threshold (4 ms): start-up ends.
        assert_eq!(c.mode(), Mode::Drain);
    }

    #[test]
    fn one_late_sample_is_not_a_queue() {
        let mut c = bbr();
        c.on_rtt(Timestamp::ZERO, Duration::from_millis(20));
        for i in 1..=10u64 {
            let rtt = if i % 4 == 0 { 60 } else { 21 };
            c.on_rtt(Timestamp::from_millis(i), Duration::from_millis(rtt));
        }
        assert_eq!(c.mode(), Mode::Startup);
    }

    #[test]
    fn the_quantum_is_a_millisecond_between_two_datagrams_and_64_kb() {
        let mut c = Bbr::new(RateConfig {
            initial: 1e6,
            min: 1e4,
            max: 1e12,
            datagram: 1200.0,
        });
        // Before any rate sample: the initial burst.
        assert_eq!(c.send_quantum(), 16.0 * 1200.0);
        c.bw.on_sample(0, 1e6);
        // 1 MB/s (in start-up, paced at 2.885 MB/s): 1 ms is 2,885 bytes.
        assert_eq!(c.send_quantum(), 2885.0);
        c.mode = Mode::ProbeBw(2);
        // At 1 MB/s 1 ms is 1,000 bytes, below two datagrams.
        assert_eq!(c.send_quantum(), 2400.0);
        c.bw.reset(1, 20e6);
        assert_eq!(c.send_quantum(), 20_000.0);
        c.bw.reset(2, 1e9);
        assert_eq!(c.send_quantum(), MAX_QUANTUM);
    }

    #[test]
    fn large_datagrams_make_a_larger_quantum_still_a_millisecond() {
        let new = || {
            Bbr::new(RateConfig {
                initial: 1e6,
                min: 1e4,
                max: 1e12,
                datagram: 1200.0,
            })
        };
        let mut c = new();
        c.bw.on_sample(0, 1e6);
        c.mode = Mode::ProbeBw(2);
        // Slow: a millisecond is below two configured datagrams, whatever the size in use.
        assert_eq!(c.send_quantum_for(65_507.0), 2400.0);
        c.bw.reset(1, 1e9);
        // 1 GB/s: 1 ms is 1 MB. 64 KB datagrams go 15 at once (a 64 KB bound paced them one
        // by one); 1,200-byte ones keep the 64 KB bound.
        assert!((c.send_quantum_for(65_507.0) - 1e6).abs() < 1.0);
        assert_eq!(c.send_quantum_for(1200.0), MAX_QUANTUM);
        assert_eq!(c.send_quantum(), MAX_QUANTUM);
        // Faster still: at most QUANTUM_DATAGRAMS of them.
        c.bw.reset(2, 1e11);
        assert_eq!(c.send_quantum_for(65_507.0), QUANTUM_DATAGRAMS * 65_507.0);
        // Before any sample, the initial burst is of configured datagrams, as before.
        assert_eq!(new().send_quantum_for(65_507.0), 16.0 * 1200.0);
    }

    #[test]
    fn any_config_keeps_the_rate_in_bounds() {
        for &max in &[f64::NAN, 0.0, -1.0, 12_500.0, f64::INFINITY] {
            let mut c = Bbr::new(RateConfig {
                initial: f64::NAN,
                min: f64::NAN,
                max,
                datagram: f64::NAN,
            });
            drive(&mut c, 0, 300, 1e6, Duration::from_millis(5));
            let s = c.config.clone();
            assert!((s.min..=s.max).contains(&c.rate()), "{}", c.rate());
            assert!(c.cwnd() > 0 && c.send_quantum() >= 2.0);
        }
    }
}
