//! How a frame body is cut into chunks.
//!
//! A frame of `len` bytes in `count` chunks has chunks of `size = ceil(len / count)` bytes, the
//! last one shorter. The receiver derives every chunk's offset and length from the two header
//! fields alone, so no offset travels on the wire and every chunk's length can be checked.
//! A layout is valid only if the last chunk is non-empty (or the frame is empty and has exactly
//! one chunk), and only if the frame could be held in memory at all (`len` at most
//! [`MAX_LAYOUT_LEN`], `isize::MAX` bytes: the most a Rust buffer can hold);
//! [`ChunkLayout::from_header`] rejects every other pair.
//!
//! Header fields are chosen by whoever sends the datagram, so every computation here on them is
//! checked: nothing overflows, whatever `len` (up to `u64::MAX`) and `count` (up to `u32::MAX`)
//! a datagram declares.

use crate::ids::ChunkIndex;

/// The longest frame a layout can describe: `isize::MAX` bytes, the most one buffer can hold
/// (on 64-bit targets 2^63 - 1, far beyond any receiver's `max_frame_len`). A header declaring
/// more describes a frame no receiver could reassemble, and is rejected like any other
/// inconsistent header.
pub const MAX_LAYOUT_LEN: u64 = isize::MAX as u64;

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

    /// The layout declared by a header, if `len` and `count` are consistent and `len` is at
    /// most [`MAX_LAYOUT_LEN`].
    pub fn from_header(len: u64, count: u32) -> Option<Self> {
        if count == 0 || len > MAX_LAYOUT_LEN {
            return None;
        }
        let size = len.div_ceil(u64::from(count));
        // (count - 1) * size < len whenever the layout is valid; an overflow means it is not.
        let before_last = u64::from(count - 1).checked_mul(size)?;
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
        if index.0 >= self.count {
            return None;
        }
        u64::from(index.0).checked_mul(self.size)
    }

    /// Length of chunk `index`, if it exists.
    pub fn chunk_len(&self, index: ChunkIndex) -> Option<usize> {
        let start = self.offset(index)?;
        let end = start.saturating_add(self.size).min(self.len);
        usize::try_from(end.saturating_sub(start)).ok()
    }

    /// Bytes of each Reed-Solomon parity chunk: the chunk size rounded up to even (the code
    /// works on pairs of bytes). Data chunks are zero-padded to this length for coding.
    /// Cannot overflow: `size <= len <= MAX_LAYOUT_LEN`, so the even size fits a `usize` (it
    /// saturates at `usize::MAX`, a length no datagram matches, should that ever change).
    pub fn parity_len(&self) -> usize {
        let even = self.size.saturating_add(self.size & 1);
        usize::try_from(even).unwrap_or(usize::MAX)
    }

    /// Bytes in the whole frame as a buffer length: always fits, since `len <= MAX_LAYOUT_LEN`
    /// (saturates at `usize::MAX`, which no allocation or budget accepts).
    pub fn len_usize(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// Byte range of chunk `index` in the frame body, if it exists.
    pub fn range(&self, index: ChunkIndex) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.offset(index)?).ok()?;
        Some(start..start.checked_add(self.chunk_len(index)?)?)
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
        assert_eq!(
            ChunkLayout::from_header(MAX_LAYOUT_LEN, 1).unwrap().count(),
            1
        );
        let l = ChunkLayout::from_header(25, 3).unwrap();
        assert_eq!(l.chunk_len(ChunkIndex(2)), Some(7));
        assert_eq!(l.chunk_len(ChunkIndex(3)), None);
    }

    #[test]
    fn extreme_header_fields_never_overflow() {
        // Frames no buffer could hold are rejected, whatever the count.
        for count in [1, 2, 3, 1 << 31, u32::MAX - 1, u32::MAX] {
            assert_eq!(ChunkLayout::from_header(u64::MAX, count), None);
            assert_eq!(ChunkLayout::from_header(MAX_LAYOUT_LEN + 1, count), None);
            assert_eq!(ChunkLayout::for_frame(u64::MAX, 1), None);
        }
        // The largest layouts that exist: every accessor stays in range.
        let lens = [
            MAX_LAYOUT_LEN,
            MAX_LAYOUT_LEN - 1,
            u64::from(u32::MAX),
            1 << 40,
            1,
        ];
        let counts = [1, 2, 3, 255, 1 << 31, u32::MAX - 1, u32::MAX];
        for len in lens {
            for count in counts {
                // Validity computed independently, in u128: the last chunk is non-empty.
                let size = u128::from(len).div_ceil(u128::from(count));
                let valid = u128::from(count - 1) * size < u128::from(len);
                let Some(l) = ChunkLayout::from_header(len, count) else {
                    assert!(!valid, "{len} in {count} rejected");
                    continue;
                };
                assert!(valid, "{len} in {count} accepted");
                let shard = l.parity_len() as u64;
                assert!(shard >= l.chunk_size() && shard <= l.chunk_size() + 1);
                assert_eq!(l.len_usize() as u64, len);
                for i in [0, count / 2, count - 1, count, u32::MAX] {
                    let index = ChunkIndex(i);
                    match l.range(index) {
                        Some(r) => {
                            assert!(i < count);
                            assert!(r.end as u64 <= len && r.start <= r.end);
                            assert_eq!(Some(r.len()), l.chunk_len(index));
                        }
                        None => assert!(i >= count),
                    }
                }
                let last = l.range(ChunkIndex(count - 1)).unwrap();
                assert_eq!(last.end as u64, len);
            }
        }
    }
}
