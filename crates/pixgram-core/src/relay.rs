//! An impairing UDP relay without I/O: what `pixgram impair` does to the datagrams it forwards.
//!
//! Clients send to the relay; each client gets its own *flow*, an upstream socket the driver
//! opens towards the real destination, so replies can be routed back and many senders can
//! share one relay. Every datagram goes through an [`Impairment`] (one per direction, shared
//! by all flows like one physical link) and waits in a [`DelayLine`] until it is due. Memory is
//! bounded: at most [`RelayConfig::max_clients`] flows and [`RelayConfig::max_held_bytes`]
//! bytes waiting, with counters for what was refused.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::impair::{DelayLine, ImpairConfig, ImpairStats, Impairment};
use crate::time::Timestamp;

/// One client's flow, numbered from 0 in order of arrival.
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
    /// Clients served at once; datagrams from more are dropped and counted.
    pub max_clients: usize,
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
    /// Datagrams from clients beyond [`RelayConfig::max_clients`].
    pub clients_refused: u64,
    /// Copies dropped because [`RelayConfig::max_held_bytes`] were waiting.
    pub dropped_held: u64,
}

/// The relay's state: flows, both impairments and the datagrams in flight.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    forward: Impairment,
    back: Impairment,
    flows: HashMap<SocketAddr, FlowId>,
    clients: Vec<SocketAddr>,
    line: DelayLine<(Route, Vec<u8>)>,
    held_bytes: usize,
    scratch: Vec<(Timestamp, Vec<u8>)>,
    clients_refused: u64,
    dropped_held: u64,
}

impl Relay {
    /// A relay with no clients yet.
    pub fn new(config: RelayConfig) -> Self {
        Relay {
            forward: Impairment::new(config.forward.clone(), config.seed),
            back: Impairment::new(config.back.clone(), config.seed.wrapping_add(1)),
            config,
            flows: HashMap::new(),
            clients: Vec::new(),
            line: DelayLine::new(),
            held_bytes: 0,
            scratch: Vec::new(),
            clients_refused: 0,
            dropped_held: 0,
        }
    }

    /// A datagram from `client` arrived at `now`. Returns the flow if it is new: the driver
    /// opens its upstream socket before sending anything routed to it.
    pub fn from_client(
        &mut self,
        now: Timestamp,
        client: SocketAddr,
        datagram: &[u8],
    ) -> Option<FlowId> {
        let (flow, new) = match self.flows.get(&client) {
            Some(f) => (*f, false),
            None if self.clients.len() >= self.config.max_clients => {
                self.clients_refused += 1;
                return None;
            }
            None => {
                let f = FlowId(self.clients.len());
                self.clients.push(client);
                self.flows.insert(client, f);
                (f, true)
            }
        };
        self.forward.apply(now, datagram, &mut self.scratch);
        self.hold(Route::Upstream(flow));
        new.then_some(flow)
    }

    /// A datagram from the destination arrived on `flow`'s upstream socket at `now`.
    pub fn from_upstream(&mut self, now: Timestamp, flow: FlowId, datagram: &[u8]) {
        let Some(&client) = self.clients.get(flow.0) else {
            return;
        };
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

    /// The next datagram due at `now`, and where it goes.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<(Route, Vec<u8>)> {
        let (_, (route, bytes)) = self.line.pop_due(now)?;
        self.held_bytes -= bytes.len();
        Some((route, bytes))
    }

    /// When the next datagram is due.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.line.next_due()
    }

    /// The client a flow belongs to.
    pub fn client(&self, flow: FlowId) -> Option<SocketAddr> {
        self.clients.get(flow.0).copied()
    }

    /// Counters so far.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            forward: self.forward.stats().clone(),
            back: self.back.stats().clone(),
            clients_refused: self.clients_refused,
            dropped_held: self.dropped_held,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn flows_route_replies_back_to_their_client() {
        let mut r = Relay::new(RelayConfig::default());
        assert_eq!(
            r.from_client(Timestamp::ZERO, addr(1), b"a"),
            Some(FlowId(0))
        );
        assert_eq!(
            r.from_client(Timestamp::ZERO, addr(2), b"b"),
            Some(FlowId(1))
        );
        assert_eq!(r.from_client(Timestamp::ZERO, addr(1), b"c"), None);
        r.from_upstream(Timestamp::ZERO, FlowId(1), b"reply");
        let out: Vec<_> = std::iter::from_fn(|| r.poll_transmit(Timestamp::ZERO)).collect();
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
        r.from_client(Timestamp::ZERO, addr(1), b"a");
        assert_eq!(r.poll_timeout(), Some(Timestamp::from_millis(20)));
        assert!(r.poll_transmit(Timestamp::from_millis(19)).is_none());
        assert!(r.poll_transmit(Timestamp::from_millis(20)).is_some());
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
            r.from_client(Timestamp::ZERO, addr(port), &[0; 1000]);
        }
        r.from_client(Timestamp::ZERO, addr(1), &[0; 1000]);
        let s = r.stats();
        assert_eq!((s.clients_refused, s.dropped_held), (1, 1));
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
                    r.from_client(Timestamp::ZERO, addr(1), &[i]);
                    r.poll_transmit(Timestamp::ZERO).map(|(_, b)| b[0])
                })
                .collect::<Vec<u8>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
