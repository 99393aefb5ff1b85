//! JPEG encode and decode of a 1920x1080 corpus photo (fallenleaf_1920x1080.jpg), the crates
//! pixgram uses: jpeg-encoder (SIMD) and zune-jpeg; plus the bilinear resize to 640x360.
//!
//! Run: `cargo bench -p pixgram --bench codec`, or `bash bench/codecs.sh` to compare with
//! libjpeg-turbo's own benchmark on the same photo. Figures: docs/BENCHMARKS.md.

use std::path::Path;
use std::sync::OnceLock;

use divan::{black_box, Bencher};
use pixgram::codec::{self, Image};

fn main() {
    divan::main();
}

fn photo() -> &'static (Vec<u8>, Image) {
    static P: OnceLock<(Vec<u8>, Image)> = OnceLock::new();
    P.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpus/fallenleaf_1920x1080.jpg");
        let bytes = std::fs::read(&path).unwrap_or_else(|_| {
            // No corpus: a generated 1080p frame, encoded once.
            let img = pixgram::pattern::render(1920, 1080, 7, "0");
            codec::encode_jpeg(&img, 85).unwrap()
        });
        let img = codec::decode(&bytes).unwrap();
        (bytes, img)
    })
}

#[divan::bench(args = [75, 85, 95])]
fn encode_1080p(b: Bencher, quality: u8) {
    let (_, img) = photo();
    b.bench(|| black_box(codec::encode_jpeg(black_box(img), quality).unwrap()));
}

#[divan::bench]
fn decode_1080p(b: Bencher) {
    let (bytes, _) = photo();
    b.bench(|| black_box(codec::decode(black_box(bytes)).unwrap()));
}

#[divan::bench]
fn resize_1080p_to_360p(b: Bencher) {
    let (_, img) = photo();
    b.bench(|| black_box(codec::resize(black_box(img), 640, 360)));
}
