//! Reading a JPEG file into what RFC 2435 carries: the frame's type (4:2:2 or 4:2:0), size,
//! restart interval, quantisation tables and the entropy-coded scan. Anything the payload
//! format cannot describe is refused with the reason, because a receiver rebuilds the header
//! from the RFC's fixed choices (standard Huffman tables, baseline, three 8-bit components):
//! a frame sent anyway decodes as garbage there (what GStreamer does with optimised tables).

use thiserror::Error;

use super::tables::is_standard_huffman;

/// Chroma subsampling of a frame RFC 2435 can carry: its `Type` field (plus 64 with restart
/// markers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsampling {
    /// Type 0: luminance 2x1, chroma 1x1 (4:2:2).
    Yuv422,
    /// Type 1: luminance 2x2, chroma 1x1 (4:2:0).
    Yuv420,
}

impl Subsampling {
    /// The RFC 2435 type (0 or 1), before the restart-marker offset.
    pub fn rtp_type(self) -> u8 {
        match self {
            Subsampling::Yuv422 => 0,
            Subsampling::Yuv420 => 1,
        }
    }

    /// The MCU in pixels (width, height).
    pub fn mcu(self) -> (u32, u32) {
        match self {
            Subsampling::Yuv422 => (16, 8),
            Subsampling::Yuv420 => (16, 16),
        }
    }
}

/// A baseline JPEG as RFC 2435 sees it; `scan` borrows the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegFrame<'a> {
    /// 4:2:2 or 4:2:0.
    pub subsampling: Subsampling,
    /// Pixels.
    pub width: u16,
    /// Pixels.
    pub height: u16,
    /// MCUs per restart interval, 0 without restart markers.
    pub restart_interval: u16,
    /// The luminance then the chrominance table, zigzag order (the same twice if all
    /// components share one).
    pub qtables: [[u8; 64]; 2],
    /// The entropy-coded data, restart markers included, end-of-image excluded.
    pub scan: &'a [u8],
}

/// Why a JPEG cannot be carried by RFC 2435.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JpegError {
    /// Not a JPEG at all, or cut short.
    #[error("not a complete JPEG ({0})")]
    Malformed(&'static str),
    /// Progressive (SOF2): RFC 2435 carries one baseline scan.
    #[error("progressive JPEG (RFC 2435 carries baseline JPEGs only)")]
    Progressive,
    /// Lossless, hierarchical or arithmetic-coded.
    #[error("JPEG coding process SOF{0} (RFC 2435 carries baseline Huffman JPEGs only)")]
    UnsupportedProcess(u8),
    /// 12- or 16-bit samples.
    #[error("{0}-bit JPEG (RFC 2435 carries 8-bit samples only)")]
    Precision(u8),
    /// One component.
    #[error("grayscale JPEG (RFC 2435 carries three-component YUV only)")]
    Grayscale,
    /// Not one or three components.
    #[error("JPEG with {0} components (RFC 2435 carries three-component YUV only)")]
    Components(u8),
    /// No chroma subsampling, or 4:4:0.
    #[error("{0} chroma sampling (RFC 2435 carries 4:2:2 and 4:2:0 only)")]
    Sampling(&'static str),
    /// Sampling factors RFC 2435 has no type for (its 4:2:2 is Y 2x1, its 4:2:0 Y 2x2, with
    /// chroma 1x1; FFmpeg's 4:2:2 as Y 2x2, chroma 1x2 is not either).
    #[error(
        "chroma sampling factors Y {}x{}, Cb {}x{}, Cr {}x{} (RFC 2435 carries Y 2x1 or 2x2 \
         with chroma 1x1 only)",
        .0 >> 4, .0 & 15, .1 >> 4, .1 & 15, .2 >> 4, .2 & 15
    )]
    SamplingFactors(u8, u8, u8),
    /// Huffman tables other than the standard ones (optimised tables).
    #[error(
        "non-standard (optimised) Huffman tables (RFC 2435 receivers assume the standard tables)"
    )]
    NonStandardHuffman,
    /// Components that do not share tables as RFC 2435 assumes (Y on its own, Cb and Cr on one).
    #[error("JPEG whose components use tables RFC 2435 cannot describe")]
    TableLayout,
    /// A 16-bit quantisation table.
    #[error("16-bit quantisation tables (pixgram sends 8-bit tables only)")]
    WideQuantTable,
    /// More than one scan.
    #[error("JPEG with more than one scan (RFC 2435 carries one interleaved scan)")]
    MultipleScans,
    /// A frame header declaring no pixels.
    #[error("JPEG of 0 pixels")]
    Empty,
}

