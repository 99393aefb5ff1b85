//! Property tests of the compatibility receiver for the original Python scripts' format: any
//! datagram sequence is survived within the memory limit and never answered with more bytes
//! than it held, and JPEG images that lose at most one datagram each (or whose datagrams are
//! only duplicated) are delivered byte-identical or reported broken, never delivered wrong.

use std::net::SocketAddr;

use pixgram_core::compat_seed::{self, SeedConfig, SeedEvent, SeedReceiver};
use pixgram_core::Timestamp;
use proptest::prelude::*;

fn peer(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A JPEG-shaped image: SOI, entropy-like bytes without 0xFF, EOI.
fn jpeg(len: usize, salt: u8) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|i| ((i as u32 * 7 + u32::from(salt)) % 255) as u8)
        .collect();
    v[..2].copy_from_slice(&[0xFF, 0xD8]);
    v[len - 2..].copy_from_slice(&[0xFF, 0xD9]);
    v
}

/// Every datagram a client sends for `images`, in order.
fn wire(images: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for img in images {
        out.push(compat_seed::header(img.len()).to_vec());
        out.extend(compat_seed::chunks(img).map(<[u8]>::to_vec));
    }
    out
}

fn run(rx: &mut SeedReceiver, datagrams: &[Vec<u8>]) -> Vec<SeedEvent> {
    let mut events = Vec::new();
    for (i, d) in datagrams.iter().enumerate() {
        rx.handle_image(peer(1), d, Timestamp::from_millis(i as u64));
        events.extend(std::iter::from_fn(|| rx.poll_event()));
    }
    rx.handle_timeout(Timestamp::from_millis(1_000_000));
    events.extend(std::iter::from_fn(|| rx.poll_event()));
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_datagrams_stay_within_the_limits(
        datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1400), 0..200),
        headers in prop::collection::vec((any::<usize>(), any::<i64>()), 0..20),
    ) {
        let config = SeedConfig { max_image_len: 100_000, max_buffered: 50_000, ..SeedConfig::default() };
        let mut rx = SeedReceiver::new(config.clone());
        let mut datagrams = datagrams;
        for (at, len) in headers {
            let at = at % (datagrams.len() + 1);
            datagrams.insert(at, len.to_le_bytes().to_vec());
        }
        for (i, d) in datagrams.iter().enumerate() {
            rx.handle_image(peer((i % 3) as u16), d, Timestamp::from_millis(i as u64));
            prop_assert!(rx.buffered() <= 50_000);
            while let Some(e) = rx.poll_event() {
                if let SeedEvent::Image { bytes, .. } = e {
                    prop_assert!(bytes.len() <= 100_000);
                }
            }
        }
        let sent: u64 = datagrams.iter().map(|d| d.len() as u64).sum();
        let mut replied = 0u64;
        let mut buf = [0u8; compat_seed::MAX_SEED_REPLY_LEN];
        while let Some(t) = rx.poll_transmit(&mut buf) {
            replied += t.len as u64;
        }
        // No amplification beyond the documented allowance (compat_seed's module docs).
        let elapsed = std::time::Duration::from_millis(datagrams.len() as u64);
        prop_assert!(replied <= config.reply_bound(sent, elapsed));
    }

    #[test]
    fn one_lost_datagram_per_image_never_delivers_a_wrong_image(
        lens in prop::collection::vec(4usize..6000, 1..12),
        drops in prop::collection::vec(prop::option::of(any::<prop::sample::Index>()), 12),
    ) {
        let images: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &n)| jpeg(n, i as u8)).collect();
        let mut kept = Vec::new();
        for (img, drop) in images.iter().zip(&drops) {
            let mut sent = wire(std::slice::from_ref(img));
            if let Some(at) = drop {
                sent.remove(at.index(sent.len()));
            }
            kept.extend(sent);
        }
        let mut rx = SeedReceiver::new(SeedConfig::default());
        for e in run(&mut rx, &kept) {
            if let SeedEvent::Image { bytes, .. } = e {
                prop_assert!(images.contains(&bytes), "delivered an image nobody sent");
            }
        }
        prop_assert_eq!(rx.buffered(), 0);
        if drops.iter().take(images.len()).all(Option::is_none) {
            prop_assert_eq!(rx.stats().images, images.len() as u64);
        }
    }

    #[test]
    fn duplicated_datagrams_never_deliver_a_wrong_image(
        lens in prop::collection::vec(4usize..6000, 1..12),
        dups in prop::collection::vec(any::<bool>(), 0..80),
    ) {
        let images: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &n)| jpeg(n, i as u8)).collect();
        let mut sent = Vec::new();
        for (i, d) in wire(&images).into_iter().enumerate() {
            if dups.get(i).copied().unwrap_or(false) {
                sent.push(d.clone());
            }
            sent.push(d);
        }
        let mut rx = SeedReceiver::new(SeedConfig::default());
        for e in run(&mut rx, &sent) {
            if let SeedEvent::Image { bytes, .. } = e {
                prop_assert!(images.contains(&bytes), "delivered an image nobody sent");
            }
        }
        prop_assert_eq!(rx.buffered(), 0);
    }
}
