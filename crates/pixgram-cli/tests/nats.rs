//! Issue 17, NATS: frames from pixgram senders through `recv --publish` into a real
//! nats-server on loopback, and out again through `recv --from-nats` workers. Each test starts
//! its own server (a config file it writes: JetStream on, a chosen max_payload, a free port, a
//! temporary store), bounded in time and killed at the end. Skips with a reason when
//! nats-server is missing (.ci/run installs it from Debian).
#![cfg(feature = "nats")]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::nats_server::{signal, NatsServer};
use support::{bin, run, wait_bounded, Recv, TempDir};

/// `count` files per sender, `s{i}f{j}.bin`, 20-200 KB of bytes distinct per file.
fn frames(dir: &Path, senders: usize, count: usize) -> Vec<Vec<PathBuf>> {
    (0..senders)
        .map(|i| {
            (0..count)
                .map(|j| {
                    let p = dir.join(format!("s{i}f{j}.bin"));
                    let len = 20_000 + (i * 7919 + j * 10_007) % 180_000;
                    let bytes: Vec<u8> = (0..len)
                        .map(|k| {
                            (((k as u64) * 2_654_435_761) >> ((i + j) % 24)) as u8
                                ^ (i * 16 + j) as u8
                        })
                        .collect();
                    std::fs::write(&p, bytes).unwrap();
                    p
                })
                .collect()
        })
        .collect()
}

/// A `recv --from-nats` worker saving into its own folder.
struct Worker {
    child: Child,
    dir: TempDir,
}

impl Worker {
    fn start(url: &str, extra: &[&str]) -> Worker {
        let dir = TempDir::new("nats-worker");
        let mut child = Command::new(bin())
            .args(["recv", "--from-nats", url, "--quiet", "--duration", "90"])
            .args(["--max-saves-per-sec", "0", "--save"])
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn worker");
        // Its first line comes once it is subscribed.
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stderr.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(line.contains("from NATS at"), "worker said: {line}");
        Worker { child, dir }
    }

