//! One sender, one receiver, an impaired link each way, and a clock that jumps from event to
//! event: the two-endpoint simulator of `delivery_modes.rs` and `congestion.rs`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use pixgram_core::impair::{DelayLine, ImpairConfig, Impairment};
use pixgram_core::{
    Receiver, ReceiverConfig, ReceiverEvent, Sender, SenderConfig, SenderEvent, SessionId,
    Timestamp,
};

/// The sender's address as the receiver sees it.
pub const PEER: &str = "10.0.0.1:4000";

pub struct Link {
    pub tx: Sender,
    pub rx: Receiver,
    pub forward: Impairment,
    pub back: Impairment,
    to_rx: DelayLine<Vec<u8>>,
    to_tx: DelayLine<Vec<u8>>,
    pub now: Timestamp,
    buf: Vec<u8>,
    scratch: Vec<(Timestamp, Vec<u8>)>,
    peer: SocketAddr,
    /// Every event of each side so far, with when it was polled.
    pub tx_events: Vec<(Timestamp, SenderEvent)>,
    pub rx_events: Vec<(Timestamp, ReceiverEvent)>,
    /// Per datagram the forward way delivered: how long it waited in the bottleneck's queue
    /// (beyond the link's fixed delay and its own serialisation), microseconds.
    pub forward_waits: Vec<u32>,
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
            buf: vec![0; tx.datagram_size.max(pixgram_core::MAX_REPLY_LEN)],
            tx: Sender::new(tx, SessionId(seed as u32 | 1)),
            rx: Receiver::new(rx),
            forward: Impairment::new(forward, seed),
            back: Impairment::new(back, seed ^ 0x5555),
            to_rx: DelayLine::new(),
            to_tx: DelayLine::new(),
            now: Timestamp::ZERO,
            scratch: Vec::new(),
            peer: PEER.parse().unwrap(),
            tx_events: Vec::new(),
            rx_events: Vec::new(),
            forward_waits: Vec::new(),
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

    /// A link with `one_way` delay each way and nothing else, to a default receiver.
    pub fn clean(tx: SenderConfig, one_way: Duration, seed: u64) -> Self {
        let c = ImpairConfig {
            delay: one_way,
            ..Default::default()
        };
        Link::new(tx, ReceiverConfig::default(), c.clone(), c, seed)
    }

