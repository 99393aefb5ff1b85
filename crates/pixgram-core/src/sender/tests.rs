use super::*;
use crate::receiver::{Receiver, ReceiverConfig};
use crate::transmit::Transmit;

const PEER: &str = "10.0.0.1:4000";

fn sender() -> Sender {
    Sender::new(SenderConfig::default(), SessionId(7))
}

/// Every datagram the sender has ready, handed to the receiver; the receiver's replies
/// (CHALLENGEs are handed back to the sender at once: the first exchange always succeeds).
fn to_receiver(tx: &mut Sender, rx: &mut Receiver, now: Timestamp) -> Vec<Vec<u8>> {
    let mut buf = vec![0; 2048];
    let peer = PEER.parse().unwrap();
    let mut replies = Vec::new();
    loop {
        while let Some(t) = tx.poll_transmit(now, &mut buf) {
            rx.handle(now, peer, &buf[..t.len]);
        }
        let mut challenged = false;
        while let Some(Transmit { len, .. }) = rx.poll_transmit(&mut buf) {
            if matches!(wire::parse(&buf[..len]), Ok(Datagram::Challenge(_))) {
                tx.handle(now, &buf[..len]);
                challenged = true;
            } else {
                replies.push(buf[..len].to_vec());
            }
        }
        if !challenged {
            return replies;
        }
    }
}

fn events(tx: &mut Sender) -> Vec<SenderEvent> {
    std::iter::from_fn(|| tx.poll_event()).collect()
}

fn ack(status: AckStatus, frame: u64, chunks: u32, loss: u8) -> Vec<u8> {
    let mut buf = vec![0; wire::ACK_LEN];
    let len = wire::emit_ack(
        &mut buf,
        &Ack {
            session: SessionId(7),
            stream: StreamId(1),
            frame: FrameId(frame),
            status,
            chunks_received: chunks,
            ack_delay_us: 0,
            loss,
            burst: 0,
        },
    );
    buf.truncate(len);
    buf
}

#[test]
fn sender_late_ack_turns_a_guessed_loss_into_a_delivery() {
    let mut tx = sender();
    let mut rx = Receiver::new(ReceiverConfig::default());
    let t0 = Timestamp::ZERO;
    let frame = OutgoingFrame::live(StreamId(1), vec![5u8; 3000], Duration::from_millis(50));
    let id = tx.send(t0, frame).unwrap();
    // The receiver gets every chunk and acknowledges; the network drops the ACK.
    let held = to_receiver(&mut tx, &mut rx, t0);
    assert!(!held.is_empty(), "the receiver acknowledged the frame");
    // The deadline passes: the sender guesses the frame lost.
    tx.handle_timeout(t0 + Duration::from_millis(60));
    let lost = events(&mut tx);
    assert_eq!(
        lost,
        vec![SenderEvent::Lost {
            stream: StreamId(1),
            frame: id,
            reason: SendFailure::Deadline
        }]
    );
    assert_eq!((tx.stats().frames_acked, tx.stats().frames_lost), (0, 1));
    // A copy of the ACK arrives after all (a late duplicate, or a later answer).
    let late = t0 + Duration::from_millis(80);
    for d in &held {
        tx.handle(late, d);
    }
    assert_eq!(
        events(&mut tx),
        vec![SenderEvent::LateAck {
            stream: StreamId(1),
            frame: id,
            latency: Duration::from_millis(80)
        }]
    );
    let s = tx.stats();
    assert_eq!((s.frames_acked, s.frames_lost, s.late_acks), (1, 0, 1));
    assert_eq!(s.payload_bytes_acked, 3000);
    // Only once: a second copy is a duplicate.
    for d in &held {
        tx.handle(late, d);
    }
    assert!(events(&mut tx).is_empty());
    assert_eq!(tx.stats().frames_acked, 1);
}

#[test]
fn sender_late_ack_is_not_taken_for_a_receiver_verdict() {
    let mut tx = sender();
    let frame = OutgoingFrame::frame(StreamId(1), vec![1u8; 100]);
    let id = tx.send(Timestamp::ZERO, frame).unwrap();
    let mut buf = vec![0; 2048];
    while tx.poll_transmit(Timestamp::ZERO, &mut buf).is_some() {}
    tx.handle(
        Timestamp::from_micros(1000),
        &ack(AckStatus::Expired, id.0, 0, 0),
    );
    assert!(matches!(
        events(&mut tx)[..],
        [SenderEvent::Lost {
            reason: SendFailure::Expired,
            ..
        }]
    ));
    // The receiver said expired: a COMPLETE for it later is a confused peer, not a fix.
    tx.handle(
        Timestamp::from_micros(2000),
        &ack(AckStatus::Complete, id.0, 1, 0),
    );
    assert!(events(&mut tx).is_empty());
    assert_eq!((tx.stats().frames_acked, tx.stats().frames_lost), (0, 1));
}

