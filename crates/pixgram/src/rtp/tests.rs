//! RTP mode over real loopback sockets, and partial frames decoded by a real decoder.

use std::time::{Duration, Instant};

use pixgram_core::rtp_jpeg::{jpeg, Depacketizer, DepacketizerEvent, Packetizer, PacketizerConfig};
use pixgram_core::Timestamp;

use super::*;
use crate::{codec, pattern};

fn frame(n: u64, w: u32, h: u32, restart: Option<u16>) -> Vec<u8> {
    encode_for_rtp(&pattern::render(w, h, n, "rtp"), 80, restart).unwrap()
}

/// Loopback only: frames out of an RtpSender come out of an RtpReceiver whole, decodable,
/// in order, with the scan byte for byte, and the RTCP reports flow both ways.
#[test]
fn loopback_frames_arrive_whole_and_reports_flow() {
    let mut rx = RtpReceiver::bind(RtpReceiverConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let to = rx.local_addr().unwrap();
    let sent: Vec<Vec<u8>> = (0..12).map(|n| frame(n, 640, 480, None)).collect();
    let frames = sent.clone();
    let tx = std::thread::spawn(move || {
        let mut tx = RtpSender::connect(RtpSenderConfig::new(to)).unwrap();
        for f in &frames {
            tx.send_jpeg(f, None).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        tx.finish();
        // Give the receiver's report a moment, then read it.
        std::thread::sleep(Duration::from_millis(300));
        tx.finish();
        *tx.stats()
    });
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < sent.len() && start.elapsed() < Duration::from_secs(20) {
        match rx
            .next_event(Some(Instant::now() + Duration::from_millis(200)))
            .unwrap()
        {
            Some(RtpEvent::Frame { frame, .. }) => got.push(frame),
            Some(RtpEvent::Lost { reason, .. }) => panic!("a frame was lost: {reason:?}"),
            None => {}
        }
    }
    // Keep serving RTCP while the sender waits for its report.
    let _ = rx.next_event(Some(Instant::now() + Duration::from_millis(400)));
    let stats = tx.join().unwrap();
    assert_eq!(got.len(), sent.len());
    for (g, s) in got.iter().zip(&sent) {
        assert_eq!(
            jpeg::parse(&g.jfif).unwrap().scan,
            jpeg::parse(s).unwrap().scan
        );
        assert_eq!(codec::decode(&g.jfif).unwrap().width, 640);
    }
    assert!(got
        .windows(2)
        .all(|w| w[1].timestamp.wrapping_sub(w[0].timestamp) > 0));
    let rs = rx.stats();
    assert_eq!(rs.depacketizer.frames, 12);
    assert_eq!(rs.packets_lost, 0);
    if rx.has_rtcp() {
        assert!(rs.sender_reports >= 1, "{rs:?}");
        assert!(rs.receiver_reports >= 1, "{rs:?}");
        assert!(stats.receiver_reports >= 1, "{stats:?}");
        assert_eq!(stats.last_report.map(|r| r.cumulative_lost), Some(0));
    }
}

/// A real photo-like frame with restart markers, one packet dropped: with `partial` the
/// frame still decodes at its full size; without, it is counted lost.
#[test]
fn a_partial_frame_decodes_with_a_real_decoder() {
    let file = frame(1, 640, 480, Some(40));
    let f = jpeg::parse(&file).unwrap();
    let mut p = Packetizer::new(PacketizerConfig {
        payload_type: 26,
        ssrc: 1,
        first_sequence: 0,
        mtu: 1000,
    });
    let mut pkts = Vec::new();
    p.packetize(&f, 0, |d| pkts.push(d.to_vec()));
    assert!(pkts.len() > 4);
    pkts.remove(pkts.len() / 2);
    for partial in [true, false] {
        let mut d = Depacketizer::new(DepacketizerConfig {
            partial,
            ..Default::default()
        });
        for (i, pk) in pkts.iter().enumerate() {
            d.handle_packet(Timestamp::from_micros(i as u64), pk);
        }
        d.flush();
        match d.poll_event() {
            Some(DepacketizerEvent::Frame(fr)) => {
                assert!(partial && fr.partial);
                let img = codec::decode(&fr.jfif).unwrap();
                assert_eq!((img.width, img.height), (640, 480));
            }
            Some(DepacketizerEvent::Lost { reason, .. }) => {
                assert!(!partial);
                assert_eq!(reason, FrameLoss::MissingFragment);
            }
            None => panic!("nothing came out"),
        }
    }
}

#[test]
fn bad_settings_are_refused_in_one_line() {
    let to = "127.0.0.1:9".parse().unwrap();
    let e = RtpSender::connect(RtpSenderConfig {
        payload_type: 50,
        ..RtpSenderConfig::new(to)
    })
    .unwrap_err();
    assert!(e.to_string().contains("payload type 50"));
    let e = RtpSender::connect(RtpSenderConfig {
        mtu: 100,
        ..RtpSenderConfig::new(to)
    })
    .unwrap_err();
    assert!(e.to_string().contains("--mtu 100"));
}

/// Loopback only: an RTP receiver asks for 32 MiB by default, and says when it got less.
#[test]
fn the_receiver_asks_for_a_large_buffer_and_reports_the_grant() {
    let rx = RtpReceiver::bind(RtpReceiverConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let g = rx.buffer_grant();
    assert_eq!(g.recv_asked, RTP_RECV_BUFFER);
    assert_eq!(g.warning().is_none(), g.recv_granted >= RTP_RECV_BUFFER);
}

/// Loopback only: a frame sent within an interval arrives spread over it (the last packet
/// well after the first), not as one burst at the rate cap.
#[test]
fn a_frame_sent_within_an_interval_is_spread_over_it() {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let to = rx.local_addr().unwrap();
    let f = frame(1, 3840, 2160, None);
    assert!(
        f.len() > 150_000,
        "a frame of several bursts: {} bytes",
        f.len()
    );
    let mut config = RtpSenderConfig::new(to);
    config.rtcp = false;
    let mut tx = RtpSender::connect(config).unwrap();
    let sender = std::thread::spawn(move || {
        tx.send_jpeg_within(&f, None, Some(Duration::from_millis(60)))
            .unwrap()
    });
    let mut buf = vec![0u8; 2048];
    let mut first = None;
    let last = loop {
        let n = rx.recv(&mut buf).expect("packets within 5 s");
        let now = Instant::now();
        first.get_or_insert(now);
        if n >= 2 && buf[1] & 0x80 != 0 {
            break now; // the marker bit: the frame's last packet
        }
    };
    sender.join().unwrap();
    let spread = last - first.unwrap();
    assert!(
        spread >= Duration::from_millis(30),
        "a frame spread over 60 ms arrived within {spread:?}"
    );
}
