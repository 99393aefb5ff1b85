//! `pixgram send`: files to a receiver, each acknowledged, with a window of frames in flight.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use pixgram::{source, FrameId, OutgoingFrame, SenderConfig, SenderEvent, StreamId, UdpSender};
use pixgram_core::{FecPolicy, SendFailure};
use serde_json::{Map, Value};

use crate::cli::{resolve, Compat, Mode, SendArgs};
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
    let files = source::collect_files(&args.files, &args.dir)?;
    if files.is_empty() {
        bail!("nothing to send: name files, or a folder with --dir");
    }
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
    let mut tx = connect(&args, to)?;
    let total = files.len() as u64 * u64::from(args.repeat);
    let bar = progress_bar(total);
    let verbose = args.verbose;
    let mut report = FrameSender::new(&mut tx, meta, bar.clone())
        .with_delivery(delivery)
        .with_transcode(transcode)
        .send_all(&files, args.repeat, |v| {
            if verbose {
                bar.suspend(|| println!("{}", v.line()));
            }
        });
    bar.finish_and_clear();
    eprintln!("{}", report.summary());
    eprintln!("{}", path_line(&tx));
    let outcome = report.error.take();
    let stats = tx.close()?;
    if let Some(e) = outcome {
        return Err(e);
    }
    if report.lost > 0 && delivery == Delivery::Reliable {
        bail!(
            "{} of {} frames were not delivered ({} datagrams sent)",
            report.lost,
            report.sent,
            stats.datagrams_sent
        );
    }
    Ok(())
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
            return Ok(Delivery::Reliable);
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
    let config = SenderConfig {
        window: args.window as usize,
        datagram_size: args.datagram_size as usize,
        peer_timeout: Duration::from_secs_f64(args.timeout.max(0.1)),
        frame_timeout: Duration::from_secs_f64(args.timeout.max(0.1)),
        max_rate: args.rate.map(|mbit| mbit.max(0.1) * 1e6 / 8.0),
        ..Default::default()
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
         and {} timeouts; rate {:.0} Mbit/s; smoothed RTT {}; queueing delay {}; receiver \
         sees {} loss",
        s.datagrams_sent,
        s.parity_chunks_sent,
        s.chunks_retransmitted,
        s.nacks_received,
        s.rto_expirations,
        p.rate * 8.0 / 1e6,
        p.srtt.map_or("n/a".into(), ms),
        p.queueing_delay().map_or("n/a".into(), ms),
        loss_text(p.loss),
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
}

