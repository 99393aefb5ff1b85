//! Path MTU discovery through a path that drops datagrams above its MTU (as a router does
//! with the don't-fragment bit set): the sender finds the largest size that passes, cuts new
//! frames for it, and falls back to the base size when larger datagrams stop getting through.

use std::net::SocketAddr;
use std::time::Duration;

use pixgram_core::{
    OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, Sender, SenderConfig, SenderEvent,
    SessionId, StreamId, Timestamp,
};

/// A sender and a receiver 1 ms apart each way over a path carrying datagrams up to `mtu`.
struct Path {
    tx: Sender,
    rx: Receiver,
    now: Timestamp,
    mtu: usize,
    /// Datagrams on the way: (arrival, to the receiver?, bytes).
    wire: Vec<(Timestamp, bool, Vec<u8>)>,
    delivered: usize,
    acked: usize,
    lost: usize,
    largest_sent: usize,
}

const FROM: &str = "10.1.1.1:5000";

impl Path {
    fn new(mtu: usize) -> Self {
        let config = SenderConfig {
            max_datagram_size: Some(65_507),
            ..SenderConfig::default()
        };
        Path {
            tx: Sender::new(config, SessionId(3)),
            rx: Receiver::new(ReceiverConfig::default()),
            now: Timestamp::ZERO,
            mtu,
            wire: Vec::new(),
            delivered: 0,
            acked: 0,
            lost: 0,
            largest_sent: 0,
        }
    }

    /// Runs for `span` of simulated time, in 1 ms steps.
    fn run(&mut self, span: Duration) {
        let end = self.now + span;
        let from: SocketAddr = FROM.parse().unwrap();
        let mut buf = vec![0u8; 65_536];
        while self.now < end {
            let now = self.now;
            while let Some(t) = self.tx.poll_transmit(now, &mut buf) {
                self.largest_sent = self.largest_sent.max(t.len);
                if t.len <= self.mtu {
                    let at = now + Duration::from_millis(1);
                    self.wire.push((at, true, buf[..t.len].to_vec()));
                }
            }
            while let Some((_, n)) = self.rx.poll_transmit(&mut buf) {
                let at = now + Duration::from_millis(1);
                self.wire.push((at, false, buf[..n].to_vec()));
            }
            let (due, rest): (Vec<_>, Vec<_>) = self.wire.drain(..).partition(|d| d.0 <= now);
            self.wire = rest;
            for (_, up, d) in due {
                if up {
                    self.rx.handle(now, from, &d);
                } else {
                    self.tx.handle(now, &d);
                }
            }
            self.tx.handle_timeout(now);
            self.rx.handle_timeout(now);
            while let Some(e) = self.rx.poll_event() {
                if matches!(e, ReceiverEvent::Frame(_)) {
                    self.delivered += 1;
                }
            }
            while let Some(e) = self.tx.poll_event() {
                match e {
                    SenderEvent::Acked { .. } => self.acked += 1,
                    SenderEvent::Lost { .. } => self.lost += 1,
                    _ => {}
                }
            }
            self.now = self.now + Duration::from_millis(1);
        }
    }

    fn send(&mut self, frames: usize) {
        for i in 0..frames {
            let f = OutgoingFrame::frame(StreamId::FRAMES, vec![(i % 251) as u8; 300_000])
                .reliable(true);
            self.tx.send(self.now, f).unwrap();
        }
    }
}

#[test]
fn the_sender_finds_the_largest_size_the_path_carries_and_uses_it() {
    for (mtu, want) in [(65_507, 65_507), (9_000, 8_972), (1_500, 1_472)] {
        let mut p = Path::new(mtu);
        p.send(1);
        p.run(Duration::from_secs(3));
        assert_eq!(p.tx.datagram_size(), want, "path MTU {mtu}");
        // Frames queued now are cut for it, and arrive.
        p.send(4);
        p.run(Duration::from_secs(3));
        assert_eq!((p.acked, p.lost, p.delivered), (5, 0, 5), "path MTU {mtu}");
        let s = p.tx.stats();
        assert!(s.mtu_probes_confirmed >= 1, "{s:?}");
        assert!(
            p.largest_sent > want || want == 65_507,
            "probed above {want}"
        );
    }
}

#[test]
fn a_path_whose_mtu_shrinks_is_a_black_hole_and_the_sender_falls_back() {
    let mut p = Path::new(65_507);
    p.send(1);
    p.run(Duration::from_secs(2));
    assert_eq!(p.tx.datagram_size(), 65_507);
    // The route changes: only 1,500-byte datagrams pass now. A frame cut for 65,507 cannot
    // be cut again (it is reported lost, PathShrank); the sender notices the silence and new
    // frames go at the base size, then at what the search finds again.
    p.mtu = 1_500;
    p.send(1);
    p.run(Duration::from_secs(3));
    assert_eq!(p.tx.stats().mtu_black_holes, 1, "{:?}", p.tx.stats());
    // The frame sent in part at 65,507 bytes is reported lost, not left hanging.
    assert_eq!(p.lost, 1);
    let acked_before = p.acked;
    p.send(3);
    p.run(Duration::from_secs(5));
    assert!(p.tx.datagram_size() <= 1_500);
    assert_eq!(
        p.acked,
        acked_before + 3,
        "new frames after the fall back arrive"
    );
}
