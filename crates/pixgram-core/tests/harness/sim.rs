//! A deterministic simulated network: several [`Sender`]s and one [`Receiver`] joined by two
//! seeded [`Way`]s of the network model (sender to receiver, receiver to sender).
//!
//! The clock is event driven: `now` jumps to the earliest of the next datagram due, the
//! receiver's and every sender's `poll_timeout`, and the next application send. After every
//! input (`send`, `handle`, `handle_timeout`) the endpoint is drained (`poll_transmit` and
//! `poll_event` until `None`), as the crate's contract says. Everything the endpoints report is
//! recorded, and the invariants every scenario must keep are checked as events happen (bytes
//! delivered identical to bytes sent, order, amplification, memory) and at the end
//! ([`Sim::check_invariants`]).
//!
//! Every loop is bounded: by steps, by steps at one instant (a livelock), by simulated time, and
//! by datagrams per drain. Exceeding a bound panics with the scenario's label (and seed).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use pixgram_core::chunking::ChunkLayout;
use pixgram_core::wire::{self, DataHeader, Datagram};
use pixgram_core::Transmit;
use pixgram_core::{
    FrameId, LossReason, OutgoingFrame, PayloadKind, ReceivedFrame, Receiver, ReceiverConfig,
    ReceiverEvent, SendError, SendFailure, Sender, SenderConfig, SenderEvent, SessionId, StreamId,
    Timestamp,
};

use super::{ImpairConfig, SimRng, Way};

/// Larger than any datagram either side may emit.
const BUF_LEN: usize = wire::MAX_DATAGRAM_SIZE;
/// Most datagrams one drain of one endpoint may produce before we call it a runaway.
const MAX_DRAIN: usize = 1_000_000;
/// Most iterations of the event loop at one simulated instant before we call it a livelock.
const MAX_SAME_INSTANT: u64 = 100_000;

/// The address of the `i`-th simulated sender.
pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from((
        [10, 0, (i / 250) as u8, (i % 250) as u8 + 1],
        4000 + i as u16,
    ))
}

/// Bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Iterations of the event loop.
    pub max_steps: u64,
    /// Simulated time.
    pub max_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 2_000_000,
            max_time: Duration::from_secs(120),
        }
    }
}

/// A frame the application will submit, not before `at`.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Earliest submission time.
    pub at: Timestamp,
    /// The frame.
    pub frame: OutgoingFrame,
}

/// A verdict the sender reported, and when.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The event (`Acked` or `Lost`).
    pub event: SenderEvent,
    /// When it was polled.
    pub at: Timestamp,
}

/// One honest sender and its application.
pub struct Peer {
    /// Its source address.
    pub addr: SocketAddr,
    /// The sans-IO sender.
    pub sender: Sender,
    /// Frames not yet submitted, per stream, in submission order.
    queues: BTreeMap<StreamId, VecDeque<Planned>>,
    /// Every frame submitted, by stream and the id `send` returned, with when it was submitted.
    pub sent: BTreeMap<(StreamId, FrameId), (OutgoingFrame, Timestamp)>,
    /// Verdicts per frame.
    pub verdicts: BTreeMap<(StreamId, FrameId), Vec<Verdict>>,
    /// When `PeerGone` was reported.
    pub peer_gone: Vec<Timestamp>,
    /// When the last valid reply (ACK or NACK for its session) reached it.
    pub last_reply: Option<Timestamp>,
    /// Send CLOSE once every frame is settled.
    pub close_when_done: bool,
    closed: bool,
    /// Frames at least one DATA chunk of which left the sender (none does before the first
    /// exchange succeeded).
    pub emitted: HashSet<(StreamId, FrameId)>,
}

impl Peer {
    fn app_done(&self) -> bool {
        self.queues.values().all(VecDeque::is_empty)
    }
}

/// What the receiver reported about one frame.
#[derive(Debug, Default, Clone)]
pub struct RxRecord {
    /// Deliveries (must be 0 or 1).
    pub delivered: u32,
    /// Loss reports, one per `Lost` event covering the frame.
    pub lost: Vec<LossReason>,
}

