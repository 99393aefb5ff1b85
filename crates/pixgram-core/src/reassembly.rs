//! One frame being put back together from its chunks.

use crate::chunking::ChunkLayout;
use crate::fec;
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
/// place, and a bitmap records which have arrived (data chunks, then parity chunks). Parity
/// chunks go to a separate buffer, allocated when the first one arrives.
#[derive(Debug)]
pub(crate) struct PartialFrame {
    layout: ChunkLayout,
    flags: DataFlags,
    parity_count: u8,
    body: Vec<u8>,
    parity: Vec<u8>,
    have: Vec<u64>,
    have_count: u32,
    have_parity: u32,
    /// Highest chunk index (data or parity) seen.
    highest: u32,
    /// Chunks that arrived below `highest` after the frame was NACKed: holes filled by a
    /// retransmission. They count as loss in the report, since the first copy was lost.
    late_fills: u32,
    pub(crate) first_seen: Timestamp,
    pub(crate) last_progress: Timestamp,
    /// NACKs sent since the last progress (reliable streams), for back-off.
    pub(crate) nacks_since_progress: u32,
    /// When the last NACK for this frame was sent.
    pub(crate) last_nack: Option<Timestamp>,
    /// Live frames: when the frame becomes worthless.
    pub(crate) expires_at: Option<Timestamp>,
}

impl PartialFrame {
    /// Bytes a frame with this layout holds while in flight: body, parity and bitmap. Callers
    /// charge this against their budgets before calling [`PartialFrame::new`].
    pub(crate) fn footprint(layout: &ChunkLayout, parity: u8) -> u64 {
        let chunks = u64::from(layout.count()) + u64::from(parity);
        layout.len() + chunks.div_ceil(64) * 8 + u64::from(parity) * layout.parity_len() as u64
    }

    /// Allocates the frame. `layout.len()` must fit in memory: the caller has checked it.
    pub(crate) fn new(layout: ChunkLayout, flags: DataFlags, parity: u8, now: Timestamp) -> Self {
        let words = (layout.count() + u32::from(parity)).div_ceil(64) as usize;
        PartialFrame {
            layout,
            flags,
            parity_count: parity,
            // Zeroed allocation: pages not yet written are not committed by the OS.
            body: vec![0; layout.len() as usize],
            parity: Vec::new(),
            have: vec![0; words],
            have_count: 0,
            have_parity: 0,
            highest: 0,
            late_fills: 0,
            first_seen: now,
            last_progress: now,
            nacks_since_progress: 0,
            last_nack: None,
            expires_at: None,
        }
    }

    pub(crate) fn layout(&self) -> &ChunkLayout {
        &self.layout
    }

    pub(crate) fn flags(&self) -> DataFlags {
        self.flags
    }

    pub(crate) fn parity_count(&self) -> u8 {
        self.parity_count
    }

    /// Data and parity chunks received.
    pub(crate) fn chunks_received(&self) -> u32 {
        self.have_count + self.have_parity
    }

