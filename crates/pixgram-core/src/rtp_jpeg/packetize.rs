//! The sender's half of RFC 2435: one JPEG frame into RTP packets of at most `mtu` bytes.
//!
//! Every frame goes with Q = 255 and its own quantisation tables in the first packet, so any
//! encoder's tables pass unchanged (GStreamer and FFmpeg do the same). A frame with restart
//! markers (a DRI) goes as type 64/65 with the restart-marker header, and its packets start on
//! restart-interval boundaries wherever an interval fits in one: a receiver missing a packet
//! then still has whole intervals on either side of the gap and can decode the rest of the
//! frame (`--partial`).

use super::jpeg::JpegFrame;
use super::rtp_header::{RtpHeader, RTP_HEADER_LEN};

/// Bytes of the RFC 2435 main JPEG header.
pub const JPEG_HEADER_LEN: usize = 8;
/// Bytes of the restart-marker header (types 64-127).
pub const RESTART_HEADER_LEN: usize = 4;
/// Bytes of the quantisation-table header plus two 8-bit tables.
pub const QTABLE_BLOCK_LEN: usize = 4 + 128;
/// Largest width or height the one-byte fields hold (255 blocks of 8); larger frames carry
/// 0 there and their size out of band (`a=x-dimensions` in the SDP).
pub const MAX_INBAND_DIMENSION: u16 = 2040;
/// Smallest packet size a frame can be cut into (the first packet holds the tables).
pub const MIN_MTU: usize =
    RTP_HEADER_LEN + JPEG_HEADER_LEN + RESTART_HEADER_LEN + QTABLE_BLOCK_LEN + 1;

/// How a sender numbers and sizes its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketizerConfig {
    /// 26, or a dynamic type (96-127) announced in the SDP.
    pub payload_type: u8,
    /// The stream's SSRC (random, RFC 3550).
    pub ssrc: u32,
    /// The first packet's sequence number (random, RFC 3550).
    pub first_sequence: u16,
    /// Largest RTP packet (header included), at least [`MIN_MTU`].
    pub mtu: usize,
}

/// Cuts frames into packets; keeps the sequence number from one frame to the next.
#[derive(Debug)]
pub struct Packetizer {
    config: PacketizerConfig,
    next_sequence: u16,
    scratch: Vec<u8>,
    /// Packets written so far (for RTCP sender reports).
    pub packets: u64,
    /// Payload bytes written so far (RFC 3550's sender octet count).
    pub payload_bytes: u64,
}

/// One packet's share of a frame's scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    offset: usize,
    len: usize,
    /// Restart header: first interval's index, F and L bits.
    count: u16,
    first: bool,
    last: bool,
}

