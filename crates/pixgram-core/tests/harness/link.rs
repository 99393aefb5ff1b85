//! Sender-receiver pairs through the network model, the clock jumping from event to event:
//! [`Link`] is one pair with an impaired way each direction; [`Shared`] is several pairs whose
//! forward datagrams share one impaired way (a common bottleneck), each pair's way back its
//! own. Both run the same step, [`step_flows`].

use std::net::SocketAddr;
use std::time::Duration;

use pixgram_core::wire;
use pixgram_core::Transmit;
use pixgram_core::{
    Receiver, ReceiverConfig, ReceiverEvent, Sender, SenderConfig, SenderEvent, SessionId,
    Timestamp,
};

use super::{earliest, ImpairConfig, Way};

/// A [`Net`] of the parts of a [`Link`] or [`Shared`] its pairs share.
macro_rules! net {
    ($s:expr) => {
        Net {
            now: &mut $s.now,
            forward: &mut $s.forward,
            buf: &mut $s.buf,
            forward_waits: &mut $s.forward_waits,
            largest_sent: &mut $s.largest_sent,
        }
    };
}

/// The sender's address as the receiver sees it.
pub const PEER: &str = "10.0.0.1:4000";

/// The address of the `i`-th pair's sender (the first is [`PEER`]).
fn pair_addr(i: usize) -> SocketAddr {
    format!("10.0.0.{}:4000", i + 1).parse().unwrap()
}

/// One sender, one receiver, an impaired way each direction.
pub struct Link {
    pub tx: Sender,
    pub rx: Receiver,
    /// Sender to receiver.
    pub forward: Way<usize>,
    /// Receiver to sender.
    pub back: Way<usize>,
    pub now: Timestamp,
    buf: Vec<u8>,
    peer: SocketAddr,
    /// Every event of each side so far, with when it was polled.
    pub tx_events: Vec<(Timestamp, SenderEvent)>,
    pub rx_events: Vec<(Timestamp, ReceiverEvent)>,
    /// Per datagram the forward way delivered: how long it waited in the bottleneck's queue
    /// (beyond the link's fixed delay and its own serialisation), microseconds.
    pub forward_waits: Vec<u32>,
    /// The largest datagram the sender emitted.
    pub largest_sent: usize,
    /// `None`: each step first moves the clock to the next event. `Some`: each step does what
    /// is due now, then moves the clock on by this much, whatever the endpoints' timers say
    /// (a driver polling on a fixed tick).
    pub tick: Option<Duration>,
}

impl Link {
    pub fn new(
        tx: SenderConfig,
        rx: ReceiverConfig,
        forward: ImpairConfig,
        back: ImpairConfig,
        seed: u64,
    ) -> Self {
        Link {
            buf: vec![0; wire::MAX_DATAGRAM_SIZE],
            tx: Sender::new(tx, SessionId(seed as u32 | 1)),
            rx: Receiver::new(rx),
            forward: Way::new(forward, seed),
            back: Way::new(back, seed ^ 0x5555),
            now: Timestamp::ZERO,
            peer: PEER.parse().unwrap(),
            tx_events: Vec::new(),
            rx_events: Vec::new(),
            forward_waits: Vec::new(),
            largest_sent: 0,
            tick: None,
        }
    }

    /// A link whose way back has the forward way's loss, delay and jitter (nothing else).
    pub fn symmetric(
        tx: SenderConfig,
        rx: ReceiverConfig,
        forward: ImpairConfig,
        seed: u64,
    ) -> Self {
        let back = ImpairConfig {
            loss: forward.loss,
            delay: forward.delay,
            jitter: forward.jitter,
            ..Default::default()
        };
        Link::new(tx, rx, forward, back, seed)
    }

    /// A default sender and receiver through [`bottleneck_ways`].
    pub fn bottleneck(mbit: f64, queue: Duration, one_way: Duration, loss: f64, seed: u64) -> Self {
        let (forward, back) = bottleneck_ways(mbit, queue, one_way, loss);
        Link::new(
            SenderConfig::default(),
            ReceiverConfig::default(),
            forward,
            back,
            seed,
        )
    }

    /// A link with `one_way` delay each way and nothing else, to a default receiver.
    pub fn clean(tx: SenderConfig, one_way: Duration, seed: u64) -> Self {
        let c = ImpairConfig {
            delay: one_way,
            ..Default::default()
        };
        Link::new(tx, ReceiverConfig::default(), c.clone(), c, seed)
    }