impl Verdict {
    pub fn line(&self) -> String {
        match self.outcome {
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

/// What a run of sends came to.
#[derive(Default)]
pub struct SendReport {
    pub sent: u64,
    pub acked: u64,
    pub lost: u64,
    pub bytes_acked: u64,
    pub rtt: Samples,
    pub latency: Samples,
    pub elapsed: Duration,
    pub error: Option<anyhow::Error>,
}

impl SendReport {
    pub fn summary(&mut self) -> String {
        format!(
            "sent {}; acked {}, lost {}; RTT {}; latency {}",
            rate_line(self.acked, self.bytes_acked, self.elapsed),
            self.acked,
            self.lost,
            self.rtt.describe(),
            self.latency.describe(),
        )
    }
}

/// Sends files as frames through a [`UdpSender`] and collects every verdict.
pub struct FrameSender<'a> {
    tx: &'a mut UdpSender,
    delivery: Delivery,
    meta: Map<String, Value>,
    bar: ProgressBar,
    pending: HashMap<FrameId, (String, usize)>,
    report: SendReport,
    transcode: pixgram::codec::Transcode,
}

impl<'a> FrameSender<'a> {
    pub fn new(tx: &'a mut UdpSender, meta: Map<String, Value>, bar: ProgressBar) -> Self {
        FrameSender {
            tx,
            delivery: Delivery::Reliable,
            meta,
            bar,
            pending: HashMap::new(),
            report: SendReport::default(),
            transcode: pixgram::codec::Transcode::default(),
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

    /// Sends `files` `repeat` times, then waits for every verdict. Errors (a file that cannot
    /// be read, the receiver gone) end the run early and are returned in the report.
    pub fn send_all(
        mut self,
        files: &[PathBuf],
        repeat: u32,
        mut on_verdict: impl FnMut(&Verdict),
    ) -> SendReport {
        let start = Instant::now();
        let result = (|| -> anyhow::Result<()> {
            let mut due = Instant::now();
            for _ in 0..repeat {
                for path in files {
                    if let Delivery::Live { interval, .. } = self.delivery {
                        // Keep the frame rate, taking acknowledgements while we wait.
                        while Instant::now() < due {
                            self.tx.pump(Some(due))?;
                        }
                        due += interval;
                    }
                    self.send_one(path)?;
                    self.drain(&mut on_verdict);
                }
            }
            self.flush()
        })();
        self.finish(start, result, &mut on_verdict)
    }

    /// Waits for the verdicts of every frame sent (twice the frame timeout at most).
    fn flush(&mut self) -> anyhow::Result<()> {
        let flush_for = self.tx.core().config().frame_timeout * 2;
        self.tx.flush(flush_for)?;
        Ok(())
    }

    /// The report of a run that started at `start` and ended with `result`.
    fn finish(
        mut self,
        start: Instant,
        result: anyhow::Result<()>,
        on_verdict: &mut impl FnMut(&Verdict),
    ) -> SendReport {
        self.drain(on_verdict);
        self.report.elapsed = start.elapsed();
        self.report.error = result.err();
        self.report
    }

    fn send_one(&mut self, path: &Path) -> anyhow::Result<()> {
        let bytes = source::read_file(path)?;
        let bytes = match self.transcode.apply(&bytes) {
            Ok(std::borrow::Cow::Borrowed(_)) => bytes,
            Ok(std::borrow::Cow::Owned(b)) => b,
            Err(e) => bail!("{}: {e}", path.display()),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.send_bytes(name, bytes, Map::new())
    }

    /// Sends one frame named `name` (the metadata's "file"), with `extra` metadata.
    fn send_bytes(
        &mut self,
        name: String,
        bytes: Vec<u8>,
        extra: Map<String, Value>,
    ) -> anyhow::Result<()> {
        let mut meta = self.meta.clone();
        meta.extend(extra);
        meta.insert("file".into(), Value::String(name.clone()));
        let meta = serde_json::to_vec(&meta).context("encoding metadata")?;
        let len = bytes.len();
        let frame = match self.delivery {
            Delivery::Reliable => OutgoingFrame::frame(StreamId::FRAMES, bytes).reliable(true),
            Delivery::Live { deadline, fec, .. } => {
                OutgoingFrame::live(StreamId::FRAMES, bytes, deadline).with_fec(fec)
            }
        };
        let id = self.tx.send(frame.with_metadata(meta))?;
        self.report.sent += 1;
        self.pending.insert(id, (name, len));
        Ok(())
    }

    /// Sends the frames a source produces until it ends (or an error), then waits for every
    /// verdict. The source runs on its own thread; this one only sends and takes verdicts.
    pub fn send_stream(
        mut self,
        frames: std::sync::mpsc::Receiver<crate::stream::SourceFrame>,
        mut on_verdict: impl FnMut(&Verdict),
    ) -> SendReport {
        use std::sync::mpsc::RecvTimeoutError;
        let start = Instant::now();
        let result = (|| -> anyhow::Result<()> {
            loop {
                match frames.recv_timeout(Duration::from_millis(2)) {
                    Ok(f) => self.send_bytes(f.name, f.bytes, f.meta)?,
                    Err(RecvTimeoutError::Timeout) => self
                        .tx
                        .pump(Some(Instant::now() + Duration::from_millis(2)))?,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                self.drain(&mut on_verdict);
            }
            self.flush()
        })();
        self.finish(start, result, &mut on_verdict)
    }

    fn drain(&mut self, on_verdict: &mut impl FnMut(&Verdict)) {
        while let Some(event) = self.tx.poll_event() {
            let (frame, outcome) = match event {
                SenderEvent::Acked {
                    frame,
                    rtt,
                    latency,
                    ..
                } => {
                    self.report.rtt.push(rtt);
                    self.report.latency.push(latency);
                    (frame, Ok(rtt))
                }
                SenderEvent::Lost { frame, reason, .. } => (frame, Err(reason)),
                SenderEvent::PeerGone | SenderEvent::LateAck { .. } => continue,
            };
            let Some((name, bytes)) = self.pending.remove(&frame) else {
                continue;
            };
            match outcome {
                Ok(_) => {
                    self.report.acked += 1;
                    self.report.bytes_acked += bytes as u64;
                }
                Err(_) => self.report.lost += 1,
            }
            self.bar.inc(1);
            let p = self.tx.core().path();
            self.bar.set_message(format!(
                "{:.0} Mbit/s, rtt {}, queueing {}, loss {}, {} resent",
                p.rate * 8.0 / 1e6,
                p.srtt.map_or("n/a".into(), ms),
                p.queueing_delay().map_or("n/a".into(), ms),
                loss_text(p.loss),
                self.tx.stats().chunks_retransmitted
            ));
            on_verdict(&Verdict {
                name,
                frame,
                bytes,
                outcome,
            });
        }
    }
}
