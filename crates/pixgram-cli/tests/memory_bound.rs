//! Peak memory (VmHWM) of `pixgram recv` at default flags under the memory attacks of issue
//! 11 part 3: headers declaring 64 MiB frames, a 64 MiB JSON message, a PNG decompression
//! bomb with --decode. Each stays at or under 128 MiB while a legitimate sender delivers.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use pixgram::{OutgoingFrame, SenderConfig, StreamId, UdpSender};
use pixgram_core::chunking::ChunkLayout;
use pixgram_core::wire::{self, DataFlags, DataHeader};
use pixgram_core::{ChunkIndex, FrameId, SessionId};
use support::{json_lines, peak_rss_kib, run, Recv, TempDir};

const BOUND_KIB: u64 = 128 << 10;

fn sample_file(tmp: &TempDir, len: usize) -> std::path::PathBuf {
    let p = tmp.path().join("real.bin");
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn declared_huge_frames_neither_reserve_memory_nor_lock_out_a_real_sender() {
    let tmp = TempDir::new("mem-declared");
    let save = tmp.path().join("out");
    let mut rx = Recv::start(&["--save", save.to_str().unwrap(), "--duration", "30", "-q"]);
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    // An attacker that receives passes the first exchange: its declarations reach reassembly.
    assert!(support::greet(&attacker, &rx.addr, SessionId(0xBAD)));
    let mut buf = vec![0u8; 2048];
    // Frames of 64 MiB declared by datagrams of about 300 bytes, on every stream and as many
    // frames as a stream takes.
    for stream in 0..16u32 {
        for frame in 0..64u64 {
            let layout = ChunkLayout::for_frame(64 << 20, 256).unwrap();
            let h = DataHeader {
                session: SessionId(0xBAD),
                stream: StreamId(stream),
                flags: DataFlags::from_bits(DataFlags::RELIABLE).unwrap(),
                frame: FrameId(frame),
                index: ChunkIndex(0),
                count: layout.count(),
                frame_len: 64 << 20,
                parity: 0,
                deadline_ms: 0,
                floor: FrameId(0),
            };
            let n = wire::emit_data(&mut buf, &h, &[9u8; 256]);
            attacker.send_to(&buf[..n], &rx.addr).unwrap();
        }
    }
    let file = sample_file(&tmp, 1_000_000);
    let out = run(
        &["send", "--to", &rx.addr, file.to_str().unwrap()],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("acked 1, lost 0"), "{stderr}");
    let peak = peak_rss_kib(rx.child.id());
    let _ = rx.child.kill();
    let _ = rx.finish(Duration::from_secs(5));
    println!("peak RSS {} MiB", peak >> 10);
    assert!(peak <= BOUND_KIB, "peak RSS {} MiB", peak >> 10);
}

#[test]
fn a_64_mib_json_message_stays_inside_the_bound() {
    let rx = Recv::start(&["--duration", "60", "--count", "2"]);
    let addr = rx.addr.parse().unwrap();
    let config = SenderConfig {
        datagram_size: 65_507,
        ..SenderConfig::default()
    };
    let mut tx = UdpSender::connect(addr, config).unwrap();
    let mut json = Vec::with_capacity(64 << 20);
    json.push(b'[');
    while json.len() < (64 << 20) - 8 {
        json.extend_from_slice(b"12345,\n");
    }
    json.extend_from_slice(b"6]");
    let len = json.len();
    tx.send(OutgoingFrame::message(StreamId::MESSAGES, json))
        .unwrap();
    tx.flush(Duration::from_secs(30)).unwrap();
    let acked = tx.stats().frames_acked;
    let pid = rx.child.id();
    let peak = peak_rss_kib(pid);
    assert!(peak > 0, "recv exited early");
    let (_, stdout, stderr) = rx.finish(Duration::from_secs(20));
    assert_eq!(acked, 1, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("\"message\""))
        .expect("message line");
    assert!(line.len() > len, "the whole message is printed");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["message"].as_array().map(Vec::len), Some(len / 7 + 1));
    println!(
        "peak RSS {} MiB for a {} MiB message",
        peak >> 10,
        len >> 20
    );
    assert!(peak <= BOUND_KIB, "peak RSS {} MiB", peak >> 10);
}

/// A PNG that declares 16384 x 16384 pixels of 16-bit RGBA in a few bytes: 1.8 GB decoded.
fn png_bomb() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&16_384u32.to_be_bytes());
    ihdr.extend_from_slice(&16_384u32.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]); // 16-bit, RGBA
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00]);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn a_png_decompression_bomb_is_not_decoded_past_the_bound() {
    let tmp = TempDir::new("mem-bomb");
    let bomb = tmp.path().join("bomb.png");
    std::fs::write(&bomb, png_bomb()).unwrap();
    let mut rx = Recv::start(&["--decode", "--duration", "30"]);
    let real = sample_file(&tmp, 200_000);
    let out = run(
        &[
            "send",
            "--to",
            &rx.addr,
            bomb.to_str().unwrap(),
            real.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    let peak = peak_rss_kib(rx.child.id());
    assert!(peak > 0, "recv exited early");
    let _ = rx.child.kill();
    let (_, stdout, _) = rx.finish(Duration::from_secs(20));
    assert_eq!(
        json_lines(&stdout)
            .iter()
            .filter(|l| l["event"] == "frame")
            .count(),
        2
    );
    println!("peak RSS {} MiB with a decompression bomb", peak >> 10);
    assert!(peak <= BOUND_KIB, "peak RSS {} MiB", peak >> 10);
}
