//! Memory is charged for what arrives, not for what a header declares (issue 11): headers that
//! declare huge frames and send a few bytes cannot reserve the receiver's budget, and a
//! legitimate sender beside them gets room at once.

use std::net::SocketAddr;
use std::time::Duration;

use pixgram_core::chunking::ChunkLayout;
use pixgram_core::wire::{self, DataFlags, DataHeader};
use pixgram_core::Transmit;
use pixgram_core::{
    ChunkIndex, FrameId, OutgoingFrame, Receiver, ReceiverConfig, Sender, SenderConfig,
    SenderEvent, SessionId, StreamId, Timestamp,
};

fn declaration(stream: u32, frame: u64, len: u64) -> Vec<u8> {
    let layout = ChunkLayout::for_frame(len, 256).unwrap();
    let h = DataHeader {
        session: SessionId(0xBAD),
        stream: StreamId(stream),
        flags: DataFlags::from_bits(DataFlags::RELIABLE).unwrap(),
        frame: FrameId(frame),
        index: ChunkIndex(0),
        count: layout.count(),
        frame_len: len,
        parity: 0,
        deadline_ms: 0,
        floor: FrameId(frame),
    };
    let mut buf = vec![0u8; 400];
    let n = wire::emit_data(&mut buf, &h, &[7u8; 256]);
    buf.truncate(n);
    buf
}

#[test]
fn declared_64_mib_frames_reserve_nothing_and_a_real_sender_gets_room() {
    let mut rx = Receiver::new(ReceiverConfig::default());
    let attacker: SocketAddr = "10.9.9.9:666".parse().unwrap();
    let mut now = Timestamp::ZERO;
    // 16 datagrams of about 300 bytes, each opening a 64 MiB frame (and 64 more on 16
    // streams, as many frames as the limits allow).
    let mut sent = 0u64;
    for stream in 0..16u32 {
        for frame in 0..4u64 {
            let d = declaration(stream, frame, 64 << 20);
            sent += d.len() as u64;
            rx.handle(now, attacker, &d);
        }
    }
    let mut buf = vec![0u8; 2048];
    while rx.poll_transmit(&mut buf).is_some() {}
    while rx.poll_event().is_some() {}
    let held = rx.buffered_bytes();
    assert!(
        held < 64 * (4096 + 64 * 1024),
        "{held} bytes held for {sent} bytes received"
    );
    // A legitimate reliable 1 MB frame from another address: admitted at once, never
    // refused for room.
    let mut tx = Sender::new(SenderConfig::default(), SessionId(1));
    let honest: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    tx.send(
        now,
        OutgoingFrame::frame(StreamId::FRAMES, vec![3u8; 1 << 20]).reliable(true),
    )
    .unwrap();
    let mut acked = false;
    for _ in 0..100_000 {
        while let Some(t) = tx.poll_transmit(now, &mut buf) {
            rx.handle(now, honest, &buf[..t.len]);
        }
        while let Some(Transmit {
            destination: to,
            len: n,
        }) = rx.poll_transmit(&mut buf)
        {
            if to == honest {
                tx.handle(now, &buf[..n]);
            }
        }
        while rx.poll_event().is_some() {}
        if let Some(SenderEvent::Acked { .. }) = tx.poll_event() {
            acked = true;
            break;
        }
        now = now + Duration::from_micros(200);
        rx.handle_timeout(now);
        tx.handle_timeout(now);
    }
    assert!(acked, "the real frame was not delivered");
    assert_eq!(tx.stats().rejections_retried, 0, "refused for lack of room");
    assert_eq!(rx.stats().over_budget, 0);
}
