//! RTP/JPEG (RFC 2435) over RTP (RFC 3550), sans-IO: interoperability with GStreamer's
//! `rtpjpegpay`/`rtpjpegdepay`, FFmpeg's `-f rtp` and VLC.
//!
//! - [`jpeg::parse`]: a JPEG file into what the payload format carries, or the reason it
//!   cannot (progressive, 4:4:4, grayscale, optimised Huffman tables, 12-bit...).
//! - [`Packetizer`]: frames into packets (Q = 255, tables in band; types 64/65 cut on
//!   restart-interval boundaries).
//! - [`Depacketizer`]: packets into complete JFIF files ([`jfif`], RFC 2435 Appendix B),
//!   with reordering, wrap-around, SSRC changes, bounded memory and every refusal counted.
//! - [`rtcp`] sender and receiver reports, [`ReceptionStats`] behind them; [`sdp`] the
//!   session description.
//!
//! No sockets, no clock: time comes in as a [`crate::time::Timestamp`].

pub mod depacketize;
pub mod jfif;
pub mod jpeg;
pub mod packetize;
mod partial;
mod payload_header;
pub mod reception;
pub mod rtcp;
pub mod rtp_header;
pub mod sdp;
pub mod tables;

pub use depacketize::{
    Depacketizer, DepacketizerConfig, DepacketizerEvent, DepacketizerStats, FrameLoss, RtpJpegFrame,
};
pub use jpeg::{JpegError, JpegFrame, Subsampling};
pub use packetize::{Packetizer, PacketizerConfig, MAX_INBAND_DIMENSION, MIN_MTU};
pub use reception::ReceptionStats;
pub use rtp_header::{RtpHeader, RTP_HEADER_LEN};
pub use sdp::SdpStream;

/// The static payload type of JPEG (RFC 3551).
pub const JPEG_PAYLOAD_TYPE: u8 = 26;
/// The RTP clock of video: 90 kHz.
pub const CLOCK_RATE: u32 = 90_000;

#[cfg(test)]
mod tests;