    /// The sender's address as the receiver sees it (default [`PEER`]).
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = peer;
        self
    }

    /// Moves every datagram that is ready, then advances the clock to the next event (no later
    /// than `until`), recording both sides' events.
    pub fn step(&mut self, until: Timestamp) {
        let mut flows = [Flow {
            tx: &mut self.tx,
            rx: &mut self.rx,
            peer: self.peer,
            back: &mut self.back,
            tx_events: &mut self.tx_events,
            rx_events: &mut self.rx_events,
        }];
        step_flows(&mut net!(self), &mut flows, until, self.tick);
    }

    /// [`Link::step`], returning (and no longer keeping) the events it produced.
    pub fn step_events(
        &mut self,
        until: Timestamp,
    ) -> (Vec<SenderEvent>, Vec<(Timestamp, ReceiverEvent)>) {
        self.step(until);
        let tx = self.tx_events.drain(..).map(|(_, e)| e).collect();
        (tx, std::mem::take(&mut self.rx_events))
    }

    /// Steps until `until` (bounded: every step moves the clock or drains something).
    pub fn run_until(&mut self, until: Timestamp) {
        for _ in 0..10_000_000u64 {
            if self.now >= until {
                return;
            }
            self.step(until);
        }
        panic!("simulation did not reach {until:?}");
    }

    pub fn acked(&self) -> usize {
        self.tx_events
            .iter()
            .filter(|(_, e)| matches!(e, SenderEvent::Acked { .. }))
            .count()
    }

    pub fn frames_whole(&self) -> usize {
        self.rx_events
            .iter()
            .filter(|(_, e)| matches!(e, ReceiverEvent::Frame(_)))
            .count()
    }
}

/// `p` (0..=1) quantile of `values`, or zero for none.
/// The two ways of a drop-tail bottleneck of `mbit` Mbit/s whose queue holds `queue` of
/// queueing delay (forward), with `one_way` delay and `loss` (random, before the queue) each
/// way.
pub fn bottleneck_ways(
    mbit: f64,
    queue: Duration,
    one_way: Duration,
    loss: f64,
) -> (ImpairConfig, ImpairConfig) {
    let forward = ImpairConfig {
        delay: one_way,
        loss,
        ..ImpairConfig::bottleneck((mbit * 1e6 / 8.0) as u64, queue)
    };
    let back = ImpairConfig {
        delay: one_way,
        loss,
        ..Default::default()
    };
    (forward, back)
}

pub fn quantile(values: &[u32], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    Duration::from_micros(u64::from(v[i]))
}

/// Several sender-receiver pairs whose forward datagrams share one impaired way (a common
/// bottleneck); each pair's way back is its own. The clock jumps from event to event.
pub struct Shared {
    pub flows: Vec<(Sender, Receiver)>,
    pub forward: Way<usize>,
    pub back: Vec<Way<usize>>,
    pub now: Timestamp,
    buf: Vec<u8>,
    peers: Vec<SocketAddr>,
    pub tx_events: Vec<Vec<(Timestamp, SenderEvent)>>,
    pub rx_events: Vec<Vec<(Timestamp, ReceiverEvent)>>,
    /// As [`Link::forward_waits`], all flows together.
    pub forward_waits: Vec<u32>,
    /// The largest datagram any sender emitted.
    pub largest_sent: usize,
}

impl Shared {
    pub fn new(tx: &[SenderConfig], forward: ImpairConfig, back: ImpairConfig, seed: u64) -> Self {
        let n = tx.len();
        Shared {
            buf: vec![0; wire::MAX_DATAGRAM_SIZE],
            flows: tx
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let session =
                        SessionId((seed as u32).wrapping_mul(31).wrapping_add(i as u32) | 1);
                    (
                        Sender::new(c.clone(), session),
                        Receiver::new(ReceiverConfig::default()),
                    )
                })
                .collect(),
            forward: Way::new(forward, seed),
            back: (0..n)
                .map(|i| Way::new(back.clone(), seed ^ (0x5555 + i as u64)))
                .collect(),
            now: Timestamp::ZERO,
            peers: (0..n).map(pair_addr).collect(),
            tx_events: vec![Vec::new(); n],
            rx_events: vec![Vec::new(); n],
            forward_waits: Vec::new(),
            largest_sent: 0,
        }
    }

    /// Moves every datagram that is ready (flows take turns, one datagram each, so no flow
    /// gets the link first by its place in the list), then advances the clock to the next
    /// event, no later than `until`.
    pub fn step(&mut self, until: Timestamp) {
        let mut flows: Vec<Flow<'_>> = self
            .flows
            .iter_mut()
            .zip(&mut self.back)
            .zip(self.tx_events.iter_mut().zip(&mut self.rx_events))
            .zip(&self.peers)
            .map(|((((tx, rx), back), (tx_events, rx_events)), &peer)| Flow {
                tx,
                rx,
                peer,
                back,
                tx_events,
                rx_events,
            })
            .collect();
        step_flows(&mut net!(self), &mut flows, until, None);
    }
}

