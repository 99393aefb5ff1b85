//! The compatibility receiver for the original scripts' format on arbitrary datagrams from a
//! few addresses: never panics, stays within its buffer limit, never answers more bytes than
//! it received plus the documented reply allowance (`SeedConfig::reply_bound`).
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use pixgram_core::compat_seed::{self, SeedConfig, SeedReceiver};
use pixgram_core::Timestamp;

fuzz_target!(|data: &[u8]| {
    let config = SeedConfig {
        max_image_len: 64 << 10,
        max_buffered: 128 << 10,
        max_peers: 3,
        ..SeedConfig::default()
    };
    let mut rx = SeedReceiver::new(config.clone());
    let (mut received, mut replied) = (0u64, 0u64);
    let mut rest = data;
    let mut now = Timestamp::ZERO;
    // Records: [peer and port flag, time step (100 ms), length hi, length lo, bytes...].
    while rest.len() >= 4 {
        let from = SocketAddr::from(([127, 0, 0, 1], 2000 + u16::from(rest[0] % 5)));
        now = now + std::time::Duration::from_millis(100 * u64::from(rest[1] % 32));
        let len = (usize::from(rest[2]) << 8 | usize::from(rest[3])).min(rest.len() - 4);
        let d = &rest[4..4 + len];
        if rest[0] & 0x80 != 0 {
            rx.handle_message(from, d, now);
            if rest[0] & 0x40 != 0 {
                rx.acknowledge_message(from);
            }
        } else {
            rx.handle_image(from, d, now);
        }
        received += d.len() as u64;
        rest = &rest[4 + len..];
        rx.handle_timeout(now);
        while rx.poll_event().is_some() {}
        let mut buf = [0u8; compat_seed::MAX_SEED_REPLY_LEN];
        while let Some(t) = rx.poll_transmit(&mut buf) {
            replied += t.len as u64;
        }
        assert!(rx.buffered() <= 128 << 10);
        assert!(replied <= config.reply_bound(received, now.saturating_since(Timestamp::ZERO)));
    }
});