/// The simulation.
pub struct Sim {
    /// Scenario name and seed, prefixed to every failure.
    pub label: String,
    /// Simulated time.
    pub now: Timestamp,
    /// The receiver.
    pub receiver: Receiver,
    /// The honest senders.
    pub peers: Vec<Peer>,
    /// Sender-to-receiver link.
    pub up: Way<SocketAddr>,
    /// Receiver-to-sender link.
    pub down: Way<SocketAddr>,
    limits: Limits,
    steps: u64,
    buf: Vec<u8>,
    /// Every frame the receiver delivered, in delivery order.
    pub delivered: Vec<ReceivedFrame>,
    /// Per (source, stream, frame): what the receiver reported.
    pub rx: HashMap<(SocketAddr, StreamId, FrameId), RxRecord>,
    /// `Lost` ranges reported for sources that are not honest peers (not expanded: a hostile
    /// sender can make them astronomically long).
    pub foreign_lost: u64,
    /// Frames of which at least one intact DATA chunk reached the receiver.
    pub seen: HashSet<(SocketAddr, StreamId, FrameId)>,
    /// Frames whose chunks reached the receiver before their session was validated: seen if
    /// the receiver hands them to the session when its HELLO follows.
    early: Vec<(SocketAddr, StreamId, FrameId)>,
    /// Bytes handed to `Receiver::handle`, per source.
    pub bytes_in: HashMap<SocketAddr, u64>,
    /// Bytes the receiver emitted, per destination.
    pub bytes_out: HashMap<SocketAddr, u64>,
    /// Highest `buffered_bytes` observed.
    pub max_buffered: u64,
    /// `SessionStarted` and `SessionEnded` events.
    pub sessions_started: Vec<(SocketAddr, SessionId)>,
    /// `SessionEnded` events.
    pub sessions_ended: Vec<(SocketAddr, SessionId)>,
    /// Last frame delivered per ordered stream.
    last_ordered: HashMap<(SocketAddr, StreamId), FrameId>,
    /// Print every event (set `PIXGRAM_SIM_TRACE=1` to debug a failing seed).
    trace: bool,
}

impl Sim {
    /// A simulation with one impairment per direction, seeded from `seed`.
    pub fn new(
        label: impl Into<String>,
        seed: u64,
        uplink: ImpairConfig,
        downlink: ImpairConfig,
        receiver: ReceiverConfig,
    ) -> Self {
        Sim {
            label: format!("[{} seed {seed}]", label.into()),
            now: Timestamp::ZERO,
            receiver: Receiver::new(receiver),
            peers: Vec::new(),
            up: Way::new(uplink, seed ^ 0x5555_0000_0000_0001),
            down: Way::new(downlink, seed ^ 0xAAAA_0000_0000_0002),
            limits: Limits::default(),
            steps: 0,
            buf: vec![0; BUF_LEN],
            delivered: Vec::new(),
            rx: HashMap::new(),
            foreign_lost: 0,
            seen: HashSet::new(),
            early: Vec::new(),
            bytes_in: HashMap::new(),
            bytes_out: HashMap::new(),
            max_buffered: 0,
            sessions_started: Vec::new(),
            sessions_ended: Vec::new(),
            last_ordered: HashMap::new(),
            trace: std::env::var_os("PIXGRAM_SIM_TRACE").is_some(),
        }
    }

    /// Replaces the run's bounds.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Adds an honest sender at `addr(index)` that will submit `plan` (in order per stream).
    pub fn add_peer(&mut self, config: SenderConfig, session: SessionId, plan: Vec<Planned>) {
        let index = self.peers.len();
        let mut queues: BTreeMap<StreamId, VecDeque<Planned>> = BTreeMap::new();
        for p in plan {
            queues.entry(p.frame.stream).or_default().push_back(p);
        }
        self.peers.push(Peer {
            addr: addr(index),
            sender: Sender::new(config, session),
            queues,
            sent: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            peer_gone: Vec::new(),
            last_reply: None,
            close_when_done: false,
            closed: false,
            emitted: HashSet::new(),
        });
    }

