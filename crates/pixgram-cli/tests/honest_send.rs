//! A send that did not deliver says so: exit codes (0 all acknowledged, 1 usage or local
//! error, 2 not delivered, 3 never answered), the frames not delivered named, the wait as long
//! as the receiver makes progress. Real binary, loopback only, every wait bounded.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{bin, run, sample_images, wait_bounded, Recv, Relay, TempDir};

/// The tests that move megabytes take turns (2-core machine).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A loopback port with nothing listening (bound, then released).
fn closed_port() -> String {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().to_string()
}

/// Files saved in `dir` by their original name (`<session>-<stream>-<frame>-<name>`).
fn saved(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let orig = name.splitn(4, '-').nth(3).unwrap_or(&name).to_string();
            (orig, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn slow_link_delivers_every_file_or_names_what_is_missing() {
    let _turn = turn();
    let tmp = TempDir::new("honest-slow");
    let out = tmp.path().join("out");
    let images = sample_images(tmp.path());
    let mut recv = Recv::start(&["--save", out.to_str().unwrap(), "-q", "--duration", "120"]);
    // 4 Mbit/s with a 256 KiB queue: the sender floods it at first and takes several times
    // twice the frame timeout to finish; it must wait as long as the receiver makes progress.
    let relay = Relay::start(&recv.addr, &["--rate", "4"]);
    // --timeout 2: silence of 2 s means gone, but a transfer that keeps progressing may take
    // far longer (4.7 MB at 4 Mbit/s: at least 9.4 s).
    let mut args = vec!["send", "--to", &relay.addr, "--timeout", "2"];
    args.extend(images.iter().map(|p| p.to_str().unwrap()));
    let t = Instant::now();
    let sent = run(&args, Duration::from_secs(100));
    let err = stderr(&sent);
    eprintln!("{err}\nsend took {:.1} s", t.elapsed().as_secs_f64());
    let got = saved(&out);
    if sent.status.success() {
        for img in &images {
            let name = img.file_name().unwrap().to_string_lossy().into_owned();
            let original = std::fs::read(img).unwrap();
            assert!(
                got.iter().any(|(n, b)| *n == name && *b == original),
                "send exited 0 but {name} was not saved identical: {err}"
            );
        }
    } else {
        // Not delivered: the run must say which.
        assert_eq!(sent.status.code(), Some(2), "{err}");
        assert!(err.contains("not delivered: "), "{err}");
    }
    assert_eq!(
        sent.status.code(),
        Some(0),
        "with the progress-based wait every file arrives: {err}"
    );
    assert_eq!(got.len(), images.len(), "{err}");
    drop(relay);
    let _ = recv.child.kill();
    recv.finish(Duration::from_secs(10));
}

#[test]
fn a_frame_the_receiver_refuses_fails_the_run_and_is_named() {
    let _turn = turn();
    let tmp = TempDir::new("honest-refused");
    let file = tmp.path().join("big-one.bin");
    std::fs::write(&file, vec![7u8; 1_000_000]).unwrap();
    let mut recv = Recv::start(&["--max-peer-bytes", "100000", "--duration", "60"]);
    let t = Instant::now();
    let sent = run(
        &[
            "send",
            "--to",
            &recv.addr,
            "--timeout",
            "2",
            file.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    let err = stderr(&sent);
    assert_eq!(sent.status.code(), Some(2), "not delivered: {err}");
    assert!(err.contains("not delivered: big-one.bin"), "{err}");
    assert!(err.contains("1 of 1 frames were not delivered"), "{err}");
    assert!(err.contains("acked 0, lost 1"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let _ = recv.child.kill();
    recv.finish(Duration::from_secs(10));
}

#[test]
fn nothing_listening_is_said_at_once_with_its_own_exit_code() {
    let addr = closed_port();
    let t = Instant::now();
    let live = run(
        &["send", "--to", &addr, "--pattern", "--count", "60"],
        Duration::from_secs(20),
    );
    let took = t.elapsed();
    let err = stderr(&live);
    assert_eq!(live.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("nothing is listening at {addr}")),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}: {err}");
    assert!(err.contains("delivered 0 of 60"), "{err}");

    let tmp = TempDir::new("honest-closed");
    let file = tmp.path().join("a.bin");
    std::fs::write(&file, vec![1u8; 50_000]).unwrap();
    let t = Instant::now();
    let reliable = run(
        &["send", "--to", &addr, file.to_str().unwrap()],
        Duration::from_secs(20),
    );
    let err = stderr(&reliable);
    assert_eq!(reliable.status.code(), Some(3), "{err}");
    assert!(err.contains("nothing is listening"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{err}");

    let msg = run(
        &["msg", "--to", &addr, "{\"a\":1}"],
        Duration::from_secs(20),
    );
    let err = stderr(&msg);
    assert_eq!(msg.status.code(), Some(3), "{err}");
    assert!(err.contains("nothing is listening"), "{err}");
}

#[test]
fn max_loss_fails_a_live_stream_that_lost_too_much() {
    let _turn = turn();
    let mut recv = Recv::start(&["-q", "--duration", "60"]);
    let relay = Relay::start(&recv.addr, &["--loss", "50", "--seed", "3"]);
    let stream = |extra: &[&str]| {
        let mut args = vec![
            "send",
            "--to",
            &relay.addr,
            "--pattern",
            "--size",
            "64x48",
            "--count",
            "30",
            "--fps",
            "30",
        ];
        args.extend_from_slice(extra);
        run(&args, Duration::from_secs(30))
    };
    let strict = stream(&["--max-loss", "10"]);
    let err = stderr(&strict);
    assert_eq!(strict.status.code(), Some(2), "{err}");
    assert!(err.contains("more than --max-loss 10%"), "{err}");
    assert!(err.contains("delivered "), "{err}");
    // Without --max-loss a live stream fails only when nothing arrived.
    let lenient = stream(&[]);
    let err = stderr(&lenient);
    assert_eq!(lenient.status.code(), Some(0), "{err}");
    assert!(err.contains("delivered "), "{err}");
    drop(relay);
    let _ = recv.child.kill();
    recv.finish(Duration::from_secs(10));
}

#[test]
fn max_frame_size_is_checked_up_front_and_lets_large_files_through() {
    let _turn = turn();
    let tmp = TempDir::new("honest-size");
    let small = tmp.path().join("small.bin");
    std::fs::write(&small, vec![1u8; 10]).unwrap();
    let big = tmp.path().join("big.bin");
    std::fs::write(&big, vec![2u8; 2000]).unwrap();
    let addr = closed_port();
    let out = run(
        &[
            "send",
            "--to",
            &addr,
            "--max-frame-size",
            "1000",
            small.to_str().unwrap(),
            big.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("big.bin") && err.contains("--max-frame-size 1000"),
        "{err}"
    );
    assert!(
        !err.contains("acked"),
        "refused before anything was sent: {err}"
    );

    // Over the 64 MiB default, with both ends raised.
    let huge = tmp.path().join("huge.bin");
    let bytes: Vec<u8> = (0..(65u32 << 20))
        .map(|i| (i * 7 + i / 4099) as u8)
        .collect();
    std::fs::write(&huge, &bytes).unwrap();
    let save = tmp.path().join("out");
    let limit = "70000000";
    let recv = Recv::start(&[
        "--save",
        save.to_str().unwrap(),
        "-q",
        "--max-frame-size",
        limit,
        "--count",
        "1",
        "--duration",
        "90",
    ]);
    let sent = run(
        &[
            "send",
            "--to",
            &recv.addr,
            "--datagram-size",
            "60000",
            "--max-frame-size",
            limit,
            huge.to_str().unwrap(),
        ],
        Duration::from_secs(80),
    );
    let err = stderr(&sent);
    assert_eq!(sent.status.code(), Some(0), "{err}");
    // The receiver exits after its one frame, once the file is written.
    let (ok, _, rx_err) = recv.finish(Duration::from_secs(30));
    assert!(ok, "{rx_err}");
    let got = saved(&save);
    assert!(
        got.iter().any(|(n, b)| n == "huge.bin" && *b == bytes),
        "huge.bin saved identical: {err}"
    );
}

#[test]
fn ctrl_c_prints_the_summary_and_fails_the_run() {
    let _turn = turn();
    let tmp = TempDir::new("honest-sigint");
    let file = tmp.path().join("slow.bin");
    std::fs::write(&file, vec![3u8; 3_000_000]).unwrap();
    let mut recv = Recv::start(&["-q", "--duration", "60"]);
    // 1 Mbit/s: 3 MB take 24 s at least; interrupted after 1.5 s.
    let relay = Relay::start(&recv.addr, &["--rate", "1"]);
    for signal in ["-INT", "-TERM"] {
        interrupted_send(&relay.addr, &file, signal);
    }
    drop(relay);
    let _ = recv.child.kill();
    recv.finish(Duration::from_secs(10));
}

fn interrupted_send(to: &str, file: &Path, signal: &str) {
    let child = Command::new(bin())
        .args(["send", "--to", to, file.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let t = Instant::now();
    let out = wait_bounded(child, Duration::from_secs(10));
    let err = stderr(&out);
    assert!(t.elapsed() < Duration::from_secs(3), "{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("acked 0, lost 1"), "the summary: {err}");
    assert!(err.contains("path: "), "the path line: {err}");
    assert!(err.contains("not delivered: slow.bin (Abandoned)"), "{err}");
    assert!(err.contains("(interrupted)"), "{signal}: {err}");
}

#[test]
fn a_live_frame_whose_ack_comes_after_its_deadline_counts_delivered() {
    let _turn = turn();
    let mut recv = Recv::start(&["-q", "--duration", "30"]);
    // 100 ms each way: every ACK arrives 150 ms after its frame's 50 ms deadline.
    let relay = Relay::start(&recv.addr, &["--delay", "100"]);
    let out = run(
        &[
            "send",
            "--to",
            &relay.addr,
            "--pattern",
            "--size",
            "64x48",
            "--count",
            "10",
            "--fps",
            "20",
            "--deadline",
            "50",
        ],
        Duration::from_secs(20),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // The first frames pass their 50 ms deadline during the first exchange (a round trip of
    // 200 ms before any DATA may go) and are reported so; every frame sent after it arrives,
    // and its late ACK counts it delivered.
    let acked: u32 = err
        .split("acked ")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(acked >= 5, "{err}");
    assert!(
        err.contains(&format!("acked {acked}, lost {}", 10 - acked)),
        "{err}"
    );
    assert!(err.contains(&format!("{acked} acknowledged late")), "{err}");
    drop(relay);
    let _ = recv.child.kill();
    recv.finish(Duration::from_secs(10));
}

#[test]
fn an_empty_folder_and_a_usage_error_get_one_clear_line_and_exit_1() {
    let tmp = TempDir::new("honest-empty");
    let empty = tmp.path().join("nothing-here");
    std::fs::create_dir(&empty).unwrap();
    let out = run(
        &[
            "send",
            "--to",
            "127.0.0.1:9",
            "--dir",
            empty.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{} is empty (no files to send)", empty.display())),
        "{err}"
    );
    let out = run(
        &["send", "--to", "127.0.0.1:9", "--bogus"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1), "usage error: {}", stderr(&out));
    let out = run(
        &["keygen", tmp.path().to_str().unwrap()],
        Duration::from_secs(10),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is a directory"), "{err}");
    let help = run(&["send", "--help"], Duration::from_secs(10));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Exit codes:") && text.contains("3  the receiver never answered"));
}

#[test]
fn a_message_that_is_not_json_is_refused_at_the_sender() {
    let out = run(
        &["msg", "--to", "127.0.0.1:9", "{\"ok\":1}", "not json"],
        Duration::from_secs(10),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    // Numbered from 0, like the frame ids the sender and the receiver print.
    assert!(err.contains("message 1 is not valid JSON"), "{err}");
}

#[test]
fn an_unkeyed_sender_facing_a_keyed_receiver_is_told_about_the_key() {
    let tmp = TempDir::new("honest-key");
    let key = tmp.path().join("k.key");
    let made = run(&["keygen", key.to_str().unwrap()], Duration::from_secs(10));
    assert!(made.status.success(), "{}", stderr(&made));
    let mut recv = Recv::start(&["--key-file", key.to_str().unwrap(), "--duration", "30"]);
    let file = tmp.path().join("a.bin");
    std::fs::write(&file, vec![1u8; 5000]).unwrap();
    let t = Instant::now();
    let out = run(
        &[
            "send",
            "--to",
            &recv.addr,
            "--timeout",
            "1",
            file.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    let err = stderr(&out);
    // The keyed receiver drops plain datagrams without a word: never heard from.
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("may require --key-file"), "{err}");
    assert!(err.contains("not delivered: a.bin"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let _ = recv.child.kill();
    recv.finish(Duration::from_secs(10));
}
