//! Forward error correction: Reed-Solomon parity chunks over a frame's data chunks.
//!
//! A frame of `C` data chunks of `S` bytes gets `P` parity chunks of `L = S` rounded up to even
//! bytes; data chunks are zero-padded to `L` (the last one is usually shorter). Any `C` of the
//! `C + P` chunks rebuild the frame, so it survives up to `P` lost chunks without a round trip.
//! The code is Leopard-RS (`reed-solomon-simd`), O(n log n), SIMD-accelerated.

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::chunking::ChunkLayout;
use crate::ids::ChunkIndex;

/// Parity chunks for a frame of `layout` with `parity` parity chunks. `read` copies the body
/// bytes of a range into a buffer. Returns `parity * layout.parity_len()` bytes, parity chunk
/// `j` at `j * parity_len`, or `None` if the code cannot be built for these counts.
pub fn encode_parity(
    layout: &ChunkLayout,
    parity: u8,
    mut read: impl FnMut(std::ops::Range<usize>, &mut [u8]),
) -> Option<Vec<u8>> {
    let count = layout.count() as usize;
    let shard = layout.parity_len();
    if parity == 0 || shard == 0 {
        return None;
    }
    let mut encoder = ReedSolomonEncoder::new(count, usize::from(parity), shard).ok()?;
    let mut scratch = vec![0u8; shard];
    for i in 0..layout.count() {
        let range = layout.range(ChunkIndex(i))?;
        let len = range.len();
        read(range, &mut scratch[..len]);
        scratch[len..].fill(0);
        encoder.add_original_shard(&scratch).ok()?;
    }
    let result = encoder.encode().ok()?;
    Some(result.recovery_iter().flatten().copied().collect())
}

/// Rebuilds missing data chunks. `have(i)` says whether data chunk `i` arrived; `body` holds
/// the data chunks in place; `parity` holds parity chunk `j` at `j * parity_len` for each `j`
/// with `have_parity(j)`. Writes every missing data chunk into `body` and returns how many it
/// restored, or `None` if too few chunks arrived or the code failed.
pub fn recover(
    layout: &ChunkLayout,
    parity_count: u8,
    body: &mut [u8],
    have: impl Fn(u32) -> bool,
    parity: &[u8],
    have_parity: impl Fn(u8) -> bool,
) -> Option<u32> {
    let count = layout.count() as usize;
    let shard = layout.parity_len();
    let mut decoder = ReedSolomonDecoder::new(count, usize::from(parity_count), shard).ok()?;
    let mut scratch = vec![0u8; shard];
    for i in (0..layout.count()).filter(|&i| have(i)) {
        let range = layout.range(ChunkIndex(i))?;
        let len = range.len();
        scratch[..len].copy_from_slice(&body[range]);
        scratch[len..].fill(0);
        decoder.add_original_shard(i as usize, &scratch).ok()?;
    }
    for j in (0..parity_count).filter(|&j| have_parity(j)) {
        let at = usize::from(j) * shard;
        decoder
            .add_recovery_shard(usize::from(j), parity.get(at..at + shard)?)
            .ok()?;
    }
    let result = decoder.decode().ok()?;
    let mut restored = 0;
    for (i, bytes) in result.restored_original_iter() {
        let range = layout.range(ChunkIndex(u32::try_from(i).ok()?))?;
        let len = range.len();
        body[range].copy_from_slice(&bytes[..len]);
        restored += 1;
    }
    Some(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_c_of_c_plus_p_chunks_rebuild_the_frame() {
        let body: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 3) as u8).collect();
        // 1001 bytes in chunks of at most 100: 11 chunks of 92 (odd lengths exercise padding).
        let layout = ChunkLayout::for_frame(1001, 100).unwrap();
        let parity = encode_parity(&layout, 3, |r, dst| dst.copy_from_slice(&body[r])).unwrap();
        assert_eq!(parity.len(), 3 * layout.parity_len());
        let lost = [0u32, 5, 10];
        let mut damaged = body.clone();
        for &i in &lost {
            damaged[layout.range(ChunkIndex(i)).unwrap()].fill(0xEE);
        }
        let restored = recover(
            &layout,
            3,
            &mut damaged,
            |i| !lost.contains(&i),
            &parity,
            |_| true,
        )
        .unwrap();
        assert_eq!(restored, 3);
        assert_eq!(damaged, body);
    }

    #[test]
    fn too_many_losses_fail_cleanly() {
        let body = vec![9u8; 500];
        let layout = ChunkLayout::for_frame(500, 100).unwrap();
        let parity = encode_parity(&layout, 1, |r, dst| dst.copy_from_slice(&body[r])).unwrap();
        let mut damaged = body.clone();
        let got = recover(&layout, 1, &mut damaged, |i| i > 1, &parity, |_| true);
        assert_eq!(got, None);
    }
}
