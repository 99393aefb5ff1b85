//! `pixgram recv --window` under a virtual X display (Xvfb): a window opens and the frames of
//! the test pattern are drawn in it. Built only with `--features window`; skipped with a
//! printed reason when xvfb-run is missing.
#![cfg(feature = "window")]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{bin, run, wait_bounded};

#[test]
fn frames_are_drawn_in_a_window() {
    if Command::new("xvfb-run").arg("--help").output().is_err() {
        eprintln!("SKIPPED: xvfb-run is not installed (apt-get install xvfb xauth)");
        return;
    }
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let rx = Command::new("xvfb-run")
        .args([
            "-a",
            bin(),
            "recv",
            "--listen",
            &addr,
            "--window",
            "--count",
            "20",
        ])
        .args(["--duration", "30", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let sent = run(
        &[
            "send",
            "--to",
            &addr,
            "--pattern",
            "--size",
            "320x240",
            "--count",
            "20",
        ],
        Duration::from_secs(30),
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let out = wait_bounded(rx, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("cannot open a window"), "{err}");
    let shown: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("window: "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no window line: {err}"));
    assert!(shown > 0, "{err}");
}
