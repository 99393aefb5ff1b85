//! # pixgram-core: the pixgram protocol without I/O
//!
//! This crate is the whole protocol as pure state machines: bytes and the current time go in,
//! datagrams to send, events and the next deadline come out. It opens no socket, starts no
//! thread, never sleeps and never reads a clock, so the same code runs under a blocking driver,
//! an async runtime, a fuzzer or a simulated network with injected time.
//!
//! - [`bbr`]: the congestion controller, a model of the path's bandwidth and RTT (BBR-like);
//!   [`pacing`] spreads datagrams at its rate.
//! - [`wire`]: the datagram format v3 (normative text: `docs/PROTOCOL.md`).
//! - [`Sender`]: one session towards one receiver; windows of frames in flight, verdicts, RTT.
//! - [`Receiver`]: many senders on one socket; reassembly, acknowledgement, bounded memory.
//! - [`seal`]: authenticated encryption of datagrams with a pre-shared key.
//! - [`subscription`]: subscribing to a hub's frames (address proof, keepalive, limits).
//! - [`compat_seed`]: the original Python scripts' format, as a receiver that resynchronises.
//!
//! The seeded network model its simulations run through (and `pixgram impair`) is the
//! `pixgram-netem` crate.
//!
//! ## The contract
//! Feed one input (`handle`, `handle_timeout`), then drain every `poll_transmit` and
//! `poll_event` until `None`, then sleep until `poll_timeout` or the next datagram. See
//! [`Receiver`] for a complete exchange.

#![warn(missing_docs)]

pub mod bbr;
mod body_pool;
pub mod chunking;
pub mod compat_seed;
pub mod fec;
mod greeting;
pub mod handshake;
pub mod ids;
pub mod pacing;
pub mod pmtu;
mod reassembly;
pub mod receiver;
pub mod rtp_jpeg;
pub mod rtt;
pub mod seal;
pub mod sender;
pub mod session_seal;
mod stream_rx;
pub mod subscription;
pub mod time;
pub mod transmit;
mod verdicts;
pub mod wire;

pub use ids::{ChunkIndex, FrameId, SessionId, StreamId};
pub use receiver::{
    DeliveryKey, LossReason, PayloadKind, ReceivedFrame, Receiver, ReceiverConfig, ReceiverEvent,
    ReceiverStats, Secret, SessionEnd, MAX_REPLY_LEN,
};
pub use sender::{
    FecPolicy, OutgoingFrame, PathEstimate, SendError, SendFailure, Sender, SenderConfig,
    SenderEvent, SenderStats,
};
pub use time::Timestamp;
pub use transmit::{SessionPeer, Transmit};
