//! What the RTP/JPEG tests share: the real peers (GStreamer, FFmpeg) run bounded in time, free
//! loopback ports, test JPEGs, and checks that saved frames decode.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `tool` runs here; if not, says why the test skips (CI installs it: .ci/run).
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg(if tool == "gst-launch-1.0" {
            "--version"
        } else {
            "-version"
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: {tool} is not installed (.ci/run installs it from Debian)");
    }
    ok
}

/// A loopback port whose next port is free too (RTP and RTCP).
pub fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65535
            && p.is_multiple_of(2)
            && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free pair of loopback ports");
}

/// Starts a peer's command with its output captured.
pub fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

/// Runs `program ARGS` to its end, killed after `limit`; panics with its stderr if it failed.
pub fn run_ok(program: &str, args: &[&str], limit: Duration) {
    let out = super::support::wait_bounded(spawn(program, args), limit);
    assert!(
        out.status.success(),
        "{program} {} failed ({:?}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops a peer that only ends when killed (a receiver), and returns its stderr.
pub fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits up to `limit` until `dir` holds `n` files; returns how many it holds.
pub fn wait_for_files(dir: &Path, n: usize, limit: Duration) -> usize {
    let start = Instant::now();
    loop {
        let count = files(dir).len();
        if count >= n || start.elapsed() > limit {
            return count;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The files of `dir`, in name order.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Checks every file of `dir` decodes as a `w` x `h` JPEG; returns how many.
pub fn all_decode(dir: &Path, w: u32, h: u32) -> usize {
    let f = files(dir);
    for p in &f {
        let bytes = std::fs::read(p).unwrap();
        let img = pixgram::codec::decode(&bytes)
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", p.display()));
        assert_eq!((img.width, img.height), (w, h), "{}", p.display());
    }
    f.len()
}

/// The shared corpus file `name`, if present.
pub fn corpus(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} is missing (the shared corpus)", p.display());
        None
    }
}

/// Writes `n` test-pattern JPEGs RFC 2435 carries (`restart`: a restart marker every so many
/// MCUs) into `dir`, and returns their paths.
pub fn pattern_jpegs(dir: &Path, n: u64, w: u32, h: u32, restart: Option<u16>) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let img = pixgram::pattern::render(w, h, i, "rtp");
            let bytes = pixgram::rtp::encode_for_rtp(&img, 80, restart).unwrap();
            let p = dir.join(format!("frame-{i:03}.jpg"));
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect()
}

/// The GStreamer caps of an RTP/JPEG stream on payload type 26, with `x-dimensions` if given.
pub fn gst_caps(dims: Option<(u32, u32)>) -> String {
    let mut c =
        "application/x-rtp,media=video,clock-rate=90000,encoding-name=JPEG,payload=26".to_string();
    if let Some((w, h)) = dims {
        c.push_str(&format!(",x-dimensions=(string)\"{w},{h}\""));
    }
    c
}