#[test]
fn sender_remembers_a_bounded_number_of_guessed_losses() {
    let mut tx = sender();
    for i in 0..(RECENT_LOST as u64 + 10) {
        tx.remember_lost((StreamId(1), FrameId(i)), 1, Timestamp::ZERO);
    }
    assert_eq!(tx.recent_lost.len(), RECENT_LOST);
    assert_eq!(tx.recent_lost_order.len(), RECENT_LOST);
    assert!(!tx.recent_lost.contains_key(&(StreamId(1), FrameId(9))));
    assert!(tx.recent_lost.contains_key(&(StreamId(1), FrameId(10))));
}

#[test]
fn sender_reports_measured_loss_apart_from_the_fec_prior() {
    let mut tx = sender();
    assert_eq!(tx.path().loss, None, "nothing measured yet");
    assert!(
        (tx.path().fec_loss - 0.05).abs() < 1e-9,
        "FEC keeps its prior"
    );
    assert_eq!(tx.last_heard(), None);
    let id = tx
        .send(
            Timestamp::ZERO,
            OutgoingFrame::frame(StreamId(1), vec![0u8; 10]),
        )
        .unwrap();
    let at = Timestamp::from_micros(500);
    tx.handle(at, &ack(AckStatus::Complete, id.0, 1, 0));
    assert_eq!(tx.path().loss, Some(0.0), "a lossless ACK measures 0%");
    assert!(
        tx.path().fec_loss > 0.0,
        "the prior decays, it does not vanish"
    );
    assert_eq!(tx.last_heard(), Some(at));
}

#[test]
fn sender_gives_up_on_a_reliable_frame_refused_for_peer_timeout() {
    let mut tx = sender();
    let frame = OutgoingFrame::frame(StreamId(1), vec![0u8; 5000]).reliable(true);
    let id = tx.send(Timestamp::ZERO, frame).unwrap();
    let patience = tx.config().peer_timeout;
    let mut now = Timestamp::ZERO;
    // Refused again and again, never a NACK: retried while patience lasts.
    while now.saturating_since(Timestamp::ZERO) < patience {
        tx.handle(now, &ack(AckStatus::Rejected, id.0, 0, 0));
        assert!(events(&mut tx).is_empty(), "retried, not lost, at {now:?}");
        now = now + Duration::from_millis(500);
    }
    tx.handle(now, &ack(AckStatus::Rejected, id.0, 0, 0));
    assert_eq!(
        events(&mut tx),
        vec![SenderEvent::Lost {
            stream: StreamId(1),
            frame: id,
            reason: SendFailure::Rejected
        }]
    );
    assert_eq!(tx.in_flight(), 0);
}

#[test]
fn sender_keeps_a_refused_frame_while_the_receiver_completes_others() {
    let mut tx = sender();
    let f = || OutgoingFrame::frame(StreamId(1), vec![0u8; 5000]).reliable(true);
    let first = tx.send(Timestamp::ZERO, f()).unwrap();
    let second = tx.send(Timestamp::ZERO, f()).unwrap();
    let at = |ms| Timestamp::ZERO + Duration::from_millis(ms);
    tx.handle(at(0), &ack(AckStatus::Rejected, second.0, 0, 0));
    // The receiver is busy with the first frame, and completes it.
    tx.handle(at(4000), &ack(AckStatus::Complete, first.0, 5, 0));
    tx.handle(at(6000), &ack(AckStatus::Rejected, second.0, 0, 0));
    assert!(
        matches!(events(&mut tx)[..], [SenderEvent::Acked { .. }]),
        "the second frame still waits for room"
    );
    tx.handle(at(9500), &ack(AckStatus::Rejected, second.0, 0, 0));
    assert!(matches!(
        events(&mut tx)[..],
        [SenderEvent::Lost {
            reason: SendFailure::Rejected,
            ..
        }]
    ));
}

#[test]
fn sender_abandon_gives_every_frame_in_flight_a_verdict() {
    let mut tx = sender();
    for _ in 0..3 {
        let f = OutgoingFrame::frame(StreamId(1), vec![0u8; 5000]).reliable(true);
        tx.send(Timestamp::ZERO, f).unwrap();
    }
    tx.abandon();
    let lost = events(&mut tx);
    assert_eq!(lost.len(), 3);
    assert!(lost.iter().all(|e| matches!(
        e,
        SenderEvent::Lost {
            reason: SendFailure::Abandoned,
            ..
        }
    )));
    assert_eq!((tx.in_flight(), tx.stats().frames_lost), (0, 3));
}