    /// Schedules a raw datagram from `from` to reach the receiver at `at`, bypassing the
    /// impairment (hostile or hand-made traffic).
    pub fn inject(&mut self, at: Timestamp, from: SocketAddr, bytes: Vec<u8>) {
        self.up.inject(at, from, bytes);
    }

    fn peer_index(&self, a: SocketAddr) -> Option<usize> {
        self.peers.iter().position(|p| p.addr == a)
    }

    /// Runs until nothing is left to do: every datagram delivered or dropped, every frame
    /// submitted and settled, the receiver serving nobody.
    pub fn run(&mut self) {
        self.run_until(|_| false);
    }

    /// Runs until `stop` says so after a step, or until nothing is left to do.
    pub fn run_until(&mut self, mut stop: impl FnMut(&Sim) -> bool) {
        let mut same_instant = 0u64;
        loop {
            self.steps += 1;
            assert!(
                self.steps <= self.limits.max_steps,
                "{} more than {} event-loop steps (now {:?}): the run does not converge",
                self.label,
                self.limits.max_steps,
                self.now
            );
            self.step();
            if stop(self) {
                return;
            }
            let Some(next) = self.next_event() else {
                return;
            };
            if next > self.now {
                self.now = next;
                same_instant = 0;
            } else {
                same_instant += 1;
                assert!(
                    same_instant < MAX_SAME_INSTANT,
                    "{} livelock: {same_instant} steps at {:?} without time moving \
                     (receiver timeout {:?}, sender timeouts {:?})",
                    self.label,
                    self.now,
                    self.receiver.poll_timeout(),
                    self.peers
                        .iter()
                        .map(|p| p.sender.poll_timeout())
                        .collect::<Vec<_>>()
                );
            }
            assert!(
                self.now.as_micros() <= self.limits.max_time.as_micros() as u64,
                "{} simulated time exceeded {:?}: the run does not converge \
                 (receiver peers {}, frames in flight {:?})",
                self.label,
                self.limits.max_time,
                self.receiver.peer_count(),
                self.peers
                    .iter()
                    .map(|p| p.sender.in_flight())
                    .collect::<Vec<_>>()
            );
        }
    }

