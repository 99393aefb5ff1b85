//! The RFC 2435 headers of one packet's payload (main JPEG header, restart-marker header,
//! quantisation-table header), read without trusting a byte of them.

use super::jfif::QuantTable;

/// Fields of an RFC 2435 packet's headers.
pub(super) struct JpegPacket<'a> {
    pub(super) offset: u32,
    pub(super) rtp_type: u8,
    pub(super) q: u8,
    pub(super) w8: u8,
    pub(super) h8: u8,
    pub(super) restart: Option<(u16, bool, u16)>,
    pub(super) tables: Option<[QuantTable; 2]>,
    pub(super) data: &'a [u8],
}

pub(super) fn parse_jpeg_payload(p: &[u8]) -> Option<JpegPacket<'_>> {
    let h = p.get(..8)?;
    let offset = u32::from_be_bytes([0, h[1], h[2], h[3]]);
    let (rtp_type, q, w8, h8) = (h[4], h[5], h[6], h[7]);
    if !matches!(rtp_type, 0 | 1 | 64 | 65) {
        return None;
    }
    let mut at = 8;
    let restart = if rtp_type >= 64 {
        let r = p.get(at..at + 4)?;
        at += 4;
        let flags = u16::from_be_bytes([r[2], r[3]]);
        Some((
            u16::from_be_bytes([r[0], r[1]]),
            flags & 0x8000 != 0,
            flags & 0x3FFF,
        ))
    } else {
        None
    };
    let mut tables = None;
    if offset == 0 && q >= 128 {
        let t = p.get(at..at + 4)?;
        let (precision, len) = (t[1], usize::from(u16::from_be_bytes([t[2], t[3]])));
        at += 4;
        let data = p.get(at..at + len)?;
        at += len;
        if len > 0 {
            tables = Some(split_tables(precision, data)?);
        }
    }
    Some(JpegPacket {
        offset,
        rtp_type,
        q,
        w8,
        h8,
        restart,
        tables,
        data: &p[at..],
    })
}

/// The luminance and chrominance tables of an in-band table block (one table serves both).
fn split_tables(precision: u8, data: &[u8]) -> Option<[QuantTable; 2]> {
    let size = |i: u8| if precision & (1 << i) != 0 { 128 } else { 64 };
    let (a, b) = (size(0), size(1));
    let first = QuantTable {
        wide: a == 128,
        data: data.get(..a)?.to_vec(),
    };
    let second = match data.get(a..a + b) {
        Some(d) => QuantTable {
            wide: b == 128,
            data: d.to_vec(),
        },
        None if data.len() == a => first.clone(),
        None => return None,
    };
    Some([first, second])
}
