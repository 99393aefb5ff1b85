//! Pre-shared-key encryption through the real binary: keygen, a keyed transfer, and datagrams
//! with the wrong key, tampered or replayed: dropped, counted, never answered.

mod support;

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use pixgram_core::seal::{Psk, Sealer};
use pixgram_core::wire::{self, DataFlags, DataHeader};
use pixgram_core::{ChunkIndex, FrameId, SessionId, StreamId};
use support::{json_lines, run, sample_images, Recv, TempDir};

fn keygen(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let out = run(&["keygen", path.to_str().unwrap()], Duration::from_secs(10));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn key(path: &Path) -> Psk {
    Psk::from_hex(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One valid plain DATA datagram: a whole 5-byte frame.
fn plain_frame() -> Vec<u8> {
    let payload = b"hello";
    let mut buf = vec![0u8; wire::DATA_OVERHEAD + payload.len()];
    let h = DataHeader {
        session: SessionId(7),
        stream: StreamId::FRAMES,
        flags: DataFlags::from_bits(DataFlags::RELIABLE).unwrap(),
        frame: FrameId(0),
        index: ChunkIndex(0),
        count: 1,
        frame_len: payload.len() as u64,
        parity: 0,
        deadline_ms: 0,
        floor: FrameId(0),
    };
    let n = wire::emit_data(&mut buf, &h, payload);
    buf.truncate(n);
    buf
}

/// A HELLO without a token (the first datagram of a session).
fn plain_hello() -> Vec<u8> {
    wire::Hello::new(SessionId(7), None).to_vec()
}

fn silent(sock: &UdpSocket) -> bool {
    sock.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut b = [0u8; 2048];
    sock.recv_from(&mut b).is_err()
}

#[test]
fn keygen_writes_a_private_64_hex_key_and_never_overwrites() {
    let tmp = TempDir::new("keygen");
    let path = keygen(tmp.path(), "k");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    assert!(text.trim().chars().all(|c| c.is_ascii_hexdigit()));
    let again = run(&["keygen", path.to_str().unwrap()], Duration::from_secs(10));
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = tmp.path().join("x.bin");
    std::fs::write(&file, b"x").unwrap();
    let out = run(
        &[
            "send",
            "--to",
            "127.0.0.1:9",
            "--key-file",
            path.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn keyed_transfer_delivers_and_strangers_get_nothing_back() {
    let tmp = TempDir::new("crypto");
    let k1 = keygen(tmp.path(), "k1");
    let k2 = keygen(tmp.path(), "k2");
    let save = tmp.path().join("out");
    let files: Vec<_> = sample_images(tmp.path()).into_iter().take(3).collect();
    let rx = Recv::start(&[
        "--key-file",
        k1.to_str().unwrap(),
        "--save",
        save.to_str().unwrap(),
        "--duration",
        "12",
    ]);
    assert!(rx.line.contains("encrypted"), "{}", rx.line);

    // The right key: every file arrives byte-identical.
    let mut args = vec![
        "send",
        "--to",
        rx.addr.as_str(),
        "--key-file",
        k1.to_str().unwrap(),
    ];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let ok = run(&args, Duration::from_secs(30));
    let said = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{said}");
    // On loopback the keyed sender's path MTU search tries its own maximum (65,507 on the
    // wire less the seal's 44 bytes) after the usual sizes: three probes, not a bisection.
    assert!(
        said.contains("datagrams of 65463 bytes (path MTU: 3 of 3 probes confirmed"),
        "{said}"
    );

    // The wrong key: the sender hears nothing and says so.
    let wrong = run(
        &[
            "send",
            "--to",
            &rx.addr,
            "--key-file",
            k2.to_str().unwrap(),
            "--timeout",
            "1",
            names[0].as_str(),
        ],
        Duration::from_secs(20),
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("another key"));

    // Raw datagrams: sealed with the wrong key, tampered, plain, DATA under a salt key (not a
    // session key), replayed: none answered.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut buf = vec![0u8; 4096];
    let n = Sealer::new(&key(&k2), [9; 16]).seal(&plain_frame(), &mut buf);
    sock.send_to(&buf[..n], &rx.addr).unwrap();
    assert!(silent(&sock), "answered a datagram sealed with another key");
    let n = Sealer::new(&key(&k1), [8; 16]).seal(&plain_frame(), &mut buf);
    let mut tampered = buf[..n].to_vec();
    tampered[40] ^= 0x20;
    sock.send_to(&tampered, &rx.addr).unwrap();
    assert!(silent(&sock), "answered a tampered datagram");
    sock.send_to(&plain_frame(), &rx.addr).unwrap();
    assert!(silent(&sock), "answered a plain datagram");
    let genuine = buf[..n].to_vec();
    sock.send_to(&genuine, &rx.addr).unwrap();
    assert!(silent(&sock), "answered DATA sealed outside a session");
    // A genuine sealed HELLO is answered (a sealed CHALLENGE), its replay is not.
    let mut sealer = Sealer::new(&key(&k1), [6; 16]);
    let n = sealer.seal(&plain_hello(), &mut buf);
    let hello = buf[..n].to_vec();
    sock.send_to(&hello, &rx.addr).unwrap();
    assert!(!silent(&sock), "the genuine sealed HELLO got no answer");
    sock.send_to(&hello, &rx.addr).unwrap();
    assert!(silent(&sock), "answered a replayed datagram");

    let (_, stdout, stderr) = rx.finish(Duration::from_secs(20));
    let frames: Vec<_> = json_lines(&stdout)
        .into_iter()
        .filter(|l| l["event"] == "frame" && l.get("saved").is_some())
        .collect();
    for f in &frames {
        let name = f["meta"]["file"].as_str();
        if let Some(name) = name {
            let orig = files
                .iter()
                .find(|p| p.file_name().unwrap() == name)
                .unwrap();
            let got = std::fs::read(f["saved"].as_str().unwrap()).unwrap();
            assert!(got == std::fs::read(orig).unwrap(), "{name} differs");
        }
    }
    assert!(frames.len() >= files.len(), "{stdout}");
    let key_line = stderr
        .lines()
        .find(|l| l.starts_with("key: "))
        .unwrap_or("");
    let count = |what: &str| -> u64 {
        key_line
            .split(&[';', ','][..])
            .find(|p| p.contains(what))
            .and_then(|p| p.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or(0)
    };
    assert!(count("failing authentication") >= 2, "{key_line}");
    assert_eq!(count("replayed"), 1, "{key_line}");
    assert_eq!(count("not encrypted"), 1, "{key_line}");
    assert_eq!(count("not under a session key"), 1, "{key_line}");
}

/// Forwards datagrams from one client to `to` and the replies back, recording what the client
/// sent, until `stop` is set.
fn recording_proxy(
    to: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (String, std::thread::JoinHandle<Vec<Vec<u8>>>) {
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = front.local_addr().unwrap().to_string();
    front
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    back.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let handle = std::thread::spawn(move || {
        let mut recorded = Vec::new();
        let mut client = None;
        let mut buf = [0u8; 65_536];
        let start = std::time::Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed)
            && start.elapsed() < Duration::from_secs(30)
        {
            while let Ok((n, from)) = front.recv_from(&mut buf) {
                client = Some(from);
                recorded.push(buf[..n].to_vec());
                let _ = back.send_to(&buf[..n], to);
            }
            while let Ok((n, _)) = back.recv_from(&mut buf) {
                if let Some(c) = client {
                    let _ = front.send_to(&buf[..n], c);
                }
            }
        }
        recorded
    });
    (addr, handle)
}

/// Issue 11: a keyed session recorded on the wire and replayed to a restarted `recv
/// --key-file`, or to another receiver with the same key, used to be delivered and answered
/// again (a replayed `{"cmd":"fire"}` ran twice). The receiver's challenge is mixed into the
/// session keys: nothing of the recording authenticates past its HELLOs, whose old tokens are
/// refused, and nothing is delivered.
#[test]
fn a_recorded_keyed_session_replayed_to_a_restarted_or_another_receiver_delivers_nothing() {
    let tmp = TempDir::new("replay");
    let k = keygen(tmp.path(), "k");
    let first = Recv::start(&["--key-file", k.to_str().unwrap(), "--duration", "20"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (via, proxy) = recording_proxy(first.addr.parse().unwrap(), stop.clone());
    let sent = run(
        &[
            "msg",
            "--to",
            &via,
            "--key-file",
            k.to_str().unwrap(),
            r#"{"cmd":"fire"}"#,
        ],
        Duration::from_secs(15),
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let recording = proxy.join().unwrap();
    assert!(
        recording.len() >= 3,
        "HELLO, HELLO with token, DATA: {}",
        recording.len()
    );
    let _ = std::process::Command::new("kill")
        .args(["-INT", &first.child.id().to_string()])
        .status();
    let (_, stdout, _) = first.finish(Duration::from_secs(10));
    let fired = |out: &str| {
        json_lines(out)
            .iter()
            .filter(|l| l["event"] == "message" && l["message"]["cmd"] == "fire")
            .count()
    };
    assert_eq!(fired(&stdout), 1, "{stdout}");
    // The recording replayed to a restarted receiver (a new process with the same key), and
    // again to another one: three times each, as an attacker would.
    for round in 0..2 {
        let again = Recv::start(&["--key-file", k.to_str().unwrap(), "--duration", "20"]);
        let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..3 {
            for d in &recording {
                attacker.send_to(d, &again.addr).unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::process::Command::new("kill")
            .args(["-INT", &again.child.id().to_string()])
            .status();
        let (_, stdout, stderr) = again.finish(Duration::from_secs(10));
        assert_eq!(
            fired(&stdout),
            0,
            "round {round}: replay delivered: {stdout}"
        );
        let st = json_lines(&stdout)
            .into_iter()
            .find(|l| l["event"] == "stats")
            .unwrap();
        assert_eq!(st["sessions_started"], 0, "round {round}: {st}");
        assert!(
            st["tokens_invalid"].as_u64().unwrap() > 0,
            "round {round}: {st}"
        );
        assert!(
            st["key_no_session_key"].as_u64().unwrap() > 0,
            "round {round}: the recorded DATA must not authenticate: {st}\n{stderr}"
        );
    }
}
