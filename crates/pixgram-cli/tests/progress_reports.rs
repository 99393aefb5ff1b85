//! `pixgram recv` reads datagrams in batches (`recvmmsg` of GRO runs) and answers a batch's
//! chunks of one frame with one progress report, not one per 16 chunks all sent at once: at
//! `--datagram-size 1200` those were 17 replies per 300 kB frame, and each reply's `sendmsg`
//! cost the receiver as much as the frame's own datagrams (3.9 against 2.6 GB/s after).

mod support;

use std::time::Duration;

use support::{json_lines, run, Recv, TempDir};

#[test]
fn chunks_read_together_earn_one_progress_report() {
    let tmp = TempDir::new("progress");
    let file = tmp.path().join("frame.bin");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&file, bytes).unwrap();
    let rx = Recv::start(&["--count", "20", "--duration", "30"]);
    let out = run(
        &[
            "send",
            "--to",
            &rx.addr,
            "--loop",
            "20",
            "--datagram-size",
            "1200",
            file.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, stdout, _) = rx.finish(Duration::from_secs(30));
    let st = json_lines(&stdout)
        .into_iter()
        .find(|l| l["event"] == "stats")
        .expect("recv prints a stats line");
    let count = |k: &str| st[k].as_u64().unwrap_or_else(|| panic!("no {k}: {st}"));
    let (sent, coalesced) = (
        count("progress_reports_sent"),
        count("progress_reports_coalesced"),
    );
    // 20 frames of 261 chunks: about 320 reports fall due, one per 16 chunks.
    assert!(coalesced > 0, "{st}");
    assert!(sent + coalesced >= 200, "{st}");
    assert!(sent < 320, "{st}");
    assert_eq!(count("frames_delivered"), 20, "{st}");
}
