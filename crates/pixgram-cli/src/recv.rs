//! `pixgram recv`: serve any number of senders, print what arrives, optionally save it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::ProgressBar;
use pixgram::{sink, PayloadKind, ReceivedFrame, ReceiverConfig, ReceiverEvent, UdpReceiver};
use serde::Deserialize;
use serde_json::{json, Value};

use pixgram::figures::{rate_line, Samples};
use pixgram::stats_json::receiver_stats_json;
use pixgram::{FrameMeta, ImageFormat, LossReason};

use crate::cli::{resolve, RecvArgs};
use crate::flags;
use crate::output::write_stdout;
use crate::signals::receiving_stop_flag;

// impair.rs (rewritten on another branch, not here) takes these two from recv.
pub use crate::flags::deadline_after;
pub use crate::signals::receiving_stop_flag as stop_flag;

pub fn run(args: RecvArgs) -> anyhow::Result<()> {
    if args.msg_listen.is_some() {
        bail!("--msg-listen belongs to --compat seed: pixgram's own protocol carries messages on --listen");
    }
    let listen = resolve("--listen", &args.listen)?;
    if let Some(dir) = &args.save {
        // Before listening: a folder that cannot take files fails now, in one line, not at
        // the first frame.
        sink::check_writable(dir)?;
    }
    let config = ReceiverConfig {
        max_frame_len: args.max_frame_size,
        max_peers: args.max_peers.max(1),
        max_streams_per_peer: args.max_streams_per_peer.max(1),
        max_frames_in_flight: args.max_frames_in_flight.max(1),
        max_peer_bytes: args.max_peer_bytes,
        max_total_bytes: args.max_total_bytes,
        max_peer_datagrams_per_sec: (args.max_peer_rate > 0).then_some(args.max_peer_rate),
        // An ACK means the sinks have the frame: saved, printed, shown.
        confirm_deliveries: true,
        ..Default::default()
    };
    let key = flags::key(args.key_file.as_deref())?;
    let mut rx = UdpReceiver::bind_keyed(listen, config, args.recv_buffer, key.as_ref())?;
    if let Some(w) = rx.buffer_grant().warning() {
        eprintln!("pixgram: warning: {w}");
    }
    eprintln!(
        "pixgram: listening on {}{}{}; Ctrl-C to stop",
        rx.local_addr()?,
        if key.is_some() {
            ", encrypted (only senders with the key are heard)"
        } else {
            ""
        },
        args.save
            .as_ref()
            .map(|d| format!(", saving into {}", d.display()))
            .unwrap_or_default()
    );
    let stop = receiving_stop_flag()?;
    let deadline = flags::deadline_after(args.duration);
    let mut sink = FrameSink::new(args.save.clone(), args.quiet);
    sink.save_budget = pixgram::save_budget::SaveBudget::new(pixgram::save_budget::SaveLimits {
        files_per_sec: args.max_saves_per_sec.max(0.0),
        bytes_per_sec: args.max_save_mbytes_per_sec.max(0.0) * 1e6,
    });
    sink.outputs = live_outputs(&args)?;
    if args.decode {
        sink.timing.decoder = Some(DecodeWorker::start());
    }
    let spinner = ProgressBar::new_spinner();
    let mut last_tick = Instant::now();
    let mut said_full = false;
    let mut said_flood = false;
    while !stop.load(Ordering::Relaxed)
        && !sink.stdout_closed
        && args.count.is_none_or(|n| sink.items() < n)
        && deadline.is_none_or(|d| Instant::now() < d)
    {
        let wake = Instant::now() + Duration::from_millis(200);
        let wake = deadline.map_or(wake, |d| d.min(wake));
        if let Some(event) = rx.next_event(Some(wake))? {
            if let Some((frame, stored)) = sink.handle(event)? {
                rx.confirm(frame, stored);
            }
        }
        if last_tick.elapsed() > Duration::from_millis(250) {
            spinner.set_message(sink.progress(rx.stats()));
            spinner.tick();
            last_tick = Instant::now();
            if !said_full && rx.stats().over_peers > 0 {
                said_full = true;
                spinner.suspend(|| {
                    eprintln!(
                        "pixgram: refusing new senders: all {} places (--max-peers) are held by \
                         senders active in the last second; the limits line at the end counts \
                         what was refused",
                        rx.core().config().max_peers
                    )
                });
            }
            let st = rx.stats();
            if !said_flood && st.challenges_limited > 0 {
                said_flood = true;
                spinner.suspend(|| {
                    eprintln!(
                        "pixgram: flooded: {} datagrams so far from addresses that never answered a \
                         CHALLENGE; nothing is kept for them and CHALLENGEs are held to their \
                         budget ({} withheld); the first-exchange line at the end counts them",
                        st.unvalidated, st.challenges_limited
                    )
                });
            }
        }
    }
    // Reached --count: the last frames' acknowledgements may still be lost on the way, so
    // keep answering retransmissions until every sender has closed, for 2 s at most.
    let linger = Instant::now() + LINGER;
    let counted = args.count.is_some_and(|n| sink.items() >= n);
    while counted
        && sink.open_sessions > 0
        && !sink.stdout_closed
        && !stop.load(Ordering::Relaxed)
        && Instant::now() < linger
    {
        if let Some(event) = rx.next_event(Some(linger))? {
            if let Some((frame, stored)) = sink.handle(event)? {
                rx.confirm(frame, stored);
            }
        }
    }
    spinner.finish_and_clear();
    if sink.stdout_closed {
        eprintln!("pixgram: stdout was closed by its reader; stopped receiving");
    }
    eprintln!("{}", sink.summary(rx.stats()));
    if let Some(d) = &mut sink.timing.decoder {
        d.finish();
    }
    #[cfg(feature = "window")]
    if let Some(w) = &mut sink.outputs.window {
        w.finish();
        eprintln!(
            "window: {} frames shown, {} skipped (busy or not decodable)",
            w.shown(),
            w.skipped()
        );
    }
    if let Some(line) = sink.timing.line() {
        eprintln!("{line}");
    }
    eprintln!("{}", limits_line(rx.stats()));
    eprintln!("{}", first_exchange_line(rx.stats()));
    sink.emit(&receiver_stats_json(rx.stats(), rx.open_stats().as_ref()))?;
    if let Some(o) = rx.open_stats() {
        eprintln!(
            "key: {} datagrams authenticated; dropped unanswered: {} failing authentication \
             (wrong key or tampered), {} replayed, {} not encrypted, {} under a session key \
             this receiver does not hold (recorded before a restart, or for another \
             receiver), {} not under a session key",
            o.opened, o.bad_tag, o.replayed, o.not_sealed, o.no_session_key, o.not_session_sealed
        );
    }
    Ok(())
}

