//! How a frame body is cut into chunks.
//!
//! A frame of `len` bytes in `count` chunks has chunks of `size = ceil(len / count)` bytes, the
//! last one shorter. The receiver derives every chunk's offset and length from the two header
//! fields alone, so no offset travels on the wire and every chunk's length can be checked.
//! A layout is valid only if the last chunk is non-empty (or the frame is empty and has exactly
//! one chunk); [`ChunkLayout::from_header`] rejects every other pair.

use crate::ids::ChunkIndex;

/// The geometry of one frame's chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLayout {
    len: u64,
    count: u32,
    size: u64,
}

impl ChunkLayout {
    /// The layout a sender uses for a frame of `len` bytes when a chunk may carry at most
    /// `max_chunk` bytes. `None` if that would need more than `u32::MAX` chunks.
    pub fn for_frame(len: u64, max_chunk: usize) -> Option<Self> {
        let max_chunk = max_chunk.max(1) as u64;
        let count = len.div_ceil(max_chunk).max(1);
        Self::from_header(len, u32::try_from(count).ok()?)
    }

    /// The layout declared by a header, if `len` and `count` are consistent.
    pub fn from_header(len: u64, count: u32) -> Option<Self> {
        if count == 0 {
            return None;
        }
        let size = len.div_ceil(u64::from(count));
        let before_last = u64::from(count - 1) * size;
        let valid = if len == 0 {
            count == 1
        } else {
            before_last < len
        };
        valid.then_some(Self { len, count, size })
    }

    /// Bytes in the whole frame.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the frame is empty (it still has one, empty, chunk).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of chunks.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Bytes in every chunk but the last.
    pub fn chunk_size(&self) -> u64 {
        self.size
    }

    /// Byte offset of chunk `index` in the frame, if it exists.
    pub fn offset(&self, index: ChunkIndex) -> Option<u64> {
        (index.0 < self.count).then(|| u64::from(index.0) * self.size)
    }

    /// Length of chunk `index`, if it exists.
    pub fn chunk_len(&self, index: ChunkIndex) -> Option<usize> {
        let start = self.offset(index)?;
        let end = start.saturating_add(self.size).min(self.len);
        usize::try_from(end - start).ok()
    }

    /// Bytes of each Reed-Solomon parity chunk: the chunk size rounded up to even (the code
    /// works on pairs of bytes). Data chunks are zero-padded to this length for coding.
    pub fn parity_len(&self) -> usize {
        (self.size.div_ceil(2) * 2) as usize
    }

    /// Byte range of chunk `index` in the frame body, if it exists.
    pub fn range(&self, index: ChunkIndex) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.offset(index)?).ok()?;
        Some(start..start + self.chunk_len(index)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_layouts_are_always_valid_and_cover_the_frame() {
        for len in 0..300u64 {
            for max in 1..40usize {
                let l = ChunkLayout::for_frame(len, max).unwrap();
                assert!(l.chunk_size() <= max as u64);
                let total: usize = (0..l.count())
                    .map(|i| l.chunk_len(ChunkIndex(i)).unwrap())
                    .sum();
                assert_eq!(total as u64, len);
                assert_eq!(ChunkLayout::from_header(len, l.count()), Some(l));
            }
        }
    }

    #[test]
    fn inconsistent_headers_are_rejected() {
        assert_eq!(ChunkLayout::from_header(10, 0), None);
        assert_eq!(ChunkLayout::from_header(0, 2), None);
        // 10 bytes in 9 chunks of 2 would leave the last chunks empty.
        assert_eq!(ChunkLayout::from_header(10, 9), None);
        assert_eq!(ChunkLayout::from_header(u64::MAX, 1).unwrap().count(), 1);
        let l = ChunkLayout::from_header(25, 3).unwrap();
        assert_eq!(l.chunk_len(ChunkIndex(2)), Some(7));
        assert_eq!(l.chunk_len(ChunkIndex(3)), None);
    }
}
