//! `pixgram send`: files to a receiver, each acknowledged, with a window of frames in flight.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use pixgram::{source, FrameId, OutgoingFrame, SenderConfig, SenderEvent, StreamId, UdpSender};
use pixgram_core::{FecPolicy, SendFailure};
use serde_json::{Map, Value};

use crate::cli::{resolve, Compat, Mode, SendArgs};
use crate::exit;
use crate::summary::{ms, rate_line, Samples};

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    if args.compat == Some(Compat::Seed) {
        return crate::compat::send(&args);
    }
    if args.pattern || args.stdin || args.camera.is_some() {
        return crate::stream::run(args);
    }
    let to = resolve("--to", &args.to)?;
    let meta = parse_meta(args.meta.as_deref())?;
    let delivery = Delivery::from_args(&args)?;
    let transcode = transcode_of(&args)?;
    let files = collect_files(&args)?;
    if !transcode.is_identity() {
        // Re-encoding needs images: say which file is not one before anything is sent.
        for f in &files {
            let mut head = [0u8; 8];
            let n = std::io::Read::read(&mut std::fs::File::open(f)?, &mut head).unwrap_or(0);
            if pixgram::codec::ImageFormat::detect(&head[..n]).is_none() {
                bail!(
                    "{}: not a JPEG or PNG image (--quality, --resize and --format re-encode \
                     images)",
                    f.display()
                );
            }
        }
    }
    check_sizes(&files, &meta, args.max_frame_size)?;
    let stop = crate::signals::stop_flag()?;
    let mut tx = connect(&args, to)?;
    let total = files.len() as u64 * u64::from(args.repeat);
    let bar = progress_bar(total);
    let verbose = args.verbose;
    let mut report = FrameSender::new(&mut tx, meta, bar.clone())
        .with_delivery(delivery)
        .with_transcode(transcode)
        .with_stop(stop)
        .send_all(&files, args.repeat, |v| {
            if verbose {
                bar.suspend(|| crate::recv::print_line(&v.line()));
            }
        });
    bar.finish_and_clear();
    eprintln!("{}", report.summary());
    eprintln!("{}", path_line(&tx));
    let outcome = conclude(&mut report, &tx, delivery, args.max_loss);
    tx.close()?;
    outcome
}

/// The files named and those in every --dir, each folder checked to hold at least one.
fn collect_files(args: &SendArgs) -> anyhow::Result<Vec<PathBuf>> {
    for d in &args.dir {
        if source::collect_files(&[], std::slice::from_ref(d))?.is_empty() {
            bail!("{} is empty (no files to send)", d.display());
        }
    }
    let files = source::collect_files(&args.files, &args.dir)?;
    if files.is_empty() {
        bail!("nothing to send: name files, or a folder with --dir");
    }
    Ok(files)
}