    /// The earliest instant at which something happens.
    fn next_event(&self) -> Option<Timestamp> {
        let mut next: Option<Timestamp> = None;
        let mut consider = |t: Option<Timestamp>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.up.next_due());
        consider(self.down.next_due());
        consider(self.receiver.poll_timeout());
        for p in &self.peers {
            consider(p.sender.poll_timeout());
            for (stream, q) in &p.queues {
                if let Some(head) = q.front() {
                    if head.at > self.now {
                        consider(Some(head.at));
                    } else if p.sender.can_send(*stream) {
                        consider(Some(self.now));
                    }
                }
            }
            if p.close_when_done && !p.closed && p.app_done() && p.sender.in_flight() == 0 {
                consider(Some(self.now));
            }
        }
        next
    }

    /// Everything due at `now`.
    fn step(&mut self) {
        let now = self.now;
        while let Some((from, bytes)) = self.up.pop_due(now) {
            let (unvalidated, used) = {
                let s = self.receiver.stats();
                (s.unvalidated, s.early_data_used)
            };
            *self.bytes_in.entry(from).or_default() += bytes.len() as u64;
            if self.trace {
                match wire::parse(&bytes) {
                    Ok(Datagram::Data(h, _)) => eprintln!(
                        "{now:?} rx <- {from} data {:?}/{:?} chunk {}/{}",
                        h.stream, h.frame, h.index.0, h.count
                    ),
                    other => eprintln!("{now:?} rx <- {from} {other:?}"),
                }
            }
            self.receiver.handle(now, from, &bytes);
            // Seen: a chunk that reached a session the receiver holds (DATA from an address
            // not validated, its HELLO lost, is answered with a CHALLENGE and dropped).
            if let Ok(Datagram::Data(h, _)) = wire::parse(&bytes) {
                if self.receiver.stats().unvalidated == unvalidated {
                    self.seen.insert((from, h.stream, h.frame));
                } else {
                    self.early.push((from, h.stream, h.frame));
                }
            }
            if self.receiver.stats().early_data_used > used {
                // The HELLO came: the chunks from `from` held meanwhile reached the session.
                let (mine, rest) = self.early.drain(..).partition(|k| k.0 == from);
                self.early = rest;
                self.seen.extend(mine);
            }
            self.drain_receiver();
        }
        while let Some((to, bytes)) = self.down.pop_due(now) {
            // Replies to addresses that are not honest senders (hostile ones) vanish.
            if let Some(i) = self.peer_index(to) {
                let p = &mut self.peers[i];
                let session = p.sender.session();
                if wire::parse(&bytes).is_ok_and(|d| {
                    d.session() == session && matches!(d, Datagram::Ack(_) | Datagram::Nack(_))
                }) {
                    p.last_reply = Some(now);
                }
                p.sender.handle(now, &bytes);
                self.drain_sender(i);
            }
        }
        if self.receiver.poll_timeout().is_some_and(|t| t <= now) {
            self.receiver.handle_timeout(now);
            self.drain_receiver();
        }
        for i in 0..self.peers.len() {
            if self.peers[i]
                .sender
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.peers[i].sender.handle_timeout(now);
                self.drain_sender(i);
            }
            self.app_submit(i);
            let p = &mut self.peers[i];
            if p.close_when_done && !p.closed && p.app_done() && p.sender.in_flight() == 0 {
                p.closed = true;
                p.sender.close();
                self.drain_sender(i);
            }
        }
    }

    /// The application of peer `i` submits every due frame its windows allow.
    fn app_submit(&mut self, i: usize) {
        let now = self.now;
        let streams: Vec<StreamId> = self.peers[i].queues.keys().copied().collect();
        for stream in streams {
            loop {
                let p = &mut self.peers[i];
                let Some(head) = p.queues.get(&stream).and_then(VecDeque::front) else {
                    break;
                };
                if head.at > now {
                    break;
                }
                let frame = head.frame.clone();
                let label = &self.label;
                match p.sender.send(now, frame) {
                    Ok(id) => {
                        let expected = p.sent.keys().filter(|(s, _)| *s == stream).count();
                        assert_eq!(
                            id,
                            FrameId(expected as u64),
                            "{label} frame ids must count from 0 by one"
                        );
                        let planned = p.queues.get_mut(&stream).and_then(VecDeque::pop_front);
                        p.sent
                            .insert((stream, id), (planned.expect("head").frame, now));
                    }
                    Err(SendError::WindowFull) => {
                        assert!(
                            !p.sender.can_send(stream),
                            "{label} WindowFull but can_send"
                        );
                        break;
                    }
                    Err(e) => panic!("{label} send refused: {e}"),
                }
                // The contract: drain after every input.
                self.drain_sender(i);
            }
        }
    }

    fn drain_sender(&mut self, i: usize) {
        drain_sender_parts(
            &self.label,
            self.now,
            &mut self.peers[i],
            &mut self.up,
            &mut self.buf,
        );
    }

    fn drain_receiver(&mut self) {
        let now = self.now;
        for n in 0.. {
            assert!(
                n < MAX_DRAIN,
                "{} receiver poll_transmit never ends",
                self.label
            );
            let Some(Transmit {
                destination: dst,
                len,
            }) = self.receiver.poll_transmit(&mut self.buf)
            else {
                break;
            };
            assert!(
                wire::parse(&self.buf[..len]).is_ok(),
                "{} receiver emitted an invalid datagram",
                self.label
            );
            let out = self.bytes_out.entry(dst).or_default();
            *out += len as u64;
            let got = self.bytes_in.get(&dst).copied().unwrap_or(0);
            assert!(
                *out <= got,
                "{} amplification: receiver sent {} bytes to {dst} but got only {got} from it",
                self.label,
                *out
            );
            self.down.send(now, &self.buf[..len], dst);
        }
        let mut n = 0;
        while let Some(e) = self.receiver.poll_event() {
            n += 1;
            assert!(
                n < MAX_DRAIN,
                "{} receiver poll_event never ends",
                self.label
            );
            self.on_receiver_event(e);
        }
        let buffered = self.receiver.buffered_bytes();
        self.max_buffered = self.max_buffered.max(buffered);
        assert!(
            buffered <= self.receiver.config().max_total_bytes,
            "{} receiver buffers {buffered} bytes, over max_total_bytes {}",
            self.label,
            self.receiver.config().max_total_bytes
        );
    }

    fn on_receiver_event(&mut self, e: ReceiverEvent) {
        let label = &self.label;
        if self.trace {
            match &e {
                ReceiverEvent::Frame(f) => eprintln!(
                    "{:?} rx delivered {} {:?}/{:?} ({} bytes)",
                    self.now,
                    f.peer,
                    f.stream,
                    f.frame,
                    f.payload.len()
                ),
                other => eprintln!("{:?} rx {other:?}", self.now),
            }
        }
        match e {
            ReceiverEvent::SessionStarted { peer, session } => {
                self.sessions_started.push((peer, session));
            }
            ReceiverEvent::SessionEnded { peer, session, .. } => {
                self.sessions_ended.push((peer, session));
            }
            ReceiverEvent::Frame(f) => {
                let key = (f.peer, f.stream, f.frame);
                let rec = self.rx.entry(key).or_default();
                rec.delivered += 1;
                let times = rec.delivered;
                if let Some(i) = self.peer_index(f.peer) {
                    assert_eq!(times, 1, "{label} frame {key:?} delivered twice");
                    let p = &self.peers[i];
                    assert_eq!(
                        f.session,
                        p.sender.session(),
                        "{label} {key:?} wrong session"
                    );
                    let Some((sent, _)) = p.sent.get(&(f.stream, f.frame)) else {
                        panic!("{label} delivered {key:?} that was never sent");
                    };
                    assert_eq!(f.kind, sent.kind, "{label} {key:?} kind");
                    assert!(
                        f.payload[..] == sent.payload[..],
                        "{label} {key:?} payload differs: {} bytes delivered, {} sent",
                        f.payload.len(),
                        sent.payload.len()
                    );
                    assert_eq!(
                        f.metadata.as_deref(),
                        sent.metadata.as_deref(),
                        "{label} {key:?} metadata differs"
                    );
                    assert!(
                        f.first_chunk_at <= f.completed_at && f.completed_at <= self.now,
                        "{label} {key:?} timestamps"
                    );
                    if sent.ordered {
                        let last = self.last_ordered.insert((f.peer, f.stream), f.frame);
                        assert!(
                            last.is_none_or(|l| l < f.frame),
                            "{label} ordered stream {:?} delivered {:?} after {last:?}",
                            f.stream,
                            f.frame
                        );
                    }
                }
                self.delivered.push(f);
            }
            ReceiverEvent::Lost {
                peer,
                stream,
                first,
                count,
                reason,
                ..
            } => {
                assert!(count > 0, "{label} empty Lost range");
                let Some(i) = self.peer_index(peer) else {
                    self.foreign_lost = self.foreign_lost.saturating_add(count);
                    return;
                };
                let sent_on_stream = self.peers[i]
                    .sent
                    .keys()
                    .filter(|(s, _)| *s == stream)
                    .count() as u64;
                assert!(
                    first
                        .0
                        .checked_add(count)
                        .is_some_and(|end| end <= sent_on_stream),
                    "{label} Lost {first:?}+{count} on {stream:?} beyond the {sent_on_stream} \
                     frames sent"
                );
                for k in 0..count {
                    let key = (peer, stream, FrameId(first.0 + k));
                    self.rx.entry(key).or_default().lost.push(reason);
                }
            }
        }
    }

    /// Chunks of the frame a sender would cut `frame` into.
    pub fn chunk_count(&self, peer: usize, frame: &OutgoingFrame) -> u32 {
        let meta = frame.metadata.as_ref().map_or(0, |m| 4 + m.len() as u64);
        let cap = self.peers[peer].sender.config().datagram_size - wire::DATA_OVERHEAD;
        ChunkLayout::for_frame(meta + frame.payload.len() as u64, cap)
            .expect("layout")
            .count()
    }

    /// The invariants of every finished run, whatever the impairment.
    pub fn check_invariants(&self) {
        let label = &self.label;
        let ist = self.up.stats();
        let mut unseen_chunks = 0u64;
        for (pi, p) in self.peers.iter().enumerate() {
            assert!(p.app_done(), "{label} peer {pi} did not submit everything");
            assert_eq!(
                p.sender.in_flight(),
                0,
                "{label} peer {pi} has frames in flight"
            );
            for (&(stream, frame), (sent, _)) in &p.sent {
                let key = (p.addr, stream, frame);
                let verdicts = p.verdicts.get(&(stream, frame)).map_or(&[][..], |v| &v[..]);
                assert_eq!(
                    verdicts.len(),
                    1,
                    "{label} {key:?} got {} sender verdicts: {verdicts:?}",
                    verdicts.len()
                );
                let rec = self.rx.get(&key).cloned().unwrap_or_default();
                let reports = rec.delivered as usize + rec.lost.len();
                if self.seen.contains(&key) {
                    assert_eq!(
                        reports, 1,
                        "{label} {key:?} reached the receiver; it must be delivered or \
                         reported lost exactly once, got {rec:?}"
                    );
                } else {
                    if p.emitted.contains(&(stream, frame)) {
                        unseen_chunks += u64::from(self.chunk_count(pi, sent));
                    }
                    assert_eq!(rec.delivered, 0, "{label} {key:?} delivered but never seen");
                    assert!(
                        rec.lost.iter().all(|r| *r == LossReason::NeverSeen) && reports <= 1,
                        "{label} {key:?} never reached the receiver yet reported {rec:?}"
                    );
                }
                match &verdicts[0].event {
                    SenderEvent::Acked { .. } => assert_eq!(
                        rec.delivered, 1,
                        "{label} {key:?} acknowledged to the sender but not delivered: {rec:?}"
                    ),
                    SenderEvent::Lost { reason, .. } => {
                        let want = if *reason == SendFailure::Expired {
                            Some(LossReason::Expired)
                        } else if *reason == SendFailure::Rejected {
                            Some(LossReason::Rejected)
                        } else {
                            None
                        };
                        if let Some(want) = want {
                            assert!(
                                rec.lost.contains(&want),
                                "{label} {key:?} sender says {reason:?}, receiver {rec:?}"
                            );
                        }
                        // Reliable frames are given up only with the receiver.
                        assert!(
                            !sent.reliable || *reason == SendFailure::PeerGone,
                            "{label} reliable {key:?} lost: {reason:?}"
                        );
                    }
                    _ => unreachable!("only verdicts are recorded"),
                }
            }
        }
        // A frame never seen lost every chunk on the way: the impairment must have dropped,
        // corrupted or truncated at least that many datagrams.
        let spoiled = ist.dropped_random
            + ist.dropped_burst
            + ist.dropped_queue
            + ist.corrupted
            + ist.truncated
            + self.receiver.stats().unvalidated;
        assert!(
            unseen_chunks <= spoiled,
            "{label} {unseen_chunks} chunks of never-seen frames, but the link spoiled only \
             {spoiled} datagrams"
        );
        let st = self.receiver.stats();
        let honest_delivered = self
            .delivered
            .iter()
            .filter(|f| self.peer_index(f.peer).is_some())
            .count() as u64;
        assert!(
            st.frames_delivered + st.messages_delivered >= honest_delivered,
            "{label} stats"
        );
        assert_eq!(
            st.frames_delivered + st.messages_delivered,
            self.delivered.len() as u64,
            "{label} delivery counters disagree with events"
        );
        for (a, out) in &self.bytes_out {
            assert!(
                *out <= self.bytes_in.get(a).copied().unwrap_or(0),
                "{label} amplification towards {a}"
            );
        }
        assert_eq!(
            self.receiver.buffered_bytes(),
            0,
            "{label} receiver still buffers bytes at the end"
        );
        assert_eq!(
            self.receiver.peer_count(),
            0,
            "{label} receiver still serves peers"
        );
        assert!(self.up.is_empty() && self.down.is_empty());
    }

    /// Frames sent and delivered by honest peers, for summaries.
    pub fn totals(&self) -> (usize, usize, usize) {
        let sent: usize = self.peers.iter().map(|p| p.sent.len()).sum();
        let acked: usize = self
            .peers
            .iter()
            .flat_map(|p| p.verdicts.values())
            .filter(|v| matches!(v[0].event, SenderEvent::Acked { .. }))
            .count();
        let delivered = self
            .delivered
            .iter()
            .filter(|f| self.peer_index(f.peer).is_some())
            .count();
        (sent, acked, delivered)
    }
}

