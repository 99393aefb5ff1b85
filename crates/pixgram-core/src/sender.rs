//! The sending endpoint: one session towards one receiver, with a window of frames in flight per
//! stream and a verdict (acknowledged or lost, with round-trip time) for every frame.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;

use crate::bbr::Bbr;
use crate::chunking::ChunkLayout;
use crate::fec;
use crate::greeting::Greeting;
use crate::ids::{ChunkIndex, FrameId, SessionId, StreamId};
use crate::pacing::{Pacer, RateConfig};
use crate::pmtu::PathMtu;
use crate::receiver::PayloadKind;
use crate::rtt::RttEstimator;
use crate::time::Timestamp;
use crate::wire::{
    self, Ack, AckStatus, DataFlags, DataHeader, Datagram, Nack, DATA_HEADER_LEN, DATA_OVERHEAD,
    MAX_FEC_DATA_CHUNKS,
};

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

    fn body_len(&self) -> u64 {
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

/// One datagram produced by [`Sender::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Bytes written at the start of the buffer.
    pub len: usize,
}

#[derive(Debug)]
struct OutFrame {
    flags: DataFlags,
    layout: ChunkLayout,
    /// The datagram size the frame was cut for.
    cut_for: usize,
    meta_prefix: [u8; 4],
    metadata: Bytes,
    payload: Bytes,
    next_chunk: u32,
    parity_count: u8,
    /// Parity chunk `j` at `j * layout.parity_len()`.
    parity: Vec<u8>,
    /// Live frames: when the frame stops being worth sending.
    deadline: Option<Timestamp>,
    deadline_ms: u16,
    submitted: Timestamp,
    /// When the last chunk went out for the first time.
    last_sent: Option<Timestamp>,
    /// Chunks to send again, in order; `queued` has a bit per chunk in this queue.
    resend: VecDeque<u32>,
    queued: Vec<u64>,
    /// When each chunk was last sent again (allocated at the first NACK): a NACK that crossed
    /// the retransmission on the wire must not trigger another.
    resent_at: Vec<Option<Timestamp>>,
    /// When each data chunk was last sent, for the RTT samples progress reports give.
    sent_at: Vec<Timestamp>,
    /// Whether any chunk was sent twice.
    retransmitted: bool,
    /// When any data chunk of the frame was last sent: the receiver acknowledges as soon as
    /// the last missing chunk arrives, so the ACK's arrival minus this is a round-trip sample
    /// even for frames with retransmissions (where Karn's rule would leave none: at 5% loss,
    /// every 200 KB frame has one). Parity chunks do not count: they follow the data, which
    /// usually completes the frame before they arrive (measured from them, a 40 ms path gave
    /// samples of 0.2-2.5 ms). A frame rebuilt from parity gives a longer sample, never a
    /// shorter one.
    last_tx: Timestamp,
    /// Whether that last send was a timeout probe. An ACK may answer the original instead of
    /// the probe (the verdict was only late), so such a sample could be far too short: Karn's
    /// rule, applied to probes only. NACK-driven resends answer a NACK and are not ambiguous.
    last_tx_probe: bool,
    /// Chunks the receiver last said it holds (NACKs), for the delivery rate.
    reported: u32,
    /// Chunks sent and not yet reported delivered or lost: this frame's part of the bytes in
    /// flight the congestion window bounds.
    outstanding: u32,
    /// Reliable frames: when to probe if no verdict has come.
    rto_at: Option<Timestamp>,
    backoffs: u32,
    /// Reliable frames: since when the receiver has refused the frame for lack of room, with
    /// no NACK (room) in between.
    rejected_since: Option<Timestamp>,
}

impl OutFrame {
    fn reliable(&self) -> bool {
        self.flags.contains(DataFlags::RELIABLE)
    }

    /// Data and parity chunks.
    fn total_chunks(&self) -> u32 {
        self.layout.count() + u32::from(self.parity_count)
    }

    /// Bytes one chunk of this frame takes on the wire, on average (headers included): what
    /// its chunks count for in flight and delivered (a small message's datagram is not a full
    /// one).
    fn chunk_bytes(&self) -> u64 {
        let count = u64::from(self.layout.count().max(1));
        (self.layout.len() + count * DATA_OVERHEAD as u64).div_ceil(count)
    }

    /// Bytes of this frame's chunks in flight.
    fn outstanding_bytes(&self) -> u64 {
        u64::from(self.outstanding) * self.chunk_bytes()
    }

    /// Whether every chunk has been sent at least once and nothing waits to be sent again.
    fn is_drained(&self) -> bool {
        self.next_chunk == self.total_chunks() && self.resend.is_empty()
    }

    /// Queues data chunk `i` to be sent again unless it is queued already, was never sent, or
    /// was sent again less than `holdoff` before `now`.
    fn queue_resend(&mut self, i: u32, now: Timestamp, holdoff: Duration) -> bool {
        if i >= self.next_chunk || i >= self.layout.count() {
            return false;
        }
        if self.queued.is_empty() {
            let count = self.layout.count() as usize;
            self.queued = vec![0; count.div_ceil(64)];
            self.resent_at = vec![None; count];
        }
        if self.resent_at[i as usize].is_some_and(|t| now.saturating_since(t) < holdoff) {
            return false;
        }
        let (w, b) = ((i / 64) as usize, i % 64);
        if self.queued[w] & (1 << b) != 0 {
            return false;
        }
        self.queued[w] |= 1 << b;
        self.resend.push_back(i);
        true
    }

