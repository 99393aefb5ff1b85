//! A receiver's default socket buffer holds a sender's default window of large frames: 16
//! frames of 1.9 MB (a 4000x3000 JPEG) arriving while the receiving program is busy for a
//! moment are all kept, not dropped. With 8 MiB (what 4 MiB asked gave) most of such a burst
//! was dropped, NACKed and resent, and each lost frame tail cost a retransmission timeout.
//! Drops are the kernel's own count (`RcvbufErrors` in /proc/net/snmp, of this network
//! namespace; cargo runs one test binary at a time, and this one has one test).

use std::time::{Duration, Instant};

use pixgram::receiver::UdpReceiver;
use pixgram::sender::UdpSender;
use pixgram::socket::DEFAULT_RECV_BUFFER;
use pixgram_core::{OutgoingFrame, ReceiverConfig, ReceiverEvent, SenderConfig, StreamId};

/// UDP datagrams the kernel dropped for a full receive buffer so far, in this namespace.
fn rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// Frames after the first, as many as the default window holds.
const BURST: usize = 16;
const FRAME: usize = 1_890_000;

#[test]
fn a_window_of_large_frames_waits_in_the_socket_while_the_receiver_is_busy() {
    // At the default receive buffer.
    let mut rx =
        UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), ReceiverConfig::default()).unwrap();
    let grant = rx.buffer_grant();
    if grant.recv_granted < DEFAULT_RECV_BUFFER {
        println!(
            "SKIPPED: the kernel granted {} of {} bytes of receive buffer (not root, and \
             net.core.rmem_max is lower); CI runs this as root",
            grant.recv_granted, DEFAULT_RECV_BUFFER
        );
        return;
    }
    let Some(drops_before) = rcvbuf_errors() else {
        println!("SKIPPED: no RcvbufErrors in /proc/net/snmp (not Linux?)");
        return;
    };
    let addr = rx.local_addr().unwrap();
    let receiving = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut frames = 0;
        while frames < 1 + BURST && Instant::now() < deadline {
            if let Some(ReceiverEvent::Frame(_)) = rx.next_event(Some(deadline)).unwrap() {
                frames += 1;
                if frames == 1 {
                    // Busy for a moment (a slow save, the scheduler): the sender's whole
                    // window arrives meanwhile, 30 MB.
                    std::thread::sleep(Duration::from_millis(60));
                }
            }
        }
        frames
    });
    let config = SenderConfig {
        max_datagram_size: Some(65_507),
        window: BURST,
        ..SenderConfig::default()
    };
    let mut tx = UdpSender::connect(addr, config).unwrap();
    let frame = |n: usize| OutgoingFrame::frame(StreamId::FRAMES, vec![n as u8; FRAME]);
    // The first frame: the first exchange and path MTU discovery (64 KB datagrams).
    tx.send(frame(0).reliable(true)).unwrap();
    tx.flush(Duration::from_secs(10)).unwrap();
    for n in 1..=BURST {
        tx.send(frame(n).reliable(true)).unwrap();
    }
    tx.flush(Duration::from_secs(20)).unwrap();
    let received = receiving.join().unwrap();
    let dropped = rcvbuf_errors().unwrap_or(0) - drops_before;
    let st = tx.stats();
    println!(
        "{received} frames received, {dropped} datagrams dropped by the kernel; sender: {} \
         acked, {} chunks resent, {} datagrams of {} bytes",
        st.frames_acked,
        st.chunks_retransmitted,
        st.datagrams_sent,
        tx.core().datagram_size()
    );
    assert_eq!(received, 1 + BURST);
    assert_eq!(st.frames_acked as usize, 1 + BURST);
    assert_eq!(
        dropped, 0,
        "the kernel dropped datagrams: the burst did not fit the receive buffer"
    );
}