/// What the first exchange (docs/PROTOCOL.md 8) answered and refused.
fn first_exchange_line(s: &pixgram::ReceiverStats) -> String {
    format!(
        "first exchange: {} HELLOs, {} CHALLENGEs sent, {} withheld over budget, {} HELLOs with \
         an invalid or expired token, {} datagrams from addresses not validated ({} used once \
         their HELLO came), {} moves of an active session refused",
        s.hellos,
        s.challenges_sent,
        s.challenges_limited,
        s.tokens_invalid,
        s.unvalidated,
        s.early_data_used,
        s.moves_refused,
    )
}

/// What the limits refused (docs/PROTOCOL.md 3.7).
fn limits_line(s: &pixgram::ReceiverStats) -> String {
    format!(
        "limits: refused {} sessions over --max-peers, {} over --max-streams-per-peer, {} over \
         --max-frames-in-flight, {} over the memory budget (--max-peer-bytes, \
         --max-total-bytes), {} over --max-frame-size, {} over --max-peer-rate; {} replies held \
         back (a sender may not get more bytes back than it sent)",
        s.over_peers,
        s.over_streams,
        s.over_frames_in_flight,
        s.over_budget,
        s.over_frame_limit,
        s.over_rate,
        s.replies_limited,
    )
}

/// Messages up to this size are parsed and printed compactly; larger ones are checked
/// without building a tree and printed as they came.
const PARSED_MESSAGE_LIMIT: usize = 256 << 10;

/// How long `recv --count N` keeps answering after the N-th item, while senders are open.
const LINGER: Duration = Duration::from_secs(2);