    /// Cuts the frame for datagrams of `max_chunk` payload bytes if none of its chunks has
    /// been sent yet and it has no parity (path MTU discovery raised the size after the frame
    /// was queued).
    fn fit(&mut self, max_chunk: usize) {
        if self.next_chunk > 0 || self.parity_count > 0 {
            return;
        }
        let Some(layout) = ChunkLayout::for_frame(self.layout.len(), max_chunk) else {
            return;
        };
        self.cut_for = max_chunk + DATA_OVERHEAD;
        if layout != self.layout {
            self.layout = layout;
            if !self.sent_at.is_empty() {
                self.sent_at = vec![Timestamp::ZERO; layout.count() as usize];
            }
        }
    }

    fn pop_resend(&mut self) -> Option<u32> {
        let i = self.resend.pop_front()?;
        self.queued[(i / 64) as usize] &= !(1 << (i % 64));
        Some(i)
    }

    /// Copies body bytes `range` (prefix, metadata and payload seen as one) into `dst`.
    fn copy_body(&self, range: std::ops::Range<usize>, dst: &mut [u8]) {
        let prefix: &[u8] = if self.flags.contains(DataFlags::METADATA) {
            &self.meta_prefix
        } else {
            &[]
        };
        let mut at = 0; // position of the current part in body coordinates
        let mut written = 0;
        for part in [prefix, &self.metadata[..], &self.payload[..]] {
            let (start, end) = (range.start.max(at), range.end.min(at + part.len()));
            if start < end {
                dst[written..written + end - start].copy_from_slice(&part[start - at..end - at]);
                written += end - start;
            }
            at += part.len();
        }
    }
}

#[derive(Debug)]
struct StreamTx {
    ordered: bool,
    reliable: bool,
    live: bool,
    next_id: FrameId,
    in_flight: usize,
}

/// The sending endpoint, free of I/O.
///
/// [`send`](Sender::send) queues a frame; [`poll_transmit`](Sender::poll_transmit) yields its
/// datagrams; [`handle`](Sender::handle) takes the receiver's acknowledgements;
/// [`handle_timeout`](Sender::handle_timeout) runs when [`poll_timeout`](Sender::poll_timeout)
/// says; [`poll_event`](Sender::poll_event) reports each frame's fate. After every input, drain
/// `poll_transmit` and `poll_event` until `None`.
///
/// The first datagrams are the first exchange (docs/PROTOCOL.md §8): a HELLO, and once the
/// receiver's CHALLENGE brought a token, a HELLO with it; DATA follows. A CHALLENGE later (the
/// receiver restarted, or this sender's address changed) is answered the same way.
#[derive(Debug)]
pub struct Sender {
    config: SenderConfig,
    session: SessionId,
    streams: HashMap<StreamId, StreamTx>,
    frames: BTreeMap<(StreamId, FrameId), OutFrame>,
    /// Frames with chunks never sent yet, in submission order.
    send_queue: VecDeque<(StreamId, FrameId)>,
    /// Frames with chunks to send again; served before `send_queue`.
    resend_queue: VecDeque<(StreamId, FrameId)>,
    rtt: RttEstimator,
    rate: Bbr,
    pacer: Pacer,
    /// Bytes in flight (chunks sent, not yet reported delivered or lost, at their frame's
    /// [`OutFrame::chunk_bytes`]), all frames together.
    inflight: u64,
    /// When feedback last arrived (or the sender started): a window full a retransmission
    /// timeout after this is taken as lost (every report of it was), so the sender never
    /// waits on feedback that will not come.
    window_clock: Timestamp,
    /// When the pacer said the next datagram could go, if it held one back: a call later
    /// than that tells the pacer how late the driver wakes.
    paced_until: Option<Timestamp>,
    events: VecDeque<SenderEvent>,
    /// Since when the receiver owes an answer and has given none: from a round trip (the
    /// lowest RTT) after a frame in flight first had all its chunks sent (a receiver answers a
    /// frame once it is whole; while the sender is still sending, a healthy receiver has
    /// nothing to say), or from its last answer, whichever is later. Meaningful while
    /// `due_frames > 0`.
    answer_due: Timestamp,
    /// Frames in flight whose chunks have all been sent once.
    due_frames: usize,
    /// Silence the frames that were due met before they were given up unanswered (timed out,
    /// past their deadline), leaving none due: it still counts when a frame is due again, or
    /// a sender whose frames keep timing out one window after another would never report the
    /// receiver gone. Time with nothing due is not silence. Zero once the receiver answers.
    carried_silence: Duration,
    /// A PING waits to be sent: the receiver has owed an answer for a quarter of
    /// `peer_timeout` (unreliable frames lost whole, an ACK lost, leave it nothing to say).
    ping_queued: bool,
    /// When the next PING may go, and how many were sent.
    next_ping: Timestamp,
    pings: u64,
    close_queued: bool,
    stats: SenderStats,
    /// Smoothed loss share and burst length from the receiver's ACKs, for `FecPolicy::Auto`.
    reported_loss: f64,
    reported_burst: f64,
    /// The same loss share without the prior: `None` before any report.
    measured_loss: Option<f64>,
    /// When a valid ACK or NACK of this session last arrived; `None` before the first.
    heard: Option<Timestamp>,
    /// When the receiver last completed a frame or asked for chunks: a refused frame waits
    /// while others make progress.
    progress: Timestamp,
    /// Frames recently reported lost on a guess: (payload bytes, submitted), with their order
    /// for the bound of [`RECENT_LOST`].
    recent_lost: HashMap<(StreamId, FrameId), (u64, Timestamp)>,
    recent_lost_order: VecDeque<(StreamId, FrameId)>,
    /// The first exchange: no DATA before the receiver has sent a token.
    greeting: Greeting,
    /// The round trip the first exchange measured (small datagrams, an empty queue). The
    /// controller takes it as the path's lowest RTT at once for live streams, otherwise only
    /// if frames are given up before any feedback measured one: a live stream on a long path
    /// whose first frames all expire would otherwise never learn the delay, and never open
    /// its window. (Reliable streams learn it from their first frame: taken from the exchange
    /// as well, the controller drained a lossy 10 MB/s link to a third of its rate.)
    exchange_rtt: Option<Duration>,
    /// The datagram size for new frames, and the search for a larger one.
    pmtu: PathMtu,
    /// Retransmission timeouts in a row with no answer from the receiver (a black hole for
    /// datagrams of the size in use, when it is above the base).
    rto_streak: u32,
    /// Frames given up with chunks in flight (past their deadline, superseded, timed out):
    /// (frame, chunks the receiver had reported, chunks in all), newest last, at most
    /// [`GIVEN_UP`]. The receiver's reports on them still measure the path: a live stream
    /// whose frames all die before their feedback returns would otherwise measure nothing,
    /// and never open its window.
    given_up: VecDeque<GivenUp>,
}

