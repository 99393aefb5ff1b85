//! The flags of RTP mode (`send --rtp`, `recv --rtp`), flattened into `send` and `recv`.

use std::path::PathBuf;

use clap::Args;

/// `send --rtp` and its options.
#[derive(Debug, Args)]
#[command(next_help_heading = "RTP/JPEG (RFC 2435) mode: GStreamer, FFmpeg, VLC")]
pub struct RtpSendFlags {
    /// Send RTP/JPEG (RFC 2435) to --to instead of pixgram's protocol: for GStreamer
    /// (`udpsrc ! rtpjpegdepay`), FFmpeg or VLC (with --sdp), or `pixgram recv --rtp`. No
    /// acknowledgements: frames are paced (--rate, default 8000 Mbit/s, a frame of a stream
    /// at a known --fps spread over half its interval) and sent once; exit 2
    /// if the receiver's RTCP reports say packets were lost.
    /// Examples: `pixgram send --rtp --to 127.0.0.1:5000 --dir photos/ --fps 30 --sdp
    /// s.sdp`, then `ffplay -protocol_whitelist file,udp,rtp -i s.sdp`; `ffmpeg -i in.mp4
    /// -f mjpeg - | pixgram send --rtp --to 127.0.0.1:5000 --stdin --transcode`.
    #[arg(long)]
    pub rtp: bool,
    /// RTP payload type: 26 (JPEG, the default) or a dynamic type 96-127 (announced in
    /// the --sdp file).
    #[arg(long, value_name = "N", default_value_t = 26, requires = "rtp")]
    pub pt: u8,
    /// Largest RTP packet in bytes, headers included (GStreamer's default 1400).
    #[arg(long, value_name = "BYTES", default_value_t = 1400, requires = "rtp")]
    pub mtu: usize,
    /// Write the session description (SDP) of the stream here before sending, for
    /// `ffplay`/`ffmpeg -protocol_whitelist file,udp,rtp -i FILE` and VLC (with
    /// `a=x-dimensions` when the frame size does not fit in RFC 2435's header).
    #[arg(long, value_name = "FILE", requires = "rtp")]
    pub sdp: Option<PathBuf>,
    /// Re-encode (baseline 4:2:0, standard Huffman tables) the frames RFC 2435 cannot carry:
    /// progressive, 4:4:4, grayscale, optimised Huffman tables, 12-bit, PNG. Without it such
    /// a frame stops the send with the reason.
    #[arg(long, requires = "rtp")]
    pub transcode: bool,
}

/// `recv --rtp` and its options.
#[derive(Debug, Args)]
#[command(next_help_heading = "RTP/JPEG (RFC 2435) mode: GStreamer, FFmpeg, VLC")]
pub struct RtpRecvFlags {
    /// Receive RTP/JPEG (RFC 2435) on --listen instead of pixgram's protocol (RTCP on the
    /// next port), from GStreamer (`rtpjpegpay ! udpsink`), FFmpeg (`-f rtp`) or `pixgram
    /// send --rtp`; every sink works. Asks for a 32 MiB receive buffer unless --recv-buffer
    /// names another size. Example: `pixgram recv --rtp --listen 127.0.0.1:5000 --save
    /// frames/`.
    #[arg(long)]
    pub rtp: bool,
    /// Deliver frames with a missing packet when they have restart markers (types 64/65):
    /// the missing restart intervals are grey. Without it such frames are dropped and
    /// counted.
    #[arg(long, requires = "rtp")]
    pub partial: bool,
    /// Read the stream's session description (SDP) from FILE: its payload type, and the
    /// frame size of frames over 2040 pixels (`a=x-dimensions:W,H`, as GStreamer writes).
    #[arg(long, value_name = "FILE", requires = "rtp")]
    pub sdp: Option<PathBuf>,
}
