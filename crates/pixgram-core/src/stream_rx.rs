//! The receiving half of one stream: frames in reassembly, the verdicts given (to answer
//! duplicates and drop stale chunks), completed frames an ordered stream holds until their turn,
//! and delivered frames waiting for the application to confirm them.
//!
//! A frame is acknowledged COMPLETE only once it is delivered, and, when the receiver is
//! configured to wait for confirmations, only once the application has confirmed it (an ACK
//! means the sink has it). Frames held or waiting are not acknowledged, so they may be dropped
//! to make room: the sender still has them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::body_pool::BodyPool;
use crate::chunking::ChunkLayout;
use crate::ids::{ChunkIndex, FrameId};
use crate::reassembly::{Insert, PartialFrame};
use crate::time::Timestamp;
use crate::verdicts::Verdicts;
use crate::wire::{AckStatus, ChunkRange, DataFlags, DataHeader, MAX_NACK_RANGES};

/// Verdict runs a stream keeps once its session went idle (the rest is below the sender's
/// floor in any ordinary run).
pub(crate) const IDLE_VERDICT_RUNS: usize = 16;

/// Chunks after which a hole in a reliable frame is taken as loss rather than reordering.
pub(crate) const REORDER_WINDOW: u32 = 64;

/// A frame in reassembly is reported on (a NACK, or a progress report when it lacks nothing
/// knowable) at least every this many chunks received, so that the sender's delivery rate
/// and bytes in flight follow the frame while it arrives, not only when it completes.
pub(crate) const PROGRESS_CHUNKS: u32 = 16;
/// ...and once at least [`PROGRESS_MIN_CHUNKS`] chunks arrived since the last report and this
/// long passed: at low rates 16 chunks take long (77 ms at 2 Mbit/s), and feedback that late
/// makes the sender keep more in flight than a small bottleneck queue holds.
pub(crate) const PROGRESS_INTERVAL: Duration = Duration::from_millis(5);
pub(crate) const PROGRESS_MIN_CHUNKS: u32 = 2;

/// Why frames were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// Some chunks arrived, but not all of them before the frame timed out.
    Expired,
    /// No chunk of these frames ever arrived; a later frame of an ordered stream was waiting.
    NeverSeen,
    /// The frame broke a receiver limit (size, memory budget, frames in flight).
    Rejected,
    /// The frame arrived whole but its metadata prefix was malformed.
    Malformed,
    /// The sender's session ended (closed, replaced by a new session, or idle) mid-frame.
    SessionEnded,
    /// Live streams: a newer frame was delivered first, so this one is worthless.
    Superseded,
    /// The sender gave up on the frame before it completed (its floor moved past it).
    GivenUp,
}

/// A frame that arrived whole.
#[derive(Debug)]
pub(crate) struct Completed {
    pub body: Vec<u8>,
    pub flags: DataFlags,
    pub first_seen: Timestamp,
    pub completed_at: Timestamp,
    /// What its ACK reports: chunks held, loss and burst, chunks lost on the way.
    pub report: FrameReport,
}

/// What a decided frame's ACK says about the path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FrameReport {
    pub chunks_received: u32,
    pub loss: (u8, u8),
    /// Chunks lost on the way (each once): for the receiver's counters, not the wire.
    pub chunks_lost: u32,
}

impl FrameReport {
    fn of(p: &PartialFrame) -> Self {
        FrameReport {
            chunks_received: p.chunks_received(),
            loss: p.loss_report(),
            chunks_lost: p.chunks_lost(),
        }
    }
}

/// A delivered frame the application has not confirmed yet.
#[derive(Debug, Clone, Copy)]
struct Unconfirmed {
    completed_at: Timestamp,
    report: FrameReport,
    /// A chunk of it arrived while it waited (or it was decided on the sender's last chunk),
    /// and its sender does not retry: its verdict goes out twice when confirmed.
    answer_twice: bool,
}

/// The timers a stream runs on (from the receiver's configuration).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    /// Unreliable streams: a frame with no progress for this long expires.
    pub frame_timeout: Duration,
    /// Reliable streams: a frame with no progress for this long expires (the sender is gone).
    pub reliable_timeout: Duration,
    /// Reliable streams: how long a frame may stall before its holes are NACKed (doubling
    /// with each NACK that brings no progress).
    pub nack_delay: Duration,
}