/// Refuses, before anything is sent, a file that would make a frame larger than `max`
/// (metadata included, as the receiver counts it).
fn check_sizes(files: &[PathBuf], meta: &Map<String, Value>, max: u64) -> anyhow::Result<()> {
    for f in files {
        let len = std::fs::metadata(f)
            .with_context(|| format!("{}", f.display()))?
            .len();
        let meta_len = 4 + frame_meta(meta, Map::new(), &file_name(f))?.len() as u64;
        if len + meta_len > max {
            bail!(
                "{}: {len} bytes, larger than --max-frame-size {max} (metadata included); \
                 raise --max-frame-size here and on the receiver",
                f.display()
            );
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The metadata of one frame: `meta`, then `extra`, then "file": `name`.
fn frame_meta(
    meta: &Map<String, Value>,
    extra: Map<String, Value>,
    name: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut meta = meta.clone();
    meta.extend(extra);
    meta.insert("file".into(), Value::String(name.to_string()));
    serde_json::to_vec(&meta).context("encoding metadata")
}

/// How a run ends, after its summary: `Ok` only if everything asked for was delivered (live:
/// within `max_loss`); otherwise an error with the exit code of [`crate::exit`], after a line
/// naming what was not delivered.
pub fn conclude(
    report: &mut SendReport,
    tx: &UdpSender,
    delivery: Delivery,
    max_loss: Option<f64>,
) -> anyhow::Result<()> {
    let heard = tx.heard_from_peer();
    if let Some(line) = report.not_delivered_line() {
        eprintln!("{line}");
    }
    if let Some(e) = report.error.take() {
        return Err(exit::classify(e, heard));
    }
    if report.asked() == 0 {
        return Ok(());
    }
    if !heard && report.sent > 0 && !report.interrupted {
        // (Interrupted early, silence proves nothing: a receiver answers a frame's chunks
        // only when the frame is whole or stalls.)
        return Err(exit::unreachable(no_answer(tx)));
    }
    let missing = report.asked() - report.acked;
    let interrupted = if report.interrupted {
        " (interrupted)"
    } else {
        ""
    };
    match delivery {
        Delivery::Reliable if missing > 0 => Err(exit::undelivered(format!(
            "{missing} of {} frames were not delivered{interrupted}",
            report.asked()
        ))),
        Delivery::Reliable => Ok(()),
        Delivery::Live { .. } => {
            let lost_pct = 100.0 * missing as f64 / report.asked() as f64;
            if report.acked == 0 {
                Err(exit::undelivered(format!(
                    "none of {} frames was delivered{interrupted}",
                    report.asked()
                )))
            } else if max_loss.is_some_and(|max| lost_pct > max) {
                Err(exit::undelivered(format!(
                    "{missing} of {} frames ({lost_pct:.1}%) were not delivered, more than \
                     --max-loss {}%{interrupted}",
                    report.asked(),
                    max_loss.unwrap_or_default()
                )))
            } else if report.interrupted && report.unsent > 0 {
                Err(exit::undelivered(format!(
                    "interrupted: {} of {} frames were never sent",
                    report.unsent,
                    report.asked()
                )))
            } else {
                Ok(())
            }
        }
    }
}

/// Why nothing came back: nothing listening, or a receiver that does not answer.
fn no_answer(tx: &UdpSender) -> String {
    if tx.is_refused() {
        return format!(
            "nothing is listening at {} (the kernel refused the datagrams)",
            tx.peer()
        );
    }
    let hint = if tx.open_stats().is_some() {
        " (or it has another key: a receiver drops datagrams that fail authentication)"
    } else {
        " (the receiver may require --key-file: a receiver with a key drops datagrams \
         without one, without answering)"
    };
    format!(
        "no answer from {}: is `pixgram recv` running there?{hint}",
        tx.peer()
    )
}

/// How `pixgram send` delivers frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delivery {
    /// Every frame, whole, retransmitting lost chunks.
    Reliable,
    /// Frames at `interval`, each worthless after `deadline`, with optional FEC.
    Live {
        interval: Duration,
        deadline: Duration,
        fec: FecPolicy,
    },
}

impl Delivery {
    pub fn from_args(args: &SendArgs) -> anyhow::Result<Self> {
        let streaming = args.pattern || args.stdin || args.camera.is_some();
        let mode = args.mode.unwrap_or(if streaming {
            Mode::Live
        } else {
            Mode::Reliable
        });
        if mode == Mode::Reliable {
            if args.fps.is_some() || args.deadline.is_some() || args.fec.is_some() {
                bail!("--fps, --deadline and --fec belong to --mode live");
            }
            if args.max_loss.is_some() {
                bail!("--max-loss belongs to --mode live (reliable mode delivers every frame or fails)");
            }
            return Ok(Delivery::Reliable);
        }
        if let Some(m) = args.max_loss {
            if !(0.0..=100.0).contains(&m) {
                bail!("--max-loss takes a percentage from 0 to 100, not {m}");
            }
        }
        let fps = args.fps.unwrap_or(30.0);
        if !(fps > 0.0 && fps <= 10_000.0) {
            bail!("--fps must be between 0 and 10000, not {fps}");
        }
        let interval = Duration::from_secs_f64(1.0 / fps);
        let deadline = args
            .deadline
            .map(Duration::from_millis)
            .unwrap_or((interval * 3).max(Duration::from_millis(50)));
        if deadline.is_zero() || deadline > Duration::from_millis(u64::from(u16::MAX)) {
            bail!("--deadline must be between 1 and 65535 ms");
        }
        let fec = match args.fec.as_deref() {
            None => FecPolicy::Off,
            Some("auto") => FecPolicy::Auto,
            Some(p) => match p.trim_end_matches('%').parse::<f32>() {
                Ok(v) if (0.0..=100.0).contains(&v) => FecPolicy::Ratio(v / 100.0),
                _ => bail!("--fec takes a percentage from 0 to 100, or `auto`, not `{p}`"),
            },
        };
        Ok(Delivery::Live {
            interval,
            deadline,
            fec,
        })
    }
}

/// A sender to `to` configured by the flags (window, datagram size, timeouts, rate, key).
pub fn connect(args: &SendArgs, to: std::net::SocketAddr) -> anyhow::Result<UdpSender> {
    // Live frames have a deadline and cannot wait for slow start from the core's cautious
    // 5 MB/s: live mode starts at 50 MB/s, as every mode did before issue 12. Reliable mode
    // starts low, so a slow bottleneck's queue does not overflow for a whole round trip.
    let live = matches!(Delivery::from_args(args), Ok(Delivery::Live { .. }));
    let defaults = SenderConfig::default();
    let config = SenderConfig {
        window: args.window as usize,
        datagram_size: args.datagram_size as usize,
        max_datagram_size: args
            .max_datagram_size
            .map(|m| m.max(args.datagram_size) as usize),
        peer_timeout: Duration::from_secs_f64(args.timeout),
        frame_timeout: Duration::from_secs_f64(args.timeout),
        max_rate: args.rate.map(|mbit| mbit * 1e6 / 8.0),
        max_frame_len: args.max_frame_size,
        initial_rate: if live { 50e6 } else { defaults.initial_rate },
        ..defaults
    };
    let key = crate::keygen::load(args.key_file.as_deref())?;
    Ok(UdpSender::connect_keyed(to, config, key.as_ref())?)
}

/// What --quality, --resize and --format ask for.
pub fn transcode_of(args: &SendArgs) -> anyhow::Result<pixgram::codec::Transcode> {
    use pixgram::codec::{ImageFormat, Transcode};
    Ok(Transcode {
        format: args.format.map(|f| match f {
            crate::cli::Format::Jpeg => ImageFormat::Jpeg,
            crate::cli::Format::Png => ImageFormat::Png,
        }),
        quality: args.quality,
        size: args
            .resize
            .as_deref()
            .map(|s| crate::cli::parse_size("--resize", s))
            .transpose()?,
    })
}

/// Parses `--meta`: it must be a JSON object.
pub fn parse_meta(meta: Option<&str>) -> anyhow::Result<Map<String, Value>> {
    let Some(text) = meta else {
        return Ok(Map::new());
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => bail!("--meta must be a JSON object, like '{{\"camera\":\"front\"}}'"),
        Err(e) => bail!("--meta is not valid JSON: {e}"),
    }
}

/// Retransmissions, rate, RTT and queueing delay as the sender sees them.
pub fn path_line(tx: &UdpSender) -> String {
    let s = tx.stats();
    let p = tx.core().path();
    let share = 100.0 * s.chunks_retransmitted as f64 / s.datagrams_sent.max(1) as f64;
    format!(
        "path: {} datagrams ({} parity), {} chunks retransmitted ({share:.1}%) after {} NACKs \
         and {} timeouts; rate {:.0} Mbit/s, bottleneck estimate {}; smoothed RTT {}; \
         queueing delay {}; receiver sees {} loss",
        s.datagrams_sent,
        s.parity_chunks_sent,
        s.chunks_retransmitted,
        s.nacks_received - s.progress_reports_received,
        s.rto_expirations,
        p.rate * 8.0 / 1e6,
        p.bandwidth
            .map_or("n/a".into(), |b| format!("{:.1} Mbit/s", b * 8.0 / 1e6)),
        p.srtt.map_or("n/a".into(), ms),
        p.queueing_delay().map_or("n/a".into(), ms),
        loss_text(p.loss),
    ) + &mtu_text(tx)
}

/// The datagram size path MTU discovery settled on, when it ran.
fn mtu_text(tx: &UdpSender) -> String {
    let s = tx.stats();
    if s.mtu_probes_sent == 0 {
        return String::new();
    }
    format!(
        "; datagrams of {} bytes (path MTU: {} of {} probes confirmed, {} black holes)",
        tx.core().datagram_size(),
        s.mtu_probes_confirmed,
        s.mtu_probes_sent,
        s.mtu_black_holes
    )
}

/// The loss the receiver measured, "n/a" before it reported any (never the FEC prior).
fn loss_text(loss: Option<f64>) -> String {
    loss.map_or("n/a".into(), |l| format!("{:.1}%", l * 100.0))
}

pub fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames {msg}",
        )
        .expect("valid template"),
    );
    bar
}

