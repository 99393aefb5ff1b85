//! The receiving endpoint: many senders on one socket, each demultiplexed by session, address
//! and stream, with every remotely growable structure bounded. An address gets no state until
//! it has shown it receives (a token from a CHALLENGE sent back in a HELLO, §8); a session that
//! moves to a new, validated address keeps its state.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::chunking::ChunkLayout;
use crate::handshake::{
    AddressValidator, ChallengeBudget, CHALLENGES_PER_SEC, DATA_CHALLENGES_PER_SEC,
};
use crate::ids::{FrameId, SessionId, StreamId};
use crate::pacing::Pacer;
use crate::stream_rx::{Admission, ChunkOutcome, Completed, StreamOutput, StreamReceiver, Timers};
use crate::time::Timestamp;
use crate::wire::{
    self, Ack, Challenge, ChunkRange, DataFlags, DataHeader, Datagram, Hello, ParseError, ACK_LEN,
    CHALLENGE_LEN, MAX_NACK_RANGES, NACK_HEADER_LEN, TRAILER_LEN,
};

/// The largest datagram a receiver sends (a NACK with every range): the smallest buffer
/// [`Receiver::poll_transmit`] accepts.
pub const MAX_REPLY_LEN: usize = NACK_HEADER_LEN + 8 * MAX_NACK_RANGES + TRAILER_LEN;

pub use crate::stream_rx::LossReason;

/// Limits and timers of a [`Receiver`]. Every limit has a counter in [`ReceiverStats`] that
/// says how often it was hit.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Largest frame body accepted, in bytes. Larger declarations are dropped before allocation.
    pub max_frame_len: u64,
    /// Largest chunk count accepted for one frame.
    pub max_chunks_per_frame: u32,
    /// Senders (addresses) served at once; datagrams from further addresses are dropped.
    pub max_peers: usize,
    /// Streams per sender.
    pub max_streams_per_peer: usize,
    /// Frames per stream that may be in reassembly or waiting for in-order delivery.
    pub max_frames_in_flight: usize,
    /// Bytes buffered for one sender address (all its sessions together).
    pub max_peer_bytes: u64,
    /// Bytes buffered for all senders together.
    pub max_total_bytes: u64,
    /// A frame that gains no chunk for this long is expired and reported lost.
    pub frame_timeout: Duration,
    /// A sender silent for this long is forgotten; frames of reliable streams expire only
    /// after this long without progress.
    pub peer_idle_timeout: Duration,
    /// Reliable streams: how long a frame may stall before its missing chunks are NACKed;
    /// doubled after each NACK that brings nothing, up to 64 times.
    pub nack_delay: Duration,
    /// ACKs and NACKs queued but not yet collected by [`Receiver::poll_transmit`].
    pub max_queued_acks: usize,
    /// Datagrams per second one sender may send (a token bucket holding a tenth of a second,
    /// at least 1,024); the excess is dropped. `None`: no limit.
    pub max_peer_datagrams_per_sec: Option<u32>,
    /// Whether a delivered frame waits for [`Receiver::confirm`] before it is acknowledged
    /// (an ACK then means the application has it, for example saved to disk). `false`: it is
    /// acknowledged as it is delivered.
    pub confirm_deliveries: bool,
    /// Sessions whose verdicts are remembered after they went idle or closed, so one that comes
    /// back is answered and nothing is delivered twice.
    pub max_remembered_sessions: usize,
    /// How long such a session is remembered.
    pub remember_sessions_for: Duration,
    /// The secret address-validation tokens are computed with. The driver sets 32 random bytes
    /// when it starts; the default (zeros) is for tests and simulations only: anyone who knows
    /// the secret can forge tokens.
    pub address_secret: Secret,
}

/// 32 secret bytes, never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub [u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            max_frame_len: 64 << 20,
            max_chunks_per_frame: 1 << 18,
            max_peers: 64,
            max_streams_per_peer: 16,
            max_frames_in_flight: 64,
            max_peer_bytes: 72 << 20,
            max_total_bytes: 96 << 20,
            frame_timeout: Duration::from_secs(2),
            peer_idle_timeout: Duration::from_secs(10),
            nack_delay: Duration::from_millis(5),
            max_queued_acks: 4096,
            max_peer_datagrams_per_sec: Some(4_000_000),
            confirm_deliveries: false,
            max_remembered_sessions: 256,
            remember_sessions_for: Duration::from_secs(120),
            address_secret: Secret::default(),
        }
    }
}

