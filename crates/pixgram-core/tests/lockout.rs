//! No lockout and no session theft (issue 11 part 1): an address gets no state before it has
//! shown it receives (the first exchange), so floods from addresses that do not answer cost
//! nothing; senders that validated and hold every place with a datagram now and then give way
//! to a new sender; an active session is never evicted; and a datagram naming another session
//! from a sender's address does not end that sender's session.

use std::net::SocketAddr;
use std::time::Duration;

use pixgram_core::wire::{self, DataFlags, DataHeader};
use pixgram_core::Transmit;
use pixgram_core::{
    ChunkIndex, FrameId, OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, SenderConfig,
    SessionEnd, SessionId, StreamId, Timestamp,
};

mod harness;
mod support;

use harness::Link;

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

/// Runs a reliable sender at `honest` for `frames` frames of 20 KB through `rx` (a link with
/// no delay, stepped every 1 ms), calling `between` at every step (for other traffic; replies
/// to it vanish); returns how many were acknowledged, and the receiver's events.
fn run_sender(
    rx: &mut Receiver,
    now: &mut Timestamp,
    honest: SocketAddr,
    frames: u64,
    mut between: impl FnMut(&mut Receiver, Timestamp),
) -> (u64, Vec<ReceiverEvent>) {
    // Seed 1: session 1.
    let mut link = Link::clean(SenderConfig::default(), Duration::ZERO, 1).with_peer(honest);
    link.tick = Some(Duration::from_millis(1));
    link.now = *now;
    std::mem::swap(&mut link.rx, rx);
    let mut queued = 0;
    for _ in 0..200_000 {
        while queued < frames && link.tx.can_send(StreamId::FRAMES) {
            let frame = OutgoingFrame::frame(StreamId::FRAMES, vec![5u8; 20_000]).reliable(true);
            link.tx.send(link.now, frame).unwrap();
            queued += 1;
        }
        let t = link.now;
        link.step(t + Duration::from_millis(1));
        between(&mut link.rx, t);
        if link.acked() as u64 == frames {
            break;
        }
    }
    std::mem::swap(&mut link.rx, rx);
    *now = link.now;
    let events = link.rx_events.drain(..).map(|(_, e)| e).collect();
    (link.acked() as u64, events)
}

