//! [`RtpSender`]: JPEG frames to one RTP/JPEG receiver, batched (one GSO send per burst of
//! up to 64 KB) and paced, with an RTCP sender report every second to the next port and the
//! receivers' reports read back.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pixgram_core::rtp_jpeg::rtcp::{self, ReportBlock, RtcpPacket, SenderInfo};
use pixgram_core::rtp_jpeg::{jpeg, Packetizer, PacketizerConfig, MIN_MTU};

use super::pace::Pacer;
use super::{ntp_now, random_u32, RtpError};
use crate::batch::{BatchSocket, TxBatch};
use crate::socket;

/// How an [`RtpSender`] sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RtpSenderConfig {
    /// The receiver's RTP address; RTCP goes to the next port.
    pub to: SocketAddr,
    /// 26 or 96-127.
    pub payload_type: u8,
    /// Largest RTP packet, header included (GStreamer's default 1400).
    pub mtu: usize,
    /// Average bytes per second on the wire (RTP payloads and headers); `None`: unpaced.
    pub rate: Option<f64>,
    /// Send buffer asked of the kernel.
    pub send_buffer: usize,
    /// Send RTCP sender reports (and read receiver reports).
    pub rtcp: bool,
}

impl RtpSenderConfig {
    /// Defaults towards `to`: payload type 26, 1400-byte packets, 1 GB/s, RTCP on.
    pub fn new(to: SocketAddr) -> Self {
        RtpSenderConfig {
            to,
            payload_type: super::JPEG_PAYLOAD_TYPE,
            mtu: 1400,
            rate: Some(DEFAULT_RATE),
            send_buffer: socket::DEFAULT_SEND_BUFFER,
            rtcp: true,
        }
    }
}

/// Default pacing cap: 1 GB/s, what a pixgram RTP receiver on this project's machines takes
/// with no loss into its default 32 MiB buffer (docs/BENCHMARKS.md); change it with `--rate`.
/// Frames with a known frame rate go slower: each is spread over half its interval.
pub const DEFAULT_RATE: f64 = 1e9;

/// What was sent, and what the receiver last reported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RtpSendStats {
    /// Frames sent.
    pub frames: u64,
    /// RTP packets sent.
    pub packets: u64,
    /// RTP payload bytes sent.
    pub payload_bytes: u64,
    /// Sends the kernel refused (nothing listening: ICMP port unreachable).
    pub refused: u64,
    /// RTCP sender reports sent.
    pub sender_reports: u64,
    /// Receiver reports about this stream received.
    pub receiver_reports: u64,
    /// The latest of them.
    pub last_report: Option<ReportBlock>,
    /// Round-trip time from the latest report that echoed a sender report, as of when the
    /// sender read it: an upper bound (a report waits in the socket until the next frame).
    pub rtt: Option<Duration>,
}

/// Sends JPEG frames as RTP/JPEG.
#[derive(Debug)]
pub struct RtpSender {
    config: RtpSenderConfig,
    socket: BatchSocket,
    rtcp: Option<UdpSocket>,
    packetizer: Packetizer,
    batch: TxBatch,
    pacer: Pacer,
    ts_base: u32,
    last_ts: Option<u32>,
    next_report: Instant,
    stats: RtpSendStats,
}

const REPORT_INTERVAL: Duration = Duration::from_secs(1);

impl RtpSender {
    /// Binds a socket towards `config.to` (random SSRC, sequence number and timestamp base).
    pub fn connect(config: RtpSenderConfig) -> Result<Self, RtpError> {
        if !(config.payload_type == 26 || (96..=127).contains(&config.payload_type)) {
            return Err(RtpError::PayloadType(config.payload_type));
        }
        if config.mtu < MIN_MTU || config.mtu > crate::batch::MAX_SEND_BYTES {
            return Err(RtpError::Mtu(config.mtu));
        }
        let local = socket::any_local_for(config.to);
        let (udp, _) = socket::bind(local, 1 << 16, config.send_buffer)?;
        let socket = BatchSocket::new(udp)?;
        let rtcp = if config.rtcp {
            let s = UdpSocket::bind(local)?;
            s.set_nonblocking(true)?;
            Some(s)
        } else {
            None
        };
        let packetizer = Packetizer::new(PacketizerConfig {
            payload_type: config.payload_type,
            ssrc: random_u32(),
            first_sequence: random_u32() as u16,
            mtu: config.mtu,
        });
        Ok(RtpSender {
            batch: TxBatch::for_gso(config.mtu, 1),
            pacer: Pacer::new(config.rate),
            socket,
            rtcp,
            packetizer,
            ts_base: random_u32(),
            last_ts: None,
            next_report: Instant::now(),
            stats: RtpSendStats::default(),
            config,
        })
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.packetizer.config().ssrc
    }

    /// Where the stream goes.
    pub fn destination(&self) -> SocketAddr {
        self.config.to
    }

    /// The payload type in use.
    pub fn payload_type(&self) -> u8 {
        self.config.payload_type
    }

    /// Counters so far.
    pub fn stats(&self) -> &RtpSendStats {
        &self.stats
    }

