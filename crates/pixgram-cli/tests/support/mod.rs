//! Running the real `pixgram` binary in tests: bounded in time, loopback only.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod nats_server;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pixgram")
}

/// A fresh, empty folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("pixgram-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `pixgram ARGS` to completion, killing it after `limit`.
pub fn run(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pixgram");
    wait_bounded(child, limit)
}

/// Waits for `child`, killing it after `limit` (the test then fails on its output).
pub fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// A running `pixgram recv`, with the address it reported listening on.
pub struct Recv {
    pub child: Child,
    pub addr: String,
    /// The whole "listening on" line.
    pub line: String,
    stderr: mpsc::Receiver<String>,
    early: Vec<String>,
    /// Reads stdout as it comes, so a receiver printing many lines never blocks on the pipe.
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Recv {
    /// Starts `pixgram recv --listen 127.0.0.1:0 EXTRA...` and waits for its "listening on" line.
    pub fn start(extra: &[&str]) -> Recv {
        let mut args = vec!["recv", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Recv::start_with(&args, "listening on ")
    }

    /// Starts `pixgram ARGS` and waits for a stderr line containing `ready`; `addr` is what
    /// follows "listening on " in it, if it says that.
    pub fn start_with(args: &[&str], ready: &str) -> Recv {
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pixgram recv");
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut bytes);
            bytes
        });
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut early = Vec::new();
        let line = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with `{ready}`: {early:?}"));
            if line.contains(ready) {
                break line;
            }
            early.push(line);
        };
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split([';', ',']).next())
            .unwrap_or_default()
            .to_string();
        Recv {
            child,
            addr,
            line,
            stderr,
            early,
            stdout: Some(stdout),
        }
    }

    /// Waits (up to `limit`) for a stderr line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str, limit: Duration) -> String {
        if let Some(l) = self.early.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with `{needle}` within {limit:?}"));
            self.early.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits for exit (bounded) and returns (success, stdout, stderr).
    pub fn finish(self, limit: Duration) -> (bool, String, String) {
        let (ok, stdout, stderr) = self.finish_bytes(limit);
        (ok, String::from_utf8_lossy(&stdout).into_owned(), stderr)
    }

    /// Like [`Recv::finish`], with stdout as raw bytes.
    pub fn finish_bytes(mut self, limit: Duration) -> (bool, Vec<u8>, String) {
        let out = wait_bounded(self.child, limit);
        let stdout = self.stdout.take().unwrap().join().unwrap_or_default();
        let mut err = self.early;
        // The child has exited, so its stderr closes: drain the reader until it does (bounded),
        // so the line that says why it failed is never lost to a race.
        let drain_until = Instant::now() + Duration::from_secs(5);
        loop {
            let left = drain_until.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => err.push(line),
                Err(_) => break,
            }
        }
        (out.status.success(), stdout, err.join("\n"))
    }
}

/// A running `pixgram impair --listen 127.0.0.1:0 --to TO FLAGS...`, with the address it
/// reported listening on; killed on drop.
pub struct Relay {
    pub child: Child,
    pub addr: String,
}

impl Relay {
    pub fn start(to: &str, flags: &[&str]) -> Relay {
        let mut child = Command::new(bin())
            .args(["impair", "--listen", "127.0.0.1:0", "--to", to])
            .args(["--duration", "120"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pixgram impair");
        let mut line = String::new();
        BufReader::new(child.stderr.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Relay { child, addr }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory (VmHWM) of process `pid`, KiB; 0 once it has exited.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Images to send: the shared corpus if present, else generated files in `dir`.
pub fn sample_images(dir: &Path) -> Vec<PathBuf> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    if !found.is_empty() {
        return found;
    }
    (0..5u32)
        .map(|i| {
            let p = dir.join(format!("gen{i}.bin"));
            let len = [0, 1, 1156, 80_000, 700_000][i as usize];
            let bytes: Vec<u8> = (0..len)
                .map(|j: usize| (j * 31 + i as usize) as u8)
                .collect();
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect()
}

/// Parses stdout JSON lines.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Validates `socket`'s address for `session` at the receiver `to`, as a real sender does:
/// HELLO, the CHALLENGE's token, HELLO with it (a few tries within about a second). Other
/// datagrams arriving meanwhile are dropped. `false` if no CHALLENGE came.
pub fn greet(socket: &std::net::UdpSocket, to: &str, session: pixgram_core::SessionId) -> bool {
    use pixgram_core::wire;
    let hello = |token| wire::Hello::new(session, token).to_vec();
    let old = socket.read_timeout().ok().flatten();
    let _ = socket.set_read_timeout(Some(Duration::from_millis(250)));
    let mut buf = [0u8; 2048];
    let mut token = None;
    'tries: for _ in 0..4 {
        if socket.send_to(&hello(None), to).is_err() {
            break;
        }
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            if let Ok(wire::Datagram::Challenge(c)) = wire::parse(&buf[..n]) {
                if c.session == session {
                    token = Some(c.token);
                    break 'tries;
                }
            }
        }
    }
    let _ = socket.set_read_timeout(old);
    match token {
        Some(t) => socket.send_to(&hello(Some(t)), to).is_ok(),
        None => false,
    }
}
