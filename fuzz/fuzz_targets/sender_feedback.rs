//! The sender state machine with frames of every kind in flight, fed arbitrary feedback (ACKs,
//! NACKs and CHALLENGEs built from the input, and raw bytes) at arbitrary times: never panics,
//! keeps one verdict per frame, resends a bounded amount per NACK, and answers CHALLENGEs with
//! a bounded number of HELLOs.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pixgram_core::sender::{FecPolicy, MAX_RESENDS_PER_NACK};
use pixgram_core::wire::{self, Ack, AckStatus, ChunkRange};
use pixgram_core::{
    FrameId, OutgoingFrame, Sender, SenderConfig, SenderEvent, SessionId, StreamId, Timestamp,
};

const SESSION: SessionId = SessionId(42);

fuzz_target!(|data: &[u8]| {
    let mut tx = Sender::new(SenderConfig::default(), SESSION);
    let mut now = Timestamp::ZERO;
    for f in [
        OutgoingFrame::frame(StreamId::FRAMES, vec![1u8; 30_000]).reliable(true),
        OutgoingFrame::frame(StreamId(2), vec![2u8; 5_000]),
        OutgoingFrame::live(StreamId(3), vec![3u8; 8_000], Duration::from_millis(80))
            .with_fec(FecPolicy::Ratio(0.2)),
        OutgoingFrame::message(StreamId::MESSAGES, br#"{"a":1}"#.to_vec()),
    ] {
        tx.send(now, f).unwrap();
    }
    let mut buf = vec![0u8; 2048];
    let mut feedback = vec![0u8; 1024];
    // The receiver's first CHALLENGE, so DATA flows.
    let c = wire::Challenge {
        session: SESSION,
        answered_len: 64,
        token: [7; 32],
    };
    let n = wire::emit_challenge(&mut feedback, &c);
    tx.handle(now, &feedback[..n]);
    let mut verdicts = std::collections::HashSet::new();
    // Records: [kind, ms step, stream, frame, a hi, a lo, b hi, b lo].
    for r in data.chunks_exact(8) {
        now = now + Duration::from_millis(u64::from(r[1] % 50));
        let stream = StreamId(u32::from(r[2] % 4));
        let frame = FrameId(u64::from(r[3] % 4));
        let a = u32::from(u16::from_be_bytes([r[4], r[5]]));
        let b = u32::from(u16::from_be_bytes([r[6], r[7]])).max(1);
        let before = tx.stats().chunks_retransmitted;
        let hellos = tx.stats().hellos_sent;
        let n = match r[0] % 4 {
            0 => {
                let status = [
                    AckStatus::Complete,
                    AckStatus::Expired,
                    AckStatus::Rejected,
                    AckStatus::Failed,
                ][usize::from(r[4] % 4)];
                let ack = Ack {
                    session: SESSION,
                    stream,
                    frame,
                    status,
                    chunks_received: a,
                    ack_delay_us: b,
                    loss: r[6],
                    burst: r[7],
                };
                wire::emit_ack(&mut feedback, &ack)
            }
            1 => {
                let ranges = [ChunkRange { first: a, count: b }];
                wire::emit_nack(&mut feedback, SESSION, stream, frame, a, &ranges)
            }
            2 => {
                let c = wire::Challenge {
                    session: SESSION,
                    answered_len: a,
                    token: [r[5]; 32],
                };
                wire::emit_challenge(&mut feedback, &c)
            }
            _ => {
                feedback[..8].copy_from_slice(r);
                8
            }
        };
        tx.handle(now, &feedback[..n]);
        tx.handle_timeout(now);
        let mut sent = 0;
        while tx.poll_transmit(now, &mut buf).is_some() {
            sent += 1;
            assert!(sent < 1_000_000, "runaway");
        }
        let resent = tx.stats().chunks_retransmitted - before;
        // A CHALLENGE is answered with one HELLO, repeated a few times until an answer.
        assert!(tx.stats().hellos_sent - hellos <= 8, "HELLO storm");
        // One NACK and any timeout probes (one chunk per frame in flight).
        assert!(
            resent <= MAX_RESENDS_PER_NACK + 4,
            "{resent} resent for one datagram"
        );
        while let Some(e) = tx.poll_event() {
            if let SenderEvent::Acked { stream, frame, .. }
            | SenderEvent::Lost { stream, frame, .. } = e
            {
                assert!(
                    verdicts.insert((stream, frame)),
                    "two verdicts for one frame"
                );
            }
        }
    }
});