/// The fate of one frame.
pub struct Verdict {
    pub name: String,
    pub frame: FrameId,
    pub bytes: usize,
    pub outcome: Result<Duration, SendFailure>,
    /// Reported lost first, then acknowledged after all (`outcome` holds the latency).
    pub late: bool,
}

impl Verdict {
    pub fn line(&self) -> String {
        match self.outcome {
            Ok(latency) if self.late => format!(
                "frame {:>5}  {:<32} {:>10} B  acked late, after {} (counted delivered)",
                self.frame,
                self.name,
                self.bytes,
                ms(latency)
            ),
            Ok(rtt) => format!(
                "frame {:>5}  {:<32} {:>10} B  acked, rtt {}",
                self.frame,
                self.name,
                self.bytes,
                ms(rtt)
            ),
            Err(why) => format!(
                "frame {:>5}  {:<32} {:>10} B  LOST ({why:?})",
                self.frame, self.name, self.bytes
            ),
        }
    }
}

/// Frames not delivered remembered by name (the most recent; the counts stay exact).
const NAMED_MAX: usize = 4096;
/// Names printed in the summary before "and N more".
const NAMES_SHOWN: usize = 20;

/// What a run of sends came to.
#[derive(Default)]
pub struct SendReport {
    /// Frames handed to the sender.
    pub sent: u64,
    pub acked: u64,
    pub lost: u64,
    /// Frames asked for but never handed to the sender (the run ended first).
    pub unsent: u64,
    /// Frames first reported lost, then acknowledged (already in `acked`).
    pub late_acks: u64,
    /// Reliable files sent again after the receiver expired them.
    pub retried: u64,
    pub bytes_acked: u64,
    pub rtt: Samples,
    pub latency: Samples,
    pub elapsed: Duration,
    pub error: Option<anyhow::Error>,
    /// Ctrl-C or SIGTERM ended the run.
    pub interrupted: bool,
    /// Frames lost, by id: name, size, why.
    pub not_delivered: BTreeMap<FrameId, (String, usize, SendFailure)>,
    /// Names of the first frames never sent.
    pub unsent_names: Vec<String>,
}

