//! `pixgram hub --publish nats://...` (issue 17): a hub serves its subscribers and publishes
//! every frame into NATS like `recv --publish`, from the one receive loop. Frames sent into
//! the hub arrive at a hub subscriber and at a `recv --from-nats` consumer, byte-identical,
//! under the camera's name. Starts its own nats-server on loopback; skips with a reason when
//! nats-server is missing (.ci/run installs it from Debian).
#![cfg(feature = "nats")]

mod support;

use std::path::Path;
use std::time::Duration;

use support::nats_server::{signal, NatsServer};
use support::{run, sample_images, Recv, TempDir};

/// Files in `dir` by the name they were sent under (the session-stream-frame- prefix that
/// recv's folder sink adds stripped), with their bytes, sorted.
fn saved(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
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

/// Sends the sample images into a hub publishing on NATS (`publish_flags` after
/// `--publish URL`) and checks that a subscriber and a NATS consumer both got every one of
/// them byte-identical; the hub's summary.
fn frames_reach_a_subscriber_and_nats(nats: &NatsServer, publish_flags: &[&str]) -> String {
    let tmp = TempDir::new("hub-nats");
    let images = sample_images(tmp.path());
    let n = images.len();
    let count = n.to_string();
    let (from_hub, from_nats) = (tmp.path().join("hub"), tmp.path().join("nats"));
    let consumer = Recv::start_with(
        &[
            "recv",
            "--from-nats",
            &nats.url,
            "--subject",
            "pixgram.frames.>",
            "--save",
            from_nats.to_str().unwrap(),
            "--max-saves-per-sec",
            "0",
            "--count",
            &count,
            "--duration",
            "30",
            "-q",
        ],
        "from NATS at",
    );
    let mut hub_args = vec![
        "hub",
        "--listen",
        "127.0.0.1:0",
        "-q",
        "--duration",
        "60",
        "--publish",
        &nats.url,
    ];
    hub_args.extend_from_slice(publish_flags);
    let mut hub = Recv::start_with(&hub_args, "hub listening on ");
    hub.wait_for_line("publishing on NATS", Duration::from_secs(10));
    let subscriber = Recv::start_with(
        &[
            "recv",
            "--from",
            &hub.addr,
            "--save",
            from_hub.to_str().unwrap(),
            "--max-saves-per-sec",
            "0",
            "--count",
            &count,
            "--duration",
            "30",
            "-q",
        ],
        "subscribed: the hub holds this subscriber",
    );
    let mut args = vec!["send", "--to", hub.addr.as_str()];
    args.extend(images.iter().map(|p| p.to_str().unwrap()));
    let sent = run(&args, Duration::from_secs(30));
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
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
    let (ok, _, sub_err) = subscriber.finish(Duration::from_secs(40));
    assert!(ok, "{sub_err}");
    let got = saved(&from_hub);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got.len(), n, "from the hub: {names:?}; {sub_err}");
    assert!(got == want, "the subscriber's frames are byte-identical");
    let (ok, _, nats_err) = consumer.finish(Duration::from_secs(40));
    assert!(ok, "{nats_err}");
    let got = saved(&from_nats);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got.len(), n, "from NATS: {names:?}; {nats_err}");
    assert!(got == want, "the frames on NATS are byte-identical");
    // Ctrl-C: the hub stops, flushes NATS and prints its summaries.
    signal(&hub.child, "INT");
    let (ok, _, hub_err) = hub.finish(Duration::from_secs(30));
    assert!(ok, "{hub_err}");
    assert!(
        hub_err.contains(&format!("nats: published {n} frames and messages")),
        "{hub_err}"
    );
    assert!(
        hub_err.contains(" 0 with NATS behind") && hub_err.contains(" 0 failed"),
        "{hub_err}"
    );
    hub_err
}

#[test]
fn a_hub_publishing_on_nats_serves_its_subscriber_and_nats_the_same_frames() {
    let Some(nats) = NatsServer::start("8MB") else {
        return;
    };
    frames_reach_a_subscriber_and_nats(&nats, &[]);
}

#[test]
fn a_hub_publishing_into_jetstream_serves_its_subscriber_and_the_stream_the_same_frames() {
    let Some(nats) = NatsServer::start("8MB") else {
        return;
    };
    let hub_err = frames_reach_a_subscriber_and_nats(&nats, &["--jetstream", "HUBFRAMES"]);
    assert!(
        hub_err.contains("each stored by JetStream stream HUBFRAMES"),
        "{hub_err}"
    );
}
