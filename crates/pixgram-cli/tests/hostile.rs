//! Hostile input through the real binary: malformed, contradictory, oversized, replayed and
//! corrupted datagrams, and a flood from many source ports, while a legitimate sender keeps
//! delivering. For each: no crash or hang, memory under the cap (peak RSS), nothing wrong
//! delivered, and the counter that says why.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use pixgram_core::wire::{self, DataFlags, DataHeader};
use pixgram_core::{ChunkIndex, FrameId, SessionId, StreamId};
use support::{greet, json_lines, peak_rss_kib, run, sample_images, Recv, TempDir};

fn header(session: u32, frame: u64, frame_len: u64, count: u32, index: u32) -> DataHeader {
    DataHeader {
        session: SessionId(session),
        stream: StreamId::FRAMES,
        flags: DataFlags::from_bits(0).unwrap(),
        frame: FrameId(frame),
        index: ChunkIndex(index),
        count,
        frame_len,
        parity: 0,
        deadline_ms: 0,
        floor: FrameId(0),
    }
}

/// A DATA datagram with a correct CRC for whatever the header claims.
fn data(h: &DataHeader, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; wire::DATA_OVERHEAD + payload.len()];
    let n = wire::emit_data(&mut buf, h, payload);
    buf.truncate(n);
    buf
}

/// The same bytes with a fresh CRC32C trailer (to make a lie pass the checksum).
fn recrc(mut d: Vec<u8>) -> Vec<u8> {
    let n = d.len() - wire::TRAILER_LEN;
    let crc = crc32c(&d[..n]);
    d[n..].copy_from_slice(&crc.to_be_bytes());
    d
}

fn crc32c(bytes: &[u8]) -> u32 {
    // Bitwise CRC32C (Castagnoli), reflected, as the wire trailer uses.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn stats_of(stdout: &str) -> serde_json::Value {
    json_lines(stdout)
        .into_iter()
        .find(|l| l["event"] == "stats")
        .expect("recv prints a stats line")
}

fn stop(rx: &Recv) {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &rx.child.id().to_string()])
        .status();
}