impl SendReport {
    pub fn summary(&mut self) -> String {
        let mut late = String::new();
        if self.late_acks > 0 {
            late.push_str(&format!(", {} acknowledged late", self.late_acks));
        }
        if self.retried > 0 {
            late.push_str(&format!(
                ", {} sent again after the receiver expired them",
                self.retried
            ));
        }
        format!(
            "sent {}; acked {}, lost {}; RTT {}; latency {}; delivered {} of {} ({}){late}",
            rate_line(self.acked, self.bytes_acked, self.elapsed),
            self.acked,
            self.lost,
            self.rtt.describe(),
            self.latency.describe(),
            self.acked,
            self.asked(),
            percent(self.acked, self.asked()),
        )
    }

    /// Frames asked for: sent, or meant to be and never sent.
    pub fn asked(&self) -> u64 {
        self.sent + self.unsent
    }

    /// "not delivered: a.jpg (Rejected), ... and N more", or `None` if everything was.
    pub fn not_delivered_line(&self) -> Option<String> {
        if self.lost + self.unsent == 0 {
            return None;
        }
        let mut names: Vec<String> = self
            .not_delivered
            .values()
            .take(NAMES_SHOWN)
            .map(|(name, _, why)| format!("{name} ({why:?})"))
            .collect();
        let room = NAMES_SHOWN.saturating_sub(names.len());
        names.extend(
            self.unsent_names
                .iter()
                .take(room)
                .map(|n| format!("{n} (not sent)")),
        );
        let total = self.lost + self.unsent;
        if names.is_empty() {
            return Some(format!("not delivered: {total} frames (never sent)"));
        }
        let more = total.saturating_sub(names.len() as u64);
        let mut line = format!("not delivered: {}", names.join(", "));
        if more > 0 {
            line.push_str(&format!(" and {more} more"));
        }
        Some(line)
    }
}

/// "96.7%", or "n/a" of nothing.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "n/a".into();
    }
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