impl Timers {
    fn expiry(&self, reliable: bool) -> Duration {
        if reliable {
            self.reliable_timeout
        } else {
            self.frame_timeout
        }
    }
}

/// What a stream asks of its receiver after an input.
#[derive(Debug)]
pub(crate) enum StreamOutput {
    Deliver(FrameId, Completed),
    Ack {
        frame: FrameId,
        status: AckStatus,
        report: FrameReport,
        /// Microseconds from the decision (completion) to this ACK.
        delay_us: u32,
    },
    Nack {
        frame: FrameId,
        chunks_received: u32,
        ranges: Vec<ChunkRange>,
        /// A progress report (PROTOCOL 2.6): its one range lies past the frame and asks for
        /// nothing.
        progress: bool,
    },
    Lost {
        first: FrameId,
        count: u64,
        reason: LossReason,
    },
}

/// What happened to one chunk, for the receiver's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkOutcome {
    Added,
    Completed,
    /// Completed by rebuilding this many lost data chunks from parity.
    Recovered(u32),
    /// A parity chunk of a frame already decided.
    UnneededParity,
    Duplicate,
    Stale,
    Conflict,
    OverBudget,
    OverFramesInFlight,
}

/// Limits the receiver passes down for one chunk, and where a new frame's body comes from.
pub(crate) struct Admission<'a> {
    /// Bytes the stream may still take (the smaller of peer and global headroom).
    pub available_bytes: u64,
    pub max_frames_in_flight: usize,
    pub nack_delay: Duration,
    pub bodies: &'a BodyPool,
}

#[derive(Debug)]
pub(crate) struct StreamReceiver {
    ordered: bool,
    reliable: bool,
    live: bool,
    /// Whether delivered frames wait for [`StreamReceiver::confirm`] before their ACK.
    confirm: bool,
    /// Live streams: the newest frame delivered; older ones are stale.
    newest: Option<FrameId>,
    /// Streams whose sender does not retry: the last frame answered a second time (see
    /// [`StreamReceiver::on_chunk`]), so that it is answered only twice.
    answered_again: Option<FrameId>,
    partial: BTreeMap<FrameId, PartialFrame>,
    verdicts: Verdicts,
    /// Ordered streams: the next frame to deliver.
    next: FrameId,
    held: BTreeMap<FrameId, Completed>,
    unconfirmed: BTreeMap<FrameId, Unconfirmed>,
    gap_since: Option<Timestamp>,
    footprint: u64,
    /// The newest frame any chunk arrived for (reliable streams: its predecessors were sent
    /// whole before it).
    newest_seen: Option<FrameId>,
}

/// An ACK without a report or a delay: a verdict answered again (its figures went with the
/// first answer), or a REJECTED that keeps no verdict.
fn bare_ack(frame: FrameId, status: AckStatus, out: &mut Vec<StreamOutput>) {
    out.push(StreamOutput::Ack {
        frame,
        status,
        report: FrameReport::default(),
        delay_us: 0,
    });
}

fn micros_between(from: Timestamp, to: Timestamp) -> u32 {
    u32::try_from(to.saturating_since(from).as_micros()).unwrap_or(u32::MAX)
}

impl StreamReceiver {
    /// A stream whose ordering and reliability are those of its first chunk's flags, starting
    /// at the sender's floor: frames below it were resolved before this receiver knew the
    /// stream (it restarted, or forgot an idle session), so they are neither expected nor lost.
    /// With `confirm`, delivered frames are acknowledged only by [`StreamReceiver::confirm`].
    pub(crate) fn new(flags: DataFlags, floor: FrameId, confirm: bool) -> Self {
        StreamReceiver {
            ordered: flags.contains(DataFlags::ORDERED),
            reliable: flags.contains(DataFlags::RELIABLE),
            live: flags.contains(DataFlags::LIVE),
            confirm,
            newest: None,
            answered_again: None,
            partial: BTreeMap::new(),
            verdicts: Verdicts::starting_at(floor),
            next: floor,
            held: BTreeMap::new(),
            unconfirmed: BTreeMap::new(),
            gap_since: None,
            footprint: 0,
            newest_seen: None,
        }
    }

