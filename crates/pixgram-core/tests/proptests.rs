//! Property tests of the wire format, the chunk geometry and reassembly.
//!
//! - `emit_*` then `parse` gives back every field, for arbitrary field values;
//! - `parse` never panics, on arbitrary bytes and on arbitrary mutations of valid datagrams
//!   (with the CRC fixed up afterwards, so the mutation reaches the field checks), and what it
//!   accepts is canonical: emitting the parsed datagram gives the same bytes;
//! - `ChunkLayout::for_frame` and `ChunkLayout::from_header` agree and tile the frame;
//! - a frame's datagrams fed to a `Receiver` permuted, duplicated and with drops: the frame is
//!   delivered exactly when every chunk got through, and then byte-identical, once.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use pixgram_core::chunking::ChunkLayout;
use pixgram_core::wire::{
    self, Ack, AckStatus, ChunkRange, DataFlags, DataHeader, Datagram, ParseError,
};
use pixgram_core::{
    ChunkIndex, FrameId, OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, Sender,
    SenderConfig, SessionId, StreamId, Timestamp,
};
use proptest::prelude::*;

mod support;

const BUF: usize = wire::MAX_DATAGRAM_SIZE;

/// A DATA header as a real sender writes it; hand-made headers are built from it with
/// struct-update syntax, so fields added later keep the sender's values.
fn base_header() -> DataHeader {
    let mut tx = Sender::new(SenderConfig::default(), SessionId(1));
    tx.send(
        Timestamp::ZERO,
        OutgoingFrame::frame(StreamId(1), Vec::new()),
    )
    .unwrap();
    support::challenge(&mut tx);
    let mut buf = vec![0u8; BUF];
    let mut t = tx.poll_transmit(Timestamp::ZERO, &mut buf).unwrap();
    while support::is_hello(&buf[..t.len]) {
        t = tx.poll_transmit(Timestamp::ZERO, &mut buf).unwrap();
    }
    match wire::parse(&buf[..t.len]) {
        Ok(Datagram::Data(h, _)) => h,
        other => panic!("sender wrote {other:?}"),
    }
}

/// An ACK as a real receiver writes it.
fn base_ack() -> Ack {
    let mut tx = Sender::new(SenderConfig::default(), SessionId(1));
    tx.send(Timestamp::ZERO, OutgoingFrame::frame(StreamId(1), vec![1]))
        .unwrap();
    let mut rx = Receiver::new(ReceiverConfig::default());
    let replies = support::pump(&mut tx, &mut rx, Timestamp::ZERO, addr());
    let len = replies[0].len();
    let buf = &replies[0];
    match wire::parse(&buf[..len]) {
        Ok(Datagram::Ack(a)) => a,
        other => panic!("receiver wrote {other:?}"),
    }
}

fn addr() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 9000))
}

/// The four flags every receiver knows; other flags carry their own header rules.
fn flags() -> impl Strategy<Value = DataFlags> {
    (0u8..16).prop_map(|b| DataFlags::from_bits(b).unwrap())
}

/// A frame geometry small enough to emit a chunk of: `count` chunks of `size` bytes, the last
/// `r` bytes shorter (`r < size`, `r < count`, so the layout is exactly that), or the empty
/// frame.
fn geometry() -> impl Strategy<Value = (u64, u32, u32)> {
    let sized = (1u32..=u32::MAX, 1u64..=1500, any::<u64>(), any::<u32>()).prop_map(
        |(count, size, r, index)| {
            let r = r % size.min(u64::from(count));
            let len = u64::from(count) * size - r;
            (len, count, index % count)
        },
    );
    prop_oneof![Just((0, 1, 0)), sized]
}

fn emit_parse_data(h: &DataHeader, payload: &[u8]) -> (Vec<u8>, DataHeader, Vec<u8>) {
    let mut buf = vec![0u8; BUF];
    let n = wire::emit_data(&mut buf, h, payload);
    assert_eq!(n, wire::DATA_OVERHEAD + payload.len());
    buf.truncate(n);
    let (got, p) = match wire::parse(&buf) {
        Ok(Datagram::Data(got, p)) => (got, p.to_vec()),
        other => panic!("{h:?}: {other:?}"),
    };
    (buf, got, p)
}

