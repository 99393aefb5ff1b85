//! [`RtpReceiver`]: RTP/JPEG from GStreamer, FFmpeg, VLC or a pixgram sender, batched
//! receives (recvmmsg and GRO through [`crate::batch`]), frames out through the
//! [`EventSource`] the one receive loop takes; RTCP on the next port: sender reports read,
//! receiver reports (loss fraction, cumulative loss, jitter) sent back every second.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use pixgram_core::rtp_jpeg::rtcp::{self, ReportBlock, RtcpPacket, SenderInfo};
use pixgram_core::rtp_jpeg::{
    Depacketizer, DepacketizerConfig, DepacketizerEvent, DepacketizerStats, FrameLoss, RtpJpegFrame,
};
use pixgram_core::Timestamp;

use super::{random_u32, RtpError};
use crate::batch::{BatchSocket, RxPool, RX_SLOTS};
use crate::error::DriverError;
use crate::receive::EventSource;
use crate::socket::{self, BufferGrant};

/// How an [`RtpReceiver`] listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpReceiverConfig {
    /// Where RTP arrives; RTCP on the next port.
    pub listen: SocketAddr,
    /// Limits and choices of the payload format.
    pub depacketizer: DepacketizerConfig,
    /// Receive buffer asked of the kernel (a 1080p frame is a burst of 350 packets).
    pub recv_buffer: usize,
    /// Listen for RTCP on the next port and send receiver reports.
    pub rtcp: bool,
}

impl RtpReceiverConfig {
    /// Defaults on `listen`: [`RTP_RECV_BUFFER`] of receive buffer, RTCP on.
    pub fn new(listen: SocketAddr) -> Self {
        RtpReceiverConfig {
            listen,
            depacketizer: DepacketizerConfig::default(),
            recv_buffer: RTP_RECV_BUFFER,
            rtcp: true,
        }
    }
}

/// Receive buffer an RTP receiver asks for: 32 MiB, 32 ms at the sender's default 1 GB/s.
/// RTP has no retransmission, so this buffer is all that stands between a receiver the
/// scheduler leaves waiting and lost frames: with 8 MiB (20 ms) one run in five lost frames on
/// a loaded 2-core machine, with 32 MiB none did (docs/BENCHMARKS.md). Granted in full to root
/// (`SO_RCVBUFFORCE`); others get `net.core.rmem_max` and a warning.
pub const RTP_RECV_BUFFER: usize = 32 << 20;

/// What arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtpEvent {
    /// A rebuilt JFIF frame from `from`.
    Frame {
        /// The sender's address.
        from: SocketAddr,
        /// The frame.
        frame: RtpJpegFrame,
    },
    /// A frame given up.
    Lost {
        /// The sender's address.
        from: SocketAddr,
        /// Its source.
        ssrc: u32,
        /// Its media time.
        timestamp: u32,
        /// Why.
        reason: FrameLoss,
    },
}

/// Counters of a receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RtpReceiverStats {
    /// The payload format's counters.
    pub depacketizer: DepacketizerStats,
    /// RTP packets the current source sent that never arrived (RFC 3550 cumulative loss).
    pub packets_lost: i64,
    /// Interarrival jitter of the current source, 90 kHz units.
    pub jitter: u32,
    /// RTCP sender reports received.
    pub sender_reports: u64,
    /// The latest of them.
    pub last_sender_info: Option<SenderInfo>,
    /// RTCP receiver reports sent.
    pub receiver_reports: u64,
    /// The latest report made (sent, or kept for the stats when no sender report said where
    /// to send it).
    pub last_report: Option<ReportBlock>,
}

/// Receives RTP/JPEG frames.
#[derive(Debug)]
pub struct RtpReceiver {
    socket: BatchSocket,
    rtcp: Option<UdpSocket>,
    pool: RxPool,
    depack: Depacketizer,
    origin: Instant,
    ssrc: u32,
    from: Option<SocketAddr>,
    /// The last SR: middle NTP bits, when it came, where from.
    last_sr: Option<(u32, Instant, SocketAddr)>,
    next_report: Instant,
    grant: BufferGrant,
    stats: RtpReceiverStats,
}

const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait on the RTP socket before RTCP is looked at.
const RTCP_POLL: Duration = Duration::from_millis(50);

impl RtpReceiver {
    /// Listens on `config.listen` (and, with RTCP, the next port when it is free).
    pub fn bind(config: RtpReceiverConfig) -> Result<Self, RtpError> {
        let (udp, grant) = socket::bind(config.listen, config.recv_buffer, 1 << 16)?;
        let rtp_addr = udp.local_addr()?;
        let socket = BatchSocket::new(udp)?;
        let rtcp = if config.rtcp {
            let mut a = rtp_addr;
            a.set_port(rtp_addr.port().wrapping_add(1));
            UdpSocket::bind(a)
                .ok()
                .and_then(|s| s.set_nonblocking(true).ok().map(|_| s))
        } else {
            None
        };
        Ok(RtpReceiver {
            socket,
            rtcp,
            pool: RxPool::new(RX_SLOTS),
            depack: Depacketizer::new(config.depacketizer),
            origin: Instant::now(),
            ssrc: random_u32(),
            from: None,
            last_sr: None,
            next_report: Instant::now() + REPORT_INTERVAL,
            grant,
            stats: RtpReceiverStats::default(),
        })
    }

