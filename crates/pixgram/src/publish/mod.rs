//! Publishing: messages ([`send_messages`]), and frames from a source (files, or a live source's frames) through a
//! [`UdpSender`] under a [`Delivery`] policy, every verdict collected in a [`SendReport`].
//! Reliable files the receiver expired are sent again (up to three times); live frames keep
//! their rate, and acknowledgements still on their way after the last one are waited for
//! briefly.

mod messages;
pub mod quality;
mod report;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pixgram_core::{FrameId, SendFailure, SenderEvent, StreamId};

pub use messages::{send_messages, MessageReport};
use quality::{QualityChange, QualityControl, QualityInput, QualityKnob, QualitySummary};
use report::NAMED_MAX;
pub use report::{PublishError, SendReport, Verdict, NAMES_KEPT};

use crate::codec::Transcode;
use crate::delivery::Delivery;
use crate::error::DriverError;
use crate::meta::FrameMeta;
use crate::sender::UdpSender;
use crate::source::{file_name, FileReader, SourceFrame};

/// Sends frames through a [`UdpSender`] and collects every verdict.
pub struct Publisher<'a> {
    tx: &'a mut UdpSender,
    delivery: Delivery,
    meta: FrameMeta,
    /// Frames without a verdict: name, bytes, and the file's buffer to reuse afterwards.
    pending: HashMap<FrameId, (String, usize, Option<Bytes>)>,
    /// Reads each file once into a reused buffer (no fresh pages per frame).
    reader: FileReader,
    /// Reliable files in flight: the file and how many times it was sent.
    sources: HashMap<FrameId, (PathBuf, u32)>,
    /// Files the receiver expired (it stopped waiting for their missing chunks): sent again.
    retries: VecDeque<(PathBuf, u32)>,
    report: SendReport,
    transcode: Transcode,
    stop: Option<Arc<AtomicBool>>,
    adapt: Option<Adapt<'a>>,
}

/// Quality stepping for a re-encoding live source.
struct Adapt<'a> {
    control: QualityControl,
    knob: QualityKnob,
    on_change: Box<dyn FnMut(&QualityChange) + 'a>,
    start: Instant,
    /// Time between frames.
    interval: Duration,
}

type Result<T> = std::result::Result<T, PublishError>;

impl<'a> Publisher<'a> {
    /// A publisher through `tx`, each frame's metadata starting from `meta`.
    pub fn new(tx: &'a mut UdpSender, meta: FrameMeta) -> Self {
        Publisher {
            tx,
            delivery: Delivery::Reliable,
            meta,
            pending: HashMap::new(),
            reader: FileReader::new(),
            sources: HashMap::new(),
            retries: VecDeque::new(),
            report: SendReport::default(),
            transcode: Transcode::default(),
            stop: None,
            adapt: None,
        }
    }

    /// Steps a re-encoding live source's quality (its [`RunningSource::quality`] knob, frames
    /// `interval` apart) to fit the path: down when the sender drops frames or its rate
    /// estimate is below the stream's, back up when the path allows (see [`quality`]). Each
    /// change goes to `on_change` as it happens and into [`SendReport::quality`].
    ///
    /// [`RunningSource::quality`]: crate::source::RunningSource::quality
    pub fn with_quality(
        mut self,
        knob: QualityKnob,
        interval: Duration,
        on_change: impl FnMut(&QualityChange) + 'a,
    ) -> Self {
        let start = knob.get();
        self.report.quality = Some(QualitySummary::starting_at(start));
        self.adapt = Some(Adapt {
            control: QualityControl::new(start, interval),
            knob,
            on_change: Box::new(on_change),
            start: Instant::now(),
            interval,
        });
        self
    }

