//! Splits an MJPEG byte stream (JPEG after JPEG, as `ffmpeg -f mjpeg -` or a camera writes it)
//! into frames by walking the JPEG markers: from SOI, segment by segment (each carries its
//! length), through the entropy-coded data after SOS (where `FF 00` is a stuffed byte and
//! `FF D0`-`FF D7` are restart markers), to EOI. Bytes between frames are discarded and
//! counted; a frame longer than the limit is dropped and counted; memory stays bounded.

/// What the splitter dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitStats {
    /// Frames returned.
    pub frames: u64,
    /// Bytes outside any frame (before an SOI), discarded.
    pub garbage_bytes: u64,
    /// Frames dropped for exceeding the size limit.
    pub oversize_frames: u64,
    /// Frames abandoned because their marker structure was broken.
    pub broken_frames: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for FF D8.
    Seek,
    /// At a marker boundary inside a frame, `pos` points at the next byte to read.
    Marker,
    /// In entropy-coded data after SOS.
    Scan,
}

/// An incremental MJPEG splitter. Feed bytes with [`MjpegSplitter::push`], take frames with
/// [`MjpegSplitter::next_frame`].
#[derive(Debug)]
pub struct MjpegSplitter {
    buf: Vec<u8>,
    /// Parse position within `buf` (bytes before it belong to the current frame).
    pos: usize,
    state: State,
    max_frame: usize,
    /// Dropping an oversize frame: skip until its EOI.
    skipping: bool,
    stats: SplitStats,
}

