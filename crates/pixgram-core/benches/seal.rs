//! Cost of sealing and opening one datagram (AES-256-GCM via ring, key derived once).
//!
//! Run: `cargo bench -p pixgram-core --bench seal`. Figures: docs/BENCHMARKS.md.

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use pixgram_core::seal::{Opener, Psk, Sealer, SEAL_OVERHEAD};

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [1200 - SEAL_OVERHEAD, 65_507 - SEAL_OVERHEAD];

#[divan::bench(args = SIZES)]
fn seal(b: Bencher, len: usize) {
    let mut s = Sealer::new(&Psk::from_bytes([1; 32]), [2; 16]);
    let inner = vec![7u8; len];
    let mut out = vec![0u8; len + SEAL_OVERHEAD];
    b.counter(BytesCount::new(len))
        .bench_local(|| black_box(s.seal(black_box(&inner), &mut out)));
}

#[divan::bench(args = SIZES)]
fn open(b: Bencher, len: usize) {
    let psk = Psk::from_bytes([1; 32]);
    let mut s = Sealer::new(&psk, [2; 16]);
    let mut o = Opener::new(&psk);
    let inner = vec![7u8; len];
    let mut sealed = vec![0u8; len + SEAL_OVERHEAD];
    b.counter(BytesCount::new(len))
        .with_inputs(|| {
            // A fresh packet number each time, so the replay window lets it through.
            let n = s.seal(&inner, &mut sealed);
            sealed[..n].to_vec()
        })
        .bench_local_values(|mut d| {
            black_box(o.open(&mut d).is_ok());
        });
}