    /// The RTP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.socket().local_addr()
    }

    /// Whether RTCP is heard on the next port.
    pub fn has_rtcp(&self) -> bool {
        self.rtcp.is_some()
    }

    /// What the kernel granted of the receive buffer asked.
    pub fn buffer_grant(&self) -> BufferGrant {
        self.grant
    }

    /// Counters so far.
    pub fn stats(&mut self) -> RtpReceiverStats {
        self.stats.depacketizer = *self.depack.stats();
        if let Some((_, r)) = self.depack.reception() {
            self.stats.packets_lost = r.cumulative_lost();
            self.stats.jitter = r.jitter();
        }
        self.stats
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    /// Gives up every frame still incomplete (the stream ended); drain with
    /// [`RtpReceiver::next_event`].
    pub fn flush(&mut self) {
        self.depack.flush();
    }

    /// The next event, waiting until `deadline` at most (`None`: no limit); `Ok(None)` if
    /// nothing came by then.
    pub fn next_event(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<RtpEvent>, DriverError> {
        loop {
            if let Some(e) = self.depack.poll_event() {
                return Ok(Some(self.event(e)));
            }
            let now = self.now();
            if self.depack.poll_timeout().is_some_and(|t| t <= now) {
                self.depack.handle_timeout(now);
                continue;
            }
            self.service_rtcp();
            if self.socket.recv(&mut self.pool)? > 0 {
                let now = self.now();
                let (depack, from) = (&mut self.depack, &mut self.from);
                self.pool.datagrams(|addr, d| {
                    if rtcp::is_rtcp(d) {
                        return; // RTCP multiplexed on the RTP port: not ours to read here
                    }
                    *from = Some(addr);
                    depack.handle_packet(now, d);
                });
                if self.depack.has_event() || deadline.is_none_or(|d| Instant::now() < d) {
                    continue;
                }
            }
            let wall = Instant::now();
            if deadline.is_some_and(|d| wall >= d) {
                // Checked even under a flood of datagrams that make no frame.
                return Ok(None);
            }
            let mut wait = RTCP_POLL.min(self.next_report.saturating_duration_since(wall));
            if let Some(d) = deadline {
                wait = wait.min(d - wall);
            }
            if let Some(t) = self.depack.poll_timeout() {
                wait = wait.min(Duration::from_micros(
                    t.as_micros().saturating_sub(now.as_micros()),
                ));
            }
            self.socket.wait(false, Some(wait))?;
        }
    }

    fn event(&self, e: DepacketizerEvent) -> RtpEvent {
        let from = self.from.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        match e {
            DepacketizerEvent::Frame(frame) => RtpEvent::Frame { from, frame },
            DepacketizerEvent::Lost {
                ssrc,
                timestamp,
                reason,
            } => RtpEvent::Lost {
                from,
                ssrc,
                timestamp,
                reason,
            },
        }
    }

    /// Reads sender reports; sends a receiver report when one is due.
    fn service_rtcp(&mut self) {
        let Some(s) = &self.rtcp else { return };
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            for p in rtcp::parse_compound(&buf[..n]).unwrap_or_default() {
                if let RtcpPacket::SenderReport(info, _) = p {
                    self.stats.sender_reports += 1;
                    self.stats.last_sender_info = Some(info);
                    self.last_sr = Some(((info.ntp >> 16) as u32, Instant::now(), from));
                }
            }
        }
        let now = Instant::now();
        if now < self.next_report {
            return;
        }
        self.next_report = now + REPORT_INTERVAL;
        let Some((source, r)) = self.depack.reception() else {
            return;
        };
        // Reports go where the sender's reports came from; a sender that sends none
        // (GStreamer's udpsink, FFmpeg without RTCP) is not sent any.
        let (lsr, dlsr, to) = match self.last_sr {
            Some((mid, at, from)) => {
                let d = now.duration_since(at).as_secs_f64() * 65536.0;
                (mid, d as u32, Some(from))
            }
            None => (0, 0, None),
        };
        let block = ReportBlock {
            ssrc: source,
            fraction_lost: r.take_fraction_lost(),
            cumulative_lost: r.cumulative_lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_seq: r.max_ext_seq,
            jitter: r.jitter(),
            last_sr: lsr,
            delay_since_last_sr: dlsr,
        };
        let mut out = Vec::with_capacity(96);
        rtcp::write_receiver_report(self.ssrc, &[block], &mut out);
        rtcp::write_sdes_cname(self.ssrc, "pixgram", &mut out);
        if let Some(to) = to {
            if s.send_to(&out, to).is_ok() {
                self.stats.receiver_reports += 1;
            }
        }
        self.stats.last_report = Some(block);
    }
}

impl EventSource for RtpReceiver {
    type Event = RtpEvent;
    fn next_event(&mut self, until: Instant) -> Result<Option<RtpEvent>, DriverError> {
        RtpReceiver::next_event(self, Some(until))
    }
}