    fn has(&self, i: u32) -> bool {
        self.have[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// The share of chunks missing up to the highest index seen, or filled late (in 1/255
    /// units), and the longest run still missing (saturating at 255): what this frame says
    /// about the path.
    pub(crate) fn loss_report(&self) -> (u8, u8) {
        let seen = self.highest + 1;
        let missing = (seen.saturating_sub(self.chunks_received()) + self.late_fills).min(seen);
        let loss = (u64::from(missing) * 255 / u64::from(seen.max(1))) as u8;
        let (mut run, mut longest) = (0u32, 0u32);
        for i in 0..seen {
            if self.has(i) {
                run = 0;
            } else {
                run += 1;
                longest = longest.max(run);
            }
        }
        (loss, longest.min(255) as u8)
    }

    /// Chunks this frame lost on the way: still missing below the highest index seen, or filled
    /// only after a NACK. Each chunk counts once, however often it was asked for.
    pub(crate) fn chunks_lost(&self) -> u32 {
        let seen = self.highest + 1;
        (seen.saturating_sub(self.chunks_received()) + self.late_fills).min(seen)
    }

    /// Rebuilds missing data chunks from parity once enough chunks arrived. Returns how many
    /// data chunks were restored (`None`: not possible yet, or the code failed).
    pub(crate) fn try_recover(&mut self) -> Option<u32> {
        let count = self.layout.count();
        if self.have_count == count || self.have_count + self.have_parity < count {
            return None;
        }
        let have = self.have.clone();
        let bit = |i: u32| have[(i / 64) as usize] & (1 << (i % 64)) != 0;
        let restored = fec::recover(
            &self.layout,
            self.parity_count,
            &mut self.body,
            bit,
            &self.parity,
            |j| bit(count + u32::from(j)),
        )?;
        for i in 0..count {
            self.have[(i / 64) as usize] |= 1 << (i % 64);
        }
        self.have_count = count;
        Some(restored)
    }

    /// Copies one chunk into place. `payload` has already been length-checked against the layout
    /// declared in its own header; here that layout is compared with the frame's.
    pub(crate) fn insert(
        &mut self,
        layout: &ChunkLayout,
        flags: DataFlags,
        parity: u8,
        index: ChunkIndex,
        payload: &[u8],
        now: Timestamp,
    ) -> Insert {
        if *layout != self.layout || flags != self.flags || parity != self.parity_count {
            return Insert::Conflict;
        }
        let count = self.layout.count();
        if index.0 >= count + u32::from(parity) {
            return Insert::Conflict;
        }
        if self.has(index.0) {
            return Insert::Duplicate;
        }
        if index.0 < count {
            let range = self.layout.range(index).expect("index below count");
            self.body[range].copy_from_slice(payload);
            self.have_count += 1;
        } else {
            let shard = self.layout.parity_len();
            if self.parity.is_empty() {
                self.parity = vec![0; usize::from(parity) * shard];
            }
            let at = (index.0 - count) as usize * shard;
            self.parity[at..at + shard].copy_from_slice(payload);
            self.have_parity += 1;
        }
        self.have[(index.0 / 64) as usize] |= 1 << (index.0 % 64);
        if index.0 < self.highest && self.last_nack.is_some() {
            // A hole filled after it was NACKed: its first copy was lost (a chunk merely
            // overtaken by reordering usually arrives before the NACK delay has passed).
            self.late_fills += 1;
        }
        self.highest = self.highest.max(index.0);
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

    /// Whether every data chunk is in place.
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
        let mut f = PartialFrame::new(layout, DataFlags::default(), 0, Timestamp::ZERO);
        for i in [3, 1, 1, 0, 2] {
            let r = layout.range(ChunkIndex(i)).unwrap();
            f.insert(
                &layout,
                DataFlags::default(),
                0,
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
        let mut f = PartialFrame::new(layout, DataFlags::default(), 0, Timestamp::ZERO);
        for i in (0..200).filter(|i| !(3..5).contains(i) && *i != 64 && *i < 190) {
            f.insert(
                &layout,
                DataFlags::default(),
                0,
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
    fn parity_rebuilds_lost_chunks_and_loss_is_reported() {
        let body: Vec<u8> = (0..950u32).map(|i| (i % 251) as u8).collect();
        let layout = ChunkLayout::for_frame(950, 100).unwrap(); // 10 chunks of 95
        let parity =
            fec::encode_parity(&layout, 2, |r, dst| dst.copy_from_slice(&body[r])).unwrap();
        let shard = layout.parity_len();
        let mut f = PartialFrame::new(layout, DataFlags::default(), 2, Timestamp::ZERO);
        for i in (0..10).filter(|i| *i != 3 && *i != 4) {
            let r = layout.range(ChunkIndex(i)).unwrap();
            f.insert(
                &layout,
                DataFlags::default(),
                2,
                ChunkIndex(i),
                &body[r],
                Timestamp::ZERO,
            );
            assert_eq!(f.try_recover(), None);
        }
        for j in 0..2u32 {
            let p = &parity[j as usize * shard..(j as usize + 1) * shard];
            f.insert(
                &layout,
                DataFlags::default(),
                2,
                ChunkIndex(10 + j),
                p,
                Timestamp::ZERO,
            );
        }
        assert_eq!(f.loss_report(), ((2u32 * 255 / 12) as u8, 2));
        assert_eq!(f.try_recover(), Some(2));
        assert!(f.is_complete());
        assert_eq!(f.into_body(), body);
    }

    #[test]
    fn conflicting_layout_is_refused() {
        let layout = ChunkLayout::for_frame(100, 30).unwrap();
        let other = ChunkLayout::for_frame(99, 30).unwrap();
        let mut f = PartialFrame::new(layout, DataFlags::default(), 0, Timestamp::ZERO);
        let r = other.range(ChunkIndex(0)).unwrap();
        let got = f.insert(
            &other,
            DataFlags::default(),
            0,
            ChunkIndex(0),
            &vec![0; r.len()],
            Timestamp::ZERO,
        );
        assert_eq!(got, Insert::Conflict);
        assert_eq!(f.chunks_received(), 0);
    }
}
