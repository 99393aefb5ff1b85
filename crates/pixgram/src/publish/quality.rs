//! Quality step-down for re-encoding live sources (issue 12, target 7): when the sender drops
//! frames, or its estimate of the path's rate is below what the stream needs, the JPEG quality
//! steps down one rung of a ladder. Once the path has been quiet for a while it steps back up:
//! at once to the best rung that fits the estimate with room to spare (at the size each was
//! last seen at), or else one rung as a probe, since a stream that fits is app-limited and
//! its estimate is little more than its own rate. A probe that brings drops is stepped back
//! down and the next one waits twice as long (up to [`PROBE_HOLD_MAX`]).
//!
//! [`QualityControl`] is a pure state machine: the publisher feeds it each frame's size and
//! quality, the sender's drop count and bandwidth estimate and the time, and hands the quality
//! it answers to the source through a [`QualityKnob`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pixgram_core::SenderStats;

/// The quality a re-encoding source uses for its next frame, set by the publisher.
#[derive(Debug, Clone)]
pub struct QualityKnob(Arc<AtomicU8>);

impl QualityKnob {
    /// A knob starting at `quality` (1-100).
    pub fn new(quality: u8) -> Self {
        QualityKnob(Arc::new(AtomicU8::new(quality.clamp(1, 100))))
    }

    /// The quality to encode the next frame at.
    pub fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the quality for the frames from now on.
    pub fn set(&self, quality: u8) {
        self.0.store(quality.clamp(1, 100), Ordering::Relaxed);
    }
}

/// Why the quality changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepReason {
    /// The sender dropped this many frames at the old quality (superseded, or judged unable
    /// to arrive by their deadline at its rate estimate).
    SenderDropped(u64),
    /// The stream's rate at the old quality exceeded the sender's estimate of the path.
    RateAboveEstimate,
    /// No drop for a while and the next quality up fits the estimate with room to spare.
    Headroom,
    /// No drop for a while: one rung up, to see whether the path carries it.
    Probe,
}

/// One change of quality: the library's event for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityChange {
    /// When, from the start of the stream.
    pub at: Duration,
    /// Quality before.
    pub from: u8,
    /// Quality after.
    pub to: u8,
    /// Why.
    pub reason: StepReason,
    /// The stream's rate at `from`, bytes per second (its recent frame size times the frame
    /// rate).
    pub stream_rate: f64,
    /// The sender's estimate of the path's rate then, bytes per second.
    pub estimate: Option<f64>,
}

/// What the controller reads at each decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityInput {
    /// Time from the start of the stream.
    pub now: Duration,
    /// The sender's bottleneck estimate, bytes per second (`PathEstimate::bandwidth`).
    pub estimate: Option<f64>,
    /// Frames the sender dropped so far for want of rate, cumulative ([`rate_drops`]).
    pub dropped: u64,
}

/// Frames the sender lost for want of rate, cumulative, from its counters: those superseded
/// and those dropped as hopeless; and, on a path whose base round trip (`min_rtt`) is shorter
/// than the frame interval, every frame whose deadline passed. There a missed deadline is the
/// queue's doing, not the path's length: through a kernel tbf a start that overestimates the
/// path loses its frames to the deadline in flight, not as hopeless ones, and the quality
/// must step down all the same. On a long path only the hopeless count.
pub fn rate_drops(stats: &SenderStats, min_rtt: Option<Duration>, interval: Duration) -> u64 {
    let short_path = min_rtt.is_some_and(|r| r < interval);
    stats.frames_superseded
        + if short_path {
            stats.frames_past_deadline.max(stats.frames_hopeless)
        } else {
            stats.frames_hopeless
        }
}

/// Qualities tried, best first (those above the source's own quality are left out).
const LADDER: [u8; 13] = [100, 95, 90, 85, 80, 75, 70, 60, 50, 40, 30, 20, 10];
/// Step down when the stream needs more than this share of the estimate. Not 1: an
/// app-limited stream's estimate is its own delivery rate, about its rate and at times a
/// little below (seen: 0.97 of it on loopback); a stream above the path's rate shows in drops
/// anyway, and this only steps before they pile up when it is far above.
const FIT_DOWN: f64 = 1.25;
/// Step up only when the next rung needs at most this share of the estimate.
const FIT_UP: f64 = 0.75;
/// A rung's frames are watched this long before the next step down (their drops, their size).
const DOWN_HOLD: Duration = Duration::from_millis(300);
/// No drop and no step for this long before a step up.
const UP_HOLD: Duration = Duration::from_secs(2);
/// The longest wait between probes that failed.
pub const PROBE_HOLD_MAX: Duration = Duration::from_secs(32);
/// A rung never seen is guessed this much larger than the one below it.
const UNSEEN_GROWTH: f64 = 1.25;
/// Weight of a new frame in a rung's smoothed size.
const SIZE_GAIN: f64 = 0.25;

