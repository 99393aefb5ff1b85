//! The JPEG reader and the JFIF rebuilder of RFC 2435 on arbitrary files: never panics, and
//! any file it accepts goes through packetisation (at an arbitrary packet size) and comes back
//! rebuilt with the same scan, tables, size and restart interval.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixgram_core::rtp_jpeg::{
    jpeg, Depacketizer, DepacketizerConfig, DepacketizerEvent, Packetizer, PacketizerConfig,
    MIN_MTU,
};
use pixgram_core::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Some((&m, file)) = data.split_first() else {
        return;
    };
    let Ok(frame) = jpeg::parse(file) else { return };
    let mtu = MIN_MTU + usize::from(m) * 8;
    let mut p = Packetizer::new(PacketizerConfig {
        payload_type: 26,
        ssrc: 1,
        first_sequence: 65_000,
        mtu,
    });
    let mut packets = Vec::new();
    p.packetize(&frame, 0, |d| {
        assert!(d.len() <= mtu);
        packets.push(d.to_vec());
    });
    let mut d = Depacketizer::new(DepacketizerConfig {
        dimensions: Some((frame.width, frame.height)),
        ..DepacketizerConfig::default()
    });
    for (i, pk) in packets.iter().enumerate() {
        d.handle_packet(Timestamp::from_micros(i as u64), pk);
    }
    match d.poll_event() {
        Some(DepacketizerEvent::Frame(f)) => {
            let back = jpeg::parse(&f.jfif).expect("a rebuilt frame parses");
            assert_eq!(back.scan, frame.scan);
            assert_eq!(back.qtables, frame.qtables);
            assert_eq!((back.width, back.height), (frame.width, frame.height));
            assert_eq!(back.restart_interval, frame.restart_interval);
            assert_eq!(back.subsampling, frame.subsampling);
        }
        other => panic!("an accepted JPEG did not come back: {other:?}"),
    }
});
