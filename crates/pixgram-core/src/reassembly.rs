//! One frame being put back together from its chunks.
//!
//! The layout comes from a datagram's header, so every index and size derived from it is
//! computed without overflow (in `u64` or checked), and every buffer access is checked: a
//! header that got past the parser with extreme fields makes an insert a `Conflict`, never a
//! panic.

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

/// Memory pages: what a written byte commits.
const PAGE: u64 = 4096;

/// Bytes a chunk may land past what arrived before the body stops zeroing the gap in between
/// and becomes one zeroed allocation of the whole frame (whose pages stay untouched).
const SPARSE_GAP: usize = 1 << 20;

/// A frame whose chunks are arriving. Memory is charged for what arrives, not for what the
/// header declares. The body is reserved at the declared length, whose pages the operating
/// system commits only when written (unless it is the body of a frame delivered before, see
/// [`crate::body_pool`]), and filled without zeroing it first: chunks arriving in
/// order are appended, a gap before a chunk is zeroed (a hole for the missing chunks), and a
/// chunk more than [`SPARSE_GAP`] ahead turns the body into one zeroed allocation of the whole
/// length (untouched pages, as a header declaring much and sending little must cost little).
/// Chunks are copied straight into place, and the
/// frame is charged its bitmap, its parity buffer (allocated when the first parity chunk
/// arrives) and its body up to the furthest page written (`extent`). A chunk far beyond what
/// arrived is charged everything before it, so a header that declares 64 MiB and sends one
/// chunk costs a page, and a chunk at its end costs 64 MiB (which a budget then refuses).
/// [`PartialFrame::charge`] is what it holds now; [`PartialFrame::growth_for`] what a chunk
/// would add, for the caller's budget.
#[derive(Debug)]
pub(crate) struct PartialFrame {
    layout: ChunkLayout,
    flags: DataFlags,
    parity_count: u8,
    body: Vec<u8>,
    /// Body bytes charged: up to the end of the furthest page written.
    extent: u64,
    parity: Vec<u8>,
    have: Vec<u64>,
    have_count: u32,
    have_parity: u32,
    /// Highest chunk index (data or parity) seen.
    highest: u32,
    /// Chunks that arrived below `highest` after the frame was NACKed: holes filled by a
    /// retransmission. They count as loss in the report, since the first copy was lost.
    late_fills: u32,
    /// What [`PartialFrame::loss_report`] and [`PartialFrame::chunks_lost`] said just before
    /// parity rebuilt the missing data: the rebuilt chunks were lost on the way, and the
    /// report must say so (or `FecPolicy::Auto` provisions for no loss).
    before_recovery: Option<((u8, u8), u32)>,
    pub(crate) first_seen: Timestamp,
    pub(crate) last_progress: Timestamp,
    /// NACKs sent since the last progress (reliable streams), for back-off.
    pub(crate) nacks_since_progress: u32,
    /// When the last NACK for this frame was sent.
    pub(crate) last_nack: Option<Timestamp>,
    /// When the last NACK or progress report for this frame was sent, and how many chunks it
    /// said the receiver held: the next progress report is due from these.
    pub(crate) last_report: Option<Timestamp>,
    pub(crate) reported_chunks: u32,
    /// Live frames: when the frame becomes worthless.
    pub(crate) expires_at: Option<Timestamp>,
}

impl PartialFrame {
    /// Bytes a new frame holds before any chunk: its bitmap.
    pub(crate) fn bitmap_bytes(layout: &ChunkLayout, parity: u8) -> u64 {
        (u64::from(layout.count()) + u64::from(parity))
            .div_ceil(64)
            .saturating_mul(8)
    }

    /// Bytes the frame holds once every chunk (parity included) is in.
    pub(crate) fn full_cost(layout: &ChunkLayout, parity: u8) -> u64 {
        Self::bitmap_bytes(layout, parity)
            .saturating_add(layout.len())
            .saturating_add(u64::from(parity).saturating_mul(layout.parity_len() as u64))
    }