    /// Moves every datagram that is ready, then advances the clock to the next event (no later
    /// than `until`), recording both sides' events.
    pub fn step(&mut self, until: Timestamp) {
        while let Some(t) = self.tx.poll_transmit(self.now, &mut self.buf) {
            self.forward
                .apply(self.now, &self.buf[..t.len], &mut self.scratch);
            let fixed = self.forward.config().delay;
            // The datagram's own serialisation at a rate limit is service, not queueing.
            let service = self
                .forward
                .config()
                .rate
                .filter(|&r| r > 0)
                .map_or(Duration::ZERO, |r| {
                    Duration::from_micros(t.len as u64 * 1_000_000 / r)
                });
            for (at, d) in self.scratch.drain(..) {
                let wait = at
                    .saturating_since(self.now)
                    .saturating_sub(fixed + service);
                self.forward_waits.push(wait.as_micros() as u32);
                self.to_rx.push(at, d);
            }
        }
        while let Some((_, len)) = self.rx.poll_transmit(&mut self.buf) {
            self.back
                .apply(self.now, &self.buf[..len], &mut self.scratch);
            for (at, d) in self.scratch.drain(..) {
                self.to_tx.push(at, d);
            }
        }
        let next = [
            self.to_rx.next_due(),
            self.to_tx.next_due(),
            self.tx.poll_timeout(),
            self.rx.poll_timeout(),
            Some(until),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap();
        self.now = self.now.max(next);
        while let Some((_, d)) = self.to_rx.pop_due(self.now) {
            self.rx.handle(self.now, self.peer, &d);
        }
        while let Some((_, d)) = self.to_tx.pop_due(self.now) {
            self.tx.handle(self.now, &d);
        }
        self.tx.handle_timeout(self.now);
        self.rx.handle_timeout(self.now);
        let now = self.now;
        while let Some(e) = self.tx.poll_event() {
            self.tx_events.push((now, e));
        }
        while let Some(e) = self.rx.poll_event() {
            self.rx_events.push((now, e));
        }
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
pub fn quantile(values: &[u32], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    Duration::from_micros(u64::from(v[i]))
}

/// Several sender-receiver pairs whose forward datagrams share one impaired link (a common
/// bottleneck); each pair's way back is its own. The clock jumps from event to event.
pub struct Shared {
    pub flows: Vec<(Sender, Receiver)>,
    pub forward: Impairment,
    pub back: Vec<Impairment>,
    to_rx: DelayLine<(usize, Vec<u8>)>,
    to_tx: DelayLine<(usize, Vec<u8>)>,
    pub now: Timestamp,
    buf: Vec<u8>,
    scratch: Vec<(Timestamp, Vec<u8>)>,
    peers: Vec<SocketAddr>,
    pub tx_events: Vec<Vec<(Timestamp, SenderEvent)>>,
    pub rx_events: Vec<Vec<(Timestamp, ReceiverEvent)>>,
}

impl Shared {
    pub fn new(tx: &[SenderConfig], forward: ImpairConfig, back: ImpairConfig, seed: u64) -> Self {
        let n = tx.len();
        Shared {
            buf: vec![0; 65_536],
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
            forward: Impairment::new(forward, seed),
            back: (0..n)
                .map(|i| Impairment::new(back.clone(), seed ^ (0x5555 + i as u64)))
                .collect(),
            to_rx: DelayLine::new(),
            to_tx: DelayLine::new(),
            now: Timestamp::ZERO,
            scratch: Vec::new(),
            peers: (0..n)
                .map(|i| format!("10.0.0.{}:4000", i + 1).parse().unwrap())
                .collect(),
            tx_events: vec![Vec::new(); n],
            rx_events: vec![Vec::new(); n],
        }
    }

    /// Moves every datagram that is ready (flows take turns, one datagram each, so no flow
    /// gets the link first by its place in the list), then advances the clock to the next
    /// event, no later than `until`.
    pub fn step(&mut self, until: Timestamp) {
        let n = self.flows.len();
        let mut active = vec![true; n];
        while active.iter().any(|&a| a) {
            for (i, on) in active.iter_mut().enumerate() {
                if !*on {
                    continue;
                }
                match self.flows[i].0.poll_transmit(self.now, &mut self.buf) {
                    Some(t) => {
                        self.forward
                            .apply(self.now, &self.buf[..t.len], &mut self.scratch);
                        for (at, d) in self.scratch.drain(..) {
                            self.to_rx.push(at, (i, d));
                        }
                    }
                    None => *on = false,
                }
            }
        }
        for i in 0..n {
            while let Some((_, len)) = self.flows[i].1.poll_transmit(&mut self.buf) {
                self.back[i].apply(self.now, &self.buf[..len], &mut self.scratch);
                for (at, d) in self.scratch.drain(..) {
                    self.to_tx.push(at, (i, d));
                }
            }
        }
        let mut next = until
            .min(self.to_rx.next_due().unwrap_or(until))
            .min(self.to_tx.next_due().unwrap_or(until));
        for (tx, rx) in &self.flows {
            for t in [tx.poll_timeout(), rx.poll_timeout()].into_iter().flatten() {
                next = next.min(t);
            }
        }
        self.now = self.now.max(next);
        while let Some((_, (i, d))) = self.to_rx.pop_due(self.now) {
            self.flows[i].1.handle(self.now, self.peers[i], &d);
        }
        while let Some((_, (i, d))) = self.to_tx.pop_due(self.now) {
            self.flows[i].0.handle(self.now, &d);
        }
        let now = self.now;
        for i in 0..n {
            let (tx, rx) = &mut self.flows[i];
            tx.handle_timeout(now);
            rx.handle_timeout(now);
            while let Some(e) = tx.poll_event() {
                self.tx_events[i].push((now, e));
            }
            while let Some(e) = rx.poll_event() {
                self.rx_events[i].push((now, e));
            }
        }
    }
}