/// Frames given up whose late feedback still counts towards the delivery rate.
const GIVEN_UP: usize = 64;

/// A frame given up with chunks in flight (see `Sender::given_up`).
#[derive(Debug)]
struct GivenUp {
    key: (StreamId, FrameId),
    reported: u32,
    total: u32,
    chunk_bytes: u64,
    /// When its last data chunk was sent, if no chunk of it was sent twice: a late ACK is
    /// then still a round-trip sample (after the path's delay rose, every frame may miss its
    /// deadline before its ACK is back, and the lowest RTT would never learn the new delay).
    last_tx: Option<Timestamp>,
}

/// Frames reported lost on a guess that a late COMPLETE ACK can still correct, per sender.
pub const RECENT_LOST: usize = 1024;

impl Sender {
    /// A sender for one session. The driver picks `session` at random.
    ///
    /// # Panics
    /// If `config.datagram_size` is outside
    /// [`wire::MIN_DATAGRAM_SIZE`]`..=`[`wire::MAX_DATAGRAM_SIZE`], `config.max_datagram_size`
    /// is above it, or `config.window` is 0.
    pub fn new(config: SenderConfig, session: SessionId) -> Self {
        assert!(
            (wire::MIN_DATAGRAM_SIZE..=wire::MAX_DATAGRAM_SIZE).contains(&config.datagram_size),
            "datagram size out of range"
        );
        assert!(config.window > 0, "window must be at least 1");
        assert!(
            config
                .max_datagram_size
                .is_none_or(|m| m <= wire::MAX_DATAGRAM_SIZE),
            "max datagram size out of range"
        );
        let rate = Bbr::new(RateConfig {
            initial: config.initial_rate,
            min: 100e3,
            max: config.max_rate.unwrap_or(f64::MAX),
            datagram: config.datagram_size as f64,
        });
        let pacer = Pacer::new(rate.rate(), rate.send_quantum());
        let pmtu = PathMtu::new(
            config.datagram_size,
            config.max_datagram_size.unwrap_or(config.datagram_size),
        );
        Sender {
            rtt: RttEstimator::new(Duration::from_millis(200), config.min_rto, config.max_rto),
            rate,
            pacer,
            inflight: 0,
            window_clock: Timestamp::ZERO,
            paced_until: None,
            resend_queue: VecDeque::new(),
            config,
            session,
            streams: HashMap::new(),
            frames: BTreeMap::new(),
            send_queue: VecDeque::new(),
            events: VecDeque::new(),
            answer_due: Timestamp::ZERO,
            due_frames: 0,
            carried_silence: Duration::ZERO,
            ping_queued: false,
            next_ping: Timestamp::ZERO,
            pings: 0,
            close_queued: false,
            stats: SenderStats::default(),
            reported_loss: 0.05,
            reported_burst: 1.0,
            measured_loss: None,
            heard: None,
            progress: Timestamp::ZERO,
            recent_lost: HashMap::new(),
            recent_lost_order: VecDeque::new(),
            greeting: Greeting::default(),
            exchange_rtt: None,
            pmtu,
            rto_streak: 0,
            given_up: VecDeque::new(),
        }
    }

    /// This sender's session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The configuration in force.
    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> &SenderStats {
        &self.stats
    }

    /// Frames sent or awaiting a verdict, all streams together.
    pub fn in_flight(&self) -> usize {
        self.frames.len()
    }

    /// When a valid ACK or NACK of this session last arrived (the receiver making progress, or
    /// at least alive), or `None` if the receiver has never answered.
    pub fn last_heard(&self) -> Option<Timestamp> {
        self.heard
    }

    /// Reports every frame in flight lost with [`SendFailure::Abandoned`] (the application
    /// gives up, e.g. on Ctrl-C), so that no frame goes without a verdict. A COMPLETE ACK that
    /// still arrives for one of them becomes a [`SenderEvent::LateAck`].
    pub fn abandon(&mut self) {
        let keys: Vec<_> = self.frames.keys().copied().collect();
        for key in keys {
            self.drop_frame(key, SendFailure::Abandoned, None);
        }
    }

    /// Whether `stream` has room in its window.
    pub fn can_send(&self, stream: StreamId) -> bool {
        self.streams
            .get(&stream)
            .is_none_or(|s| s.in_flight < self.config.window)
    }

