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

/// Frames in a thousand [`parity_for_loss`] lets random loss break.
pub const RESIDUAL_FRAME_LOSS: f64 = 1e-3;

/// The fewest parity chunks (at least one) for a frame of `count` data chunks that random
/// loss of `loss` per chunk (independent, capped at 0.5) leaves unrecoverable at most
/// `residual` of the time: the smallest `P` with `Pr[Binomial(count + P, loss) > P] <=
/// residual`. A frame of few chunks needs a larger share than a large one (8 for 36 chunks at
/// 5.8%, 13% of them for 300). `None` when no `P` up to `max` is enough.
pub fn parity_for_loss(count: u32, loss: f64, residual: f64, max: u32) -> Option<u32> {
    let p = loss.clamp(0.0, 0.5);
    if p == 0.0 {
        return Some(1.min(max));
    }
    // Below the expected loss of its own chunks no `P` can do.
    let start = ((f64::from(count) * p / (1.0 - p)).floor() as u32).max(1);
    (start..=max).find(|&parity| binomial_tail(count + parity, p, parity) <= residual)
}

/// `Pr[Binomial(n, p) > k]`, for `0 < p <= 0.5`.
fn binomial_tail(n: u32, p: f64, k: u32) -> f64 {
    let mut term = (1.0 - p).powi(n as i32);
    if term == 0.0 {
        // (1-p)^n underflows only when the mean is in the hundreds, above any k asked for.
        return 1.0;
    }
    let odds = p / (1.0 - p);
    let mut below = term;
    for i in 0..k.min(n) {
        term *= f64::from(n - i) / f64::from(i + 1) * odds;
        below += term;
    }
    (1.0 - below).max(0.0)
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
    fn the_binomial_tail_matches_a_direct_sum() {
        // Pr[Bin(10, 0.1) > 2] = 1 - (0.9^10 + 10*0.1*0.9^9 + 45*0.01*0.9^8).
        let direct = 1.0 - (0.9f64.powi(10) + 0.9f64.powi(9) + 0.45 * 0.9f64.powi(8));
        assert!((binomial_tail(10, 0.1, 2) - direct).abs() < 1e-12);
        assert!(binomial_tail(5, 0.2, 5) < 1e-12);
        assert_eq!(binomial_tail(4_000, 0.5, 10), 1.0);
    }

    #[test]
    fn parity_grows_with_loss_and_its_share_shrinks_with_the_frame() {
        let max = 255;
        assert_eq!(parity_for_loss(40, 0.0, RESIDUAL_FRAME_LOSS, max), Some(1));
        let small = parity_for_loss(36, 0.058, RESIDUAL_FRAME_LOSS, max).unwrap();
        let large = parity_for_loss(300, 0.058, RESIDUAL_FRAME_LOSS, max).unwrap();
        assert_eq!(small, 8);
        assert!(f64::from(large) / 300.0 < f64::from(small) / 36.0);
        for p in [0.01, 0.05, 0.2] {
            for count in [5u32, 36, 107, 1_000] {
                let parity = parity_for_loss(count, p, RESIDUAL_FRAME_LOSS, max).unwrap_or(max);
                let more = parity_for_loss(count, p * 1.5, RESIDUAL_FRAME_LOSS, max).unwrap_or(max);
                assert!(more >= parity, "{count} chunks at {p}");
                if parity < max {
                    assert!(binomial_tail(count + parity, p, parity) <= RESIDUAL_FRAME_LOSS);
                    let fewer = parity - 1;
                    assert!(
                        fewer == 0 || binomial_tail(count + fewer, p, fewer) > RESIDUAL_FRAME_LOSS
                    );
                }
            }
        }
        // 4,000 chunks at 20% would need far more than 255.
        assert_eq!(parity_for_loss(4_000, 0.2, RESIDUAL_FRAME_LOSS, max), None);
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