#[test]
fn every_kind_of_bad_datagram_is_dropped_and_counted() {
    let tmp = TempDir::new("hostile");
    let save = tmp.path().join("out");
    let cap: u64 = 32 << 20;
    let rx = Recv::start(&[
        "--save",
        save.to_str().unwrap(),
        "--max-total-bytes",
        &cap.to_string(),
        "--duration",
        "30",
    ]);
    let baseline = peak_rss_kib(rx.child.id());
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.addr.clone();
    let send = |d: &[u8]| {
        s.send_to(d, &to).unwrap();
    };
    // The attacker's address receives: its sessions pass the first exchange, so what follows
    // reaches the checks behind it.
    for session in 1..=5 {
        assert!(greet(&s, &to, SessionId(session)), "no CHALLENGE");
    }
    let good = data(&header(1, 0, 5, 1, 0), b"hello");
    // Truncated header; zero-length datagram.
    send(&good[..20]);
    send(&[]);
    // Frame length and chunk count that disagree; chunk index past the count (CRC valid).
    send(&recrc(data(&header(2, 0, 100_000, 1, 0), &[0u8; 100])));
    send(&recrc(data(&header(3, 0, 5, 1, 4), b"hello")));
    // A huge declared size, consistent with itself: 60,000 chunks of 1,156 bytes (66 MiB).
    let huge = header(4, 0, 60_000 * 1156, 60_000, 0);
    send(&data(&huge, &[0u8; 1156]));
    // 64 KiB of garbage.
    let garbage: Vec<u8> = (0..65_507u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    send(&garbage);
    // One bit flipped in a valid datagram.
    let mut flipped = good.clone();
    flipped[45] ^= 0x04;
    send(&flipped);
    // Overlapping frame ids: the same frame declared with two different lengths.
    send(&data(&header(5, 9, 2312, 2, 0), &[1u8; 1156]));
    send(&data(&header(5, 9, 4624, 4, 1), &[2u8; 1156]));
    // A valid one-chunk frame, then the same datagram replayed.
    send(&good);
    std::thread::sleep(Duration::from_millis(200));
    send(&good);
    std::thread::sleep(Duration::from_millis(300));
    // A legitimate sender still gets through.
    let file = sample_images(tmp.path()).remove(0);
    let ok = run(
        &["send", "--to", &rx.addr, file.to_str().unwrap()],
        Duration::from_secs(20),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::thread::sleep(Duration::from_millis(200));
    let peak = peak_rss_kib(rx.child.id());
    assert!(
        peak * 1024 < baseline * 1024 + cap + (48 << 20),
        "peak RSS {} MiB over the cap",
        peak / 1024
    );
    stop(&rx);
    let (_, stdout, stderr) = rx.finish(Duration::from_secs(10));
    let st = stats_of(&stdout);
    for counter in [
        "truncated",
        "bad_header",
        "over_frame_limit",
        "bad_magic",
        "bad_checksum",
        "conflicting_chunks",
    ] {
        assert!(
            st[counter].as_u64().unwrap() > 0,
            "{counter} not counted: {st}\n{stderr}"
        );
    }
    let frames: Vec<_> = json_lines(&stdout)
        .into_iter()
        .filter(|l| l["event"] == "frame")
        .collect();
    // Exactly two frames: "hello" once (its replay not delivered again) and the real file.
    assert_eq!(frames.len(), 2, "{stdout}");
    let hello: Vec<_> = frames.iter().filter(|f| f["bytes"] == 5).collect();
    assert_eq!(hello.len(), 1);
    assert_eq!(
        std::fs::read(hello[0]["saved"].as_str().unwrap()).unwrap(),
        b"hello"
    );
    let real = frames.iter().find(|f| f["bytes"] != 5).unwrap();
    assert!(
        std::fs::read(real["saved"].as_str().unwrap()).unwrap() == std::fs::read(&file).unwrap()
    );
}

#[test]
fn a_flood_from_many_ports_stays_under_the_memory_cap_and_a_real_sender_gets_through() {
    let tmp = TempDir::new("flood");
    let save = tmp.path().join("out");
    let cap: u64 = 64 << 20;
    let rx = Recv::start(&[
        "--save",
        save.to_str().unwrap(),
        "--max-total-bytes",
        &cap.to_string(),
        "--max-peer-bytes",
        &(8u64 << 20).to_string(),
        "--duration",
        "60",
        "--quiet",
    ]);
    let pid = rx.child.id();
    let baseline = peak_rss_kib(pid);
    let to = rx.addr.clone();
    let files: Vec<_> = sample_images(tmp.path())
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() < 600_000)
        .collect();
    let flood = std::thread::spawn(move || {
        // 16 source ports each fill most of a 4 MiB frame that never completes (every byte
        // written, so the pages are really touched): 64 MiB, the whole budget, until those
        // frames expire. 184 more ports send frame starts declaring 4 MiB, and garbage.
        // Every port answers its CHALLENGE (a flood from real addresses; one from addresses
        // that do not answer has its own test below).
        let sockets: Vec<UdpSocket> = (0..200)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, s) in sockets.iter().enumerate() {
            greet(s, &to, SessionId(1000 + i as u32));
        }
        let len: u64 = 4 << 20;
        let count = len.div_ceil(1156) as u32;
        let mut sent = 0u64;
        for (i, s) in sockets.iter().enumerate() {
            let chunks = if i < 16 { count - 4 } else { 1 };
            for c in 0..chunks {
                let h = header(1000 + i as u32, 0, len, count, c);
                let _ = s.send_to(&data(&h, &[0xAB; 1156]), &to);
                sent += 1;
                if c % 256 == 255 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let _ = s.send_to(&[0x55; 1400], &to);
            sent += 1;
        }
        sent
    });
    let mut args = vec!["send", "--to", rx.addr.as_str(), "--loop", "5"];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let ok = run(&args, Duration::from_secs(60));
    let flooded = flood.join().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    let peak = peak_rss_kib(pid);
    stop(&rx);
    let (_, stdout, stderr) = rx.finish(Duration::from_secs(10));
    let st = stats_of(&stdout);
    let saved = std::fs::read_dir(&save).unwrap().count();
    assert_eq!(saved, files.len() * 5, "{stderr}");
    println!(
        "flood of {flooded} datagrams: peak RSS {} MiB (baseline {} MiB, cap {} MiB); {st}",
        peak / 1024,
        baseline / 1024,
        cap >> 20
    );
    assert!(
        st["over_budget"].as_u64().unwrap() > 0,
        "the budget never bound: {st}"
    );
    assert!(
        st["over_peers"].as_u64().unwrap() > 0,
        "the peer limit never bound: {st}"
    );
    assert!(
        peak * 1024 > baseline * 1024 + (32 << 20),
        "the flood did not really fill memory (peak {} MiB): the test proves nothing",
        peak / 1024
    );
    assert!(
        peak * 1024 < baseline * 1024 + cap + (48 << 20),
        "peak RSS {} MiB over the {} MiB cap plus baseline {} MiB and slack",
        peak / 1024,
        cap >> 20,
        baseline / 1024
    );
}

#[test]
fn first_datagrams_from_unknown_addresses_get_no_more_bytes_back_than_they_sent() {
    let rx = Recv::start(&["--duration", "20", "--quiet"]);
    let reliable = DataFlags::from_bits(DataFlags::RELIABLE).unwrap();
    let firsts: Vec<Vec<u8>> = vec![
        data(&header(1, 0, 0, 1, 0), b""),
        data(&header(2, 0, 1, 1, 0), b"x"),
        // The first chunk of a large reliable frame: the receiver wants to NACK the rest.
        data(
            &DataHeader {
                flags: reliable,
                ..header(3, 0, 1156 * 500, 500, 7)
            },
            &[1u8; 1156],
        ),
        data(
            &DataHeader {
                flags: reliable,
                ..header(4, 0, 1156 * 60, 60, 59)
            },
            &[1u8; 1156],
        ),
        b"PG\x01\x04\x00\x00\x00\x05\x00\x00\x00\x00".to_vec(),
        vec![0u8; 1],
        vec![0xFFu8; 700],
    ];
    for d in &firsts {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Three times, as a spoofer would: replies may never add up to more than was sent.
        let mut sent = 0;
        for _ in 0..3 {
            s.send_to(d, &rx.addr).unwrap();
            sent += d.len();
        }
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut back = 0;
        let mut buf = [0u8; 65_536];
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            back += n;
        }
        assert!(
            back <= sent,
            "{back} bytes back for {sent} sent ({} byte datagram)",
            d.len()
        );
    }
    stop(&rx);
    let (_, stdout, _) = rx.finish(Duration::from_secs(10));
    let st = stats_of(&stdout);
    // The valid-looking ones were answered with a CHALLENGE (so the bound above was really
    // tested), and nothing else: no address here was validated.
    assert!(st["challenges_sent"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(
        st["acks_sent"].as_u64().unwrap()
            + st["nacks_sent"].as_u64().unwrap()
            + st["progress_reports_sent"].as_u64().unwrap(),
        0,
        "{st}"
    );
    assert_eq!(st["sessions_started"].as_u64().unwrap(), 0, "{st}");
}

/// Issue 11: one datagram from another port, naming a real sender's session, frame id and
/// file name, used to replace the photo that sender saved. Saves never replace.
#[test]
fn a_forged_frame_with_a_saved_frames_name_never_replaces_it() {
    let tmp = TempDir::new("noreplace");
    let save = tmp.path().join("out");
    let mut rx = Recv::start(&["--save", save.to_str().unwrap(), "--duration", "15", "-q"]);
    let photo = tmp.path().join("photo.jpg");
    let original: Vec<u8> = (0..60_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&photo, &original).unwrap();
    let out = run(
        &["send", "--to", &rx.addr, photo.to_str().unwrap()],
        Duration::from_secs(15),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved: Vec<_> = std::fs::read_dir(&save)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1);
    let name = saved[0].file_name().unwrap().to_string_lossy().into_owned();
    let session = u32::from_str_radix(name.split('-').next().unwrap(), 16).unwrap();
    // The forgery: same session, stream, frame id and file name, from another port.
    let meta = br#"{"file":"photo.jpg"}"#;
    let mut body = (meta.len() as u32).to_be_bytes().to_vec();
    body.extend_from_slice(meta);
    body.extend_from_slice(b"EVIL");
    let mut h = header(session, 0, body.len() as u64, 1, 0);
    h.flags = DataFlags::from_bits(DataFlags::METADATA).unwrap();
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Unvalidated it is answered with a CHALLENGE only; validated (an attacker that receives,
    // naming the sender's session from its own port once the sender went quiet) its frame
    // id has a verdict already; and a save never replaces a file either way.
    attacker.send_to(&data(&h, &body), &rx.addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(greet(&attacker, &rx.addr, SessionId(session)));
    attacker.send_to(&data(&h, &body), &rx.addr).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        std::fs::read(&saved[0]).unwrap(),
        original,
        "the saved photo was replaced"
    );
    let _ = rx.child.kill();
    let _ = rx.finish(Duration::from_secs(5));
}

/// Issue 11: a sender of tiny frames used to create 15,000 empty files in 1.6 s, and a flood
/// printed a `lost` line per frame even with -q. Saves are budgeted per source and -q is quiet.
#[test]
fn a_flood_of_tiny_frames_is_held_to_the_save_budget_and_quiet_is_quiet() {
    let tmp = TempDir::new("savebudget");
    let save = tmp.path().join("out");
    let rx = Recv::start(&[
        "--save",
        save.to_str().unwrap(),
        "--duration",
        "4",
        "-q",
        "--max-saves-per-sec",
        "100",
    ]);
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(greet(&attacker, &rx.addr, SessionId(77)));
    assert!(greet(&attacker, &rx.addr, SessionId(78)));
    let start = std::time::Instant::now();
    for i in 0..3000u64 {
        // Empty whole frames, and frames that will never complete (a lost line each).
        attacker
            .send_to(&data(&header(77, i, 0, 1, 0), &[]), &rx.addr)
            .unwrap();
        attacker
            .send_to(&data(&header(78, i, 2000, 2, 0), &[1u8; 1000]), &rx.addr)
            .unwrap();
    }
    let secs = start.elapsed().as_secs_f64().ceil();
    let (_, stdout, stderr) = rx.finish(Duration::from_secs(15));
    let saved: Vec<std::time::SystemTime> = std::fs::read_dir(&save)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    let files = saved.len() as f64;
    // The budget is a one-second bucket refilled at 100 files/s: at most 100 + 100 per second
    // of saving. The receiver may still be saving what its socket buffer held after the
    // flood ended (on a loaded machine), so the span is the later of the flood's and the
    // saves' (their modification times).
    let (first, last) = (saved.iter().min().unwrap(), saved.iter().max().unwrap());
    let saving = last
        .duration_since(*first)
        .unwrap_or_default()
        .as_secs_f64();
    let secs = secs.max(saving.ceil());
    assert!(files <= 100.0 * (secs + 1.0), "{files} files in {secs} s");
    assert!(files >= 50.0, "the budget still saves: {files}");
    let lost_lines = stdout.lines().filter(|l| l.contains("\"lost\"")).count();
    assert_eq!(lost_lines, 0, "-q printed {lost_lines} lost lines");
    assert!(
        stderr.matches("started session").count() <= 40,
        "session lines are not budgeted"
    );
}

/// Issue 11: 64 source ports each sending one valid empty frame every 5 s (560 bytes/s in
/// all) used to hold every place of --max-peers: every new sender failed with no answer.
#[test]
fn sixty_four_ports_keeping_their_places_do_not_lock_out_a_new_sender() {
    let tmp = TempDir::new("lockout");
    let rx = Recv::start(&["--duration", "20", "-q"]);
    let to = rx.addr.clone();
    let stop_flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop_flag.clone();
    let holders = std::thread::spawn(move || {
        let sockets: Vec<UdpSocket> = (0..64)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, s) in sockets.iter().enumerate() {
            assert!(greet(s, &to, SessionId(5000 + i as u32)));
        }
        for round in 0..4u64 {
            for (i, s) in sockets.iter().enumerate() {
                let _ = s.send_to(&data(&header(5000 + i as u32, round, 0, 1, 0), &[]), &to);
            }
            for _ in 0..50 {
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    let file = tmp.path().join("photo.bin");
    std::fs::write(&file, vec![1u8; 300_000]).unwrap();
    let out = run(
        &[
            "send",
            "--to",
            &rx.addr,
            file.to_str().unwrap(),
            "--loop",
            "5",
        ],
        Duration::from_secs(15),
    );
    stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
    holders.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "locked out: {stderr}");
    assert!(stderr.contains("acked 5, lost 0"), "{stderr}");
    stop(&rx);
    let (_, stdout, _) = rx.finish(Duration::from_secs(10));
    assert!(stats_of(&stdout)["sessions_evicted"].as_u64().unwrap() >= 1);
}

/// Issue 11: a flood of 200,000 datagrams in 10 s from 200 ports (half random bytes, half
/// CRC-valid DATA each opening a 1 MiB frame) from addresses that never answer a CHALLENGE
/// used to give a sender starting during it 0 frames and drive the receiver to 308-602 MiB.
/// Now nothing is kept for such addresses: the sender delivers every frame byte-identical,
/// peak RSS stays far under 128 MiB, and recv says it is flooded once.
#[test]
fn a_flood_from_addresses_that_never_answer_keeps_nothing_and_a_sender_gets_through() {
    let tmp = TempDir::new("unvalidated");
    let save = tmp.path().join("out");
    let rx = Recv::start(&["--save", save.to_str().unwrap(), "--duration", "60", "-q"]);
    let pid = rx.child.id();
    let to = rx.addr.clone();
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = running.clone();
    let flood = std::thread::spawn(move || {
        let sockets: Vec<UdpSocket> = (0..200)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let reliable = DataFlags::from_bits(DataFlags::RELIABLE).unwrap();
        let len: u64 = 1 << 20;
        let count = len.div_ceil(1152) as u32;
        let start = std::time::Instant::now();
        let mut sent = 0u64;
        let mut junk = 0x1234_5678u32;
        while sent < 200_000 && start.elapsed() < Duration::from_secs(12) {
            // 20 datagrams a millisecond: 20,000 a second.
            for _ in 0..20 {
                let i = (sent % 200) as usize;
                let d = if sent.is_multiple_of(2) {
                    let h = DataHeader {
                        flags: reliable,
                        ..header(7000 + i as u32, sent, len, count, 0)
                    };
                    data(&h, &[0xCD; 1152])
                } else {
                    (0..600)
                        .map(|_| {
                            junk = junk.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                            (junk >> 16) as u8
                        })
                        .collect()
                };
                let _ = sockets[i].send_to(&d, &to);
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        flag.store(false, std::sync::atomic::Ordering::Relaxed);
        sent
    });
    std::thread::sleep(Duration::from_millis(1000));
    let files = sample_images(tmp.path());
    let mut args = vec!["send", "--to", rx.addr.as_str(), "--loop", "3"];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let ok = run(&args, Duration::from_secs(60));
    let during = running.load(std::sync::atomic::Ordering::Relaxed);
    let flooded = flood.join().unwrap();
    let err = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{err}");
    assert!(
        during,
        "the flood ended before the sender did: the test proves nothing"
    );
    let peak = peak_rss_kib(pid);
    stop(&rx);
    let (_, stdout, stderr) = rx.finish(Duration::from_secs(10));
    let st = stats_of(&stdout);
    println!(
        "flood of {flooded} datagrams: peak RSS {} MiB; {st}",
        peak / 1024
    );
    assert!(flooded >= 100_000, "{flooded}");
    let mut saved: Vec<Vec<u8>> = std::fs::read_dir(&save)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    let mut want: Vec<Vec<u8>> = files
        .iter()
        .flat_map(|f| std::iter::repeat_n(std::fs::read(f).unwrap(), 3))
        .collect();
    saved.sort();
    want.sort();
    assert!(
        saved == want,
        "{} files saved, not byte-identical",
        saved.len()
    );
    assert_eq!(st["sessions_started"].as_u64().unwrap(), 1, "{st}");
    assert!(
        st["unvalidated"].as_u64().unwrap() >= flooded / 2 - 1000,
        "{st}"
    );
    assert!(st["challenges_limited"].as_u64().unwrap() > 0, "{st}");
    assert!(peak < 128 * 1024, "peak RSS {} MiB", peak / 1024);
    assert_eq!(stderr.matches("pixgram: flooded:").count(), 1, "{stderr}");
}

/// A receiver with every place held by active senders refuses a new one; both ends say so,
/// each once: recv that it refuses new senders, send that the receiver answered the first
/// exchange but took none of its frames (exit 2, not "no answer").
#[test]
fn a_full_receiver_and_the_refused_sender_both_say_so() {
    let tmp = TempDir::new("full");
    let rx = Recv::start(&["--max-peers", "1", "--duration", "20"]);
    let to = rx.addr.clone();
    let stop_flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop_flag.clone();
    let holder = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(greet(&s, &to, SessionId(4242)));
        let mut frame = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) && frame < 200 {
            let _ = s.send_to(&data(&header(4242, frame, 0, 1, 0), &[]), &to);
            frame += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let file = tmp.path().join("f.bin");
    std::fs::write(&file, vec![3u8; 10_000]).unwrap();
    let out = run(
        &[
            "send",
            "--to",
            &rx.addr,
            "--timeout",
            "2",
            file.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
    holder.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Not delivered (2), not "never answered" (3): the receiver is there and refuses.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.matches("answered the first exchange").count(),
        1,
        "{err}"
    );
    stop(&rx);
    let (_, _, stderr) = rx.finish(Duration::from_secs(10));
    assert_eq!(
        stderr.matches("refusing new senders").count(),
        1,
        "{stderr}"
    );
}

/// Issue 11: one spoofed datagram from a sender's own address and port naming another
/// session id used to end that sender's session and black-hole it for 10 s. Spoofed DATA,
/// HELLO and CLOSE of other sessions from the sender's port now draw at most a CHALLENGE
/// (which the sender ignores: not its session) and change nothing. Needs root for a raw
/// socket that writes the UDP header (CI runs as root); skips with a reason otherwise.
#[test]
fn datagrams_spoofed_from_a_senders_port_with_other_session_ids_change_nothing() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        println!("skipped: a raw socket needs root (CI runs as root)");
        return;
    }
    let raw = match socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::UDP),
    ) {
        Ok(s) => s,
        Err(e) => {
            println!("skipped: no raw socket here ({e})");
            return;
        }
    };
    let tmp = TempDir::new("spoof");
    let save = tmp.path().join("out");
    let mut rx = Recv::start(&["--save", save.to_str().unwrap(), "--duration", "40"]);
    let recv_port: u16 = rx.addr.rsplit(':').next().unwrap().parse().unwrap();
    let file = tmp.path().join("photo.bin");
    let original: Vec<u8> = (0..400_000u32).map(|i| (i % 249) as u8).collect();
    std::fs::write(&file, &original).unwrap();
    let sender = std::process::Command::new(support::bin())
        .args(["send", "--to", &rx.addr, "--loop", "30", "--window", "1"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = rx.wait_for_line("started session", Duration::from_secs(10));
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let udp = |payload: &[u8]| {
        let mut d = Vec::with_capacity(8 + payload.len());
        d.extend_from_slice(&port.to_be_bytes());
        d.extend_from_slice(&recv_port.to_be_bytes());
        d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0]); // no checksum (allowed over IPv4)
        d.extend_from_slice(payload);
        d
    };
    let to: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let hello = wire::Hello::new(SessionId(0xD00D), None).to_vec();
    let mut close = vec![0u8; wire::CLOSE_LEN];
    wire::emit_close(&mut close, SessionId(0xD00E));
    for i in 0..200u32 {
        let spoofed = data(&header(0xE000 + i, 0, 0, 1, 0), &[]);
        for d in [&spoofed, &hello, &close] {
            raw.send_to(&udp(d), &to.into()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = support::wait_bounded(sender, Duration::from_secs(40));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("acked 30, lost 0"), "{err}");
    stop(&rx);
    let (_, stdout, stderr) = rx.finish(Duration::from_secs(10));
    let st = stats_of(&stdout);
    assert!(
        st["unvalidated"].as_u64().unwrap() >= 200,
        "the spoofing reached it: {st}"
    );
    assert_eq!(st["sessions_started"].as_u64().unwrap(), 1, "{st}");
    assert_eq!(st["sessions_ended"].as_u64().unwrap(), 1, "{st}\n{stderr}");
    for f in std::fs::read_dir(&save).unwrap() {
        assert!(std::fs::read(f.unwrap().path()).unwrap() == original);
    }
}
