//! Pacing and congestion control: how fast the sender may put bytes on the wire.
//!
//! [`RateController`] is a rate-based AIMD that tells congestion from random loss. It measures
//! loss in windows (at least one smoothed RTT and 64 datagrams, or a mebibyte of large
//! datagrams but at least 16): the share of datagrams sent in the window that the receiver
//! NACKed, charged to the window the lost datagram was sent in. A window is judged only two
//! RTTs and 10 ms after it closed, once NACKs for its datagrams have had time to come back
//! (judging earlier misses most of the loss and lets a queue overflow unseen). The path's
//! random-loss baseline `p` is the lowest loss of the last 8 windows (capped at 30%, and
//! taken as 30% until two windows are known). A window is *congested* when its loss is above
//! `p + 10%` and above `2p + 5%` (a queue overflowing), or when the lowest RTT sampled since
//! the previous judgement exceeds the path's lowest RTT by more than the queueing-delay
//! threshold, the larger of 10 ms and half the lowest RTT (a queue building up before it
//! overflows). A congested window cuts the rate (to 70% for loss, 85% for delay) and ends slow
//! start; windows sent before the cut took effect are not cut again, so one overflow costs
//! one cut. Any other window in which the sender had more to send grows the rate: doubling in
//! slow start, then by the larger of one datagram per RTT and 2%: a rate cut far below the
//! path's capacity recovers in a few dozen round trips, and growth near it overshoots little.
//! In slow start, one RTT sample over the threshold ends it at once and halves the rate: the
//! windows showing the queue would be judged a few RTTs (and doublings) too late. Delay counts
//! only while the sender fills the path (the pacer holds data back): an application-limited
//! stream did not build the queue, and a busy host's scheduling jitter looks the same.
//!
//! Why not plain loss-based AIMD (every loss halves the rate, as in TCP Reno): Wi-Fi and
//! radio links lose datagrams at random, and a sender that treats each such loss as congestion
//! collapses to a fraction of the link (Reno's rate falls as 1/sqrt(loss)). Why not only
//! loss above the baseline: to see it, a queue must overflow by a tenth of the traffic, and
//! the controller then lives in that overflow (in the simulator, 14% of a 5%-lossy link's
//! datagrams died in its queue). The delay signal sees the queue while it fills; it uses the
//! lowest RTT of the judged stretch, so one late acknowledgement (a receiver descheduled for a
//! moment) does not cut the rate. pixgram samples RTT once per acknowledged frame, which is
//! often enough for this but too rare to steer by delay alone, hence both signals.
//!
//! [`Pacer`] spreads datagrams at that rate with a token bucket, so a 2 MB frame leaves as a
//! steady stream instead of a burst that overflows the first queue on its way.
//!
//! Neither ever panics on the numbers it is given: [`RateController::new`] sanitises its
//! [`RateConfig`] (a non-finite or non-positive bound is replaced, and the floor is lowered to
//! the ceiling when a user's `--rate` is below it, so `min <= max` always holds), and
//! [`Pacer::new`] / [`Pacer::set_rate`] take any `f64` (NaN, infinite, zero, negative) and pace
//! at a rate between [`MIN_RATE`] and unlimited.

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
        let burst = sane_burst(burst);
        Pacer {
            rate: sane_rate(rate),
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Changes the rate and the bucket size from `now` on; tokens already earned are kept up to
    /// the new size.
    pub fn set_rate(&mut self, now: Timestamp, rate: f64, burst: f64) {
        self.refill(now);
        self.rate = sane_rate(rate);
        self.burst = sane_burst(burst);
        self.tokens = self.tokens.min(self.burst);
    }

    fn tokens_at(&self, now: Timestamp) -> f64 {
        match self.last {
            Some(last) => {
                (self.tokens + now.saturating_since(last).as_secs_f64() * self.rate).min(self.burst)
            }
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
}

/// Settings of the [`RateController`]. Any values are accepted; see [`RateConfig::sanitised`].
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

/// Datagrams a loss window must hold before it is judged: 64, or fewer for large datagrams
/// (a mebibyte's worth, at least 16), so a window is neither too noisy nor too long.
fn window_datagrams(datagram: f64) -> u64 {
    ((1u64 << 20) as f64 / datagram.max(1.0)).clamp(16.0, 64.0) as u64
}
/// How long an RTT sample counts towards the path's lowest RTT (as in BBR): a path whose
/// delay rose (a route change, a radio link stepping down) stops looking queued after this.
pub const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// Slots of the windowed minimum: the lowest RTT is known per tenth of the window.
const MIN_RTT_SLOTS: u64 = 10;

/// The lowest RTT sampled in the last [`MIN_RTT_WINDOW`] (and in the slot being filled):
/// the lowest sample of each tenth of the window, at most 11 of them.
#[derive(Debug, Clone, Default)]
struct WindowedMin {
    /// (slot number, lowest sample in it), oldest first.
    slots: std::collections::VecDeque<(u64, Duration)>,
}

impl WindowedMin {
    fn slot(now: Timestamp) -> u64 {
        let width = MIN_RTT_WINDOW.as_micros() as u64 / MIN_RTT_SLOTS;
        now.as_micros() / width
    }

    fn expire(&mut self, now: Timestamp) {
        let oldest = Self::slot(now).saturating_sub(MIN_RTT_SLOTS);
        while self.slots.front().is_some_and(|&(s, _)| s < oldest) {
            self.slots.pop_front();
        }
    }

    fn on_sample(&mut self, now: Timestamp, rtt: Duration) {
        self.expire(now);
        let slot = Self::slot(now);
        match self.slots.back_mut() {
            Some((s, m)) if *s >= slot => *m = (*m).min(rtt),
            _ => self.slots.push_back((slot, rtt)),
        }
    }

    fn get(&self) -> Option<Duration> {
        self.slots.iter().map(|&(_, m)| m).min()
    }

    /// Forgets every sample: `rtt`, sampled at `now`, is the lowest.
    fn reset(&mut self, now: Timestamp, rtt: Duration) {
        self.slots.clear();
        self.on_sample(now, rtt);
    }
}

/// Share of a window's time the sender must have been backlogged (held back by the pacer
/// with data waiting) for its queueing delay to count against it.
const FILLING: f64 = 0.8;
/// Delay cuts in a row after which an RTT that did not come down is taken as the path's own:
/// a queue the sender built drains once it slows down, a longer path does not.
const FUTILE_DELAY_CUTS: u32 = 2;
/// Delivery-rate samples span at least this many smoothed RTTs, and at least
/// [`DELIVERY_MIN_SPAN`]: feedback comes per frame, in bursts.
const DELIVERY_SPAN_RTTS: u32 = 1;
const DELIVERY_MIN_SPAN: Duration = Duration::from_millis(100);
/// The delivery rate is the highest sample of this many smoothed RTTs (at least 1 s).
const DELIVERY_WINDOW_RTTS: u32 = 10;
/// After a loss cut the rate is at most this share of the delivery rate: the queue that
/// overflowed drains.
const DRAIN_GAIN: f64 = 0.85;
/// Losses a slow-start window must have before [`RateController::on_losses_reported`] judges
/// it early.
const SLOW_START_OVERFLOW: u64 = 16;
/// Growth never takes the rate past this multiple of the delivery rate: in slow start, and
/// after it (probing for more, as BBR's 1.25 gain does).
const SLOW_START_CAP: f64 = 2.0;
const GROWTH_CAP: f64 = 1.25;

/// Windows the random-loss baseline looks back over.
const BASELINE_WINDOWS: usize = 8;
/// Loss above this is congestion whatever the history.
const MAX_BASELINE: f64 = 0.30;

/// Datagrams sent in one stretch of time, and how many of them the receiver NACKed.
#[derive(Debug, Clone, Copy)]
struct LossWindow {
    start: Timestamp,
    /// When the window closed (set when it is moved to `closed`).
    end: Timestamp,
    sent: u64,
    lost: u64,
    /// The sender had more to send than the rate allowed during this window.
    limited: bool,
    /// How long the sender was backlogged (data waiting for the pacer) in this window.
    backlogged: Duration,
}

impl LossWindow {
    fn new(start: Timestamp) -> Self {
        LossWindow {
            start,
            end: start,
            sent: 0,
            lost: 0,
            limited: false,
            backlogged: Duration::ZERO,
        }
    }
}

/// Rate-based AIMD that tells congestion from random loss. See the module documentation.
#[derive(Debug, Clone)]
pub struct RateController {
    config: RateConfig,
    rate: f64,
    slow_start: bool,
    /// The window being sent in.
    current: Option<LossWindow>,
    /// Closed windows, oldest first, still collecting NACKs for their datagrams; each is judged
    /// once NACKs for its last datagram have had time to arrive.
    closed: std::collections::VecDeque<LossWindow>,
    recent_loss: Vec<f64>,
    /// The path's lowest RTT over the last [`MIN_RTT_WINDOW`].
    min_rtt: WindowedMin,
    /// The lowest RTT sampled since the last judgement.
    recent_rtt: Option<Duration>,
    /// When the rate was last cut: windows that started earlier are not cut again.
    last_cut: Option<Timestamp>,
    congested_windows: u64,
    delay_cuts: u64,
    /// Whether the last window closed filled the path (see `filled`).
    last_filled: bool,
    /// Whether the receiver ever reported a loss.
    loss_seen: bool,
    /// Since when the sender has been backlogged, if it is.
    backlog_since: Option<Timestamp>,
    /// Delay cuts in a row, and the RTT that prompted the first of them.
    delay_series: u32,
    series_rtt: Option<Duration>,
    /// Bytes the receiver reported holding, all frames together.
    delivered: u64,
    /// (when, `delivered`) at recent feedback, oldest first.
    delivery_marks: std::collections::VecDeque<(Timestamp, u64)>,
    /// Recent delivery-rate samples (when, bytes per second), oldest first.
    delivery_samples: std::collections::VecDeque<(Timestamp, f64)>,
}

impl RateController {
    /// A controller starting at `config.initial`, in slow start. Never panics: the settings are
    /// [sanitised](RateConfig::sanitised) first.
    pub fn new(config: RateConfig) -> Self {
        let config = config.sanitised();
        let rate = config.initial;
        RateController {
            config,
            rate,
            slow_start: true,
            current: None,
            closed: std::collections::VecDeque::new(),
            recent_loss: Vec::new(),
            min_rtt: WindowedMin::default(),
            recent_rtt: None,
            last_cut: None,
            congested_windows: 0,
            delay_cuts: 0,
            loss_seen: false,
            last_filled: false,
            backlog_since: None,
            delay_series: 0,
            series_rtt: None,
            delivered: 0,
            delivery_marks: std::collections::VecDeque::new(),
            delivery_samples: std::collections::VecDeque::new(),
        }
    }

    /// The rate at which the receiver has been taking data: the highest rate sampled over the
    /// last [`DELIVERY_WINDOW_RTTS`] smoothed RTTs (at least a second), each sample spanning at
    /// least one RTT of feedback. `None` before enough feedback.
    pub fn delivery_rate(&self) -> Option<f64> {
        self.delivery_samples
            .iter()
            .map(|&(_, r)| r)
            .fold(None, |m, r| Some(m.map_or(r, |m: f64| m.max(r))))
    }

    /// The receiver reported `bytes` more of the sender's data (a NACK's or an ACK's chunk
    /// count grew): a delivery-rate sample once the marks span an RTT.
    pub fn on_delivered(&mut self, now: Timestamp, bytes: u64, srtt: Duration) {
        self.delivered += bytes;
        let span = (srtt * DELIVERY_SPAN_RTTS).max(DELIVERY_MIN_SPAN);
        // Keep the newest mark at least `span` old, and nothing older.
        while self.delivery_marks.len() >= 2
            && now.saturating_since(self.delivery_marks[1].0) >= span
        {
            self.delivery_marks.pop_front();
        }
        if let Some(&(t, d)) = self.delivery_marks.front() {
            let elapsed = now.saturating_since(t);
            if elapsed >= span {
                let rate = (self.delivered - d) as f64 / elapsed.as_secs_f64();
                self.delivery_samples.push_back((now, rate));
            }
        }
        if self.delivery_marks.len() < 256 {
            self.delivery_marks.push_back((now, self.delivered));
        }
        let keep = (srtt * DELIVERY_WINDOW_RTTS).max(Duration::from_secs(1));
        while self.delivery_samples.len() > 256
            || self
                .delivery_samples
                .front()
                .is_some_and(|&(t, _)| now.saturating_since(t) > keep)
        {
            self.delivery_samples.pop_front();
        }
    }

    /// Whether a window of `span` with `backlogged` time filled the path.
    fn filled(limited: bool, backlogged: Duration, span: Duration) -> bool {
        limited && backlogged.as_secs_f64() >= FILLING * span.as_secs_f64()
    }

    /// Bytes per second the sender may use now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether still in slow start.
    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// The lowest RTT seen in the last [`MIN_RTT_WINDOW`] (about 10 s): the path's delay
    /// without queueing. A minimum kept forever would make every window look queued once the
    /// path's delay rose, and cut the rate to the floor.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.get()
    }

    /// The random loss the controller tolerates now (share of datagrams).
    pub fn loss_baseline(&self) -> f64 {
        if self.recent_loss.len() < 2 {
            // Nothing known yet: tolerate as much random loss as we ever will, so a lossy
            // path's first window does not end slow start.
            return MAX_BASELINE;
        }
        // The lowest recent window: windows of a queue overflowing do not raise it.
        let lowest = self
            .recent_loss
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        lowest.min(MAX_BASELINE)
    }

    /// Windows judged congested so far (by loss or by delay).
    pub fn congestion_events(&self) -> u64 {
        self.congested_windows
    }

    /// Of [`RateController::congestion_events`], those judged by queueing delay.
    pub fn delay_cuts(&self) -> u64 {
        self.delay_cuts
    }

    /// Queueing delay above which a window counts as congested.
    pub fn delay_threshold(&self) -> Option<Duration> {
        Some((self.min_rtt()? / 2).max(Duration::from_millis(10)))
    }

    /// One datagram was sent at `now`.
    pub fn on_sent(&mut self, now: Timestamp) {
        self.current.get_or_insert(LossWindow::new(now)).sent += 1;
    }

    /// The pacer held back data that was ready: the rate, not the application, limits the
    /// sender, so a clean window may grow the rate.
    pub fn on_rate_limited(&mut self, now: Timestamp) {
        self.current.get_or_insert(LossWindow::new(now)).limited = true;
        self.backlog_since.get_or_insert(now);
    }

    /// The sender has nothing left to send (its queues are empty): it is no longer backlogged.
    pub fn on_drained(&mut self, now: Timestamp) {
        if let Some(since) = self.backlog_since.take() {
            let w = self.current.get_or_insert(LossWindow::new(since));
            w.backlogged += now.saturating_since(since.max(w.start));
        }
    }

    /// The receiver reported missing a datagram that was last sent at `sent_at`. The loss is
    /// charged to the window it was sent in; losses older than both open windows are ignored
    /// (their window was judged already).
    pub fn on_lost(&mut self, sent_at: Timestamp) {
        self.loss_seen = true;
        let windows = self.current.iter_mut().chain(self.closed.iter_mut().rev());
        for w in windows {
            if sent_at >= w.start {
                w.lost += 1;
                return;
            }
        }
    }

    /// Losses of one NACK were reported (after [`RateController::on_lost`]). In slow start, a
    /// window of which more than half is already reported lost ends it at once, cutting the
    /// rate to what got through of it: a queue is overflowing, and waiting for the window's
    /// judgement (two RTTs later, or never if the NACKs come after it) would let slow start
    /// double on, far past the path's rate. Random loss is not half the traffic
    /// ([`MAX_BASELINE`]).
    pub fn on_losses_reported(&mut self, now: Timestamp) {
        if !self.slow_start {
            return;
        }
        let cut = self.last_cut;
        let overflowing = self
            .current
            .iter()
            .chain(self.closed.iter())
            .filter(|w| w.lost >= SLOW_START_OVERFLOW && w.lost * 2 > w.sent && cut < Some(w.start))
            .map(|w| w.lost as f64 / w.sent.max(1) as f64)
            .fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.max(l))));
        if let Some(loss) = overflowing {
            self.slow_start = false;
            self.congested_windows += 1;
            // What got through of that window is about what the path carries.
            self.rate *= (1.0 - loss.min(1.0)).max(0.01) * DRAIN_GAIN;
            if let Some(d) = self.delivery_rate() {
                self.rate = self.rate.min(d * DRAIN_GAIN);
            }
            self.rate = self.rate.clamp(self.config.min, self.config.max);
            self.last_cut = Some(now);
        }
    }

    /// An RTT sample that may read short (the ACK of a frame with resent chunks may answer an
    /// earlier copy): it shows a queue (a short reading only hides one) but does not lower
    /// the path's lowest RTT.
    pub fn on_queue_rtt(&mut self, rtt: Duration) {
        if std::env::var_os("NOQ").is_none() && self.min_rtt().is_some() {
            self.recent_rtt = Some(self.recent_rtt.map_or(rtt, |m| m.min(rtt)));
        }
    }

    /// An RTT sample arrived.
    pub fn on_rtt(&mut self, now: Timestamp, rtt: Duration) {
        self.min_rtt.on_sample(now, rtt);
        self.recent_rtt = Some(self.recent_rtt.map_or(rtt, |m| m.min(rtt)));
        let queueing = self.min_rtt().map(|m| rtt.saturating_sub(m));
        // The last complete window tells: the current one may be a single frame's burst.
        let filling = self.last_filled && self.current.is_some_and(|w| w.limited);
        if self.slow_start && filling && queueing > self.delay_threshold() {
            // A queue is building: slow start has passed the path's rate, and by up to one
            // doubling since the queue began. Leave it now rather than a few RTTs later,
            // when the window showing it is judged.
            self.slow_start = false;
            self.rate = (self.rate * 0.5).max(self.config.min);
            self.last_cut = Some(now);
            self.delay_series = 1;
            self.series_rtt = Some(rtt);
        }
    }

    /// Closes the current window if it is complete (at least `srtt` old and 16-64 datagrams),
    /// and judges closed windows whose NACKs have had time to arrive (two RTTs and 10 ms after
    /// they closed). Call on feedback and whenever the pacer holds the sender back.
    pub fn on_tick(&mut self, now: Timestamp, srtt: Duration) {
        if let Some(mut current) = self.current {
            if now.saturating_since(current.start) >= srtt.max(Duration::from_micros(200))
                && current.sent >= window_datagrams(self.config.datagram)
            {
                current.end = now;
                if let Some(since) = self.backlog_since {
                    current.backlogged += now.saturating_since(since.max(current.start));
                    self.backlog_since = Some(now);
                }
                self.last_filled = Self::filled(
                    current.limited,
                    current.backlogged,
                    now.saturating_since(current.start),
                );
                self.closed.push_back(current);
                self.current = Some(LossWindow::new(now));
            }
        }
        let grace = srtt * 2 + Duration::from_millis(10);
        while let Some(w) = self.closed.front().copied() {
            // Bounded: at most 16 windows wait; past that the oldest is judged early.
            if now.saturating_since(w.end) < grace && self.closed.len() <= 16 {
                break;
            }
            self.closed.pop_front();
            self.judge(w, now, srtt);
        }
    }

    fn judge(&mut self, w: LossWindow, now: Timestamp, srtt: Duration) {
        let sent = w.sent.max(1) as f64;
        let loss = (w.lost as f64 / sent).min(1.0);
        let p = self.loss_baseline();
        let lossy = w.lost >= 2 && loss > p + 0.10 && loss > 2.0 * p + 0.05;
        // Queueing delay is a reason to slow down only for a sender that is filling the path
        // (the pacer held data back): an application-limited one, such as a 30 fps stream
        // below the path's rate, did not build the queue (scheduling jitter on a busy host
        // looks the same), and cutting its rate below its frame rate would only make frames
        // late.
        // Filling means using the rate, not only being held back once: a live stream whose
        // frames each outrun the pacer's burst is held back at every frame, yet on average
        // it sends far below the rate and cannot have built a queue.
        let filling = Self::filled(w.limited, w.backlogged, w.end.saturating_since(w.start));
        let recent = self.recent_rtt.take();
        let queued = match (recent, self.min_rtt(), self.delay_threshold()) {
            (Some(rtt), Some(min), Some(limit)) => filling && rtt.saturating_sub(min) > limit,
            _ => false,
        };
        if recent.is_some() && !queued {
            self.delay_series = 0;
        }
        let already_cut = self.last_cut.is_some_and(|t| w.start < t);
        let delivery = self.delivery_rate();
        if lossy || queued {
            if !already_cut {
                let futile = !lossy
                    && self.delay_series >= FUTILE_DELAY_CUTS
                    && match (recent, self.series_rtt, self.delay_threshold()) {
                        (Some(rtt), Some(first), Some(limit)) => rtt + limit / 2 >= first,
                        _ => false,
                    };
                if futile {
                    // Slowing down did not bring the RTT down: the path's delay rose (a
                    // longer route), no queue of ours. Its lowest RTT is what it is now.
                    self.min_rtt.reset(now, recent.unwrap_or_default());
                    self.delay_series = 0;
                    self.series_rtt = None;
                } else {
                    self.congested_windows += 1;
                    self.delay_cuts += u64::from(!lossy);
                    self.slow_start = false;
                    self.rate *= if lossy { 0.7 } else { 0.85 };
                    if lossy {
                        // A queue overflowed: what the path delivered meanwhile is its
                        // capacity; pace below it so the queue drains (from a rate far above
                        // the path's, cutting by 30% a round would take many rounds).
                        if let Some(d) = delivery {
                            self.rate = self.rate.min(d * DRAIN_GAIN);
                        }
                    } else {
                        if self.delay_series == 0 {
                            self.series_rtt = recent;
                        }
                        self.delay_series += 1;
                    }
                    self.last_cut = Some(now);
                }
            }
        } else if w.limited {
            let grown = if self.slow_start {
                self.rate * 2.0
            } else {
                let additive =
                    self.config.datagram / srtt.max(Duration::from_micros(100)).as_secs_f64();
                self.rate + additive.max(self.rate * 0.02)
            };
            // Not past twice what the receiver has been taking: a rate the path does not
            // deliver only fills its queue.
            let gain = if self.slow_start {
                SLOW_START_CAP
            } else {
                GROWTH_CAP
            };
            // Once the receiver reported loss, growth waits for a delivery rate to check
            // against (on a path that loses nothing, feedback may come only per frame).
            let cap = match delivery {
                Some(d) => (d * gain).max(self.rate),
                None if self.loss_seen && !self.delivery_marks.is_empty() => self.rate,
                None => f64::INFINITY,
            };
            self.rate = grown.min(cap);
        }
        self.rate = self.rate.clamp(self.config.min, self.config.max);
        self.recent_loss.push(loss);
        if self.recent_loss.len() > BASELINE_WINDOWS {
            self.recent_loss.remove(0);
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

    fn controller() -> RateController {
        RateController::new(RateConfig {
            initial: 1e6,
            min: 1e4,
            max: 1e9,
            datagram: 1000.0,
        })
    }

    /// Sends `n` datagrams in the 10 ms from `t_ms`, `lost` of them reported lost, closes the
    /// window, and lets its grace period (2 RTT + 10 ms) pass so it is judged.
    fn window(c: &mut RateController, t_ms: u64, n: u64, lost: u64) {
        let rtt = Duration::from_millis(10);
        for i in 0..n {
            c.on_sent(Timestamp::from_micros(t_ms * 1000 + i));
        }
        c.on_rate_limited(Timestamp::from_micros(t_ms * 1000));
        for i in 0..lost {
            c.on_lost(Timestamp::from_micros(t_ms * 1000 + i));
        }
        c.on_tick(Timestamp::from_millis(t_ms + 10), rtt);
        c.on_tick(Timestamp::from_millis(t_ms + 41), rtt);
    }

    #[test]
    fn slow_start_doubles_per_clean_window_and_congestion_ends_it() {
        let mut c = controller();
        for i in 0..4 {
            window(&mut c, i * 100, 100, 0);
        }
        assert_eq!(c.rate(), 16e6);
        window(&mut c, 400, 100, 50);
        assert_eq!(c.rate(), 16e6 * 0.7);
        assert!(!c.in_slow_start());
        window(&mut c, 500, 100, 0);
        // Congestion avoidance: the larger of one datagram per RTT and 2%.
        assert!((c.rate() - 16e6 * 0.7 * 1.02).abs() < 1.0);
    }

    #[test]
    fn a_queue_building_in_slow_start_ends_it_at_once() {
        let mut c = controller();
        window(&mut c, 0, 100, 0);
        assert_eq!(c.rate(), 2e6);
        c.on_rtt(Timestamp::from_millis(60), Duration::from_millis(10));
        c.on_rate_limited(Timestamp::from_millis(60));
        // 9 ms above the lowest RTT is within the threshold (the larger of 10 ms and half
        // the lowest RTT); 11 ms is a queue.
        c.on_rtt(Timestamp::from_millis(61), Duration::from_millis(19));
        assert!(c.in_slow_start());
        c.on_rtt(Timestamp::from_millis(62), Duration::from_millis(21));
        assert!(!c.in_slow_start());
        assert_eq!(c.rate(), 1e6);
    }

    #[test]
    fn queueing_delay_cuts_once_per_round() {
        let rtt = Duration::from_millis(10);
        let mut c = controller();
        window(&mut c, 0, 100, 0);
        window(&mut c, 100, 100, 80); // congestion: out of slow start, cut at 141 ms
        c.on_rtt(Timestamp::from_millis(150), rtt);
        // A window from 110 to 160 ms, judged at 195 ms: no queue.
        for i in 0..100 {
            c.on_sent(Timestamp::from_micros(150_000 + i));
        }
        c.on_tick(Timestamp::from_millis(160), rtt);
        c.on_tick(Timestamp::from_millis(195), rtt);
        let before = c.rate();
        // Window A (160-210 ms) sees 12 ms of queueing: more than the threshold.
        for i in 0..100 {
            c.on_sent(Timestamp::from_micros(200_000 + i));
        }
        c.on_rate_limited(Timestamp::from_millis(200));
        c.on_rtt(Timestamp::from_millis(205), Duration::from_millis(22));
        c.on_tick(Timestamp::from_millis(210), rtt);
        // Window B starts at 210 ms and closes at 226 ms, before A's cut takes effect.
        for i in 0..100 {
            c.on_sent(Timestamp::from_micros(215_000 + i));
        }
        c.on_tick(Timestamp::from_millis(226), rtt);
        c.on_tick(Timestamp::from_millis(241), rtt);
        assert_eq!((c.delay_cuts(), c.rate()), (1, before * 0.85));
        c.on_rtt(Timestamp::from_millis(245), Duration::from_millis(22));
        c.on_tick(Timestamp::from_millis(260), rtt);
        assert_eq!((c.delay_cuts(), c.rate()), (1, before * 0.85));
    }

    #[test]
    fn the_lowest_rtt_is_forgotten_after_its_window() {
        let mut c = controller();
        c.on_rtt(Timestamp::ZERO, Duration::from_millis(2));
        c.on_rtt(Timestamp::from_millis(5_000), Duration::from_millis(62));
        assert_eq!(c.min_rtt(), Some(Duration::from_millis(2)));
        // Ten seconds (and the slot being filled) later, only the recent samples count.
        c.on_rtt(Timestamp::from_millis(11_000), Duration::from_millis(63));
        assert_eq!(c.min_rtt(), Some(Duration::from_millis(62)));
        c.on_rtt(Timestamp::from_millis(16_000), Duration::from_millis(64));
        assert_eq!(c.min_rtt(), Some(Duration::from_millis(63)));
    }

    /// Rounds 100 ms apart, each a filling window whose lowest RTT is `rtts[i]`; returns the
    /// controller after them (out of slow start, path's lowest RTT 10 ms).
    fn delay_rounds(rtts: &[u64]) -> RateController {
        let mut c = controller();
        c.on_rtt(Timestamp::from_millis(1), Duration::from_millis(10));
        window(&mut c, 0, 100, 80); // loss: out of slow start
        for (i, &rtt) in rtts.iter().enumerate() {
            let t = 200 + 100 * i as u64;
            c.on_rtt(Timestamp::from_millis(t), Duration::from_millis(rtt));
            window(&mut c, t, 100, 0);
        }
        c
    }

    #[test]
    fn delay_cuts_that_do_not_bring_the_rtt_down_adopt_the_new_rtt() {
        // The path's RTT rose from 10 to 80 ms: two cuts change nothing, the third is not
        // made and the lowest RTT becomes 80 ms; the rate grows again.
        // (A window that began before a cut is not cut again: every other round is judged.)
        let c = delay_rounds(&[80; 6]);
        assert_eq!(c.delay_cuts(), 2);
        assert_eq!(c.min_rtt(), Some(Duration::from_millis(80)));
        // A queue that drains as the rate is cut is a queue: it is cut every time.
        let c = delay_rounds(&[80, 70, 60, 50, 40, 30]);
        assert_eq!(c.delay_cuts(), 3);
        assert_eq!(c.min_rtt(), Some(Duration::from_millis(10)));
    }

    #[test]
    fn an_application_limited_sender_is_not_cut_for_delay() {
        // Backlogged for a fifth of each window (a live frame's burst, then idle): its
        // queueing delay is not its doing.
        let mut c = controller();
        c.on_rtt(Timestamp::from_millis(1), Duration::from_millis(10));
        window(&mut c, 0, 100, 80);
        for i in 0..4u64 {
            let t = 200 + 100 * i;
            c.on_rtt(Timestamp::from_millis(t), Duration::from_millis(80));
            for k in 0..100 {
                c.on_sent(Timestamp::from_micros(t * 1000 + k));
            }
            c.on_rate_limited(Timestamp::from_millis(t));
            c.on_drained(Timestamp::from_millis(t + 2));
            c.on_tick(Timestamp::from_millis(t + 10), Duration::from_millis(10));
            c.on_tick(Timestamp::from_millis(t + 41), Duration::from_millis(10));
        }
        assert_eq!(c.delay_cuts(), 0);
    }

    #[test]
    fn steady_random_loss_is_not_congestion() {
        let mut c = controller();
        // 20% random loss from the start: never judged congestion, slow start goes on.
        for i in 0..10 {
            window(&mut c, i * 100, 100, 20);
        }
        assert_eq!(c.congestion_events(), 0);
        assert_eq!(c.rate(), 1e9); // doubled ten times, capped
    }

    #[test]
    fn a_loss_burst_above_the_baseline_is_congestion() {
        let mut c = controller();
        for i in 0..10 {
            window(&mut c, i * 100, 100, 5);
        }
        let before = c.rate();
        window(&mut c, 1000, 100, 40);
        assert_eq!(c.rate(), before * 0.7);
    }

    #[test]
    fn late_losses_count_against_the_window_they_were_sent_in() {
        let rtt = Duration::from_millis(10);
        let mut c = controller();
        for i in 0..3 {
            window(&mut c, i * 100, 100, 0);
        }
        // A window closes; its losses are reported 25 ms later, within its grace period.
        for i in 0..100 {
            c.on_sent(Timestamp::from_micros(300_000 + i));
        }
        c.on_rate_limited(Timestamp::from_millis(300));
        c.on_tick(Timestamp::from_millis(310), rtt);
        let before = c.rate();
        for i in 0..50 {
            c.on_lost(Timestamp::from_micros(300_000 + i));
        }
        // Losses of datagrams sent before every open window are ignored.
        for _ in 0..1000 {
            c.on_lost(Timestamp::from_millis(1));
        }
        c.on_tick(Timestamp::from_millis(341), rtt);
        assert_eq!(c.rate(), before * 0.7);
    }

    #[test]
    fn short_windows_wait_and_the_rate_stays_in_bounds() {
        let mut c = controller();
        window(&mut c, 0, 10, 10); // too few datagrams to judge
        assert_eq!(c.rate(), 1e6);
        for i in 0..100 {
            window(&mut c, 100 + i * 100, 100, 100);
        }
        assert_eq!(c.rate(), 1e4);
        for i in 0..100 {
            window(&mut c, 20_000 + i * 100, 100, 0);
        }
        assert!(c.rate() <= 1e9);
    }

    #[test]
    fn a_max_rate_below_the_floor_lowers_the_floor() {
        // The sender's floor is 100 kB/s (0.8 Mbit/s); `--rate 0.1` is 12.5 kB/s. This used to
        // panic in `clamp` (min > max).
        let mut c = RateController::new(RateConfig {
            initial: 50e6,
            min: 100e3,
            max: 12_500.0,
            datagram: 1200.0,
        });
        assert_eq!(c.rate(), 12_500.0);
        // Losses and growth keep it within min..=max: never above the user's limit.
        for i in 0..20 {
            window(&mut c, i * 100, 100, 80);
            assert!(c.rate() <= 12_500.0 && c.rate() >= MIN_RATE, "{}", c.rate());
        }
        for i in 20..40 {
            window(&mut c, i * 100, 100, 0);
            assert!(c.rate() <= 12_500.0, "{}", c.rate());
        }
        assert_eq!(c.rate(), 12_500.0);
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
                        let mut c = RateController::new(cfg);
                        assert!((s.min..=s.max).contains(&c.rate()), "{s:?}");
                        window(&mut c, 0, 100, 0);
                        window(&mut c, 100, 100, 90);
                        assert!((s.min..=s.max).contains(&c.rate()), "{s:?}");
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
}
