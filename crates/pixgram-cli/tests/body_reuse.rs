//! `pixgram recv` reassembles frames into bodies it delivered before: once the first frames
//! are through, a stream of 300 kB frames costs the receiver almost no page faults. Before,
//! every frame was a fresh allocation whose pages the kernel faulted in as its chunks were
//! copied: 27 minor faults per frame (83,000 for 3,000 1080p JPEGs; 17% of a keyed receiver's
//! time).

mod support;

use std::time::Duration;

use support::{run, Recv, TempDir};

/// Minor page faults of process `pid` so far (field 10 of /proc/PID/stat).
fn minor_faults(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, minflt field 10.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(7)?.parse().ok()
}

fn send(addr: &str, file: &str, frames: usize) {
    let n = frames.to_string();
    let out = run(
        &["send", "--to", addr, "--loop", &n, file],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_stream_of_large_frames_reuses_the_bodies_it_delivered() {
    let tmp = TempDir::new("body-reuse");
    let file = tmp.path().join("frame.bin");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, bytes).unwrap();
    let file = file.to_str().unwrap();
    let (warm, measured) = (200, 1000);
    let mut rx = Recv::start(&["--count", "100000", "-q"]);
    let pid = rx.child.id();
    let Some(_) = minor_faults(pid) else {
        println!("SKIPPED: no /proc/PID/stat (not Linux?)");
        let _ = rx.child.kill();
        return;
    };
    // Warm-up: the first frames allocate what the stream needs.
    send(&rx.addr, file, warm);
    let before = minor_faults(pid).unwrap();
    send(&rx.addr, file, measured);
    let after = minor_faults(pid).unwrap();
    let _ = rx.child.kill();
    let _ = rx.child.wait();
    let per_frame = (after - before) as f64 / measured as f64;
    println!(
        "{} minor faults over {measured} frames of 300 kB: {per_frame:.2} per frame",
        after - before
    );
    assert!(
        per_frame <= 3.0,
        "{per_frame:.2} page faults per frame: bodies are not reused"
    );
}
