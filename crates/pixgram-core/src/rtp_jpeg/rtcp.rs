//! RTCP (RFC 3550 section 6): the sender report a sender sends every few seconds, the
//! receiver report (loss fraction, cumulative loss, jitter) a receiver answers with, and the
//! SDES CNAME every compound packet carries. Written and read by hand, like the RTP header.

/// One report block of an SR or RR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction of its packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Packets lost in all (24 bits, signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received (0: none).
    pub last_sr: u32,
    /// Since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// A sender report's sender information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// The sender's SSRC.
    pub ssrc: u32,
    /// Wall-clock time, 64-bit NTP format.
    pub ntp: u64,
    /// The same moment on the RTP clock.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload bytes sent.
    pub octets: u32,
}

/// One RTCP packet of a compound packet, as pixgram reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// SR (200).
    SenderReport(SenderInfo, Vec<ReportBlock>),
    /// RR (201): the reporter's SSRC and its blocks.
    ReceiverReport(u32, Vec<ReportBlock>),
    /// Any other type (SDES, BYE, APP...), skipped.
    Other(u8),
}

fn block_bytes(b: &ReportBlock, out: &mut Vec<u8>) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0xFF_FFFF;
    out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
    out.extend_from_slice(&b.highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.last_sr.to_be_bytes());
    out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
}

fn header(count: u8, pt: u8, words_after: usize, out: &mut Vec<u8>) {
    out.push(0x80 | (count & 0x1F));
    out.push(pt);
    out.extend_from_slice(&(words_after as u16).to_be_bytes());
}

/// Appends an SR with `blocks` (at most 31).
pub fn write_sender_report(info: &SenderInfo, blocks: &[ReportBlock], out: &mut Vec<u8>) {
    let blocks = &blocks[..blocks.len().min(31)];
    header(blocks.len() as u8, 200, 6 + 6 * blocks.len(), out);
    out.extend_from_slice(&info.ssrc.to_be_bytes());
    out.extend_from_slice(&info.ntp.to_be_bytes());
    out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&info.packets.to_be_bytes());
    out.extend_from_slice(&info.octets.to_be_bytes());
    blocks.iter().for_each(|b| block_bytes(b, out));
}

/// Appends an RR from `ssrc` with `blocks` (at most 31).
pub fn write_receiver_report(ssrc: u32, blocks: &[ReportBlock], out: &mut Vec<u8>) {
    let blocks = &blocks[..blocks.len().min(31)];
    header(blocks.len() as u8, 201, 1 + 6 * blocks.len(), out);
    out.extend_from_slice(&ssrc.to_be_bytes());
    blocks.iter().for_each(|b| block_bytes(b, out));
}

/// Appends an SDES with one chunk: `ssrc`'s CNAME (at most 255 bytes).
pub fn write_sdes_cname(ssrc: u32, cname: &str, out: &mut Vec<u8>) {
    let name = &cname.as_bytes()[..cname.len().min(255)];
    // SSRC, CNAME item (type, length, text), end item, padding to a word.
    let body = 4 + 2 + name.len() + 1;
    let words = body.div_ceil(4);
    header(1, 202, words, out);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&[1, name.len() as u8]);
    out.extend_from_slice(name);
    out.resize(out.len() + words * 4 - (4 + 2 + name.len()), 0);
}

fn read_block(b: &[u8]) -> ReportBlock {
    let w = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let lost = w(4) & 0xFF_FFFF;
    ReportBlock {
        ssrc: w(0),
        fraction_lost: b[4],
        cumulative_lost: ((lost << 8) as i32) >> 8,
        highest_seq: w(8),
        jitter: w(12),
        last_sr: w(16),
        delay_since_last_sr: w(20),
    }
}

/// Reads a compound RTCP packet; `None` if it is not one (wrong version, lengths that do
/// not add up).
pub fn parse_compound(mut bytes: &[u8]) -> Option<Vec<RtcpPacket>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let h = bytes.get(..4)?;
        if h[0] >> 6 != 2 {
            return None;
        }
        let count = usize::from(h[0] & 0x1F);
        let len = 4 + 4 * usize::from(u16::from_be_bytes([h[2], h[3]]));
        let body = bytes.get(4..len)?;
        let blocks = |from: usize| -> Option<Vec<ReportBlock>> {
            let b = body.get(from..from + 24 * count)?;
            Some(b.chunks_exact(24).map(read_block).collect())
        };
        let w = |i: usize| u32::from_be_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        out.push(match h[1] {
            200 if body.len() >= 24 => RtcpPacket::SenderReport(
                SenderInfo {
                    ssrc: w(0),
                    ntp: (u64::from(w(4)) << 32) | u64::from(w(8)),
                    rtp_timestamp: w(12),
                    packets: w(16),
                    octets: w(20),
                },
                blocks(24)?,
            ),
            201 if body.len() >= 4 => RtcpPacket::ReceiverReport(w(0), blocks(4)?),
            200 | 201 => return None,
            pt => RtcpPacket::Other(pt),
        });
        bytes = &bytes[len..];
    }
    Some(out)
}

/// Whether a datagram looks like RTCP rather than RTP (payload-type byte 192-223, RFC 5761).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_in_one_compound_packet() {
        let block = ReportBlock {
            ssrc: 9,
            fraction_lost: 64,
            cumulative_lost: -3,
            highest_seq: 70_000,
            jitter: 120,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        };
        let info = SenderInfo {
            ssrc: 9,
            ntp: 0x0102_0304_0506_0708,
            rtp_timestamp: 90_000,
            packets: 10,
            octets: 14_000,
        };
        let mut p = Vec::new();
        write_sender_report(&info, &[], &mut p);
        write_sdes_cname(9, "pixgram@host", &mut p);
        write_receiver_report(5, &[block], &mut p);
        assert_eq!(p.len() % 4, 0);
        assert!(is_rtcp(&p));
        let got = parse_compound(&p).unwrap();
        assert_eq!(
            got,
            vec![
                RtcpPacket::SenderReport(info, vec![]),
                RtcpPacket::Other(202),
                RtcpPacket::ReceiverReport(5, vec![block]),
            ]
        );
        assert_eq!(parse_compound(&p[..p.len() - 4]), None);
    }
}