/// A struct of `u64` counters and `counters()`, which lists them all by name, so a report
/// (the stats JSON line) is derived from the struct instead of listing fields by hand.
macro_rules! counters {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: u64,)* }) => {
        $(#[$m])*
        pub struct $name { $($(#[$fm])* pub $f: u64,)* }

        impl $name {
            /// Every counter with its name, in declaration order.
            pub fn counters(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($f), self.$f),)*]
            }
        }
    };
}

counters! {
/// Counters of everything the receiver saw, accepted and refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverStats {
    /// Datagrams handed to [`Receiver::handle`].
    pub datagrams: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames delivered (images and other binary frames).
    pub frames_delivered: u64,
    /// JSON messages delivered.
    pub messages_delivered: u64,
    /// Payload bytes delivered (frames and messages, without metadata).
    pub payload_bytes_delivered: u64,
    /// Frames that timed out incomplete.
    pub frames_expired: u64,
    /// Frames of ordered streams given up on without any chunk seen.
    pub frames_never_seen: u64,
    /// Frames refused for breaking a limit.
    pub frames_rejected: u64,
    /// Frames whose metadata prefix was malformed.
    pub frames_malformed: u64,
    /// Frames in flight when their session ended.
    pub frames_abandoned: u64,
    /// Live streams: frames dropped because a newer frame was delivered first.
    pub frames_superseded: u64,
    /// Frames completed by rebuilding lost chunks from parity (FEC).
    pub frames_recovered_by_fec: u64,
    /// Data chunks rebuilt from parity.
    pub chunks_recovered_by_fec: u64,
    /// Parity chunks that arrived after their frame was already whole.
    pub parity_unneeded: u64,
    /// Datagrams too short for their type.
    pub truncated: u64,
    /// Datagrams not starting with the magic.
    pub bad_magic: u64,
    /// Datagrams of another protocol version.
    pub bad_version: u64,
    /// Datagrams of an unknown type.
    pub unknown_type: u64,
    /// Datagrams whose CRC32C did not match.
    pub bad_checksum: u64,
    /// Datagrams whose header fields contradict each other.
    pub bad_header: u64,
    /// Datagrams of a type a receiver does not take (ACK).
    pub unexpected_type: u64,
    /// Chunks that had already arrived.
    pub duplicate_chunks: u64,
    /// Chunks of frames already finished and forgotten.
    pub stale_chunks: u64,
    /// Chunks disagreeing with earlier chunks of the same frame id.
    pub conflicting_chunks: u64,
    /// Chunks whose frame declared more than `max_frame_len` or `max_chunks_per_frame`.
    pub over_frame_limit: u64,
    /// Chunks dropped because a new frame did not fit the memory budget.
    pub over_budget: u64,
    /// Chunks dropped because the stream had `max_frames_in_flight` frames already.
    pub over_frames_in_flight: u64,
    /// Sessions refused because `max_peers` senders were already served, none of them quiet.
    pub over_peers: u64,
    /// HELLOs received.
    pub hellos: u64,
    /// CHALLENGEs sent (to HELLOs without a valid token, and to DATA from addresses not
    /// validated).
    pub challenges_sent: u64,
    /// CHALLENGEs not sent because their budget was spent (`handshake::CHALLENGES_PER_SEC`
    /// for HELLOs, `DATA_CHALLENGES_PER_SEC` for DATA).
    pub challenges_limited: u64,
    /// HELLOs whose token was not valid (forged, for another address, or expired).
    pub tokens_invalid: u64,
    /// DATA from an address and session not validated (answered with a CHALLENGE; held at
    /// most [`EARLY_DATA_HOLD`] in a shared [`EARLY_DATA_BYTES`] in case its HELLO follows).
    pub unvalidated: u64,
    /// Such DATA handed to its session when the HELLO came after it (overtaken on the way).
    pub early_data_used: u64,
    /// Datagrams dropped because the sender had `max_streams_per_peer` streams already.
    pub over_streams: u64,
    /// Datagrams dropped because the sender exceeded `max_peer_datagrams_per_sec`.
    pub over_rate: u64,
    /// Acknowledgements handed out by `poll_transmit`.
    pub acks_sent: u64,
    /// Acknowledgements dropped because `max_queued_acks` were waiting.
    pub acks_dropped: u64,
    /// NACKs handed out by `poll_transmit`.
    pub nacks_sent: u64,
    /// Chunks those NACKs asked for again: the loss the receiver saw (with repeats).
    pub chunks_nacked: u64,
    /// Replies not sent because the peer had not sent as many bytes as they would take
    /// (anti-amplification).
    pub replies_limited: u64,
    /// Sessions that started.
    pub sessions_started: u64,
    /// Sessions that ended (closed or idle).
    pub sessions_ended: u64,
    /// PINGs answered (a sender that heard nothing for a while asking whether we are here).
    pub pings_answered: u64,
    /// Sessions that came back after going idle, with their verdicts remembered.
    pub sessions_resumed: u64,
    /// Sessions that moved to another, validated address (a NAT rebinding, a new network).
    pub sessions_moved: u64,
    /// Quiet sessions ended to make room for a new sender (`max_peers` reached).
    pub sessions_evicted: u64,
    /// Validated HELLOs naming a session active at another address (not moved: see
    /// [`MIGRATION_QUIET`]).
    pub moves_refused: u64,
    /// Frames the sender gave up on before they completed.
    pub frames_given_up: u64,
    /// Delivered frames the application could not take (answered FAILED).
    pub frames_not_stored: u64,
    /// Chunks lost on the way in frames decided so far, each counted once however often it
    /// was asked for.
    pub chunks_lost: u64,
    /// Verdicts forgotten for lack of room (their frames, if sent again, are not answered).
    pub verdicts_forgotten: u64,
}
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// An image or any other binary frame.
    Frame,
    /// A JSON message (UTF-8 bytes; the core does not parse them).
    Message,
}

