//! The receiving endpoint: many senders on one socket, each demultiplexed by session, address
//! and stream, with every remotely growable structure bounded. An address gets no state until
//! it has shown it receives (a token from a CHALLENGE sent back in a HELLO, §8); a session that
//! moves to a new, validated address keeps its state.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::body_pool::BodyPool;
use crate::chunking::ChunkLayout;
use crate::handshake::{
    AddressValidator, ChallengeBudget, CHALLENGES_PER_SEC, DATA_CHALLENGES_PER_SEC,
};
use crate::ids::{FrameId, SessionId, StreamId};
use crate::pacing::Pacer;
use crate::stream_rx::{Admission, ChunkOutcome, Completed, StreamOutput, StreamReceiver, Timers};
use crate::time::Timestamp;
use crate::transmit::Transmit;
use crate::wire::{
    self, Ack, Challenge, ChunkRange, DataFlags, DataHeader, Datagram, Hello, ParseError, ACK_LEN,
    CHALLENGE_LEN, MAX_NACK_RANGES, NACK_HEADER_LEN, TRAILER_LEN,
};

mod exchange;
mod peers;
mod replies;
#[cfg(test)]
mod tests;
mod types;

use peers::{Peer, Remembered};
use replies::Reply;
pub use types::*;

/// A sender as the receiver tells it apart: its session and its address.
type PeerKey = (SessionId, SocketAddr);

/// The receiving endpoint, free of I/O.
///
/// Feed it with [`handle`](Receiver::handle) for every datagram and
/// [`handle_timeout`](Receiver::handle_timeout) when [`poll_timeout`](Receiver::poll_timeout)'s
/// instant has passed; after each input, drain [`poll_transmit`](Receiver::poll_transmit)
/// (acknowledgements to send) and [`poll_event`](Receiver::poll_event) until they return `None`.
///
/// ```
/// use pixgram_core::{Receiver, ReceiverConfig, Sender, SenderConfig, Timestamp, StreamId};
/// use pixgram_core::{ReceiverEvent, OutgoingFrame};
///
/// let peer = "127.0.0.1:5000".parse().unwrap();
/// let mut tx = Sender::new(SenderConfig::default(), pixgram_core::SessionId(1));
/// let mut rx = Receiver::new(ReceiverConfig::default());
/// let now = Timestamp::ZERO;
/// tx.send(now, OutgoingFrame::frame(StreamId::FRAMES, vec![7u8; 5000])).unwrap();
/// let mut buf = vec![0u8; 1500];
/// let mut got = None;
/// // Round 1: HELLO, answered with a CHALLENGE (a token); round 2: HELLO with the token and
/// // the frame's DATA, answered with its ACK.
/// for _round in 0..2 {
///     while let Some(t) = tx.poll_transmit(now, &mut buf) {
///         rx.handle(now, peer, &buf[..t.len]);
///     }
///     while let Some(t) = rx.poll_transmit(&mut buf) {
///         tx.handle(now, t.bytes(&buf));
///     }
///     while let Some(e) = rx.poll_event() {
///         if let ReceiverEvent::Frame(f) = e {
///             got = Some(f);
///         }
///     }
/// }
/// assert_eq!(&got.unwrap().payload[..], &[7u8; 5000][..]);
/// ```
#[derive(Debug)]
pub struct Receiver {
    config: ReceiverConfig,
    // Ordered maps: timers visit peers and streams in the same order on every run, so a
    // simulation replays exactly from its seed.
    peers: BTreeMap<PeerKey, Peer>,
    /// Sessions that ended, with their streams' verdicts: a closed one's late datagrams are
    /// dropped, an idle one that comes back resumes. At most `max_remembered_sessions`.
    remembered: BTreeMap<SessionId, Remembered>,
    footprint: u64,
    /// Bytes buffered per address, all its sessions together: several sessions at one
    /// address share one `max_peer_bytes`.
    addr_footprint: BTreeMap<SocketAddr, u64>,
    events: VecDeque<ReceiverEvent>,
    replies: VecDeque<(SocketAddr, Reply)>,
    fine_timer: bool,
    scratch: Vec<StreamOutput>,
    stats: ReceiverStats,
    next_sweep: Option<Timestamp>,
    validator: AddressValidator,
    /// CHALLENGEs answering HELLOs, and those answering DATA from addresses not validated.
    challenges: ChallengeBudget,
    data_challenges: ChallengeBudget,
    /// DATA from addresses not validated, oldest first, and its bytes (see
    /// [`EARLY_DATA_BYTES`]).
    early: VecDeque<(Timestamp, PeerKey, Vec<u8>)>,
    early_bytes: usize,
    /// Bodies of delivered frames, back from the application for the next frames.
    bodies: BodyPool,
}

