//! Every reliable frame exactly once through a lossy relay, through the real binaries: many
//! small frames with a wide window at 20% loss both ways (issue 10: frames whose ACKs were
//! lost used to fall out of the receiver's memory and stay stuck until the sender gave up).

mod support;

use std::time::Duration;

use support::{json_lines, run, Recv, Relay, TempDir};

#[test]
fn ten_thousand_small_reliable_frames_through_20_percent_loss_arrive_exactly_once() {
    let tmp = TempDir::new("exactly-once");
    let file = tmp.path().join("f.bin");
    std::fs::write(&file, [42u8; 100]).unwrap();
    let rx = Recv::start(&["--duration", "90"]);
    let relay = Relay::start(&rx.addr, &["--loss", "20", "--seed", "3"]);
    let out = run(
        &[
            "send",
            "--to",
            &relay.addr,
            file.to_str().unwrap(),
            "--loop",
            "10000",
            "--window",
            "64",
            "--timeout",
            "10",
        ],
        Duration::from_secs(80),
    );
    drop(relay);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("acked 10000, lost 0"), "{stderr}");
    let (_, stdout, _) = {
        let mut rx = rx;
        let _ = rx.child.kill();
        rx.finish(Duration::from_secs(5))
    };
    let mut ids: Vec<u64> = json_lines(&stdout)
        .iter()
        .filter(|l| l["event"] == "frame")
        .map(|l| l["frame"].as_u64().unwrap())
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "a frame was delivered twice");
    assert_eq!(ids, (0..10_000).collect::<Vec<u64>>());
}