/// How long a session's address must have been silent before a validated HELLO of the same
/// session from another address moves it there (a NAT rebinding leaves the old address
/// silent). Until then the move is refused: an address that merely names an active session's
/// id cannot take it over, even one that can receive (the sender's HELLOs, repeated while its
/// DATA draws CHALLENGEs, move it once the old address has gone quiet).
pub const MIGRATION_QUIET: Duration = Duration::from_millis(250);

/// Bytes of DATA from addresses not yet validated that a receiver holds, all together: the
/// first chunks of a session that overtook its HELLO on the way (reordering) are handed to it
/// when the HELLO arrives instead of being lost. A flood only pushes older ones out.
pub const EARLY_DATA_BYTES: usize = 256 << 10;

/// How long such DATA is held.
pub const EARLY_DATA_HOLD: Duration = Duration::from_millis(100);

/// How long a session must have been silent before a new sender may take its place when
/// `max_peers` are served: a few cheap datagrams now and then cannot hold every place.
pub const EVICT_QUIET: Duration = Duration::from_secs(1);

/// A sender as the receiver tells it apart: its session and its address.
type PeerKey = (SessionId, SocketAddr);

/// Names one delivered frame, for [`Receiver::confirm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    /// The sender's address when the frame was delivered.
    pub peer: SocketAddr,
    /// The sender's session.
    pub session: SessionId,
    /// The stream.
    pub stream: StreamId,
    /// The frame id.
    pub frame: FrameId,
}

/// A frame delivered whole.
#[derive(Debug, Clone)]
pub struct ReceivedFrame {
    /// The sender's address.
    pub peer: SocketAddr,
    /// The sender's session.
    pub session: SessionId,
    /// The stream.
    pub stream: StreamId,
    /// The frame id.
    pub frame: FrameId,
    /// Frame or message.
    pub kind: PayloadKind,
    /// The frame's metadata bytes (JSON by convention), if it carried any.
    pub metadata: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
    /// When its first chunk arrived.
    pub first_chunk_at: Timestamp,
    /// When its last chunk arrived.
    pub completed_at: Timestamp,
}