    /// Queues a frame. Its datagrams come out of [`poll_transmit`](Sender::poll_transmit), its
    /// verdict out of [`poll_event`](Sender::poll_event).
    pub fn send(&mut self, now: Timestamp, frame: OutgoingFrame) -> Result<FrameId, SendError> {
        let len = frame.body_len();
        if len > self.config.max_frame_len {
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_frame_len,
            });
        }
        let Some(layout) = ChunkLayout::for_frame(len, self.pmtu.current() - DATA_OVERHEAD) else {
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_frame_len,
            });
        };
        if !self.streams.contains_key(&frame.stream)
            && self.streams.len() >= self.config.max_streams
        {
            return Err(SendError::TooManyStreams);
        }
        let live = frame.deadline.is_some();
        let stream = self.streams.entry(frame.stream).or_insert(StreamTx {
            ordered: frame.ordered,
            reliable: frame.reliable,
            live,
            next_id: FrameId(0),
            in_flight: 0,
        });
        if stream.ordered != frame.ordered
            || stream.reliable != frame.reliable
            || stream.live != live
            || (live && frame.ordered)
        {
            return Err(SendError::OrderingMismatch(frame.stream));
        }
        if stream.in_flight >= self.config.window {
            if !live {
                return Err(SendError::WindowFull);
            }
            // Latest wins: make room by dropping this stream's oldest frame.
            let oldest = self
                .frames
                .range((frame.stream, FrameId(0))..=(frame.stream, FrameId(u64::MAX)))
                .next()
                .map(|(k, _)| *k)
                .expect("a full window holds frames");
            self.drop_frame(oldest, SendFailure::Superseded, Some(now));
            self.stats.frames_superseded += 1;
        }
        let stream = self.streams.get_mut(&frame.stream).expect("inserted above");
        let id = stream.next_id;
        stream.next_id = id.next();
        stream.in_flight += 1;
        let flags = DataFlags::default()
            .with(DataFlags::MESSAGE, frame.kind == PayloadKind::Message)
            .with(DataFlags::METADATA, frame.metadata.is_some())
            .with(DataFlags::ORDERED, frame.ordered)
            .with(DataFlags::RELIABLE, frame.reliable)
            .with(DataFlags::LIVE, live);
        let parity_count = if live {
            self.parity_for(&layout, frame.fec)
        } else {
            0
        };
        let deadline_ms = frame
            .deadline
            .map_or(0, |d| d.as_millis().clamp(1, u128::from(u16::MAX)) as u16);
        let metadata = frame.metadata.unwrap_or_default();
        let meta_prefix = u32::try_from(metadata.len())
            .map_err(|_| SendError::TooLarge {
                len,
                max: u64::from(u32::MAX),
            })?
            .to_be_bytes();
        let mut out = OutFrame {
            flags,
            layout,
            cut_for: self.pmtu.current(),
            meta_prefix,
            metadata,
            payload: frame.payload,
            next_chunk: 0,
            parity_count,
            parity: Vec::new(),
            deadline: frame.deadline.map(|d| now + d),
            deadline_ms,
            submitted: now,
            last_sent: None,
            resend: VecDeque::new(),
            queued: Vec::new(),
            resent_at: Vec::new(),
            sent_at: vec![Timestamp::ZERO; layout.count() as usize],
            retransmitted: false,
            last_tx: now,
            last_tx_probe: false,
            reported: 0,
            outstanding: 0,
            rto_at: None,
            backoffs: 0,
            rejected_since: None,
        };
        if parity_count > 0 {
            match fec::encode_parity(&out.layout, parity_count, |r, dst| out.copy_body(r, dst)) {
                Some(p) => out.parity = p,
                None => out.parity_count = 0,
            }
        }
        self.frames.insert((frame.stream, id), out);
        self.send_queue.push_back((frame.stream, id));
        self.stats.frames_sent += 1;
        if live {
            self.drop_hopeless(now, frame.stream);
        }
        Ok(id)
    }

    /// Live frames of `stream` that can no longer arrive by their deadline at the rate the
    /// path delivers (what is left of them over the bottleneck estimate, plus half the
    /// smoothed RTT) are dropped now, counted as past their deadline, instead of taking the path's
    /// capacity from the newest frame until their deadline passes part-sent.
    fn drop_hopeless(&mut self, now: Timestamp, stream: StreamId) {
        // Only once start-up is over: before, the estimate is a lower bound of the path's
        // rate (an application-limited live stream's first frames measure little).
        let Some(rate) = self
            .rate
            .bandwidth()
            .filter(|r| *r > 0.0 && !self.rate.in_slow_start())
        else {
            return;
        };
        // (The estimate of a stream below the path's rate is about the rate its frames leave
        // at: each frame goes out as a paced burst, and the 1.25 probes raise it where the
        // path allows. A key frame far above it may still be judged hopeless on a path that
        // would have carried it: not measured.)
        // Half the smoothed RTT: the queue it waits in counts too.
        let one_way = self
            .rate
            .min_rtt()
            .max(self.rtt.smoothed())
            .unwrap_or(Duration::ZERO)
            / 2;
        let hopeless: Vec<_> = self
            .frames
            .range((stream, FrameId(0))..=(stream, FrameId(u64::MAX)))
            .filter(|(_, f)| {
                let Some(deadline) = f.deadline else {
                    return false;
                };
                let left = u64::from(f.total_chunks() - f.next_chunk) * f.chunk_bytes();
                let takes = Duration::from_secs_f64((left as f64 / rate).min(3600.0));
                now + takes + one_way > deadline
            })
            .map(|(k, _)| *k)
            .collect();
        for key in hopeless {
            self.stats.frames_past_deadline += 1;
            self.drop_frame(key, SendFailure::Deadline, Some(now));
        }
    }

    /// Parity chunks for a live frame of `layout` under `policy`.
    fn parity_for(&self, layout: &ChunkLayout, policy: FecPolicy) -> u8 {
        let count = layout.count();
        if layout.is_empty() || count > MAX_FEC_DATA_CHUNKS {
            return 0;
        }
        let (ratio, burst) = match policy {
            FecPolicy::Off => return 0,
            FecPolicy::Ratio(r) => (f64::from(r.max(0.0)), 0.0),
            // Twice the loss the receiver sees plus a margin, and enough for a typical burst.
            FecPolicy::Auto => (
                (2.0 * self.reported_loss + 0.02).min(0.5),
                self.reported_burst * 1.5,
            ),
        };
        let wanted = (f64::from(count) * ratio).ceil().max(burst.ceil()).max(1.0);
        wanted.min(f64::from(count)).min(255.0) as u8
    }

    /// Forgets a frame in flight and reports it lost, at `now` if known.
    fn drop_frame(
        &mut self,
        key: (StreamId, FrameId),
        reason: SendFailure,
        now: Option<Timestamp>,
    ) {
        let Some(frame) = self.frames.remove(&key) else {
            return;
        };
        if self.rate.min_rtt().is_none() {
            if let (Some(rtt), Some(now)) = (self.exchange_rtt, now) {
                self.rate.on_rtt(now, rtt);
            }
        }
        let outstanding = frame.outstanding_bytes();
        self.inflight -= outstanding.min(self.inflight);
        // Its chunks still in flight will never be reported (the receiver's reports for a
        // frame the sender forgot are not read): the controller's round counts them as done.
        self.rate.on_forgotten(outstanding);
        if frame.outstanding > 0 {
            self.given_up.push_back(GivenUp {
                key,
                reported: frame.reported,
                total: frame.total_chunks(),
                chunk_bytes: frame.chunk_bytes(),
                last_tx: (!frame.retransmitted).then_some(frame.last_tx),
            });
            if self.given_up.len() > GIVEN_UP {
                self.given_up.pop_front();
            }
        }
        if frame.last_sent.is_some() {
            self.due_frames -= 1;
            if self.due_frames == 0 {
                // Given up unanswered: the silence so far still counts.
                let t = now.unwrap_or(self.answer_due);
                self.carried_silence = t.saturating_since(self.answer_due);
            }
        }
        self.send_queue.retain(|k| *k != key);
        self.resend_queue.retain(|k| *k != key);
        self.release(key.0);
        self.stats.frames_lost += 1;
        if reason.is_guess() {
            self.remember_lost(key, frame.payload.len() as u64, frame.submitted);
        }
        self.events.push_back(SenderEvent::Lost {
            stream: key.0,
            frame: key.1,
            reason,
        });
    }

    /// Feedback on a frame given up: the receiver now holds `held` of its chunks (`u32::MAX`:
    /// all, and `done`: no more will come). What it holds beyond its last report was
    /// delivered, and counts towards the delivery rate.
    fn late_delivery(&mut self, now: Timestamp, key: (StreamId, FrameId), held: u32, done: bool) {
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
    fn remember_lost(&mut self, key: (StreamId, FrameId), len: u64, submitted: Timestamp) {
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
    fn on_late_complete(&mut self, now: Timestamp, key: (StreamId, FrameId)) -> bool {
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

    /// Queues a CLOSE datagram telling the receiver this session is over. Frames still in flight
    /// keep their timers; send it once they are settled.
    pub fn close(&mut self) {
        self.close_queued = true;
    }

    /// Writes the next datagram into `buf` (at least `max_datagram_size` bytes), or returns `None`
    /// when nothing is ready: nothing to send, or the pacer wants a pause (then
    /// [`poll_timeout`](Sender::poll_timeout) says until when). Call until `None` after every
    /// input.
    pub fn poll_transmit(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<Transmit> {
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
        let (key, resend) = if let Some(&key) = self.resend_queue.front() {
            (key, true)
        } else if let Some(&key) = self.send_queue.front() {
            (key, false)
        } else if self.close_queued {
            self.close_queued = false;
            let len = wire::emit_close(buf, self.session);
            self.count_sent(now, len);
            return Some(Transmit { len });
        } else {
            self.rate.on_app_limited(now, self.inflight_bytes());
            return None;
        };
        let ready = self.pacer.ready_at(now, self.pmtu.current());
        if ready > now {
            // Held back by the rate: a chance for the controller to move to its next phase.
            self.rate.advance(now, self.inflight_bytes());
            self.update_pacer(now);
            self.paced_until = Some(self.pacer.ready_at(now, self.pmtu.current()));
            return None;
        }
        if let Some(due) = self.paced_until.take() {
            self.pacer.on_late(now, now.saturating_since(due));
        }
        if self.window_full() {
            if now < self.window_clock + self.rtt.rto() {
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
        let len = wire::finish_data(buf, payload_len);
        self.count_sent(now, len);
        if let Some(f) = self.frames.get_mut(&key) {
            f.outstanding += 1;
            self.inflight += f.chunk_bytes();
            self.rate.on_sent(now, f.chunk_bytes());
        }
        Some(Transmit { len })
    }

    fn count_sent(&mut self, now: Timestamp, len: usize) {
        self.pacer.on_sent(now, len);
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += len as u64;
    }

    /// Writes a HELLO, with the token if the sender holds one.
    fn emit_hello(
        &mut self,
        now: Timestamp,
        buf: &mut [u8],
        token: Option<wire::Token>,
    ) -> Transmit {
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
            len: wire::MIN_HELLO_LEN,
        };
        let len = wire::emit_hello(buf, &hello);
        self.count_sent(now, len);
        Transmit { len }
    }

    /// Writes a path MTU probe of `size` bytes: a HELLO with the token, padded.
    fn emit_probe(&mut self, now: Timestamp, buf: &mut [u8], size: usize) -> Transmit {
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
        self.count_sent(now, len);
        Transmit { len }
    }

    /// How long an unanswered path MTU probe waits before it is sent again.
    fn probe_timeout(&self) -> Duration {
        (self.rtt.rto() * 2).max(Duration::from_millis(50))
    }

    /// The datagram size new frames are cut for (path MTU discovery may raise it).
    pub fn datagram_size(&self) -> usize {
        self.pmtu.current()
    }

    /// Writes the queued PING.
    fn emit_ping(&mut self, now: Timestamp, buf: &mut [u8]) -> Transmit {
        self.ping_queued = false;
        self.pings += 1;
        self.stats.pings_sent += 1;
        let len = wire::emit_ping(buf, self.session, self.pings, false);
        self.count_sent(now, len);
        Transmit { len }
    }

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
                } else {
                    if let Some(rtt) = self.greeting.rtt_sample(now) {
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

    fn on_ack(&mut self, now: Timestamp, ack: Ack) {
        self.stats.acks_received += 1;
        self.rto_streak = 0;
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

    fn on_nack(&mut self, now: Timestamp, nack: &Nack<'_>) {
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
        if let (Some(r), None) = (ranges.next(), ranges.next()) {
            if r.first >= total {
                self.stats.progress_reports_received += 1;
                let trigger = r.count - 1;
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
            self.rate.on_feedback(now, delivered, 0, self.inflight);
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

    fn update_pacer(&mut self, now: Timestamp) {
        self.pacer
            .set_rate(now, self.rate.rate(), self.rate.send_quantum());
    }

    /// Bytes in flight: data and parity chunks sent and not yet reported delivered or lost.
    fn inflight_bytes(&self) -> u64 {
        self.inflight
    }

    /// Whether the congestion window holds back the next datagram.
    fn window_full(&self) -> bool {
        self.inflight_bytes() + self.pmtu.current() as u64 > self.rate.cwnd()
    }

    /// The sender's estimates of the path: RTT, RTO, rate.
    pub fn path(&self) -> PathEstimate {
        PathEstimate {
            srtt: self.rtt.smoothed(),
            min_rtt: self.rate.min_rtt(),
            rto: self.rtt.rto(),
            rate: self.rate.rate(),
            bandwidth: self.rate.bandwidth(),
            loss: self.measured_loss,
            fec_loss: self.reported_loss,
            burst: self.reported_burst,
        }
    }

    fn release(&mut self, stream: StreamId) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.in_flight -= 1;
        }
    }

    /// When [`handle_timeout`](Sender::handle_timeout) should next be called, or when the
    /// pacer lets the next datagram go; `None` while there is nothing to do. Call again after
    /// every input.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.frames.is_empty() {
            return None;
        }
        let mut next = self
            .silent_since()
            .or(self.greeting.waiting_since())
            .map(|t| t + self.config.peer_timeout);
        let ping = self.ping_due_at();
        let mut consider = |t: Timestamp| next = Some(next.map_or(t, |n| n.min(t)));
        ping.into_iter().for_each(&mut consider);
        self.greeting.next_at().into_iter().for_each(&mut consider);
        if self.greeting.validated() {
            let probe_timeout = self.probe_timeout();
            self.pmtu
                .poll_timeout(probe_timeout)
                .into_iter()
                .for_each(&mut consider);
        }
        for f in self.frames.values() {
            let due = if f.reliable() {
                f.rto_at
            } else {
                f.last_sent.map(|t| t + self.config.frame_timeout)
            };
            due.into_iter().chain(f.deadline).for_each(&mut consider);
        }
        let queued = !self.resend_queue.is_empty() || !self.send_queue.is_empty();
        if queued && self.greeting.validated() {
            let last = self.pacer.last_send().unwrap_or(Timestamp::ZERO);
            let paced = self.pacer.ready_at(last, self.pmtu.current());
            if self.window_full() {
                // Feedback reopens the window; without any, a timeout does.
                consider(paced.max(self.window_clock + self.rtt.rto()));
            } else {
                consider(paced);
            }
        }
        next
    }

    /// Reports frames whose verdict is overdue (unreliable streams), probes reliable frames
    /// whose retransmission timer fired, and reports the receiver gone after `peer_timeout`
    /// of silence. Harmless to call early or often.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.frames.is_empty() {
            return;
        }
        let peer_gone = self
            .silent_since()
            .or(self.greeting.waiting_since())
            .is_some_and(|t| now.saturating_since(t) >= self.config.peer_timeout);
        if !peer_gone && self.ping_due_at().is_some_and(|t| now >= t) {
            self.ping_queued = true;
            self.next_ping = now + (self.config.peer_timeout / 8).max(Duration::from_millis(50));
        }
        let mut lost = Vec::new();
        let mut probes = Vec::new();
        let mut past_deadline = Vec::new();
        for (key, f) in &self.frames {
            if peer_gone {
                lost.push(*key);
            } else if f.deadline.is_some_and(|d| now >= d) {
                past_deadline.push(*key);
            } else if f.reliable() {
                if f.rto_at.is_some_and(|t| now >= t) {
                    probes.push(*key);
                }
            } else if f
                .last_sent
                .is_some_and(|t| now.saturating_since(t) >= self.config.frame_timeout)
            {
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
        if probes.iter().any(|k| self.frames[k].cut_for == current) {
            self.rto_streak += 1;
            if self.rto_streak >= 3 && current > self.config.datagram_size {
                // Datagrams of the size in use stopped getting through: new frames go at the
                // base size, and frames already sent in part at the larger one cannot arrive.
                self.pmtu.on_black_hole(now);
                self.stats.mtu_black_holes += 1;
                self.rto_streak = 0;
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
        }
        if !probes.is_empty() {
            // The controller is not told: their fate is unknown (the probe will tell), no sign
            // of congestion, and a resent copy's delivery counts for them once reported.
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

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }

    /// When to ask the receiver whether it is there: a quarter of `peer_timeout` into a
    /// silence, then every eighth of it, so that a receiver merely left with nothing to answer
    /// (frames lost whole, ACKs lost) is not taken for gone. `None` while no answer is due.
    fn ping_due_at(&self) -> Option<Timestamp> {
        let since = self.silent_since()?;
        Some((since + self.config.peer_timeout / 4).max(self.next_ping))
    }

    /// Since when the receiver counts as silent (see `answer_due`): frames that timed out
    /// unanswered do not restart it, and silence carried over from frames that all timed out
    /// counts before it. `None` while no answer is due.
    fn silent_since(&self) -> Option<Timestamp> {
        (self.due_frames > 0).then_some(self.answer_due)
    }
}

/// `t - d`, or the epoch.
fn before(t: Timestamp, d: Duration) -> Timestamp {
    let d = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    Timestamp::from_micros(t.as_micros().saturating_sub(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::{Receiver, ReceiverConfig};

    const PEER: &str = "10.0.0.1:4000";

    fn sender() -> Sender {
        Sender::new(SenderConfig::default(), SessionId(7))
    }

    /// Every datagram the sender has ready, handed to the receiver; the receiver's replies
    /// (CHALLENGEs are handed back to the sender at once: the first exchange always succeeds).
    fn to_receiver(tx: &mut Sender, rx: &mut Receiver, now: Timestamp) -> Vec<Vec<u8>> {
        let mut buf = vec![0; 2048];
        let peer = PEER.parse().unwrap();
        let mut replies = Vec::new();
        loop {
            while let Some(t) = tx.poll_transmit(now, &mut buf) {
                rx.handle(now, peer, &buf[..t.len]);
            }
            let mut challenged = false;
            while let Some((_, len)) = rx.poll_transmit(&mut buf) {
                if matches!(wire::parse(&buf[..len]), Ok(Datagram::Challenge(_))) {
                    tx.handle(now, &buf[..len]);
                    challenged = true;
                } else {
                    replies.push(buf[..len].to_vec());
                }
            }
            if !challenged {
                return replies;
            }
        }
    }

    fn events(tx: &mut Sender) -> Vec<SenderEvent> {
        std::iter::from_fn(|| tx.poll_event()).collect()
    }

    fn ack(status: AckStatus, frame: u64, chunks: u32, loss: u8) -> Vec<u8> {
        let mut buf = vec![0; wire::ACK_LEN];
        let len = wire::emit_ack(
            &mut buf,
            &Ack {
                session: SessionId(7),
                stream: StreamId(1),
                frame: FrameId(frame),
                status,
                chunks_received: chunks,
                ack_delay_us: 0,
                loss,
                burst: 0,
            },
        );
        buf.truncate(len);
        buf
    }

    #[test]
    fn sender_late_ack_turns_a_guessed_loss_into_a_delivery() {
        let mut tx = sender();
        let mut rx = Receiver::new(ReceiverConfig::default());
        let t0 = Timestamp::ZERO;
        let frame = OutgoingFrame::live(StreamId(1), vec![5u8; 3000], Duration::from_millis(50));
        let id = tx.send(t0, frame).unwrap();
        // The receiver gets every chunk and acknowledges; the network drops the ACK.
        let held = to_receiver(&mut tx, &mut rx, t0);
        assert!(!held.is_empty(), "the receiver acknowledged the frame");
        // The deadline passes: the sender guesses the frame lost.
        tx.handle_timeout(t0 + Duration::from_millis(60));
        let lost = events(&mut tx);
        assert_eq!(
            lost,
            vec![SenderEvent::Lost {
                stream: StreamId(1),
                frame: id,
                reason: SendFailure::Deadline
            }]
        );
        assert_eq!((tx.stats().frames_acked, tx.stats().frames_lost), (0, 1));
        // A copy of the ACK arrives after all (a late duplicate, or a later answer).
        let late = t0 + Duration::from_millis(80);
        for d in &held {
            tx.handle(late, d);
        }
        assert_eq!(
            events(&mut tx),
            vec![SenderEvent::LateAck {
                stream: StreamId(1),
                frame: id,
                latency: Duration::from_millis(80)
            }]
        );
        let s = tx.stats();
        assert_eq!((s.frames_acked, s.frames_lost, s.late_acks), (1, 0, 1));
        assert_eq!(s.payload_bytes_acked, 3000);
        // Only once: a second copy is a duplicate.
        for d in &held {
            tx.handle(late, d);
        }
        assert!(events(&mut tx).is_empty());
        assert_eq!(tx.stats().frames_acked, 1);
    }

    #[test]
    fn sender_late_ack_is_not_taken_for_a_receiver_verdict() {
        let mut tx = sender();
        let frame = OutgoingFrame::frame(StreamId(1), vec![1u8; 100]);
        let id = tx.send(Timestamp::ZERO, frame).unwrap();
        let mut buf = vec![0; 2048];
        while tx.poll_transmit(Timestamp::ZERO, &mut buf).is_some() {}
        tx.handle(
            Timestamp::from_micros(1000),
            &ack(AckStatus::Expired, id.0, 0, 0),
        );
        assert!(matches!(
            events(&mut tx)[..],
            [SenderEvent::Lost {
                reason: SendFailure::Expired,
                ..
            }]
        ));
        // The receiver said expired: a COMPLETE for it later is a confused peer, not a fix.
        tx.handle(
            Timestamp::from_micros(2000),
            &ack(AckStatus::Complete, id.0, 1, 0),
        );
        assert!(events(&mut tx).is_empty());
        assert_eq!((tx.stats().frames_acked, tx.stats().frames_lost), (0, 1));
    }

    #[test]
    fn sender_remembers_a_bounded_number_of_guessed_losses() {
        let mut tx = sender();
        for i in 0..(RECENT_LOST as u64 + 10) {
            tx.remember_lost((StreamId(1), FrameId(i)), 1, Timestamp::ZERO);
        }
        assert_eq!(tx.recent_lost.len(), RECENT_LOST);
        assert_eq!(tx.recent_lost_order.len(), RECENT_LOST);
        assert!(!tx.recent_lost.contains_key(&(StreamId(1), FrameId(9))));
        assert!(tx.recent_lost.contains_key(&(StreamId(1), FrameId(10))));
    }

    #[test]
    fn sender_reports_measured_loss_apart_from_the_fec_prior() {
        let mut tx = sender();
        assert_eq!(tx.path().loss, None, "nothing measured yet");
        assert!(
            (tx.path().fec_loss - 0.05).abs() < 1e-9,
            "FEC keeps its prior"
        );
        assert_eq!(tx.last_heard(), None);
        let id = tx
            .send(
                Timestamp::ZERO,
                OutgoingFrame::frame(StreamId(1), vec![0u8; 10]),
            )
            .unwrap();
        let at = Timestamp::from_micros(500);
        tx.handle(at, &ack(AckStatus::Complete, id.0, 1, 0));
        assert_eq!(tx.path().loss, Some(0.0), "a lossless ACK measures 0%");
        assert!(
            tx.path().fec_loss > 0.0,
            "the prior decays, it does not vanish"
        );
        assert_eq!(tx.last_heard(), Some(at));
    }

    #[test]
    fn sender_gives_up_on_a_reliable_frame_refused_for_peer_timeout() {
        let mut tx = sender();
        let frame = OutgoingFrame::frame(StreamId(1), vec![0u8; 5000]).reliable(true);
        let id = tx.send(Timestamp::ZERO, frame).unwrap();
        let patience = tx.config().peer_timeout;
        let mut now = Timestamp::ZERO;
        // Refused again and again, never a NACK: retried while patience lasts.
        while now.saturating_since(Timestamp::ZERO) < patience {
            tx.handle(now, &ack(AckStatus::Rejected, id.0, 0, 0));
            assert!(events(&mut tx).is_empty(), "retried, not lost, at {now:?}");
            now = now + Duration::from_millis(500);
        }
        tx.handle(now, &ack(AckStatus::Rejected, id.0, 0, 0));
        assert_eq!(
            events(&mut tx),
            vec![SenderEvent::Lost {
                stream: StreamId(1),
                frame: id,
                reason: SendFailure::Rejected
            }]
        );
        assert_eq!(tx.in_flight(), 0);
    }

    #[test]
    fn sender_keeps_a_refused_frame_while_the_receiver_completes_others() {
        let mut tx = sender();
        let f = || OutgoingFrame::frame(StreamId(1), vec![0u8; 5000]).reliable(true);
        let first = tx.send(Timestamp::ZERO, f()).unwrap();
        let second = tx.send(Timestamp::ZERO, f()).unwrap();
        let at = |ms| Timestamp::ZERO + Duration::from_millis(ms);
        tx.handle(at(0), &ack(AckStatus::Rejected, second.0, 0, 0));
        // The receiver is busy with the first frame, and completes it.
        tx.handle(at(4000), &ack(AckStatus::Complete, first.0, 5, 0));
        tx.handle(at(6000), &ack(AckStatus::Rejected, second.0, 0, 0));
        assert!(
            matches!(events(&mut tx)[..], [SenderEvent::Acked { .. }]),
            "the second frame still waits for room"
        );
        tx.handle(at(9500), &ack(AckStatus::Rejected, second.0, 0, 0));
        assert!(matches!(
            events(&mut tx)[..],
            [SenderEvent::Lost {
                reason: SendFailure::Rejected,
                ..
            }]
        ));
    }

    #[test]
    fn sender_abandon_gives_every_frame_in_flight_a_verdict() {
        let mut tx = sender();
        for _ in 0..3 {
            let f = OutgoingFrame::frame(StreamId(1), vec![0u8; 5000]).reliable(true);
            tx.send(Timestamp::ZERO, f).unwrap();
        }
        tx.abandon();
        let lost = events(&mut tx);
        assert_eq!(lost.len(), 3);
        assert!(lost.iter().all(|e| matches!(
            e,
            SenderEvent::Lost {
                reason: SendFailure::Abandoned,
                ..
            }
        )));
        assert_eq!((tx.in_flight(), tx.stats().frames_lost), (0, 3));
    }
}
