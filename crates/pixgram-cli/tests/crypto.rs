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
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
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

    // Raw datagrams: sealed with the wrong key, tampered, plain, replayed: none answered.
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
    // The genuine one is answered (sealed), its replay is not.
    let genuine = buf[..n].to_vec();
    sock.send_to(&genuine, &rx.addr).unwrap();
    assert!(!silent(&sock), "the genuine sealed datagram got no answer");
    sock.send_to(&genuine, &rx.addr).unwrap();
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
}