/// The live sinks the flags ask for.
fn live_outputs(args: &RecvArgs) -> anyhow::Result<LiveOutputs> {
    let mut out = LiveOutputs {
        mjpeg_stdout: args.stdout,
        ..LiveOutputs::default()
    };
    if let Some(addr) = &args.http {
        let viewer = pixgram::viewer::Viewer::bind_allowing(
            resolve("--http", addr)?,
            &args.http_allow_host,
        )?;
        eprintln!(
            "pixgram: viewer on http://{}/ (open it in a browser)",
            viewer.local_addr()
        );
        out.viewer = Some(viewer);
    }
    if args.window {
        #[cfg(feature = "window")]
        {
            out.window = Some(pixgram::window::WindowSink::start());
        }
        #[cfg(not(feature = "window"))]
        bail!(
            "--window needs a build with the window feature: cargo build --release \
             --features window (and a desktop); --http ADDR shows the streams in a browser"
        );
    }
    Ok(out)
}

/// What the receiver does with events: JSON lines on stdout, files in a folder, counters.
pub struct FrameSink {
    save: Option<PathBuf>,
    quiet: bool,
    frames: u64,
    messages: u64,
    bytes: u64,
    lost: u64,
    /// When the first session started and the last frame arrived: the span rates are over.
    first: Option<Instant>,
    last: Option<Instant>,
    /// Saved files in arrival order (path, frame), for callers that check them.
    pub saved: Vec<(PathBuf, ReceivedFrame)>,
    pub keep_frames: bool,
    /// Files and bytes per second each source may have saved.
    pub save_budget: pixgram::save_budget::SaveBudget,
    /// Lines about losses and sessions: at most a few per second, the rest counted.
    lines: LineBudget,
    /// Frames a save failed for (each answered FAILED to its sender).
    not_saved: u64,
    /// Where the live rate is measured from: (when, bytes received by then).
    rate_mark: Option<(Instant, u64)>,
    /// Sessions started and not yet ended.
    pub open_sessions: u64,
    /// Where frames are shown live, besides the JSON lines and the folder.
    pub outputs: LiveOutputs,
    /// End-to-end latency and its shares, for frames whose sender stamped them.
    pub timing: Timing,
    /// Stdout's reader went away (EPIPE): nothing more is written there, and recv stops.
    pub stdout_closed: bool,
}

/// Latency from capture (the sender's `sent_us`) to arrival, and its parts.
#[derive(Default)]
pub struct Timing {
    total: Samples,
    encode: Samples,
    transit: Samples,
    /// Decoding on its own thread (`--decode`).
    pub decoder: Option<DecodeWorker>,
}

impl Timing {
    /// "latency ..." or nothing when no frame carried a timestamp.
    pub fn line(&mut self) -> Option<String> {
        self.total.percentile(50.0)?;
        let mut line = format!(
            "latency, capture to arrival: {}; encode {}; network and queues {}",
            self.total.describe(),
            self.encode.describe(),
            self.transit.describe()
        );
        if let Some(d) = &self.decoder {
            let (mut samples, skipped) = d.results();
            line.push_str(&format!(
                "; decode {} ({} frames decoded, {skipped} skipped while busy)",
                samples.describe(),
                samples.len()
            ));
        }
        Some(line)
    }
}

/// Decodes frames on a thread of its own and times it; skips frames while busy.
pub struct DecodeWorker {
    tx: Option<std::sync::mpsc::SyncSender<bytes::Bytes>>,
    times: Arc<std::sync::Mutex<Samples>>,
    skipped: Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DecodeWorker {
    pub fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(2);
        let times = Arc::new(std::sync::Mutex::new(Samples::default()));
        let t = times.clone();
        let thread = std::thread::Builder::new()
            .name("pixgram-decode".into())
            .spawn(move || {
                for frame in rx {
                    let start = Instant::now();
                    if pixgram::codec::decode(&frame).is_ok() {
                        if let Ok(mut s) = t.lock() {
                            s.push(start.elapsed());
                        }
                    }
                }
            })
            .ok();
        DecodeWorker {
            tx: Some(tx),
            times,
            skipped: Arc::default(),
            thread,
        }
    }

