//! Files, folders and live sources through an [`RtpSender`]: each frame checked (or, with
//! `transcode`, re-encoded) so that RFC 2435 can carry it, optionally at a frame rate, the
//! session description written once the first frame's size is known.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pixgram_core::rtp_jpeg::{jpeg, SdpStream, MAX_INBAND_DIMENSION};

use super::{to_rtp_jpeg, write_sdp, RtpError, RtpSender};
use crate::source::{FileReader, SourceFrame};

/// How frames are published.
#[derive(Debug, Clone, Default)]
pub struct RtpPublish {
    /// Re-encode frames RFC 2435 cannot carry instead of refusing them.
    pub transcode: bool,
    /// Their JPEG quality (85 if `None`).
    pub quality: Option<u8>,
    /// Frames per second: files are sent at this rate (`None`: as fast as the pacing
    /// allows); every frame, of files or of a live source, is spread over half the interval.
    pub fps: Option<f64>,
    /// Write a session description here before the first frame.
    pub sdp: Option<PathBuf>,
    /// Set by Ctrl-C.
    pub stop: Option<Arc<AtomicBool>>,
}

/// What a publication came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpPublished {
    /// Frames sent.
    pub frames: u64,
    /// Of them, re-encoded.
    pub transcoded: u64,
    /// JPEG bytes sent (before packetisation).
    pub bytes: u64,
    /// Stopped by the stop flag.
    pub interrupted: bool,
}

/// A frame's failure, naming it.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {source}")]
pub struct FrameError {
    /// The file or frame.
    pub name: String,
    /// Why.
    #[source]
    pub source: RtpError,
}

struct Run<'a> {
    tx: &'a mut RtpSender,
    opts: &'a RtpPublish,
    out: RtpPublished,
    sdp_written: bool,
    next_at: Option<Instant>,
    /// Whether frames wait for their slot at `opts.fps` (files; a live source keeps its own time).
    timed: bool,
}

impl Run<'_> {
    fn stopped(&self) -> bool {
        self.opts
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    fn frame(
        &mut self,
        name: &str,
        bytes: &[u8],
        captured_us: Option<u64>,
    ) -> Result<(), FrameError> {
        let err = |source| FrameError {
            name: name.to_string(),
            source,
        };
        let ready = to_rtp_jpeg(bytes, self.opts.transcode, self.opts.quality.unwrap_or(85))
            .map_err(err)?;
        if !self.sdp_written {
            self.sdp_written = true;
            if let Some(path) = &self.opts.sdp {
                let f = jpeg::parse(&ready).map_err(|e| err(e.into()))?;
                let exact = f.width > MAX_INBAND_DIMENSION
                    || f.height > MAX_INBAND_DIMENSION
                    || f.width % 8 != 0
                    || f.height % 8 != 0;
                let sdp = self
                    .tx
                    .sdp(exact.then_some((f.width, f.height)), self.opts.fps);
                write_sdp(path, &sdp).map_err(err)?;
            }
        }
        if let Some(at) = self.next_at {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
        }
        let fps = self.opts.fps.filter(|f| f.is_finite() && *f > 0.0);
        let step = fps.map(|f| Duration::from_secs_f64(1.0 / f));
        if let (Some(step), true) = (step, self.timed) {
            // The next frame one interval after this one's slot; a late frame does not
            // earn a burst of more than one.
            let now = Instant::now();
            let floor = now.checked_sub(step).unwrap_or(now);
            self.next_at = Some(self.next_at.map_or(now, |t| t.max(floor)) + step);
        }
        self.tx
            .send_jpeg_within(&ready, captured_us, step.map(|s| s / 2))
            .map_err(err)?;
        self.out.frames += 1;
        self.out.bytes += ready.len() as u64;
        if matches!(ready, std::borrow::Cow::Owned(_)) {
            self.out.transcoded += 1;
        }
        Ok(())
    }
}

/// Sends `files` in order, `repeat` times; stops at the first frame that cannot be sent.
pub fn send_files(
    tx: &mut RtpSender,
    files: &[PathBuf],
    repeat: u32,
    opts: &RtpPublish,
) -> Result<RtpPublished, FrameError> {
    let mut run = Run {
        tx,
        opts,
        out: RtpPublished::default(),
        sdp_written: false,
        next_at: None,
        timed: true,
    };
    let mut reader = FileReader::new();
    for _ in 0..repeat {
        for f in files {
            if run.stopped() {
                run.out.interrupted = true;
                return Ok(run.out);
            }
            let bytes = reader.read(f).map_err(|e| FrameError {
                name: f.display().to_string(),
                source: RtpError::Driver(e),
            })?;
            run.frame(&display(f), &bytes, None)?;
            reader.recycle(bytes);
        }
    }
    run.tx.finish();
    Ok(run.out)
}

/// Sends a live source's frames as they come, each with its capture time (and, with
/// `opts.fps`, spread over half the frame interval), until `count` frames, the source's end,
/// or the stop flag.
pub fn send_stream(
    tx: &mut RtpSender,
    frames: Receiver<SourceFrame>,
    count: Option<u64>,
    opts: &RtpPublish,
) -> Result<RtpPublished, FrameError> {
    let mut run = Run {
        tx,
        opts,
        out: RtpPublished::default(),
        sdp_written: false,
        next_at: None,
        timed: false,
    };
    while count.is_none_or(|n| run.out.frames < n) {
        if run.stopped() {
            run.out.interrupted = true;
            break;
        }
        match frames.recv_timeout(Duration::from_millis(200)) {
            Ok(f) => run.frame(&f.name, &f.bytes, f.meta.sent_us)?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    run.tx.finish();
    Ok(run.out)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

impl RtpSender {
    /// The session description of this stream: its destination, payload type, and the
    /// exact frame size when given (`a=x-dimensions`).
    pub fn sdp(&self, dimensions: Option<(u16, u16)>, framerate: Option<f64>) -> SdpStream {
        let to = self.destination();
        SdpStream {
            address: to.ip(),
            port: to.port(),
            payload_type: self.payload_type(),
            dimensions,
            framerate,
        }
    }
}
