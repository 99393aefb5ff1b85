//! Feedback that cannot be turned against the sender: a forged or confused NACK makes it
//! resend a bounded amount, never chunks sent too recently to be known lost, and each chunk at
//! most once per round trip.

use std::time::Duration;

use pixgram_core::sender::MAX_RESENDS_PER_NACK;
use pixgram_core::wire::{self, ChunkRange};
use pixgram_core::Transmit;
use pixgram_core::{
    FrameId, OutgoingFrame, Receiver, ReceiverConfig, Sender, SenderConfig, SessionId, StreamId,
    Timestamp,
};

mod support;

const SESSION: SessionId = SessionId(9);

/// A sender with one reliable frame of `len` bytes, every chunk sent once, and an RTT learnt
/// from a first small frame acknowledged by a real receiver after `rtt`.
fn sender_with_frame_sent(len: usize, rtt: Duration) -> (Sender, Timestamp) {
    let mut tx = Sender::new(
        SenderConfig {
            peer_timeout: Duration::from_secs(60),
            ..SenderConfig::default()
        },
        SESSION,
    );
    let mut rx = Receiver::new(ReceiverConfig::default());
    let from = "10.0.0.2:5000".parse().unwrap();
    let mut buf = vec![0u8; 2048];
    let mut now = Timestamp::ZERO;
    tx.send(
        now,
        OutgoingFrame::frame(StreamId::FRAMES, vec![1u8; 500]).reliable(true),
    )
    .unwrap();
    let replies = support::pump(&mut tx, &mut rx, now, from);
    now = now + rtt;
    for r in replies {
        tx.handle(now, &r);
    }
    assert_eq!(tx.stats().frames_acked, 1);
    tx.send(
        now,
        OutgoingFrame::frame(StreamId::FRAMES, vec![2u8; len]).reliable(true),
    )
    .unwrap();
    for _ in 0..1_000_000 {
        while tx.poll_transmit(now, &mut buf).is_some() {}
        let s = tx.stats();
        if (s.datagrams_sent - s.hellos_sent) as usize > len.div_ceil(1152) {
            break;
        }
        now = tx.poll_timeout().unwrap().max(now);
    }
    (tx, now)
}

fn nack(frame: u64, ranges: &[ChunkRange]) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let n = wire::emit_nack(
        &mut buf,
        SESSION,
        StreamId::FRAMES,
        FrameId(frame),
        0,
        ranges,
    );
    buf.truncate(n);
    buf
}

fn drain(tx: &mut Sender, now: Timestamp) -> u64 {
    let mut buf = vec![0u8; 2048];
    let mut n = 0;
    while tx.poll_transmit(now, &mut buf).is_some() {
        n += 1;
    }
    n
}

/// Issue 11: one 44-byte NACK naming every chunk of an 11 MB frame used to make the sender
/// resend the whole frame (about 11 MB, 250,000 times the NACK).
#[test]
fn one_nack_for_a_whole_large_frame_resends_a_bounded_number_of_chunks() {
    let (mut tx, mut now) = sender_with_frame_sent(11 << 20, Duration::from_millis(20));
    let chunks = (11u32 << 20).div_ceil(1152);
    now = now + Duration::from_millis(50);
    let before = tx.stats().chunks_retransmitted;
    let forged = nack(
        1,
        &[ChunkRange {
            first: 0,
            count: chunks,
        }],
    );
    assert_eq!(forged.len(), 44);
    tx.handle(now, &forged);
    // Let the pacer release everything queued.
    for _ in 0..1000 {
        drain(&mut tx, now);
        now = now + Duration::from_millis(1);
    }
    let resent = tx.stats().chunks_retransmitted - before;
    assert!(resent > 0, "a NACK is still served");
    assert!(
        resent <= MAX_RESENDS_PER_NACK,
        "{resent} chunks resent for one 44-byte NACK"
    );
    let bytes = resent * 1200;
    assert!(bytes / 44 < 10_000, "leverage {}x", bytes / 44);
    // The same NACK again within a round trip resends nothing more.
    let before = tx.stats().chunks_retransmitted;
    tx.handle(now, &forged);
    drain(&mut tx, now);
    let again = tx.stats().chunks_retransmitted - before;
    assert!(again <= MAX_RESENDS_PER_NACK, "{again}");
    assert!(tx.stats().nack_chunks_deferred > 0);
}

/// Chunks sent less than half the lowest RTT ago cannot be known lost: a NACK naming them is
/// early (a stall NACK listing the frame's tail) or forged, and is not served.
#[test]
fn a_nack_for_chunks_just_sent_resends_nothing() {
    let (mut tx, now) = sender_with_frame_sent(200_000, Duration::from_millis(40));
    let before = tx.stats().chunks_retransmitted;
    tx.handle(
        now,
        &nack(
            1,
            &[ChunkRange {
                first: 100,
                count: 70,
            }],
        ),
    );
    drain(&mut tx, now);
    assert_eq!(tx.stats().chunks_retransmitted, before);
    assert!(tx.stats().nack_chunks_not_due > 0);
    // Once due, the same NACK is served.
    let later = now + Duration::from_millis(30);
    tx.handle(
        later,
        &nack(
            1,
            &[ChunkRange {
                first: 100,
                count: 70,
            }],
        ),
    );
    // Served as the congestion window allows: here nothing reports the chunks in flight
    // delivered, so the window reopens only after a retransmission timeout.
    let mut t = later;
    for _ in 0..1000 {
        drain(&mut tx, t);
        t = t + Duration::from_millis(1);
    }
    assert_eq!(tx.stats().chunks_retransmitted - before, 70);
}

/// A receiver left with nothing to answer (an unreliable frame lost whole) is asked whether it
/// is there, answers, and is not reported gone; the frame alone is reported lost.
#[test]
fn a_receiver_with_nothing_to_answer_is_pinged_not_declared_gone() {
    let config = SenderConfig {
        peer_timeout: Duration::from_secs(2),
        frame_timeout: Duration::from_secs(3),
        ..SenderConfig::default()
    };
    let mut tx = Sender::new(config, SESSION);
    let mut rx = Receiver::new(ReceiverConfig::default());
    let from = "10.0.0.3:5000".parse().unwrap();
    let mut buf = vec![0u8; 2048];
    let mut now = Timestamp::ZERO;
    tx.send(now, OutgoingFrame::frame(StreamId(2), vec![1u8; 800]))
        .unwrap();
    let mut events = Vec::new();
    for _ in 0..5_000 {
        while let Some(t) = tx.poll_transmit(now, &mut buf) {
            // Every DATA chunk is lost; everything else gets through.
            if !matches!(wire::parse(&buf[..t.len]), Ok(wire::Datagram::Data(..))) {
                rx.handle(now, from, &buf[..t.len]);
            }
        }
        while let Some(Transmit {
            destination: _,
            len: n,
        }) = rx.poll_transmit(&mut buf)
        {
            tx.handle(now, &buf[..n]);
        }
        events.extend(std::iter::from_fn(|| tx.poll_event()));
        if tx.in_flight() == 0 {
            break;
        }
        now = now + Duration::from_millis(2);
        tx.handle_timeout(now);
        rx.handle_timeout(now);
    }
    assert!(tx.stats().pings_sent > 0 && tx.stats().pongs_received > 0);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, pixgram_core::SenderEvent::PeerGone)),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        pixgram_core::SenderEvent::Lost {
            reason: pixgram_core::SendFailure::Timeout,
            ..
        }
    )));
}
