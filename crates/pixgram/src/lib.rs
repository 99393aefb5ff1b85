//! # pixgram: images, camera frames and JSON messages over UDP
//!
//! pixgram sends whole frames (images, any bytes up to 64 MiB) and JSON messages over UDP,
//! each acknowledged only once the receiver has it: reliable delivery for files, or live
//! delivery with deadlines and forward error correction for camera streams. The protocol
//! itself is the sans-IO [`pixgram_core`]; this crate drives it over real sockets and adds
//! what an application needs around it.
//!
//! ## In a few lines
//!
//! Bind a [`Receiver`], connect a [`Sender`], send; iterate what arrives. Every frame comes
//! with its sender, stream, id, bytes and [`FrameMeta`]:
//!
//! ```
//! use pixgram::{FrameMeta, Incoming, Receiver, Sender};
//! # fn main() -> Result<(), pixgram::Error> {
//! let mut rx = Receiver::bind("127.0.0.1:0")?;
//! let addr = rx.local_addr()?;
//! # let dir = std::env::temp_dir().join(format!("pixgram-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let photo = dir.join("photo.jpg");
//! # std::fs::write(&photo, [0xFF, 0xD8, 0xFF, 0xD9]).unwrap();
//! let sender = std::thread::spawn(move || -> Result<pixgram::Sent, pixgram::Error> {
//!     let mut tx = Sender::connect(addr)?;
//!     tx.send_file(&photo)?; // a file, named "photo.jpg" in its metadata
//!     let jpeg = vec![0xFF, 0xD8, 0xFF, 0xD9]; // an image made in memory
//!     tx.send_image(jpeg, FrameMeta::named("frame-1.jpg").with("camera", "front"))?;
//!     tx.send_json(&serde_json::json!({"battery": 0.87}))?;
//!     tx.finish() // waits for every acknowledgement
//! });
//! for item in rx.incoming().take(3) {
//!     match item? {
//!         Incoming::Frame(f) => println!(
//!             "{} stream {} frame {}: {} bytes, file {:?}",
//!             f.peer, f.stream.0, f.id.0, f.bytes.len(), f.meta.file
//!         ),
//!         Incoming::Message(m) => println!("{}: {}", m.peer, m.json().unwrap()),
//!     }
//! }
//! let sent = sender.join().unwrap()?;
//! assert_eq!((sent.acked, sent.lost.len()), (3, 0));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(()) }
//! ```
//!
//! Options are builders ([`Sender::builder`], [`Receiver::builder`]); a live stream is a
//! [`Delivery`] (and a camera or the test pattern streams with [`Sender::stream`]):
//!
//! ```
//! use std::time::Duration;
//! use pixgram::{Delivery, FecPolicy, Receiver, Sender};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rx = Receiver::builder().max_frame_size(8 << 20).bind("127.0.0.1:0")?;
//! let live = Delivery::live(30.0)?.with_deadline(Duration::from_millis(100))?;
//! let mut tx = Sender::builder()
//!     .window(8)
//!     .delivery(live.with_fec(FecPolicy::Ratio(0.25)))
//!     .connect(rx.local_addr()?)?;
//! let sender = std::thread::spawn(move || {
//!     tx.send_image(vec![0xFF, 0xD8, 0xFF, 0xD9], Default::default())?;
//!     tx.finish()
//! });
//! let got = rx.next(Some(std::time::Instant::now() + Duration::from_secs(5)))?;
//! assert!(sender.join().unwrap()?.lost.is_empty());
//! assert!(matches!(got, Some(pixgram::Incoming::Frame(_))));
//! # Ok(()) }
//! ```
//!
//! ## The pieces
//!
//! - Sending: [`UdpSender`] (the driver: back-pressure, events, counters), a [`Delivery`]
//!   policy, [`publish::Publisher`] (files or a live source through a sender, every verdict in
//!   a report), [`source`] (files, folders, globs; [`source::LiveSource`]: the test pattern,
//!   MJPEG from a pipe, a camera by its device path).
//! - Receiving: [`UdpReceiver`], the one receive loop [`receive::receive`], and
//!   [`sink::Sinks`] (a folder, MJPEG on stdout, the browser [`viewer`], windows).
//! - The metadata convention: [`FrameMeta`]; image formats: [`ImageFormat`]; codecs:
//!   [`codec`]; figures for reports: [`figures`], [`stats_json`].
//! - Fan-out: [`hub::Hub`] serves what it receives to subscribers, each with its own
//!   backlog and sender; [`hub::Subscriber`] subscribes and receives like any receiver.
//! - [`compat::seed`]: the original scripts' format, both directions; [`relay::UdpRelay`]:
//!   the impairing relay behind `pixgram impair`; [`rtp`]: RTP/JPEG (RFC 2435) to and from
//!   GStreamer, FFmpeg and VLC.

#![warn(missing_docs)]

pub mod batch;
#[cfg(feature = "camera")]
pub mod camera;
pub mod clock;
pub mod codec;
pub mod compat;
pub mod delivery;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod figures;
pub mod format;
pub mod hub;
pub mod meta;
pub mod mjpeg;
pub mod pattern;
pub mod publish;
pub mod receive;
pub mod receiver;
pub mod relay;
pub mod rtp;
pub mod save_budget;
pub mod security;
pub mod sender;
pub mod sink;
pub mod socket;
pub mod source;
pub mod stats_json;
pub mod viewer;
pub mod wake;
#[cfg(feature = "window")]
pub mod window;

pub use delivery::Delivery;
pub use endpoint::{Error, Frame, Incoming, Message, Receiver, Sender, Sent};
pub use error::DriverError;
pub use format::ImageFormat;
pub use meta::FrameMeta;
pub use pixgram_core::seal::{OpenStats, Psk};
pub use pixgram_core::{
    DeliveryKey, FecPolicy, FrameId, LossReason, OutgoingFrame, PayloadKind, ReceivedFrame,
    ReceiverConfig, ReceiverEvent, ReceiverStats, SendFailure, SenderConfig, SenderEvent,
    SenderStats, SessionId, StreamId,
};
pub use receiver::{ReceiverWaker, UdpReceiver};
pub use sender::UdpSender;
pub use wake::Waker;