    /// Re-encodes files this way before sending (default: as they are).
    pub fn with_transcode(mut self, transcode: Transcode) -> Self {
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

    /// Sends `files` `repeat` times, then waits for every verdict, handing each to
    /// `on_verdict` with the sender (for its path figures). Errors (a file that cannot be
    /// read, the receiver gone) end the run early and are returned in the report; frames
    /// never sent are counted and named as not delivered.
    pub fn send_files(
        mut self,
        files: &[PathBuf],
        repeat: u32,
        mut on_verdict: impl FnMut(&Verdict, &UdpSender),
    ) -> SendReport {
        let start = Instant::now();
        let total = files.len() as u64 * u64::from(repeat);
        let mut done = 0u64;
        let result = (|| -> Result<()> {
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
                .take(NAMES_KEPT)
                .map(|p| file_name(p))
                .collect();
        }
        self.finish(start, result, &mut on_verdict)
    }

    /// Sends the frames a source produces until it ends (or an error), then waits for every
    /// verdict. The source runs on its own thread; this one only sends and takes verdicts.
    /// Give the source the sender's [`UdpSender::waker`] ([`crate::source::LiveSource::start`]
    /// does) and each frame goes out as soon as it is queued; without, it may wait up to
    /// 2 ms. `count`: frames asked for, if known (those never sent are counted not delivered).
    pub fn send_stream(
        mut self,
        frames: mpsc::Receiver<SourceFrame>,
        count: Option<u64>,
        mut on_verdict: impl FnMut(&Verdict, &UdpSender),
    ) -> SendReport {
        let start = Instant::now();
        let result = (|| -> Result<()> {
            loop {
                match frames.try_recv() {
                    Ok(f) => {
                        let (len, quality) = (f.bytes.len(), f.quality);
                        let id = self.send_bytes(f.name, f.bytes, f.meta)?;
                        if let Some(q) = quality {
                            self.adapt_quality(q, len);
                        }
                        // Not a file's buffer: nothing to read into it again.
                        if let Some(p) = self.pending.get_mut(&id) {
                            p.2 = None;
                        }
                    }
                    // Nothing waiting: the socket is served (ACKs taken, paced datagrams
                    // sent) until the source's waker says a frame came, or at most
                    // `SOURCE_POLL` for a source without one.
                    Err(TryRecvError::Empty) => self.tx.pump(Some(Instant::now() + SOURCE_POLL))?,
                    Err(TryRecvError::Disconnected) => break,
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

    /// Tells the quality controller of a frame of `len` bytes sent at `quality`, and applies
    /// its answer.
    fn adapt_quality(&mut self, quality: u8, len: usize) {
        let Some(a) = self.adapt.as_mut() else {
            return;
        };
        let core = self.tx.core();
        let dropped = quality::rate_drops(core.stats(), core.path().min_rtt, a.interval);
        a.control.frame_sent(quality, len, dropped);
        let input = QualityInput {
            now: a.start.elapsed(),
            estimate: self.tx.core().path().bandwidth,
            dropped,
        };
        if let Some(change) = a.control.update(input) {
            a.knob.set(change.to);
            (a.on_change)(&change);
            if let Some(summary) = self.report.quality.as_mut() {
                summary.record(change);
            }
        }
    }

    /// Sends again the files the receiver expired; `false` if interrupted.
    fn send_retries(&mut self, on_verdict: &mut impl FnMut(&Verdict, &UdpSender)) -> Result<bool> {
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
    fn wait_for_room(&mut self, on_verdict: &mut impl FnMut(&Verdict, &UdpSender)) -> Result<bool> {
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
    /// (the core reports it gone after its peer timeout of silence); when stopped, gives them
    /// up. Live frames: then lingers a little for acknowledgements still on their way, so a
    /// frame reported lost at its deadline whose ACK was only slow counts delivered.
    fn flush(&mut self, on_verdict: &mut impl FnMut(&Verdict, &UdpSender)) -> Result<()> {
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
        result: Result<()>,
        on_verdict: &mut impl FnMut(&Verdict, &UdpSender),
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
    fn send_one(&mut self, path: &Path, attempt: u32) -> Result<()> {
        let bytes = self.reader.read(path)?;
        let bytes = match self.transcode.apply(&bytes) {
            Ok(std::borrow::Cow::Borrowed(_)) => bytes,
            Ok(std::borrow::Cow::Owned(b)) => Bytes::from(b),
            Err(source) => {
                return Err(PublishError::Transcode {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let id = self.send_bytes(file_name(path), bytes, FrameMeta::default())?;
        if self.delivery == Delivery::Reliable {
            self.sources.insert(id, (path.to_path_buf(), attempt));
        }
        Ok(())
    }

    /// Sends one frame named `name` (the metadata's "file"), with the source's metadata.
    fn send_bytes(
        &mut self,
        name: String,
        bytes: impl Into<Bytes>,
        source: FrameMeta,
    ) -> Result<FrameId> {
        let meta = frame_meta(&self.meta, source, &name);
        let bytes: Bytes = bytes.into();
        let len = bytes.len();
        let buffer = bytes.clone();
        let frame = self.delivery.frame(StreamId::FRAMES, bytes);
        let id = match self.tx.send(frame.with_metadata(meta)) {
            Ok(id) => id,
            // The core refused this frame (too large, ...): name it.
            Err(source @ DriverError::Send(_)) => {
                return Err(PublishError::Refused { name, source })
            }
            Err(e) => return Err(e.into()),
        };
        self.report.sent += 1;
        self.pending.insert(id, (name, len, Some(buffer)));
        Ok(id)
    }

    fn drain(&mut self, on_verdict: &mut impl FnMut(&Verdict, &UdpSender)) {
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
            on_verdict(&verdict, self.tx);
        }
    }
}

/// The metadata of one frame: the run's, then the source's, then "file": `name`.
pub fn frame_meta(run: &FrameMeta, source: FrameMeta, name: &str) -> Vec<u8> {
    run.clone()
        .overridden_by(source)
        .overridden_by(FrameMeta::named(name))
        .to_bytes()
}

/// Times a reliable file is sent when the receiver expires it.
const MAX_ATTEMPTS: u32 = 3;

/// Longest wait for late acknowledgements after a live stream.
const LINGER_MAX: Duration = Duration::from_secs(1);

/// How long [`Publisher::send_stream`] pumps at most between two looks at its source's
/// queue when the source has no [`crate::Waker`] (with one, a frame ends the pump at once).
const SOURCE_POLL: Duration = Duration::from_millis(2);
/// How often a wait checks the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);