/// Emitting a datagram `parse` accepted gives back the same bytes: there is one encoding.
fn assert_canonical(bytes: &[u8], d: &Datagram<'_>) {
    let mut buf = vec![0u8; BUF];
    let n = match d {
        Datagram::Data(h, payload) => wire::emit_data(&mut buf, h, payload),
        Datagram::Ack(a) => wire::emit_ack(&mut buf, a),
        Datagram::Nack(nack) => {
            let ranges: Vec<ChunkRange> = nack.ranges().collect();
            wire::emit_nack(
                &mut buf,
                nack.session,
                nack.stream,
                nack.frame,
                nack.chunks_received,
                &ranges,
            )
        }
        Datagram::Close(s) => wire::emit_close(&mut buf, *s),
        Datagram::Ping(s, v) => wire::emit_ping(&mut buf, *s, *v, false),
        Datagram::Pong(s, v) => wire::emit_ping(&mut buf, *s, *v, true),
        Datagram::Hello(h) => wire::emit_hello(&mut buf, h),
        Datagram::Challenge(c) => wire::emit_challenge(&mut buf, c),
    };
    assert_eq!(
        &buf[..n],
        bytes,
        "accepted {d:?} but it re-encodes differently"
    );
}

/// Checks what a successful parse promises: fields consistent with the length.
fn assert_consistent(bytes: &[u8], d: &Datagram<'_>) {
    if let Datagram::Data(h, payload) = d {
        let layout = ChunkLayout::from_header(h.frame_len, h.count).expect("valid geometry");
        if h.index.0 < h.count {
            assert_eq!(layout.chunk_len(h.index), Some(payload.len()));
        }
        assert_eq!(bytes.len(), wire::DATA_OVERHEAD + payload.len());
    }
    if let Datagram::Nack(n) = d {
        let ranges: Vec<ChunkRange> = n.ranges().collect();
        assert!(!ranges.is_empty() && ranges.len() <= wire::MAX_NACK_RANGES);
        assert!(ranges
            .iter()
            .all(|r| r.count > 0 && r.first.checked_add(r.count).is_some()));
    }
}

/// Any datagram type, valid.
fn valid_datagram() -> impl Strategy<Value = Vec<u8>> {
    let data = (
        any::<u32>(),
        any::<u32>(),
        flags(),
        any::<u64>(),
        0u64..5000,
        1usize..64,
    )
        .prop_map(|(session, stream, flags, frame, len, max_chunk)| {
            let layout = ChunkLayout::for_frame(len, max_chunk).unwrap();
            let index = ChunkIndex((frame % u64::from(layout.count())) as u32);
            let h = DataHeader {
                session: SessionId(session),
                stream: StreamId(stream),
                flags,
                frame: FrameId(frame),
                index,
                count: layout.count(),
                frame_len: len,
                ..base_header()
            };
            let payload = vec![0xA5; layout.chunk_len(index).unwrap()];
            emit_parse_data(&h, &payload).0
        });
    let ack = (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(s, f, c)| {
        let a = Ack {
            session: SessionId(s),
            frame: FrameId(f),
            chunks_received: c,
            ..base_ack()
        };
        let mut buf = vec![0u8; wire::ACK_LEN];
        let n = wire::emit_ack(&mut buf, &a);
        buf.truncate(n);
        buf
    });
    let nack = (
        any::<u32>(),
        prop::collection::vec((0u32..1000, 1u32..50), 1..8),
    )
        .prop_map(|(s, r)| {
            let ranges: Vec<ChunkRange> = r
                .into_iter()
                .map(|(first, count)| ChunkRange { first, count })
                .collect();
            let mut buf = vec![0u8; BUF];
            let n = wire::emit_nack(&mut buf, SessionId(s), StreamId(1), FrameId(2), 3, &ranges);
            buf.truncate(n);
            buf
        });
    let close = any::<u32>().prop_map(|s| {
        let mut buf = vec![0u8; wire::CLOSE_LEN];
        let n = wire::emit_close(&mut buf, SessionId(s));
        buf.truncate(n);
        buf
    });
    let hello = (
        any::<u32>(),
        any::<Option<[u8; 32]>>(),
        any::<bool>(),
        0usize..200,
    )
        .prop_map(|(s, token, probe, pad)| {
            let h = wire::Hello {
                session: SessionId(s),
                token,
                probe,
                max_datagram: 1200,
                len: wire::MIN_HELLO_LEN + pad,
            };
            let mut buf = vec![0u8; BUF];
            let n = wire::emit_hello(&mut buf, &h);
            buf.truncate(n);
            buf
        });
    let challenge = (any::<u32>(), any::<u32>(), any::<[u8; 32]>()).prop_map(|(s, len, token)| {
        let c = wire::Challenge {
            session: SessionId(s),
            answered_len: len,
            token,
        };
        let mut buf = vec![0u8; wire::CHALLENGE_LEN];
        let n = wire::emit_challenge(&mut buf, &c);
        buf.truncate(n);
        buf
    });
    prop_oneof![data, ack, nack, close, hello, challenge]
}