/// Sends files as frames through a [`UdpSender`] and collects every verdict.
pub struct FrameSender<'a> {
    tx: &'a mut UdpSender,
    delivery: Delivery,
    meta: Map<String, Value>,
    bar: ProgressBar,
    /// Frames without a verdict: name, bytes, and the file's buffer to reuse afterwards.
    pending: HashMap<FrameId, (String, usize, Option<Bytes>)>,
    /// Reads each file once into a reused buffer (no fresh pages per frame).
    reader: source::FileReader,
    /// Reliable files in flight: the file and how many times it was sent.
    sources: HashMap<FrameId, (PathBuf, u32)>,
    /// Files the receiver expired (it stopped waiting for their missing chunks): sent again.
    retries: VecDeque<(PathBuf, u32)>,
    report: SendReport,
    transcode: pixgram::codec::Transcode,
    stop: Option<Arc<AtomicBool>>,
}

impl<'a> FrameSender<'a> {
    pub fn new(tx: &'a mut UdpSender, meta: Map<String, Value>, bar: ProgressBar) -> Self {
        FrameSender {
            tx,
            delivery: Delivery::Reliable,
            meta,
            bar,
            pending: HashMap::new(),
            reader: source::FileReader::new(),
            sources: HashMap::new(),
            retries: VecDeque::new(),
            report: SendReport::default(),
            transcode: pixgram::codec::Transcode::default(),
            stop: None,
        }
    }

    /// Re-encodes files this way before sending (default: as they are).
    pub fn with_transcode(mut self, transcode: pixgram::codec::Transcode) -> Self {
        self.transcode = transcode;
        self
    }

    /// Delivers frames this way (default: reliable).
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Stops sending when `stop` is set (Ctrl-C): frames in flight are given up, the report
    /// says what was not delivered.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Sends `files` `repeat` times, then waits for every verdict. Errors (a file that cannot
    /// be read, the receiver gone) end the run early and are returned in the report; frames
    /// never sent are counted and named as not delivered.
    pub fn send_all(
        mut self,
        files: &[PathBuf],
        repeat: u32,
        mut on_verdict: impl FnMut(&Verdict),
    ) -> SendReport {
        let start = Instant::now();
        let total = files.len() as u64 * u64::from(repeat);
        let mut done = 0u64;
        let result = (|| -> anyhow::Result<()> {
            let mut due = Instant::now();
            for _ in 0..repeat {
                for path in files {
                    if let Delivery::Live { interval, .. } = self.delivery {
                        // Keep the frame rate, taking acknowledgements while we wait.
                        while Instant::now() < due && !self.stopped() {
                            self.tx.pump(Some(due.min(Instant::now() + STOP_POLL)))?;
                        }
                        due += interval;
                    }
                    if !self.send_retries(&mut on_verdict)? {
                        return Ok(());
                    }
                    if !self.wait_for_room(&mut on_verdict)? {
                        return Ok(());
                    }
                    self.send_one(path, 1)?;
                    done += 1;
                    self.drain(&mut on_verdict);
                }
            }
            loop {
                self.flush(&mut on_verdict)?;
                self.drain(&mut on_verdict);
                if self.retries.is_empty() || !self.send_retries(&mut on_verdict)? {
                    return Ok(());
                }
            }
        })();
        if done < total {
            self.report.unsent = total - done;
            let mut rest = (0..repeat).flat_map(|_| files.iter()).skip(done as usize);
            self.report.unsent_names = rest
                .by_ref()
                .take(NAMES_SHOWN)
                .map(|p| file_name(p))
                .collect();
        }
        self.finish(start, result, &mut on_verdict)
    }

    /// Sends again the files the receiver expired; `false` if interrupted.
    fn send_retries(&mut self, on_verdict: &mut impl FnMut(&Verdict)) -> anyhow::Result<bool> {
        while let Some((path, attempt)) = self.retries.pop_front() {
            if !self.wait_for_room(on_verdict)? {
                self.retries.push_front((path, attempt));
                return Ok(false);
            }
            self.send_one(&path, attempt)?;
            self.drain(on_verdict);
        }
        Ok(true)
    }

    /// Waits (taking verdicts) until the stream has room for another frame; `false` if the
    /// run was interrupted meanwhile.
    fn wait_for_room(&mut self, on_verdict: &mut impl FnMut(&Verdict)) -> anyhow::Result<bool> {
        loop {
            if self.stopped() {
                return Ok(false);
            }
            if self.tx.core().can_send(StreamId::FRAMES) {
                return Ok(true);
            }
            self.tx.pump(Some(Instant::now() + STOP_POLL))?;
            self.drain(on_verdict);
        }
    }