    /// Verdict runs forgotten for lack of room.
    pub(crate) fn verdicts_forgotten(&self) -> u64 {
        self.verdicts.forgotten()
    }

    /// Frames in reassembly, held for their turn, or delivered and not yet confirmed.
    fn frames_in_flight(&self) -> usize {
        self.partial.len() + self.held.len() + self.unconfirmed.len()
    }

    /// Bytes this stream holds: frames in reassembly and completed frames waiting their turn.
    pub(crate) fn footprint(&self) -> u64 {
        self.footprint
    }

    /// Whether nothing is in flight (no timers needed).
    pub(crate) fn is_idle(&self) -> bool {
        self.partial.is_empty() && self.held.is_empty()
    }

    /// The sender's floor arrived: everything below it is resolved on the sender's side.
    /// Frames below it still in reassembly are given up; an ordered stream delivers what it
    /// holds below it and moves on.
    fn on_floor(&mut self, floor: FrameId, out: &mut Vec<StreamOutput>) {
        if !self.verdicts.raise_base(floor) {
            return;
        }
        let given_up: Vec<FrameId> = self.partial.range(..floor).map(|(&id, _)| id).collect();
        for id in given_up {
            if let Some(p) = self.partial.remove(&id) {
                self.footprint -= p.charge();
                out.push(StreamOutput::Lost {
                    first: id,
                    count: 1,
                    reason: LossReason::GivenUp,
                });
            }
        }
        self.skip_below_base(out);
    }

    /// Ordered streams: frames below the verdicts' base will not come; deliver the complete
    /// ones held before it, in order, and continue from the base.
    fn skip_below_base(&mut self, out: &mut Vec<StreamOutput>) {
        let base = self.verdicts.base();
        if !self.ordered || self.next >= base {
            return;
        }
        self.next = base;
        self.gap_since = None;
        let below: Vec<FrameId> = self.held.range(..base).map(|(&id, _)| id).collect();
        for id in below {
            if let Some(done) = self.held.remove(&id) {
                self.footprint -= done.body.len() as u64;
                self.deliver(id, done, out);
            }
        }
    }

    /// Hands a complete frame to the application: acknowledged now, or when confirmed.
    fn deliver(&mut self, frame: FrameId, done: Completed, out: &mut Vec<StreamOutput>) {
        if self.confirm {
            self.unconfirmed.insert(
                frame,
                Unconfirmed {
                    completed_at: done.completed_at,
                    report: done.report,
                    answer_twice: false,
                },
            );
        } else {
            self.finish(frame, AckStatus::Complete, done.report, 0, out);
        }
        out.push(StreamOutput::Deliver(frame, done));
    }

    /// A second answer for a frame of a stream whose sender does not retry (see
    /// [`StreamReceiver::on_chunk`]): now if it is decided, else when it is confirmed.
    fn answer_again(&mut self, frame: FrameId, out: &mut Vec<StreamOutput>) {
        if let Some(u) = self.unconfirmed.get_mut(&frame) {
            u.answer_twice = true;
        } else if let Some(status) = self.verdicts.get(frame) {
            self.answered_again = Some(frame);
            bare_ack(frame, status, out);
        }
    }

    /// The application took a delivered frame (`stored`) or could not: acknowledges it
    /// COMPLETE or FAILED, with the time it took as the ACK delay. Returns whether the frame
    /// was waiting.
    pub(crate) fn confirm(
        &mut self,
        frame: FrameId,
        stored: bool,
        now: Timestamp,
        out: &mut Vec<StreamOutput>,
    ) -> bool {
        let Some(u) = self.unconfirmed.remove(&frame) else {
            return false;
        };
        let status = if stored {
            AckStatus::Complete
        } else {
            AckStatus::Failed
        };
        let delay = micros_between(u.completed_at, now);
        self.finish(frame, status, u.report, delay, out);
        if u.answer_twice {
            self.answered_again = Some(frame);
            bare_ack(frame, status, out);
        }
        true
    }

