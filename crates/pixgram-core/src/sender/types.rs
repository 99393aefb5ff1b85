//! What a program gives the sender and gets back: settings, frames, errors, events, figures.

use super::*;

/// Most chunks one NACK makes the sender resend, so a 44-byte datagram (forged, or from a
/// confused receiver) cannot make it send megabytes: 256 chunks, about 300 KB at the default
/// datagram size. A receiver missing more NACKs again as retransmissions arrive.
pub const MAX_RESENDS_PER_NACK: u64 = 256;

/// Forward error correction for live frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FecPolicy {
    /// No parity chunks.
    Off,
    /// Parity chunks per data chunk (0.1 = 10% overhead), at least one, at most 255.
    Ratio(f32),
    /// Overhead follows the loss and burst length the receiver reports in its ACKs.
    Auto,
}

/// Settings of a [`Sender`].
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Bytes per datagram on the wire, headers included, to start with (and to keep, unless
    /// `max_datagram_size` is larger). 1200 is safe on any path; loopback carries up to
    /// [`wire::MAX_DATAGRAM_SIZE`].
    pub datagram_size: usize,
    /// Path MTU discovery (docs/PROTOCOL.md §8.4): probe sizes up to this one once the first
    /// exchange is done, and use the largest the receiver confirms for new frames. `None`
    /// (the default): no probing, every datagram is `datagram_size`.
    pub max_datagram_size: Option<usize>,
    /// Frames per stream that may be unacknowledged at once. 1 is stop-and-wait.
    pub window: usize,
    /// How long to wait for a frame's verdict after its last chunk was sent.
    pub frame_timeout: Duration,
    /// With frames in flight and nothing heard from the receiver for this long, it is gone.
    pub peer_timeout: Duration,
    /// Largest frame body this sender accepts.
    pub max_frame_len: u64,
    /// Streams this sender may open.
    pub max_streams: usize,
    /// Sending rate before any feedback, bytes per second (default 5 MB/s, 40 Mbit/s: slow
    /// start doubles from there; a higher start overflows a slow bottleneck's queue for a
    /// whole round trip before the first loss report can arrive).
    pub initial_rate: f64,
    /// Highest sending rate, bytes per second (`--rate`); `None` lets the controller find it.
    pub max_rate: Option<f64>,
    /// Lowest retransmission timeout (reliable streams).
    pub min_rto: Duration,
    /// Highest retransmission timeout, after back-off.
    pub max_rto: Duration,
    /// The driver seals every datagram with a key (docs/PROTOCOL.md §7): DATA goes out with
    /// its inner CRC32C field zero, since the AEAD tag covers every byte (a CRC over a 64 KB
    /// datagram is a tenth of a keyed sender's CPU). Never set it for unsealed datagrams:
    /// receivers refuse them.
    pub sealed: bool,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            datagram_size: 1200,
            max_datagram_size: None,
            window: 16,
            frame_timeout: Duration::from_secs(3),
            peer_timeout: Duration::from_secs(5),
            max_frame_len: 64 << 20,
            max_streams: 16,
            initial_rate: 5e6,
            max_rate: None,
            min_rto: Duration::from_millis(20),
            max_rto: Duration::from_secs(1),
            sealed: false,
        }
    }
}

/// A frame or message to send.
#[derive(Debug, Clone)]
pub struct OutgoingFrame {
    /// Stream to send it on.
    pub stream: StreamId,
    /// Frame or JSON message.
    pub kind: PayloadKind,
    /// Whether the receiver must deliver this stream in order (one setting per stream).
    pub ordered: bool,
    /// Whether lost chunks are retransmitted until the frame is whole (one setting per stream).
    pub reliable: bool,
    /// Live frames: how long after [`Sender::send`] the frame is still worth delivering. A
    /// stream of live frames is "latest wins": a full window drops its oldest frame.
    pub deadline: Option<Duration>,
    /// Parity chunks (live frames only).
    pub fec: FecPolicy,
    /// Metadata delivered with the frame (JSON by convention).
    pub metadata: Option<Bytes>,
    /// The bytes to deliver.
    pub payload: Bytes,
}

impl OutgoingFrame {
    /// An unordered, unreliable binary frame (an image) on `stream`: lost chunks lose the frame.
    pub fn frame(stream: StreamId, payload: impl Into<Bytes>) -> Self {
        OutgoingFrame {
            stream,
            kind: PayloadKind::Frame,
            ordered: false,
            reliable: false,
            deadline: None,
            fec: FecPolicy::Off,
            metadata: None,
            payload: payload.into(),
        }
    }

