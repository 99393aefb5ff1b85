//! `Sender::wait`: a frame's acknowledgement is awaited without closing the session, and a
//! receiver that never answers leaves the frame in flight when the deadline passes.

use std::time::{Duration, Instant};

use pixgram::{FrameMeta, Incoming, Receiver, Sender};

#[test]
fn wait_returns_true_once_the_receiver_has_the_frame_and_the_session_goes_on() {
    let mut rx = Receiver::bind("127.0.0.1:0").unwrap();
    let addr = rx.local_addr().unwrap();
    let receiving = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < 2 {
            match rx.next(Some(deadline)).unwrap() {
                Some(Incoming::Frame(f)) => got.push(f.bytes.len()),
                Some(Incoming::Message(_)) => {}
                None => break,
            }
        }
        got
    });
    let mut tx = Sender::connect(addr).unwrap();
    tx.send_image(vec![7u8; 300_000], FrameMeta::default())
        .unwrap();
    assert!(tx.wait(Instant::now() + Duration::from_secs(10)).unwrap());
    assert_eq!(tx.verdicts().0, 1);
    // The session is still open: a second frame goes out on it.
    tx.send_image(vec![8u8; 1000], FrameMeta::default())
        .unwrap();
    assert!(tx.wait(Instant::now() + Duration::from_secs(10)).unwrap());
    assert_eq!(tx.verdicts(), (2, &[][..]));
    assert_eq!(receiving.join().unwrap(), vec![300_000, 1000]);
}

#[test]
fn wait_returns_false_at_the_deadline_when_nobody_answers() {
    // A bound socket that never answers: the frame stays in flight.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut tx = Sender::connect(silent.local_addr().unwrap()).unwrap();
    tx.send_image(vec![1u8; 5000], FrameMeta::default())
        .unwrap();
    let start = Instant::now();
    assert!(!tx.wait(start + Duration::from_millis(300)).unwrap());
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(tx.verdicts(), (0, &[][..]));
}
