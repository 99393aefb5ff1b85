//! What a program sets and gets from the receiver: settings, figures, frames, events.

use super::*;

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
    /// NACKs handed out by `poll_transmit` that ask for chunks again.
    pub nacks_sent: u64,
    /// Progress reports handed out by `poll_transmit` (NACKs whose one range lies past the
    /// frame: they ask for nothing, PROTOCOL 2.6).
    pub progress_reports_sent: u64,
    /// Progress reports that replaced an older one for the same frame still queued (read in
    /// the same batch), so never sent themselves.
    pub progress_reports_coalesced: u64,
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
