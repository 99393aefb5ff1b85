//! An impairing UDP relay without I/O: what `pixgram impair` does to the datagrams it forwards.
//!
//! Clients send to the relay; each client gets its own *flow*, an upstream socket the driver
//! opens towards the real destination, so replies can be routed back and many senders can
//! share one relay. Every datagram goes through an [`Impairment`] (one per direction, shared
//! by all flows like one physical link) and waits in a [`DelayLine`] until it is due. Memory is
//! bounded: at most [`RelayConfig::max_clients`] flows and [`RelayConfig::max_held_bytes`]
//! bytes waiting, with counters for what was refused.
//!
//! Flows are forgotten, so a long-running relay serves any number of clients over time:
//! a flow with no datagram in either direction for [`RelayConfig::flow_idle_timeout`] (30 s)
//! ends (`flows_expired`), and a new client arriving while [`RelayConfig::max_clients`] flows
//! are open takes the place of the least recently active one (`flows_evicted`). Ended flows are
//! reported by [`Relay::poll_closed`] so the driver closes their upstream sockets; datagrams
//! still in the delay line for an ended flow are dropped when due (`dropped_closed`). Flow ids
//! are never reused.
//!
//! Instants are [`Duration`]s since an epoch the driver picks (see the crate docs).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use pixgram_core::Transmit;

use crate::delay::DelayLine;
use crate::impair::{ImpairConfig, ImpairStats, Impairment};

/// One client's flow, numbered from 0 in order of arrival; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowId(pub usize);

/// Where a datagram leaving the relay goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Out of the flow's upstream socket, to the destination.
    Upstream(FlowId),
    /// Out of the listening socket, to this client.
    Client(SocketAddr),
}

/// Settings of a [`Relay`].
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// What happens to datagrams from clients to the destination.
    pub forward: ImpairConfig,
    /// What happens to datagrams from the destination back to clients.
    pub back: ImpairConfig,
    /// Seed of the forward direction's randomness (the back direction uses `seed + 1`).
    pub seed: u64,
    /// Clients served at once; a new client beyond this replaces the least recently active
    /// flow (0: every client is refused and counted).
    pub max_clients: usize,
    /// A flow with no datagram either way for this long ends.
    pub flow_idle_timeout: Duration,
    /// Bytes waiting in the delay line; datagrams past this are dropped and counted.
    pub max_held_bytes: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            forward: ImpairConfig::default(),
            back: ImpairConfig::default(),
            seed: 1,
            max_clients: 64,
            flow_idle_timeout: Duration::from_secs(30),
            max_held_bytes: 64 << 20,
        }
    }
}

/// What a [`Relay`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Clients to destination.
    pub forward: ImpairStats,
    /// Destination to clients.
    pub back: ImpairStats,
    /// Datagrams from clients refused (only with [`RelayConfig::max_clients`] 0).
    pub clients_refused: u64,
    /// Copies dropped because [`RelayConfig::max_held_bytes`] were waiting.
    pub dropped_held: u64,
    /// Flows opened so far.
    pub flows_opened: u64,
    /// Flows ended after [`RelayConfig::flow_idle_timeout`] without a datagram.
    pub flows_expired: u64,
    /// Flows ended to make room for a new client (the least recently active one).
    pub flows_evicted: u64,
    /// Datagrams that fell due for a flow that had ended.
    pub dropped_closed: u64,
}

/// A flow's client and when it last carried a datagram.
#[derive(Debug, Clone, Copy)]
struct Flow {
    client: SocketAddr,
    last_active: Duration,
}

/// The relay's state: flows, both impairments and the datagrams in flight.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    forward: Impairment,
    back: Impairment,
    by_client: HashMap<SocketAddr, FlowId>,
    flows: HashMap<FlowId, Flow>,
    next_flow: usize,
    closed: VecDeque<FlowId>,
    line: DelayLine<(Route, Vec<u8>)>,
    held_bytes: usize,
    scratch: Vec<(Duration, Vec<u8>)>,
    clients_refused: u64,
    dropped_held: u64,
    flows_expired: u64,
    flows_evicted: u64,
    dropped_closed: u64,
}