    /// A live frame on `stream`: worthless after `deadline`, superseded by newer frames, never
    /// waited for. Retransmission (`.reliable(true)`) is used only while the deadline allows.
    pub fn live(stream: StreamId, payload: impl Into<Bytes>, deadline: Duration) -> Self {
        OutgoingFrame {
            deadline: Some(deadline.max(Duration::from_millis(1))),
            ..Self::frame(stream, payload)
        }
    }

    /// The same frame with forward error correction (live frames).
    pub fn with_fec(mut self, fec: FecPolicy) -> Self {
        self.fec = fec;
        self
    }

    /// A JSON message on `stream`, delivered reliably and in order.
    pub fn message(stream: StreamId, json: impl Into<Bytes>) -> Self {
        OutgoingFrame {
            stream,
            kind: PayloadKind::Message,
            ordered: true,
            reliable: true,
            deadline: None,
            fec: FecPolicy::Off,
            metadata: None,
            payload: json.into(),
        }
    }

    /// The same frame carrying `metadata`.
    pub fn with_metadata(mut self, metadata: impl Into<Bytes>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }

    /// The same frame, delivered in order or not.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// The same frame, with lost chunks retransmitted or not.
    pub fn reliable(mut self, reliable: bool) -> Self {
        self.reliable = reliable;
        self
    }

    pub(super) fn body_len(&self) -> u64 {
        let meta = self.metadata.as_ref().map_or(0, |m| 4 + m.len() as u64);
        meta + self.payload.len() as u64
    }
}

/// Why [`Sender::send`] refused a frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// The stream already has `window` frames in flight; send again after a verdict.
    #[error("window full: wait for an acknowledgement")]
    WindowFull,
    /// The frame is larger than `max_frame_len`.
    #[error("frame of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Opening the stream would exceed `max_streams`.
    #[error("too many streams")]
    TooManyStreams,
    /// The stream already carries frames with the other ordering or reliability.
    #[error("stream {0} is already used with another ordering or reliability")]
    OrderingMismatch(StreamId),
}

/// Why a frame was not delivered, as far as the sender knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// The receiver saw part of the frame but not all of it in time.
    Expired,
    /// The receiver refused it for a limit (size, memory, streams).
    Rejected,
    /// No verdict arrived within `frame_timeout` (unreliable streams).
    Timeout,
    /// The receiver stopped answering altogether.
    PeerGone,
    /// Live frame: its deadline passed first.
    Deadline,
    /// Live frame: dropped for a newer frame when the window was full, or by the receiver
    /// because a newer frame arrived first.
    Superseded,
    /// The receiver had the whole frame but its application could not take it (a save
    /// that failed); final.
    NotStored,
    /// The application gave up on it ([`Sender::abandon`]), e.g. on Ctrl-C.
    Abandoned,
    /// Cut for datagrams larger than the path carries any more (its path MTU shrank after
    /// discovery raised the size): the frame cannot be cut again once sent in part.
    PathShrank,
}

impl SendFailure {
    /// Whether this is the sender's own guess (no verdict from the receiver): a COMPLETE ACK
    /// may still arrive for such a frame and then turns it into a [`SenderEvent::LateAck`].
    pub fn is_guess(self) -> bool {
        matches!(
            self,
            SendFailure::Timeout
                | SendFailure::PeerGone
                | SendFailure::Deadline
                | SendFailure::Superseded
                | SendFailure::Abandoned
                | SendFailure::PathShrank
        )
    }
}

/// Something the application should know. Drain with [`Sender::poll_event`] after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderEvent {
    /// The receiver has the whole frame.
    Acked {
        /// Stream.
        stream: StreamId,
        /// Frame.
        frame: FrameId,
        /// From the last chunk sent to its acknowledgement, less the receiver's ack delay.
        rtt: Duration,
        /// From [`Sender::send`] to the acknowledgement.
        latency: Duration,
    },
    /// The frame will not be delivered.
    Lost {
        /// Stream.
        stream: StreamId,
        /// Frame.
        frame: FrameId,
        /// Why.
        reason: SendFailure,
    },
    /// Nothing was heard from the receiver for `peer_timeout` while frames were in flight; those
    /// frames were reported `Lost` with [`SendFailure::PeerGone`].
    PeerGone,
    /// A frame already reported [`Lost`](SenderEvent::Lost) on the sender's own guess
    /// ([`SendFailure::is_guess`]) was acknowledged whole after all: only its acknowledgement
    /// was late or lost. Count it delivered instead ([`SenderStats`] are already corrected).
    LateAck {
        /// Stream.
        stream: StreamId,
        /// Frame.
        frame: FrameId,
        /// From [`Sender::send`] to the acknowledgement.
        latency: Duration,
    },
}

