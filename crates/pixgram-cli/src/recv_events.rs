//! What `recv` does with each event: hands frames to the sinks, prints a JSON line per
//! event (on stdout, or stderr when stdout carries MJPEG), counts, and shows progress. It is the
//! library's receive loop's [`Handler`].

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use pixgram::figures::rate_line;
use pixgram::receive::{Handler, ReceiverDriver};
use pixgram::sink::saver::SaveDone;
use pixgram::sink::{self, stream_key, Arrived, Refusal, Sinks, Wrote};
use pixgram::{
    DeliveryKey, FrameMeta, LossReason, PayloadKind, ReceivedFrame, ReceiverEvent, UdpReceiver,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::output::write_stdout;
use crate::timing::Timing;

/// Messages up to this size are parsed and printed compactly; larger ones are checked
/// without building a tree and printed as they came.
const PARSED_MESSAGE_LIMIT: usize = 256 << 10;

/// `recv`'s handler of receiver events.
pub struct RecvEvents {
    quiet: bool,
    /// Items after which recv is done (`--count`).
    count: Option<u64>,
    /// After `--count`: done once every sender has closed.
    pub lingering: bool,
    frames: u64,
    messages: u64,
    bytes: u64,
    lost: u64,
    /// When the first session started and the last frame arrived: the span rates are over.
    first: Option<Instant>,
    last: Option<Instant>,
    /// Lines about losses and sessions: at most a few per second, the rest counted.
    lines: LineBudget,
    /// Where the live rate is measured from: (when, bytes received by then).
    rate_mark: Option<(Instant, u64)>,
    /// Sessions started and not yet ended.
    pub open_sessions: u64,
    /// Where frames go.
    pub sinks: Sinks,
    /// End-to-end latency and its shares, for frames whose sender stamped them.
    pub timing: Timing,
    /// Issue 17: every frame and message also published on NATS (`--publish`).
    #[cfg(feature = "nats")]
    pub nats: Option<crate::nats::Publisher>,
    /// The hub refused this subscriber: it is full.
    pub hub_full: bool,
    /// The hub said this subscriber fell behind (said once).
    said_hub_behind: bool,
    /// The JSON lines' reader went away (EPIPE).
    json_closed: bool,
    spinner: ProgressBar,
    said_full: bool,
    said_flood: bool,
    /// Frames waiting for a saver or JetStream (or both) before they are confirmed (and
    /// their line printed): as many as the savers' bounded queue and the JetStream
    /// acknowledgements awaited (--nats-queue) hold.
    pending: HashMap<DeliveryKey, Pending>,
    /// The pending frames the folder's savers have, by saver ticket.
    saving: HashMap<u64, DeliveryKey>,
    /// The pending frames whose JetStream acknowledgement is awaited, by NATS ticket.
    #[cfg(feature = "nats")]
    publishing: HashMap<u64, DeliveryKey>,
    /// Reports taken from the savers (reused).
    done: Vec<SaveDone>,
    /// Outcomes taken from JetStream (reused).
    #[cfg(feature = "nats")]
    acks: Vec<(u64, pixgram::sink::nats::Published)>,
    said_save_failed: bool,
    said_behind: bool,
}

/// A frame confirmed once the work done off the receive loop for it (a save, a JetStream
/// acknowledgement) has all reported.
struct Pending {
    /// Its JSON line, updated by each report.
    line: Value,
    /// Whether to print the line at the end even if every sink took it (a frame's line when
    /// not --quiet; a message's was printed when it came).
    print: bool,
    /// A message (its refusal says so).
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    message: bool,
    /// Whether every sink took it so far.
    stored: bool,
    /// Reports still to come.
    waits: u8,
}

impl<S: ReceiverDriver> Handler<S> for RecvEvents {
    type Error = anyhow::Error;

    fn event(&mut self, rx: &mut S, event: ReceiverEvent) -> anyhow::Result<()> {
        if let Some((frame, stored)) = self.handle(event)? {
            rx.udp_mut().confirm(frame, stored);
        }
        Ok(())
    }

    fn collect(&mut self, rx: &mut S) -> anyhow::Result<()> {
        self.confirm_saved(rx.udp_mut())?;
        self.confirm_published(rx.udp_mut())
    }

    fn done(&self) -> bool {
        self.hub_full
            || self.stdout_closed()
            || if self.lingering {
                self.open_sessions == 0 && self.pending.is_empty()
            } else {
                self.count.is_some_and(|n| self.items() >= n) && self.pending.is_empty()
            }
    }

    fn tick(&mut self, rx: &mut S) {
        while let Some(n) = rx.poll_notice() {
            self.hub_notice(n);
        }
        self.tick_on(rx.udp());
    }
}

impl RecvEvents {
    /// A line for what the hub told this subscriber (BEHIND only the first time).
    fn hub_notice(&mut self, n: pixgram::hub::SubscriberNotice) {
        use pixgram::hub::SubscriberNotice as N;
        let line = match n {
            N::Subscribed { renewed: false } => {
                "pixgram: subscribed: the hub holds this subscriber; its frames follow".to_string()
            }
            N::Subscribed { renewed: true } => "pixgram: subscribed again (the hub had \
                 forgotten this subscriber: it restarted, or heard nothing for a while)"
                .to_string(),
            N::Full => {
                self.hub_full = true;
                "pixgram: the hub refused this subscriber: all its places (--max-subscribers) \
                 are taken"
                    .to_string()
            }
            N::Behind { skipped } if !self.said_hub_behind => {
                self.said_hub_behind = true;
                format!(
                    "pixgram: fell behind: the hub skipped {skipped} frames for this subscriber \
                     to catch up (its path is slower than the stream); the summary counts them \
                     all"
                )
            }
            N::Behind { .. } => return,
            N::NoAnswer => "pixgram: the hub has not answered for 5 s; still asking".to_string(),
        };
        self.spinner.suspend(|| eprintln!("{line}"));
    }

    /// Progress, and the lines said once (full, flooded).
    pub fn tick_on(&mut self, rx: &UdpReceiver) {
        let message = self.progress(rx.stats());
        self.spinner.set_message(message);
        self.spinner.tick();
        if !self.said_full && rx.stats().over_peers > 0 {
            self.said_full = true;
            self.spinner.suspend(|| {
                eprintln!(
                    "pixgram: refusing new senders: all {} places (--max-peers) are held by \
                     senders active in the last second; the limits line at the end counts \
                     what was refused",
                    rx.core().config().max_peers
                )
            });
        }
        let st = rx.stats();
        if !self.said_flood && st.challenges_limited > 0 {
            self.said_flood = true;
            self.spinner.suspend(|| {
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

impl RecvEvents {
    pub fn new(sinks: Sinks, quiet: bool, count: Option<u64>) -> Self {
        RecvEvents {
            quiet,
            count,
            lingering: false,
            frames: 0,
            messages: 0,
            bytes: 0,
            lost: 0,
            first: None,
            last: None,
            lines: LineBudget::default(),
            rate_mark: None,
            open_sessions: 0,
            sinks,
            timing: Timing::default(),
            #[cfg(feature = "nats")]
            nats: None,
            json_closed: false,
            spinner: ProgressBar::new_spinner(),
            said_full: false,
            said_flood: false,
            pending: HashMap::new(),
            saving: HashMap::new(),
            #[cfg(feature = "nats")]
            publishing: HashMap::new(),
            #[cfg(feature = "nats")]
            acks: Vec::new(),
            done: Vec::new(),
            said_save_failed: false,
            hub_full: false,
            said_hub_behind: false,
            said_behind: false,
        }
    }

    /// Confirms every frame whose file the savers report done: COMPLETE once it is durable
    /// (and the other sinks took it), FAILED if its save failed; prints its line.
    pub fn confirm_saved(&mut self, rx: &mut UdpReceiver) -> anyhow::Result<()> {
        let Some(folder) = &mut self.sinks.folder else {
            return Ok(());
        };
        folder.take_done(&mut self.done);
        let dir = folder.dir().to_path_buf();
        for d in std::mem::take(&mut self.done) {
            let Some(key) = self.saving.remove(&d.ticket) else {
                continue;
            };
            let Some(p) = self.pending.get_mut(&key) else {
                continue;
            };
            match d.saved {
                Ok(path) => p.line["saved"] = json!(path.display().to_string()),
                Err(e) => {
                    if !std::mem::replace(&mut self.said_save_failed, true) {
                        eprintln!(
                            "pixgram: cannot save into {}: {e}; frames not saved are \
                             reported to their senders as not delivered",
                            dir.display()
                        );
                    }
                    p.line["event"] = json!("not_saved");
                    p.line["error"] = json!(e.to_string());
                    p.stored = false;
                }
            }
            self.reported(rx, key)?;
        }
        Ok(())
    }

    /// Confirms every frame whose JetStream outcome came (and whose save, if any, is done):
    /// COMPLETE once the stream stored it, FAILED if it did not.
    pub fn confirm_published(&mut self, _rx: &mut UdpReceiver) -> anyhow::Result<()> {
        #[cfg(feature = "nats")]
        {
            let Some(nats) = &mut self.nats else {
                return Ok(());
            };
            nats.take_acks(&mut self.acks);
            for (ticket, outcome) in std::mem::take(&mut self.acks) {
                let Some(key) = self.publishing.remove(&ticket) else {
                    continue;
                };
                if let (Some(nats), Some(p)) = (&mut self.nats, self.pending.get_mut(&key)) {
                    p.stored &= nats.note(&outcome, p.message, &mut p.line);
                }
                self.reported(_rx, key)?;
            }
        }
        Ok(())
    }

    /// One report for the pending frame `key` came: once they all have, its line is printed
    /// (when asked for, or when a sink did not take it) and it is confirmed.
    fn reported(&mut self, rx: &mut UdpReceiver, key: DeliveryKey) -> anyhow::Result<()> {
        let Some(p) = self.pending.get_mut(&key) else {
            return Ok(());
        };
        p.waits = p.waits.saturating_sub(1);
        if p.waits > 0 {
            return Ok(());
        }
        let Some(p) = self.pending.remove(&key) else {
            return Ok(());
        };
        if p.print || !p.stored {
            self.emit(&p.line)?;
        }
        rx.confirm(key, p.stored);
        Ok(())
    }

    /// Waits (at most `timeout`) for the savers to finish every file and JetStream to answer
    /// for every frame, and confirms them.
    pub fn finish_pending(
        &mut self,
        rx: &mut UdpReceiver,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        if let Some(folder) = &self.sinks.folder {
            folder.drain(timeout);
        }
        #[cfg(feature = "nats")]
        if let Some(nats) = &mut self.nats {
            nats.settle(timeout);
        }
        self.confirm_saved(rx)?;
        self.confirm_published(rx)
    }

    /// Frames and messages received.
    pub fn items(&self) -> u64 {
        self.frames + self.messages
    }

    /// Whether stdout's reader went away (EPIPE): nothing more is written there, and recv
    /// stops.
    pub fn stdout_closed(&self) -> bool {
        self.json_closed || self.sinks.stdout_closed()
    }

    /// Whether frames also go to NATS (`--publish`).
    fn publishes(&self) -> bool {
        #[cfg(feature = "nats")]
        return self.nats.is_some();
        #[cfg(not(feature = "nats"))]
        false
    }

    /// Whether stdout carries MJPEG (the JSON lines then go to stderr).
    fn mjpeg(&self) -> bool {
        self.sinks.stdout.is_some()
    }

    /// Clears the progress line.
    pub fn finish_progress(&self) {
        self.spinner.finish_and_clear();
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
                return Ok(self.on_frame(f)?.map(|stored| (key, stored)));
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
                let key = stream_key(peer, session, stream);
                self.sinks.lost(&key, count, reason == LossReason::Expired);
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
    /// said once on stderr, then counted); `None` if the folder's savers have it (confirmed
    /// by [`RecvEvents::confirm_saved`]).
    fn on_frame(&mut self, f: ReceivedFrame) -> anyhow::Result<Option<bool>> {
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
                #[cfg(feature = "nats")]
                let mut publishing = None;
                #[cfg(feature = "nats")]
                if let Some(p) = &mut self.nats {
                    match p.publish(&f, "", &mut line) {
                        crate::nats::Handed::Taken => {}
                        crate::nats::Handed::Refused => {
                            self.emit(&line)?;
                            return Ok(Some(false));
                        }
                        crate::nats::Handed::Pending(ticket) => publishing = Some(ticket),
                    }
                }
                // Confirmed when JetStream has it: the line is printed now, and again only
                // if JetStream does not take it.
                #[cfg(feature = "nats")]
                if let Some(ticket) = publishing {
                    let base = json!({
                        "peer": f.peer.to_string(), "session": f.session.to_string(),
                        "stream": f.stream.0, "frame": f.frame.0,
                    });
                    self.print_message(&f, line)?;
                    let pending = Pending {
                        line: base,
                        print: false,
                        message: true,
                        stored: !self.stdout_closed() || self.mjpeg(),
                        waits: 0,
                    };
                    self.wait_for(f.key(), pending, None, Some(ticket));
                    return Ok(None);
                }
                self.print_message(&f, line)?;
                // Printed is taken, unless nobody reads stdout any more.
                return Ok(Some(!self.stdout_closed() || self.mjpeg()));
            }
            PayloadKind::Frame => {
                self.frames += 1;
                self.bytes += f.payload.len() as u64;
                line["event"] = json!("frame");
                line["bytes"] = json!(f.payload.len());
                if let Some(total) = parsed.as_ref().and_then(FrameMeta::latency) {
                    line["latency_ms"] = json!(total.as_secs_f64() * 1e3);
                    let encode = parsed.as_ref().and_then(FrameMeta::encode_time);
                    self.timing.push(total, encode);
                }
                if let Some(d) = &self.timing.decoder {
                    d.offer(f.payload.clone());
                }
            }
        }
        let key = stream_key(f.peer, f.session, f.stream);
        let name = sink::file_name_for(&f, parsed.as_ref().and_then(|m| m.file.as_deref()));
        let taken = self
            .sinks
            .frame(&Arrived {
                from: f.peer.ip(),
                stream: &key,
                name: &name,
                payload: &f.payload,
                latency: parsed.as_ref().and_then(FrameMeta::latency),
            })
            .context("cannot write to stdout")?;
        if taken.stdout == Some(Wrote::NotJpeg)
            && self
                .sinks
                .stdout
                .as_ref()
                .is_some_and(|s| s.not_jpeg() == 1)
        {
            eprintln!("pixgram: warning: --stdout carries JPEG frames only; skipping others");
        }
        let mut stored = true;
        if let Some(path) = &taken.saved {
            line["saved"] = json!(path.display().to_string());
        }
        match taken.refused {
            None => {}
            Some(Refusal::OverBudget) => {
                if self
                    .sinks
                    .folder
                    .as_ref()
                    .is_some_and(|d| d.over_budget() == 1)
                {
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
            Some(Refusal::Failed(e)) => {
                if let Some(folder) = self.sinks.folder.as_ref().filter(|d| d.failures() == 1) {
                    eprintln!(
                        "pixgram: cannot save into {}: {e}; frames not saved are \
                         reported to their senders as not delivered",
                        folder.dir().display()
                    );
                }
                line["event"] = json!("not_saved");
                line["error"] = json!(e.to_string());
                stored = false;
            }
            Some(Refusal::Behind) => {
                if !std::mem::replace(&mut self.said_behind, true) {
                    eprintln!(
                        "pixgram: the disk is slower than the senders: a frame found no room \
                         in the savers' queue in time; such frames are reported to their \
                         senders as not delivered"
                    );
                }
                line["event"] = json!("not_saved");
                line["error"] = json!("the savers' queue had no room in time");
                stored = false;
            }
        }
        #[allow(unused_mut)]
        let mut publishing = None;
        #[cfg(feature = "nats")]
        if let Some(p) = &mut self.nats {
            match p.publish(&f, &name, &mut line) {
                crate::nats::Handed::Taken => {}
                crate::nats::Handed::Refused => stored = false,
                crate::nats::Handed::Pending(ticket) => publishing = Some(ticket),
            }
        }
        if let Some(m) = meta {
            line["meta"] = m;
        }
        if taken.saving.is_some() || publishing.is_some() {
            let pending = Pending {
                line,
                print: !self.quiet,
                message: false,
                stored,
                waits: 0,
            };
            self.wait_for(f.key(), pending, taken.saving, publishing);
            return Ok(None);
        }
        if !self.quiet || !stored {
            self.emit(&line)?;
        }
        if self.sinks.folder.is_none() && self.stdout_closed() && !self.mjpeg() && !self.publishes()
        {
            // The JSON line was the only sink, and nobody reads it any more.
            stored = false;
        }
        Ok(Some(stored))
    }

    /// Prints a message's line (`line`, with the message in it).
    fn print_message(&mut self, f: &ReceivedFrame, mut line: Value) -> anyhow::Result<()> {
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
                return Ok(());
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
        self.emit(&line)
    }

    /// Keeps frame `key` until its save (`saving`) and its JetStream acknowledgement
    /// (`publishing`) have reported, whichever it waits for.
    fn wait_for(
        &mut self,
        key: DeliveryKey,
        mut pending: Pending,
        saving: Option<u64>,
        publishing: Option<u64>,
    ) {
        let mut waits = 0;
        if let Some(t) = saving {
            self.saving.insert(t, key);
            waits += 1;
        }
        #[cfg(feature = "nats")]
        if let Some(t) = publishing {
            self.publishing.insert(t, key);
            waits += 1;
        }
        #[cfg(not(feature = "nats"))]
        let _ = publishing;
        pending.waits = waits;
        self.pending.insert(key, pending);
    }

    /// One JSON line: on stdout, or on stderr when stdout carries MJPEG. Once stdout's reader
    /// has gone away, lines for it are dropped and [`RecvEvents::stdout_closed`] says so.
    pub fn emit(&mut self, line: &Value) -> anyhow::Result<()> {
        self.emit_text(&line.to_string())
    }

    /// [`RecvEvents::emit`] for a line already written out as JSON text.
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
        if self.mjpeg() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(head.as_bytes());
            for c in raw.chunks(64 << 10) {
                let _ = err.write_all(&flat(c));
            }
            let _ = writeln!(err, "{tail}");
            return Ok(());
        }
        if self.json_closed {
            return Ok(());
        }
        let mut ok = write_stdout(head.as_bytes())?;
        for c in raw.chunks(64 << 10) {
            ok = ok && write_stdout(&flat(c))?;
        }
        ok = ok && write_stdout(format!("{tail}\n").as_bytes())?;
        if !ok {
            self.json_closed = true;
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
            self.sinks.folder.as_ref().map_or(0, |d| d.failures()),
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
