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
use crate::transmit::{SessionPeer, Transmit};
use crate::wire::{
    self, Ack, AckStatus, DataFlags, DataHeader, Datagram, Nack, DATA_HEADER_LEN, DATA_OVERHEAD,
    MAX_FEC_DATA_CHUNKS,
};

mod feedback;
mod frame;
#[cfg(test)]
mod tests;
mod timers;
mod transmit;
mod types;

use frame::{OutFrame, StreamTx};
pub use types::*;

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
    /// When feedback last showed a datagram of the size in use arriving (a frame cut for it
    /// acknowledged or reported in part, or a probe of it confirmed).
    size_heard_at: Option<Timestamp>,
    /// Frames given up with chunks in flight (past their deadline, superseded, timed out):
    /// (frame, chunks the receiver had reported, chunks in all), newest last, at most
    /// [`GIVEN_UP`]. The receiver's reports on them still measure the path: a live stream
    /// whose frames all die before their feedback returns would otherwise measure nothing,
    /// and never open its window.
    given_up: VecDeque<GivenUp>,
    /// When a live frame was last judged unable to arrive by its deadline (see
    /// [`STALE_ESTIMATE`]).
    hopeless_at: Option<Timestamp>,
}

/// Frames given up whose late feedback still counts towards the delivery rate.
const GIVEN_UP: usize = 64;

/// `FecPolicy::Auto` provisions for `AUTO_FEC_LOSS_SCALE * loss + AUTO_FEC_LOSS_MARGIN`: the
/// receiver's reports are smoothed over about ten frames of a hundred chunks, so at 5% they
/// stray by about a tenth of it, and a path that reports no loss may still lose some.
const AUTO_FEC_LOSS_SCALE: f64 = 1.1;
const AUTO_FEC_LOSS_MARGIN: f64 = 0.003;

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

/// Silence (nothing in flight, nothing sent, frames judged unable to arrive meanwhile) after
/// which a live sender's estimate is taken as stale and forgotten: the next frame goes at the
/// initial rate and measures the path (see `Sender::drop_hopeless`). Longer than a live
/// deadline: a stream far above the path's rate is silent for about one between frames it
/// rightly drops.
pub const STALE_ESTIMATE: Duration = Duration::from_millis(500);

/// Frames reported lost on a guess that a late COMPLETE ACK can still correct, per sender.
pub const RECENT_LOST: usize = 1024;

