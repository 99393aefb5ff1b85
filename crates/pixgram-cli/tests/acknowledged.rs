//! An acknowledgement means the sink has the frame: through the real binary on loopback, a
//! frame whose save fails is not acknowledged, the sender is told, and the receiver says so
//! once and keeps serving.

mod support;

use std::time::Duration;

use support::{json_lines, run, Recv, TempDir};

#[test]
fn a_frame_that_cannot_be_saved_is_reported_not_delivered_and_recv_carries_on() {
    let tmp = TempDir::new("ack-save");
    let save = tmp.path().join("out");
    let mut rx = Recv::start(&["--save", save.to_str().unwrap(), "--duration", "20", "-q"]);
    let good = tmp.path().join("good.bin");
    std::fs::write(&good, vec![7u8; 50_000]).unwrap();
    // One frame saved for real: the folder works.
    let out = run(
        &["send", "--to", &rx.addr, good.to_str().unwrap()],
        Duration::from_secs(15),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Then the folder goes away and a file takes its name: every save now fails.
    std::fs::remove_dir_all(&save).unwrap();
    std::fs::write(&save, b"not a folder").unwrap();
    let out = run(
        &["send", "--to", &rx.addr, good.to_str().unwrap()],
        Duration::from_secs(15),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "send claimed delivery: {stderr}");
    assert!(stderr.contains("acked 0"), "{stderr}");
    let line = rx.wait_for_line("cannot save into", Duration::from_secs(5));
    assert!(line.contains(save.to_str().unwrap()), "{line}");
    // recv is still serving: the folder comes back and the next frame is saved.
    std::fs::remove_file(&save).unwrap();
    std::fs::create_dir(&save).unwrap();
    let out = run(
        &["send", "--to", &rx.addr, good.to_str().unwrap()],
        Duration::from_secs(15),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&save).unwrap().count(), 1);
    let _ = rx.child.kill();
    let (_, _, stderr) = rx.finish(Duration::from_secs(5));
    assert_eq!(
        stderr.matches("cannot save into").count(),
        1,
        "said once: {stderr}"
    );
}

/// Issue 13: on the saver pool (the default) and on the receive loop (`--save-threads 0`),
/// every frame the sender counts delivered is in its file, each JSON line names the file, and
/// the savers say what they did.
#[test]
fn frames_saved_off_the_receive_loop_are_all_in_their_files_when_acknowledged() {
    let tmp = TempDir::new("ack-savers");
    let file = tmp.path().join("photo.bin");
    let bytes: Vec<u8> = (0..120_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    for threads in ["4", "0"] {
        let save = tmp.path().join(format!("out-{threads}"));
        let s = save.to_str().unwrap();
        let rx = Recv::start(&["--save", s, "--save-threads", threads, "--count", "40"]);
        let out = run(
            &[
                "send",
                "--to",
                &rx.addr,
                "--loop",
                "40",
                file.to_str().unwrap(),
            ],
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("acked 40, lost 0"), "{stderr}");
        let (ok, stdout, rx_err) = rx.finish(Duration::from_secs(15));
        assert!(ok, "{rx_err}");
        let lines = json_lines(&stdout);
        let saved: Vec<&str> = lines.iter().filter_map(|l| l["saved"].as_str()).collect();
        assert_eq!(saved.len(), 40, "{stdout}");
        for path in saved {
            assert_eq!(std::fs::read(path).unwrap(), bytes, "{path}");
        }
        assert_eq!(std::fs::read_dir(&save).unwrap().count(), 40);
        let pooled = rx_err.contains("savers: 40 files saved, 0 failed");
        assert_eq!(pooled, threads != "0", "{rx_err}");
    }
}
