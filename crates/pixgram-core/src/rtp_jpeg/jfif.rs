//! Rebuilding a complete JFIF file from an RFC 2435 payload (Appendix B): the header the
//! sender left out (SOI, DQT, DRI, SOF0, the standard DHTs, SOS) in front of the scan, and the
//! end-of-image marker after it when the sender stripped it (FFmpeg does; GStreamer keeps it).

use super::jpeg::Subsampling;
use super::tables::STANDARD_HUFFMAN;

/// One quantisation table as received: 64 entries, 8 or 16 bits each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantTable {
    /// 16-bit entries (big-endian, 128 bytes) rather than 8-bit (64 bytes).
    pub wide: bool,
    /// The entries in zigzag order.
    pub data: Vec<u8>,
}

/// What the rebuilt header says: everything RFC 2435 carries about a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHeader {
    /// 4:2:2 (type 0) or 4:2:0 (type 1).
    pub subsampling: Subsampling,
    /// Pixels.
    pub width: u16,
    /// Pixels.
    pub height: u16,
    /// MCUs per restart interval, 0 for none.
    pub restart_interval: u16,
    /// Luminance and chrominance tables.
    pub tables: [QuantTable; 2],
}

/// Bytes the header [`write_header`] writes, at most (for reserving).
pub const MAX_HEADER_LEN: usize = 700;

/// Writes SOI through SOS for `h` into `out`.
pub fn write_header(h: &FrameHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    // APP0 "JFIF" 1.1, no thumbnail: what makes the result a JFIF file.
    out.extend_from_slice(&[
        0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    for (id, t) in h.tables.iter().enumerate() {
        let len = 2 + 1 + t.data.len();
        out.extend_from_slice(&[0xFF, 0xDB]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push((u8::from(t.wide) << 4) | id as u8);
        out.extend_from_slice(&t.data);
    }
    if h.restart_interval > 0 {
        out.extend_from_slice(&[0xFF, 0xDD, 0, 4]);
        out.extend_from_slice(&h.restart_interval.to_be_bytes());
    }
    let luma_sampling = match h.subsampling {
        Subsampling::Yuv422 => 0x21,
        Subsampling::Yuv420 => 0x22,
    };
    out.extend_from_slice(&[0xFF, 0xC0, 0, 17, 8]);
    out.extend_from_slice(&h.height.to_be_bytes());
    out.extend_from_slice(&h.width.to_be_bytes());
    out.extend_from_slice(&[3, 1, luma_sampling, 0, 2, 0x11, 1, 3, 0x11, 1]);
    for t in &STANDARD_HUFFMAN {
        let len = 2 + 1 + 16 + t.symbols.len();
        out.extend_from_slice(&[0xFF, 0xC4]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(t.class_id);
        out.extend_from_slice(&t.counts);
        out.extend_from_slice(t.symbols);
    }
    out.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

/// Appends the end-of-image marker unless `out` already ends with one.
pub fn finish(out: &mut Vec<u8>) {
    if !out.ends_with(&[0xFF, 0xD9]) {
        out.extend_from_slice(&[0xFF, 0xD9]);
    }
}

/// Entropy-coded data for `mcus` MCUs that all decode to mid-grey: every block's DC
/// difference 0 and an immediate end-of-block, in the standard Huffman codes (DC category 0
/// is `00` in both DC tables; EOB is `1010` for luminance, `00` for chrominance). Used for the
/// restart intervals of a partial frame that never arrived.
pub fn grey_mcus(subsampling: Subsampling, mcus: usize, out: &mut Vec<u8>) {
    let luma_blocks = match subsampling {
        Subsampling::Yuv422 => 2,
        Subsampling::Yuv420 => 4,
    };
    let mut bits = BitWriter::default();
    for _ in 0..mcus {
        for _ in 0..luma_blocks {
            bits.put(0b00, 2, out);
            bits.put(0b1010, 4, out);
        }
        for _ in 0..2 {
            bits.put(0b00, 2, out);
            bits.put(0b00, 2, out);
        }
    }
    bits.pad(out);
}

/// Huffman codes into bytes, with 0xFF stuffing.
#[derive(Default)]
struct BitWriter {
    acc: u32,
    bits: u32,
}

impl BitWriter {
    fn put(&mut self, code: u32, len: u32, out: &mut Vec<u8>) {
        self.acc = (self.acc << len) | code;
        self.bits += len;
        while self.bits >= 8 {
            let byte = (self.acc >> (self.bits - 8)) as u8;
            out.push(byte);
            if byte == 0xFF {
                out.push(0);
            }
            self.bits -= 8;
        }
        self.acc &= (1 << self.bits) - 1;
    }

    /// Pads with 1s to the byte boundary (T.81 F.1.2.3).
    fn pad(&mut self, out: &mut Vec<u8>) {
        if self.bits > 0 {
            let pad = 8 - self.bits;
            self.put((1 << pad) - 1, pad, out);
        }
    }
}
