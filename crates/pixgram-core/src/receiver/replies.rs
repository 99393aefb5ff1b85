//! What the receiver sends back: ACKs, NACKs and progress reports, CHALLENGEs and PONGs, within
//! each peer's reply credit, and the sink's confirmations that turn into ACKs.

use super::*;

/// Queued replies a progress report looks back over for an older one to replace (a batch
/// read at once interleaves at most a few frames and streams).
const COALESCE_SCAN: usize = 8;

/// A datagram waiting for [`Receiver::poll_transmit`].
#[derive(Debug)]
pub(super) enum Reply {
    Ack(Ack),
    Pong(SessionId, u64),
    Challenge(Challenge),
    Nack {
        session: SessionId,
        stream: StreamId,
        frame: FrameId,
        chunks_received: u32,
        ranges: Vec<ChunkRange>,
        /// A progress report: counted apart from NACKs that ask for chunks.
        progress: bool,
    },
}

impl Reply {
    pub(super) fn len(&self) -> usize {
        match self {
            Reply::Ack(_) => ACK_LEN,
            Reply::Pong(..) => wire::PING_LEN,
            Reply::Challenge(_) => CHALLENGE_LEN,
            Reply::Nack { ranges, .. } => NACK_HEADER_LEN + 8 * ranges.len() + TRAILER_LEN,
        }
    }
}

impl Receiver {
    /// The application took (`stored`) or could not take a frame delivered while
    /// [`ReceiverConfig::confirm_deliveries`] is on: its ACK (COMPLETE or FAILED) is queued now.
    /// A frame of a session that has ended meanwhile is recorded but not answered.
    pub fn confirm(&mut self, now: Timestamp, key: DeliveryKey, stored: bool) {
        let mut out = std::mem::take(&mut self.scratch);
        let located = self.locate(key.session, key.peer);
        let waiting = if let Some(peer) = located.and_then(|k| self.peers.get_mut(&k)) {
            let addr = located.map_or(key.peer, |k| k.1);
            let waiting = peer
                .streams
                .get_mut(&key.stream)
                .is_some_and(|s| s.confirm(key.frame, stored, now, &mut out));
            self.emit(addr, key.session, key.stream, &mut out);
            waiting
        } else if let Some(r) = self.remembered.get_mut(&key.session) {
            r.streams
                .get_mut(&key.stream)
                .is_some_and(|s| s.confirm(key.frame, stored, now, &mut out))
        } else {
            false
        };
        out.clear();
        self.scratch = out;
        if waiting && !stored {
            self.stats.frames_not_stored += 1;
        }
    }

    /// Turns a stream's outputs into acknowledgements and events.
    pub(super) fn emit(
        &mut self,
        peer: SocketAddr,
        session: SessionId,
        stream: StreamId,
        out: &mut Vec<StreamOutput>,
    ) {
        for o in out.drain(..) {
            match o {
                StreamOutput::Ack {
                    frame,
                    status,
                    report,
                    delay_us,
                } => {
                    self.stats.chunks_lost += u64::from(report.chunks_lost);
                    let ack = Ack {
                        session,
                        stream,
                        frame,
                        status,
                        chunks_received: report.chunks_received,
                        ack_delay_us: delay_us,
                        loss: report.loss.0,
                        burst: report.loss.1,
                    };
                    self.queue_reply((session, peer), Reply::Ack(ack));
                }
                StreamOutput::Nack {
                    frame,
                    chunks_received,
                    ranges,
                    progress,
                } => {
                    let reply = Reply::Nack {
                        session,
                        stream,
                        frame,
                        chunks_received,
                        ranges,
                        progress,
                    };
                    self.queue_reply((session, peer), reply);
                }
                StreamOutput::Deliver(frame, done) => {
                    match split_frame(&self.bodies, peer, session, stream, frame, done) {
                        Some(f) => {
                            match f.kind {
                                PayloadKind::Frame => self.stats.frames_delivered += 1,
                                PayloadKind::Message => self.stats.messages_delivered += 1,
                            }
                            self.stats.payload_bytes_delivered += f.payload.len() as u64;
                            self.events.push_back(ReceiverEvent::Frame(f));
                        }
                        None => {
                            self.stats.frames_malformed += 1;
                            self.events.push_back(ReceiverEvent::Lost {
                                peer,
                                session,
                                stream,
                                first: frame,
                                count: 1,
                                reason: LossReason::Malformed,
                            });
                        }
                    }
                }
                StreamOutput::Lost {
                    first,
                    count,
                    reason,
                } => {
                    let s = &mut self.stats;
                    // Saturating: a sender picks its frame ids, so a gap can span 2^64 ids.
                    let counter = match reason {
                        LossReason::Expired => &mut s.frames_expired,
                        LossReason::NeverSeen => &mut s.frames_never_seen,
                        LossReason::Rejected => &mut s.frames_rejected,
                        LossReason::Malformed => &mut s.frames_malformed,
                        LossReason::SessionEnded => &mut s.frames_abandoned,
                        LossReason::Superseded => &mut s.frames_superseded,
                        LossReason::GivenUp => &mut s.frames_given_up,
                    };
                    *counter = counter.saturating_add(count);
                    self.events.push_back(ReceiverEvent::Lost {
                        peer,
                        session,
                        stream,
                        first,
                        count,
                        reason,
                    });
                }
            }
        }
    }