    /// Drops held (complete, undelivered, unacknowledged) frames from the newest down until
    /// `needed` bytes fit beside `available`: the sender still has them and sends them again.
    /// Returns the bytes freed.
    fn evict_held(&mut self, needed: u64, available: u64) -> u64 {
        let mut freed = 0;
        while available + freed < needed {
            let Some((_, done)) = self.held.pop_last() else {
                break;
            };
            freed += done.body.len() as u64;
        }
        self.footprint -= freed;
        freed
    }

    /// What to keep of this stream once its session went idle: its verdicts (compacted), so a
    /// session that comes back is still answered and nothing is delivered twice.
    pub(crate) fn compact_for_idle(&mut self) {
        self.verdicts.truncate(IDLE_VERDICT_RUNS);
        self.skip_below_base(&mut Vec::new());
    }

    /// Whether frames of a reliable or live stream are in reassembly: NACK timers and
    /// deadlines need a fine tick.
    pub(crate) fn wants_fine_timer(&self) -> bool {
        (self.reliable || self.live) && !self.partial.is_empty()
    }

    /// Takes one chunk whose header `h` passed parsing and the receiver's limits.
    pub(crate) fn on_chunk(
        &mut self,
        h: &DataHeader,
        layout: ChunkLayout,
        payload: &[u8],
        now: Timestamp,
        admission: &Admission,
        out: &mut Vec<StreamOutput>,
    ) -> ChunkOutcome {
        let (frame, flags, index) = (h.frame, h.flags, h.index);
        if flags.contains(DataFlags::ORDERED) != self.ordered
            || flags.contains(DataFlags::RELIABLE) != self.reliable
            || flags.contains(DataFlags::LIVE) != self.live
        {
            return ChunkOutcome::Conflict;
        }
        self.newest_seen = self.newest_seen.max(Some(frame));
        self.on_floor(h.floor, out);
        // A reliable sender retries until answered; others send each chunk once, so a frame
        // of theirs is answered twice: the first chunk to arrive after it was decided (parity
        // of a frame whole without it) earns the verdict again, and a frame decided on the
        // sender's last chunk, after which none can come, gets both at once. An ACK lost on
        // the way back is then not a frame the sender reports undelivered.
        let last_chunk = index.0 + 1 == h.count + u32::from(h.parity);
        if let Some(status) = self.verdicts.get(frame) {
            if self.reliable || self.answered_again.replace(frame) != Some(frame) {
                bare_ack(frame, status, out);
            }
            if index.0 >= h.count {
                // Parity sent for the case of loss, arriving after the frame was whole.
                return ChunkOutcome::UnneededParity;
            }
            return ChunkOutcome::Duplicate;
        }
        if let Some(u) = self.unconfirmed.get_mut(&frame) {
            // Delivered, waiting for the application: its verdict comes when confirmed.
            u.answer_twice |= !self.reliable;
            return if index.0 >= h.count {
                ChunkOutcome::UnneededParity
            } else {
                ChunkOutcome::Duplicate
            };
        }
        if self.held.contains_key(&frame) {
            // Whole already; its verdict comes when it is delivered and confirmed.
            return ChunkOutcome::Duplicate;
        }
        let stale_below = if self.ordered {
            self.verdicts.base().max(self.next)
        } else if let Some(newest) = self.newest.filter(|_| self.live) {
            self.verdicts.base().max(newest.next())
        } else {
            self.verdicts.base()
        };
        if frame < stale_below {
            return ChunkOutcome::Stale;
        }
        // The frame an ordered stream waits for is always admitted: refusing it would leave
        // every later frame waiting behind it.
        let awaited = self.ordered && frame == self.next;
        // Memory is charged for what arrives: a new frame's bitmap and the buffer its first
        // chunk needs, then each chunk's growth of the body.
        let existing = self.partial.get(&frame).map(|p| p.growth_for(index));
        if existing.is_none()
            && self.frames_in_flight() >= admission.max_frames_in_flight
            && !awaited
        {
            return ChunkOutcome::OverFramesInFlight;
        }
        // A new frame is admitted only if all of it fits in the room there is now (a frame
        // started without room for the rest would only wait); it is then charged as it
        // arrives, so declared frames reserve nothing.
        let cost = existing.unwrap_or_else(|| PartialFrame::full_cost(&layout, h.parity));
        let mut available = admission.available_bytes;
        if cost > available && awaited {
            available += self.evict_held(cost, available);
        }
        if cost > available && existing.is_some() {
            // No room for this chunk now: dropped, and asked for again (reliable streams) once
            // memory has freed.
            return ChunkOutcome::OverBudget;
        }
        let partial = match self.partial.get_mut(&frame) {
            Some(p) => p,
            None => {
                if cost > available && self.reliable {
                    // No room now. A reliable frame is not lost for that: answer REJECTED
                    // without remembering a verdict, and the sender tries again later, when
                    // other frames have completed or expired and freed their memory.
                    bare_ack(frame, AckStatus::Rejected, out);
                    return ChunkOutcome::OverBudget;
                }
                if cost > available {
                    self.finish(frame, AckStatus::Rejected, FrameReport::default(), 0, out);
                    out.push(StreamOutput::Lost {
                        first: frame,
                        count: 1,
                        reason: LossReason::Rejected,
                    });
                    self.advance(now, Duration::MAX, out);
                    return ChunkOutcome::OverBudget;
                }
                let body = admission.bodies.take(layout.len_usize());
                let mut p = PartialFrame::new_in(body, layout, flags, h.parity, now);
                self.footprint += p.charge();
                if self.live {
                    p.expires_at = Some(now + Duration::from_millis(u64::from(h.deadline_ms)));
                }
                self.partial.entry(frame).or_insert(p)
            }
        };
        let before = partial.charge();
        let prev_highest = partial.highest();
        let inserted = partial.insert(&layout, flags, h.parity, index, payload, now);
        let recovered = if inserted != Insert::Added || partial.is_complete() {
            None
        } else {
            partial.try_recover()
        };
        self.footprint += partial.charge() - before;
        match inserted {
            Insert::Duplicate => return ChunkOutcome::Duplicate,
            Insert::Conflict => return ChunkOutcome::Conflict,
            Insert::Added => {}
        }
        if !partial.is_complete() {
            // Report holes without waiting for a stall: when the final chunk arrives, and every
            // REORDER_WINDOW chunks once a hole is that old (a reordered chunk would be back by
            // then), at most once per `nack_delay`.
            if self.reliable {
                let last = index.0 + 1 == layout.count();
                // Crossing into a new block of REORDER_WINDOW chunks (not only arriving at a
                // multiple of it: when a queue drops most chunks, that one is often lost too).
                let crossed = index.0 / REORDER_WINDOW > prev_highest / REORDER_WINDOW;
                let hole_is_old = crossed
                    && partial
                        .oldest_hole()
                        .is_some_and(|h| h + REORDER_WINDOW <= index.0)
                    && partial
                        .last_nack
                        .is_none_or(|t| now.saturating_since(t) >= admission.nack_delay);
                if last {
                    self.nack(frame, now, u32::MAX, out);
                } else if hole_is_old {
                    // Only holes older than the reorder window: later chunks may be in flight.
                    self.nack(frame, now, index.0 + 1 - REORDER_WINDOW, out);
                }
            }
            self.report_progress(frame, now, index, out);
            return ChunkOutcome::Added;
        }
        let Some(partial) = self.partial.remove(&frame) else {
            return ChunkOutcome::Added;
        };
        let cost = partial.charge();
        let completed = Completed {
            flags: partial.flags(),
            first_seen: partial.first_seen,
            completed_at: now,
            report: FrameReport::of(&partial),
            body: partial.into_body(),
        };
        if self.live {
            // Latest frame wins: older frames still in reassembly are now worthless.
            self.footprint -= cost;
            let older: Vec<FrameId> = self.partial.range(..frame).map(|(&id, _)| id).collect();
            for id in older {
                self.drop_partial(id, LossReason::Superseded, out);
            }
            self.newest = Some(frame);
            self.deliver(frame, completed, out);
        } else if self.ordered && frame != self.next {
            // Keep the body's bytes charged while it waits; the bitmap is freed. Not
            // acknowledged yet: it is not in the application's hands.
            self.footprint -= cost - completed.body.len() as u64;
            self.held.insert(frame, completed);
        } else {
            self.footprint -= cost;
            self.deliver(frame, completed, out);
            if self.ordered {
                self.next = frame.next();
                self.gap_since = None;
            }
        }
        if last_chunk && !self.reliable {
            // Decided on the sender's last chunk: no later one will earn the verdict again.
            self.answer_again(frame, out);
        }
        self.advance(now, Duration::MAX, out);
        match recovered {
            Some(n) => ChunkOutcome::Recovered(n),
            None => ChunkOutcome::Completed,
        }
    }