/// Bytes of a marker segment's length field onwards.
fn segment(bytes: &[u8], at: usize) -> Result<&[u8], JpegError> {
    let len = bytes
        .get(at..at + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or(JpegError::Malformed("segment length cut short"))?;
    if len < 2 {
        return Err(JpegError::Malformed("segment length below 2"));
    }
    bytes
        .get(at + 2..at + len)
        .ok_or(JpegError::Malformed("segment cut short"))
}

struct Component {
    id: u8,
    sampling: u8,
    qtable: u8,
}

/// Reads `bytes` (one JPEG file) into what RFC 2435 carries, or says why it cannot.
pub fn parse(bytes: &[u8]) -> Result<JpegFrame<'_>, JpegError> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(JpegError::Malformed("no start-of-image marker"));
    }
    let mut qt: [Option<[u8; 64]>; 4] = [None; 4];
    let mut comps: Vec<Component> = Vec::new();
    let (mut width, mut height, mut restart) = (0u16, 0u16, 0u16);
    let mut at = 2;
    loop {
        // Fill bytes (0xFF runs) may precede a marker.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = match bytes.get(at..at + 2) {
            Some([0xFF, m]) => *m,
            _ => return Err(JpegError::Malformed("no start of scan")),
        };
        at += 2;
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            continue;
        }
        let body = segment(bytes, at)?;
        let next = at + 2 + body.len();
        match marker {
            0xC0 | 0xC1 => {
                let (w, h, c) = read_sof(body)?;
                width = w;
                height = h;
                comps = c;
            }
            0xC2 | 0xC6 | 0xCA | 0xCE => return Err(JpegError::Progressive),
            0xC3 | 0xC5 | 0xC7 | 0xC9 | 0xCB | 0xCD | 0xCF => {
                return Err(JpegError::UnsupportedProcess(marker - 0xC0))
            }
            0xC4 => check_dht(body)?,
            0xDB => read_dqt(body, &mut qt)?,
            0xDD => {
                let b = body.get(..2).ok_or(JpegError::Malformed("short DRI"))?;
                restart = u16::from_be_bytes([b[0], b[1]]);
            }
            0xDA => {
                check_sos(body, &comps)?;
                let scan = &bytes[next.min(bytes.len())..];
                let scan = &scan[..scan_end(scan)?];
                return finish(width, height, restart, &comps, &qt, scan);
            }
            0xD9 => return Err(JpegError::Malformed("end of image before any scan")),
            _ => {}
        }
        at = next;
    }
}

fn read_sof(body: &[u8]) -> Result<(u16, u16, Vec<Component>), JpegError> {
    let head = body.get(..6).ok_or(JpegError::Malformed("short SOF"))?;
    if head[0] != 8 {
        return Err(JpegError::Precision(head[0]));
    }
    let h = u16::from_be_bytes([head[1], head[2]]);
    let w = u16::from_be_bytes([head[3], head[4]]);
    let n = head[5];
    let list = body
        .get(6..6 + 3 * usize::from(n))
        .ok_or(JpegError::Malformed("short SOF"))?;
    let comps = list
        .chunks_exact(3)
        .map(|c| Component {
            id: c[0],
            sampling: c[1],
            qtable: c[2],
        })
        .collect();
    Ok((w, h, comps))
}

fn check_dht(mut body: &[u8]) -> Result<(), JpegError> {
    while !body.is_empty() {
        let counts = body.get(1..17).ok_or(JpegError::Malformed("short DHT"))?;
        let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let symbols = body
            .get(17..17 + n)
            .ok_or(JpegError::Malformed("short DHT"))?;
        if !is_standard_huffman(body[0], counts, symbols) {
            return Err(JpegError::NonStandardHuffman);
        }
        body = &body[17 + n..];
    }
    Ok(())
}

