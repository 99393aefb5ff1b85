//! `pixgram hub` and `pixgram recv --from` through the real binary on loopback: two
//! subscribers get byte-identical frames and the messages, a subscriber that vanishes is
//! dropped at its keepalive timeout, a full hub refuses in one line.

mod support;

use std::time::Duration;

use support::{run, sample_images, Recv, TempDir};

fn hub(extra: &[&str]) -> Recv {
    let mut args = vec!["hub", "--listen", "127.0.0.1:0", "-q"];
    args.extend_from_slice(extra);
    Recv::start_with(&args, "hub listening on ")
}

fn subscriber(hub: &str, extra: &[&str]) -> Recv {
    let mut args = vec!["recv", "--from", hub];
    args.extend_from_slice(extra);
    Recv::start_with(&args, "subscribed: the hub holds this subscriber")
}

/// Files in `dir`, with the frame-naming prefix (session-stream-id-) stripped, and bytes.
fn saved(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let bare = name.splitn(4, '-').nth(3).unwrap_or(&name).to_string();
                    (bare, std::fs::read(e.path()).unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn two_subscribers_get_every_frame_byte_identical_and_the_messages() {
    let tmp = TempDir::new("hub-two");
    let images = sample_images(tmp.path());
    let n = images.len();
    let h = hub(&["--duration", "8"]);
    let (every, latest) = (tmp.path().join("every"), tmp.path().join("latest"));
    let count = (n + 1).to_string();
    let a = subscriber(
        &h.addr,
        &["--save", every.to_str().unwrap(), "--count", &count],
    );
    let b = subscriber(
        &h.addr,
        &[
            "--latest",
            "--save",
            latest.to_str().unwrap(),
            "-q",
            "--duration",
            "6",
        ],
    );
    // Filters: one that matches no stream (no sender at 10.x), one that matches every one.
    let none = subscriber(&h.addr, &["--stream", "10.", "-q", "--duration", "6"]);
    let all = subscriber(
        &h.addr,
        &[
            "--stream",
            "10.",
            "--stream",
            "127.0.0.1_",
            "-q",
            "--duration",
            "6",
        ],
    );
    let mut args = vec!["send", "--to", h.addr.as_str()];
    args.extend(images.iter().map(|p| p.to_str().unwrap()));
    let sent = run(&args, Duration::from_secs(20));
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let msg = run(
        &["msg", "--to", &h.addr, r#"{"hello":"subscribers"}"#],
        Duration::from_secs(10),
    );
    assert!(
        msg.status.success(),
        "{}",
        String::from_utf8_lossy(&msg.stderr)
    );
    let (ok, stdout, stderr) = a.finish(Duration::from_secs(20));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("subscribers"),
        "the message reached the subscriber: {stdout}"
    );
    let mut want: Vec<(String, Vec<u8>)> = images
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(p).unwrap(),
            )
        })
        .collect();
    want.sort();
    let got = saved(&every);
    assert_eq!(got.len(), n, "{stderr}");
    assert!(got == want, "every frame byte-identical");
    // The latest-frame subscriber: whole frames only, each identical to one sent.
    let (ok, _, stderr) = b.finish(Duration::from_secs(20));
    assert!(ok, "{stderr}");
    let got = saved(&latest);
    assert!(!got.is_empty(), "{stderr}");
    for g in &got {
        assert!(want.contains(g), "{} is not a frame that was sent", g.0);
    }
    let (_, _, stderr) = none.finish(Duration::from_secs(20));
    assert!(stderr.contains("received 0 frames"), "{stderr}");
    let (_, _, stderr) = all.finish(Duration::from_secs(20));
    assert!(stderr.contains(&format!("received {n} frames")), "{stderr}");
    let (ok, _, hub_err) = h.finish(Duration::from_secs(10));
    assert!(ok, "{hub_err}");
    assert!(
        hub_err.contains("4 started, 4 ended by UNSUBSCRIBE"),
        "{hub_err}"
    );
}

#[test]
fn a_vanished_subscriber_is_dropped_at_its_keepalive_timeout_and_a_full_hub_refuses() {
    let h = hub(&[
        "--duration",
        "5",
        "--keepalive-timeout",
        "1",
        "--max-subscribers",
        "1",
    ]);
    let mut gone = subscriber(&h.addr, &["-q", "--duration", "30"]);
    // A second subscriber finds no place.
    let full = run(
        &["recv", "--from", &h.addr, "-q", "--duration", "10"],
        Duration::from_secs(15),
    );
    let err = String::from_utf8_lossy(&full.stderr);
    assert!(!full.status.success(), "{err}");
    assert!(err.contains("is full"), "{err}");
    gone.child.kill().unwrap(); // SIGKILL: no UNSUBSCRIBE
    let (_, _, hub_err) = h.finish(Duration::from_secs(15));
    assert!(hub_err.contains("1 expired (no KEEPALIVE)"), "{hub_err}");
    assert!(hub_err.contains("1 refused (full"), "{hub_err}");
    assert!(hub_err.contains("ended: Expired"), "{hub_err}");
}

#[test]
fn a_keyed_hub_serves_subscribers_with_the_key_and_never_a_frame_to_one_without() {
    let tmp = TempDir::new("hub-key");
    let keys = tmp.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let (key, other) = (keys.join("key"), keys.join("other"));
    for k in [&key, &other] {
        let out = run(&["keygen", k.to_str().unwrap()], Duration::from_secs(10));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (key, other) = (key.to_str().unwrap(), other.to_str().unwrap());
    let h = hub(&["--duration", "6", "--key-file", key]);
    let (good, bad) = (tmp.path().join("good"), tmp.path().join("bad"));
    let a = subscriber(
        &h.addr,
        &[
            "--key-file",
            key,
            "--save",
            good.to_str().unwrap(),
            "-q",
            "--count",
            "2",
        ],
    );
    let b = subscriber(
        &h.addr,
        &[
            "--key-file",
            other,
            "--save",
            bad.to_str().unwrap(),
            "-q",
            "--duration",
            "4",
        ],
    );
    let image = tmp.path().join("one.bin");
    std::fs::write(&image, vec![42u8; 300_000]).unwrap();
    let mut args = vec!["send", "--to", h.addr.as_str(), "--key-file", key];
    args.extend([image.to_str().unwrap(); 2]);
    let sent = run(&args, Duration::from_secs(15));
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let (ok, _, stderr) = a.finish(Duration::from_secs(10));
    assert!(ok, "{stderr}");
    let got = saved(&good);
    assert_eq!(got.len(), 2, "{stderr}");
    assert!(got.iter().all(|(_, b)| b == &vec![42u8; 300_000]));
    let (_, _, stderr) = b.finish(Duration::from_secs(10));
    assert!(
        saved(&bad).is_empty(),
        "a subscriber without the key got a frame: {stderr}"
    );
    assert!(stderr.contains("received 0 frames"), "{stderr}");
    let (_, _, hub_err) = h.finish(Duration::from_secs(10));
    // What went to the keyless subscriber: HELLOs only, a few kB at most.
    let line = hub_err
        .lines()
        .find(|l| l.starts_with("subscriber ") && l.contains(" 0 acknowledged"))
        .unwrap_or_else(|| panic!("{hub_err}"));
    assert!(line.contains("0.0 MB"), "{line}");
}
