//! With a key, feedback that does not authenticate never reaches the sender's state machine:
//! a forged NACK resends nothing and a forged ACK settles nothing (real loopback sockets).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use pixgram::{OutgoingFrame, SenderConfig, StreamId, UdpSender};
use pixgram_core::seal::{Psk, Sealer};
use pixgram_core::wire::{self, Ack, AckStatus, ChunkRange};
use pixgram_core::{FrameId, SessionId};

#[test]
fn forged_feedback_to_a_keyed_sender_is_dropped_unread() {
    let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
    fake.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let key = Psk::from_bytes([7; 32]);
    let config = SenderConfig {
        peer_timeout: Duration::from_millis(800),
        ..SenderConfig::default()
    };
    let mut tx = UdpSender::connect_keyed(fake.local_addr().unwrap(), config, Some(&key)).unwrap();
    tx.send(OutgoingFrame::frame(StreamId::FRAMES, vec![5u8; 20_000]).reliable(true))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (_, sender_addr) = fake.recv_from(&mut buf).unwrap();
    // Forgeries of every kind an attacker without the key can make, for any session id.
    let mut forged = Vec::new();
    let mut d = [0u8; 600];
    for session in [SessionId(0), SessionId(u32::MAX)] {
        let ranges = [ChunkRange {
            first: 0,
            count: 18,
        }];
        let n = wire::emit_nack(&mut d, session, StreamId::FRAMES, FrameId(0), 0, &ranges);
        forged.push(d[..n].to_vec());
        let ack = Ack {
            session,
            stream: StreamId::FRAMES,
            frame: FrameId(0),
            status: AckStatus::Complete,
            chunks_received: 18,
            ack_delay_us: 0,
            loss: 0,
            burst: 0,
        };
        let n = wire::emit_ack(&mut d, &ack);
        forged.push(d[..n].to_vec());
        // Sealed, but under another key.
        let mut sealer = Sealer::new(&Psk::from_bytes([8; 32]), [1; 16]);
        let mut out = [0u8; 700];
        let m = sealer.seal(&d[..n], &mut out);
        forged.push(out[..m].to_vec());
    }
    for f in &forged {
        fake.send_to(f, sender_addr).unwrap();
    }
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        if tx.pump(Some(until)).is_err() {
            break;
        }
    }
    let open = tx.open_stats().expect("keyed").clone();
    assert_eq!(open.opened, 0);
    assert!(open.not_sealed >= 4, "{open:?}");
    assert!(open.bad_tag >= 2, "{open:?}");
    let s = tx.stats();
    assert_eq!(s.nacks_received, 0);
    assert_eq!(s.acks_received, 0);
    assert_eq!(s.frames_acked, 0, "a forged ACK settled a frame");
}