impl MjpegSplitter {
    /// A splitter refusing frames over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        MjpegSplitter {
            buf: Vec::new(),
            pos: 0,
            state: State::Seek,
            max_frame: max_frame.max(64),
            skipping: false,
            stats: SplitStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &SplitStats {
        &self.stats
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if the bytes pushed so far complete one.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.state {
                State::Seek => {
                    let start = self.buf.windows(2).position(|w| w == [0xFF, 0xD8]);
                    match start {
                        Some(i) => {
                            self.stats.garbage_bytes += i as u64;
                            self.buf.drain(..i);
                            self.pos = 2;
                            self.state = State::Marker;
                        }
                        None => {
                            // Keep a trailing FF: it may start the next SOI.
                            let keep = usize::from(self.buf.last() == Some(&0xFF));
                            self.stats.garbage_bytes += (self.buf.len() - keep) as u64;
                            self.buf.drain(..self.buf.len() - keep);
                            return None;
                        }
                    }
                }
                State::Marker => {
                    // Fill bytes (FF FF ...) may precede a marker.
                    while self.buf.get(self.pos) == Some(&0xFF)
                        && self.buf.get(self.pos + 1) == Some(&0xFF)
                    {
                        self.pos += 1;
                    }
                    let (Some(&ff), Some(&m)) =
                        (self.buf.get(self.pos), self.buf.get(self.pos + 1))
                    else {
                        return self.need_more();
                    };
                    if ff != 0xFF {
                        return self.broken();
                    }
                    match m {
                        0xD9 => {
                            self.pos += 2;
                            return self.finish();
                        }
                        0xD8 => return self.broken(),
                        0x01 | 0xD0..=0xD7 => self.pos += 2,
                        _ => {
                            let (Some(&hi), Some(&lo)) =
                                (self.buf.get(self.pos + 2), self.buf.get(self.pos + 3))
                            else {
                                return self.need_more();
                            };
                            let len = usize::from(hi) << 8 | usize::from(lo);
                            // An SOS header is 6 + 2 per component (1-4) bytes: anything else
                            // means this frame was cut short and a new one began.
                            if len < 2 || (m == 0xDA && !(8..=14).contains(&len)) {
                                return self.broken();
                            }
                            if self.buf.len() < self.pos + 2 + len {
                                return self.need_more();
                            }
                            self.pos += 2 + len;
                            if m == 0xDA {
                                self.state = State::Scan;
                            }
                        }
                    }
                }
                State::Scan => {
                    // Find FF followed by neither 00 (stuffing) nor a restart marker.
                    let mut i = self.pos;
                    loop {
                        let Some(off) = self.buf[i..].iter().position(|&b| b == 0xFF) else {
                            self.pos = self.buf.len();
                            return self.need_more();
                        };
                        i += off;
                        let Some(&next) = self.buf.get(i + 1) else {
                            self.pos = i;
                            return self.need_more();
                        };
                        if next == 0x00 || (0xD0..=0xD7).contains(&next) || next == 0xFF {
                            i += if next == 0xFF { 1 } else { 2 };
                            continue;
                        }
                        self.pos = i;
                        self.state = State::Marker;
                        break;
                    }
                }
            }
        }
    }

    /// Waits for more bytes, unless the frame is already too long.
    fn need_more(&mut self) -> Option<Vec<u8>> {
        if self.buf.len() > self.max_frame {
            // Drop what we have of it and skip to its end.
            self.stats.oversize_frames += u64::from(!self.skipping);
            self.skipping = true;
            let keep_from = self.pos.min(self.buf.len()).saturating_sub(1);
            self.buf.drain(..keep_from);
            self.pos -= keep_from;
        }
        None
    }

    fn finish(&mut self) -> Option<Vec<u8>> {
        let frame: Vec<u8> = self.buf.drain(..self.pos).collect();
        self.pos = 0;
        self.state = State::Seek;
        if std::mem::take(&mut self.skipping) {
            return self.next_frame();
        }
        if frame.len() > self.max_frame {
            self.stats.oversize_frames += 1;
            return self.next_frame();
        }
        self.stats.frames += 1;
        Some(frame)
    }

    fn broken(&mut self) -> Option<Vec<u8>> {
        self.stats.broken_frames += 1;
        // Resume the search just after this frame's SOI.
        self.buf.drain(..2.min(self.buf.len()));
        self.pos = 0;
        self.skipping = false;
        self.state = State::Seek;
        self.next_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal JPEG-shaped frame: SOI, APP0, SOS with stuffing and a restart, EOI.
    fn frame(tag: u8) -> Vec<u8> {
        let mut f = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x06, b'J', b'F', tag, 0xFF];
        f.extend([0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        f.extend([tag, 0xFF, 0x00, 0x33, 0xFF, 0xD3, 0x44, 0xFF, 0xFF, 0xD9]);
        f
    }

    fn all(s: &mut MjpegSplitter) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| s.next_frame()).collect()
    }

    #[test]
    fn splits_back_to_back_frames_fed_byte_by_byte() {
        let stream: Vec<u8> = [frame(1), frame(2), frame(3)].concat();
        let mut s = MjpegSplitter::new(1 << 20);
        let mut got = Vec::new();
        for b in &stream {
            s.push(&[*b]);
            got.extend(all(&mut s));
        }
        assert_eq!(got, vec![frame(1), frame(2), frame(3)]);
    }

    #[test]
    fn garbage_truncation_and_oversize_are_counted() {
        let mut s = MjpegSplitter::new(1 << 20);
        s.push(b"garbage before");
        s.push(&frame(1));
        s.push(&[0x00, 0x11]);
        s.push(&frame(2)[..12]); // truncated: the next SOI interrupts it
        s.push(&frame(3));
        let got = all(&mut s);
        assert_eq!(got.first(), Some(&frame(1)));
        assert_eq!(got.last(), Some(&frame(3)));
        assert!(s.stats().garbage_bytes >= 14);
        let mut s = MjpegSplitter::new(100);
        let mut big = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0];
        big.extend(std::iter::repeat_n(0x42, 500));
        big.extend([0xFF, 0xD9]);
        s.push(&big);
        assert!(all(&mut s).is_empty());
        s.push(&frame(4));
        assert_eq!(all(&mut s), vec![frame(4)]);
        assert_eq!(s.stats().oversize_frames, 1);
        assert!(s.buf.len() <= 200);
    }
}