    fn saved(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path())
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stops it with SIGINT (its summary printed); its stderr.
    fn stop(self) -> String {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let out = wait_bounded(self.child, Duration::from_secs(10));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Sends each sender's files from its own process, all at once; their outputs.
fn send_all(to: &str, files: &[Vec<PathBuf>]) -> Vec<std::process::Output> {
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|fs| {
                s.spawn(move || {
                    let mut args = vec!["send".to_string(), "--to".into(), to.into()];
                    args.extend(fs.iter().map(|p| p.display().to_string()));
                    args.extend(["--timeout".into(), "20".into()]);
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    run(&args, Duration::from_secs(60))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Waits (bounded) until the workers together saved `n` files.
fn wait_saved(workers: &[&Worker], n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while workers.iter().map(|w| w.saved().len()).sum::<usize>() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file the workers saved, by original name (`s1f3.bin`), with the paths it was saved
/// under; each compared byte for byte with its original.
fn saved_by_original(workers: &[Worker], originals: &[Vec<PathBuf>]) -> BTreeMap<String, usize> {
    let by_name: BTreeMap<String, &PathBuf> = originals
        .iter()
        .flatten()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    let mut seen = BTreeMap::new();
    for w in workers {
        for path in w.saved() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // SESSION-STREAM-FRAME-ORIGINAL
            let original = name.splitn(4, '-').nth(3).unwrap_or(&name).to_string();
            let source = by_name
                .get(&original)
                .unwrap_or_else(|| panic!("saved {name}: not a file any sender sent"));
            assert!(
                std::fs::read(&path).unwrap() == std::fs::read(source).unwrap(),
                "{name} differs from {}",
                source.display()
            );
            *seen.entry(original).or_insert(0) += 1;
        }
    }
    seen
}

#[test]
fn four_senders_one_receiver_three_queue_workers_every_frame_once_and_identical() {
    let Some(nats) = NatsServer::start("8MB") else {
        return;
    };
    let tmp = TempDir::new("nats-queue");
    let files = frames(tmp.path(), 4, 12);
    let workers: Vec<Worker> = (0..3)
        .map(|_| Worker::start(&nats.url, &["--queue", "workers"]))
        .collect();
    let mut rx = Recv::start(&["--publish", &nats.url, "--quiet", "--duration", "60"]);
    rx.wait_for_line("publishing on NATS", Duration::from_secs(10));
    for out in send_all(&rx.addr, &files) {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_saved(
        &workers.iter().collect::<Vec<_>>(),
        48,
        Duration::from_secs(30),
    );
    let seen = saved_by_original(&workers, &files);
    assert_eq!(seen.len(), 48, "frames saved: {seen:?}");
    assert!(
        seen.values().all(|&n| n == 1),
        "a frame saved twice: {seen:?}"
    );
    // The queue group spread the work.
    let per_worker: Vec<usize> = workers.iter().map(|w| w.saved().len()).collect();
    assert!(
        per_worker.iter().filter(|&&n| n > 0).count() >= 2,
        "{per_worker:?}"
    );
    let _ = rx.child.kill();
    let (_, _, stderr) = rx.finish(Duration::from_secs(10));
    for w in workers {
        let said = w.stop();
        assert!(said.contains("0 slow-consumer events"), "{said}");
    }
    drop(stderr);
}

#[test]
fn with_jetstream_a_worker_killed_mid_run_loses_nothing() {
    let Some(nats) = NatsServer::start("8MB") else {
        return;
    };
    let tmp = TempDir::new("nats-js");
    let files = frames(tmp.path(), 4, 15);
    let js = [
        "--jetstream",
        "FRAMES",
        "--queue",
        "workers",
        "--ack-wait",
        "1",
    ];
    let mut workers: Vec<Worker> = (0..3).map(|_| Worker::start(&nats.url, &js)).collect();
    let rx = Recv::start(&[
        "--publish",
        &nats.url,
        "--jetstream",
        "FRAMES",
        "--quiet",
        "--duration",
        "60",
    ]);
    let sending = std::thread::scope(|s| {
        let sending = s.spawn(|| send_all(&rx.addr, &files));
        // The first worker freezes mid-run, once it has saved something: what it is handed
        // from then on it never acknowledges. Killed later, it loses all of that; JetStream
        // gives it to the others once --ack-wait passes.
        let deadline = Instant::now() + Duration::from_secs(30);
        while workers[0].saved().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(&workers[0].child, "STOP");
        let sent = sending.join().unwrap();
        let _ = workers[0].child.kill();
        let _ = workers[0].child.wait();
        sent
    });
    for out in sending {
        // Every frame acknowledged to its camera was stored by JetStream first.
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let killed_saved = workers[0].saved().len();
    let deadline = Instant::now() + Duration::from_secs(40);
    while saved_by_original(&workers, &files).len() < 60 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let seen = saved_by_original(&workers, &files);
    let missing: Vec<String> = files
        .iter()
        .flatten()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| !seen.contains_key(n))
        .collect();
    assert!(missing.is_empty(), "lost with JetStream: {missing:?}");
    let again: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("killed worker saved {killed_saved}; {again} frames saved twice (at least once)");
    let lines: Vec<String> = workers.drain(1..).map(Worker::stop).collect();
    drop(rx);
    assert!(lines.iter().all(|l| l.contains("from NATS:")), "{lines:?}");
    let redelivered: u64 = lines
        .iter()
        .filter_map(|l| {
            l.split(" redelivered by JetStream")
                .next()?
                .rsplit(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    eprintln!("the surviving workers got {redelivered} redeliveries");
    // The killed worker held frames it had not acknowledged; they went to the others.
    assert!(redelivered > 0, "{lines:?}");
}

#[test]
fn a_frame_over_max_payload_gets_one_line_naming_the_limit() {
    let Some(nats) = NatsServer::start("100KB") else {
        return;
    };
    let tmp = TempDir::new("nats-max-payload");
    let big = tmp.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 300_000]).unwrap();
    let small = tmp.path().join("small.bin");
    std::fs::write(&small, vec![9u8; 1_000]).unwrap();
    let mut rx = Recv::start(&["--publish", &nats.url, "--quiet", "--count", "4"]);
    rx.wait_for_line("publishing on NATS", Duration::from_secs(10));
    let p = |p: &PathBuf| p.display().to_string();
    let out = run(
        &[
            "send",
            "--to",
            &rx.addr,
            &p(&big),
            &p(&small),
            &p(&big),
            &p(&big),
        ],
        Duration::from_secs(30),
    );
    // The big frames were not taken, and the camera is told so.
    assert!(!out.status.success());
    let (_, _, stderr) = rx.finish(Duration::from_secs(20));
    let limit_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("max_payload of"))
        .collect();
    assert_eq!(limit_lines.len(), 1, "{stderr}");
    assert!(
        limit_lines[0].contains("102400 bytes"),
        "{}",
        limit_lines[0]
    );
    assert!(
        limit_lines[0].contains("raise max_payload"),
        "{}",
        limit_lines[0]
    );
    assert!(
        stderr.contains("nats: published 1 frames")
            && stderr.contains("3 over the server's max_payload"),
        "{stderr}"
    );
}

#[test]
fn a_stalled_server_fills_the_bounded_queue_and_frames_over_it_are_counted() {
    let Some(nats) = NatsServer::start("8MB") else {
        return;
    };
    let tmp = TempDir::new("nats-behind");
    let frame = tmp.path().join("f.bin");
    std::fs::write(&frame, vec![3u8; 500_000]).unwrap();
    let mut rx = Recv::start(&[
        "--publish",
        &nats.url,
        "--nats-queue",
        "4",
        "--quiet",
        "--duration",
        "40",
    ]);
    rx.wait_for_line("publishing on NATS", Duration::from_secs(10));
    // The server stops reading: the client's socket and command queue fill, then ours.
    nats.signal("STOP");
    let out = run(
        &[
            "send",
            "--to",
            &rx.addr,
            &frame.display().to_string(),
            "--loop",
            "100",
            "--timeout",
            "10",
        ],
        Duration::from_secs(30),
    );
    let send_err = String::from_utf8_lossy(&out.stderr).into_owned();
    nats.signal("CONT");
    rx.wait_for_line(
        "not taking frames as fast as they arrive",
        Duration::from_secs(5),
    );
    let _ = Command::new("kill")
        .args(["-INT", &rx.child.id().to_string()])
        .status();
    let (_, _, stderr) = rx.finish(Duration::from_secs(20));
    let line = stderr
        .lines()
        .find(|l| l.starts_with("nats: published"))
        .unwrap_or_else(|| panic!("no nats line: {stderr}"));
    let number = |after: &str| -> u64 {
        line.split(after)
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (published, behind) = (number(" frames and messages"), number(" with NATS behind"));
    assert!(behind > 0, "{line}");
    // Every frame the receiver delivered is either published or counted as behind; the
    // queue never held more than --nats-queue.
    assert_eq!(published + behind, 100, "{line}\n{send_err}");
    assert_eq!(
        stderr
            .matches("not taking frames as fast as they arrive")
            .count(),
        1,
        "{stderr}"
    );
    // The sender was told those frames were not taken.
    assert!(!out.status.success(), "{send_err}");
}

/// examples/nats_worker.py, the ten-line Python worker, gets every frame with its name and
/// size. Runs with the Python that PIXGRAM_NATS_PYTHON names (.ci/run makes a venv with
/// nats-py), else python3 if it has nats-py; skips saying so otherwise.
#[test]
fn the_python_worker_example_gets_every_frame() {
    let python = std::env::var("PIXGRAM_NATS_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_nats = Command::new(&python)
        .args(["-c", "import nats"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_nats {
        eprintln!(
            "SKIPPED: {python} has no nats-py (pip install nats-py, or set PIXGRAM_NATS_PYTHON)"
        );
        return;
    }
    let Some(nats) = NatsServer::start("8MB") else {
        return;
    };
    let tmp = TempDir::new("nats-python");
    let files = frames(tmp.path(), 1, 3);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/nats_worker.py");
    let mut worker = Command::new(&python)
        .arg(&example)
        .arg(&nats.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the Python worker");
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = worker.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(20));
    assert_eq!(
        first.as_deref(),
        Ok("subscribed"),
        "the worker did not subscribe"
    );
    let mut rx = Recv::start(&["--publish", &nats.url, "--quiet", "--count", "3"]);
    rx.wait_for_line("publishing on NATS", Duration::from_secs(10));
    let args: Vec<String> = ["send", "--to", &rx.addr]
        .iter()
        .map(|s| s.to_string())
        .chain(files[0].iter().map(|p| p.display().to_string()))
        .collect();
    let out = run(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = (0..3)
        .filter_map(|_| lines.recv_timeout(Duration::from_secs(10)).ok())
        .collect();
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = rx.finish(Duration::from_secs(10));
    assert_eq!(got.len(), 3, "{got:?}");
    for p in &files[0] {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let size = std::fs::metadata(p).unwrap().len();
        assert!(
            got.iter()
                .any(|l| l.contains(&format!("-{name} {size} bytes"))),
            "{name} ({size} bytes) not in {got:?}"
        );
    }
}

/// With --jetstream the camera's ACK waits for JetStream's: a server that stops answering
/// means the frame is never acknowledged to its camera (core NATS would have queued and
/// acknowledged it), and recv counts it as failed once its acknowledgement is overdue.
#[test]
fn with_jetstream_no_ack_reaches_the_camera_before_the_store_has_the_frame() {
    let Some(nats) = NatsServer::start("8MB") else {
        return;
    };
    let tmp = TempDir::new("nats-js-ack");
    let frame = tmp.path().join("f.bin");
    std::fs::write(&frame, vec![5u8; 50_000]).unwrap();
    let mut rx = Recv::start(&[
        "--publish",
        &nats.url,
        "--jetstream",
        "FRAMES",
        "--quiet",
        "--duration",
        "30",
    ]);
    rx.wait_for_line("publishing on NATS", Duration::from_secs(10));
    nats.signal("STOP");
    let out = run(
        &[
            "send",
            "--to",
            &rx.addr,
            &frame.display().to_string(),
            "--timeout",
            "2",
        ],
        Duration::from_secs(20),
    );
    let send_err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{send_err}");
    assert!(send_err.contains("acked 0"), "{send_err}");
    // The publish gives up after its 5 s acknowledgement timeout (ours or the client's,
    // whichever fires first) and is counted.
    rx.wait_for_line("NATS did not take a frame", Duration::from_secs(15));
    nats.signal("CONT");
    signal(&rx.child, "INT");
    let (_, _, stderr) = rx.finish(Duration::from_secs(20));
    assert!(stderr.contains("nats: published 0 frames"), "{stderr}");
    assert!(stderr.contains(", 1 failed"), "{stderr}");
}

/// JSON messages (`pixgram msg`) go on `pixgram.messages.SENDER.STREAM`, unchanged, and a
/// `--from-nats` consumer of that subject prints them as recv does.
#[test]
fn json_messages_go_on_the_messages_subject() {
    let Some(nats) = NatsServer::start("8MB") else {
        return;
    };
    let mut consumer = Command::new(bin())
        .args([
            "recv",
            "--from-nats",
            &nats.url,
            "--subject",
            "pixgram.messages.>",
        ])
        .args(["--count", "2", "--duration", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn consumer");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(consumer.stderr.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("from NATS at"), "consumer said: {line}");
    let mut rx = Recv::start(&["--publish", &nats.url, "--count", "2"]);
    rx.wait_for_line("publishing on NATS", Duration::from_secs(10));
    let out = run(
        &[
            "msg",
            "--to",
            &rx.addr,
            r#"{"cmd":"start","speed":0.5}"#,
            "[1,2,3]",
        ],
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wait_bounded(consumer, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = support::json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(lines.len(), 2, "{lines:?}");
    let subject = lines[0]["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("pixgram.messages.127-0-0-1-"),
        "{subject}"
    );
    assert_eq!(lines[0]["event"], "message");
    assert_eq!(
        lines[0]["message"],
        serde_json::json!({"cmd":"start","speed":0.5})
    );
    assert_eq!(lines[1]["message"], serde_json::json!([1, 2, 3]));
    assert_eq!(lines[1]["meta"]["kind"], "message");
    let _ = rx.finish(Duration::from_secs(10));
}
