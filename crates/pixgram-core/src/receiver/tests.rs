//! One test per seam of the receiver; the whole protocol is tested end to end in `tests/`.

use super::*;
use crate::sender::{OutgoingFrame, Sender, SenderConfig};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

/// Every datagram `tx` has ready goes to `rx` from `from`; CHALLENGEs go straight back.
fn pump(tx: &mut Sender, rx: &mut Receiver, now: Timestamp, from: SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    for _ in 0..16 {
        while let Some(t) = tx.poll_transmit(now, &mut buf) {
            rx.handle(now, from, &buf[..t.len]);
        }
        let mut challenged = false;
        while let Some(Transmit { len: n, .. }) = rx.poll_transmit(&mut buf) {
            challenged |= matches!(wire::parse(&buf[..n]), Ok(Datagram::Challenge(_)));
            tx.handle(now, &buf[..n]);
        }
        if !challenged {
            break;
        }
    }
}

fn frame(n: usize) -> OutgoingFrame {
    OutgoingFrame::frame(StreamId(1), vec![3u8; n]).reliable(true)
}

#[test]
fn exchange_holds_data_from_an_address_not_validated_and_challenges_it() {
    let mut rx = Receiver::new(ReceiverConfig::default());
    let mut tx = Sender::new(SenderConfig::default(), SessionId(9));
    let now = Timestamp::from_millis(5);
    tx.send(now, frame(5_000)).unwrap();
    pump(&mut tx, &mut rx, now, addr(1));
    assert_eq!(rx.stats().frames_delivered, 1);
    // DATA from an address that never answered a CHALLENGE (its sender took a token on
    // trust): answered with a CHALLENGE, held, never delivered, no state for it.
    let mut buf = vec![0u8; 2048];
    let mut tx2 = Sender::new(SenderConfig::default(), SessionId(10));
    // A token the sender takes on trust (it does not check them): it may send DATA now.
    let c = Challenge {
        session: tx2.session(),
        answered_len: wire::MIN_HELLO_LEN as u32,
        token: [0x5A; wire::TOKEN_LEN],
    };
    let n = wire::emit_challenge(&mut buf, &c);
    tx2.handle(now, &buf[..n]);
    tx2.send(now, frame(1_000)).unwrap();
    while let Some(t) = tx2.poll_transmit(now, &mut buf) {
        rx.handle(now, addr(2), &buf[..t.len]);
    }
    assert!(rx.stats().unvalidated >= 1);
    let replies: Vec<_> = std::iter::from_fn(|| rx.poll_transmit(&mut buf)).collect();
    assert!(replies.iter().all(|t| t.destination == addr(2)) && !replies.is_empty());
    assert_eq!(rx.stats().frames_delivered, 1);
    assert_eq!(rx.peer_count(), 1);
}

#[test]
fn peers_are_refused_beyond_max_peers_unless_one_is_quiet() {
    let config = ReceiverConfig {
        max_peers: 1,
        ..ReceiverConfig::default()
    };
    let mut rx = Receiver::new(config);
    let now = Timestamp::from_millis(5);
    let mut first = Sender::new(SenderConfig::default(), SessionId(1));
    first.send(now, frame(100)).unwrap();
    pump(&mut first, &mut rx, now, addr(1));
    // A second sender at once: the first was heard just now, so it is refused.
    let mut second = Sender::new(SenderConfig::default(), SessionId(2));
    second.send(now, frame(100)).unwrap();
    pump(&mut second, &mut rx, now, addr(2));
    assert!(rx.stats().over_peers >= 1, "{:?}", rx.stats());
    assert_eq!(rx.peer_count(), 1);
    // Once the first has been quiet for EVICT_QUIET, the newcomer takes its place.
    let later = now + EVICT_QUIET + Duration::from_millis(1);
    let mut third = Sender::new(SenderConfig::default(), SessionId(3));
    third.send(later, frame(100)).unwrap();
    pump(&mut third, &mut rx, later, addr(3));
    assert_eq!(rx.stats().sessions_evicted, 1);
    assert_eq!(rx.peer_count(), 1);
}