impl Relay {
    /// A relay with no clients yet.
    pub fn new(config: RelayConfig) -> Self {
        Relay {
            forward: Impairment::new(config.forward.clone(), config.seed),
            back: Impairment::new(config.back.clone(), config.seed.wrapping_add(1)),
            config,
            by_client: HashMap::new(),
            flows: HashMap::new(),
            next_flow: 0,
            closed: VecDeque::new(),
            line: DelayLine::new(),
            held_bytes: 0,
            scratch: Vec::new(),
            clients_refused: 0,
            dropped_held: 0,
            flows_expired: 0,
            flows_evicted: 0,
            dropped_closed: 0,
        }
    }

    /// Ends every flow idle for [`RelayConfig::flow_idle_timeout`] at `now`. Also done when a
    /// new client arrives; drivers call it now and then (once a second is plenty) so idle
    /// flows' sockets are released even when no one new comes.
    pub fn handle_timeout(&mut self, now: Duration) {
        let idle = self.config.flow_idle_timeout;
        let expired: Vec<FlowId> = self
            .flows
            .iter()
            .filter(|(_, f)| now.saturating_sub(f.last_active) >= idle)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.end_flow(id);
            self.flows_expired += 1;
        }
    }

    /// A flow that ended (idle or evicted) since the last call: the driver closes its
    /// upstream socket.
    pub fn poll_closed(&mut self) -> Option<FlowId> {
        self.closed.pop_front()
    }

    /// Flows open now.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    fn end_flow(&mut self, id: FlowId) {
        if let Some(f) = self.flows.remove(&id) {
            self.by_client.remove(&f.client);
            self.closed.push_back(id);
        }
    }

    /// A datagram from `client` arrived at `now`. Returns the flow if it is new: the driver
    /// opens its upstream socket before sending anything routed to it.
    pub fn from_client(
        &mut self,
        now: Duration,
        client: SocketAddr,
        datagram: &[u8],
    ) -> Option<FlowId> {
        let (flow, new) = match self.by_client.get(&client) {
            Some(f) => (*f, false),
            None if self.config.max_clients == 0 => {
                self.clients_refused += 1;
                return None;
            }
            None => {
                if self.flows.len() >= self.config.max_clients {
                    self.handle_timeout(now);
                }
                if self.flows.len() >= self.config.max_clients {
                    // Full of active flows: the least recently active one makes room.
                    let lru = self
                        .flows
                        .iter()
                        .min_by_key(|(id, f)| (f.last_active, id.0))
                        .map(|(&id, _)| id);
                    if let Some(id) = lru {
                        self.end_flow(id);
                        self.flows_evicted += 1;
                    }
                }
                let f = FlowId(self.next_flow);
                self.next_flow += 1;
                self.by_client.insert(client, f);
                self.flows.insert(
                    f,
                    Flow {
                        client,
                        last_active: now,
                    },
                );
                (f, true)
            }
        };
        if let Some(f) = self.flows.get_mut(&flow) {
            f.last_active = f.last_active.max(now);
        }
        self.forward.apply(now, datagram, &mut self.scratch);
        self.hold(Route::Upstream(flow));
        new.then_some(flow)
    }

    /// A datagram from the destination arrived on `flow`'s upstream socket at `now`.
    pub fn from_upstream(&mut self, now: Duration, flow: FlowId, datagram: &[u8]) {
        let Some(f) = self.flows.get_mut(&flow) else {
            return;
        };
        f.last_active = f.last_active.max(now);
        let client = f.client;
        self.back.apply(now, datagram, &mut self.scratch);
        self.hold(Route::Client(client));
    }

    fn hold(&mut self, route: Route) {
        for (at, bytes) in self.scratch.drain(..) {
            if self.held_bytes + bytes.len() > self.config.max_held_bytes {
                self.dropped_held += 1;
                continue;
            }
            self.held_bytes += bytes.len();
            self.line.push(at, (route, bytes));
        }
    }

    /// Writes the next datagram due at `now` into `buf` (at least as long as the longest
    /// datagram handed in) and says where it goes; `None` when nothing is due.
    pub fn poll_transmit(&mut self, now: Duration, buf: &mut [u8]) -> Option<Transmit<Route>> {
        loop {
            let (_, (route, bytes)) = self.line.pop_due(now)?;
            self.held_bytes -= bytes.len();
            if let Route::Upstream(flow) = route {
                if !self.flows.contains_key(&flow) {
                    self.dropped_closed += 1;
                    continue;
                }
            }
            buf[..bytes.len()].copy_from_slice(&bytes);
            return Some(Transmit {
                destination: route,
                len: bytes.len(),
            });
        }
    }

    /// When the next datagram is due.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.line.next_due()
    }

    /// The client a flow belongs to, while the flow is open.
    pub fn client(&self, flow: FlowId) -> Option<SocketAddr> {
        self.flows.get(&flow).map(|f| f.client)
    }

    /// Counters so far.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            forward: self.forward.stats().clone(),
            back: self.back.stats().clone(),
            clients_refused: self.clients_refused,
            dropped_held: self.dropped_held,
            flows_opened: self.next_flow as u64,
            flows_expired: self.flows_expired,
            flows_evicted: self.flows_evicted,
            dropped_closed: self.dropped_closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next datagram due, copied out of the lent buffer.
    fn next(r: &mut Relay, now: Duration) -> Option<(Route, Vec<u8>)> {
        let mut buf = [0; 2048];
        let t = r.poll_transmit(now, &mut buf)?;
        Some((t.destination, t.bytes(&buf).to_vec()))
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn flows_route_replies_back_to_their_client() {
        let mut r = Relay::new(RelayConfig::default());
        assert_eq!(
            r.from_client(Duration::ZERO, addr(1), b"a"),
            Some(FlowId(0))
        );
        assert_eq!(
            r.from_client(Duration::ZERO, addr(2), b"b"),
            Some(FlowId(1))
        );
        assert_eq!(r.from_client(Duration::ZERO, addr(1), b"c"), None);
        r.from_upstream(Duration::ZERO, FlowId(1), b"reply");
        let out: Vec<_> = std::iter::from_fn(|| next(&mut r, Duration::ZERO)).collect();
        assert_eq!(
            out,
            vec![
                (Route::Upstream(FlowId(0)), b"a".to_vec()),
                (Route::Upstream(FlowId(1)), b"b".to_vec()),
                (Route::Upstream(FlowId(0)), b"c".to_vec()),
                (Route::Client(addr(2)), b"reply".to_vec()),
            ]
        );
    }

    #[test]
    fn delay_holds_datagrams_until_due() {
        let mut r = Relay::new(RelayConfig {
            forward: ImpairConfig {
                delay: Duration::from_millis(20),
                ..Default::default()
            },
            ..Default::default()
        });
        r.from_client(Duration::ZERO, addr(1), b"a");
        assert_eq!(r.poll_timeout(), Some(Duration::from_millis(20)));
        assert!(next(&mut r, Duration::from_millis(19)).is_none());
        assert!(next(&mut r, Duration::from_millis(20)).is_some());
    }

    #[test]
    fn clients_and_held_bytes_are_bounded() {
        let mut r = Relay::new(RelayConfig {
            forward: ImpairConfig {
                delay: Duration::from_secs(1),
                ..Default::default()
            },
            max_clients: 2,
            max_held_bytes: 2500,
            ..Default::default()
        });
        for port in 1..=3 {
            r.from_client(Duration::ZERO, addr(port), &[0; 1000]);
        }
        // The third client took the place of the first (least recently active).
        assert_eq!(r.poll_closed(), Some(FlowId(0)));
        assert_eq!(r.open_flows(), 2);
        r.from_client(Duration::ZERO, addr(2), &[0; 1000]);
        let s = r.stats();
        assert_eq!((s.flows_evicted, s.dropped_held), (1, 2));
        // The first client's datagram was still held: it is dropped when due, not sent.
        let out: Vec<_> = std::iter::from_fn(|| next(&mut r, Duration::from_millis(1000)))
            .map(|(route, _)| route)
            .collect();
        assert_eq!(out, [Route::Upstream(FlowId(1))]);
        assert_eq!(r.stats().dropped_closed, 1);
        let mut none = Relay::new(RelayConfig {
            max_clients: 0,
            ..Default::default()
        });
        assert_eq!(none.from_client(Duration::ZERO, addr(1), b"x"), None);
        assert_eq!(none.stats().clients_refused, 1);
    }

    #[test]
    fn idle_flows_are_forgotten_and_new_clients_keep_coming() {
        // 200 clients, one a second, each sending twice: far more than 64 in all. Without
        // the driver's timer, idle flows are ended when the 65th would not fit; with it (once
        // a second), at most the 30 of the last 30 s are open.
        for ticking in [false, true] {
            let mut r = Relay::new(RelayConfig::default()); // 64 flows, 30 s idle
            for port in 1..=200u16 {
                let now = Duration::from_millis(u64::from(port) * 1000);
                let new = r.from_client(now, addr(port), b"hello");
                assert_eq!(new, Some(FlowId(usize::from(port) - 1)), "client {port}");
                assert_eq!(r.from_client(now, addr(port), b"again"), None);
                while next(&mut r, now).is_some() {}
                if ticking {
                    r.handle_timeout(now);
                    assert!(r.open_flows() <= 30, "{}", r.open_flows());
                }
                assert!(r.open_flows() <= 64, "{}", r.open_flows());
            }
            let s = r.stats();
            assert_eq!(
                (s.flows_opened, s.clients_refused, s.flows_evicted),
                (200, 0, 0)
            );
            assert!(s.flows_expired >= 136, "{}", s.flows_expired);
        }
        let mut r = Relay::new(RelayConfig::default());
        let mut now = Duration::ZERO;
        for port in 1..=200u16 {
            now = Duration::from_millis(u64::from(port) * 1000);
            r.from_client(now, addr(port), b"hello");
            r.handle_timeout(now);
        }
        while next(&mut r, now).is_some() {}
        let s = r.stats();
        assert_eq!(s.flows_opened, 200);
        assert_eq!(s.clients_refused, 0);
        assert_eq!(s.flows_evicted, 0);
        // Each client fell idle 30 s after its last datagram: 170 ended so far.
        assert_eq!(s.flows_expired, 170);
        let closed: Vec<FlowId> = std::iter::from_fn(|| r.poll_closed()).collect();
        assert_eq!(closed.len(), 170);
        assert!(closed.iter().all(|f| f.0 < 170));
        // A reply from the destination keeps a flow alive; an ended flow's reply goes nowhere.
        now += Duration::from_secs(29);
        r.from_upstream(now, FlowId(199), b"reply");
        r.from_upstream(now, FlowId(0), b"stale");
        let routes: Vec<Route> = std::iter::from_fn(|| next(&mut r, now))
            .map(|(route, _)| route)
            .collect();
        assert_eq!(routes, [Route::Client(addr(200))]);
        r.handle_timeout(now + Duration::from_secs(2));
        assert_eq!(r.client(FlowId(199)), Some(addr(200)));
        assert_eq!(r.client(FlowId(198)), None);
    }

    #[test]
    fn a_full_relay_replaces_its_least_recently_active_flow() {
        let mut r = Relay::new(RelayConfig::default());
        // 64 active flows, then a 65th to 100th client within the idle timeout.
        for port in 1..=64u16 {
            r.from_client(Duration::from_millis(u64::from(port)), addr(port), b"x");
        }
        // Client 1 stays active; so the first to go is client 2.
        r.from_client(Duration::from_millis(100), addr(1), b"x");
        for port in 65..=100u16 {
            let now = Duration::from_millis(100 + u64::from(port));
            assert!(r.from_client(now, addr(port), b"x").is_some(), "{port}");
            assert_eq!(r.open_flows(), 64);
        }
        let s = r.stats();
        assert_eq!(
            (s.flows_opened, s.flows_evicted, s.clients_refused),
            (100, 36, 0)
        );
        let closed: Vec<usize> = std::iter::from_fn(|| r.poll_closed())
            .map(|f| f.0)
            .collect();
        assert_eq!(closed, (1..37).collect::<Vec<_>>());
        assert_eq!(r.client(FlowId(0)), Some(addr(1)));
    }

    #[test]
    fn the_same_seed_drops_the_same_datagrams() {
        let run = |seed| {
            let mut r = Relay::new(RelayConfig {
                forward: ImpairConfig {
                    loss: 0.3,
                    ..Default::default()
                },
                seed,
                ..Default::default()
            });
            (0..200u8)
                .filter_map(|i| {
                    r.from_client(Duration::ZERO, addr(1), &[i]);
                    next(&mut r, Duration::ZERO).map(|(_, b)| b[0])
                })
                .collect::<Vec<u8>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