    /// Bytes chunk `index` adds beyond a body extent of `extent` (and a parity buffer,
    /// allocated or not).
    fn buffer_for(
        layout: &ChunkLayout,
        parity: u8,
        index: ChunkIndex,
        extent: u64,
        parity_allocated: bool,
    ) -> u64 {
        if index.0 < layout.count() {
            let end = layout.range(index).map_or(0, |r| r.end as u64);
            page_end(end, layout.len()).saturating_sub(extent)
        } else if parity_allocated {
            0
        } else {
            u64::from(parity).saturating_mul(layout.parity_len() as u64)
        }
    }

    /// A frame with nothing received yet: only its bitmap is allocated.
    #[cfg(test)]
    pub(crate) fn new(layout: ChunkLayout, flags: DataFlags, parity: u8, now: Timestamp) -> Self {
        Self::new_in(
            Vec::with_capacity(layout.len_usize()),
            layout,
            flags,
            parity,
            now,
        )
    }

    /// A frame with nothing received yet, reassembled into `body` (empty, with room for the
    /// declared length: a new reservation, or a body used before, see
    /// [`crate::body_pool`]).
    pub(crate) fn new_in(
        body: Vec<u8>,
        layout: ChunkLayout,
        flags: DataFlags,
        parity: u8,
        now: Timestamp,
    ) -> Self {
        debug_assert!(body.is_empty());
        let chunks = u64::from(layout.count()) + u64::from(parity);
        let words = usize::try_from(chunks.div_ceil(64)).unwrap_or(usize::MAX);
        PartialFrame {
            layout,
            flags,
            parity_count: parity,
            body,
            extent: 0,
            parity: Vec::new(),
            have: vec![0; words],
            have_count: 0,
            have_parity: 0,
            highest: 0,
            late_fills: 0,
            before_recovery: None,
            first_seen: now,
            last_progress: now,
            nacks_since_progress: 0,
            last_nack: None,
            last_report: None,
            reported_chunks: 0,
            expires_at: None,
        }
    }

    /// Bytes this frame holds now: the body up to the furthest page written, the parity
    /// buffer and the bitmap.
    pub(crate) fn charge(&self) -> u64 {
        self.extent + (self.parity.capacity() + self.have.len() * 8) as u64
    }

    /// Bytes inserting chunk `index` would add to [`PartialFrame::charge`].
    pub(crate) fn growth_for(&self, index: ChunkIndex) -> u64 {
        Self::buffer_for(
            &self.layout,
            self.parity_count,
            index,
            self.extent,
            !self.parity.is_empty(),
        )
    }

    pub(crate) fn flags(&self) -> DataFlags {
        self.flags
    }

    /// Data and parity chunks received.
    pub(crate) fn chunks_received(&self) -> u32 {
        self.have_count + self.have_parity
    }

    /// Data and parity chunks together (up to `u32::MAX + 255`).
    pub(crate) fn total_chunks(&self) -> u64 {
        u64::from(self.layout.count()) + u64::from(self.parity_count)
    }

    fn has(&self, i: u32) -> bool {
        bit_in(&self.have, u64::from(i))
    }

