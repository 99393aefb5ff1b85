//! Writes the committed seed corpus of the fuzz targets (`fuzz/corpus/TARGET/`): real datagrams
//! of every type from the sender and receiver state machines, in each target's input format
//! (`relay`: through `pixgram-netem`'s impairing relay).
//!
//! Run: `cargo run -p pixgram-core --example fuzz_seeds -- fuzz/corpus`

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pixgram_core::compat_seed;
use pixgram_core::sender::FecPolicy;
use pixgram_core::Transmit;
use pixgram_core::{
    OutgoingFrame, Receiver, ReceiverConfig, Sender, SenderConfig, SessionId, StreamId, Timestamp,
    MAX_REPLY_LEN,
};

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let root = Path::new(&root);
    let (data, replies) = exchange();
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for (i, d) in data.iter().chain(&replies).enumerate() {
        write("wire_parse", format!("datagram-{i:03}"), d);
        write("seal_open", format!("datagram-{i:03}"), d);
    }
    // The receiver target's records: [peer, ms step, len hi, len lo, bytes].
    let mut seq = Vec::new();
    for (i, d) in data.iter().enumerate() {
        seq.extend([0, (i % 3) as u8, (d.len() >> 8) as u8, d.len() as u8]);
        seq.extend_from_slice(d);
    }
    write("receiver", "session".into(), &seq);
    // The seed target: a header and chunks of a small JPEG, then a message.
    let mut jpeg = vec![0x11u8; 3000];
    jpeg[..2].copy_from_slice(&[0xFF, 0xD8]);
    jpeg[2998..].copy_from_slice(&[0xFF, 0xD9]);
    let mut seq = Vec::new();
    let mut push = |flags: u8, d: &[u8]| {
        seq.extend([flags, 1, (d.len() >> 8) as u8, d.len() as u8]);
        seq.extend_from_slice(d);
    };
    push(0, &compat_seed::header(jpeg.len()));
    for c in compat_seed::chunks(&jpeg) {
        push(0, c);
    }
    push(0xC0, br#"{"cmd":"start","speed":[1,2,3]}"#);
    write("seed_receiver", "image-and-message".into(), &seq);
    // The relay target (pixgram-netem's relay): a header (5% loss, 20 ms delay, 2 ms jitter,
    // 1% duplication, no corruption or truncation, no rate limit, 4 clients), then the
    // exchange as it crosses `pixgram impair`: DATA from one client, the replies from upstream.
    let mut seq = vec![5, 20, 2, 1, 0, 0, 0, 4];
    let records = data
        .iter()
        .map(|d| (0u8, d))
        .chain(replies.iter().map(|r| (0x80, r)));
    for (i, (who, d)) in records.enumerate() {
        seq.extend([who, (i % 3) as u8, (d.len() >> 8) as u8, d.len() as u8]);
        seq.extend_from_slice(d);
    }
    write("relay", "exchange".into(), &seq);
}

/// Every datagram of a short exchange: DATA (plain, metadata, reliable, live with parity,
/// message) one way, ACK and NACK the other.
fn exchange() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut tx = Sender::new(SenderConfig::default(), SessionId(42));
    let mut rx = Receiver::new(ReceiverConfig::default());
    let from = SocketAddr::from(([127, 0, 0, 1], 5000));
    let mut now = Timestamp::ZERO;
    let frames = [
        OutgoingFrame::frame(StreamId::FRAMES, vec![1u8; 3000]),
        OutgoingFrame::frame(StreamId::FRAMES, vec![2u8; 10]).with_metadata(br#"{"a":1}"#.to_vec()),
        OutgoingFrame::frame(StreamId(3), vec![3u8; 2500]).reliable(true),
        OutgoingFrame::live(StreamId(4), vec![4u8; 5000], Duration::from_millis(100))
            .with_fec(FecPolicy::Ratio(0.5)),
        OutgoingFrame::message(StreamId::MESSAGES, br#"[1,2]"#.to_vec()),
    ];
    for f in frames {
        tx.send(now, f).unwrap();
    }
    let (mut data, mut replies) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 1500];
    let mut reply = [0u8; MAX_REPLY_LEN];
    let mut dropped = false;
    for _ in 0..200 {
        now = now + Duration::from_millis(1);
        while let Some(t) = tx.poll_transmit(now, &mut buf) {
            data.push(buf[..t.len].to_vec());
            // Drop the first chunk of the reliable frame (stream 3) so the receiver NACKs it.
            if !dropped && buf[3] == 1 && buf[8..12] == 3u32.to_be_bytes() {
                dropped = true;
                continue;
            }
            rx.handle(now, from, &buf[..t.len]);
        }
        rx.handle_timeout(now);
        while let Some(Transmit {
            destination: _,
            len: n,
        }) = rx.poll_transmit(&mut reply)
        {
            replies.push(reply[..n].to_vec());
            tx.handle(now, &reply[..n]);
        }
        while rx.poll_event().is_some() {}
        while tx.poll_event().is_some() {}
        tx.handle_timeout(now);
    }
    tx.close();
    while let Some(t) = tx.poll_transmit(now, &mut buf) {
        data.insert(0, buf[..t.len].to_vec());
    }
    data.truncate(64);
    replies.truncate(32);
    (data, replies)
}