    /// Queues a reply if the queue has room and the peer has sent at least as many bytes.
    /// A progress report replaces one still waiting for the same frame: it says everything
    /// the older one did (its counts are cumulative, its chunk is newer), and a batch of
    /// datagrams read at once would otherwise send one report per [`PROGRESS_CHUNKS`] chunks
    /// of it, all at the same moment.
    ///
    /// [`PROGRESS_CHUNKS`]: crate::stream_rx::PROGRESS_CHUNKS
    pub(super) fn queue_reply(&mut self, key: PeerKey, reply: Reply) {
        if let Some(waiting) = self.waiting_progress(key.1, &reply) {
            *waiting = reply;
            self.stats.progress_reports_coalesced += 1;
            return;
        }
        if self.replies.len() >= self.config.max_queued_acks {
            self.stats.acks_dropped += 1;
            return;
        }
        let len = reply.len() as u64;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.reply_credit < len {
            self.stats.replies_limited += 1;
            return;
        }
        peer.reply_credit -= len;
        self.replies.push_back((key.1, reply));
    }

    /// The progress report still queued (among the last [`COALESCE_SCAN`]) for the frame
    /// `reply` reports progress on, if `reply` is a progress report of the same length.
    fn waiting_progress(&mut self, dst: SocketAddr, reply: &Reply) -> Option<&mut Reply> {
        let Reply::Nack {
            session,
            stream,
            frame,
            ranges,
            progress: true,
            ..
        } = reply
        else {
            return None;
        };
        self.replies
            .iter_mut()
            .rev()
            .take(COALESCE_SCAN)
            .find_map(|(d, r)| match r {
                Reply::Nack {
                    session: s,
                    stream: t,
                    frame: f,
                    ranges: q,
                    progress: true,
                    ..
                } if *d == dst
                    && s == session
                    && t == stream
                    && f == frame
                    && q.len() == ranges.len() =>
                {
                    Some(r)
                }
                _ => None,
            })
    }

    /// Writes the next datagram to send into `buf` (at least [`MAX_REPLY_LEN`] bytes) and
    /// says where it goes; `None` when nothing is waiting.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let (dst, reply) = self.replies.pop_front()?;
        let len = match reply {
            Reply::Ack(ack) => {
                self.stats.acks_sent += 1;
                wire::emit_ack(buf, &ack)
            }
            Reply::Pong(session, value) => wire::emit_ping(buf, session, value, true),
            Reply::Challenge(c) => {
                self.stats.challenges_sent += 1;
                wire::emit_challenge(buf, &c)
            }
            Reply::Nack {
                session,
                stream,
                frame,
                chunks_received,
                ranges,
                progress,
            } => {
                if progress {
                    self.stats.progress_reports_sent += 1;
                } else {
                    self.stats.nacks_sent += 1;
                    self.stats.chunks_nacked +=
                        ranges.iter().map(|r| u64::from(r.count)).sum::<u64>();
                }
                wire::emit_nack(buf, session, stream, frame, chunks_received, &ranges)
            }
        };
        Some(Transmit {
            destination: dst,
            len,
        })
    }
}