/// Timeouts in a row of one frame cut for the size in use, with nothing heard of that size,
/// that make the size a black hole (path MTU discovery falls back).
pub const BLACK_HOLE_TIMEOUTS: u32 = 3;

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
            size_heard_at: None,
            given_up: VecDeque::new(),
            hopeless_at: None,
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
        if live {
            // A token bucket's bursts must not size the window of frames with deadlines.
            self.rate.cap_to_long_term_rate();
        }
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
            self.rate.on_frame_dropped(now);
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
            lost_seen: 0,
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
    /// path delivers are dropped now, oldest first, counted as past their deadline, instead of
    /// taking the path's capacity from newer frames until their deadline passes part-sent. A
    /// frame arrives once what is queued ahead of it (the frames still to be sent before it,
    /// oldest first, less those dropped here) and what is left of it have gone at the
    /// bottleneck estimate, plus half the smoothed RTT: frames above the path's rate queue
    /// behind each other at the sender, and judged alone each one looked as if it would make
    /// it (at 4 Mbit/s, 20 kB frames at 30 fps arrived 85-95 ms after a 100 ms deadline's
    /// start, a fifth of them late).
    fn drop_hopeless(&mut self, now: Timestamp, stream: StreamId) {
        // The estimate only changes on feedback, and feedback only comes for what was sent:
        // an estimate too low for any one frame (85 kB/s after a collapse, under the floor the
        // sender paces at) dropped every frame at submission, sent nothing and kept that
        // estimate for good (8-18 s without a datagram in the simulator; 0.3-10 s, and 15.6 s
        // to the end, in the kernel). Sending one frame anyway did not help: paced at that
        // estimate it only measured the estimate again. After a silence of
        // [`STALE_ESTIMATE`] the estimate is forgotten, and the next frame measures the path.
        // (Only a silence the estimate made: a stream that pauses keeps its estimate.)
        let last_send = self.pacer.last_send().unwrap_or(Timestamp::ZERO);
        if self.inflight == 0
            && self.hopeless_at.is_some_and(|t| t >= last_send)
            && now.saturating_since(last_send) >= STALE_ESTIMATE
            && self.rate.bandwidth().is_some()
        {
            self.rate.forget_bandwidth(now);
            self.update_pacer(now);
            self.stats.estimates_forgotten += 1;
        }
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
        let mut ahead = 0u64;
        let mut hopeless = Vec::new();
        for key in self.send_queue.iter().chain(self.resend_queue.iter()) {
            let Some(f) = self.frames.get(key) else {
                continue;
            };
            let left = u64::from(f.total_chunks() - f.next_chunk) * f.chunk_bytes()
                + f.resend.len() as u64 * f.chunk_bytes();
            let late = f.deadline.is_some_and(|deadline| {
                let takes = Duration::from_secs_f64(((ahead + left) as f64 / rate).min(3600.0));
                now + takes + one_way > deadline
            });
            if late && key.0 == stream {
                hopeless.push(*key);
            } else {
                ahead += left;
            }
        }
        for key in hopeless {
            self.hopeless_at = Some(now);
            self.stats.frames_past_deadline += 1;
            self.stats.frames_hopeless += 1;
            self.drop_frame(key, SendFailure::Deadline, Some(now));
            self.rate.on_frame_dropped(now);
        }
    }

    /// Parity chunks for a live frame of `layout` under `policy`.
    fn parity_for(&self, layout: &ChunkLayout, policy: FecPolicy) -> u8 {
        let count = layout.count();
        if layout.is_empty() || count > MAX_FEC_DATA_CHUNKS {
            return 0;
        }
        let max = count.min(255);
        let wanted = match policy {
            FecPolicy::Off => return 0,
            FecPolicy::Ratio(r) => (f64::from(count) * f64::from(r.max(0.0))).ceil(),
            // Enough that random loss at what the receiver reports (with a margin for the
            // estimate's noise) breaks at most one frame in a thousand, and enough for a
            // typical burst.
            FecPolicy::Auto => {
                let loss = AUTO_FEC_LOSS_SCALE * self.reported_loss + AUTO_FEC_LOSS_MARGIN;
                let random =
                    fec::parity_for_loss(count, loss, fec::RESIDUAL_FRAME_LOSS, max).unwrap_or(max);
                f64::from(random).max((self.reported_burst * 1.5).ceil())
            }
        };
        wanted.max(1.0).min(f64::from(max)) as u8
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

    /// Queues a CLOSE datagram telling the receiver this session is over. Frames still in flight
    /// keep their timers; send it once they are settled.
    pub fn close(&mut self) {
        self.close_queued = true;
    }

    fn update_pacer(&mut self, now: Timestamp) {
        let quantum = self.rate.send_quantum_for(self.pmtu.current() as f64);
        self.pacer.set_rate(now, self.rate.rate(), quantum);
    }

    /// Bytes in flight: data and parity chunks sent and not yet reported delivered or lost.
    fn inflight_bytes(&self) -> u64 {
        self.inflight
    }

    /// Whether the congestion window holds back a datagram of `len` bytes. An empty window
    /// never does: one datagram larger than the whole window (a 64 KB datagram after path MTU
    /// discovery, at a low rate) must still go, or nothing ever would.
    fn window_full(&self, len: usize) -> bool {
        let inflight = self.inflight_bytes();
        inflight > 0 && inflight + len as u64 > self.rate.cwnd()
    }

    /// How long a full window waits for feedback before what is in flight is taken as lost:
    /// the RTO, and before any frame was acknowledged (no sample for it yet, so 200 ms) three
    /// times the first exchange's round trip, within the RTO's bounds. A live frame whose
    /// window filled as a progress report was lost otherwise waited 200 ms, past a 100 ms
    /// deadline (one first frame in five on a veth with 2% loss). Only this timeout: taken
    /// for the RTO itself, the exchange's round trip (an empty queue's) made reliable flows
    /// in start-up time out behind a standing queue.
    fn window_timeout(&self) -> Duration {
        match (self.rtt.smoothed(), self.exchange_rtt) {
            (None, Some(rtt)) => (rtt * 3).clamp(self.config.min_rto, self.rtt.rto()),
            _ => self.rtt.rto(),
        }
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

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }
}

/// `t - d`, or the epoch.
fn before(t: Timestamp, d: Duration) -> Timestamp {
    let d = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    Timestamp::from_micros(t.as_micros().saturating_sub(d))
}
