//! Header fields at their extremes reach the receiver's chunk arithmetic without panicking:
//! a receiver that accepts any frame size (`recv --max-frame-size 18446744073709551615`) and
//! any chunk count still counts such datagrams as bad headers or over budget.

use std::net::SocketAddr;

use pixgram_core::wire::{checksum, DataFlags};
use pixgram_core::{Receiver, ReceiverConfig, SessionId, Timestamp};
use proptest::prelude::*;

mod support;

/// A DATA datagram with any header fields and a valid checksum.
fn data(
    flags: u8,
    parity: u8,
    frame: u64,
    index: u32,
    count: u32,
    len: u64,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(48 + payload.len());
    b.extend_from_slice(b"PG");
    b.push(pixgram_core::wire::VERSION);
    b.push(1); // DATA
    b.extend_from_slice(&7u32.to_be_bytes()); // session
    b.extend_from_slice(&1u32.to_be_bytes()); // stream
    b.push(flags);
    b.push(parity);
    let deadline: u16 = if flags & DataFlags::LIVE != 0 { 100 } else { 0 };
    b.extend_from_slice(&deadline.to_be_bytes());
    b.extend_from_slice(&frame.to_be_bytes());
    b.extend_from_slice(&index.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes()); // floor distance: the floor is this frame
    b.extend_from_slice(payload);
    let crc = checksum(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

fn unlimited() -> Receiver {
    Receiver::new(ReceiverConfig {
        max_frame_len: u64::MAX,
        max_chunks_per_frame: u32::MAX,
        ..ReceiverConfig::default()
    })
}

/// Hands `datagram` to `rx` from an address validated for the session it names (so the
/// header reaches reassembly instead of drawing a CHALLENGE).
fn feed(rx: &mut Receiver, datagram: &[u8]) {
    let from: SocketAddr = "192.0.2.1:5000".parse().unwrap();
    if let Some(s) = datagram.get(4..8) {
        let session = SessionId(u32::from_be_bytes(s.try_into().unwrap()));
        support::validate(rx, Timestamp::from_millis(1), from, session);
    }
    rx.handle(Timestamp::from_millis(1), from, datagram);
    let mut buf = vec![0u8; 65_536];
    while rx.poll_transmit(&mut buf).is_some() {}
    while rx.poll_event().is_some() {}
    // Expiry and NACK timers run over whatever was admitted.
    rx.handle_timeout(Timestamp::from_millis(3_000));
    while rx.poll_transmit(&mut buf).is_some() {}
}

#[test]
fn the_smallest_parity_datagram_of_a_u64_max_frame_is_a_bad_header() {
    // Frame length u64::MAX in one chunk, one parity chunk, index 1 (the parity chunk), no
    // payload: 48 bytes (44 in wire version 1). Its parity shard length overflowed (debug: panic in the parser;
    // release: length 0, accepted, then an allocation of u64::MAX bytes).
    let mut rx = unlimited();
    let d = data(DataFlags::LIVE, 1, 0, 1, 1, u64::MAX, &[]);
    assert_eq!(d.len(), 48);
    feed(&mut rx, &d);
    assert_eq!(rx.stats().bad_header, 1);
    assert_eq!(rx.stats().frames_delivered, 0);
    // The largest frame a layout allows: its shard is 2^63 bytes, no payload matches.
    let d = data(DataFlags::LIVE, 1, 1, 1, 1, i64::MAX as u64, &[]);
    feed(&mut rx, &d);
    assert_eq!(rx.stats().bad_header, 2);
}

#[test]
fn u32_max_chunk_counts_are_refused_by_the_budget() {
    let mut rx = unlimited();
    // 2^32 - 1 chunks of 1 byte: a valid layout whose 4 GiB body and 512 MiB bitmap are far
    // over the 256 MiB peer budget: refused before anything is allocated.
    let d = data(0, 0, 0, u32::MAX - 1, u32::MAX, u64::from(u32::MAX), &[9]);
    feed(&mut rx, &d);
    assert_eq!(rx.stats().over_budget, 1);
    // Parity past u32::MAX is refused by the parser (too many data chunks for FEC).
    let d = data(
        DataFlags::LIVE,
        255,
        1,
        u32::MAX,
        u32::MAX,
        u64::from(u32::MAX),
        &[9, 0],
    );
    feed(&mut rx, &d);
    assert_eq!(rx.stats().bad_header, 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any header fields, lengths drawn towards the extremes: never a panic, and every
    /// datagram is either counted as refused or answered within the budget.
    #[test]
    fn extreme_headers_never_panic(
        flags in prop_oneof![Just(0u8), Just(DataFlags::LIVE), Just(DataFlags::RELIABLE),
            Just(DataFlags::LIVE | DataFlags::MESSAGE)],
        parity in prop_oneof![Just(0u8), Just(1u8), Just(255u8), any::<u8>()],
        index in prop_oneof![Just(0u32), Just(1), Just(u32::MAX), Just(u32::MAX - 1), any::<u32>()],
        count in prop_oneof![Just(1u32), Just(2), Just(u32::MAX), Just(u32::MAX - 1), any::<u32>()],
        len in prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(i64::MAX as u64),
            Just(1u64 << 63), Just(u64::from(u32::MAX)), Just(0u64), Just(1u64), any::<u64>()],
        payload_len in prop_oneof![Just(0usize), Just(1), Just(2), 0usize..1200],
    ) {
        let mut rx = unlimited();
        let payload = vec![0xA5u8; payload_len];
        feed(&mut rx, &data(flags, parity, 0, index, count, len, &payload));
        let s = rx.stats();
        // The first exchange's HELLO, then the datagram.
        prop_assert_eq!(s.datagrams, 2);
        prop_assert_eq!(s.hellos, 1);
        prop_assert!(s.frames_delivered <= 1);
    }
}
