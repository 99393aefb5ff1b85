//! The sender's timers, in one table: [`Sender::poll_timeout`] is the earliest of them and
//! [`Sender::handle_timeout`] acts on those due, both through [`Sender::timer`] and
//! [`OutFrame::timer`], so the two cannot disagree about when something fires (as quinn's
//! timer table does).

use super::*;

/// The sender's own timers (each frame has its [`FrameTimer`]s too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// `peer_timeout` of silence while an answer is due (or greeting unanswered): every frame
    /// is lost and the receiver gone. Handled by `handle_timeout`.
    PeerGone,
    /// Ask the silent receiver whether it is there. Handled by `handle_timeout`.
    Ping,
    /// The next HELLO of the first exchange. Sent by `poll_transmit`.
    Greeting,
    /// The next path MTU probe, or the one out timing out. Sent by `poll_transmit`.
    PathProbe,
    /// The pacer (or, with the window full and no feedback, a retransmission timeout) lets
    /// the next datagram go. Sent by `poll_transmit`.
    Pacer,
}

impl Timer {
    pub(super) const ALL: [Timer; 5] = [
        Timer::PeerGone,
        Timer::Ping,
        Timer::Greeting,
        Timer::PathProbe,
        Timer::Pacer,
    ];
}

/// A frame's timers. Handled by `handle_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrameTimer {
    /// Past its deadline (live frames): dropped.
    Deadline,
    /// A reliable frame's retransmission timeout: its last chunk is sent again as a probe.
    Retransmit,
    /// An unreliable frame's verdict is overdue (`frame_timeout` after its last datagram).
    Verdict,
}

impl FrameTimer {
    pub(super) const ALL: [FrameTimer; 3] = [
        FrameTimer::Deadline,
        FrameTimer::Retransmit,
        FrameTimer::Verdict,
    ];
}

impl OutFrame {
    /// When `timer` fires for this frame, if it is set.
    pub(super) fn timer(&self, timer: FrameTimer, frame_timeout: Duration) -> Option<Timestamp> {
        match timer {
            FrameTimer::Deadline => self.deadline,
            FrameTimer::Retransmit => self.rto_at.filter(|_| self.reliable()),
            FrameTimer::Verdict => self
                .last_sent
                .filter(|_| !self.reliable())
                .map(|t| t + frame_timeout),
        }
    }
}

impl Sender {
    /// When `timer` fires, if it is set.
    pub(super) fn timer(&self, timer: Timer) -> Option<Timestamp> {
        match timer {
            Timer::PeerGone => self
                .silent_since()
                .or(self.greeting.waiting_since())
                .map(|t| t + self.config.peer_timeout),
            Timer::Ping => self.ping_due_at(),
            Timer::Greeting => self.greeting.next_at(),
            Timer::PathProbe => self
                .greeting
                .validated()
                .then(|| self.pmtu.poll_timeout(self.probe_timeout()))
                .flatten(),
            Timer::Pacer => {
                let (_, _, len) = self.next_data()?;
                if !self.greeting.validated() {
                    return None;
                }
                let last = self.pacer.last_send().unwrap_or(Timestamp::ZERO);
                let paced = self.pacer.ready_at(last, len);
                Some(if self.window_full(len) {
                    // Feedback reopens the window; without any, a timeout does.
                    paced.max(self.window_clock + self.window_timeout())
                } else {
                    paced
                })
            }
        }
    }

    /// Whether `timer` has fired by `now`.
    fn fired(&self, timer: Timer, now: Timestamp) -> bool {
        self.timer(timer).is_some_and(|t| now >= t)
    }