impl ReceivedFrame {
    /// What [`Receiver::confirm`] takes for this frame.
    pub fn key(&self) -> DeliveryKey {
        DeliveryKey {
            peer: self.peer,
            session: self.session,
            stream: self.stream,
            frame: self.frame,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The sender sent CLOSE.
    Closed,
    /// Ended to make room for a new sender while `max_peers` were served, after being silent
    /// for [`EVICT_QUIET`] (remembered: it resumes if it comes back).
    Evicted,
    /// Nothing arrived for `peer_idle_timeout`.
    Idle,
}

/// Something the application should know. Drain with [`Receiver::poll_event`] after every input.
#[derive(Debug, Clone)]
pub enum ReceiverEvent {
    /// A sender's first valid datagram arrived.
    SessionStarted {
        /// Its address.
        peer: SocketAddr,
        /// Its session.
        session: SessionId,
    },
    /// A frame or message arrived whole.
    Frame(ReceivedFrame),
    /// Frames `first .. first + count` of a stream will never be delivered.
    Lost {
        /// The sender.
        peer: SocketAddr,
        /// Its session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// First lost frame.
        first: FrameId,
        /// Number of consecutive lost frames.
        count: u64,
        /// Why.
        reason: LossReason,
    },
    /// A sender's session ended.
    SessionEnded {
        /// Its address.
        peer: SocketAddr,
        /// Its session.
        session: SessionId,
        /// Why.
        reason: SessionEnd,
    },
}

#[derive(Debug)]
struct Peer {
    streams: BTreeMap<StreamId, StreamReceiver>,
    footprint: u64,
    last_seen: Timestamp,
    /// Bytes received from this peer minus bytes queued to it: replies may not exceed it.
    reply_credit: u64,
    /// Datagrams this peer may still send (see `max_peer_datagrams_per_sec`).
    budget: Option<Pacer>,
}

/// What is kept of a session that went idle or closed.
#[derive(Debug)]
struct Remembered {
    at: Timestamp,
    /// Closed by the sender: its late datagrams are dropped rather than resuming it.
    closed: bool,
    streams: BTreeMap<StreamId, StreamReceiver>,
}

/// A datagram waiting for [`Receiver::poll_transmit`].
#[derive(Debug)]
enum Reply {
    Ack(Ack),
    Pong(SessionId, u64),
    Challenge(Challenge),
    Nack {
        session: SessionId,
        stream: StreamId,
        frame: FrameId,
        chunks_received: u32,
        ranges: Vec<ChunkRange>,
    },
}

impl Reply {
    fn len(&self) -> usize {
        match self {
            Reply::Ack(_) => ACK_LEN,
            Reply::Pong(..) => wire::PING_LEN,
            Reply::Challenge(_) => CHALLENGE_LEN,
            Reply::Nack { ranges, .. } => NACK_HEADER_LEN + 8 * ranges.len() + TRAILER_LEN,
        }
    }
}

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
///     while let Some((_dst, len)) = rx.poll_transmit(&mut buf) {
///         tx.handle(now, &buf[..len]);
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

    /// Whether `token` is one this receiver issued to `session` at `from` and still takes
    /// (for a driver that derives session keys from the token of a HELLO, §8.3).
    pub fn check_token(
        &self,
        now: Timestamp,
        from: SocketAddr,
        session: SessionId,
        token: &wire::Token,
    ) -> bool {
        self.validator.check(now, from, session, token)
    }

    /// Takes one datagram that arrived from `from` at `now`.
    pub fn handle(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams += 1;
        self.stats.bytes += datagram.len() as u64;
        match wire::parse(datagram) {
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

    /// A HELLO: with a valid token for this address, the session starts (or resumes, or moves
    /// here); otherwise it is answered with a token. A probe is answered in any case: the
    /// CHALLENGE carrying its length confirms the path carries datagrams that large.
    fn on_hello(&mut self, now: Timestamp, from: SocketAddr, h: &Hello) {
        self.stats.hellos += 1;
        let valid = h
            .token
            .is_some_and(|t| self.validator.check(now, from, h.session, &t));
        if h.token.is_some() && !valid {
            self.stats.tokens_invalid += 1;
        }
        if valid && self.admit_session(now, from, h.session) {
            self.use_early(now, (h.session, from));
        }
        if !valid || h.probe {
            self.challenge(now, from, h.session, h.len, true);
        }
    }

    /// Holds DATA that arrived before its session's HELLO, pushing out what is too old or
    /// does not fit.
    fn hold_early(&mut self, now: Timestamp, key: PeerKey, datagram: &[u8]) {
        if datagram.len() > EARLY_DATA_BYTES / 4 {
            return;
        }
        while self.early_bytes + datagram.len() > EARLY_DATA_BYTES
            || self
                .early
                .front()
                .is_some_and(|(at, ..)| now.saturating_since(*at) >= EARLY_DATA_HOLD)
        {
            let Some((_, _, d)) = self.early.pop_front() else {
                break;
            };
            self.early_bytes -= d.len();
        }
        self.early_bytes += datagram.len();
        self.early.push_back((now, key, datagram.to_vec()));
    }

    /// Hands the DATA held for `key`, just validated, to its session.
    fn use_early(&mut self, now: Timestamp, key: PeerKey) {
        if !self.early.iter().any(|(_, k, _)| *k == key) {
            return;
        }
        let (mine, rest): (VecDeque<_>, VecDeque<_>) =
            self.early.drain(..).partition(|(_, k, _)| *k == key);
        self.early = rest;
        for (at, _, d) in mine {
            self.early_bytes -= d.len();
            if now.saturating_since(at) >= EARLY_DATA_HOLD {
                continue;
            }
            if let Ok(Datagram::Data(h, payload)) = wire::parse(&d) {
                self.stats.early_data_used += 1;
                self.on_data(now, key.1, &h, payload);
            }
        }
    }

    /// Queues a CHALLENGE for `session` at `from`, answering a datagram (a HELLO if `hello`)
    /// of `len` bytes: only one at least as long (no amplification), and within the budget.
    fn challenge(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        session: SessionId,
        len: usize,
        hello: bool,
    ) {
        if len < CHALLENGE_LEN {
            return;
        }
        let budget = if hello {
            &mut self.challenges
        } else {
            &mut self.data_challenges
        };
        if self.replies.len() >= self.config.max_queued_acks || !budget.take(now) {
            self.stats.challenges_limited += 1;
            return;
        }
        let token = self.validator.issue(now, from, session);
        let challenge = Challenge {
            session,
            answered_len: u32::try_from(len).unwrap_or(u32::MAX),
            token,
        };
        self.replies.push_back((from, Reply::Challenge(challenge)));
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

    /// Finds, resumes, moves or creates the session `session` for `from`, an address that
    /// has just been validated; `false` when it is refused (a closed session, or no room).
    fn admit_session(&mut self, now: Timestamp, from: SocketAddr, session: SessionId) -> bool {
        let key = (session, from);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.last_seen = now;
            return true;
        }
        if let Some(old) = self.locate(session, from) {
            if self
                .peers
                .get(&old)
                .is_some_and(|p| now.saturating_since(p.last_seen) < MIGRATION_QUIET)
            {
                self.stats.moves_refused += 1;
                return false;
            }
            // The same session at a new address that has shown it receives (NAT rebinding,
            // another network), its old address quiet: keep its state, answer at the new
            // address, and let that address earn its own reply credit.
            if let Some(mut peer) = self.peers.remove(&old) {
                peer.last_seen = now;
                peer.reply_credit = 0;
                let moved = peer.footprint;
                let left = self.addr_footprint.get(&old.1).copied().unwrap_or(0) - moved;
                self.charge_addr(old.1, left);
                let here = self.addr_footprint.get(&from).copied().unwrap_or(0);
                self.charge_addr(from, here + moved);
                self.peers.insert(key, peer);
                self.stats.sessions_moved += 1;
                return true;
            }
        }
        let retention = self.config.remember_sessions_for;
        let remembered = self
            .remembered
            .get(&session)
            .filter(|r| now.saturating_since(r.at) < retention);
        if remembered.is_some_and(|r| r.closed) {
            // A late datagram of a session that is over must not start it again (a frame it
            // completes would be delivered twice).
            self.stats.stale_chunks += 1;
            return false;
        }
        if self.peers.len() >= self.config.max_peers && !self.evict_quietest(now) {
            self.stats.over_peers += 1;
            return false;
        }
        let streams = match self.remembered.remove(&session) {
            Some(r) if now.saturating_since(r.at) < retention => {
                self.stats.sessions_resumed += 1;
                r.streams
            }
            _ => BTreeMap::new(),
        };
        self.peers.insert(
            key,
            Peer {
                streams,
                footprint: 0,
                last_seen: now,
                reply_credit: 0,
                budget: self.config.max_peer_datagrams_per_sec.map(|rate| {
                    let rate = f64::from(rate);
                    Pacer::new(rate, (rate / 10.0).max(1024.0))
                }),
            },
        );
        self.stats.sessions_started += 1;
        self.events.push_back(ReceiverEvent::SessionStarted {
            peer: from,
            session,
        });
        true
    }

    /// Bytes an address that buffers `at_addr` may still take: its own budget and what is
    /// left of the total; and once three quarters of the total are in use, no more than an
    /// equal share of the total among the addresses buffering (so a newcomer always finds
    /// room: the others cannot grow past their shares).
    fn room_for(&self, at_addr: u64) -> u64 {
        let total = self.config.max_total_bytes;
        let mut room = (self.config.max_peer_bytes.saturating_sub(at_addr))
            .min(total.saturating_sub(self.footprint));
        if self.footprint >= total / 4 * 3 {
            let active = self.addr_footprint.len() as u64 + u64::from(at_addr == 0);
            let share = total / active.max(1);
            room = room.min(share.saturating_sub(at_addr));
        }
        room
    }

    /// Records that `addr` now buffers `bytes` (forgetting addresses that buffer nothing).
    fn charge_addr(&mut self, addr: SocketAddr, bytes: u64) {
        if bytes == 0 {
            self.addr_footprint.remove(&addr);
        } else {
            self.addr_footprint.insert(addr, bytes);
        }
    }

    /// Makes room for a new sender by ending the session silent the longest, if it has been
    /// silent for at least [`EVICT_QUIET`]: an active session is never evicted, and an evicted
    /// one is remembered like an idle one, so it resumes if it comes back.
    fn evict_quietest(&mut self, now: Timestamp) -> bool {
        let quietest = self
            .peers
            .iter()
            .min_by_key(|(_, p)| p.last_seen)
            .filter(|(_, p)| now.saturating_since(p.last_seen) >= EVICT_QUIET)
            .map(|(k, _)| *k);
        let Some(key) = quietest else {
            return false;
        };
        self.end_session(key, SessionEnd::Evicted, now);
        self.stats.sessions_evicted += 1;
        true
    }

    /// Where `session` is served now: at `addr`, or at the one address it moved to.
    fn locate(&self, session: SessionId, addr: SocketAddr) -> Option<PeerKey> {
        if self.peers.contains_key(&(session, addr)) {
            return Some((session, addr));
        }
        let lowest = SocketAddr::from(([0, 0, 0, 0], 0));
        self.peers
            .range((session, lowest)..)
            .take_while(|((s, _), _)| *s == session)
            .map(|(k, _)| *k)
            .next()
    }

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
    fn emit(
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
                } => {
                    let reply = Reply::Nack {
                        session,
                        stream,
                        frame,
                        chunks_received,
                        ranges,
                    };
                    self.queue_reply((session, peer), reply);
                }
                StreamOutput::Deliver(frame, done) => {
                    match split_frame(peer, session, stream, frame, done) {
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
    fn queue_reply(&mut self, key: PeerKey, reply: Reply) {
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

    /// Ends a session: frames in flight are reported lost, and its streams' verdicts are
    /// remembered (compacted) for `remember_sessions_for`, the oldest memory going first.
    fn end_session(&mut self, key: PeerKey, reason: SessionEnd, now: Timestamp) {
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        let (session, addr) = key;
        self.footprint -= peer.footprint;
        let at_addr = self.addr_footprint.get(&addr).copied().unwrap_or(0);
        self.charge_addr(addr, at_addr - peer.footprint);
        let mut out = std::mem::take(&mut self.scratch);
        for (id, stream) in peer.streams.iter_mut() {
            stream.abandon(&mut out);
            stream.compact_for_idle();
            self.emit(addr, session, *id, &mut out);
        }
        self.scratch = out;
        self.stats.sessions_ended += 1;
        self.events.push_back(ReceiverEvent::SessionEnded {
            peer: addr,
            session,
            reason,
        });
        if self.config.max_remembered_sessions == 0 {
            return;
        }
        while self.remembered.len() >= self.config.max_remembered_sessions {
            let oldest = self
                .remembered
                .iter()
                .min_by_key(|(_, r)| r.at)
                .map(|(&s, _)| s);
            match oldest {
                Some(s) => self.remembered.remove(&s),
                None => break,
            };
        }
        self.remembered.insert(
            session,
            Remembered {
                at: now,
                closed: reason == SessionEnd::Closed,
                streams: peer.streams,
            },
        );
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

    /// Writes the next datagram to send into `buf` (at least [`MAX_REPLY_LEN`] bytes) and
    /// returns its destination and length; `None` when nothing is waiting.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
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
            } => {
                self.stats.nacks_sent += 1;
                self.stats.chunks_nacked += ranges.iter().map(|r| u64::from(r.count)).sum::<u64>();
                wire::emit_nack(buf, session, stream, frame, chunks_received, &ranges)
            }
        };
        Some((dst, len))
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ReceiverEvent> {
        self.events.pop_front()
    }
}

/// Splits a completed body into metadata and payload, without copying the payload.
fn split_frame(
    peer: SocketAddr,
    session: SessionId,
    stream: StreamId,
    frame: FrameId,
    done: Completed,
) -> Option<ReceivedFrame> {
    let body = Bytes::from(done.body);
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
