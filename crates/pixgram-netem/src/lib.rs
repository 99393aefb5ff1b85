//! # pixgram-netem: one seeded model of a bad network
//!
//! What pixgram's simulator tests, benchmarks, fuzz targets and `pixgram impair` do to
//! datagrams, in one place, free of I/O: no sockets, no threads, no clock. The same seed
//! gives the same losses, delays and corruptions on every machine, so a failing simulation
//! replays exactly.
//!
//! - [`impair`]: [`Impairment`], one direction of a link: MTU, random and Gilbert-Elliott burst
//!   loss, a rate limit behind a drop-tail queue, delay, jitter, reordering, duplication,
//!   corruption and truncation ([`ImpairConfig`]), with counters ([`ImpairStats`]).
//! - [`delay`]: [`DelayLine`], datagrams held until they are due, in time order.
//! - [`relay`]: [`Relay`], the impairing UDP relay behind `pixgram impair` as a state machine
//!   (flows per client, both directions, bounded memory); `pixgram::relay` drives it over
//!   sockets.
//! - [`rng`]: [`SimRng`], the seeded generator all of the above draw from (SplitMix64; not for
//!   cryptography).
//!
//! ## Time
//! An instant is a [`Duration`](std::time::Duration) since an epoch the caller chooses (a
//! simulation starts at zero; a driver uses the time since it started). A driver of
//! `pixgram-core` converts with `Duration::from_micros(t.as_micros())` and
//! `Timestamp::from_micros(d.as_micros() as u64)`.
//!
//! ## What this crate takes from `pixgram-core`
//! Only [`Transmit`](pixgram_core::Transmit): the relay hands its driver datagrams in the same
//! shape as every other state machine of the project. The model itself needs nothing of the
//! protocol, and instants stay `Duration`s (the one cost is converting them at the boundary).
//! `pixgram-core`'s integration tests dev-depend on this crate; Cargo builds them against one
//! copy of the core, so the types match. The core's own unit tests do not use this crate (they
//! would see a second copy of the core).
//!
//! ```
//! use std::time::Duration;
//! use pixgram_netem::{DelayLine, ImpairConfig, Impairment};
//!
//! let mut link = Impairment::new(
//!     ImpairConfig { loss: 0.1, delay: Duration::from_millis(20), ..ImpairConfig::default() },
//!     7,
//! );
//! let (mut line, mut out) = (DelayLine::new(), Vec::new());
//! for i in 0..100u8 {
//!     link.apply(Duration::from_millis(i.into()), &[i], &mut out);
//!     for (at, bytes) in out.drain(..) {
//!         line.push(at, bytes);
//!     }
//! }
//! let arrived = std::iter::from_fn(|| line.pop_due(Duration::from_secs(1))).count();
//! assert_eq!(arrived as u64, link.stats().delivered);
//! assert_eq!(arrived as u64 + link.stats().dropped_random, 100);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod delay;
pub mod impair;
pub mod relay;
pub mod rng;

pub use delay::DelayLine;
pub use impair::{BurstLoss, ImpairConfig, ImpairStats, Impairment};
pub use relay::{FlowId, Relay, RelayConfig, RelayStats, Route};
pub use rng::SimRng;