    /// When [`handle_timeout`](Sender::handle_timeout) should next be called, or when the
    /// pacer lets the next datagram go; `None` while there is nothing to do. Call again after
    /// every input.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.frames.is_empty() {
            return None;
        }
        let frame_timeout = self.config.frame_timeout;
        let frames = self.frames.values().flat_map(|f| {
            FrameTimer::ALL
                .into_iter()
                .filter_map(move |t| f.timer(t, frame_timeout))
        });
        Timer::ALL
            .into_iter()
            .filter_map(|t| self.timer(t))
            .chain(frames)
            .min()
    }

    /// Reports frames whose verdict is overdue (unreliable streams), probes reliable frames
    /// whose retransmission timer fired, and reports the receiver gone after `peer_timeout`
    /// of silence. Harmless to call early or often.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.frames.is_empty() {
            return;
        }
        let peer_gone = self.fired(Timer::PeerGone, now);
        if !peer_gone && self.fired(Timer::Ping, now) {
            self.ping_queued = true;
            self.next_ping = now + (self.config.peer_timeout / 8).max(Duration::from_millis(50));
        }
        let frame_timeout = self.config.frame_timeout;
        let fired = |f: &OutFrame, t| f.timer(t, frame_timeout).is_some_and(|at| now >= at);
        let mut lost = Vec::new();
        let mut probes = Vec::new();
        let mut past_deadline = Vec::new();
        for (key, f) in &self.frames {
            if peer_gone {
                lost.push(*key);
            } else if fired(f, FrameTimer::Deadline) {
                past_deadline.push(*key);
            } else if fired(f, FrameTimer::Retransmit) {
                probes.push(*key);
            } else if fired(f, FrameTimer::Verdict) {
                lost.push(*key);
            }
        }
        for key in past_deadline {
            self.stats.frames_past_deadline += 1;
            self.drop_frame(key, SendFailure::Deadline, Some(now));
        }
        for key in &probes {
            // Send the last chunk again: the receiver answers with an ACK (the verdict was
            // lost) or a NACK naming what it lacks (it may not know the frame at all).
            let f = self.frames.get_mut(key).expect("listed");
            f.rto_at = None;
            f.backoffs += 1;
            f.retransmitted = true;
            // What the frame still has in flight is lost (no report of it came in a timeout):
            // it no longer fills the window, or lost single-chunk frames, which no NACK can
            // name, would hold the window shut and their own probes back.
            let gone = f.outstanding_bytes();
            f.outstanding = 0;
            self.inflight -= gone.min(self.inflight);
            // Nor does it count for the controller's rounds, which end when what was sent is
            // accounted for: unaccounted, each timeout would stretch every later round.
            self.rate.on_forgotten(gone);
            let last = f.layout.count() - 1;
            if f.queue_resend(last, now, Duration::ZERO) && !self.resend_queue.contains(key) {
                self.resend_queue.push_back(*key);
            }
            self.stats.rto_expirations += 1;
        }
        let current = self.pmtu.current();
        // A black hole: a frame cut for the size in use timed out three times in a row, and
        // nothing showed a datagram of that size arriving since the frame was queued. (Random
        // loss times frames out too, but the others' ACKs keep showing the size gets through;
        // counting timeouts in a row across frames took 20% random loss for a black hole.)
        let heard = self.size_heard_at;
        let black_hole = current > self.config.datagram_size
            && probes.iter().any(|k| {
                let f = &self.frames[k];
                f.cut_for == current
                    && f.backoffs >= BLACK_HOLE_TIMEOUTS
                    && heard.is_none_or(|t| t < f.submitted)
            });
        if black_hole {
            // Datagrams of the size in use stopped getting through: new frames go at the
            // base size, and frames already sent in part at the larger one cannot arrive.
            self.pmtu.on_black_hole(now);
            self.stats.mtu_black_holes += 1;
            self.size_heard_at = None;
            let stuck: Vec<_> = self
                .frames
                .iter()
                .filter(|(_, f)| f.cut_for > self.config.datagram_size && f.next_chunk > 0)
                .map(|(k, _)| *k)
                .collect();
            for key in stuck {
                self.drop_frame(key, SendFailure::PathShrank, Some(now));
            }
        }
        if !probes.is_empty() {
            // Not a loss for the controller: their fate is unknown (the probe will tell), no
            // sign of congestion, and a resent copy's delivery counts for them once reported.
            self.rate.advance(now, self.inflight_bytes());
            self.update_pacer(now);
        }
        let reason = if peer_gone {
            SendFailure::PeerGone
        } else {
            SendFailure::Timeout
        };
        for key in lost {
            self.drop_frame(key, reason, Some(now));
        }
        if peer_gone {
            self.events.push_back(SenderEvent::PeerGone);
            self.carried_silence = Duration::ZERO;
            if !self.greeting.validated() {
                // Greet afresh if frames come later (a live stream started before its receiver).
                self.greeting.reset();
            }
        }
    }

    /// When to ask the receiver whether it is there: a quarter of `peer_timeout` into a
    /// silence, then every eighth of it, so that a receiver merely left with nothing to answer
    /// (frames lost whole, ACKs lost) is not taken for gone. `None` while no answer is due.
    pub(super) fn ping_due_at(&self) -> Option<Timestamp> {
        let since = self.silent_since()?;
        Some((since + self.config.peer_timeout / 4).max(self.next_ping))
    }

    /// Since when the receiver counts as silent (see `answer_due`): frames that timed out
    /// unanswered do not restart it, and silence carried over from frames that all timed out
    /// counts before it. `None` while no answer is due.
    pub(super) fn silent_since(&self) -> Option<Timestamp> {
        (self.due_frames > 0).then_some(self.answer_due)
    }
}
