//! # pixgram: images, camera frames and JSON messages over UDP
//!
//! This crate drives the sans-IO protocol of [`pixgram_core`] over real sockets and adds what
//! an application needs around it: socket tuning, file sources and an atomic folder sink, and
//! the compatibility mode for the original Python scripts' wire format.
//!
//! - [`UdpSender`]: sends frames and messages to one receiver, blocking while its window is full.
//! - [`UdpReceiver`]: serves any number of senders on one socket and yields [`ReceiverEvent`]s.
//! - [`compat::seed`]: the original scripts' format, both directions.
//! - [`relay::UdpRelay`]: the impairing relay behind `pixgram impair`.
//!
//! ```no_run
//! use pixgram::{UdpReceiver, UdpSender, OutgoingFrame, StreamId};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rx = UdpReceiver::bind("127.0.0.1:0".parse()?, Default::default())?;
//! let mut tx = UdpSender::connect(rx.local_addr()?, Default::default())?;
//! tx.send(OutgoingFrame::frame(StreamId::FRAMES, std::fs::read("photo.jpg")?))?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod batch;
#[cfg(feature = "camera")]
pub mod camera;
pub mod clock;
pub mod codec;
pub mod compat;
pub mod delivery;
pub mod envelope;
pub mod error;
pub mod figures;
pub mod format;
pub mod meta;
pub mod mjpeg;
pub mod pattern;
pub mod publish;
pub mod receive;
pub mod receiver;
pub mod relay;
pub mod save_budget;
pub mod security;
pub mod sender;
pub mod sink;
pub mod socket;
pub mod source;
pub mod stats_json;
pub mod viewer;
#[cfg(feature = "window")]
pub mod window;

pub use delivery::Delivery;
pub use error::DriverError;
pub use format::ImageFormat;
pub use meta::FrameMeta;
pub use pixgram_core::seal::{OpenStats, Psk};
pub use pixgram_core::{
    DeliveryKey, FecPolicy, FrameId, LossReason, OutgoingFrame, PayloadKind, ReceivedFrame,
    ReceiverConfig, ReceiverEvent, ReceiverStats, SendFailure, SenderConfig, SenderEvent,
    SenderStats, SessionId, StreamId,
};
pub use receiver::UdpReceiver;
pub use sender::UdpSender;
