//! The receiver's answers: ACKs, NACKs and progress reports, CHALLENGEs and PONGs, and
//! what they do to frames in flight, the window and the controller.

use super::*;

impl Sender {
    /// Takes one datagram from the receiver.
    pub fn handle(&mut self, now: Timestamp, datagram: &[u8]) {
        match wire::parse(datagram) {
            Ok(Datagram::Ack(a)) if a.session == self.session => self.on_ack(now, a),
            Ok(Datagram::Nack(n)) if n.session == self.session => self.on_nack(now, &n),
            Ok(Datagram::Challenge(c)) if c.session == self.session => {
                // A token for our address: the receiver is there, but this is not an answer
                // about any frame (a receiver that refuses the session keeps sending them).
                // One that carries the length of the probe out confirms that size.
                self.stats.challenges_received += 1;
                if self.pmtu.on_confirmed(c.answered_len as usize, now) {
                    self.stats.mtu_probes_confirmed += 1;
                    if c.answered_len as usize == self.pmtu.current() {
                        self.size_heard_at = Some(now);
                    }
                } else {
                    if let Some(rtt) = self.greeting.rtt_sample(now, c.answered_len as usize) {
                        self.exchange_rtt = Some(rtt);
                        if self.streams.values().any(|s| s.live) {
                            // Live frames cannot wait for a frame's feedback to learn the
                            // path's delay: their deadlines pass first on a long path.
                            self.rate.on_rtt(now, rtt);
                        }
                    }
                    self.greeting.on_challenge(c.token);
                }
            }
            Ok(Datagram::Pong(session, value))
                if session == self.session && value >= 1 && value <= self.pings =>
            {
                // The receiver is there: silence ends, nothing else changes.
                self.stats.pongs_received += 1;
                self.answer_due = self.answer_due.max(now);
                self.carried_silence = Duration::ZERO;
                self.heard = Some(now);
            }
            _ => self.stats.ignored_datagrams += 1,
        }
    }

    /// A frame was acknowledged whole: if it was cut for the size in use, that size gets
    /// through (see the black-hole test in `handle_timeout`).
    fn heard_size_of(&mut self, now: Timestamp, key: (StreamId, FrameId)) {
        let current = self.pmtu.current();
        if self.frames.get(&key).is_some_and(|f| f.cut_for == current) {
            self.size_heard_at = Some(now);
        }
    }

