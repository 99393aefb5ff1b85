//! One frame being put back together from its chunks.

use crate::chunking::ChunkLayout;
use crate::ids::ChunkIndex;
use crate::time::Timestamp;
use crate::wire::{ChunkRange, DataFlags};

/// What inserting a chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// The chunk was new and has been copied into place.
    Added,
    /// The chunk had already arrived; nothing changed.
    Duplicate,
    /// The chunk's header disagrees with the frame's first chunk (length, count or flags).
    Conflict,
}

/// A frame whose chunks are arriving. The body buffer is allocated once, at the declared length,
/// after the caller has checked that length against its limits; chunks are copied straight into
/// place, and a bitmap records which have arrived.
#[derive(Debug)]
pub(crate) struct PartialFrame {
    layout: ChunkLayout,
    flags: DataFlags,
    body: Vec<u8>,
    have: Vec<u64>,
    have_count: u32,
    pub(crate) first_seen: Timestamp,
    pub(crate) last_progress: Timestamp,
    /// NACKs sent since the last progress (reliable streams), for back-off.
    pub(crate) nacks_since_progress: u32,
    /// When the last NACK for this frame was sent.
    pub(crate) last_nack: Option<Timestamp>,
}

impl PartialFrame {
    /// Bytes a frame with this layout holds while in flight: body plus bitmap. Callers charge this
    /// against their budgets before calling [`PartialFrame::new`].
    pub(crate) fn footprint(layout: &ChunkLayout) -> u64 {
        layout.len() + u64::from(layout.count()).div_ceil(64) * 8
    }

    /// Allocates the frame. `layout.len()` must fit in memory: the caller has checked it.
    pub(crate) fn new(layout: ChunkLayout, flags: DataFlags, now: Timestamp) -> Self {
        let words = layout.count().div_ceil(64) as usize;
        PartialFrame {
            layout,
            flags,
            // Zeroed allocation: pages not yet written are not committed by the OS.
            body: vec![0; layout.len() as usize],
            have: vec![0; words],
            have_count: 0,
            first_seen: now,
            last_progress: now,
            nacks_since_progress: 0,
            last_nack: None,
        }
    }

    pub(crate) fn layout(&self) -> &ChunkLayout {
        &self.layout
    }

    pub(crate) fn flags(&self) -> DataFlags {
        self.flags
    }

    pub(crate) fn chunks_received(&self) -> u32 {
        self.have_count
    }

    /// Copies one chunk into place. `payload` has already been length-checked against the layout
    /// declared in its own header; here that layout is compared with the frame's.
    pub(crate) fn insert(
        &mut self,
        layout: &ChunkLayout,
        flags: DataFlags,
        index: ChunkIndex,
        payload: &[u8],
        now: Timestamp,
    ) -> Insert {
        if *layout != self.layout || flags != self.flags {
            return Insert::Conflict;
        }
        let Some(range) = self.layout.range(index) else {
            return Insert::Conflict;
        };
        let (word, bit) = ((index.0 / 64) as usize, index.0 % 64);
        if self.have[word] & (1 << bit) != 0 {
            return Insert::Duplicate;
        }
        self.have[word] |= 1 << bit;
        self.have_count += 1;
        self.body[range].copy_from_slice(payload);
        self.last_progress = now;
        self.nacks_since_progress = 0;
        Insert::Added
    }

    /// The lowest chunk index not yet received.
    pub(crate) fn oldest_hole(&self) -> Option<u32> {
        let (w, word) = self
            .have
            .iter()
            .enumerate()
            .find(|(_, w)| **w != u64::MAX)?;
        let i = w as u32 * 64 + word.trailing_ones();
        (i < self.layout.count()).then_some(i)
    }

    /// Up to `max` runs of chunks below index `end` not yet received, lowest first.
    pub(crate) fn missing_ranges(&self, max: usize, end: u32) -> Vec<ChunkRange> {
        let mut out: Vec<ChunkRange> = Vec::new();
        let count = self.layout.count().min(end);
        let mut i = 0u32;
        while i < count && out.len() < max {
            let word = self.have[(i / 64) as usize];
            if word == u64::MAX {
                i = (i / 64 + 1) * 64; // a whole word received: skip it
                continue;
            }
            if word & (1 << (i % 64)) == 0 {
                match out.last_mut() {
                    Some(r) if r.first + r.count == i => r.count += 1,
                    _ => out.push(ChunkRange { first: i, count: 1 }),
                }
            }
            i += 1;
        }
        // The last range may have been cut by `max`; it still names real holes.
        out
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.have_count == self.layout.count()
    }

    pub(crate) fn into_body(self) -> Vec<u8> {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_in_any_order_rebuild_the_body() {
        let body: Vec<u8> = (0..100u8).collect();
        let layout = ChunkLayout::for_frame(100, 30).unwrap();
        let mut f = PartialFrame::new(layout, DataFlags::default(), Timestamp::ZERO);
        for i in [3, 1, 1, 0, 2] {
            let r = layout.range(ChunkIndex(i)).unwrap();
            f.insert(
                &layout,
                DataFlags::default(),
                ChunkIndex(i),
                &body[r],
                Timestamp::ZERO,
            );
        }
        assert!(f.is_complete());
        assert_eq!(f.into_body(), body);
    }

    #[test]
    fn missing_ranges_name_every_hole() {
        let layout = ChunkLayout::for_frame(200 * 10, 10).unwrap(); // 200 chunks
        let mut f = PartialFrame::new(layout, DataFlags::default(), Timestamp::ZERO);
        for i in (0..200).filter(|i| !(3..5).contains(i) && *i != 64 && *i < 190) {
            f.insert(
                &layout,
                DataFlags::default(),
                ChunkIndex(i),
                &[0; 10],
                Timestamp::ZERO,
            );
        }
        let r = f.missing_ranges(10, u32::MAX);
        let pairs: Vec<(u32, u32)> = r.iter().map(|r| (r.first, r.count)).collect();
        assert_eq!(pairs, [(3, 2), (64, 1), (190, 10)]);
        assert_eq!(f.missing_ranges(1, u32::MAX).len(), 1);
        assert_eq!(f.missing_ranges(10, 64).len(), 1);
    }

    #[test]
    fn conflicting_layout_is_refused() {
        let layout = ChunkLayout::for_frame(100, 30).unwrap();
        let other = ChunkLayout::for_frame(99, 30).unwrap();
        let mut f = PartialFrame::new(layout, DataFlags::default(), Timestamp::ZERO);
        let r = other.range(ChunkIndex(0)).unwrap();
        let got = f.insert(
            &other,
            DataFlags::default(),
            ChunkIndex(0),
            &vec![0; r.len()],
            Timestamp::ZERO,
        );
        assert_eq!(got, Insert::Conflict);
        assert_eq!(f.chunks_received(), 0);
    }
}
