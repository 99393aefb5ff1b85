//! What goes out next: the first exchange, path MTU probes, PINGs, resends before new
//! chunks, all within the pacer and the window.

use super::*;

impl Sender {
    /// Writes the next datagram into `buf` (at least `max_datagram_size` bytes), or returns `None`
    /// when nothing is ready: nothing to send, or the pacer wants a pause (then
    /// [`poll_timeout`](Sender::poll_timeout) says until when). Call until `None` after every
    /// input.
    pub fn poll_transmit(
        &mut self,
        now: Timestamp,
        buf: &mut [u8],
    ) -> Option<Transmit<SessionPeer>> {
        if self.ping_queued {
            // 20 bytes, a few times per timeout: not paced.
            return Some(self.emit_ping(now, buf));
        }
        if !self.frames.is_empty() {
            if let Some(token) = self.greeting.due(now) {
                // 64 bytes, a few per round trip at most: not paced.
                return Some(self.emit_hello(now, buf, token));
            }
        }
        if !self.greeting.validated() {
            // Nothing goes before the receiver has shown it is there (and a CLOSE to a
            // receiver that never knew the session says nothing).
            self.close_queued = false;
            return None;
        }
        if let Some(size) = self.pmtu.poll(now, self.probe_timeout()) {
            // A few per search step: not paced.
            return Some(self.emit_probe(now, buf, size));
        }
        let Some((key, resend, len)) = self.next_data() else {
            if self.close_queued {
                self.close_queued = false;
                let len = wire::emit_close(buf, self.session);
                self.count_sent(now, len);
                return Some(Transmit::to_peer(len));
            }
            self.rate.on_app_limited(now, self.inflight_bytes());
            return None;
        };
        // With nothing in flight the first datagram goes at once: there is no queue of ours
        // to protect, and a request/reply sender's next frame (one datagram after a pause)
        // would otherwise wait for tokens at an estimate its own pauses kept low (1,000
        // bytes after a 400 us pause waited 2 ms for an estimate of 0.5 MB/s). The pacer is
        // charged for it all the same, so what follows is paced.
        let ready = if self.inflight == 0 {
            now
        } else {
            self.pacer.ready_at(now, len)
        };
        if ready > now {
            // Held back by the rate: a chance for the controller to move to its next phase.
            self.rate.advance(now, self.inflight_bytes());
            self.update_pacer(now);
            self.paced_until = Some(self.pacer.ready_at(now, len));
            return None;
        }
        if let Some(due) = self.paced_until.take() {
            self.pacer.on_late(now, now.saturating_since(due));
        }
        if self.window_full(len) {
            if now < self.window_clock + self.window_timeout() {
                return None;
            }
            // No feedback for a retransmission timeout with the window full: what is in
            // flight is taken as lost, and until feedback comes again only the pacer limits
            // the sender (a receiver that is gone is then found as before, once every frame
            // has been sent and an answer is due).
            self.inflight = 0;
            self.frames.values_mut().for_each(|f| f.outstanding = 0);
        }
        let max_chunk = self.pmtu.current() - DATA_OVERHEAD;
        let frame = self
            .frames
            .get_mut(&key)
            .expect("queued frames are in flight");
        if !resend {
            frame.fit(max_chunk);
        }
        let index = if resend {
            let i = frame
                .pop_resend()
                .expect("frames in the resend queue have chunks");
            frame.resent_at[i as usize] = Some(now);
            if frame.resend.is_empty() {
                self.resend_queue.pop_front();
            }
            self.stats.chunks_retransmitted += 1;
            i
        } else {
            let i = frame.next_chunk;
            frame.next_chunk += 1;
            if frame.next_chunk == frame.total_chunks() {
                frame.last_sent = Some(now);
                if self.due_frames == 0 {
                    // No answer can be back before a round trip.
                    let rtt = self.rate.min_rtt().unwrap_or(Duration::ZERO);
                    self.answer_due = before(now + rtt, self.carried_silence);
                    self.carried_silence = Duration::ZERO;
                }
                self.due_frames += 1;
                self.send_queue.pop_front();
            }
            i
        };
        if frame.reliable() && frame.is_drained() {
            frame.rto_at = Some(now + self.rtt.backed_off(frame.backoffs));
        }
        if let Some(t) = frame.sent_at.get_mut(index as usize) {
            *t = now;
        }
        let count = frame.layout.count();
        if index < count {
            // Parity goes out after the data, which usually completes the frame first: the
            // ACK answers the last data chunk, so the RTT runs from it.
            frame.last_tx = now;
            frame.last_tx_probe = resend && frame.backoffs > 0;
        }
        // The stream's lowest frame without a verdict: the receiver forgets what is below it
        // and starts a stream it does not know (it restarted) there.
        let floor = self
            .frames
            .range((key.0, FrameId(0))..=key)
            .next()
            .map_or(key.1, |(k, _)| k.1);
        let frame = self.frames.get_mut(&key)?;
        let header = DataHeader {
            session: self.session,
            stream: key.0,
            flags: frame.flags,
            frame: key.1,
            index: ChunkIndex(index),
            count,
            frame_len: frame.layout.len(),
            parity: frame.parity_count,
            deadline_ms: frame.deadline_ms,
            floor,
        };
        wire::emit_data_header(buf, &header);
        let payload_len = if index < count {
            let range = frame.layout.range(ChunkIndex(index)).expect("chunk exists");
            let len = range.len();
            frame.copy_body(range, &mut buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len]);
            len
        } else {
            let shard = frame.layout.parity_len();
            let at = (index - count) as usize * shard;
            buf[DATA_HEADER_LEN..DATA_HEADER_LEN + shard]
                .copy_from_slice(&frame.parity[at..at + shard]);
            self.stats.parity_chunks_sent += 1;
            shard
        };
        let len = if self.config.sealed {
            wire::finish_data_sealed(buf, payload_len)
        } else {
            wire::finish_data(buf, payload_len)
        };
        self.count_sent(now, len);
        if let Some(f) = self.frames.get_mut(&key) {
            f.outstanding += 1;
            if self.inflight == 0 {
                // From idle, without a deadline: a stop-and-wait sender's next frame. (A live
                // stream's flights end as often in frames given up as in deliveries; its
                // samples keep spanning its gaps, and only raise the estimate.)
                self.rate.on_flight_start(now);
            }
            self.inflight += f.chunk_bytes();
            self.rate.on_sent(now, f.chunk_bytes());
        }
        Some(Transmit::to_peer(len))
    }

    /// The next DATA datagram to go (resends first): its frame, whether a resend, and its
    /// size, which is what the frame was cut for once its chunks began to go (a resend, or a
    /// frame sent in part before the path MTU rose), else the size in use now.
    pub(super) fn next_data(&self) -> Option<((StreamId, FrameId), bool, usize)> {
        let (key, resend) = match (self.resend_queue.front(), self.send_queue.front()) {
            (Some(&k), _) => (k, true),
            (None, Some(&k)) => (k, false),
            (None, None) => return None,
        };
        let len = match self.frames.get(&key) {
            Some(f) if resend || f.next_chunk > 0 => f.cut_for,
            _ => self.pmtu.current(),
        };
        Some((key, resend, len))
    }

    pub(super) fn count_sent(&mut self, now: Timestamp, len: usize) {
        self.pacer.on_sent(now, len);
        self.count_unpaced(len);
    }

    /// Counts a datagram the pacer does not hold back, nor charges for (a path MTU probe:
    /// PROTOCOL 8.4). Charged at the initial rate, a keyed sender's probes (600 kB) held its
    /// first frame's data back 121 ms on loopback, an unkeyed one's (74 kB) 15 ms.
    fn count_unpaced(&mut self, len: usize) {
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += len as u64;
    }

    /// Writes a HELLO, with the token if the sender holds one.
    pub(super) fn emit_hello(
        &mut self,
        now: Timestamp,
        buf: &mut [u8],
        token: Option<wire::Token>,
    ) -> Transmit<SessionPeer> {
        let len = self.greeting.hello_len();
        self.greeting.on_sent(now);
        self.stats.hellos_sent += 1;
        let hello = wire::Hello {
            session: self.session,
            token,
            probe: false,
            max_datagram: self
                .config
                .max_datagram_size
                .unwrap_or(self.config.datagram_size) as u32,
            len,
        };
        let len = wire::emit_hello(buf, &hello);
        self.count_sent(now, len);
        Transmit::to_peer(len)
    }

    /// Writes a path MTU probe of `size` bytes: a HELLO with the token, padded.
    pub(super) fn emit_probe(
        &mut self,
        now: Timestamp,
        buf: &mut [u8],
        size: usize,
    ) -> Transmit<SessionPeer> {
        self.pmtu.on_probe_sent(now);
        self.stats.mtu_probes_sent += 1;
        let hello = wire::Hello {
            session: self.session,
            token: self.greeting.token(),
            probe: true,
            max_datagram: self.config.max_datagram_size.unwrap_or(size) as u32,
            len: size,
        };
        let len = wire::emit_hello(buf, &hello);
        self.count_unpaced(len);
        Transmit::to_peer(len)
    }

    /// How long an unanswered path MTU probe waits before it is sent again.
    pub(super) fn probe_timeout(&self) -> Duration {
        (self.rtt.rto() * 2).max(Duration::from_millis(50))
    }

    /// The datagram size new frames are cut for (path MTU discovery may raise it).
    pub fn datagram_size(&self) -> usize {
        self.pmtu.current()
    }

    /// Writes the queued PING.
    pub(super) fn emit_ping(&mut self, now: Timestamp, buf: &mut [u8]) -> Transmit<SessionPeer> {
        self.ping_queued = false;
        self.pings += 1;
        self.stats.pings_sent += 1;
        let len = wire::emit_ping(buf, self.session, self.pings, false);
        self.count_sent(now, len);
        Transmit::to_peer(len)
    }
}
