//! The browser viewer behind `pixgram recv --http ADDR`: a small HTTP server (standard
//! library only) showing every live stream's latest frame and its figures.
//!
//! Routes: `/` the page (it polls `/stats.json` and reloads each stream's image when a new
//! frame is there); `/stats.json`; `/frame/KEY.jpg` the stream's latest frame;
//! `/stream/KEY.mjpg` the stream as `multipart/x-mixed-replace` MJPEG, for players such as
//! VLC and ffplay (`404` for a stream the viewer does not know).
//!
//! Hardened against a client that would switch it off:
//! - [`MAX_CONNECTIONS`] connections at once, one thread each; more get a `503` written by
//!   the accepting thread without blocking. At most [`MAX_STREAM_CLIENTS`] of them watch
//!   MJPEG streams, so the page always has slots left.
//! - The request head must arrive whole within [`HEAD_DEADLINE`] of the accept and fit in
//!   [`MAX_HEAD`] bytes; otherwise `408` / `431` and the connection is closed.
//! - Every response (and every MJPEG part) must be taken by the client within
//!   [`WRITE_DEADLINE`].
//! - An MJPEG handler looks at its socket every [`CLIENT_CHECK`] even when no frame comes,
//!   and ends when the client has closed (or sent FIN: a half-closed player is let go too).
//! - The `Host` header must name this machine (see `host_allowed`), so a web page on
//!   another origin cannot read the frames through DNS rebinding: `403` otherwise.
//!
//! Bounded: [`MAX_STREAMS`] streams shown (the least recently updated one goes).

use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::DriverError;

/// Streams the page shows at most.
pub const MAX_STREAMS: usize = 64;
/// HTTP connections served at once (one thread each).
pub const MAX_CONNECTIONS: usize = 40;
/// Of those, connections watching an MJPEG stream at once.
pub const MAX_STREAM_CLIENTS: usize = 32;
/// Time from the accept to the end of the request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Largest request head (request line and headers), in bytes.
pub const MAX_HEAD: usize = 8192;
/// Time a client gets to take one response, or one part of an MJPEG stream.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// How often an MJPEG handler with nothing to send checks that its client is still there.
pub const CLIENT_CHECK: Duration = Duration::from_millis(250);
/// Frames remembered per stream for the rates (one second's worth at most).
const RATE_WINDOW: usize = 256;

/// One stream as the viewer knows it.
#[derive(Debug, Default)]
struct StreamView {
    latest: Option<Bytes>,
    seq: u64,
    frames: u64,
    bytes: u64,
    lost: u64,
    expired: u64,
    latency_ms: Option<f64>,
    updated: Option<Instant>,
    /// Arrivals in the last second: (when, bytes).
    recent: VecDeque<(Instant, usize)>,
}

impl StreamView {
    fn rates(&self, now: Instant) -> (f64, f64) {
        let recent: Vec<_> = self
            .recent
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= Duration::from_secs(1))
            .collect();
        let bytes: usize = recent.iter().map(|(_, b)| b).sum();
        (recent.len() as f64, bytes as f64 * 8.0 / 1e6)
    }
}

struct Shared {
    streams: Mutex<BTreeMap<String, StreamView>>,
    changed: Condvar,
    stop: AtomicBool,
    /// Connections being served (threads running).
    connections: AtomicUsize,
    /// Of those, MJPEG streams being sent.
    streaming: AtomicUsize,
    started: Instant,
    /// Where the page is served, for the `Host` check.
    listen: SocketAddr,
    /// Names admitted in `Host` besides this machine's (lower case, no port).
    allow_hosts: Vec<String>,
}

/// A running viewer. Dropping it stops the server.
pub struct Viewer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Viewer {
    /// Serves the page on `addr`, to requests naming this machine in `Host`.
    pub fn bind(addr: SocketAddr) -> Result<Self, DriverError> {
        Self::bind_allowing(addr, &[])
    }