    pub(super) fn on_ack(&mut self, now: Timestamp, ack: Ack) {
        self.stats.acks_received += 1;
        self.greeting.on_answer();
        self.answer_due = self.answer_due.max(now);
        self.carried_silence = Duration::ZERO;
        self.heard = Some(now);
        if ack.chunks_received > 0 {
            let loss = f64::from(ack.loss) / 255.0;
            self.reported_loss = 0.9 * self.reported_loss + 0.1 * loss;
            self.reported_burst = 0.9 * self.reported_burst + 0.1 * f64::from(ack.burst);
            self.measured_loss = Some(self.measured_loss.map_or(loss, |m| 0.9 * m + 0.1 * loss));
        }
        let key = (ack.stream, ack.frame);
        if ack.status == AckStatus::Complete {
            self.progress = now;
        }
        if ack.status == AckStatus::Rejected {
            let (patience, progress) = (self.config.peer_timeout, self.progress);
            if let Some(f) = self.frames.get_mut(&key).filter(|f| f.reliable()) {
                // The receiver had no room for a reliable frame: not a verdict, a "later".
                // Probe again after a backed-off timeout; the receiver, if it has room then,
                // NACKs what it lacks. Refused for `peer_timeout` while no frame completed
                // and no chunk was asked for (a limit the frame can never fit), it is lost.
                let since = (*f.rejected_since.get_or_insert(now)).max(progress);
                if now.saturating_since(since) < patience {
                    f.backoffs = (f.backoffs + 1).min(16);
                    f.rto_at = Some(now + self.rtt.backed_off(f.backoffs));
                    self.stats.rejections_retried += 1;
                    return;
                }
            }
        }
        self.window_clock = now;
        if ack.status == AckStatus::Complete {
            self.heard_size_of(now, key);
        }
        let Some(frame) = self.frames.remove(&key) else {
            if ack.status == AckStatus::Complete {
                let delay = Duration::from_micros(u64::from(ack.ack_delay_us));
                if let Some(sent) = self
                    .given_up
                    .iter()
                    .find(|g| g.key == key)
                    .and_then(|g| g.last_tx)
                {
                    self.rate
                        .on_rtt(now, now.saturating_since(sent).saturating_sub(delay));
                }
                self.late_delivery(now, key, u32::MAX, true);
            }
            if !(ack.status == AckStatus::Complete && self.on_late_complete(now, key)) {
                self.stats.duplicate_acks += 1;
            }
            return;
        };
        self.inflight -= frame.outstanding_bytes().min(self.inflight);
        if ack.status != AckStatus::Complete {
            self.rate.on_forgotten(frame.outstanding_bytes());
        }
        self.due_frames -= usize::from(frame.last_sent.is_some());
        self.send_queue.retain(|k| *k != key);
        self.resend_queue.retain(|k| *k != key);
        self.release(ack.stream);
        let event = match ack.status {
            AckStatus::Complete => {
                let fresh = frame.total_chunks().saturating_sub(frame.reported);
                let bytes = u64::from(fresh) * frame.chunk_bytes();
                self.stats.frames_acked += 1;
                self.stats.payload_bytes_acked += frame.payload.len() as u64;
                let rtt = now
                    .saturating_since(frame.last_tx)
                    .saturating_sub(Duration::from_micros(u64::from(ack.ack_delay_us)));
                if !frame.retransmitted {
                    // The lowest RTT and the queueing delay must not be fooled by an ACK that
                    // answers an earlier copy of a chunk sent twice: unambiguous samples only.
                    self.rate.on_rtt(now, rtt);
                }
                self.rate.on_feedback(now, bytes, 0, self.inflight_bytes());
                // A frame with resent chunks gives a sample too (at 5% loss nearly every large
                // frame has one), unless it was a timeout probe, or it is shorter than the
                // lowest unambiguous RTT: then the ACK answered an earlier copy, and taking it
                // would shrink the RTO, resend sooner, and shrink the samples further.
                // Before any frame went out once and whole (at high loss every large frame
                // loses a chunk), the floor is the smoothed RTT itself: an ambiguous sample
                // may raise it, never lower it (a spurious one is always too short).
                let floor = self.rate.min_rtt().or_else(|| self.rtt.smoothed());
                let plausible = floor.is_none_or(|m| rtt >= m);
                if !frame.last_tx_probe && (!frame.retransmitted || plausible) {
                    self.rtt.on_sample(rtt);
                }
                self.update_pacer(now);
                SenderEvent::Acked {
                    stream: ack.stream,
                    frame: ack.frame,
                    rtt,
                    latency: now.saturating_since(frame.submitted),
                }
            }
            AckStatus::Expired | AckStatus::Rejected | AckStatus::Failed => {
                self.stats.frames_lost += 1;
                SenderEvent::Lost {
                    stream: ack.stream,
                    frame: ack.frame,
                    reason: match ack.status {
                        AckStatus::Expired => SendFailure::Expired,
                        AckStatus::Rejected => SendFailure::Rejected,
                        _ => SendFailure::NotStored,
                    },
                }
            }
        };
        self.events.push_back(event);
    }

