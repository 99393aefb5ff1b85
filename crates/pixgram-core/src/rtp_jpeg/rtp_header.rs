//! The RTP fixed header (RFC 3550 section 5.1), read and written by hand: 12 bytes, plus the
//! CSRC list, header extension and padding a receiver must skip. (The `rtp-types` crate does
//! the same; 60 lines here keep the core free of a dependency for it.)

/// Bytes of the fixed header pixgram writes (no CSRC, no extension).
pub const RTP_HEADER_LEN: usize = 12;

/// An RTP packet's header fields and where its payload lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit: the last packet of a frame, for RFC 2435.
    pub marker: bool,
    /// Payload type (26 for JPEG, or a dynamic one).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// 90 kHz media time of the frame.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// Why a datagram is not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than its header says.
    #[error("RTP packet cut short")]
    Short,
    /// Not RTP version 2.
    #[error("not RTP version 2")]
    Version,
    /// Padding longer than the packet.
    #[error("RTP padding longer than the packet")]
    Padding,
}

impl RtpHeader {
    /// Reads `packet`: the header and the payload's byte range.
    pub fn parse(packet: &[u8]) -> Result<(RtpHeader, std::ops::Range<usize>), RtpError> {
        let fixed = packet.get(..RTP_HEADER_LEN).ok_or(RtpError::Short)?;
        if fixed[0] >> 6 != 2 {
            return Err(RtpError::Version);
        }
        let csrcs = usize::from(fixed[0] & 0x0F);
        let mut start = RTP_HEADER_LEN + 4 * csrcs;
        if fixed[0] & 0x10 != 0 {
            let ext = packet.get(start..start + 4).ok_or(RtpError::Short)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        let mut end = packet.len();
        if fixed[0] & 0x20 != 0 {
            let pad = usize::from(*packet.last().ok_or(RtpError::Short)?);
            end = end.checked_sub(pad).ok_or(RtpError::Padding)?;
        }
        if start > end {
            return Err(RtpError::Short);
        }
        let header = RtpHeader {
            marker: fixed[1] & 0x80 != 0,
            payload_type: fixed[1] & 0x7F,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        };
        Ok((header, start..end))
    }

    /// Writes the 12-byte header at the start of `out` (at least [`RTP_HEADER_LEN`] bytes).
    pub fn emit(&self, out: &mut [u8]) {
        out[0] = 0x80;
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7F);
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_extensions_and_padding_are_skipped() {
        let h = RtpHeader {
            marker: true,
            payload_type: 26,
            sequence: 65535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 7,
        };
        let mut p = [0u8; 20];
        h.emit(&mut p);
        assert_eq!(RtpHeader::parse(&p), Ok((h, 12..20)));
        // One CSRC, a one-word extension, 2 bytes of padding.
        let mut q = vec![0x80 | 0x20 | 0x10 | 1, 26, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        q.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        q.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension
        q.extend_from_slice(&[0xAA, 0xBB, 0, 2]);
        let (_, range) = RtpHeader::parse(&q).unwrap();
        assert_eq!(&q[range], &[0xAA, 0xBB]);
        assert_eq!(RtpHeader::parse(&q[..11]), Err(RtpError::Short));
        assert_eq!(RtpHeader::parse(&[0x40; 12]), Err(RtpError::Version));
        let mut bad_pad = p;
        bad_pad[0] |= 0x20;
        bad_pad[19] = 200;
        assert_eq!(RtpHeader::parse(&bad_pad), Err(RtpError::Padding));
    }
}