    /// Waits for the verdicts of every frame sent, as long as the receiver keeps answering
    /// (the core reports it gone after `--timeout` of silence); on Ctrl-C, gives them up.
    /// Live frames: then lingers a little for acknowledgements still on their way, so a frame
    /// reported lost at its deadline whose ACK was only slow counts delivered.
    fn flush(&mut self, on_verdict: &mut impl FnMut(&Verdict)) -> anyhow::Result<()> {
        let quiet = self.tx.core().config().peer_timeout * 2;
        let stop = self.stop.clone();
        self.tx.flush_until(quiet, || {
            stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
        })?;
        self.drain(on_verdict);
        if self.delivery == Delivery::Reliable || !self.tx.heard_from_peer() {
            return Ok(());
        }
        // Two smoothed RTTs, or 1 s while there is no sample (every ACK came late).
        let linger = self
            .tx
            .core()
            .path()
            .srtt
            .map_or(LINGER_MAX, |rtt| (rtt * 2).min(LINGER_MAX));
        let until = Instant::now() + linger;
        while Instant::now() < until && !self.stopped() && self.guessed_losses() {
            self.tx.pump(Some(until.min(Instant::now() + STOP_POLL)))?;
            self.drain(on_verdict);
        }
        Ok(())
    }

    /// Whether some frame is reported lost on the sender's guess alone (an ACK may still come).
    fn guessed_losses(&self) -> bool {
        self.report
            .not_delivered
            .values()
            .any(|(_, _, why)| why.is_guess())
    }

    /// The report of a run that started at `start` and ended with `result`.
    fn finish(
        mut self,
        start: Instant,
        result: anyhow::Result<()>,
        on_verdict: &mut impl FnMut(&Verdict),
    ) -> SendReport {
        // Whatever ended the run, every frame sent gets a verdict.
        self.tx.abandon();
        self.drain(on_verdict);
        // Files expired by the receiver and not yet sent again: not delivered.
        for (path, _) in std::mem::take(&mut self.retries) {
            self.report.unsent += 1;
            self.report.unsent_names.insert(0, file_name(&path));
        }
        self.report.elapsed = start.elapsed();
        self.report.interrupted = self.stopped();
        self.report.error = result.err();
        self.report
    }

    /// Sends one file; `attempt` counts from 1.
    fn send_one(&mut self, path: &Path, attempt: u32) -> anyhow::Result<()> {
        let bytes = self.reader.read(path)?;
        let bytes = match self.transcode.apply(&bytes) {
            Ok(std::borrow::Cow::Borrowed(_)) => bytes,
            Ok(std::borrow::Cow::Owned(b)) => Bytes::from(b),
            Err(e) => bail!("{}: {e}", path.display()),
        };
        let id = self.send_bytes(file_name(path), bytes, Map::new())?;
        if self.delivery == Delivery::Reliable {
            self.sources.insert(id, (path.to_path_buf(), attempt));
        }
        Ok(())
    }

    /// Sends one frame named `name` (the metadata's "file"), with `extra` metadata.
    fn send_bytes(
        &mut self,
        name: String,
        bytes: impl Into<Bytes>,
        extra: Map<String, Value>,
    ) -> anyhow::Result<FrameId> {
        let meta = frame_meta(&self.meta, extra, &name)?;
        let bytes: Bytes = bytes.into();
        let len = bytes.len();
        let buffer = bytes.clone();
        let frame = match self.delivery {
            Delivery::Reliable => OutgoingFrame::frame(StreamId::FRAMES, bytes).reliable(true),
            Delivery::Live { deadline, fec, .. } => {
                OutgoingFrame::live(StreamId::FRAMES, bytes, deadline).with_fec(fec)
            }
        };
        let id = match self.tx.send(frame.with_metadata(meta)) {
            Ok(id) => id,
            // The core refused this frame (too large, ...): name it.
            Err(e @ pixgram::DriverError::Send(_)) => bail!("{name}: {e}"),
            Err(e) => return Err(e.into()),
        };
        self.report.sent += 1;
        self.pending.insert(id, (name, len, Some(buffer)));
        Ok(id)
    }

