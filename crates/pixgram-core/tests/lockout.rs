//! No lockout and no session theft (issue 11 part 1, the parts that need no handshake): senders
//! that hold every place with a datagram now and then give way to a new sender, an active
//! session is never evicted, and a datagram naming another session from a sender's address
//! does not end that sender's session.

use std::net::SocketAddr;
use std::time::Duration;

use pixgram_core::wire::{self, DataFlags, DataHeader};
use pixgram_core::{
    ChunkIndex, FrameId, OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, Sender,
    SenderConfig, SenderEvent, SessionEnd, SessionId, StreamId, Timestamp,
};

fn empty_frame(session: u32, frame: u64) -> Vec<u8> {
    let h = DataHeader {
        session: SessionId(session),
        stream: StreamId::FRAMES,
        flags: DataFlags::default(),
        frame: FrameId(frame),
        index: ChunkIndex(0),
        count: 1,
        frame_len: 0,
        parity: 0,
        deadline_ms: 0,
        floor: FrameId(frame),
    };
    let mut buf = vec![0u8; 64];
    let n = wire::emit_data(&mut buf, &h, &[]);
    buf.truncate(n);
    buf
}

fn attacker(i: u32) -> SocketAddr {
    SocketAddr::from(([10, 66, (i / 200) as u8, (i % 200) as u8 + 1], 7000))
}

/// Runs a reliable sender at `honest` for `frames` frames of 20 KB through `rx`, calling
/// `between` at every 1 ms step (for other traffic); returns how many were acknowledged.
fn run_sender(
    rx: &mut Receiver,
    now: &mut Timestamp,
    honest: SocketAddr,
    frames: u64,
    mut between: impl FnMut(&mut Receiver, Timestamp),
) -> (u64, Vec<ReceiverEvent>) {
    let mut tx = Sender::new(SenderConfig::default(), SessionId(1));
    let mut buf = vec![0u8; 2048];
    let mut queued = 0;
    let mut acked = 0;
    let mut events = Vec::new();
    for _ in 0..200_000 {
        while queued < frames && tx.can_send(StreamId::FRAMES) {
            tx.send(
                *now,
                OutgoingFrame::frame(StreamId::FRAMES, vec![5u8; 20_000]).reliable(true),
            )
            .unwrap();
            queued += 1;
        }
        while let Some(t) = tx.poll_transmit(*now, &mut buf) {
            rx.handle(*now, honest, &buf[..t.len]);
        }
        between(rx, *now);
        while let Some((to, n)) = rx.poll_transmit(&mut buf) {
            if to == honest {
                tx.handle(*now, &buf[..n]);
            }
        }
        events.extend(std::iter::from_fn(|| rx.poll_event()));
        while let Some(e) = tx.poll_event() {
            if matches!(e, SenderEvent::Acked { .. }) {
                acked += 1;
            }
        }
        if acked == frames {
            break;
        }
        *now = *now + Duration::from_millis(1);
        rx.handle_timeout(*now);
        tx.handle_timeout(*now);
    }
    (acked, events)
}

#[test]
fn a_datagram_every_5_s_from_64_ports_does_not_lock_out_a_new_sender() {
    let mut rx = Receiver::new(ReceiverConfig::default());
    let mut now = Timestamp::ZERO;
    let n = rx.config().max_peers as u32;
    for i in 0..n {
        rx.handle(now, attacker(i), &empty_frame(1000 + i, 0));
    }
    assert_eq!(rx.peer_count(), n as usize, "every place taken");
    now = now + Duration::from_millis(2500);
    rx.handle_timeout(now);
    let honest: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let mut next_round = 1u64;
    let (acked, events) = run_sender(&mut rx, &mut now, honest, 30, |rx, t| {
        // The attackers keep their places: one empty frame each every 5 s.
        if t.as_micros() >= next_round * 5_000_000 {
            for i in 0..n {
                rx.handle(t, attacker(i), &empty_frame(1000 + i, next_round));
            }
            next_round += 1;
        }
    });
    assert_eq!(acked, 30, "the new sender was locked out");
    assert!(rx.stats().sessions_evicted >= 1);
    assert!(
        !events.iter().any(|e| matches!(e,
            ReceiverEvent::SessionEnded { peer, .. } if *peer == honest)),
        "the active sender was evicted"
    );
}

#[test]
fn active_sessions_are_never_evicted() {
    let config = ReceiverConfig {
        max_peers: 2,
        ..ReceiverConfig::default()
    };
    let mut rx = Receiver::new(config);
    let mut now = Timestamp::ZERO;
    let honest: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    // New senders arriving every millisecond while the honest one is busy: each may take the
    // other place once its holder has been quiet for a second, never the busy one's.
    let mut i = 0;
    let (acked, events) = run_sender(&mut rx, &mut now, honest, 50, |rx, t| {
        rx.handle(t, attacker(i % 500), &empty_frame(5000 + i, 0));
        i += 1;
    });
    assert_eq!(acked, 50);
    assert!(
        rx.stats().over_peers > 0,
        "newcomers were refused while all were active"
    );
    assert!(!events.iter().any(|e| matches!(e,
        ReceiverEvent::SessionEnded { peer, reason: SessionEnd::Evicted, .. } if *peer == honest)));
}

#[test]
fn a_datagram_with_another_session_id_from_a_senders_address_ends_nothing() {
    let mut rx = Receiver::new(ReceiverConfig::default());
    let mut now = Timestamp::ZERO;
    let honest: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let mut spoofed = false;
    let (acked, events) = run_sender(&mut rx, &mut now, honest, 20, |rx, t| {
        if !spoofed && t.as_micros() > 3_000 {
            // 48 bytes from the sender's own address, naming another session.
            rx.handle(t, honest, &empty_frame(0xD00D, 0));
            spoofed = true;
        }
    });
    assert!(spoofed);
    assert_eq!(acked, 20, "the sender's session was ended or black-holed");
    assert!(!events.iter().any(|e| matches!(e,
        ReceiverEvent::SessionEnded { session, .. } if *session == SessionId(1))));
}
