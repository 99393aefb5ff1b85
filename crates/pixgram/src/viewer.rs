//! The browser viewer behind `pixgram recv --http ADDR`: a small HTTP server (standard
//! library only) showing every live stream's latest frame and its figures.
//!
//! Routes: `/` the page (it polls `/stats.json` and reloads each stream's image when a new
//! frame is there); `/stats.json`; `/frame/KEY.jpg` the stream's latest frame;
//! `/stream/KEY.mjpg` the stream as `multipart/x-mixed-replace` MJPEG, for players such as
//! VLC and ffplay. Bounded: [`MAX_STREAMS`] streams shown (the least recently updated one
//! goes), [`MAX_CONNECTIONS`] connections at once (more get `503`), request heads of 8 KiB.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::DriverError;

/// Streams the page shows at most.
pub const MAX_STREAMS: usize = 64;
/// HTTP connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
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
    connections: AtomicUsize,
    started: Instant,
}

/// A running viewer. Dropping it stops the server.
pub struct Viewer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Viewer {
    /// Serves the page on `addr`.
    pub fn bind(addr: SocketAddr) -> Result<Self, DriverError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| DriverError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            streams: Mutex::new(BTreeMap::new()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            started: Instant::now(),
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

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        if shared.connections.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
            let _ = respond(
                &mut conn,
                "503 Service Unavailable",
                "text/plain",
                b"busy\n",
            );
            continue;
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("pixgram-viewer-conn".into())
            .spawn(move || {
                let _ = serve(conn, &s);
                s.connections.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Answers one request.
fn serve(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?.take(8192));
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Skip the headers (bounded by `take`).
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
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
            let key = p["/stream/".len()..p.len() - ".mjpg".len()].to_string();
            stream_mjpeg(conn, shared, &key)
        }
        _ => respond(&mut conn, "404 Not Found", "text/plain", b"not found\n"),
    }
}

/// Sends each new frame of `key` as one part of a multipart response until the client or the
/// viewer goes away.
fn stream_mjpeg(mut conn: TcpStream, shared: &Shared, key: &str) -> std::io::Result<()> {
    conn.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=pixgramframe\r\n\
          Cache-Control: no-store\r\nConnection: close\r\n\r\n",
    )?;
    let mut seen = 0;
    loop {
        let frame = {
            let mut streams = lock(&shared.streams);
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if let Some(v) = streams.get(key).filter(|v| v.seq > seen) {
                    seen = v.seq;
                    break v.latest.clone();
                }
                streams = shared
                    .changed
                    .wait_timeout(streams, Duration::from_millis(500))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        };
        let Some(frame) = frame else { continue };
        write!(
            conn,
            "--pixgramframe\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            content_type(&frame),
            frame.len()
        )?;
        conn.write_all(&frame)?;
        conn.write_all(b"\r\n")?;
    }
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
    if frame.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

fn respond(conn: &mut TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body)?;
    conn.flush()
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

    fn get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut all = Vec::new();
        c.read_to_end(&mut all).unwrap();
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8_lossy(&all[..split]).into_owned(),
            all[split + 4..].to_vec(),
        )
    }

    #[test]
    fn serves_the_page_the_figures_and_the_latest_frame() {
        let v = Viewer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
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
        let v = Viewer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        for i in 0..MAX_STREAMS + 5 {
            v.on_frame(&format!("s{i}"), Bytes::from_static(b"x"), None);
        }
        assert_eq!(lock(&v.shared.streams).len(), MAX_STREAMS);
    }
}