    /// Sends the frames a source produces until it ends (or an error), then waits for every
    /// verdict. The source runs on its own thread; this one only sends and takes verdicts.
    /// `count`: frames asked for, if known (those never sent are counted not delivered).
    pub fn send_stream(
        mut self,
        frames: std::sync::mpsc::Receiver<crate::stream::SourceFrame>,
        count: Option<u64>,
        mut on_verdict: impl FnMut(&Verdict),
    ) -> SendReport {
        use std::sync::mpsc::RecvTimeoutError;
        let start = Instant::now();
        let result = (|| -> anyhow::Result<()> {
            loop {
                match frames.recv_timeout(Duration::from_millis(2)) {
                    Ok(f) => {
                        let id = self.send_bytes(f.name, f.bytes, f.meta)?;
                        // Not a file's buffer: nothing to read into it again.
                        if let Some(p) = self.pending.get_mut(&id) {
                            p.2 = None;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => self
                        .tx
                        .pump(Some(Instant::now() + Duration::from_millis(2)))?,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                self.drain(&mut on_verdict);
            }
            self.flush(&mut on_verdict)
        })();
        if let Some(n) = count {
            // Skipped by the source (the sender busy) or never made (interrupted, error).
            self.report.unsent = n.saturating_sub(self.report.sent);
        }
        self.finish(start, result, &mut on_verdict)
    }

    fn drain(&mut self, on_verdict: &mut impl FnMut(&Verdict)) {
        while let Some(event) = self.tx.poll_event() {
            let verdict = match event {
                SenderEvent::Acked {
                    frame,
                    rtt,
                    latency,
                    ..
                } => {
                    let Some((name, bytes, buffer)) = self.pending.remove(&frame) else {
                        continue;
                    };
                    if let Some(b) = buffer {
                        self.reader.recycle(b);
                    }
                    self.sources.remove(&frame);
                    self.report.rtt.push(rtt);
                    self.report.latency.push(latency);
                    self.report.acked += 1;
                    self.report.bytes_acked += bytes as u64;
                    self.bar.inc(1);
                    Verdict {
                        name,
                        frame,
                        bytes,
                        outcome: Ok(rtt),
                        late: false,
                    }
                }
                SenderEvent::Lost { frame, reason, .. } => {
                    let Some((name, bytes, buffer)) = self.pending.remove(&frame) else {
                        continue;
                    };
                    if let Some(b) = buffer {
                        self.reader.recycle(b);
                    }
                    let source = self.sources.remove(&frame);
                    if let Some((path, attempt)) = source.filter(|_| reason == SendFailure::Expired)
                    {
                        if attempt < MAX_ATTEMPTS && !self.stopped() {
                            // The receiver gave up waiting for its missing chunks (it made no
                            // progress for long): a reliable file is sent again, as a new
                            // frame, while the receiver answers. Counted once, when settled.
                            self.report.sent -= 1;
                            self.report.retried += 1;
                            self.retries.push_back((path, attempt + 1));
                            continue;
                        }
                    }
                    self.report.lost += 1;
                    self.report
                        .not_delivered
                        .insert(frame, (name.clone(), bytes, reason));
                    if self.report.not_delivered.len() > NAMED_MAX {
                        self.report.not_delivered.pop_first();
                    }
                    self.bar.inc(1);
                    Verdict {
                        name,
                        frame,
                        bytes,
                        outcome: Err(reason),
                        late: false,
                    }
                }
                SenderEvent::LateAck { frame, latency, .. } => {
                    // Only its acknowledgement was late or lost: delivered after all.
                    let Some((name, bytes, _)) = self.report.not_delivered.remove(&frame) else {
                        continue;
                    };
                    self.report.lost -= 1;
                    self.report.acked += 1;
                    self.report.late_acks += 1;
                    self.report.bytes_acked += bytes as u64;
                    self.report.latency.push(latency);
                    Verdict {
                        name,
                        frame,
                        bytes,
                        outcome: Ok(latency),
                        late: true,
                    }
                }
                SenderEvent::PeerGone => continue,
            };
            let p = self.tx.core().path();
            self.bar.set_message(format!(
                "{:.0} Mbit/s, rtt {}, queueing {}, loss {}, {} resent",
                p.rate * 8.0 / 1e6,
                p.srtt.map_or("n/a".into(), ms),
                p.queueing_delay().map_or("n/a".into(), ms),
                loss_text(p.loss),
                self.tx.stats().chunks_retransmitted
            ));
            on_verdict(&verdict);
        }
    }
}

/// Times a reliable file is sent when the receiver expires it.
const MAX_ATTEMPTS: u32 = 3;

/// Longest wait for late acknowledgements after a live stream.
const LINGER_MAX: Duration = Duration::from_secs(1);

/// How often a wait checks for Ctrl-C.
const STOP_POLL: Duration = Duration::from_millis(100);