fn read_dqt(mut body: &[u8], qt: &mut [Option<[u8; 64]>; 4]) -> Result<(), JpegError> {
    while let Some(&pq_tq) = body.first() {
        if pq_tq >> 4 != 0 {
            return Err(JpegError::WideQuantTable);
        }
        let t = body.get(1..65).ok_or(JpegError::Malformed("short DQT"))?;
        let mut table = [0u8; 64];
        table.copy_from_slice(t);
        qt[usize::from(pq_tq & 3)] = Some(table);
        body = &body[65..];
    }
    Ok(())
}

fn check_sos(body: &[u8], comps: &[Component]) -> Result<(), JpegError> {
    let n = usize::from(*body.first().ok_or(JpegError::Malformed("short SOS"))?);
    let list = body
        .get(1..1 + 2 * n + 3)
        .ok_or(JpegError::Malformed("short SOS"))?;
    if comps.is_empty() {
        return Err(JpegError::Malformed(
            "start of scan before the frame header",
        ));
    }
    if n != comps.len() {
        return Err(JpegError::MultipleScans);
    }
    for (i, c) in list[..2 * n].chunks_exact(2).enumerate() {
        // Y with DC/AC tables 0, Cb and Cr with tables 1: what the rebuilt header says.
        let want = if i == 0 { 0x00 } else { 0x11 };
        if comps.get(i).map(|c| c.id) != Some(c[0]) || c[1] != want {
            return Err(JpegError::TableLayout);
        }
    }
    let tail = &list[2 * n..];
    if tail != [0, 63, 0] {
        return Err(JpegError::Progressive);
    }
    Ok(())
}

/// Where the entropy-coded data ends: the first marker that is neither a stuffed 0xFF nor a
/// restart marker. It must be the end of image (or the data simply ends, as FFmpeg's
/// payloads do).
fn scan_end(scan: &[u8]) -> Result<usize, JpegError> {
    let mut i = 0;
    while let Some(p) = memchr::memchr(0xFF, &scan[i..]) {
        let at = i + p;
        match scan.get(at + 1) {
            None => return Ok(at),
            Some(0x00) | Some(0xD0..=0xD7) | Some(0xFF) => i = at + 1,
            Some(0xD9) => return Ok(at),
            Some(_) => return Err(JpegError::MultipleScans),
        }
    }
    Ok(scan.len())
}

fn finish<'a>(
    width: u16,
    height: u16,
    restart_interval: u16,
    comps: &[Component],
    qt: &[Option<[u8; 64]>; 4],
    scan: &'a [u8],
) -> Result<JpegFrame<'a>, JpegError> {
    match comps.len() {
        1 => return Err(JpegError::Grayscale),
        3 => {}
        n => return Err(JpegError::Components(n as u8)),
    }
    if width == 0 || height == 0 {
        return Err(JpegError::Empty);
    }
    let subsampling = match (comps[0].sampling, comps[1].sampling, comps[2].sampling) {
        (0x21, 0x11, 0x11) => Subsampling::Yuv422,
        (0x22, 0x11, 0x11) => Subsampling::Yuv420,
        // Equal factors for all three (1x1, or 2x2 as FFmpeg writes) mean no subsampling.
        (y, cb, cr) if y == cb && cb == cr => return Err(JpegError::Sampling("4:4:4")),
        (0x12, 0x11, 0x11) => return Err(JpegError::Sampling("4:4:0")),
        (y, cb, cr) => return Err(JpegError::SamplingFactors(y, cb, cr)),
    };
    if comps[1].qtable != comps[2].qtable {
        return Err(JpegError::TableLayout);
    }
    let table = |i: u8| qt[usize::from(i & 3)].ok_or(JpegError::Malformed("missing DQT"));
    let luma = table(comps[0].qtable)?;
    let qtables = [luma, table(comps[1].qtable)?];
    Ok(JpegFrame {
        subsampling,
        width,
        height,
        restart_interval,
        qtables,
        scan,
    })
}
