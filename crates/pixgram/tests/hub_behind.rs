//! A reliable subscriber that stops reading falls behind: the hub skips its backlog to the
//! newest frame, tells it (BEHIND), and the newest frame still arrives. Library-level, loopback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pixgram::hub::backlog::BacklogLimits;
use pixgram::hub::{Hub, HubOptions, Mode, Subscriber, SubscriberNotice};
use pixgram::receive::Until;
use pixgram::{FrameMeta, Incoming, ReceiverConfig, Sender, UdpReceiver};

#[test]
fn a_subscriber_that_stops_reading_is_told_it_fell_behind_and_gets_the_newest_frame() {
    let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), ReceiverConfig::default()).unwrap();
    let options = HubOptions {
        backlog: BacklogLimits {
            items: 4,
            bytes: 1 << 20,
        },
        ..HubOptions::default()
    };
    let mut hub = Hub::new(rx, options).unwrap();
    let addr = hub.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let hub_stop = stop.clone();
    let hub_thread = std::thread::spawn(move || {
        let until = Until {
            stop: Some(hub_stop),
            deadline: Some(Instant::now() + Duration::from_secs(30)),
            ..Until::default()
        };
        hub.serve(&until).unwrap();
        hub.subscribers()
    });
    let mut sub = Subscriber::builder(addr)
        .mode(Mode::Reliable)
        .bind("127.0.0.1:0")
        .unwrap();
    assert!(sub
        .wait_subscribed(Instant::now() + Duration::from_secs(5))
        .unwrap());
    // 60 frames while the subscriber reads nothing (its socket buffer holds them; no ACKs go
    // back, so the hub's sender fills its window and the backlog overflows).
    const N: u64 = 60;
    let camera = std::thread::spawn(move || {
        let mut tx = Sender::connect(addr).unwrap();
        for i in 0..N {
            tx.send_image(vec![i as u8; 2_000], FrameMeta::named(format!("{i}.bin")))
                .unwrap();
        }
        tx.finish().unwrap()
    });
    let sent = camera.join().unwrap();
    assert_eq!(
        sent.acked, N,
        "the hub acknowledged every frame without waiting for us"
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match sub
            .next(Some(Instant::now() + Duration::from_millis(500)))
            .unwrap()
        {
            Some(Incoming::Frame(f)) => {
                got.push(f.bytes[0]);
                if u64::from(f.bytes[0]) == N - 1 {
                    break;
                }
            }
            Some(Incoming::Message(_)) => {}
            None => {}
        }
    }
    let mut behind = None;
    while let Some(n) = sub.poll_notice() {
        if let SubscriberNotice::Behind { skipped } = n {
            behind = Some(skipped);
        }
    }
    let skipped = behind.expect("no BEHIND notice");
    assert!(skipped > 0);
    assert_eq!(
        got.last().copied(),
        Some((N - 1) as u8),
        "the newest frame arrived: {got:?}"
    );
    assert_eq!(
        got.len() as u64 + skipped,
        N,
        "every frame either delivered or counted skipped: {got:?}"
    );
    drop(sub);
    stop.store(true, Ordering::Relaxed);
    let figures = hub_thread.join().unwrap();
    assert_eq!(figures[0].link.backlog.skipped, skipped);
}