/// Steps a live source's JPEG quality to fit the path.
#[derive(Debug, Clone)]
pub struct QualityControl {
    /// Rungs, best first; the first is the source's own quality.
    ladder: Vec<u8>,
    /// The current rung.
    level: usize,
    /// Time between frames.
    interval: Duration,
    /// Smoothed frame size at each rung, once seen.
    sizes: Vec<Option<f64>>,
    /// When the quality last changed (the stream's start at first).
    stepped_at: Duration,
    /// Whether a frame at the current rung has been seen since it was set.
    seen_at_level: bool,
    /// Sender drops counted when the current rung's first frame was seen.
    dropped_before: u64,
    /// Drops counted at the last decision, and when the count last grew.
    dropped_last: u64,
    last_drop_at: Option<Duration>,
    /// Quiet time before the next probe; doubled by each probe that failed.
    probe_hold: Duration,
    /// The last step was a probe (a step down right after it means it failed).
    probing: bool,
}

impl QualityControl {
    /// A controller for a source encoding at `ceiling` (it never goes above it), `interval`
    /// apart.
    pub fn new(ceiling: u8, interval: Duration) -> Self {
        let ceiling = ceiling.clamp(1, 100);
        let mut ladder = vec![ceiling];
        ladder.extend(LADDER.iter().copied().filter(|&q| q < ceiling));
        let sizes = vec![None; ladder.len()];
        QualityControl {
            ladder,
            level: 0,
            interval: interval.max(Duration::from_micros(100)),
            sizes,
            stepped_at: Duration::ZERO,
            seen_at_level: false,
            dropped_before: 0,
            dropped_last: 0,
            last_drop_at: None,
            probe_hold: UP_HOLD,
            probing: false,
        }
    }

    /// The quality to encode at now.
    pub fn quality(&self) -> u8 {
        self.ladder[self.level]
    }

    /// A frame of `bytes` encoded at `quality` was handed to the sender; `dropped` is the
    /// sender's drop count then.
    pub fn frame_sent(&mut self, quality: u8, bytes: usize, dropped: u64) {
        let Some(level) = self.ladder.iter().position(|&q| q == quality) else {
            return;
        };
        let size = &mut self.sizes[level];
        *size = Some(match *size {
            Some(s) => s + SIZE_GAIN * (bytes as f64 - s),
            None => bytes as f64,
        });
        if level == self.level && !self.seen_at_level {
            self.seen_at_level = true;
            self.dropped_before = dropped;
        }
    }

    /// The stream's rate at rung `level`, bytes per second, if its size is known.
    fn rate_at(&self, level: usize) -> Option<f64> {
        Some(self.sizes[level]? / self.interval.as_secs_f64())
    }

    /// Decides on a step; `Some` when the quality changed (read it with [`Self::quality`]).
    pub fn update(&mut self, input: QualityInput) -> Option<QualityChange> {
        if input.dropped > self.dropped_last {
            self.dropped_last = input.dropped;
            self.last_drop_at = Some(input.now);
        }
        let since_step = input.now.saturating_sub(self.stepped_at);
        let stream_rate = self.rate_at(self.level)?;
        if self.seen_at_level && since_step >= DOWN_HOLD && self.level + 1 < self.ladder.len() {
            let dropped = input.dropped.saturating_sub(self.dropped_before);
            let over = input.estimate.is_some_and(|e| stream_rate > FIT_DOWN * e);
            let reason = if dropped > 0 {
                Some(StepReason::SenderDropped(dropped))
            } else if over {
                Some(StepReason::RateAboveEstimate)
            } else {
                None
            };
            if let Some(reason) = reason {
                // Far above the estimate: straight to the rung that fits it, not one rung
                // per hold (eight rungs took 2.5 s through a 4 Mbit/s tbf).
                let to = match input.estimate.filter(|_| over) {
                    Some(e) => self.lowest_needed(e),
                    None => self.level + 1,
                };
                return Some(self.step(to, reason, stream_rate, input));
            }
        }
        let quiet = self
            .last_drop_at
            .is_none_or(|t| input.now.saturating_sub(t) >= UP_HOLD);
        if self.level > 0 && since_step >= UP_HOLD && quiet {
            if self.probing {
                // The probe held: the next one may come as soon as the path is quiet.
                self.probing = false;
                self.probe_hold = UP_HOLD;
            }
            let fitting = input
                .estimate
                .and_then(|e| self.highest_fitting(FIT_UP * e));
            if let Some(up) = fitting {
                return Some(self.step(up, StepReason::Headroom, stream_rate, input));
            }
            if since_step >= self.probe_hold {
                let change = self.step(self.level - 1, StepReason::Probe, stream_rate, input);
                self.probing = true;
                return Some(change);
            }
        }
        None
    }