/// One pair as a step sees it.
struct Flow<'a> {
    tx: &'a mut Sender,
    rx: &'a mut Receiver,
    /// The sender's address at the receiver.
    peer: SocketAddr,
    back: &'a mut Way<usize>,
    tx_events: &'a mut Vec<(Timestamp, SenderEvent)>,
    rx_events: &'a mut Vec<(Timestamp, ReceiverEvent)>,
}

/// What the pairs of a step share.
struct Net<'a> {
    now: &'a mut Timestamp,
    /// Senders to receivers, routed by pair index.
    forward: &'a mut Way<usize>,
    buf: &'a mut [u8],
    forward_waits: &'a mut Vec<u32>,
    largest_sent: &'a mut usize,
}

/// One step of every pair: the senders' datagrams into the forward way (taking turns, one
/// datagram each), the receivers' replies into their ways back (replies to any other address
/// vanish), the clock to the next event (no later than `until`; with a `tick`, on by it at the
/// end instead), what has arrived delivered,
/// both sides' timers, and their events recorded.
fn step_flows(net: &mut Net<'_>, flows: &mut [Flow<'_>], until: Timestamp, tick: Option<Duration>) {
    let now = *net.now;
    let mut active = vec![true; flows.len()];
    while active.iter().any(|&a| a) {
        for (i, on) in active.iter_mut().enumerate() {
            if !*on {
                continue;
            }
            let Some(t) = flows[i].tx.poll_transmit(now, net.buf) else {
                *on = false;
                continue;
            };
            *net.largest_sent = (*net.largest_sent).max(t.len);
            let fixed = net.forward.config().delay;
            // The datagram's own serialisation at a rate limit is service, not queueing.
            let service = net
                .forward
                .config()
                .rate
                .filter(|&r| r > 0)
                .map_or(Duration::ZERO, |r| {
                    Duration::from_micros(t.len as u64 * 1_000_000 / r)
                });
            let waits = &mut *net.forward_waits;
            net.forward.send_with(now, &net.buf[..t.len], i, |at| {
                let wait = at.saturating_since(now).saturating_sub(fixed + service);
                waits.push(wait.as_micros() as u32);
            });
        }
    }
    for f in flows.iter_mut() {
        while let Some(Transmit {
            destination: to,
            len,
        }) = f.rx.poll_transmit(net.buf)
        {
            if to == f.peer {
                f.back.send(now, &net.buf[..len], 0);
            }
        }
    }
    // Event-driven: the clock jumps to the next event first. Ticked: everything happens at
    // `now`, then the clock moves on by the tick.
    let now = match tick {
        Some(_) => now,
        None => {
            let next =
                earliest([net.forward.next_due(), Some(until)].into_iter().chain(
                    flows.iter().flat_map(|f| {
                        [f.back.next_due(), f.tx.poll_timeout(), f.rx.poll_timeout()]
                    }),
                ))
                .unwrap();
            now.max(next)
        }
    };
    *net.now = now;
    while let Some((i, d)) = net.forward.pop_due(now) {
        let f = &mut flows[i];
        f.rx.handle(now, f.peer, &d);
    }
    for f in flows.iter_mut() {
        while let Some((_, d)) = f.back.pop_due(now) {
            f.tx.handle(now, &d);
        }
    }
    for f in flows.iter_mut() {
        f.tx.handle_timeout(now);
        f.rx.handle_timeout(now);
        while let Some(e) = f.tx.poll_event() {
            f.tx_events.push((now, e));
        }
        while let Some(e) = f.rx.poll_event() {
            f.rx_events.push((now, e));
        }
    }
    if let Some(tick) = tick {
        *net.now = (now + tick).min(until).max(now);
    }
}
