//! The MJPEG splitter on an arbitrary byte stream cut into arbitrary pieces: never panics,
//! never holds much more than its frame limit, and every frame it returns runs from SOI to EOI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixgram::mjpeg::MjpegSplitter;

fuzz_target!(|data: &[u8]| {
    let mut s = MjpegSplitter::new(4096);
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for piece in data.chunks(step) {
        s.push(piece);
        while let Some(f) = s.next_frame() {
            assert!(f.starts_with(&[0xFF, 0xD8]) && f.ends_with(&[0xFF, 0xD9]));
            assert!(f.len() <= 4096);
        }
    }
});