#[test]
fn a_datagram_every_5_s_from_64_ports_does_not_lock_out_a_new_sender() {
    let mut rx = Receiver::new(ReceiverConfig::default());
    let mut now = Timestamp::ZERO;
    let n = rx.config().max_peers as u32;
    for i in 0..n {
        // Real addresses that answer: they validate, then hold their places.
        support::validate(&mut rx, now, attacker(i), SessionId(1000 + i));
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
    // New senders arriving every millisecond once the honest one is served: each may take the
    // other place once its holder has been quiet for a second, never the busy one's.
    let mut i = 0;
    let (acked, events) = run_sender(&mut rx, &mut now, honest, 50, |rx, t| {
        if t < Timestamp::from_millis(5) {
            return;
        }
        support::validate(rx, t, attacker(i % 500), SessionId(5000 + i));
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

/// DATA from addresses that never validated: nothing is kept for them (no peer, no byte
/// buffered), each is answered with one CHALLENGE no larger than it within the global budget,
/// and a sender that starts during the flood delivers every frame.
#[test]
fn a_flood_of_unvalidated_data_from_200_ports_keeps_no_state_and_locks_out_no_one() {
    let mut rx = Receiver::new(ReceiverConfig::default());
    let mut now = Timestamp::ZERO;
    let honest: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let mut i = 0u32;
    let mut flood_bytes = 0u64;
    let mut buf = vec![0u8; 2048];
    // 20 datagrams per millisecond (20,000 a second, as the flood), each the first
    // chunk of a 1 MiB frame from one of 200 ports; the CHALLENGEs go nowhere.
    let mut flood = |rx: &mut Receiver, t: Timestamp| {
        for _ in 0..20 {
            let d = megabyte_declaration(9000 + i % 200, u64::from(i));
            flood_bytes += d.len() as u64;
            rx.handle(t, attacker(i % 200), &d);
            i += 1;
        }
    };
    for _ in 0..500 {
        flood(&mut rx, now);
        while rx.poll_transmit(&mut buf).is_some() {}
        now = now + Duration::from_millis(1);
        rx.handle_timeout(now);
    }
    assert_eq!(rx.peer_count(), 0);
    assert_eq!(rx.buffered_bytes(), 0);
    let (acked, _) = run_sender(&mut rx, &mut now, honest, 40, |rx, t| {
        flood(rx, t);
        assert!(rx.peer_count() <= 1);
    });
    assert_eq!(acked, 40, "the honest sender was locked out by the flood");
    let s = rx.stats();
    assert_eq!(s.sessions_started, 1, "only the honest sender has state");
    assert!(s.unvalidated >= u64::from(i) - 1, "{s:?}");
    assert!(s.challenges_limited > 0, "the CHALLENGE budget held: {s:?}");
    let challenge_bytes = s.challenges_sent * wire::CHALLENGE_LEN as u64;
    assert!(
        challenge_bytes <= flood_bytes,
        "{challenge_bytes} bytes of CHALLENGEs for {flood_bytes} bytes of flood"
    );
    assert_eq!(
        rx.buffered_bytes(),
        0,
        "everything acknowledged, nothing held"
    );
}

/// The first chunk of a 1 MiB reliable frame.
fn megabyte_declaration(session: u32, frame: u64) -> Vec<u8> {
    let layout = pixgram_core::chunking::ChunkLayout::for_frame(1 << 20, 1152).unwrap();
    let h = DataHeader {
        session: SessionId(session),
        stream: StreamId::FRAMES,
        flags: DataFlags::from_bits(DataFlags::RELIABLE).unwrap(),
        frame: FrameId(frame),
        index: ChunkIndex(0),
        count: layout.count(),
        frame_len: 1 << 20,
        parity: 0,
        deadline_ms: 0,
        floor: FrameId(frame),
    };
    let mut buf = vec![0u8; 1200];
    let n = wire::emit_data(&mut buf, &h, &[0xEE; 1152]);
    buf.truncate(n);
    buf
}

/// A token is bound to the address it was sent to: one captured on its way to a sender,
/// replayed from another address, validates nothing; the same from the right address does.
#[test]
fn a_token_replayed_from_another_address_validates_nothing() {
    let mut rx = Receiver::new(ReceiverConfig::default());
    let now = Timestamp::from_millis(10);
    let sender: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let thief: SocketAddr = "10.0.0.66:5000".parse().unwrap();
    rx.handle(now, sender, &support::hello(SessionId(3), None));
    let mut buf = vec![0u8; 256];
    let Transmit {
        destination: to,
        len: n,
    } = rx.poll_transmit(&mut buf).expect("a CHALLENGE");
    assert_eq!((to, n), (sender, wire::CHALLENGE_LEN));
    let Ok(wire::Datagram::Challenge(c)) = wire::parse(&buf[..n]) else {
        panic!("not a CHALLENGE")
    };
    rx.handle(now, thief, &support::hello(SessionId(3), Some(c.token)));
    assert_eq!(rx.peer_count(), 0);
    assert_eq!(rx.stats().tokens_invalid, 1);
    // A receiver restarted (a new secret) does not take it either.
    let mut restarted = Receiver::new(ReceiverConfig {
        address_secret: pixgram_core::Secret([9; 32]),
        ..ReceiverConfig::default()
    });
    restarted.handle(now, sender, &support::hello(SessionId(3), Some(c.token)));
    assert_eq!(restarted.peer_count(), 0);
    rx.handle(now, sender, &support::hello(SessionId(3), Some(c.token)));
    assert_eq!(rx.peer_count(), 1);
}