impl Receiver {
    /// A receiver with the given limits.
    pub fn new(config: ReceiverConfig) -> Self {
        Receiver {
            validator: AddressValidator::new(config.address_secret.0),
            challenges: ChallengeBudget::new(CHALLENGES_PER_SEC),
            data_challenges: ChallengeBudget::new(DATA_CHALLENGES_PER_SEC),
            early: VecDeque::new(),
            early_bytes: 0,
            bodies: BodyPool::default(),
            config,
            peers: BTreeMap::new(),
            remembered: BTreeMap::new(),
            addr_footprint: BTreeMap::new(),
            footprint: 0,
            events: VecDeque::new(),
            replies: VecDeque::new(),
            fine_timer: false,
            scratch: Vec::new(),
            stats: ReceiverStats::default(),
            next_sweep: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReceiverStats {
        &self.stats
    }

    /// Bytes currently buffered for all senders.
    pub fn buffered_bytes(&self) -> u64 {
        self.footprint
    }

    /// Senders currently served.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Takes one datagram that arrived from `from` at `now`.
    pub fn handle(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) {
        self.handle_parsed(now, from, datagram, wire::parse(datagram));
    }

    /// Takes one datagram that an AEAD open has authenticated (a keyed receiver's): its
    /// checksum is not computed again ([`wire::parse_opened`]).
    pub fn handle_opened(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) {
        self.handle_parsed(now, from, datagram, wire::parse_opened(datagram));
    }

    fn handle_parsed(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        datagram: &[u8],
        parsed: Result<Datagram<'_>, wire::ParseError>,
    ) {
        self.stats.datagrams += 1;
        self.stats.bytes += datagram.len() as u64;
        match parsed {
            Ok(Datagram::Data(h, payload)) => {
                if self.peers.contains_key(&(h.session, from)) {
                    self.on_data(now, from, &h, payload);
                } else {
                    // Not validated: no state, a token (no more bytes than arrived).
                    self.stats.unvalidated += 1;
                    self.hold_early(now, (h.session, from), datagram);
                    self.challenge(now, from, h.session, datagram.len(), false);
                }
            }
            Ok(Datagram::Hello(h)) => self.on_hello(now, from, &h),
            Ok(Datagram::Close(session)) => {
                // Only from the session's own address: a CLOSE is not worth a migration.
                if self.peers.contains_key(&(session, from)) {
                    self.end_session((session, from), SessionEnd::Closed, now);
                }
            }
            Ok(Datagram::Ping(session, value)) => {
                // Only for a session served here (a refused or unknown one hears nothing: its
                // DATA draws CHALLENGEs); no larger than the PING, nothing kept.
                if !self.peers.contains_key(&(session, from)) {
                    self.stats.unvalidated += 1;
                } else if self.replies.len() < self.config.max_queued_acks {
                    self.replies.push_back((from, Reply::Pong(session, value)));
                    self.stats.pings_answered += 1;
                } else {
                    self.stats.acks_dropped += 1;
                }
            }
            Ok(
                Datagram::Ack(_) | Datagram::Nack(_) | Datagram::Pong(..) | Datagram::Challenge(_),
            ) => self.stats.unexpected_type += 1,
            Err(e) => self.count_parse_error(e),
        }
        self.arm_sweep(now);
    }

    fn count_parse_error(&mut self, e: ParseError) {
        let s = &mut self.stats;
        match e {
            ParseError::Truncated => s.truncated += 1,
            ParseError::BadMagic => s.bad_magic += 1,
            ParseError::UnsupportedVersion(_) => s.bad_version += 1,
            ParseError::UnknownType(_) => s.unknown_type += 1,
            ParseError::BadChecksum => s.bad_checksum += 1,
            ParseError::BadHeader(_) => s.bad_header += 1,
        }
    }

    fn on_data(&mut self, now: Timestamp, from: SocketAddr, h: &DataHeader, payload: &[u8]) {
        if h.frame_len > self.config.max_frame_len || h.count > self.config.max_chunks_per_frame {
            self.stats.over_frame_limit += 1;
            return;
        }
        let Some(layout) = ChunkLayout::from_header(h.frame_len, h.count) else {
            self.stats.bad_header += 1;
            return;
        };
        let confirm = self.config.confirm_deliveries;
        let at_addr = self.addr_footprint.get(&from).copied().unwrap_or(0);
        let room = self.room_for(at_addr);
        let Some(peer) = self.peers.get_mut(&(h.session, from)) else {
            return;
        };
        if peer.budget.as_mut().is_some_and(|b| !b.try_take(now, 1)) {
            self.stats.over_rate += 1;
            return;
        }
        peer.last_seen = now;
        peer.reply_credit += (wire::DATA_OVERHEAD + payload.len()) as u64;
        if !peer.streams.contains_key(&h.stream) {
            if peer.streams.len() >= self.config.max_streams_per_peer {
                self.stats.over_streams += 1;
                return;
            }
            peer.streams
                .insert(h.stream, StreamReceiver::new(h.flags, h.floor, confirm));
        }
        let Some(stream) = peer.streams.get_mut(&h.stream) else {
            return;
        };
        let admission = Admission {
            available_bytes: room,
            max_frames_in_flight: self.config.max_frames_in_flight,
            nack_delay: self.config.nack_delay,
            bodies: &self.bodies,
        };
        let before = stream.footprint();
        let forgotten = stream.verdicts_forgotten();
        let mut out = std::mem::take(&mut self.scratch);
        let outcome = stream.on_chunk(h, layout, payload, now, &admission, &mut out);
        let after = stream.footprint();
        self.stats.verdicts_forgotten += stream.verdicts_forgotten() - forgotten;
        self.fine_timer |= stream.wants_fine_timer();
        peer.footprint = peer.footprint + after - before;
        self.footprint = self.footprint + after - before;
        self.charge_addr(from, at_addr + after - before);
        let s = &mut self.stats;
        match outcome {
            ChunkOutcome::Added | ChunkOutcome::Completed => {}
            ChunkOutcome::UnneededParity => s.parity_unneeded += 1,
            ChunkOutcome::Recovered(n) => {
                s.frames_recovered_by_fec += 1;
                s.chunks_recovered_by_fec += u64::from(n);
            }
            ChunkOutcome::Duplicate => s.duplicate_chunks += 1,
            ChunkOutcome::Stale => s.stale_chunks += 1,
            ChunkOutcome::Conflict => s.conflicting_chunks += 1,
            ChunkOutcome::OverBudget => s.over_budget += 1,
            ChunkOutcome::OverFramesInFlight => s.over_frames_in_flight += 1,
        }
        self.emit(from, h.session, h.stream, &mut out);
        self.scratch = out;
    }

    /// How often timers are checked: finely while reliable frames may need NACKs, coarsely
    /// otherwise.
    fn tick(&self) -> Duration {
        let tick = if self.fine_timer {
            self.config.nack_delay / 2
        } else {
            self.config.frame_timeout / 16
        };
        tick.clamp(Duration::from_millis(1), Duration::from_millis(50))
    }

    fn arm_sweep(&mut self, now: Timestamp) {
        if self.peers.is_empty() {
            return;
        }
        let due = now + self.tick();
        self.next_sweep = Some(self.next_sweep.map_or(due, |t| t.min(due)));
    }

    fn timers(&self) -> Timers {
        Timers {
            frame_timeout: self.config.frame_timeout,
            reliable_timeout: self.config.peer_idle_timeout,
            nack_delay: self.config.nack_delay,
        }
    }

    /// When [`handle_timeout`](Receiver::handle_timeout) should next be called; `None` while
    /// no sender is being served. Call it again after every input.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.next_sweep
    }

    /// Expires frames and gaps that ran out of time and forgets idle senders. Harmless to call
    /// early or often.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.next_sweep.is_none_or(|t| now < t) {
            return;
        }
        let idle: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| now.saturating_since(p.last_seen) >= self.config.peer_idle_timeout)
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            self.end_session(key, SessionEnd::Idle, now);
        }
        let retention = self.config.remember_sessions_for;
        self.remembered
            .retain(|_, r| now.saturating_since(r.at) < retention);
        let timers = self.timers();
        self.fine_timer = false;
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for (session, addr) in keys {
            let Some(peer) = self.peers.get_mut(&(session, addr)) else {
                continue;
            };
            let mut pending = Vec::new();
            for (id, stream) in peer.streams.iter_mut() {
                if stream.is_idle() {
                    continue;
                }
                let before = stream.footprint();
                let mut out = Vec::new();
                stream.on_timeout(now, &timers, &mut out);
                self.fine_timer |= stream.wants_fine_timer();
                let freed = before - stream.footprint();
                peer.footprint -= freed;
                self.footprint -= freed;
                if let Some(b) = self.addr_footprint.get_mut(&addr) {
                    *b -= freed;
                }
                if !out.is_empty() {
                    pending.push((*id, out));
                }
            }
            for (id, mut out) in pending {
                self.emit(addr, session, id, &mut out);
            }
        }
        self.next_sweep = None;
        self.arm_sweep(now);
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ReceiverEvent> {
        self.events.pop_front()
    }
}

/// Splits a completed body into metadata and payload, without copying the payload.
fn split_frame(
    bodies: &BodyPool,
    peer: SocketAddr,
    session: SessionId,
    stream: StreamId,
    frame: FrameId,
    done: Completed,
) -> Option<ReceivedFrame> {
    let body = bodies.wrap(done.body);
    let (metadata, payload) = if done.flags.contains(DataFlags::METADATA) {
        let len_bytes: [u8; 4] = body.get(..4)?.try_into().ok()?;
        let meta_len = u32::from_be_bytes(len_bytes) as usize;
        let meta_end = 4usize.checked_add(meta_len).filter(|&e| e <= body.len())?;
        (Some(body.slice(4..meta_end)), body.slice(meta_end..))
    } else {
        (None, body)
    };
    Some(ReceivedFrame {
        peer,
        session,
        stream,
        frame,
        kind: if done.flags.contains(DataFlags::MESSAGE) {
            PayloadKind::Message
        } else {
            PayloadKind::Frame
        },
        metadata,
        payload,
        first_chunk_at: done.first_seen,
        completed_at: done.completed_at,
    })
}