    /// Serves the page on `addr`; `allow_hosts` are further names (a port, if given, is
    /// ignored) admitted in the `Host` header.
    pub fn bind_allowing(addr: SocketAddr, allow_hosts: &[String]) -> Result<Self, DriverError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| DriverError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            streams: Mutex::new(BTreeMap::new()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            streaming: AtomicUsize::new(0),
            started: Instant::now(),
            listen: addr,
            allow_hosts: allow_hosts
                .iter()
                .map(|h| host_name(h.trim()).unwrap_or(h).to_ascii_lowercase())
                .collect(),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("pixgram-viewer".into())
            .spawn(move || accept_loop(&listener, &s))?;
        Ok(Viewer {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// Where the page is served.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A whole frame arrived on stream `key`; `latency` if the sender's timestamp is known.
    pub fn on_frame(&self, key: &str, frame: Bytes, latency: Option<Duration>) {
        let now = Instant::now();
        let mut streams = lock(&self.shared.streams);
        let view = entry(&mut streams, key);
        view.bytes += frame.len() as u64;
        view.recent.push_back((now, frame.len()));
        if view.recent.len() > RATE_WINDOW {
            view.recent.pop_front();
        }
        view.frames += 1;
        view.seq += 1;
        view.latest = Some(frame);
        view.updated = Some(now);
        view.latency_ms = latency.map(|d| d.as_secs_f64() * 1e3).or(view.latency_ms);
        drop(streams);
        self.shared.changed.notify_all();
    }

    /// `count` frames of stream `key` were lost; `expired` if past their deadline.
    pub fn on_lost(&self, key: &str, count: u64, expired: bool) {
        let mut streams = lock(&self.shared.streams);
        let view = entry(&mut streams, key);
        view.lost += count;
        if expired {
            view.expired += count;
        }
        view.updated = Some(Instant::now());
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// The view of `key`, made room for if new.
fn entry<'a>(streams: &'a mut BTreeMap<String, StreamView>, key: &str) -> &'a mut StreamView {
    if !streams.contains_key(key) && streams.len() >= MAX_STREAMS {
        let stalest = streams
            .iter()
            .min_by_key(|(_, v)| v.updated)
            .map(|(k, _)| k.clone());
        if let Some(k) = stalest {
            streams.remove(&k);
        }
    }
    streams.entry(key.to_string()).or_default()
}

/// One taken slot of a counter; given back when dropped (also when a handler panics).
struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    /// A slot of `counter` if fewer than `max` are taken.
    fn take(counter: &'a AtomicUsize, max: usize) -> Option<Self> {
        if counter.fetch_add(1, Ordering::AcqRel) >= max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(counter))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n";

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let conn = match conn {
            Ok(c) => c,
            Err(_) => {
                // Out of descriptors, say: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let accepted = Instant::now();
        let Some(slot) = Slot::take(&shared.connections, MAX_CONNECTIONS) else {
            refuse_busy(&conn);
            continue;
        };
        // The slot travels with the thread: the counter lives as long as `Shared`.
        std::mem::forget(slot);
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("pixgram-viewer-conn".into())
            .spawn(move || {
                let _slot = Slot(&s.connections);
                let _ = serve(conn, &s, accepted);
            });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The `503` for a connection past the limit, on the accepting thread: no blocking, no
/// allocation, no thread.
fn refuse_busy(conn: &TcpStream) {
    if conn.set_nonblocking(true).is_err() {
        return;
    }
    let mut c = conn;
    let _ = c.write(BUSY);
    let _ = conn.shutdown(Shutdown::Write);
    // Take what the client already sent, so that closing sends a FIN rather than a reset
    // that could destroy the answer before it is read.
    let mut scratch = [0u8; 2048];
    let _ = c.read(&mut scratch);
}

/// Reads the request head (up to and without the empty line) until `deadline`.
/// `Ok(None)`: longer than [`MAX_HEAD`]. An error: the client closed, failed or was too slow.
fn read_head(conn: &mut TcpStream, deadline: Instant) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        conn.set_read_timeout(Some(left))?;
        let n = match conn.read(&mut buf) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head_end(&head, from) {
            if end > MAX_HEAD {
                return Ok(None);
            }
            head.truncate(end);
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// Where the empty line ending a head is (`\r\n\r\n` or a bare `\n\n`), searching from `from`;
/// the index just past it.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| {
        if buf[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if buf[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// Answers one request.
fn serve(mut conn: TcpStream, shared: &Shared, accepted: Instant) -> std::io::Result<()> {
    let head = match read_head(&mut conn, accepted + HEAD_DEADLINE) {
        Ok(Some(head)) => head,
        Ok(None) => {
            return respond(
                &mut conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request head too large\n",
            )
        }
        Err(e) => {
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                let _ = respond(
                    &mut conn,
                    "408 Request Timeout",
                    "text/plain",
                    b"too slow\n",
                );
            }
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.lines();
    let request = lines.next().unwrap_or("");
    let mut hosts = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim());
    let host = hosts.next();
    if hosts.next().is_some() {
        return respond(
            &mut conn,
            "400 Bad Request",
            "text/plain",
            b"two Host headers\n",
        );
    }
    // No Host at all: an HTTP/1.0 tool, never a browser, so no rebinding to fear.
    if host.is_some_and(|h| !host_allowed(h, shared.listen, &shared.allow_hosts)) {
        return respond(
            &mut conn,
            "403 Forbidden",
            "text/plain",
            b"this Host is not served; start recv with --http-allow-host NAME to admit it\n",
        );
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    match path {
        "/" | "/index.html" => respond(&mut conn, "200 OK", "text/html; charset=utf-8", PAGE),
        "/stats.json" => {
            let body = stats_json(shared);
            respond(&mut conn, "200 OK", "application/json", body.as_bytes())
        }
        p if p.starts_with("/frame/") && p.ends_with(".jpg") => {
            let key = &p["/frame/".len()..p.len() - ".jpg".len()];
            let latest = lock(&shared.streams)
                .get(key)
                .and_then(|v| v.latest.clone());
            match latest {
                Some(f) => respond(&mut conn, "200 OK", content_type(&f), &f),
                None => respond(
                    &mut conn,
                    "404 Not Found",
                    "text/plain",
                    b"no such stream\n",
                ),
            }
        }
        p if p.starts_with("/stream/") && p.ends_with(".mjpg") => {
            let key = &p["/stream/".len()..p.len() - ".mjpg".len()];
            if !lock(&shared.streams).contains_key(key) {
                return respond(
                    &mut conn,
                    "404 Not Found",
                    "text/plain",
                    b"no such stream\n",
                );
            }
            let Some(_watching) = Slot::take(&shared.streaming, MAX_STREAM_CLIENTS) else {
                return respond(
                    &mut conn,
                    "503 Service Unavailable",
                    "text/plain",
                    b"busy\n",
                );
            };
            stream_mjpeg(conn, shared, key)
        }
        _ => respond(&mut conn, "404 Not Found", "text/plain", b"not found\n"),
    }
}

/// The name in a `Host` value or `--http-allow-host` entry: without the port, an IPv6
/// literal without its brackets. `None` if malformed.
fn host_name(host: &str) -> Option<&str> {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok))
            .then_some(inside);
    }
    match host.split_once(':') {
        None => Some(host),
        Some((name, port)) if port_ok(port) => Some(name),
        Some(_) => None,
    }
}

/// Whether a request whose `Host` is `host` may be served by a viewer listening on `listen`.
///
/// DNS rebinding needs a DNS name, so an IP literal is safe: admitted are a loopback IP, the
/// listen IP, any IP when listening on every interface (0.0.0.0 or `[::]`), the name
/// `localhost`, and the names in `allow` (lower case); any port. Everything else is refused.
fn host_allowed(host: &str, listen: SocketAddr, allow: &[String]) -> bool {
    let Some(name) = host_name(host) else {
        return false;
    };
    let ip = name.parse::<Ipv4Addr>().map(IpAddr::V4).ok().or_else(|| {
        // Brackets were taken off: only a bracketed value may be IPv6.
        (host.starts_with('['))
            .then(|| name.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
            .flatten()
    });
    match ip {
        Some(ip) => ip.is_loopback() || ip == listen.ip() || listen.ip().is_unspecified(),
        None if host.starts_with('[') => false,
        None => {
            name.eq_ignore_ascii_case("localhost")
                || allow.iter().any(|a| a.eq_ignore_ascii_case(name))
        }
    }
}

/// Whether the client of `conn` has gone (closed, reset or half-closed), without blocking.
/// Anything it sent meanwhile is read and dropped.
fn client_gone(conn: &TcpStream) -> bool {
    if conn.set_nonblocking(true).is_err() {
        return true;
    }
    let mut scratch = [0u8; 512];
    let gone = loop {
        match (&*conn).read(&mut scratch) {
            Ok(0) => break true,
            Ok(_) => break false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break e.kind() != ErrorKind::WouldBlock,
        }
    };
    conn.set_nonblocking(false).is_err() || gone
}

/// Sends each new frame of `key` as one part of a multipart response until the client or the
/// viewer goes away (or the stream is dropped from the viewer).
fn stream_mjpeg(mut conn: TcpStream, shared: &Shared, key: &str) -> std::io::Result<()> {
    write_all_by(
        &mut conn,
        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=pixgramframe\r\n\
          Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        Instant::now() + WRITE_DEADLINE,
    )?;
    let mut seen = 0;
    let mut checked = Instant::now();
    loop {
        // The next frame, or `None` when the client is due a check.
        let next = {
            let mut streams = lock(&shared.streams);
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let Some(v) = streams.get(key) else {
                    return Ok(());
                };
                if v.seq > seen {
                    seen = v.seq;
                    if let Some(f) = &v.latest {
                        break Some(f.clone());
                    }
                }
                let left = CLIENT_CHECK.saturating_sub(checked.elapsed());
                if left.is_zero() {
                    break None;
                }
                streams = shared
                    .changed
                    .wait_timeout(streams, left)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        };
        if let Some(frame) = next {
            let deadline = Instant::now() + WRITE_DEADLINE;
            let part = format!(
                "--pixgramframe\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
                content_type(&frame),
                frame.len()
            );
            write_all_by(&mut conn, part.as_bytes(), deadline)?;
            write_all_by(&mut conn, &frame, deadline)?;
            write_all_by(&mut conn, b"\r\n", deadline)?;
        }
        if checked.elapsed() >= CLIENT_CHECK {
            if client_gone(&conn) {
                return Ok(());
            }
            checked = Instant::now();
        }
    }
}

/// `write_all` that gives up at `deadline` however slowly the client reads.
fn write_all_by(conn: &mut TcpStream, mut buf: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        conn.set_write_timeout(Some(left))?;
        match conn.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn stats_json(shared: &Shared) -> String {
    let now = Instant::now();
    let streams = lock(&shared.streams);
    let list: Vec<serde_json::Value> = streams
        .iter()
        .map(|(key, v)| {
            let (fps, mbit) = v.rates(now);
            let loss = 100.0 * v.lost as f64 / (v.frames + v.lost).max(1) as f64;
            serde_json::json!({
                "key": key, "seq": v.seq, "frames": v.frames, "bytes": v.bytes,
                "fps": fps, "mbit_s": mbit, "lost": v.lost, "expired": v.expired,
                "loss_percent": loss, "latency_ms": v.latency_ms,
            })
        })
        .collect();
    serde_json::json!({
        "uptime_s": shared.started.elapsed().as_secs_f64(),
        "streams": list,
    })
    .to_string()
}

fn content_type(frame: &[u8]) -> &'static str {
    crate::format::ImageFormat::detect(frame)
        .unwrap_or(crate::format::ImageFormat::Jpeg)
        .mime_type()
}

/// A whole response, then the connection is closed (by the caller dropping it).
fn respond(conn: &mut TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    let deadline = Instant::now() + WRITE_DEADLINE;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    write_all_by(conn, head.as_bytes(), deadline)?;
    write_all_by(conn, body, deadline)?;
    // Half-close and take what else the client sent, so that the close is a FIN and the
    // answer is not destroyed by a reset.
    let _ = conn.shutdown(Shutdown::Write);
    let _ = client_gone(conn);
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The page: polls the figures, reloads an image only when its stream has a new frame.
const PAGE: &[u8] = br#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pixgram</title>
<style>
body { font: 14px system-ui, sans-serif; background: #111; color: #ddd; margin: 1em; }
main { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; background: #222; padding: .5em; border-radius: 6px; }
img { display: block; max-width: 640px; max-height: 480px; background: #000; }
figcaption { margin-top: .4em; font-variant-numeric: tabular-nums; }
#empty { color: #888; }
</style></head>
<body><h1>pixgram</h1><p id="empty">Waiting for a stream&hellip;</p><main id="streams"></main>
<script>
const shown = {};
async function tick() {
  try {
    const r = await fetch('/stats.json', {cache: 'no-store'});
    const s = await r.json();
    document.getElementById('empty').style.display = s.streams.length ? 'none' : 'block';
    for (const st of s.streams) {
      let f = shown[st.key];
      if (!f) {
        const fig = document.createElement('figure');
        fig.id = 'stream-' + st.key;
        fig.innerHTML = '<img alt="latest frame"><figcaption></figcaption>';
        document.getElementById('streams').appendChild(fig);
        f = shown[st.key] = {fig: fig, seq: -1};
      }
      if (st.seq !== f.seq) {
        f.seq = st.seq;
        f.fig.querySelector('img').src = '/frame/' + st.key + '.jpg?seq=' + st.seq;
      }
      const lat = st.latency_ms === null ? 'n/a' : st.latency_ms.toFixed(1) + ' ms';
      f.fig.querySelector('figcaption').textContent =
        st.key + ' | frame ' + st.frames + ' | ' + st.fps.toFixed(1) + ' fps | ' +
        st.mbit_s.toFixed(1) + ' Mbit/s | loss ' + st.loss_percent.toFixed(1) + '% | expired ' +
        st.expired + ' | latency ' + lat;
    }
  } catch (e) {}
  setTimeout(tick, 200);
}
tick();
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    /// Reads what `c` sends until it closes or `limit` passes; `None` on a read error or timeout.
    fn read_all(c: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
        c.set_read_timeout(Some(limit)).unwrap();
        let mut all = Vec::new();
        c.read_to_end(&mut all).ok()?;
        Some(all)
    }

    /// One request with `Host: host`; returns (head, body), or `None` if no whole answer came
    /// within 3 s.
    fn request(addr: SocketAddr, path: &str, host: &str) -> Option<(String, Vec<u8>)> {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").ok()?;
        let mut all = read_all(&mut c, Duration::from_secs(3))?;
        let split = all.windows(4).position(|w| w == b"\r\n\r\n")?;
        let body = all.split_off(split + 4);
        Some((String::from_utf8_lossy(&all).into_owned(), body))
    }

    fn get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
        request(addr, path, &addr.to_string()).expect("no answer")
    }

    /// Polls `ok` every 20 ms until it holds or `limit` passes.
    fn eventually(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        ok()
    }

    fn loopback() -> Viewer {
        Viewer::bind("127.0.0.1:0".parse().unwrap()).unwrap()
    }

    fn page_answers(addr: SocketAddr) -> bool {
        request(addr, "/", &addr.to_string()).is_some_and(|(h, _)| h.starts_with("HTTP/1.1 200"))
    }

    #[test]
    fn serves_the_page_the_figures_and_the_latest_frame() {
        let v = loopback();
        let addr = v.local_addr();
        v.on_frame("s1", Bytes::from_static(b"\xFF\xD8one\xFF\xD9"), None);
        v.on_frame("s1", Bytes::from_static(b"\xFF\xD8two\xFF\xD9"), None);
        v.on_lost("s1", 1, true);
        let (head, page) = get(addr, "/");
        assert!(head.contains("200 OK") && String::from_utf8_lossy(&page).contains("stats.json"));
        let (_, stats) = get(addr, "/stats.json");
        let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
        assert_eq!(stats["streams"][0]["frames"], 2);
        assert_eq!(stats["streams"][0]["expired"], 1);
        let (head, frame) = get(addr, "/frame/s1.jpg");
        assert!(head.contains("image/jpeg"), "{head}");
        assert_eq!(frame, b"\xFF\xD8two\xFF\xD9");
        assert!(get(addr, "/frame/nope.jpg").0.contains("404"));
    }

    #[test]
    fn streams_are_bounded() {
        let v = loopback();
        for i in 0..MAX_STREAMS + 5 {
            v.on_frame(&format!("s{i}"), Bytes::from_static(b"x"), None);
        }
        assert_eq!(lock(&v.shared.streams).len(), MAX_STREAMS);
    }

    #[test]
    fn an_unknown_stream_is_refused_at_once_and_holds_no_slot() {
        let v = loopback();
        let addr = v.local_addr();
        let start = Instant::now();
        let (head, _) = request(addr, "/stream/nosuchkey.mjpg", &addr.to_string())
            .expect("an unknown stream must be answered, not kept open");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        assert!(start.elapsed() < Duration::from_secs(1));
        // The attack: more clients than slots ask for it and leave without reading.
        for _ in 0..40 {
            let mut c = TcpStream::connect(addr).unwrap();
            write!(
                c,
                "GET /stream/nosuchkey.mjpg HTTP/1.1\r\nHost: {addr}\r\n\r\n"
            )
            .unwrap();
        }
        assert!(
            eventually(Duration::from_secs(2), || page_answers(addr)),
            "the page is refused after clients of an unknown stream left"
        );
        assert!(eventually(Duration::from_secs(2), || {
            v.shared.connections.load(Ordering::Acquire) == 0
        }));
    }

    /// Opens `/stream/cam.mjpg` and reads its first part (the frame `frame`).
    fn watch(addr: SocketAddr, frame: &[u8]) -> TcpStream {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(c, "GET /stream/cam.mjpg HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(frame.len()).any(|w| w == frame) {
            let n = c.read(&mut buf).expect("the stream sent no frame");
            assert!(n > 0, "the stream ended: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200"));
        c
    }

    #[test]
    fn a_stream_client_that_leaves_frees_its_slot_while_no_frames_come() {
        let v = loopback();
        let addr = v.local_addr();
        let frame = b"\xFF\xD8only frame\xFF\xD9";
        v.on_frame("cam", Bytes::from_static(frame), None);
        for round in 0..2 {
            let watchers: Vec<TcpStream> = (0..32).map(|_| watch(addr, frame)).collect();
            assert!(page_answers(addr), "round {round}: the page is refused");
            drop(watchers);
            // No frame comes: the handlers must notice the closed clients by themselves.
            assert!(
                eventually(Duration::from_millis(1500), || {
                    v.shared.connections.load(Ordering::Acquire) == 0
                }),
                "round {round}: {} slots still held after the clients left",
                v.shared.connections.load(Ordering::Acquire)
            );
        }
    }

    #[test]
    fn a_slow_request_head_is_cut_off_at_its_deadline() {
        let v = loopback();
        let addr = v.local_addr();
        let slow = std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let start = Instant::now();
            let head = b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            // A byte a second, never finishing the head.
            for &b in head.iter().cycle().take(60) {
                if c.write_all(&[b]).is_err() {
                    break;
                }
                let mut buf = [0u8; 256];
                match c.read(&mut buf) {
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    _ => break, // answered, closed or reset: cut off
                }
                if start.elapsed() > Duration::from_secs(15) {
                    break;
                }
            }
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            page_answers(addr),
            "the page is refused while a slow client sends"
        );
        let held = slow.join().unwrap();
        assert!(
            held > HEAD_DEADLINE - Duration::from_millis(500)
                && held < HEAD_DEADLINE + Duration::from_secs(2),
            "a byte-a-second client was cut off after {held:?}"
        );
        assert!(
            page_answers(addr),
            "the page is refused after a slow client"
        );
    }

    #[test]
    fn an_oversized_request_head_is_refused() {
        let v = loopback();
        let addr = v.local_addr();
        let mut c = TcpStream::connect(addr).unwrap();
        let big = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nX-Big: {}",
            "a".repeat(9000)
        );
        c.write_all(big.as_bytes()).unwrap();
        let got = read_all(&mut c, Duration::from_secs(3)).expect("no answer");
        assert!(
            got.starts_with(b"HTTP/1.1 431"),
            "{}",
            String::from_utf8_lossy(&got[..got.len().min(200)])
        );
    }

    #[test]
    fn the_connection_limit_holds_and_its_503_is_cheap() {
        let v = loopback();
        let addr = v.local_addr();
        // Silent clients: each holds a slot until the head deadline.
        let held: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        assert!(eventually(Duration::from_secs(2), || {
            v.shared.connections.load(Ordering::Acquire) == MAX_CONNECTIONS
        }));
        let start = Instant::now();
        let mut c = TcpStream::connect(addr).unwrap();
        let got = read_all(&mut c, Duration::from_secs(2)).expect("no answer past the limit");
        assert!(got.starts_with(b"HTTP/1.1 503"), "{got:?}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        drop(held);
        assert!(eventually(Duration::from_secs(2), || page_answers(addr)));
    }

    #[test]
    fn the_host_must_name_this_machine() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let lan: SocketAddr = "192.168.1.7:8080".parse().unwrap();
        let none: &[String] = &[];
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "127.0.0.2:9",
            "localhost:8080",
            "LocalHost",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(host_allowed(ok, lo, none), "{ok} refused");
            assert!(host_allowed(ok, any, none), "{ok} refused on 0.0.0.0");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "cam.local",
            "192.168.1.7:8080",
            "",
            "::1",
            "[::1",
            "[evil.example]",
            "127.0.0.1:http",
            "127.0.0.1:8080:1",
        ] {
            assert!(!host_allowed(bad, lo, none), "{bad} admitted");
        }
        // The listen IP; on every interface, any IP literal but still no foreign name.
        assert!(host_allowed("192.168.1.7:8080", lan, none));
        assert!(!host_allowed("10.0.0.1:8080", lan, none));
        assert!(host_allowed("10.0.0.1:8080", any, none));
        assert!(host_allowed("[fe80::1]:8080", any, none));
        assert!(!host_allowed("evil.example", any, none));
        // Names given with --http-allow-host, any port, any case.
        let allow = vec!["cam.local".to_string()];
        assert!(host_allowed("cam.local:8080", lo, &allow));
        assert!(host_allowed("CAM.local", lo, &allow));
        assert!(!host_allowed("evil.example", lo, &allow));
    }

    #[test]
    fn a_request_for_another_host_is_refused() {
        let v = Viewer::bind_allowing("127.0.0.1:0".parse().unwrap(), &["Cam.Local:80".into()])
            .unwrap();
        let addr = v.local_addr();
        let status = |host: &str| {
            let (head, _) = request(addr, "/stats.json", host).expect("no answer");
            head.split_whitespace().nth(1).unwrap_or("").to_string()
        };
        assert_eq!(status("evil.example"), "403");
        assert_eq!(status(&format!("evil.example:{}", addr.port())), "403");
        assert_eq!(status(&addr.to_string()), "200");
        assert_eq!(status(&format!("localhost:{}", addr.port())), "200");
        assert_eq!(status("cam.local"), "200");
        // Two Host headers, one of them foreign: refused as malformed.
        let mut c = TcpStream::connect(addr).unwrap();
        write!(
            c,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nHost: evil.example\r\n\r\n"
        )
        .unwrap();
        let got = read_all(&mut c, Duration::from_secs(3)).expect("no answer");
        assert!(
            got.starts_with(b"HTTP/1.1 400"),
            "{}",
            String::from_utf8_lossy(&got)
        );
    }
}