    /// The best rung below the current one whose stream needs at most `budget` bytes a
    /// second, or the lowest: rungs seen before at their remembered size, those never seen
    /// guessed [`UNSEEN_GROWTH`] smaller than the one above (JPEG sizes fall more slowly than
    /// that between rungs, so the guess steps too little rather than too far).
    fn lowest_needed(&self, budget: f64) -> usize {
        let mut above = self.rate_at(self.level).unwrap_or(f64::MAX);
        for level in self.level + 1..self.ladder.len() {
            let need = self.rate_at(level).unwrap_or(above / UNSEEN_GROWTH);
            if need <= budget {
                return level;
            }
            above = need;
        }
        self.ladder.len() - 1
    }

    /// The best rung above the current one whose stream needs at most `budget` bytes a second:
    /// rungs seen before at their remembered size; one never seen is guessed a little larger
    /// than the one below it, and no larger than any better rung seen (a JPEG's size grows
    /// with its quality). So a step up goes back as far as the path allows at once, and
    /// through the rungs a step down skipped only as far as the guesses allow.
    fn highest_fitting(&self, budget: f64) -> Option<usize> {
        let mut best = None;
        let mut below = self.rate_at(self.level)?;
        for level in (0..self.level).rev() {
            let need = match self.rate_at(level) {
                Some(r) => r,
                None => {
                    let better_seen = (0..level).filter_map(|l| self.rate_at(l)).reduce(f64::min);
                    (below * UNSEEN_GROWTH).min(better_seen.unwrap_or(f64::MAX))
                }
            };
            if need > budget {
                break;
            }
            best = Some(level);
            below = need;
        }
        best
    }

    fn step(
        &mut self,
        level: usize,
        reason: StepReason,
        stream_rate: f64,
        input: QualityInput,
    ) -> QualityChange {
        let from = self.quality();
        if level > self.level && self.probing {
            // Stepped down right after a probe: it failed; wait longer for the next.
            self.probe_hold = (self.probe_hold * 2).min(PROBE_HOLD_MAX);
        }
        self.probing = false;
        self.level = level;
        self.stepped_at = input.now;
        self.seen_at_level = false;
        QualityChange {
            at: input.now,
            from,
            to: self.quality(),
            reason,
            stream_rate,
            estimate: input.estimate,
        }
    }
}

/// What became of the quality over a stream, for the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualitySummary {
    /// The quality the stream started at.
    pub first: u8,
    /// The lowest it went to.
    pub lowest: u8,
    /// The quality at the end.
    pub last: u8,
    /// Steps down.
    pub down: u64,
    /// Steps up.
    pub up: u64,
    /// The most recent changes (at most [`CHANGES_KEPT`]; the counts stay exact).
    pub changes: Vec<QualityChange>,
}

/// Changes a [`QualitySummary`] remembers.
pub const CHANGES_KEPT: usize = 64;

impl QualitySummary {
    /// A summary of a stream starting at `quality`.
    pub fn starting_at(quality: u8) -> Self {
        QualitySummary {
            first: quality,
            lowest: quality,
            last: quality,
            ..Self::default()
        }
    }

    /// Counts `change`.
    pub fn record(&mut self, change: QualityChange) {
        if change.to < change.from {
            self.down += 1;
        } else {
            self.up += 1;
        }
        self.lowest = self.lowest.min(change.to);
        self.last = change.to;
        if self.changes.len() == CHANGES_KEPT {
            self.changes.remove(0);
        }
        self.changes.push(change);
    }
}

#[cfg(test)]
mod tests;