    /// The share of chunks missing up to the highest index seen, or filled late (in 1/255
    /// units), and the longest run still missing (saturating at 255): what this frame says
    /// about the path.
    pub(crate) fn loss_report(&self) -> (u8, u8) {
        if let Some((report, _)) = self.before_recovery {
            return report;
        }
        let seen = u64::from(self.highest) + 1;
        let received = u64::from(self.have_count) + u64::from(self.have_parity);
        let missing = (seen.saturating_sub(received) + u64::from(self.late_fills)).min(seen);
        let loss = (missing * 255 / seen) as u8;
        let (mut run, mut longest) = (0u64, 0u64);
        for i in 0..seen {
            if bit_in(&self.have, i) {
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
        if let Some((_, lost)) = self.before_recovery {
            return lost;
        }
        let seen = self.highest + 1;
        (seen.saturating_sub(self.chunks_received()) + self.late_fills).min(seen)
    }

    /// Rebuilds missing data chunks from parity once enough chunks arrived. Returns how many
    /// data chunks were restored (`None`: not possible yet, or the code failed).
    pub(crate) fn try_recover(&mut self) -> Option<u32> {
        let count = self.layout.count();
        let received = u64::from(self.have_count) + u64::from(self.have_parity);
        if self.have_count == count || received < u64::from(count) {
            return None;
        }
        let have = self.have.clone();
        // Rebuilt chunks go in place, anywhere in the body.
        self.extent = self.layout.len();
        self.body.resize(self.layout.len_usize(), 0);
        let restored = fec::recover(
            &self.layout,
            self.parity_count,
            &mut self.body,
            |i| bit_in(&have, u64::from(i)),
            &self.parity,
            |j| bit_in(&have, u64::from(count) + u64::from(j)),
        )?;
        self.before_recovery = Some((self.loss_report(), self.chunks_lost()));
        for i in 0..u64::from(count) {
            set_bit(&mut self.have, i);
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
        if u64::from(index.0) >= self.total_chunks() {
            return Insert::Conflict;
        }
        if self.has(index.0) {
            return Insert::Duplicate;
        }
        if index.0 < count {
            let Some(range) = self.layout.range(index) else {
                return Insert::Conflict;
            };
            let end = page_end(range.end as u64, self.layout.len());
            if range.len() != payload.len() || range.end > self.layout.len_usize() {
                return Insert::Conflict;
            }
            self.place(range.start, payload);
            self.extent = self.extent.max(end);
            self.have_count += 1;
        } else {
            let shard = self.layout.parity_len();
            if self.parity.is_empty() {
                let Some(total) = usize::from(parity).checked_mul(shard) else {
                    return Insert::Conflict;
                };
                self.parity = vec![0; total];
            }
            let j = (index.0 - count) as usize;
            let dst = j
                .checked_mul(shard)
                .and_then(|at| Some(at..at.checked_add(shard)?))
                .and_then(|r| self.parity.get_mut(r));
            let Some(dst) = dst.filter(|d| d.len() == payload.len()) else {
                return Insert::Conflict;
            };
            dst.copy_from_slice(payload);
            self.have_parity += 1;
        }
        set_bit(&mut self.have, u64::from(index.0));
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

    /// The highest chunk index (data or parity) received.
    pub(crate) fn highest(&self) -> u32 {
        self.highest
    }

    /// The lowest chunk index not yet received.
    pub(crate) fn oldest_hole(&self) -> Option<u32> {
        let (w, word) = self
            .have
            .iter()
            .enumerate()
            .find(|(_, w)| **w != u64::MAX)?;
        let i = (w as u64) * 64 + u64::from(word.trailing_ones());
        u32::try_from(i).ok().filter(|&i| i < self.layout.count())
    }

    /// Up to `max` runs of chunks below index `end` not yet received, lowest first.
    pub(crate) fn missing_ranges(&self, max: usize, end: u32) -> Vec<ChunkRange> {
        let mut out: Vec<ChunkRange> = Vec::new();
        let count = u64::from(self.layout.count().min(end));
        // In u64: the word after the last one may start at 2^32.
        let mut i = 0u64;
        while i < count && out.len() < max {
            let word = self.have.get((i / 64) as usize).copied().unwrap_or(0);
            if word == u64::MAX {
                i = (i / 64 + 1) * 64; // a whole word received: skip it
                continue;
            }
            if word == 0 && i.is_multiple_of(64) {
                // A whole word missing: one step, not 64 (a 262,144-chunk frame with one chunk
                // in is scanned in 4,096 steps).
                let end = (i + 64).min(count);
                match out.last_mut() {
                    Some(r) if u64::from(r.first) + u64::from(r.count) == i => {
                        r.count += (end - i) as u32;
                    }
                    _ => out.push(ChunkRange {
                        first: i as u32,
                        count: (end - i) as u32,
                    }),
                }
                i = end;
                continue;
            }
            if word & (1 << (i % 64)) == 0 {
                let index = i as u32; // i < count <= u32::MAX
                match out.last_mut() {
                    Some(r) if u64::from(r.first) + u64::from(r.count) == i => r.count += 1,
                    _ => out.push(ChunkRange {
                        first: index,
                        count: 1,
                    }),
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
        debug_assert!(!self.is_complete() || self.body.len() == self.layout.len_usize());
        self.body
    }

    /// Copies a data chunk's bytes to `start` (within the declared length, not yet received).
    /// The body's length is always the end of a chunk that arrived (or the whole frame), so a
    /// chunk starts either at it (appended), past it (the gap zeroed first) or before it (a
    /// hole left for it).
    fn place(&mut self, start: usize, payload: &[u8]) {
        let filled = self.body.len();
        if start > filled {
            if start - filled > SPARSE_GAP {
                let mut whole = vec![0; self.layout.len_usize()];
                whole[..filled].copy_from_slice(&self.body);
                self.body = whole;
            } else {
                self.body.resize(start, 0);
            }
        }
        let end = start + payload.len();
        if start == self.body.len() {
            self.body.extend_from_slice(payload);
        } else {
            // A hole's chunk ends within the body (the layout's chunks do not overlap); the
            // resize only keeps any other input from indexing past its end.
            if end > self.body.len() {
                self.body.resize(end, 0);
            }
            self.body[start..end].copy_from_slice(payload);
        }
    }
}

/// The end of the page holding byte `end - 1`, at most `len`.
fn page_end(end: u64, len: u64) -> u64 {
    end.div_ceil(PAGE).saturating_mul(PAGE).min(len)
}

/// Bit `i` of a bitmap; bits past its end read as absent.
fn bit_in(bits: &[u64], i: u64) -> bool {
    usize::try_from(i / 64)
        .ok()
        .and_then(|w| bits.get(w))
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// Sets bit `i` of a bitmap, if it has one.
fn set_bit(bits: &mut [u64], i: u64) {
    if let Some(w) = usize::try_from(i / 64).ok().and_then(|w| bits.get_mut(w)) {
        *w |= 1 << (i % 64);
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
    fn in_order_gapped_and_far_ahead_chunks_all_land_in_place() {
        // 3 MiB in 1,152-byte chunks: the first half in order (appended), a chunk two past
        // (a zeroed gap), then the last chunk (more than SPARSE_GAP ahead: the body becomes
        // one zeroed allocation), then every hole, backwards.
        let len = 3 << 20;
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let layout = ChunkLayout::for_frame(len as u64, 1152).unwrap();
        let count = layout.count();
        let mut f = PartialFrame::new(layout, DataFlags::default(), 0, Timestamp::ZERO);
        let half = count / 2;
        let mut order: Vec<u32> = (0..half).collect();
        order.extend([half + 2, count - 1]);
        order.extend((half..count - 1).rev().filter(|&i| i != half + 2));
        for i in order {
            let r = layout.range(ChunkIndex(i)).unwrap();
            let at = Timestamp::ZERO;
            let got = f.insert(
                &layout,
                DataFlags::default(),
                0,
                ChunkIndex(i),
                &body[r],
                at,
            );
            assert_eq!(got, Insert::Added, "chunk {i}");
        }
        assert!(f.is_complete());
        assert!(f.into_body() == body);
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

    #[test]
    fn charges_saturate_instead_of_overflowing() {
        use crate::chunking::MAX_LAYOUT_LEN;
        let huge = ChunkLayout::from_header(MAX_LAYOUT_LEN, 1).unwrap();
        assert_eq!(PartialFrame::full_cost(&huge, 0), MAX_LAYOUT_LEN + 8);
        // 255 parity shards of 2^63 bytes: far past u64, saturated.
        assert_eq!(PartialFrame::full_cost(&huge, 255), u64::MAX);
        let many = ChunkLayout::from_header(u64::from(u32::MAX), u32::MAX).unwrap();
        let words = (u64::from(u32::MAX) + 255).div_ceil(64);
        assert_eq!(
            PartialFrame::full_cost(&many, 255),
            u64::from(u32::MAX) + words * 8 + 255 * 2
        );
    }

    /// Issue 11: a frame is charged for what arrived, not for what its header declares.
    #[test]
    fn a_frame_is_charged_for_the_pages_its_chunks_reach() {
        let layout = ChunkLayout::for_frame(64 << 20, 1152).unwrap();
        let mut f = PartialFrame::new(layout, DataFlags::default(), 0, Timestamp::ZERO);
        let bitmap = PartialFrame::bitmap_bytes(&layout, 0);
        assert_eq!(f.charge(), bitmap);
        let add = |f: &mut PartialFrame, i: u32| {
            let len = layout.chunk_len(ChunkIndex(i)).unwrap();
            f.insert(
                &layout,
                DataFlags::default(),
                0,
                ChunkIndex(i),
                &vec![1; len],
                Timestamp::ZERO,
            )
        };
        assert_eq!(f.growth_for(ChunkIndex(0)), 4096);
        assert_eq!(add(&mut f, 0), Insert::Added);
        assert_eq!(f.charge(), bitmap + 4096);
        for i in 1..10 {
            add(&mut f, i);
        }
        assert_eq!(f.charge(), bitmap + (10 * 1152u64).div_ceil(4096) * 4096);
        // A chunk at the end would be charged the whole frame before it.
        let last = ChunkIndex(layout.count() - 1);
        assert_eq!(f.growth_for(last), (64 << 20) - 12288);
    }

    #[test]
    fn u32_max_chunks_neither_overflow_nor_index_out_of_bounds() {
        // 2^32 - 1 chunks of one byte, plus one parity chunk: 2^32 chunks, the bitmap's last
        // word ends exactly at 2^32. The body becomes 4 GiB of untouched (uncommitted) zeroed memory.
        let layout = ChunkLayout::from_header(u64::from(u32::MAX), u32::MAX).unwrap();
        let mut f = PartialFrame::new(layout, DataFlags::default(), 1, Timestamp::ZERO);
        let last = ChunkIndex(u32::MAX - 1);
        let add = |f: &mut PartialFrame, i: ChunkIndex, p: &[u8]| {
            f.insert(&layout, DataFlags::default(), 1, i, p, Timestamp::ZERO)
        };
        assert_eq!(add(&mut f, last, &[1]), Insert::Added);
        assert_eq!(add(&mut f, last, &[1]), Insert::Duplicate);
        // The parity chunk (index 2^32 - 1) has shard length 2; a wrong length is refused.
        assert_eq!(add(&mut f, ChunkIndex(u32::MAX), &[1]), Insert::Conflict);
        assert_eq!(add(&mut f, ChunkIndex(u32::MAX), &[1, 2]), Insert::Added);
        assert_eq!(add(&mut f, ChunkIndex(0), &[1, 2]), Insert::Conflict);
        assert_eq!(f.oldest_hole(), Some(0));
        assert_eq!(f.missing_ranges(1, u32::MAX).len(), 1);
        // Every chunk but the first received: the hole scan skips whole words up to 2^32,
        // which overflowed a u32 index.
        f.have.fill(u64::MAX);
        f.have[0] = !1;
        let r = f.missing_ranges(4, u32::MAX);
        assert_eq!((r.len(), r[0].first, r[0].count), (1, 0, 1));
        f.have[0] = u64::MAX;
        assert!(f.missing_ranges(4, u32::MAX).is_empty());
        assert_eq!(f.oldest_hole(), None);
    }

    #[test]
    fn a_payload_of_the_wrong_length_is_a_conflict_not_a_panic() {
        let layout = ChunkLayout::for_frame(100, 30).unwrap();
        let mut f = PartialFrame::new(layout, DataFlags::default(), 0, Timestamp::ZERO);
        let got = f.insert(
            &layout,
            DataFlags::default(),
            0,
            ChunkIndex(0),
            &[0; 29],
            Timestamp::ZERO,
        );
        assert_eq!(got, Insert::Conflict);
        assert_eq!(f.chunks_received(), 0);
    }
}