/// The timer table: what `poll_timeout` names is what `handle_timeout` acts on, not a
/// microsecond earlier, whichever timer it is.
#[test]
fn sender_handle_timeout_fires_exactly_when_poll_timeout_says() {
    let mut rx = Receiver::new(ReceiverConfig::default());
    let mut tx = sender();
    let now = Timestamp::from_millis(1);
    let frames = [
        OutgoingFrame::frame(StreamId(1), vec![7u8; 3_000]).reliable(true),
        OutgoingFrame::live(StreamId(2), vec![8u8; 3_000], Duration::from_millis(300)),
        OutgoingFrame::frame(StreamId(3), vec![9u8; 3_000]),
    ];
    for f in frames {
        tx.send(now, f).unwrap();
    }
    // Everything goes out; no answer ever comes back.
    to_receiver(&mut tx, &mut rx, now);
    let mut fired = 0;
    for _ in 0..64 {
        let Some(at) = tx.poll_timeout() else { break };
        let before = (tx.stats().clone(), tx.in_flight());
        let early = Timestamp::from_micros(at.as_micros().saturating_sub(1));
        if early > now {
            tx.handle_timeout(early);
            assert_eq!(
                (tx.stats().clone(), tx.in_flight()),
                before,
                "fired before {at:?}"
            );
            assert!(tx.poll_event().is_none());
        }
        tx.handle_timeout(at);
        let mut buf = vec![0; 2048];
        while tx.poll_transmit(at, &mut buf).is_some() {}
        let after = (tx.stats().clone(), tx.in_flight());
        let verdicts = events(&mut tx).len();
        fired += usize::from(after != before || verdicts > 0);
    }
    assert!(fired >= 3, "only {fired} timers fired");
    assert_eq!(tx.in_flight(), 0, "every frame got a verdict");
}

#[test]
fn a_flight_from_idle_starts_at_once_and_the_rest_is_paced() {
    // 20 KB/s: the pacer has no tokens left after the first frame for 50 ms.
    let config = SenderConfig {
        max_rate: Some(20_000.0),
        ..SenderConfig::default()
    };
    let mut tx = Sender::new(config, SessionId(7));
    let mut rx = Receiver::new(ReceiverConfig::default());
    // A first frame of 40 datagrams spends the start-up burst and more: the bucket is in
    // debt when its ACK comes.
    let mut now = Timestamp::ZERO;
    tx.send(now, OutgoingFrame::frame(StreamId(1), vec![1u8; 40_000]))
        .unwrap();
    for _ in 0..1000 {
        for reply in to_receiver(&mut tx, &mut rx, now) {
            tx.handle(now, &reply);
        }
        if tx.stats().frames_acked == 1 {
            break;
        }
        now = tx.poll_timeout().expect("a frame in flight has a timer");
        tx.handle_timeout(now);
    }
    assert_eq!(tx.stats().frames_acked, 1);
    let mut buf = vec![0; 2048];
    // Nothing in flight: the next frame's first datagram goes now, tokens or not; its
    // second and third wait for the pacer.
    let at = now + Duration::from_micros(400);
    assert!(tx.pacer.ready_at(at, 1048) > at, "the bucket is in debt");
    tx.send(at, OutgoingFrame::frame(StreamId(1), vec![2u8; 3000]))
        .unwrap();
    let sent: Vec<usize> = std::iter::from_fn(|| tx.poll_transmit(at, &mut buf))
        .map(|t| t.len)
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(tx.poll_timeout().is_some_and(|t| t > at));
}

/// A sender whose driver seals (§7) writes DATA with a zero CRC field: a receiver taking it
/// opened (`parse_opened`, after the tag verified) accepts it; the plain `parse` refuses it,
/// so an unsealed sender must never skip the CRC.
#[test]
fn a_sealed_sender_leaves_the_inner_checksum_to_the_tag() {
    let config = |sealed| SenderConfig {
        sealed,
        ..SenderConfig::default()
    };
    let now = Timestamp::ZERO;
    let peer = PEER.parse().unwrap();
    let mut datagrams = Vec::new();
    for sealed in [false, true] {
        let mut tx = Sender::new(config(sealed), SessionId(7));
        let mut rx = Receiver::new(ReceiverConfig::default());
        tx.send(now, OutgoingFrame::frame(StreamId(1), vec![9; 3000]))
            .unwrap();
        let mut buf = vec![0; 2048];
        // The first exchange (HELLO, CHALLENGE) until the first DATA datagram goes out.
        let data = (0..10).find_map(|_| {
            let mut data = None;
            while let Some(t) = tx.poll_transmit(now, &mut buf) {
                let d = &buf[..t.len];
                if matches!(wire::parse_opened(d), Ok(Datagram::Data(..))) {
                    data = data.or(Some(d.to_vec()));
                }
                rx.handle_opened(now, peer, d);
            }
            while let Some(t) = rx.poll_transmit(&mut buf) {
                tx.handle(now, &buf[..t.len]);
            }
            data
        });
        datagrams.push(data.expect("a DATA datagram"));
    }
    let (plain, sealed) = (&datagrams[0], &datagrams[1]);
    assert_eq!(plain.len(), sealed.len());
    assert_eq!(&sealed[sealed.len() - 4..], &[0, 0, 0, 0]);
    assert_ne!(&plain[plain.len() - 4..], &[0, 0, 0, 0]);
    assert!(wire::parse(plain).is_ok());
    assert_eq!(
        wire::parse(sealed).err(),
        Some(wire::ParseError::BadChecksum)
    );
    assert_eq!(
        wire::parse_opened(sealed).ok(),
        wire::parse_opened(plain).ok()
    );
}
