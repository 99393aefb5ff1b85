//! RTP/JPEG (RFC 2435) as one more source and sink of pixgram: [`RtpSender`] sends frames
//! from any source to GStreamer, FFmpeg, VLC or another pixgram, [`RtpReceiver`] takes theirs
//! and yields complete JFIF files for the usual sinks ([`crate::sink::Sinks`]) through the one
//! receive loop ([`crate::receive::receive`]). The payload format itself is the sans-IO
//! [`pixgram_core::rtp_jpeg`]; this module adds the sockets (batched, GSO/GRO, through
//! [`crate::batch`]), pacing, RTCP timing and the session description file.

mod pace;
pub mod publish;
mod receiver;
pub mod sender;
mod transcode;

use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

pub use pixgram_core::rtp_jpeg::rtcp::ReportBlock;
pub use pixgram_core::rtp_jpeg::{
    DepacketizerConfig, DepacketizerStats, FrameLoss, JpegError, RtpJpegFrame, SdpStream,
    JPEG_PAYLOAD_TYPE,
};
pub use publish::{send_files, send_stream, FrameError, RtpPublish, RtpPublished};
pub use receiver::{RtpEvent, RtpReceiver, RtpReceiverConfig, RtpReceiverStats, RTP_RECV_BUFFER};
pub use sender::{RtpSendStats, RtpSender, RtpSenderConfig};
pub use transcode::{encode_for_rtp, to_rtp_jpeg};

/// What can go wrong in RTP mode.
#[derive(Debug, Error)]
pub enum RtpError {
    /// The socket could not be set up or used.
    #[error(transparent)]
    Driver(#[from] crate::error::DriverError),
    /// A frame RFC 2435 cannot carry (and no `--transcode`).
    #[error("{0} (pass --transcode to re-encode it)")]
    Unsupported(#[from] JpegError),
    /// Re-encoding failed.
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
    /// The payload type is not 26 or a dynamic one (96-127).
    #[error("payload type {0}: use 26 (JPEG) or a dynamic type 96-127")]
    PayloadType(u8),
    /// The packet size is too small for the tables.
    #[error("--mtu {0}: at least {min} bytes are needed", min = pixgram_core::rtp_jpeg::MIN_MTU)]
    Mtu(usize),
    /// An SDP file could not be read or written.
    #[error("SDP file {path}: {reason}")]
    Sdp {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

impl From<std::io::Error> for RtpError {
    fn from(e: std::io::Error) -> Self {
        RtpError::Driver(e.into())
    }
}

/// Now as a 64-bit NTP timestamp (seconds since 1900 and a binary fraction), as RTCP
/// sender reports carry it.
pub fn ntp_now() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// A random 32-bit value (SSRCs, initial sequence numbers and timestamps, RFC 3550 5.1).
pub fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = crate::security::fill_random(&mut b);
    u32::from_ne_bytes(b)
}

/// Reads the session description at `path`.
pub fn read_sdp(path: &std::path::Path) -> Result<SdpStream, RtpError> {
    let err = |reason: String| RtpError::Sdp {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    SdpStream::parse(&text).ok_or_else(|| err("no `c=IN` and `m=video` lines".into()))
}

/// Writes `sdp` to `path`.
pub fn write_sdp(path: &std::path::Path, sdp: &SdpStream) -> Result<(), RtpError> {
    std::fs::write(path, sdp.write(u64::from(random_u32()))).map_err(|e| RtpError::Sdp {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
