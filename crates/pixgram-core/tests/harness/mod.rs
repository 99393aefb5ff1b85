//! The one scenario harness of the simulated tests: senders and receivers joined through
//! `pixgram-netem`'s seeded network model, with a clock that jumps from event to event.
//!
//! - [`Way`]: one direction of the network, an [`Impairment`] and the [`DelayLine`] its
//!   copies wait in, on the core's [`Timestamp`]s; every scenario below moves datagrams only
//!   through it.
//! - [`link`]: [`Link`], one sender and one receiver, and [`Shared`], several pairs whose
//!   forward datagrams share one bottleneck (delivery modes, congestion, bottleneck, path MTU,
//!   exactly-once).
//! - [`sim`]: [`Sim`], many senders, one receiver, hostile traffic, and the invariants every
//!   run must keep (`tests/sim/`).
//!
//! A test crate takes what it needs; the rest is allowed to be unused.
#![allow(dead_code, unused_imports)]

pub mod link;
pub mod sim;

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use pixgram_core::Timestamp;
use pixgram_netem::{DelayLine, Impairment};

pub use link::{bottleneck_ways, quantile, Link, Shared, PEER};
pub use pixgram_netem::{BurstLoss, ImpairConfig, ImpairStats, SimRng};
pub use sim::{addr, base_header, bytes, plan, Limits, Mix, Planned, Sim};

/// The core's time as netem counts it: a [`Duration`] since the same epoch.
pub fn netem_time(t: Timestamp) -> Duration {
    Duration::from_micros(t.as_micros())
}

/// netem's time as the core counts it.
pub fn core_time(d: Duration) -> Timestamp {
    Timestamp::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One direction of the simulated network: datagrams go through the impairment and wait in
/// the delay line, each with a route `T` (where it goes, where it came from). Dereferences to
/// its [`Impairment`] for `stats`, `config` and `set_config`.
#[derive(Debug)]
pub struct Way<T> {
    model: Impairment,
    line: DelayLine<(T, Vec<u8>)>,
    scratch: Vec<(Duration, Vec<u8>)>,
}

impl<T: Clone> Way<T> {
    /// A direction impaired by `config`, its randomness seeded by `seed`.
    pub fn new(config: ImpairConfig, seed: u64) -> Self {
        Way {
            model: Impairment::new(config, seed),
            line: DelayLine::new(),
            scratch: Vec::new(),
        }
    }

    /// Sends `datagram` at `now` towards `route`: zero, one or two copies enter the line.
    pub fn send(&mut self, now: Timestamp, datagram: &[u8], route: T) {
        self.send_with(now, datagram, route, |_| {});
    }

    /// [`Way::send`], telling `arrival` when each copy will arrive.
    pub fn send_with(
        &mut self,
        now: Timestamp,
        datagram: &[u8],
        route: T,
        mut arrival: impl FnMut(Timestamp),
    ) {
        self.model
            .apply(netem_time(now), datagram, &mut self.scratch);
        for (at, bytes) in self.scratch.drain(..) {
            let at = core_time(at);
            arrival(at);
            self.line.push(netem_time(at), (route.clone(), bytes));
        }
    }

    /// Puts `bytes` on the line to arrive at `at`, bypassing the impairment (hostile or
    /// hand-made traffic, or a datagram the scenario spares).
    pub fn inject(&mut self, at: Timestamp, route: T, bytes: Vec<u8>) {
        self.line.push(netem_time(at), (route, bytes));
    }

    /// When the next datagram arrives.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.line.next_due().map(core_time)
    }

    /// The next datagram that has arrived by `now`, with its route.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(T, Vec<u8>)> {
        self.line
            .pop_due(netem_time(now))
            .map(|(_, (route, bytes))| (route, bytes))
    }

    /// Whether nothing is on the way.
    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }
}

impl<T> Deref for Way<T> {
    type Target = Impairment;
    fn deref(&self) -> &Impairment {
        &self.model
    }
}

impl<T> DerefMut for Way<T> {
    fn deref_mut(&mut self) -> &mut Impairment {
        &mut self.model
    }
}

/// The earliest of some instants.
pub fn earliest(times: impl IntoIterator<Item = Option<Timestamp>>) -> Option<Timestamp> {
    times.into_iter().flatten().min()
}
