//! The live sinks of `pixgram recv`: the browser viewer in real headless Chromium (the page
//! loads, the image changes, the figures move), its MJPEG endpoint, and MJPEG on stdout.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{bin, run, sample_images, wait_bounded, Recv, TempDir};

fn jpegs(tmp: &TempDir) -> Vec<PathBuf> {
    let found: Vec<PathBuf> = sample_images(tmp.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .filter(|p| std::fs::metadata(p).unwrap().len() <= 500_000)
        .collect();
    assert!(
        found.len() >= 2,
        "these tests need the corpus JPEGs in ../shared/corpus"
    );
    found
}

/// GET `path`; returns the body.
fn get(addr: &str, path: &str) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let at = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    all.split_off(at)
}

/// Where `recv --http` says its viewer is.
fn viewer_addr(rx: &mut Recv) -> String {
    let line = rx.wait_for_line("viewer on http://", Duration::from_secs(10));
    line.split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string()
}

/// The status code of `GET path` sent to `addr` with `Host: host` (0: no answer in 5 s).
fn status(addr: &str, path: &str, host: &str) -> u16 {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut all = Vec::new();
    let _ = c.read_to_end(&mut all);
    String::from_utf8_lossy(&all)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn stats(addr: &str) -> serde_json::Value {
    serde_json::from_slice(&get(addr, "/stats.json")).unwrap()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn screenshot(browser: &str, url: &str, path: &std::path::Path) -> Vec<u8> {
    let out = wait_bounded(
        Command::new(browser)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=900,700",
                "--virtual-time-budget=1500",
            ])
            .arg(format!("--screenshot={}", path.display()))
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    );
    assert!(
        path.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(path).unwrap()
}

#[test]
fn the_browser_viewer_shows_live_frames_and_moving_figures() {
    let tmp = TempDir::new("viewer");
    let files = jpegs(&tmp);
    let save = tmp.path().join("saved");
    let mut rx = Recv::start(&[
        "--http",
        "127.0.0.1:0",
        "--save",
        save.to_str().unwrap(),
        "--duration",
        "60",
        "--quiet",
    ]);
    let http = viewer_addr(&mut rx);
    let page = String::from_utf8(get(&http, "/")).unwrap();
    assert!(page.contains("/stats.json"), "{page}");

    let mut args = vec![
        "send".to_string(),
        "--to".into(),
        rx.addr.clone(),
        "--mode".into(),
        "live".into(),
        "--fps".into(),
        "8".into(),
        "--loop".into(),
        "40".into(),
    ];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let mut sender = Command::new(bin())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while stats(&http)["streams"].as_array().unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no stream appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = stats(&http);
    let key = before["streams"][0]["key"].as_str().unwrap().to_string();

    // The MJPEG endpoint: two parts, each a JPEG.
    let mut c = TcpStream::connect(&http).unwrap();
    write!(c, "GET /stream/{key}.mjpg HTTP/1.1\r\nHost: {http}\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while got.windows(14).filter(|w| w == b"--pixgramframe").count() < 3 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended");
        got.extend_from_slice(&buf[..n]);
    }
    drop(c);
    assert!(String::from_utf8_lossy(&got[..200]).contains("multipart/x-mixed-replace"));

    match chromium() {
        None => eprintln!("SKIPPED the headless browser part: chromium is not installed"),
        Some(browser) => {
            let url = format!("http://{http}/");
            let a = screenshot(browser, &url, &tmp.path().join("a.png"));
            std::thread::sleep(Duration::from_millis(1500));
            let b = screenshot(browser, &url, &tmp.path().join("b.png"));
            assert_ne!(a, b, "the page did not change between two screenshots");
            let dom = wait_bounded(
                Command::new(browser)
                    .args([
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--virtual-time-budget=1500",
                        "--dump-dom",
                        &url,
                    ])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
                Duration::from_secs(60),
            );
            let dom = String::from_utf8_lossy(&dom.stdout);
            assert!(dom.contains(&format!("stream-{key}")), "{dom}");
            assert!(dom.contains(" fps | "), "the figures are not shown: {dom}");
        }
    }
    let after = stats(&http);
    let frames = |s: &serde_json::Value| s["streams"][0]["frames"].as_u64().unwrap();
    assert!(
        frames(&after) > frames(&before),
        "figures did not move: {before} then {after}"
    );
    assert!(after["streams"][0]["fps"].as_f64().unwrap() > 0.0);
    let _ = sender.kill();
    let _ = sender.wait();
    let _ = Command::new("kill")
        .args(["-INT", &rx.child.id().to_string()])
        .status();
    let (_, _, stderr) = rx.finish(Duration::from_secs(10));
    assert!(stderr.contains("received"), "{stderr}");
    // The viewer combines with --save: the frames shown were saved too.
    assert!(std::fs::read_dir(&save).unwrap().count() > 0);
}

#[test]
fn stdout_carries_the_frames_as_mjpeg() {
    let tmp = TempDir::new("stdout");
    let files = jpegs(&tmp);
    let rx = Recv::start(&[
        "--stdout",
        "--count",
        &files.len().to_string(),
        "--duration",
        "30",
    ]);
    let mut args = vec!["send", "--to", rx.addr.as_str(), "--window", "1"];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let sent = run(&args, Duration::from_secs(30));
    assert!(sent.status.success());
    let (ok, stdout, stderr) = rx.finish_bytes(Duration::from_secs(10));
    assert!(ok, "{stderr}");
    let expected: Vec<u8> = files
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(
        stdout == expected,
        "stdout is not the frames, in order, back to back"
    );
    assert!(
        stderr.contains("\"event\":\"frame\""),
        "JSON lines belong on stderr: {stderr}"
    );
}

#[test]
fn the_viewer_serves_only_its_own_hosts_and_survives_clients_that_leave() {
    let mut rx = Recv::start(&[
        "--http",
        "127.0.0.1:0",
        "--http-allow-host",
        "cam.local",
        "--duration",
        "30",
        "--quiet",
    ]);
    let http = viewer_addr(&mut rx);
    let port = http.rsplit(':').next().unwrap();
    // DNS rebinding: a page of another origin would send its own name.
    assert_eq!(status(&http, "/stats.json", "evil.example"), 403);
    assert_eq!(status(&http, "/", &format!("evil.example:{port}")), 403);
    assert_eq!(status(&http, "/", "other.local"), 403);
    assert_eq!(status(&http, "/", &http), 200);
    assert_eq!(status(&http, "/", &format!("localhost:{port}")), 200);
    assert_eq!(
        status(&http, "/stats.json", &format!("cam.local:{port}")),
        200
    );
    // More clients than slots ask for a stream that does not exist and leave unread.
    assert_eq!(status(&http, "/stream/nosuchkey.mjpg", &http), 404);
    for _ in 0..40 {
        let mut c = TcpStream::connect(&http).unwrap();
        write!(
            c,
            "GET /stream/nosuchkey.mjpg HTTP/1.1\r\nHost: {http}\r\n\r\n"
        )
        .unwrap();
    }
    let start = Instant::now();
    while status(&http, "/", &http) != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the page is refused after clients of an unknown stream left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-INT", &rx.child.id().to_string()])
        .status();
    let (ok, _, stderr) = rx.finish(Duration::from_secs(10));
    assert!(ok, "recv did not stop cleanly: {stderr}");
}
