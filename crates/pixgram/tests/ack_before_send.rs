//! `UdpSender::send` takes the acknowledgements already waiting before it queues a frame: a
//! request/reply sender's previous frame, acknowledged but with its ACK unread, must not make
//! the pacer hold the next one (the hub of the Python drop-in answered up to a millisecond late).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use pixgram::receiver::UdpReceiver;
use pixgram::sender::UdpSender;
use pixgram::socket::DEFAULT_RECV_BUFFER;
use pixgram_core::{OutgoingFrame, ReceiverConfig, ReceiverEvent, SenderConfig, StreamId};

#[test]
fn a_frame_sent_while_the_last_ack_waits_unread_goes_at_once() {
    let mut rx = UdpReceiver::bind_keyed(
        "127.0.0.1:0".parse().unwrap(),
        ReceiverConfig::default(),
        DEFAULT_RECV_BUFFER,
        None,
    )
    .unwrap();
    let addr = rx.local_addr().unwrap();
    let (delivered, frames) = mpsc::channel();
    let receiving = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        while n < 3 && Instant::now() < deadline {
            if let Some(ReceiverEvent::Frame(_)) = rx.next_event(Some(deadline)).unwrap() {
                // The ACK went before the frame was handed over: it is in the sender's socket.
                n += 1;
                delivered.send(n).unwrap();
            }
        }
    });
    // 5,000 bytes/s: once the bucket is spent, a datagram waits a quarter of a second.
    let config = SenderConfig {
        max_rate: Some(5000.0),
        ..SenderConfig::default()
    };
    let mut tx = UdpSender::connect(addr, config).unwrap();
    let frame = |n: usize| OutgoingFrame::frame(StreamId::FRAMES, vec![n as u8; n]);
    // The first exchange and a first frame larger than the pacer's first burst (16 x 1,200
    // bytes): its last datagrams are paced, and once it is all sent the bucket is empty.
    tx.send(frame(24_000)).unwrap();
    tx.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(tx.stats().frames_acked, 1);
    // One datagram from idle goes at once (charged, the bucket now owes it) and is acknowledged.
    tx.send(frame(500)).unwrap();
    assert_eq!(frames.recv_timeout(Duration::from_secs(10)), Ok(1));
    assert_eq!(frames.recv_timeout(Duration::from_secs(10)), Ok(2));
    let before = tx.stats().datagrams_sent;
    tx.send(frame(500)).unwrap();
    // At least the first two (the third's ACK may be back and read already too).
    assert!(
        tx.stats().frames_acked >= 2,
        "the waiting ACK was not taken"
    );
    assert_eq!(
        tx.stats().datagrams_sent,
        before + 1,
        "the frame waited for the pacer with nothing in flight"
    );
    tx.flush(Duration::from_secs(10)).unwrap();
    receiving.join().unwrap();
}
