//! How `pixgram recv` ends: a closed stdout (`| head`, a player that quit) and SIGTERM/SIGINT
//! end it quietly with its summary; a --save folder it cannot write fails at start.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{bin, run, wait_bounded, Recv, TempDir};

const LIMIT: Duration = Duration::from_secs(30);

/// `pixgram recv --listen 127.0.0.1:0 EXTRA` with stdout a pipe whose reading end is closed
/// at once; returns the child and the address from its "listening on" line (stderr is read
/// to the end by a thread, returned on join).
fn recv_with_closed_stdout(extra: &[&str]) -> (Child, String, std::thread::JoinHandle<String>) {
    let mut child = Command::new(bin())
        .args(["recv", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pixgram recv");
    drop(child.stdout.take()); // the reader goes away
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("listening on ") {
                let _ = tx.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("recv never said where it listens");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split([';', ',']).next())
        .unwrap()
        .to_string();
    (child, addr, reader)
}

fn assert_quiet_end(child: Child, stderr: std::thread::JoinHandle<String>, started: Instant) {
    let out = wait_bounded(child, LIMIT);
    let stderr = stderr.join().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {stderr}",
        out.status.code()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(stderr.contains("received "), "no summary: {stderr}");
    assert!(started.elapsed() < LIMIT, "recv did not end by itself");
}

#[test]
fn closed_stdout_with_no_traffic_still_ends_cleanly() {
    // `recv --duration 1 | head -c 0`: the closing stats line used to panic.
    let start = Instant::now();
    let (child, _addr, stderr) = recv_with_closed_stdout(&["--duration", "1"]);
    assert_quiet_end(child, stderr, start);
}

#[test]
fn closed_stdout_ends_recv_at_the_next_line() {
    // --duration 25: recv must end on its own, well before, when its first line fails.
    let start = Instant::now();
    let (child, addr, stderr) = recv_with_closed_stdout(&["--duration", "25"]);
    let sent = run(&["msg", "--to", &addr, r#"{"cmd":"start"}"#], LIMIT);
    // Its JSON line was the only sink and nobody reads it: the message is not acknowledged
    // (an ACK means the sink has it), and the sender says so.
    let said = String::from_utf8_lossy(&sent.stderr);
    assert!(!sent.status.success(), "{said}");
    assert!(said.contains("not acknowledged"), "{said}");
    assert_quiet_end(child, stderr, start);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn closed_stdout_ends_the_mjpeg_sink() {
    // `recv --stdout | ffplay -` when the player quits.
    let tmp = TempDir::new("mjpeg-closed");
    let jpeg = tmp.path().join("x.jpg");
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend(std::iter::repeat_n(0x55, 70_000));
    bytes.extend([0xFF, 0xD9]);
    std::fs::write(&jpeg, &bytes).unwrap();
    let start = Instant::now();
    let (child, addr, stderr) = recv_with_closed_stdout(&["--stdout", "--duration", "25"]);
    // The second frame's write certainly meets the closed pipe; recv may be gone by then.
    let _ = run(
        &[
            "send",
            "--to",
            &addr,
            "--timeout",
            "3",
            jpeg.to_str().unwrap(),
            jpeg.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_quiet_end(child, stderr, start);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

fn signal(child: &Child, name: &str) {
    let st = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success());
}

fn stops_with_summary_on(sig: &str, extra: &[&str]) {
    let mut recv = Recv::start(extra);
    let sent = run(&["msg", "--to", &recv.addr, "[1,2,3]"], LIMIT);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    recv.wait_for_line("started session", Duration::from_secs(10));
    signal(&recv.child, sig);
    let start = Instant::now();
    let (ok, stdout, stderr) = recv.finish(LIMIT);
    assert!(ok, "SIG{sig}: recv failed: {stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        stderr.contains("received ") && stderr.contains("limits: "),
        "{stderr}"
    );
    assert!(stdout.contains(r#""event":"message""#), "{stdout}");
    assert!(stdout.contains(r#""event":"stats""#), "{stdout}");
}

#[test]
fn sigterm_prints_the_summary_and_stats() {
    // `--duration inf` is no limit (it used to overflow `Instant` and panic).
    stops_with_summary_on("TERM", &["--duration", "inf"]);
}

#[test]
fn sigint_prints_the_summary_and_stats() {
    stops_with_summary_on("INT", &["--duration", "1e30"]);
}

fn assert_fails_at_start(save: &str, needle: &str) {
    let out = run(
        &[
            "recv",
            "--listen",
            "127.0.0.1:0",
            "--save",
            save,
            "--duration",
            "5",
        ],
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("pixgram: error: "), "{stderr}");
    assert!(lines[0].contains(needle), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[test]
fn an_unwritable_save_folder_fails_at_start_in_one_line() {
    // Root may write anywhere permissions allow nothing; /proc takes no new folders at all,
    // and a file is not a folder.
    assert_fails_at_start(
        "/proc/pixgram-test",
        "cannot save into /proc/pixgram-test: ",
    );
    let tmp = TempDir::new("save-file");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let f = file.to_str().unwrap();
    assert_fails_at_start(f, &format!("cannot save into {f}: not a folder"));
    assert_fails_at_start(
        &format!("{f}/sub"),
        &format!("cannot save into {f}/sub: not a folder"),
    );
    // The same check for --compat seed.
    let out = run(
        &[
            "recv",
            "--compat",
            "seed",
            "--listen",
            "127.0.0.1:0",
            "--save",
            f,
            "--duration",
            "5",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("cannot save into {f}: not a folder")));
}

/// `pixgram recv 2>&1 | head -1`: once the reader of stderr is gone, its lines are dropped;
/// recv ends at --duration with exit 0, not a panic (exit 101) on the next line.
#[test]
fn closed_stderr_ends_nothing() {
    let mut child = Command::new(bin())
        .args(["recv", "--listen", "127.0.0.1:0", "--duration", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pixgram recv");
    drop(child.stderr.take()); // the reader goes away before the first line
    let out = wait_bounded(child, LIMIT);
    assert_eq!(out.status.code(), Some(0), "{:?}", out.status);
}