/// One edit to a datagram.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize),
    SetByte(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
    /// Overwrite 8 bytes (a whole field or two) at a position.
    SetWord(usize, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::FlipBit),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Extend),
        (any::<usize>(), any::<u64>()).prop_map(|(i, w)| Mutation::SetWord(i, w)),
        // Extreme values where they hurt: frame length, chunk count and index.
        (
            0usize..5,
            prop_oneof![Just(u64::MAX), Just(0), Just(1), any::<u64>()]
        )
            .prop_map(|(k, w)| Mutation::SetWord([16, 24, 28, 32, 13][k], w)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::FlipBit(i) if !bytes.is_empty() => {
            let bit = i % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        Mutation::SetByte(i, b) if !bytes.is_empty() => {
            let at = i % bytes.len();
            bytes[at] = *b;
        }
        Mutation::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
        Mutation::Extend(more) => bytes.extend_from_slice(more),
        Mutation::SetWord(i, w) if bytes.len() >= 8 => {
            let at = i % (bytes.len() - 7);
            bytes[at..at + 8].copy_from_slice(&w.to_be_bytes());
        }
        _ => {}
    }
}

/// Rewrites the CRC trailer so the datagram passes the checksum.
fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() >= wire::TRAILER_LEN {
        let end = bytes.len() - wire::TRAILER_LEN;
        let crc = wire::checksum(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_be_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn data_round_trips(
        session in any::<u32>(),
        stream in any::<u32>(),
        flags in flags(),
        frame in any::<u64>(),
        (frame_len, count, index) in geometry(),
        fill in any::<u8>(),
    ) {
        let h = DataHeader {
            session: SessionId(session),
            stream: StreamId(stream),
            flags,
            frame: FrameId(frame),
            index: ChunkIndex(index),
            count,
            frame_len,
            ..base_header()
        };
        let layout = ChunkLayout::from_header(frame_len, count).expect("generated valid");
        let len = layout.chunk_len(ChunkIndex(index)).expect("index in range");
        let payload: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
        let (bytes, got, got_payload) = emit_parse_data(&h, &payload);
        prop_assert_eq!(got, h);
        prop_assert_eq!(got_payload, payload);
        prop_assert_eq!(wire::parse(&bytes).unwrap().session(), SessionId(session));
    }

    #[test]
    fn data_with_the_wrong_payload_length_is_refused(
        (frame_len, count, index) in geometry(),
        delta in prop_oneof![-3i64..0, 1i64..4],
    ) {
        let h = DataHeader {
            index: ChunkIndex(index),
            count,
            frame_len,
            ..base_header()
        };
        let layout = ChunkLayout::from_header(frame_len, count).unwrap();
        let right = layout.chunk_len(ChunkIndex(index)).unwrap() as i64;
        prop_assume!(right + delta >= 0);
        let mut buf = vec![0u8; BUF];
        let n = wire::emit_data(&mut buf, &h, &vec![0; (right + delta) as usize]);
        prop_assert!(matches!(wire::parse(&buf[..n]), Err(ParseError::BadHeader(_))));
    }

    #[test]
    fn ack_round_trips(
        session in any::<u32>(),
        stream in any::<u32>(),
        frame in any::<u64>(),
        status in prop_oneof![
            Just(AckStatus::Complete),
            Just(AckStatus::Expired),
            Just(AckStatus::Rejected)
        ],
        chunks_received in any::<u32>(),
        ack_delay_us in any::<u32>(),
    ) {
        let a = Ack {
            session: SessionId(session),
            stream: StreamId(stream),
            frame: FrameId(frame),
            status,
            chunks_received,
            ack_delay_us,
            ..base_ack()
        };
        let mut buf = [0u8; wire::ACK_LEN];
        let n = wire::emit_ack(&mut buf, &a);
        prop_assert_eq!(n, wire::ACK_LEN);
        prop_assert_eq!(wire::parse(&buf[..n]), Ok(Datagram::Ack(a)));
    }

    #[test]
    fn close_round_trips(session in any::<u32>()) {
        let mut buf = [0u8; wire::CLOSE_LEN];
        let n = wire::emit_close(&mut buf, SessionId(session));
        prop_assert_eq!(n, wire::CLOSE_LEN);
        prop_assert_eq!(wire::parse(&buf[..n]), Ok(Datagram::Close(SessionId(session))));
    }

    #[test]
    fn nack_round_trips(
        session in any::<u32>(),
        stream in any::<u32>(),
        frame in any::<u64>(),
        chunks_received in any::<u32>(),
        raw in prop::collection::vec((any::<u32>(), 1u32..=u32::MAX), 1..=wire::MAX_NACK_RANGES),
    ) {
        let ranges: Vec<ChunkRange> = raw
            .into_iter()
            .map(|(first, count)| ChunkRange { first: first.min(u32::MAX - count), count })
            .collect();
        let mut buf = vec![0u8; BUF];
        let n = wire::emit_nack(
            &mut buf, SessionId(session), StreamId(stream), FrameId(frame), chunks_received, &ranges,
        );
        prop_assert_eq!(n, wire::NACK_HEADER_LEN + 8 * ranges.len() + wire::TRAILER_LEN);
        let Ok(Datagram::Nack(nack)) = wire::parse(&buf[..n]) else {
            panic!("not a nack: {:?}", wire::parse(&buf[..n]));
        };
        prop_assert_eq!(
            (nack.session, nack.stream, nack.frame, nack.chunks_received),
            (SessionId(session), StreamId(stream), FrameId(frame), chunks_received)
        );
        prop_assert_eq!(nack.ranges().collect::<Vec<_>>(), ranges);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(d) = wire::parse(&bytes) {
            assert_consistent(&bytes, &d);
            assert_canonical(&bytes, &d);
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes_with_a_valid_start_and_crc(
        ty in 0u8..6,
        mut bytes in prop::collection::vec(any::<u8>(), 8..200),
    ) {
        bytes[..4].copy_from_slice(&[b'P', b'G', wire::VERSION, ty]);
        fix_crc(&mut bytes);
        if let Ok(d) = wire::parse(&bytes) {
            assert_consistent(&bytes, &d);
            assert_canonical(&bytes, &d);
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_datagrams(
        original in valid_datagram(),
        mutations in prop::collection::vec(mutation(), 1..4),
        recompute_crc in any::<bool>(),
    ) {
        let mut bytes = original.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if recompute_crc {
            fix_crc(&mut bytes);
        }
        if let Ok(d) = wire::parse(&bytes) {
            assert_consistent(&bytes, &d);
            assert_canonical(&bytes, &d);
        }
        // Without a fixed-up CRC, a single flipped bit is always caught.
        if !recompute_crc && mutations.len() == 1 && matches!(mutations[0], Mutation::FlipBit(_)) {
            prop_assert!(wire::parse(&bytes).is_err(), "a single bit flip was accepted");
        }
    }

    #[test]
    fn layouts_for_frames_are_valid_headers_and_tile_the_frame(
        len in prop_oneof![0u64..100_000, any::<u64>()],
        max_chunk in prop_oneof![1usize..2000, 1usize..=65_535, Just(usize::MAX)],
    ) {
        let want = len.div_ceil(max_chunk as u64).max(1);
        let Some(l) = ChunkLayout::for_frame(len, max_chunk) else {
            prop_assert!(
                want > u64::from(u32::MAX) || len > pixgram_core::chunking::MAX_LAYOUT_LEN,
                "refused a layout of {want} chunks"
            );
            return Ok(());
        };
        prop_assert_eq!(u64::from(l.count()), want);
        prop_assert_eq!(ChunkLayout::from_header(len, l.count()), Some(l));
        prop_assert_eq!(l.len(), len);
        prop_assert!(l.chunk_size() <= max_chunk as u64);
        check_tiling(&l)?;
    }

    #[test]
    fn headers_are_accepted_exactly_when_no_chunk_is_empty(
        len in prop_oneof![0u64..10_000, any::<u64>()],
        count in prop_oneof![0u32..200, any::<u32>()],
    ) {
        let got = ChunkLayout::from_header(len, count);
        let valid = count >= 1 && len <= pixgram_core::chunking::MAX_LAYOUT_LEN && if len == 0 {
            count == 1
        } else {
            let size = len.div_ceil(u64::from(count));
            u128::from(count - 1) * u128::from(size) < u128::from(len)
        };
        prop_assert_eq!(got.is_some(), valid, "len {} count {}", len, count);
        if let Some(l) = got {
            prop_assert_eq!((l.len(), l.count()), (len, count));
            check_tiling(&l)?;
        }
    }
}

/// Chunks are contiguous, non-empty (unless the frame is), at most `chunk_size`, and add up to
/// the frame; indices past the count have no chunk. Checks the ends and a sample in between.
fn check_tiling(l: &ChunkLayout) -> Result<(), TestCaseError> {
    let count = l.count();
    prop_assert!(count >= 1);
    let last = ChunkIndex(count - 1);
    prop_assert_eq!(l.chunk_len(ChunkIndex(count)), None);
    prop_assert_eq!(l.offset(ChunkIndex(count)), None);
    let last_len = l.chunk_len(last).map(|n| n as u64);
    if let Some(last_len) = last_len {
        prop_assert!(last_len > 0 || l.is_empty());
        prop_assert!(last_len <= l.chunk_size());
        prop_assert_eq!(l.offset(last).unwrap() + last_len, l.len());
    }
    let mut sample: BTreeSet<u32> = [0, 1, count / 2, count.saturating_sub(2), count - 1]
        .into_iter()
        .filter(|&i| i < count)
        .collect();
    if count <= 2000 {
        sample.extend(0..count);
    }
    let mut total: u64 = 0;
    for &i in &sample {
        let off = l.offset(ChunkIndex(i)).unwrap();
        prop_assert_eq!(off, u64::from(i) * l.chunk_size());
        if i + 1 < count {
            prop_assert_eq!(
                l.chunk_len(ChunkIndex(i)).map(|n| n as u64),
                Some(l.chunk_size())
            );
            prop_assert_eq!(l.offset(ChunkIndex(i + 1)).unwrap(), off + l.chunk_size());
        }
        if count <= 2000 {
            total += l.chunk_len(ChunkIndex(i)).unwrap() as u64;
        }
    }
    if count <= 2000 {
        prop_assert_eq!(total, l.len());
    }
    Ok(())
}

/// A frame as the application gives it.
#[derive(Debug, Clone)]
struct FrameSpec {
    stream: u32,
    ordered: bool,
    reliable: bool,
    metadata: Option<Vec<u8>>,
    payload: Vec<u8>,
}

fn frame_spec() -> impl Strategy<Value = FrameSpec> {
    (
        0u32..3,
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..3),
            prop::collection::vec(any::<u8>(), 0..5000),
            prop::collection::vec(any::<u8>(), 5000..20_000),
        ],
    )
        .prop_map(|(stream, ordered, reliable, metadata, payload)| FrameSpec {
            stream,
            ordered,
            reliable,
            metadata,
            payload,
        })
}

/// What happens to one datagram on the way.
#[derive(Debug, Clone, Copy)]
struct Fate {
    copies: u8,
    order_key: u32,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reassembly_delivers_exactly_the_frames_whose_chunks_all_arrived(
        specs in prop::collection::vec(frame_spec(), 1..5),
        datagram_size in prop_oneof![Just(wire::MIN_DATAGRAM_SIZE), 576usize..3000],
        fates in prop::collection::vec(
            (prop_oneof![3 => Just(1u8), 1 => Just(0u8), 1 => Just(2u8), 1 => 3u8..5], any::<u32>())
                .prop_map(|(copies, order_key)| Fate { copies, order_key }),
            256,
        ),
        drop_nothing in any::<bool>(),
    ) {
        // One stream's ordering and reliability are fixed by its first frame.
        let mut modes = std::collections::BTreeMap::new();
        let specs: Vec<FrameSpec> = specs
            .into_iter()
            .map(|mut s| {
                let (o, r) = *modes.entry(s.stream).or_insert((s.ordered, s.reliable));
                s.ordered = o;
                s.reliable = r;
                s
            })
            .collect();
        let config = SenderConfig { datagram_size, window: 8, ..SenderConfig::default() };
        let mut tx = Sender::new(config, SessionId(42));
        let mut sent = Vec::new();
        for s in &specs {
            let mut f = OutgoingFrame::frame(StreamId(s.stream), s.payload.clone())
                .ordered(s.ordered)
                .reliable(s.reliable);
            if let Some(m) = &s.metadata {
                f = f.with_metadata(m.clone());
            }
            let id = tx.send(Timestamp::ZERO, f).unwrap();
            sent.push(((StreamId(s.stream), id), s.clone()));
        }
        support::challenge(&mut tx);
        // Every chunk the sender emits, once (pacing allows a burst, and the congestion window
        // a first flight with no feedback: let time pass, and the sender's timers run, for the
        // rest; a timeout's probe resends a chunk already listed).
        let mut datagrams: Vec<Vec<u8>> = Vec::new();
        let mut seen: BTreeSet<(StreamId, FrameId, u32)> = BTreeSet::new();
        let mut buf = vec![0u8; BUF];
        let mut t = Timestamp::ZERO;
        for _ in 0..10_000 {
            while let Some(x) = tx.poll_transmit(t, &mut buf) {
                if support::is_hello(&buf[..x.len]) {
                    continue;
                }
                let Ok(Datagram::Data(h, _)) = wire::parse(&buf[..x.len]) else { panic!("not data") };
                if seen.insert((h.stream, h.frame, h.index.0)) {
                    datagrams.push(buf[..x.len].to_vec());
                }
            }
            match tx.poll_timeout() {
                Some(next) if datagrams.len() < expected_chunks(&tx, &specs) => {
                    t = next.max(t);
                    tx.handle_timeout(t);
                }
                _ => break,
            }
        }
        prop_assert_eq!(datagrams.len(), expected_chunks(&tx, &specs));
        // The network: drops, duplicates, any order.
        let mut wire_order: Vec<(u32, usize)> = Vec::new();
        let mut arrived: BTreeSet<(StreamId, FrameId, u32)> = BTreeSet::new();
        for (i, d) in datagrams.iter().enumerate() {
            let fate = fates[i % fates.len()];
            let copies = if drop_nothing { fate.copies.max(1) } else { fate.copies };
            for c in 0..copies {
                wire_order.push((fate.order_key.wrapping_add(u32::from(c) * 7919), i));
            }
            if copies > 0 {
                let Ok(Datagram::Data(h, _)) = wire::parse(d) else { panic!("not data") };
                arrived.insert((h.stream, h.frame, h.index.0));
            }
        }
        wire_order.sort();
        let mut rx = Receiver::new(ReceiverConfig::default());
        let mut now = Timestamp::ZERO;
        support::validate(&mut rx, now, addr(), SessionId(42));
        let mut events = Vec::new();
        for (_, i) in wire_order {
            now = now + Duration::from_micros(50);
            rx.handle(now, addr(), &datagrams[i]);
            while rx.poll_transmit(&mut buf).is_some() {}
            events.extend(std::iter::from_fn(|| rx.poll_event()));
        }
        // Run every timer out: expiries, gaps, the session forgotten.
        for _ in 0..1_000_000 {
            let Some(t) = rx.poll_timeout() else { break };
            now = t.max(now);
            rx.handle_timeout(now);
            while rx.poll_transmit(&mut buf).is_some() {}
            events.extend(std::iter::from_fn(|| rx.poll_event()));
        }
        prop_assert_eq!(rx.poll_timeout(), None);
        prop_assert_eq!(rx.buffered_bytes(), 0);
        for ((stream, id), spec) in &sent {
            let chunks = layout_of(spec, datagram_size).count();
            let whole = (0..chunks).all(|c| arrived.contains(&(*stream, *id, c)));
            let delivered: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    ReceiverEvent::Frame(f) if f.stream == *stream && f.frame == *id => Some(f),
                    _ => None,
                })
                .collect();
            prop_assert_eq!(
                delivered.len(),
                usize::from(whole),
                "frame {:?}/{:?}: {} chunks, whole: {}",
                stream, id, chunks, whole
            );
            if let Some(f) = delivered.first() {
                prop_assert!(f.payload[..] == spec.payload[..], "payload differs");
                prop_assert_eq!(f.metadata.as_deref(), spec.metadata.as_deref());
            }
        }
    }
}

fn layout_of(spec: &FrameSpec, datagram_size: usize) -> ChunkLayout {
    let meta = spec.metadata.as_ref().map_or(0, |m| 4 + m.len() as u64);
    ChunkLayout::for_frame(
        meta + spec.payload.len() as u64,
        datagram_size - wire::DATA_OVERHEAD,
    )
    .unwrap()
}

fn expected_chunks(tx: &Sender, specs: &[FrameSpec]) -> usize {
    specs
        .iter()
        .map(|s| layout_of(s, tx.config().datagram_size).count() as usize)
        .sum()
}
