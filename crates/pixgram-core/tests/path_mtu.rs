//! Path MTU discovery through a path that drops datagrams above its MTU (as a router does
//! with the don't-fragment bit set): the sender finds the largest size that passes, cuts new
//! frames for it, and falls back to the base size when larger datagrams stop getting through.

mod harness;

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use harness::{ImpairConfig, Link};
use pixgram_core::time::Timestamp;
use pixgram_core::{
    OutgoingFrame, ReceiverConfig, ReceiverEvent, SenderConfig, SenderEvent, StreamId,
};

/// A sender and a receiver 1 ms apart each way over a path carrying datagrams up to `mtu`
/// (the forward way's MTU in the network model; replies are small).
struct Path {
    link: Link,
    mtu: usize,
    delivered: usize,
    acked: usize,
    lost: usize,
}

impl Deref for Path {
    type Target = Link;
    fn deref(&self) -> &Link {
        &self.link
    }
}

impl DerefMut for Path {
    fn deref_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

impl Path {
    fn new(mtu: usize) -> Self {
        let config = SenderConfig {
            max_datagram_size: Some(65_507),
            ..SenderConfig::default()
        };
        let way = ImpairConfig {
            delay: Duration::from_millis(1),
            ..ImpairConfig::default()
        };
        // Seed 3: session 3, as before; nothing here is random.
        let link = Link::new(config, ReceiverConfig::default(), way.clone(), way, 3);
        // Event-driven, as a real driver is: it sleeps until the sender's `poll_timeout`.
        // (With a 1 ms tick this hid a stall: once the size rose past the window, the window
        // counted a 64 KB datagram for chunks cut at 1,200 bytes and never opened.)
        Path {
            link,
            mtu,
            delivered: 0,
            acked: 0,
            lost: 0,
        }
    }

    /// Runs for `span` of simulated time, in 1 ms steps.
    fn run(&mut self, span: Duration) {
        let forward = ImpairConfig {
            mtu: Some(self.mtu),
            ..self.link.forward.config().clone()
        };
        self.link.forward.set_config(forward);
        let end = self.link.now + span;
        self.link.run_until(end);
        for (_, e) in self.link.rx_events.drain(..) {
            if matches!(e, ReceiverEvent::Frame(_)) {
                self.delivered += 1;
            }
        }
        for (_, e) in self.link.tx_events.drain(..) {
            match e {
                SenderEvent::Acked { .. } => self.acked += 1,
                SenderEvent::Lost { .. } => self.lost += 1,
                _ => {}
            }
        }
    }

    fn send(&mut self, frames: usize) {
        for i in 0..frames {
            let f = OutgoingFrame::frame(StreamId::FRAMES, vec![(i % 251) as u8; 300_000])
                .reliable(true);
            let now = self.link.now;
            self.link.tx.send(now, f).unwrap();
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

/// Random loss times frames out too, but the other frames' acknowledgements show the size
/// gets through: at 20% loss each way no black hole is declared and no frame is lost
/// (counting timeouts in a row across frames once took such loss for a black hole).
#[test]
fn random_loss_is_not_a_black_hole() {
    for seed in 1..=3 {
        let mut p = Path::new(65_507);
        let lossy = ImpairConfig {
            loss: 0.2,
            ..p.link.forward.config().clone()
        };
        p.link.forward.set_config(lossy.clone());
        p.link.back.set_config(lossy);
        // Small frames, a datagram each: every loss of one is a retransmission timeout.
        let mut sent = 0u32;
        for _ in 0..6_000 {
            while sent < 400 && p.link.tx.can_send(StreamId::FRAMES) {
                let f = OutgoingFrame::frame(StreamId::FRAMES, vec![(sent % 251) as u8; 2_000])
                    .reliable(true);
                let now = p.link.now;
                p.link.tx.send(now, f).unwrap();
                sent += 1;
            }
            if p.acked + p.lost == 400 {
                break;
            }
            p.run(Duration::from_millis(10));
        }
        let s = p.tx.stats().clone();
        assert_eq!(s.mtu_black_holes, 0, "seed {seed}: {s:?}");
        assert_eq!((p.acked, p.lost), (400, 0), "seed {seed}: {s:?}");
        assert!(
            s.rto_expirations > 10,
            "seed {seed}: the loss did time frames out"
        );
    }
}

/// When the first frame's acknowledgement comes, with discovery on (`max`) or off.
fn first_frame_acked_at(max: Option<usize>) -> Duration {
    let config = SenderConfig {
        max_datagram_size: max,
        ..SenderConfig::default()
    };
    let way = ImpairConfig {
        delay: Duration::from_millis(1),
        ..ImpairConfig::default()
    };
    let mut link = Link::new(config, ReceiverConfig::default(), way.clone(), way, 3);
    let frame = OutgoingFrame::frame(StreamId::FRAMES, vec![7; 300_000]).reliable(true);
    link.tx.send(Timestamp::ZERO, frame).unwrap();
    link.run_until(Timestamp::from_millis(2_000));
    let acked = link.tx_events.iter().find_map(|(t, e)| match e {
        SenderEvent::Acked { .. } => Some(*t),
        _ => None,
    });
    acked
        .expect("the frame was acknowledged")
        .saturating_since(Timestamp::ZERO)
}

#[test]
fn probes_do_not_hold_the_first_frame_back() {
    // The first frame is cut for the base size either way (its first chunk goes before any
    // probe is confirmed); the probes (1,472 + 8,972 + 65,507 bytes) must not delay it. When
    // they were charged to the pacer at the initial rate, it came 15 ms later; a keyed
    // sender's twelve probes of a bisection (600 kB), 121 ms later.
    let off = first_frame_acked_at(None);
    let on = first_frame_acked_at(Some(65_507));
    let keyed = first_frame_acked_at(Some(65_463));
    println!("first frame acknowledged after {off:?} without discovery, {on:?} with, {keyed:?} with a keyed maximum");
    assert!(
        on <= off + Duration::from_millis(3),
        "{on:?} against {off:?}"
    );
    assert!(
        keyed <= off + Duration::from_millis(3),
        "{keyed:?} against {off:?}"
    );
}
