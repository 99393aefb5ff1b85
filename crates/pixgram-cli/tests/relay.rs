//! Real loopback UDP through `pixgram impair`: reliable mode keeps every frame byte-identical
//! across loss, delay, jitter and reordering; live mode with FEC keeps frames whole and on time.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{json_lines, run, sample_images, Recv, Relay, TempDir};

/// The heavy tests take turns: each runs three processes, and two at once on a 2-core machine
/// measure the machine, not pixgram.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Corpus images of at most 500 KB (or generated files), `n` frames' worth of `--loop`.
fn images(tmp: &TempDir) -> Vec<PathBuf> {
    sample_images(tmp.path())
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() <= 500_000)
        .collect()
}

#[test]
fn reliable_mode_delivers_200_frames_identical_through_a_bad_link() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = TempDir::new("relay-reliable");
    let save = tmp.path().join("out");
    let files = images(&tmp);
    let repeat = 200usize.div_ceil(files.len());
    let total = files.len() * repeat;
    let rx = Recv::start(&[
        "--save",
        save.to_str().unwrap(),
        "--count",
        &total.to_string(),
        "--duration",
        "100",
    ]);
    let relay = Relay::start(
        &rx.addr,
        &[
            "--loss",
            "10",
            "--delay",
            "20",
            "--jitter",
            "5",
            "--reorder",
            "1",
            "--seed",
            "3",
        ],
    );
    // 8,000-byte datagrams (a jumbo-frame path): a tenth of them are still lost, but the
    // relay, receiver and sender handle 7x fewer, so the test stays quick on a busy machine.
    let mut args = vec![
        "send",
        "--to",
        relay.addr.as_str(),
        "--timeout",
        "10",
        "--datagram-size",
        "8000",
    ];
    let repeat_s = repeat.to_string();
    args.extend(["--loop", &repeat_s]);
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let started = Instant::now();
    let sent = run(&args, Duration::from_secs(100));
    let err = String::from_utf8_lossy(&sent.stderr);
    assert!(sent.status.success(), "send failed: {err}");
    assert!(err.contains("chunks retransmitted"), "{err}");
    let (ok, stdout, stderr) = rx.finish(Duration::from_secs(20));
    assert!(ok, "{stderr}");
    let originals: HashMap<String, Vec<u8>> = files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(p).unwrap())
        })
        .collect();
    let frames: Vec<_> = json_lines(&stdout)
        .into_iter()
        .filter(|l| l["event"] == "frame")
        .collect();
    assert_eq!(frames.len(), total, "{stderr}");
    for f in &frames {
        let name = f["meta"]["file"].as_str().unwrap();
        let got = std::fs::read(f["saved"].as_str().unwrap()).unwrap();
        assert!(got == originals[name], "{name} arrived different");
    }
    println!(
        "{total} frames identical through the relay in {:?}; sender: {}",
        started.elapsed(),
        err.lines().last().unwrap_or("")
    );
}

#[test]
fn live_mode_with_fec_keeps_frames_whole_and_on_time_at_2_percent_loss() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = TempDir::new("relay-live");
    // VGA-sized frames (up to 120 KB), as a live camera stream would send.
    let files: Vec<_> = images(&tmp)
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() <= 120_000)
        .collect();
    let repeat = 150usize.div_ceil(files.len());
    let total = files.len() * repeat;
    let rx = Recv::start(&["--duration", "60", "--count", &total.to_string()]);
    let relay = Relay::start(&rx.addr, &["--loss", "2", "--delay", "5", "--seed", "4"]);
    let repeat_s = repeat.to_string();
    let mut args = vec![
        "send",
        "--to",
        relay.addr.as_str(),
        "--mode",
        "live",
        "--fps",
        "30",
        "--fec",
        "10",
        "--loop",
        &repeat_s,
    ];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let sent = run(&args, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&sent.stderr);
    assert!(sent.status.success(), "send failed: {err}");
    drop(relay);
    // The receiver stops at --count, or is told to stop once the sender is done.
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &rx.child.id().to_string()])
        .status();
    let (_, stdout, stderr) = rx.finish(Duration::from_secs(10));
    let lines = json_lines(&stdout);
    let whole = lines.iter().filter(|l| l["event"] == "frame").count();
    println!("live: {whole} of {total} frames whole and on time; {stderr}");
    assert!(
        whole * 100 >= total * 99,
        "only {whole} of {total} frames whole: {stderr}"
    );
    // Every frame delivered was delivered before its deadline: the receiver drops late ones
    // and reports them as expired, so late frames show up here and not as frames.
    assert!(stderr.contains("frames completed from parity"), "{stderr}");
}

#[test]
fn a_live_sender_below_its_stream_rate_says_what_it_dropped() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = TempDir::new("relay-live-slow");
    // The largest sample image, 30 fps, through 1 Mbit/s: far more than the path carries.
    let file = images(&tmp)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let rx = Recv::start(&["--duration", "30"]);
    let relay = Relay::start(&rx.addr, &["--rate", "1"]);
    let name = file.display().to_string();
    let sent = run(
        &[
            "send",
            "--to",
            &relay.addr,
            "--mode",
            "live",
            "--fps",
            "30",
            "--loop",
            "15",
            &name,
        ],
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&sent.stderr);
    // The summary says what became of the frames it could not deliver: dropped at the
    // sender for their deadline (counted), not left to queue past it.
    let live = err
        .lines()
        .find(|l| l.starts_with("live: "))
        .unwrap_or_else(|| panic!("no live line: {err}"));
    let dropped: u64 = live["live: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{live}"));
    assert!(dropped > 0, "{live}");
    assert!(live.contains("frames dropped for their deadline"), "{live}");
}

#[test]
fn bad_impairment_flags_get_one_clear_line() {
    for (flags, needle) in [
        (vec!["--loss", "150"], "--loss is a percentage"),
        (vec!["--burst", "1,2"], "--burst takes three"),
        (vec!["--delay=-4"], "--delay is in milliseconds"),
        // Rounds to 0 bytes/s, which the model took as no limit at all.
        (
            vec!["--rate", "0.000001"],
            "--rate is in Mbit/s, from 0.001",
        ),
        (vec!["--rate", "nan"], "--rate is in Mbit/s"),
    ] {
        let mut args = vec!["impair", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9"];
        args.extend(flags);
        let out = run(&args, Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}