    fn offer(&self, frame: bytes::Bytes) {
        if let Some(tx) = &self.tx {
            if tx.try_send(frame).is_err() {
                self.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits for the frames queued, then returns the decode times and the frames skipped.
    fn results(&self) -> (Samples, u64) {
        let times = self.times.lock().map(|s| s.clone()).unwrap_or_default();
        (times, self.skipped.load(Ordering::Relaxed))
    }

    /// Stops the thread once it has decoded what is queued.
    pub fn finish(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The live sinks of `pixgram recv`.
#[derive(Default)]
pub struct LiveOutputs {
    /// Write JPEG frames to stdout (`--stdout`).
    pub mjpeg_stdout: bool,
    /// Frames not written to stdout because they are not JPEG.
    pub not_jpeg: u64,
    /// The browser viewer (`--http`).
    pub viewer: Option<pixgram::viewer::Viewer>,
    /// Desktop windows (`--window`).
    #[cfg(feature = "window")]
    pub window: Option<pixgram::window::WindowSink>,
}

/// A stream's name in the viewer and window titles: sender, session, stream.
fn stream_key(
    peer: std::net::SocketAddr,
    session: pixgram::SessionId,
    stream: pixgram::StreamId,
) -> String {
    pixgram::sink::sanitise(&format!("{peer}-{session}-{}", stream.0))
}

impl FrameSink {
    pub fn new(save: Option<PathBuf>, quiet: bool) -> Self {
        FrameSink {
            save,
            quiet,
            frames: 0,
            messages: 0,
            bytes: 0,
            lost: 0,
            first: None,
            last: None,
            saved: Vec::new(),
            not_saved: 0,
            save_budget: Default::default(),
            lines: LineBudget::default(),
            keep_frames: false,
            rate_mark: None,
            open_sessions: 0,
            outputs: LiveOutputs::default(),
            timing: Timing::default(),
            stdout_closed: false,
        }
    }

    /// Frames and messages received.
    pub fn items(&self) -> u64 {
        self.frames + self.messages
    }

    /// Takes one event; for a frame, returns it with whether every sink took it (the
    /// receiver then acknowledges it COMPLETE, or FAILED).
    pub fn handle(
        &mut self,
        event: ReceiverEvent,
    ) -> anyhow::Result<Option<(pixgram::DeliveryKey, bool)>> {
        match event {
            ReceiverEvent::Frame(f) => {
                let key = f.key();
                return Ok(Some((key, self.on_frame(f)?)));
            }
            ReceiverEvent::Lost {
                peer,
                session,
                stream,
                first,
                count,
                reason,
            } => {
                self.lost += count;
                if let Some(v) = &self.outputs.viewer {
                    let key = stream_key(peer, session, stream);
                    v.on_lost(&key, count, reason == LossReason::Expired);
                }
                if !self.quiet {
                    if let Some(suppressed) = self.lines.admit(Instant::now()) {
                        let mut line = json!({"event": "lost", "peer": peer.to_string(),
                            "session": session.to_string(), "stream": stream.0,
                            "first": first.0, "count": count,
                            "reason": format!("{reason:?}")});
                        if suppressed > 0 {
                            line["lines_suppressed_before"] = json!(suppressed);
                        }
                        self.emit(&line)?;
                    }
                }
            }
            ReceiverEvent::SessionStarted { peer, session } => {
                // Rates count from the first sender's first datagram, not its first frame.
                self.first.get_or_insert_with(Instant::now);
                self.open_sessions += 1;
                if self.lines.admit(Instant::now()).is_some() {
                    eprintln!("pixgram: sender {peer} started session {session}");
                }
            }
            ReceiverEvent::SessionEnded {
                peer,
                session,
                reason,
            } => {
                self.open_sessions = self.open_sessions.saturating_sub(1);
                if self.lines.admit(Instant::now()).is_some() {
                    eprintln!("pixgram: sender {peer} session {session} ended ({reason:?})");
                }
            }
        }
        Ok(None)
    }

    /// Hands a frame to every sink; `false` if one could not take it (a save that failed:
    /// said once on stderr, then counted).
    fn on_frame(&mut self, f: ReceivedFrame) -> anyhow::Result<bool> {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        let meta: Option<Value> = f.metadata.as_deref().map(pixgram::meta::display_value);
        let parsed = f.metadata.as_deref().and_then(FrameMeta::parse);
        let mut line = json!({
            "peer": f.peer.to_string(), "session": f.session.to_string(),
            "stream": f.stream.0, "frame": f.frame.0,
        });
        match f.kind {
            PayloadKind::Message => {
                self.messages += 1;
                line["event"] = json!("message");
                if f.payload.len() > PARSED_MESSAGE_LIMIT {
                    // Checked without building a tree (a 64 MiB message parsed into values
                    // took over a gigabyte), then spliced into the line as it came.
                    let mut des = serde_json::Deserializer::from_slice(&f.payload);
                    let valid = serde::de::IgnoredAny::deserialize(&mut des)
                        .and_then(|_| des.end())
                        .is_ok();
                    if valid {
                        let mut head = line.to_string();
                        head.pop(); // the closing brace
                        head.push_str(",\"message\":");
                        self.emit_spliced(&head, &f.payload, "}")?;
                        return Ok(!self.stdout_closed || self.outputs.mjpeg_stdout);
                    }
                    line["event"] = json!("invalid_message");
                    line["bytes"] = json!(f.payload.len());
                } else {
                    match serde_json::from_slice::<Value>(&f.payload) {
                        Ok(m) => line["message"] = m,
                        Err(_) => {
                            line["event"] = json!("invalid_message");
                            line["text"] = json!(String::from_utf8_lossy(&f.payload));
                        }
                    }
                }
                self.emit(&line)?;
                // Printed is taken, unless nobody reads stdout any more.
                return Ok(!self.stdout_closed || self.outputs.mjpeg_stdout);
            }
            PayloadKind::Frame => {
                self.frames += 1;
                self.bytes += f.payload.len() as u64;
                line["event"] = json!("frame");
                line["bytes"] = json!(f.payload.len());
                if let Some(total) = parsed.as_ref().and_then(FrameMeta::latency) {
                    line["latency_ms"] = json!(total.as_secs_f64() * 1e3);
                    self.timing.total.push(total);
                    if let Some(e) = parsed.as_ref().and_then(FrameMeta::encode_time) {
                        self.timing.encode.push(e);
                        self.timing.transit.push(total.saturating_sub(e));
                    }
                }
                if let Some(d) = &self.timing.decoder {
                    d.offer(f.payload.clone());
                }
            }
        }
        self.show(&f, parsed.as_ref())?;
        let file_name = parsed.as_ref().and_then(|m| m.file.as_deref());
        let mut stored = true;
        let within_budget = self.save.is_none()
            || self
                .save_budget
                .admit(f.peer.ip(), f.payload.len(), Instant::now());
        if !within_budget {
            if self.save_budget.refused() == 1 {
                eprintln!(
                    "pixgram: {} sends more than --max-saves-per-sec or \
                     --max-save-mbytes-per-sec allow: frames over it are not saved, and their \
                     senders are told so",
                    f.peer.ip()
                );
            }
            line["event"] = json!("not_saved");
            line["error"] = json!("over the save budget of its source");
            stored = false;
        }
        if let Some(dir) = self.save.as_ref().filter(|_| within_budget) {
            let name = sink::file_name_for(&f, file_name);
            match sink::save_atomic(dir, &name, &f.payload) {
                Ok(path) => {
                    line["saved"] = json!(path.display().to_string());
                    if self.keep_frames {
                        self.saved.push((path, f));
                    }
                }
                Err(e) => {
                    if self.not_saved == 0 {
                        eprintln!(
                            "pixgram: cannot save into {}: {e}; frames not saved are \
                             reported to their senders as not delivered",
                            dir.display()
                        );
                    }
                    self.not_saved += 1;
                    line["event"] = json!("not_saved");
                    line["error"] = json!(e.to_string());
                    stored = false;
                }
            }
        }
        if let Some(m) = meta {
            line["meta"] = m;
        }
        if !self.quiet || !stored {
            self.emit(&line)?;
        }
        if self.save.is_none() && self.stdout_closed && !self.outputs.mjpeg_stdout {
            // The JSON line was the only sink, and nobody reads it any more.
            stored = false;
        }
        Ok(stored)
    }

    /// One JSON line: on stdout, or on stderr when stdout carries MJPEG. Once stdout's reader
    /// has gone away, lines for it are dropped and [`FrameSink::stdout_closed`] is set.
    pub fn emit(&mut self, line: &Value) -> anyhow::Result<()> {
        self.emit_text(&line.to_string())
    }

    /// [`FrameSink::emit`] for a line already written out as JSON text.
    fn emit_text(&mut self, line: &str) -> anyhow::Result<()> {
        self.emit_spliced(line, &[], "")
    }

    /// One line made of `head`, the valid JSON `raw` (its line breaks, whitespace between
    /// tokens, written as spaces) and `tail`, written piecewise: a large message is never
    /// copied whole.
    fn emit_spliced(&mut self, head: &str, raw: &[u8], tail: &str) -> anyhow::Result<()> {
        let flat = |c: &[u8]| -> Vec<u8> {
            c.iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
                .collect()
        };
        if self.outputs.mjpeg_stdout {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(head.as_bytes());
            for c in raw.chunks(64 << 10) {
                let _ = err.write_all(&flat(c));
            }
            let _ = writeln!(err, "{tail}");
            return Ok(());
        }
        if self.stdout_closed {
            return Ok(());
        }
        let mut ok = write_stdout(head.as_bytes())?;
        for c in raw.chunks(64 << 10) {
            ok = ok && write_stdout(&flat(c))?;
        }
        ok = ok && write_stdout(format!("{tail}\n").as_bytes())?;
        if !ok {
            self.stdout_closed = true;
        }
        Ok(())
    }

    /// Hands a frame to the live sinks: MJPEG on stdout, the browser viewer, windows.
    fn show(&mut self, f: &ReceivedFrame, meta: Option<&FrameMeta>) -> anyhow::Result<()> {
        let key = stream_key(f.peer, f.session, f.stream);
        if self.outputs.mjpeg_stdout && !self.stdout_closed {
            if ImageFormat::detect(&f.payload) == Some(ImageFormat::Jpeg) {
                // The reader went away (the player quit): recv stops, quietly.
                self.stdout_closed = !write_stdout(&f.payload)?;
            } else {
                if self.outputs.not_jpeg == 0 {
                    eprintln!(
                        "pixgram: warning: --stdout carries JPEG frames only; skipping others"
                    );
                }
                self.outputs.not_jpeg += 1;
            }
        }
        if let Some(v) = &self.outputs.viewer {
            v.on_frame(&key, f.payload.clone(), meta.and_then(FrameMeta::latency));
        }
        #[cfg(feature = "window")]
        if let Some(w) = &self.outputs.window {
            w.show(&key, f.payload.clone());
        }
        Ok(())
    }

    /// The live status line: totals, the rate over the last second, and what went wrong.
    pub fn progress(&mut self, stats: &pixgram::ReceiverStats) -> String {
        let now = Instant::now();
        let (then, bytes_then) = *self.rate_mark.get_or_insert((now, self.bytes));
        let span = now - then;
        let rate = if span.is_zero() {
            0.0
        } else {
            (self.bytes - bytes_then) as f64 * 8.0 / 1e6 / span.as_secs_f64()
        };
        if span >= Duration::from_secs(1) {
            self.rate_mark = Some((now, self.bytes));
        }
        format!(
            "{} frames, {} messages, {:.1} MB; {rate:.0} Mbit/s; {} chunks lost on the way, {} \
             frames rebuilt by FEC, {} expired, {} lost",
            self.frames,
            self.messages,
            self.bytes as f64 / 1e6,
            stats.chunks_lost,
            stats.frames_recovered_by_fec,
            stats.frames_expired,
            self.lost,
        )
    }

    pub fn summary(&self, stats: &pixgram::ReceiverStats) -> String {
        let span = match (self.first, self.last) {
            (Some(a), Some(b)) => b - a,
            _ => Duration::ZERO,
        };
        let dropped = stats.bad_checksum
            + stats.truncated
            + stats.bad_magic
            + stats.bad_version
            + stats.unknown_type
            + stats.bad_header;
        format!(
            "received {}; {} messages; {} frames lost (expired {}, never seen {}, rejected {}); \
             {} not saved; {} datagrams ({} malformed, {} duplicate) from {} sessions; {} \
             chunks lost on the way and asked for again in {} NACKs; {} frames completed from \
             parity ({} chunks rebuilt), {} superseded by newer frames",
            rate_line(self.frames, self.bytes, span),
            self.messages,
            self.lost,
            stats.frames_expired,
            stats.frames_never_seen,
            stats.frames_rejected,
            self.not_saved,
            stats.datagrams,
            dropped,
            stats.duplicate_chunks,
            stats.sessions_started,
            stats.chunks_lost,
            stats.nacks_sent,
            stats.frames_recovered_by_fec,
            stats.chunks_recovered_by_fec,
            stats.frames_superseded,
        )
    }
}

/// At most [`LineBudget::PER_SEC`] lines a second about losses and sessions, so a flood cannot
/// bury the terminal or a log: the rest are counted and reported with the next line allowed.
#[derive(Debug, Default)]
struct LineBudget {
    second: Option<Instant>,
    printed: u32,
    suppressed: u64,
}

impl LineBudget {
    const PER_SEC: u32 = 20;

    /// `Some(lines suppressed since the last one printed)` if a line may be printed now.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if self
            .second
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1))
        {
            self.second = Some(now);
            self.printed = 0;
        }
        if self.printed >= Self::PER_SEC {
            self.suppressed += 1;
            return None;
        }
        self.printed += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}