/// Counters of a sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderStats {
    /// Frames accepted by `send`.
    pub frames_sent: u64,
    /// Frames acknowledged whole.
    pub frames_acked: u64,
    /// Frames reported lost.
    pub frames_lost: u64,
    /// Payload bytes of acknowledged frames.
    pub payload_bytes_acked: u64,
    /// Datagrams produced.
    pub datagrams_sent: u64,
    /// Bytes of those datagrams.
    pub bytes_sent: u64,
    /// Datagrams received that were valid acknowledgements for this session.
    pub acks_received: u64,
    /// Acknowledgements for frames no longer in flight.
    pub duplicate_acks: u64,
    /// Datagrams received that were not for this session or did not parse.
    pub ignored_datagrams: u64,
    /// NACKs received.
    pub nacks_received: u64,
    /// Chunks sent again after a NACK or a retransmission timeout.
    pub chunks_retransmitted: u64,
    /// Retransmission timeouts that fired.
    pub rto_expirations: u64,
    /// PINGs sent to a receiver that owed an answer, and PONGs back.
    pub pings_sent: u64,
    /// PONGs received.
    pub pongs_received: u64,
    /// NACKed chunks not resent because they were sent too recently to be known lost.
    pub nack_chunks_not_due: u64,
    /// NACKed chunks left for a later NACK: one NACK resends at most
    /// [`MAX_RESENDS_PER_NACK`] chunks.
    pub nack_chunks_deferred: u64,
    /// Times a reliable frame was refused for lack of room at the receiver and scheduled to
    /// be tried again.
    pub rejections_retried: u64,
    /// Parity (FEC) chunks sent.
    pub parity_chunks_sent: u64,
    /// Of `nacks_received`, the receiver's progress reports (a NACK whose one range lies past
    /// the frame: nothing is missing, it says how much arrived).
    pub progress_reports_received: u64,
    /// Live frames dropped for newer ones (window full).
    pub frames_superseded: u64,
    /// Live frames whose deadline passed without a verdict.
    pub frames_past_deadline: u64,
    /// Of `frames_past_deadline`, those dropped before it passed because what was left of
    /// them could not arrive in time at the estimated rate: the path's rate is short of the
    /// stream's (a deadline passed on a long path is not counted here).
    pub frames_hopeless: u64,
    /// Times a live sender forgot its bandwidth estimate as stale: nothing in flight and
    /// nothing sent for [`STALE_ESTIMATE`](super::STALE_ESTIMATE) while frames came, every one
    /// judged unable to arrive at it.
    pub estimates_forgotten: u64,
    /// Chunks of live frames the receiver's progress reports showed lost (sent before a chunk
    /// that arrived, and missing): not resent, but counted by the congestion controller.
    pub live_chunks_lost: u64,
    /// Frames reported lost on a guess, then acknowledged after all (already moved from
    /// `frames_lost` to `frames_acked`).
    pub late_acks: u64,
    /// HELLOs sent (the first exchange, §8).
    pub hellos_sent: u64,
    /// CHALLENGEs received: tokens for this sender's address. Many of them and no ACK mean
    /// the receiver takes the greeting but refuses the session (it serves as many senders as
    /// it will).
    pub challenges_received: u64,
    /// Path MTU probes sent, confirmed, and black holes that sent the size back to the base.
    pub mtu_probes_sent: u64,
    /// See `mtu_probes_sent`.
    pub mtu_probes_confirmed: u64,
    /// See `mtu_probes_sent`.
    pub mtu_black_holes: u64,
}

/// The sender's view of the path, for live display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathEstimate {
    /// Smoothed round-trip time.
    pub srtt: Option<Duration>,
    /// Lowest round-trip time seen.
    pub min_rtt: Option<Duration>,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// Pacing rate, bytes per second.
    pub rate: f64,
    /// The congestion controller's estimate of the bottleneck's rate (the highest recent
    /// delivery rate), bytes per second; `None` before enough feedback.
    pub bandwidth: Option<f64>,
    /// Loss the receiver reports, smoothed (share of chunks); `None` until an ACK reported
    /// chunks. A measurement only: no prior is mixed in.
    pub loss: Option<f64>,
    /// Loss `FecPolicy::Auto` provisions for: the receiver's reports smoothed from a prior of
    /// 5%, so the first frames carry parity before anything is known.
    pub fec_loss: f64,
    /// Longest loss burst the receiver reports, smoothed (chunks), from a prior of 1.
    pub burst: f64,
}

impl PathEstimate {
    /// Smoothed RTT above the lowest: time spent waiting in queues.
    pub fn queueing_delay(&self) -> Option<Duration> {
        Some(self.srtt?.saturating_sub(self.min_rtt?))
    }
}