impl Packetizer {
    /// A packetizer for `config` (its `mtu` raised to [`MIN_MTU`] if below).
    pub fn new(mut config: PacketizerConfig) -> Self {
        config.mtu = config.mtu.max(MIN_MTU);
        Packetizer {
            next_sequence: config.first_sequence,
            scratch: vec![0; config.mtu],
            config,
            packets: 0,
            payload_bytes: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &PacketizerConfig {
        &self.config
    }

    /// The sequence number the next packet gets.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// Hands each packet of `frame`, in order, to `emit`; `timestamp` is the frame's 90 kHz
    /// media time. Returns the number of packets.
    pub fn packetize(
        &mut self,
        frame: &JpegFrame,
        timestamp: u32,
        mut emit: impl FnMut(&[u8]),
    ) -> usize {
        let restart = frame.restart_interval > 0;
        let head = RTP_HEADER_LEN + JPEG_HEADER_LEN + if restart { RESTART_HEADER_LEN } else { 0 };
        let room = self.config.mtu - head;
        let pieces = if restart {
            restart_pieces(frame.scan, room)
        } else {
            plain_pieces(frame.scan.len(), room)
        };
        let n = pieces.len();
        let fit = |d: u16| {
            if d > MAX_INBAND_DIMENSION {
                0
            } else {
                d.div_ceil(8) as u8
            }
        };
        let (w8, h8) = (fit(frame.width), fit(frame.height));
        let rtp_type = frame.subsampling.rtp_type() + if restart { 64 } else { 0 };
        for (i, p) in pieces.into_iter().enumerate() {
            let out = &mut self.scratch;
            RtpHeader {
                marker: i + 1 == n,
                payload_type: self.config.payload_type,
                sequence: self.next_sequence,
                timestamp,
                ssrc: self.config.ssrc,
            }
            .emit(out);
            let mut at = RTP_HEADER_LEN;
            let off = (p.offset as u32).to_be_bytes();
            out[at..at + 8].copy_from_slice(&[0, off[1], off[2], off[3], rtp_type, 255, w8, h8]);
            at += 8;
            if restart {
                let flags = (u16::from(p.first) << 15) | (u16::from(p.last) << 14);
                out[at..at + 2].copy_from_slice(&frame.restart_interval.to_be_bytes());
                out[at + 2..at + 4].copy_from_slice(&(flags | (p.count & 0x3FFF)).to_be_bytes());
                at += 4;
            }
            if p.offset == 0 {
                out[at..at + 4].copy_from_slice(&[0, 0, 0, 128]);
                out[at + 4..at + 68].copy_from_slice(&frame.qtables[0]);
                out[at + 68..at + 132].copy_from_slice(&frame.qtables[1]);
                at += QTABLE_BLOCK_LEN;
            }
            out[at..at + p.len].copy_from_slice(&frame.scan[p.offset..p.offset + p.len]);
            at += p.len;
            emit(&out[..at]);
            self.next_sequence = self.next_sequence.wrapping_add(1);
            self.packets += 1;
            self.payload_bytes += (at - RTP_HEADER_LEN) as u64;
        }
        n
    }
}

/// Equal cuts of `len` bytes, the first `QTABLE_BLOCK_LEN` shorter (it holds the tables).
fn plain_pieces(len: usize, room: usize) -> Vec<Piece> {
    let mut out = Vec::with_capacity(len / room + 2);
    let mut offset = 0;
    loop {
        let cap = if offset == 0 {
            room - QTABLE_BLOCK_LEN
        } else {
            room
        };
        let take = cap.min(len - offset);
        out.push(Piece {
            offset,
            len: take,
            count: 0x3FFF,
            first: true,
            last: true,
        });
        offset += take;
        if offset >= len {
            return out;
        }
    }
}

/// Where each restart interval of `scan` starts (the byte after each RSTn marker; 0 first).
pub fn interval_starts(scan: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut i = 0;
    while let Some(p) = scan[i..].iter().position(|&b| b == 0xFF) {
        let at = i + p;
        if let Some(0xD0..=0xD7) = scan.get(at + 1) {
            starts.push(at + 2);
        }
        i = at + 1;
    }
    starts
}

/// Packets holding whole restart intervals where they fit, an interval too large for one
/// cut into fragments (F on the first, L on the last).
fn restart_pieces(scan: &[u8], room: usize) -> Vec<Piece> {
    let mut starts = interval_starts(scan);
    starts.push(scan.len());
    let mut out = Vec::new();
    let mut k = 0; // interval at the start of the next packet
    while k + 1 < starts.len() {
        let begin = starts[k];
        let cap = if begin == 0 {
            room - QTABLE_BLOCK_LEN
        } else {
            room
        };
        let mut end_k = k + 1;
        while end_k + 1 < starts.len() && starts[end_k + 1] - begin <= cap {
            end_k += 1;
        }
        let len = starts[end_k] - begin;
        let count = (k % 0x3FFF) as u16;
        if len <= cap {
            out.push(Piece {
                offset: begin,
                len,
                count,
                first: true,
                last: true,
            });
        } else {
            // One interval larger than a packet: fragments of it.
            let mut offset = begin;
            let end = starts[k + 1];
            end_k = k + 1;
            while offset < end {
                let cap = if offset == 0 {
                    room - QTABLE_BLOCK_LEN
                } else {
                    room
                };
                let take = cap.min(end - offset);
                out.push(Piece {
                    offset,
                    len: take,
                    count,
                    first: offset == begin,
                    last: offset + take == end,
                });
                offset += take;
            }
        }
        k = end_k;
    }
    if out.is_empty() {
        out.push(Piece {
            offset: 0,
            len: 0,
            count: 0,
            first: true,
            last: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_pieces_cover_the_scan_once() {
        let p = plain_pieces(10_000, 1000);
        assert_eq!(p[0].len, 1000 - QTABLE_BLOCK_LEN);
        assert_eq!(p.iter().map(|p| p.len).sum::<usize>(), 10_000);
        assert!(p.windows(2).all(|w| w[0].offset + w[0].len == w[1].offset));
        assert_eq!(plain_pieces(0, 1000).len(), 1);
    }

    #[test]
    fn restart_pieces_start_on_interval_boundaries() {
        // Intervals of 300 bytes (marker included), room for three in a packet.
        let mut scan = Vec::new();
        for i in 0..10u8 {
            scan.extend(std::iter::repeat_n(0x11, 298));
            if i < 9 {
                scan.extend_from_slice(&[0xFF, 0xD0 + (i % 8)]);
            }
        }
        let starts = interval_starts(&scan);
        assert_eq!(starts.len(), 10);
        let p = restart_pieces(&scan, 1000);
        assert_eq!(p.iter().map(|p| p.len).sum::<usize>(), scan.len());
        for piece in &p {
            assert!(starts.contains(&piece.offset), "{piece:?}");
            assert!(piece.first && piece.last);
            assert_eq!(starts[usize::from(piece.count)], piece.offset);
        }
        // An interval larger than the room is cut into fragments flagged F ... L.
        let big = restart_pieces(&scan, 200);
        assert!(big.iter().any(|p| !p.first));
        assert_eq!(big.iter().map(|p| p.len).sum::<usize>(), scan.len());
        assert!(big.iter().all(|p| p.len <= 200));
        assert!(big
            .windows(2)
            .all(|w| w[0].offset + w[0].len == w[1].offset));
        assert!(big.windows(2).all(|w| w[1].first == w[0].last));
    }
}
