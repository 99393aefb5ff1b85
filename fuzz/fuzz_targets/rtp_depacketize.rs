//! The RTP/JPEG depacketizer fed arbitrary datagrams at arbitrary times, partial frames on:
//! never panics, every datagram is counted exactly once, never assembles more frames than its
//! limit, and every frame it delivers is a JFIF file from SOI to EOI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixgram_core::rtp_jpeg::{Depacketizer, DepacketizerConfig, DepacketizerEvent};
use pixgram_core::Timestamp;

fuzz_target!(|data: &[u8]| {
    let config = DepacketizerConfig {
        max_frame_bytes: 64 << 10,
        max_frames: 3,
        partial: data.first().is_some_and(|b| b & 1 == 1),
        dimensions: data.get(1).filter(|b| **b & 1 == 1).map(|_| (2100, 100)),
        ..DepacketizerConfig::default()
    };
    let mut d = Depacketizer::new(config);
    let mut now = 0u64;
    let mut datagrams = 0u64;
    // Records: [time step (ms), length hi, length lo, bytes...].
    let mut rest = data.get(2..).unwrap_or_default();
    while rest.len() >= 3 {
        now += u64::from(rest[0]) * 1000;
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        d.handle_packet(Timestamp::from_micros(now), &rest[3..3 + len]);
        datagrams += 1;
        rest = &rest[3 + len..];
        assert!(d.frames_in_progress() <= 3);
        if d.poll_timeout().is_some_and(|t| t.as_micros() <= now) {
            d.handle_timeout(Timestamp::from_micros(now));
        }
        while let Some(e) = d.poll_event() {
            if let DepacketizerEvent::Frame(f) = e {
                assert!(f.jfif.starts_with(&[0xFF, 0xD8]) && f.jfif.ends_with(&[0xFF, 0xD9]));
            }
        }
    }
    d.flush();
    while d.poll_event().is_some() {}
    let s = d.stats();
    assert_eq!(
        s.accepted + s.not_rtp + s.wrong_payload_type + s.malformed + s.duplicates + s.late,
        datagrams
    );
});
