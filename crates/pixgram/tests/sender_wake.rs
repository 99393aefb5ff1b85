//! A [`pixgram::Waker`] ends a [`UdpSender::pump`] at once: a send loop that pumps its socket
//! while it waits for a live source takes each frame when the source queues it, not when the
//! pump's deadline passes (that wait was up to 2 ms of every frame's latency at 1080p30).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pixgram::sender::UdpSender;
use pixgram::source::LiveSource;
use pixgram_core::SenderConfig;

/// A sender towards a bound socket that never answers: nothing it does ends a pump early.
fn silent_sender() -> (UdpSender, std::net::UdpSocket) {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSender::connect(silent.local_addr().unwrap(), SenderConfig::default()).unwrap();
    (tx, silent)
}

#[test]
fn a_waker_ends_a_senders_pump_at_once() {
    let (mut tx, _silent) = silent_sender();
    // Unwoken, the pump runs to its deadline: nothing else ends it here.
    let start = Instant::now();
    tx.pump(Some(start + Duration::from_millis(300))).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(290),
        "{:?}",
        start.elapsed()
    );

    let waker = tx.waker().unwrap();
    let waking = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        waker.wake();
        waker
    });
    let start = Instant::now();
    tx.pump(Some(start + Duration::from_secs(10))).unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(40), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    // A wake while nobody pumps ends the next pump, once.
    let waker = waking.join().unwrap();
    waker.wake();
    waker.wake();
    let start = Instant::now();
    tx.pump(Some(start + Duration::from_secs(10))).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    tx.pump(Some(start + Duration::from_millis(200))).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(190),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_live_source_wakes_the_sender_with_each_frame() {
    let (mut tx, _silent) = silent_sender();
    let source = LiveSource::Pattern {
        width: 64,
        height: 48,
        fps: 4.0,
        quality: 50,
    };
    let (frames, running) = source
        .start(
            Some(3),
            Arc::new(AtomicBool::new(false)),
            Some(tx.waker().unwrap()),
        )
        .unwrap();
    let mut got = 0;
    let mut pumps = 0;
    let start = Instant::now();
    while got < 3 && start.elapsed() < Duration::from_secs(20) {
        match frames.try_recv() {
            Ok(_) => got += 1,
            Err(_) => {
                // Ten seconds a pump: only the source's wake ends it (4 frames a second).
                let pumped = Instant::now();
                tx.pump(Some(pumped + Duration::from_secs(10))).unwrap();
                assert!(
                    pumped.elapsed() < Duration::from_secs(5),
                    "{:?}",
                    pumped.elapsed()
                );
                pumps += 1;
            }
        }
    }
    assert_eq!(got, 3);
    assert!(pumps <= 6, "{pumps} pumps for 3 frames");
    running.join().end.result.unwrap();
}