    pub(super) fn on_nack(&mut self, now: Timestamp, nack: &Nack<'_>) {
        self.stats.nacks_received += 1;
        self.greeting.on_answer();
        self.answer_due = self.answer_due.max(now);
        self.carried_silence = Duration::ZERO;
        self.heard = Some(now);
        self.progress = now;
        self.window_clock = now;
        let key = (nack.stream, nack.frame);
        let Some(frame) = self.frames.get_mut(&key) else {
            self.late_delivery(now, key, nack.chunks_received, false);
            return;
        };
        // Asking for chunks: the receiver has room for the frame now.
        frame.rejected_since = None;
        let total = frame.total_chunks();
        let held = nack.chunks_received.min(total);
        let mut delivered = 0u64;
        if held > frame.reported {
            if frame.cut_for == self.pmtu.current() {
                self.size_heard_at = Some(now);
            }
            let fresh = held - frame.reported;
            delivered = u64::from(fresh) * frame.chunk_bytes();
            frame.reported = held;
            let known = fresh.min(frame.outstanding);
            frame.outstanding -= known;
            self.inflight -= (u64::from(known) * frame.chunk_bytes()).min(self.inflight);
        }
        // A progress report: its one range lies past the frame, and its count less one is the
        // chunk whose arrival prompted it. That chunk's RTT is a sample, unless it was sent
        // more than once (the report may answer either copy).
        let mut ranges = nack.ranges();
        let mut progress_trigger = None;
        if let (Some(r), None) = (ranges.next(), ranges.next()) {
            if r.first >= total {
                self.stats.progress_reports_received += 1;
                let trigger = r.count - 1;
                progress_trigger = Some(trigger);
                let once = frame
                    .resent_at
                    .get(trigger as usize)
                    .is_none_or(|t| t.is_none());
                let sent = frame.sent_at.get(trigger as usize).copied();
                if let Some(sent) = sent.filter(|_| once && trigger < frame.next_chunk) {
                    self.rate.on_rtt(now, now.saturating_since(sent));
                }
            }
        }
        let chunk = frame.chunk_bytes();
        if !frame.reliable() || frame.deadline.is_some_and(|d| now >= d) {
            // Nothing is resent, but what a queue dropped still tells the controller: a
            // progress report prompted by chunk `trigger` shows every chunk sent before it
            // that the receiver lacks lost (a live frame's chunks go out once, in order).
            // Without it a live stream overflowing a queue saw no loss at all.
            let mut lost = 0u64;
            if let Some(trigger) = progress_trigger.filter(|_| !frame.reliable()) {
                let missing = (trigger + 1).min(frame.next_chunk).saturating_sub(held);
                if missing > frame.lost_seen {
                    let fresh = missing - frame.lost_seen;
                    frame.lost_seen = missing;
                    let known = fresh.min(frame.outstanding);
                    frame.outstanding -= known;
                    self.inflight -= (u64::from(known) * chunk).min(self.inflight);
                    lost = u64::from(fresh) * chunk;
                    self.stats.live_chunks_lost += u64::from(fresh);
                }
            }
            self.rate.on_feedback(now, delivered, lost, self.inflight);
            self.update_pacer(now);
            return;
        }
        let count = frame.layout.count();
        // A chunk resent less than this long ago may still be on its way.
        let holdoff = self.rtt.smoothed().unwrap_or(Duration::from_millis(10)) * 3 / 2;
        // A chunk sent less than half the RTT ago cannot be known lost yet: the NACK was
        // written before it could have arrived (or is forged). The smoothed RTT, when it is
        // above the lowest: a chunk waits in the same queue the samples did.
        let rtt = self.rate.min_rtt().max(self.rtt.smoothed());
        let not_due = rtt.unwrap_or(Duration::ZERO) / 2;
        let mut queued = 0u64;
        'ranges: for r in nack.ranges() {
            let end = r.first.saturating_add(r.count).min(count);
            for i in r.first..end {
                if queued >= MAX_RESENDS_PER_NACK {
                    // Feedback has bounded leverage: what is not resent now is asked for
                    // again by the receiver's next NACK.
                    self.stats.nack_chunks_deferred += u64::from(end - i);
                    continue 'ranges;
                }
                let sent = frame.sent_at.get(i as usize).copied();
                if sent.is_some_and(|t| now.saturating_since(t) < not_due) {
                    self.stats.nack_chunks_not_due += 1;
                    continue;
                }
                if frame.queue_resend(i, now, holdoff) {
                    queued += 1;
                    if frame.outstanding > 0 {
                        frame.outstanding -= 1;
                        self.inflight = self.inflight.saturating_sub(chunk);
                    }
                }
            }
        }
        if queued > 0 {
            frame.retransmitted = true;
            frame.rto_at = None;
            frame.backoffs = 0;
            if !self.resend_queue.contains(&key) {
                self.resend_queue.push_back(key);
            }
        }
        self.rate
            .on_feedback(now, delivered, queued * chunk, self.inflight);
        self.update_pacer(now);
    }

    /// Feedback on a frame given up: the receiver now holds `held` of its chunks (`u32::MAX`:
    /// all, and `done`: no more will come). What it holds beyond its last report was
    /// delivered, and counts towards the delivery rate.
    pub(super) fn late_delivery(
        &mut self,
        now: Timestamp,
        key: (StreamId, FrameId),
        held: u32,
        done: bool,
    ) {
        let Some(at) = self.given_up.iter().position(|g| g.key == key) else {
            return;
        };
        let g = &mut self.given_up[at];
        let held = held.min(g.total);
        if held > g.reported {
            let bytes = u64::from(held - g.reported) * g.chunk_bytes;
            g.reported = held;
            self.rate.on_late_delivery(now, bytes);
            self.update_pacer(now);
        }
        if done {
            self.given_up.remove(at);
        }
    }

    /// Remembers a frame reported lost on a guess, forgetting the oldest beyond
    /// [`RECENT_LOST`].
    pub(super) fn remember_lost(
        &mut self,
        key: (StreamId, FrameId),
        len: u64,
        submitted: Timestamp,
    ) {
        if self.recent_lost.insert(key, (len, submitted)).is_none() {
            self.recent_lost_order.push_back(key);
        }
        while self.recent_lost_order.len() > RECENT_LOST {
            if let Some(old) = self.recent_lost_order.pop_front() {
                self.recent_lost.remove(&old);
            }
        }
    }

    /// A COMPLETE ACK for a frame no longer in flight: if it was reported lost on a guess,
    /// correct the verdict.
    pub(super) fn on_late_complete(&mut self, now: Timestamp, key: (StreamId, FrameId)) -> bool {
        let Some((len, submitted)) = self.recent_lost.remove(&key) else {
            return false;
        };
        self.recent_lost_order.retain(|k| *k != key);
        self.stats.frames_lost -= 1;
        self.stats.frames_acked += 1;
        self.stats.payload_bytes_acked += len;
        self.stats.late_acks += 1;
        self.events.push_back(SenderEvent::LateAck {
            stream: key.0,
            frame: key.1,
            latency: now.saturating_since(submitted),
        });
        true
    }
}