    /// The local RTP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.socket().local_addr()
    }

    /// The 90 kHz timestamp of wall-clock time `unix_us` (microseconds since 1970).
    fn rtp_time(&self, unix_us: u64) -> u32 {
        self.ts_base
            .wrapping_add((unix_us.wrapping_mul(9) / 100) as u32)
    }

    /// Sends one JPEG captured at `captured_unix_us` (now if `None`): one timestamp, the
    /// marker bit on its last packet. Refuses, with the reason, a JPEG RFC 2435 cannot carry.
    pub fn send_jpeg(
        &mut self,
        bytes: &[u8],
        captured_unix_us: Option<u64>,
    ) -> Result<usize, RtpError> {
        self.send_jpeg_within(bytes, captured_unix_us, None)
    }

    /// [`send_jpeg`](Self::send_jpeg), its packets spread evenly over `within` (at most the
    /// configured rate): a stream at a known frame rate passes half its frame interval.
    pub fn send_jpeg_within(
        &mut self,
        bytes: &[u8],
        captured_unix_us: Option<u64>,
        within: Option<Duration>,
    ) -> Result<usize, RtpError> {
        let frame = jpeg::parse(bytes)?;
        self.pacer.spread(bytes.len(), within);
        let mut ts = self.rtp_time(captured_unix_us.unwrap_or_else(unix_micros));
        if let Some(last) = self.last_ts {
            // One timestamp per frame, never going back.
            if (ts.wrapping_sub(last) as i32) <= 0 {
                ts = last.wrapping_add(1);
            }
        }
        self.last_ts = Some(ts);
        let RtpSender {
            packetizer,
            batch,
            socket,
            pacer,
            stats,
            config,
            ..
        } = self;
        let mut failed = None;
        let n = packetizer.packetize(&frame, ts, |packet| {
            if failed.is_some() {
                return;
            }
            if !batch.has_room() {
                if let Err(e) = flush(socket, batch, pacer, stats, config.to) {
                    failed = Some(e);
                    return;
                }
            }
            batch.slot()[..packet.len()].copy_from_slice(packet);
            batch.commit(packet.len());
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        flush(socket, batch, pacer, stats, config.to)?;
        self.stats.frames += 1;
        self.stats.packets = self.packetizer.packets;
        self.stats.payload_bytes = self.packetizer.payload_bytes;
        self.service_rtcp(false);
        Ok(n)
    }

    /// Sends a last sender report and a BYE, and reads any report waiting.
    pub fn finish(&mut self) {
        self.service_rtcp(true);
    }

    /// Reads receiver reports; sends a sender report when one is due (or `last`: now, with
    /// a BYE).
    fn service_rtcp(&mut self, last: bool) {
        let Some(rtcp_socket) = &self.rtcp else {
            return;
        };
        let ssrc = self.ssrc();
        let mut buf = [0u8; 1500];
        while let Ok((n, _)) = rtcp_socket.recv_from(&mut buf) {
            let Some(packets) = rtcp::parse_compound(&buf[..n]) else {
                continue;
            };
            for p in packets {
                if let RtcpPacket::ReceiverReport(_, blocks) | RtcpPacket::SenderReport(_, blocks) =
                    p
                {
                    for b in blocks.into_iter().filter(|b| b.ssrc == ssrc) {
                        self.stats.receiver_reports += 1;
                        if b.last_sr != 0 {
                            let now_mid = (ntp_now() >> 16) as u32;
                            let rtt = now_mid
                                .wrapping_sub(b.last_sr)
                                .wrapping_sub(b.delay_since_last_sr);
                            if rtt < 65536 * 10 {
                                self.stats.rtt =
                                    Some(Duration::from_secs_f64(f64::from(rtt) / 65536.0));
                            }
                        }
                        self.stats.last_report = Some(b);
                    }
                }
            }
        }
        let now = Instant::now();
        if !last && now < self.next_report {
            return;
        }
        self.next_report = now + REPORT_INTERVAL;
        let ntp = ntp_now();
        let unix_us = unix_micros();
        let info = SenderInfo {
            ssrc: self.ssrc(),
            ntp,
            rtp_timestamp: self.rtp_time(unix_us),
            packets: self.packetizer.packets as u32,
            octets: self.packetizer.payload_bytes as u32,
        };
        let mut out = Vec::with_capacity(128);
        rtcp::write_sender_report(&info, &[], &mut out);
        rtcp::write_sdes_cname(self.ssrc(), "pixgram", &mut out);
        if last {
            // BYE (RFC 3550 6.6): this source leaves.
            out.extend_from_slice(&[0x81, 203, 0, 1]);
            out.extend_from_slice(&self.ssrc().to_be_bytes());
        }
        let to = SocketAddr::new(self.config.to.ip(), self.config.to.port().wrapping_add(1));
        if rtcp_socket.send_to(&out, to).is_ok() {
            self.stats.sender_reports += 1;
        }
    }
}

fn flush(
    socket: &mut BatchSocket,
    batch: &mut TxBatch,
    pacer: &mut Pacer,
    stats: &mut RtpSendStats,
    to: SocketAddr,
) -> std::io::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let bytes: usize = (0..batch.len()).map(|i| batch.run(i, 1).0.len()).sum();
    let wait = pacer.book(Instant::now(), bytes);
    if !wait.is_zero() {
        // The pacer makes up for oversleeping.
        std::thread::sleep(wait);
    }
    let refused = socket.send_batch(to, batch, Duration::from_secs(2), |_| Ok(()))?;
    stats.refused += u64::from(refused);
    batch.clear();
    Ok(())
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