#[test]
fn replies_never_exceed_what_the_peer_sent() {
    let mut rx = Receiver::new(ReceiverConfig::default());
    let now = Timestamp::from_millis(5);
    let mut tx = Sender::new(SenderConfig::default(), SessionId(4));
    let mut sent = 0usize;
    let mut answered = 0usize;
    let mut buf = vec![0u8; 65_536];
    for i in 0..20u64 {
        let at = now + Duration::from_millis(i);
        // Tiny frames: each ACK is larger than the datagram it answers.
        tx.send(at, OutgoingFrame::message(StreamId(2), b"{}".to_vec()))
            .unwrap();
        for _ in 0..4 {
            while let Some(t) = tx.poll_transmit(at, &mut buf) {
                sent += t.len;
                rx.handle(at, addr(1), &buf[..t.len]);
            }
            while let Some(Transmit { len: n, .. }) = rx.poll_transmit(&mut buf) {
                answered += n;
                tx.handle(at, &buf[..n]);
            }
        }
    }
    assert!(answered <= sent, "answered {answered} bytes to {sent}");
    assert!(rx.stats().acks_sent > 0);
}

/// A datagram an AEAD open has authenticated is not checksummed again: the same datagram
/// with its checksum spoilt is refused by `handle` and taken by `handle_opened`.
#[test]
fn an_opened_datagram_skips_the_checksum_and_a_plain_one_does_not() {
    let now = Timestamp::from_millis(5);
    let spoilt = |rx: &mut Receiver, opened: bool| {
        let mut tx = Sender::new(SenderConfig::default(), SessionId(9));
        tx.send(now, frame(5_000)).unwrap();
        let mut buf = vec![0u8; 65_536];
        for _ in 0..16 {
            let mut progressed = false;
            while let Some(t) = tx.poll_transmit(now, &mut buf) {
                let d = &mut buf[..t.len];
                if matches!(wire::parse(d), Ok(Datagram::Data(..))) {
                    let last = d.len() - 1;
                    d[last] ^= 0xFF; // the checksum's last byte
                }
                if opened {
                    rx.handle_opened(now, addr(1), d);
                } else {
                    rx.handle(now, addr(1), d);
                }
            }
            let mut back = vec![0u8; 2048];
            while let Some(t) = rx.poll_transmit(&mut back) {
                tx.handle(now, &back[..t.len]);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    };
    let mut plain = Receiver::new(ReceiverConfig::default());
    spoilt(&mut plain, false);
    assert!(plain.stats().bad_checksum > 0);
    assert_eq!(plain.stats().frames_delivered, 0);
    let mut opened = Receiver::new(ReceiverConfig::default());
    spoilt(&mut opened, true);
    assert_eq!(opened.stats().bad_checksum, 0);
    assert_eq!(opened.stats().frames_delivered, 1);
}

/// Chunks of one frame read in one batch (one `recvmmsg` of GRO runs) earn one progress
/// report, the newest, not one per `PROGRESS_CHUNKS` of them: the rest would go out at the
/// same moment saying less. Handed over one at a time, each report goes out as it falls due.
#[test]
fn a_batch_of_chunks_earns_one_progress_report_per_frame() {
    let now = Timestamp::from_millis(5);
    let mut rx = Receiver::new(ReceiverConfig::default());
    let mut tx = Sender::new(SenderConfig::default(), SessionId(7));
    tx.send(now, frame(100)).unwrap();
    pump(&mut tx, &mut rx, now, addr(1));
    assert_eq!(rx.stats().frames_delivered, 1);
    // 80 chunks of 1,200-byte datagrams each; all but the last handed over.
    let chunks = |tx: &mut Sender, at: Timestamp| {
        tx.send(at, frame(80 * 1_100)).unwrap();
        let mut data = Vec::new();
        let mut buf = vec![0u8; 2048];
        for step in 0..2_000u64 {
            let t = at + Duration::from_micros(step * 20);
            while let Some(d) = tx.poll_transmit(t, &mut buf) {
                data.push(buf[..d.len].to_vec());
            }
            if data.len() >= 80 {
                break;
            }
        }
        data.pop();
        data
    };
    let progress = |rx: &mut Receiver| {
        let mut back = vec![0u8; 2048];
        let mut n = 0;
        while let Some(t) = rx.poll_transmit(&mut back) {
            if let Ok(Datagram::Nack(h)) = wire::parse(&back[..t.len]) {
                assert!(h.chunks_received > 0);
                n += 1;
            }
        }
        n
    };
    // One batch: one report.
    let batch = chunks(&mut tx, now);
    assert!(batch.len() >= 70, "{} chunks", batch.len());
    for d in &batch {
        rx.handle(now, addr(1), d);
    }
    assert_eq!(progress(&mut rx), 1);
    let coalesced = rx.stats().progress_reports_coalesced;
    assert!(coalesced >= 3, "{coalesced} coalesced");
    // One at a time: a report per PROGRESS_CHUNKS chunks, none coalesced.
    let later = now + Duration::from_millis(100);
    let mut reports = 0;
    for d in &chunks(&mut tx, later) {
        rx.handle(later, addr(1), d);
        reports += progress(&mut rx);
    }
    assert!(reports >= 4, "{reports} reports");
    assert_eq!(rx.stats().progress_reports_coalesced, coalesced);
}

/// A live frame's ACK is not retried by its sender, so it is answered twice: again at the
/// first chunk after the frame was whole (parity), or, without parity, twice at once on the
/// last data chunk, which decides it. With the application confirming, both answers wait
/// for its confirmation.
#[test]
fn a_live_frame_is_answered_twice() {
    use crate::sender::FecPolicy;
    for (confirm, fec) in [
        (false, FecPolicy::Ratio(0.2)),
        (true, FecPolicy::Ratio(0.2)),
        (false, FecPolicy::Off),
        (true, FecPolicy::Off),
    ] {
        let now = Timestamp::from_millis(5);
        let config = ReceiverConfig {
            confirm_deliveries: confirm,
            ..ReceiverConfig::default()
        };
        let mut rx = Receiver::new(config);
        let mut tx = Sender::new(SenderConfig::default(), SessionId(7));
        tx.send(now, frame(100)).unwrap();
        pump(&mut tx, &mut rx, now, addr(1));
        while let Some(e) = rx.poll_event() {
            if let ReceiverEvent::Frame(f) = e {
                rx.confirm(now, f.key(), true);
            }
        }
        let mut buf = vec![0u8; 2048];
        while rx.poll_transmit(&mut buf).is_some() {}
        let live = OutgoingFrame::live(StreamId(2), vec![5u8; 20_000], Duration::from_secs(1))
            .with_fec(fec);
        tx.send(now, live).unwrap();
        let mut data = Vec::new();
        for step in 0..2_000u64 {
            let t = now + Duration::from_micros(step * 20);
            while let Some(d) = tx.poll_transmit(t, &mut buf) {
                if matches!(wire::parse(&buf[..d.len]), Ok(Datagram::Data(h, _)) if h.stream == StreamId(2))
                {
                    data.push(buf[..d.len].to_vec());
                }
            }
        }
        // 18 data chunks and 4 parity.
        let parity = if fec == FecPolicy::Off { 0 } else { 4 };
        assert_eq!(data.len(), 18 + parity);
        let acks = |rx: &mut Receiver| {
            let mut back = vec![0u8; 2048];
            let mut n = 0;
            while let Some(t) = rx.poll_transmit(&mut back) {
                if let Ok(Datagram::Ack(a)) = wire::parse(&back[..t.len]) {
                    assert_eq!(
                        (a.stream, a.status),
                        (StreamId(2), wire::AckStatus::Complete)
                    );
                    n += 1;
                }
            }
            n
        };
        let mut answers = 0;
        for d in &data {
            rx.handle(now, addr(1), d);
            answers += acks(&mut rx);
        }
        if confirm {
            assert_eq!(answers, 0);
            let key = std::iter::from_fn(|| rx.poll_event())
                .find_map(|e| match e {
                    ReceiverEvent::Frame(f) => Some(f.key()),
                    _ => None,
                })
                .unwrap();
            rx.confirm(now, key, true);
            answers = acks(&mut rx);
        }
        assert_eq!(answers, 2, "confirm {confirm}, {fec:?}");
        // Twice only: copies of its chunks are not answered again.
        for d in &data[data.len() - 2..] {
            rx.handle(now, addr(1), d);
        }
        assert_eq!(acks(&mut rx), 0);
    }
}