/// Drains one sender: its datagrams into the uplink impairment, its events into the records.
fn drain_sender_parts(
    label: &str,
    now: Timestamp,
    p: &mut Peer,
    up: &mut Way<SocketAddr>,
    buf: &mut [u8],
) {
    for n in 0.. {
        assert!(n < MAX_DRAIN, "{label} sender poll_transmit never ends");
        let Some(t) = p.sender.poll_transmit(now, buf) else {
            break;
        };
        assert!(
            t.len <= p.sender.config().datagram_size,
            "{label} datagram of {} bytes, over datagram_size",
            t.len
        );
        match wire::parse(&buf[..t.len]) {
            Ok(Datagram::Data(h, _)) => {
                p.emitted.insert((h.stream, h.frame));
            }
            Ok(_) => {}
            Err(e) => panic!("{label} sender emitted an invalid datagram: {e}"),
        }
        up.send(now, &buf[..t.len], p.addr);
    }
    let mut n = 0;
    let trace = std::env::var_os("PIXGRAM_SIM_TRACE").is_some();
    while let Some(e) = p.sender.poll_event() {
        if trace {
            eprintln!("{now:?} tx {} {e:?}", p.addr);
        }
        n += 1;
        assert!(n < MAX_DRAIN, "{label} sender poll_event never ends");
        if let SenderEvent::Acked { stream, frame, .. } | SenderEvent::Lost { stream, frame, .. } =
            &e
        {
            assert!(
                p.sent.contains_key(&(*stream, *frame)),
                "{label} verdict {e:?} for a frame never sent"
            );
            let v = p.verdicts.entry((*stream, *frame)).or_default();
            v.push(Verdict { event: e, at: now });
            assert_eq!(v.len(), 1, "{label} second verdict: {v:?}");
        } else if e == SenderEvent::PeerGone {
            // Only after peer_timeout without a reply.
            let timeout = p.sender.config().peer_timeout;
            assert!(
                p.last_reply
                    .is_none_or(|t| now.saturating_since(t) >= timeout),
                "{label} PeerGone at {now:?}, but a reply arrived at {:?}",
                p.last_reply
            );
            p.peer_gone.push(now);
        }
    }
}