    /// Removes a frame from reassembly with verdict EXPIRED, reporting it lost for `reason`.
    fn drop_partial(&mut self, id: FrameId, reason: LossReason, out: &mut Vec<StreamOutput>) {
        let Some(p) = self.partial.remove(&id) else {
            return;
        };
        self.footprint -= p.charge();
        self.finish(id, AckStatus::Expired, FrameReport::of(&p), 0, out);
        out.push(StreamOutput::Lost {
            first: id,
            count: 1,
            reason,
        });
    }

    /// Expires frames that made no progress for too long, NACKs stalled frames of reliable
    /// streams, and (ordered streams) gives up on gaps a later frame has waited on too long.
    pub(crate) fn on_timeout(
        &mut self,
        now: Timestamp,
        timers: &Timers,
        out: &mut Vec<StreamOutput>,
    ) {
        let limit = timers.expiry(self.reliable);
        let expired: Vec<FrameId> = self
            .partial
            .iter()
            .filter(|(_, p)| match p.expires_at {
                Some(deadline) => now >= deadline,
                None => now.saturating_since(p.last_progress) >= limit,
            })
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.drop_partial(id, LossReason::Expired, out);
        }
        if self.reliable {
            let stalled: Vec<FrameId> = self
                .partial
                .iter()
                .filter(|(_, p)| {
                    let wait = timers.nack_delay * (1 << p.nacks_since_progress.min(6));
                    let since = p
                        .last_nack
                        .map_or(p.last_progress, |t| t.max(p.last_progress));
                    now.saturating_since(since) >= wait
                })
                .map(|(&id, _)| id)
                .collect();
            for id in stalled {
                // Only holes below the highest chunk received: chunks above it may not have
                // been sent yet or still be on the wire (at a low rate a frame leaves over
                // many RTTs). A sender sends a stream's frames one after the other, so once a
                // later frame's chunks arrive, this whole frame was sent: then its tail is
                // missing too. Otherwise a lost tail is found by the sender's retransmission
                // timer, which probes with the last chunk (then every hole below it is lost).
                let sent_whole = self.newest_seen.is_some_and(|n| n > id);
                let end = match self.partial.get(&id) {
                    Some(_) if sent_whole => u32::MAX,
                    Some(p) => p.highest(),
                    None => continue,
                };
                self.nack(id, now, end, out);
            }
        }
        self.advance(now, limit, out);
    }

    /// A progress report for a frame in reassembly, if one is due (see [`PROGRESS_CHUNKS`]) and
    /// no NACK just went out: a NACK whose only range lies past the frame's last chunk, a range
    /// the sender cannot resend. Its `count`, less one, is the index of the chunk whose arrival
    /// prompted the report, so the sender can take a round-trip sample from it.
    fn report_progress(
        &mut self,
        frame: FrameId,
        now: Timestamp,
        index: ChunkIndex,
        out: &mut Vec<StreamOutput>,
    ) {
        let Some(p) = self.partial.get_mut(&frame) else {
            return;
        };
        let held = p.chunks_received();
        let since = held.saturating_sub(p.reported_chunks);
        let due = since >= PROGRESS_CHUNKS
            || (since >= PROGRESS_MIN_CHUNKS
                && p.last_report
                    .is_none_or(|t| now.saturating_since(t) >= PROGRESS_INTERVAL));
        // A NACK for this chunk just went out (it reset the count), or none is due yet.
        if !due {
            return;
        }
        let Ok(past) = u32::try_from(p.total_chunks()) else {
            return;
        };
        let Some(count) = index
            .0
            .checked_add(1)
            .filter(|c| past.checked_add(*c).is_some())
        else {
            return;
        };
        p.last_report = Some(now);
        p.reported_chunks = held;
        out.push(StreamOutput::Nack {
            frame,
            chunks_received: held,
            ranges: vec![ChunkRange { first: past, count }],
            progress: true,
        });
    }

    /// Asks for the missing chunks below index `end` of a frame in reassembly.
    fn nack(&mut self, frame: FrameId, now: Timestamp, end: u32, out: &mut Vec<StreamOutput>) {
        let Some(p) = self.partial.get_mut(&frame) else {
            return;
        };
        let ranges = p.missing_ranges(MAX_NACK_RANGES, end);
        if ranges.is_empty() {
            return;
        }
        p.last_nack = Some(now);
        p.last_report = Some(now);
        p.reported_chunks = p.chunks_received();
        p.nacks_since_progress += 1;
        out.push(StreamOutput::Nack {
            frame,
            chunks_received: p.chunks_received(),
            ranges,
            progress: false,
        });
    }

    /// Ends the stream (the session ended): frames in reassembly are reported lost (and
    /// answered EXPIRED should the session come back); complete frames an ordered stream held
    /// for their turn are delivered now, giving up on the gaps before them.
    pub(crate) fn abandon(&mut self, out: &mut Vec<StreamOutput>) {
        let ids: Vec<FrameId> = self.partial.keys().copied().collect();
        for id in ids {
            out.push(StreamOutput::Lost {
                first: id,
                count: 1,
                reason: LossReason::SessionEnded,
            });
            // Decided now, so the gaps given up below do not report it again.
            self.verdicts.insert(id, AckStatus::Expired);
        }
        self.partial.clear();
        self.advance(Timestamp::ZERO, Duration::ZERO, out);
        self.held.clear();
        self.gap_since = None;
        self.footprint = 0;
    }

    /// Records a verdict and asks for it to be acknowledged.
    fn finish(
        &mut self,
        frame: FrameId,
        status: AckStatus,
        report: FrameReport,
        delay_us: u32,
        out: &mut Vec<StreamOutput>,
    ) {
        out.push(StreamOutput::Ack {
            frame,
            status,
            report,
            delay_us,
        });
        self.verdicts.insert(frame, status);
        self.skip_below_base(out);
    }

    /// Ordered streams: delivers held frames whose turn has come, skips frames that finished
    /// without delivery, and gives up on never-seen frames once the gap is `gap_timeout` old.
    fn advance(&mut self, now: Timestamp, gap_timeout: Duration, out: &mut Vec<StreamOutput>) {
        if !self.ordered {
            return;
        }
        loop {
            if let Some(done) = self.held.remove(&self.next) {
                self.footprint -= done.body.len() as u64;
                self.deliver(self.next, done, out);
                self.next = self.next.next();
                self.gap_since = None;
                continue;
            }
            if matches!(self.verdicts.get(self.next), Some(s) if s != AckStatus::Complete) {
                self.next = self.next.next();
                self.gap_since = None;
                continue;
            }
            if self.partial.contains_key(&self.next) {
                return; // wait for it to complete or expire
            }
            let Some((&first_held, _)) = self.held.first_key_value() else {
                self.gap_since = None;
                return;
            };
            // The later frame has waited since it completed, even if a frame in reassembly
            // before the gap kept `next` from reaching the gap until now.
            let waiting_since = self.held[&first_held].completed_at;
            let gap_since = *self.gap_since.get_or_insert(now);
            // A reliable sender resends until the receiver is gone: only a gap that itself
            // stays empty that long is given up, however long later frames have waited.
            let since = if self.reliable {
                gap_since
            } else {
                gap_since.min(waiting_since)
            };
            if now.saturating_since(since) < gap_timeout {
                return;
            }
            // The gap ends at the first frame the stream knows: one in reassembly, one already
            // decided (expired or rejected, and reported lost then) or the held one.
            let in_reassembly = self.partial.range(self.next..first_held).next();
            let decided = self.verdicts.first_in(self.next, first_held);
            let gap_end = [in_reassembly.map(|(&id, _)| id), decided]
                .into_iter()
                .flatten()
                .fold(first_held, FrameId::min);
            out.push(StreamOutput::Lost {
                first: self.next,
                count: gap_end.0 - self.next.0,
                reason: LossReason::NeverSeen,
            });
            // Decided: a sender still trying one of them is answered EXPIRED, not ignored.
            self.verdicts
                .insert_range(self.next, gap_end, AckStatus::Expired);
            self.next = gap_end;
            self.gap_since = None;
        }
    }
}
