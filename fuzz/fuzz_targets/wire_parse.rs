//! The datagram parser on arbitrary bytes: never panics; what it accepts re-encodes to the
//! same bytes (checked inside the parser's own tests; here: no panic, bounded work).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixgram_core::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = wire::parse(data) {
        let _ = format!("{d:?}");
    }
});