/// Pseudo-random bytes.
pub fn bytes(rng: &mut SimRng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// What kinds of frames a plan holds.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Unordered, unreliable images on stream 1.
    pub images: bool,
    /// Ordered, unreliable frames on stream 2.
    pub ordered_frames: bool,
    /// Reliable, ordered JSON messages on stream 0.
    pub messages: bool,
    /// Reliable, unordered frames on stream 3.
    pub reliable_frames: bool,
    /// Allow ~300 KB frames.
    pub huge: bool,
}

impl Mix {
    /// Every kind of frame.
    pub const ALL: Mix = Mix {
        images: true,
        ordered_frames: true,
        messages: true,
        reliable_frames: true,
        huge: true,
    };
    /// Unreliable frames only (the protocol's lossy mode).
    pub const UNRELIABLE: Mix = Mix {
        images: true,
        ordered_frames: true,
        messages: false,
        reliable_frames: false,
        huge: true,
    };
}

/// `n` frames of pseudo-random content and sizes: 0 bytes, 1 byte, exactly one chunk, one byte
/// more than a chunk, many chunks, and (when `mix.huge`) about 300 KB; some with metadata; the
/// application submits them `0..=spacing` apart.
pub fn plan(
    rng: &mut SimRng,
    n: usize,
    datagram_size: usize,
    mix: Mix,
    spacing: Duration,
) -> Vec<Planned> {
    let cap = datagram_size - wire::DATA_OVERHEAD;
    let mut kinds = Vec::new();
    if mix.images {
        kinds.push(1u32);
    }
    if mix.ordered_frames {
        kinds.push(2);
    }
    if mix.messages {
        kinds.push(0);
    }
    if mix.reliable_frames {
        kinds.push(3);
    }
    assert!(!kinds.is_empty());
    let mut at = Timestamp::ZERO;
    let mut out = Vec::with_capacity(n);
    let mut huge_left = 2;
    for i in 0..n {
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let metadata = (kind != 0 && rng.chance(0.3)).then(|| {
            let len = rng.below(120) as usize;
            let mut m = br#"{"file":""#.to_vec();
            m.extend(bytes(rng, len).iter().map(|b| b'a' + b % 26));
            m.extend_from_slice(br#""}"#);
            if rng.chance(0.1) {
                m.clear(); // empty metadata is legal too
            }
            m
        });
        let meta_len = metadata.as_ref().map_or(0, |m| 4 + m.len());
        // Sizes of the body; the payload is the body minus the metadata.
        let pick = if i < 6 { i as u64 } else { rng.below(12) };
        let body = match pick {
            0 => 0,
            1 => 1,
            2 => cap,
            3 => cap + 1,
            5 if mix.huge && huge_left > 0 => {
                huge_left -= 1;
                300_000 + rng.below(2000) as usize
            }
            4..=7 => cap * (2 + rng.below(30) as usize) + rng.below(cap as u64) as usize,
            _ => rng.below(3 * cap as u64) as usize,
        };
        let payload_len = body.saturating_sub(meta_len);
        let payload = if kind == 0 {
            // A JSON message: its bytes are text; the core does not parse them.
            let mut m = format!(r#"{{"seq":{i},"pad":""#).into_bytes();
            m.extend(
                bytes(rng, payload_len.min(5000))
                    .iter()
                    .map(|b| b'0' + b % 10),
            );
            m.extend_from_slice(b"\"}");
            m
        } else {
            bytes(rng, payload_len)
        };
        let stream = StreamId(kind);
        let mut frame = match kind {
            0 => OutgoingFrame::message(stream, payload),
            1 => OutgoingFrame::frame(stream, payload),
            2 => OutgoingFrame::frame(stream, payload).ordered(true),
            _ => OutgoingFrame::frame(stream, payload).reliable(true),
        };
        if let Some(m) = metadata {
            frame = frame.with_metadata(m);
        }
        assert_eq!(frame.kind == PayloadKind::Message, kind == 0);
        at = at + Duration::from_micros(rng.below(spacing.as_micros() as u64 + 1));
        out.push(Planned { at, frame });
    }
    out
}

/// A valid DATA header as a real sender writes it (an empty frame, stream 1, frame 0), to build
/// hand-made headers from with struct-update syntax: fields added to the header later keep
/// the sender's defaults.
pub fn base_header() -> DataHeader {
    let mut tx = Sender::new(SenderConfig::default(), SessionId(1));
    tx.send(
        Timestamp::ZERO,
        OutgoingFrame::frame(StreamId(1), Vec::new()),
    )
    .expect("empty frame");
    let mut buf = vec![0u8; BUF_LEN];
    // A CHALLENGE as the receiver would send (the sender sends the token back unchecked).
    let challenge = wire::Challenge {
        session: SessionId(1),
        answered_len: 64,
        token: [0; wire::TOKEN_LEN],
    };
    let n = wire::emit_challenge(&mut buf, &challenge);
    tx.handle(Timestamp::ZERO, &buf[..n]);
    let len = loop {
        let t = tx
            .poll_transmit(Timestamp::ZERO, &mut buf)
            .expect("one DATA datagram after the HELLOs");
        if !matches!(wire::parse(&buf[..t.len]), Ok(Datagram::Hello(_))) {
            break t.len;
        }
    };
    match wire::parse(&buf[..len]) {
        Ok(Datagram::Data(h, _)) => h,
        other => panic!("sender wrote {other:?}"),
    }
}
