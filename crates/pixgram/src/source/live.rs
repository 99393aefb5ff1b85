//! Live sources: the test pattern, an MJPEG byte stream (stdin, a pipe from ffmpeg), a V4L2
//! camera named by its device path. A source runs on a thread of its own and hands frames
//! over a two-frame queue; the sending thread never waits for it, and a source that outruns
//! the link loses its oldest-not-yet-sent frames (counted), never the link's pacing.

use std::borrow::Cow;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::codec::{self, CodecError, Transcode};
use crate::meta::{unix_micros, FrameMeta};
use crate::mjpeg::{MjpegSplitter, SplitStats};
use crate::publish::quality::QualityKnob;
use crate::wake::Waker;

/// One frame from a live source.
#[derive(Debug)]
pub struct SourceFrame {
    /// Its name (the metadata's "file").
    pub name: String,
    /// Encoded bytes.
    pub bytes: Vec<u8>,
    /// Frame number, capture time (`sent_us`), encode time, size (and `"quality"` for a
    /// re-encoding source).
    pub meta: FrameMeta,
    /// The JPEG quality it was encoded at, for a re-encoding source.
    pub quality: Option<u8>,
}

/// Where live frames come from.
pub enum LiveSource {
    /// The moving test pattern with a clock, rendered and JPEG-encoded at `fps`.
    Pattern {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Frames per second.
        fps: f64,
        /// JPEG quality, 1-100.
        quality: u8,
    },
    /// JPEG frames split out of an MJPEG byte stream; a pipe's frames wait for room (the
    /// writer slows down instead).
    Mjpeg {
        /// The stream.
        input: Box<dyn Read + Send>,
        /// Its name in frame names and errors ("stdin").
        label: String,
        /// Re-encoding, if any.
        transcode: Transcode,
    },
    /// A V4L2 camera (the `camera` feature).
    Camera {
        /// Its device, such as `/dev/video0`.
        device: PathBuf,
        /// The size asked for (the driver picks the nearest it has).
        size: (u32, u32),
        /// Frames per second asked for.
        fps: f64,
        /// Re-encoding, if any (its quality also applies to cameras without MJPEG).
        transcode: Transcode,
    },
}

/// What went wrong in a live source.
#[derive(Debug, Error)]
pub enum SourceError {
    /// Encoding a rendered frame failed.
    #[error(transparent)]
    Encode(#[from] CodecError),
    /// Re-encoding frame `frame` of `label` failed.
    #[error("{label} frame {frame}: {source}")]
    Transcode {
        /// The source's name.
        label: String,
        /// The frame's number.
        frame: u64,
        /// Why.
        source: CodecError,
    },
    /// The stream could not be read.
    #[error("reading {label}")]
    Read {
        /// The source's name.
        label: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The stream ended before its first frame.
    #[error("{label} held no JPEG frame (is it an MJPEG stream? e.g. ffmpeg ... -f mjpeg -)")]
    NoFrame {
        /// The source's name.
        label: String,
    },
    /// The camera could not be opened.
    #[error("cannot open the camera {}", device.display())]
    Camera {
        /// Its device.
        device: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// This build has no camera support (the `camera` feature).
    #[error("this build has no camera support")]
    NoCameraSupport,
    /// The source's thread could not be started, or panicked.
    #[error("the source's thread failed")]
    Thread,
}

/// How a source ended.
#[derive(Debug)]
pub struct SourceEnd {
    /// What the MJPEG splitter found, for an MJPEG source.
    pub mjpeg: Option<SplitStats>,
    /// An error that ended it, if any.
    pub result: Result<(), SourceError>,
}

/// A source at work (its frames come on the queue [`LiveSource::start`] returns).
pub struct RunningSource {
    /// What the device negotiated, for a camera.
    pub description: Option<String>,
    quality: Option<QualityKnob>,
    skipped: Arc<AtomicU64>,
    thread: JoinHandle<SourceEnd>,
}

/// What a source came to, once joined.
#[derive(Debug)]
pub struct SourceReport {
    /// Frames made while the sender was still busy with two: skipped (live: the newest frame
    /// matters, a queue would only add latency).
    pub skipped: u64,
    /// How it ended.
    pub end: SourceEnd,
}

impl RunningSource {
    /// The quality knob of a re-encoding source (the pattern; a camera or MJPEG stream given a
    /// quality): what a [`Publisher`](crate::publish::Publisher) steps to fit the path.
    pub fn quality(&self) -> Option<QualityKnob> {
        self.quality.clone()
    }

    /// Waits for the source's thread.
    pub fn join(self) -> SourceReport {
        let end = self.thread.join().unwrap_or(SourceEnd {
            mjpeg: None,
            result: Err(SourceError::Thread),
        });
        SourceReport {
            skipped: self.skipped.load(Ordering::Relaxed),
            end,
        }
    }
}

impl LiveSource {
    /// Time between frames, for a source that sets its own rate (the pattern, a camera).
    pub fn frame_interval(&self) -> Option<Duration> {
        match self {
            LiveSource::Pattern { fps, .. } | LiveSource::Camera { fps, .. } => {
                Some(Duration::from_secs_f64(1.0 / fps.max(0.001)))
            }
            LiveSource::Mjpeg { .. } => None,
        }
    }

    /// Starts the source on its own thread: `count` frames (or until `stop`). Its frames come
    /// on the returned queue, at most two waiting; `wake` (the sender's
    /// [`crate::UdpSender::waker`]) is woken after each, so a sender pumping its socket while
    /// it waits takes the frame at once.
    pub fn start(
        self,
        count: Option<u64>,
        stop: Arc<AtomicBool>,
        wake: Option<Waker>,
    ) -> Result<(Receiver<SourceFrame>, RunningSource), SourceError> {
        let (tx, frames) = mpsc::sync_channel::<SourceFrame>(2);
        let skipped = Arc::new(AtomicU64::new(0));
        let out = Offer {
            tx,
            skipped: skipped.clone(),
            wake,
        };
        let mut description = None;
        let knob = match &self {
            LiveSource::Pattern { quality, .. } => Some(QualityKnob::new(*quality)),
            LiveSource::Mjpeg { transcode, .. } | LiveSource::Camera { transcode, .. } => {
                transcode.quality.map(QualityKnob::new)
            }
        };
        let quality = knob.clone();
        let (name, work): (&str, Box<dyn FnOnce() -> SourceEnd + Send>) = match self {
            LiveSource::Pattern {
                width,
                height,
                fps,
                quality,
            } => {
                let knob = knob.unwrap_or_else(|| QualityKnob::new(quality));
                (
                    "pixgram-pattern",
                    Box::new(move || SourceEnd {
                        mjpeg: None,
                        result: pattern(width, height, fps, count, &knob, &out, &stop),
                    }),
                )
            }
            LiveSource::Mjpeg {
                input,
                label,
                transcode,
            } => (
                "pixgram-stdin",
                Box::new(move || {
                    let recode = Recode { transcode, knob };
                    mjpeg(input, &label, count, recode, &out, &stop)
                }),
            ),
            LiveSource::Camera {
                device,
                size,
                fps,
                transcode,
            } => {
                let cam = open_camera(device, size, fps)?;
                description = Some(cam.describe());
                (
                    "pixgram-camera",
                    Box::new(move || SourceEnd {
                        mjpeg: None,
                        result: cam.run(count, Recode { transcode, knob }, &out, &stop),
                    }),
                )
            }
        };
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(work)
            .map_err(|_| SourceError::Thread)?;
        let running = RunningSource {
            description,
            quality,
            skipped,
            thread,
        };
        Ok((frames, running))
    }
}

/// The sending end of a source's queue.
struct Offer {
    tx: SyncSender<SourceFrame>,
    skipped: Arc<AtomicU64>,
    wake: Option<Waker>,
}

impl Offer {
    /// Hands `frame` to the sender; if it is still busy with two, this one is skipped.
    /// `false` once the sender has gone.
    fn offer(&self, frame: SourceFrame) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => {
                if let Some(w) = &self.wake {
                    w.wake();
                }
                true
            }
            Err(TrySendError::Full(_)) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// What a stream's or camera's frames are re-encoded as: the user's transcode, its quality
/// stepped by the knob when there is one.
struct Recode {
    transcode: Transcode,
    knob: Option<QualityKnob>,
}

impl Recode {
    /// The quality for the next frame, if stepped.
    fn quality(&self) -> Option<u8> {
        self.knob.as_ref().map(QualityKnob::get)
    }
}

/// `frame` re-encoded as `recode` asks, and the quality it was encoded at if stepped.
fn transcoded(
    recode: &Recode,
    frame: Vec<u8>,
    label: &str,
    n: u64,
) -> Result<(Vec<u8>, Option<u8>), SourceError> {
    let quality = recode.quality();
    let transcode = Transcode {
        quality: quality.or(recode.transcode.quality),
        ..recode.transcode
    };
    let bytes = match transcode.apply(&frame) {
        Ok(Cow::Borrowed(_)) => frame,
        Ok(Cow::Owned(b)) => b,
        Err(source) => {
            return Err(SourceError::Transcode {
                label: label.into(),
                frame: n,
                source,
            })
        }
    };
    Ok((bytes, quality))
}

/// `meta` with the `"quality"` a frame was encoded at, if stepped.
fn with_quality(meta: FrameMeta, quality: Option<u8>) -> FrameMeta {
    match quality {
        Some(q) => meta.with("quality", q),
        None => meta,
    }
}

fn pattern(
    w: u32,
    h: u32,
    fps: f64,
    count: Option<u64>,
    knob: &QualityKnob,
    out: &Offer,
    stop: &AtomicBool,
) -> Result<(), SourceError> {
    let interval = Duration::from_secs_f64(1.0 / fps.max(0.001));
    let start = Instant::now();
    let mut n = 0u64;
    while count.is_none_or(|c| n < c) && !stop.load(Ordering::Relaxed) {
        let due = start + interval.mul_f64(n as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent_us = unix_micros();
        let clock = sent_us / 1000 % 86_400_000;
        let text = format!(
            "{n} {:02}:{:02}:{:02}.{:03}",
            clock / 3_600_000,
            clock / 60_000 % 60,
            clock / 1000 % 60,
            clock % 1000
        );
        let t = Instant::now();
        let img = crate::pattern::render(w, h, n, &text);
        let quality = knob.get();
        let bytes = codec::encode_jpeg(&img, quality)?;
        let meta = FrameMeta {
            frame: Some(n),
            sent_us: Some(sent_us),
            encode_us: Some(t.elapsed().as_micros() as u64),
            width: Some(u64::from(img.width)),
            height: Some(u64::from(img.height)),
            ..FrameMeta::default()
        }
        .with("quality", quality);
        let name = format!("pattern-{n:06}.jpg");
        let quality = Some(quality);
        if !out.offer(SourceFrame {
            name,
            bytes,
            meta,
            quality,
        }) {
            break;
        }
        n += 1;
    }
    Ok(())
}

fn mjpeg(
    mut input: Box<dyn Read + Send>,
    label: &str,
    count: Option<u64>,
    recode: Recode,
    out: &Offer,
    stop: &AtomicBool,
) -> SourceEnd {
    let mut splitter = MjpegSplitter::new(MAX_MJPEG_FRAME);
    let result = (|| {
        let mut buf = vec![0u8; 256 << 10];
        let mut n = 0u64;
        while count.is_none_or(|c| n < c) && !stop.load(Ordering::Relaxed) {
            let got = input.read(&mut buf).map_err(|source| SourceError::Read {
                label: label.into(),
                source,
            })?;
            if got == 0 {
                break;
            }
            splitter.push(&buf[..got]);
            while let Some(frame) = splitter.next_frame() {
                let sent_us = unix_micros();
                let (bytes, quality) = transcoded(&recode, frame, label, n)?;
                let meta = FrameMeta {
                    frame: Some(n),
                    sent_us: Some(sent_us),
                    ..FrameMeta::default()
                };
                let meta = with_quality(meta, quality);
                let name = format!("{label}-{n:06}.jpg");
                let frame = SourceFrame {
                    name,
                    bytes,
                    meta,
                    quality,
                };
                // Frames from a pipe wait for room: the writer (ffmpeg) slows down instead.
                if out.tx.send(frame).is_err() {
                    return Ok(());
                }
                n += 1;
                if count.is_some_and(|c| n >= c) {
                    break;
                }
            }
        }
        if n == 0 {
            return Err(SourceError::NoFrame {
                label: label.into(),
            });
        }
        Ok(())
    })();
    SourceEnd {
        mjpeg: Some(splitter.stats().clone()),
        result,
    }
}

/// Largest frame taken from an MJPEG stream.
const MAX_MJPEG_FRAME: usize = 64 << 20;

#[cfg(feature = "camera")]
struct OpenCamera(crate::camera::Camera);

#[cfg(feature = "camera")]
fn open_camera(device: PathBuf, size: (u32, u32), fps: f64) -> Result<OpenCamera, SourceError> {
    crate::camera::Camera::open(&device, size, fps)
        .map(OpenCamera)
        .map_err(|source| SourceError::Camera { device, source })
}

#[cfg(feature = "camera")]
impl OpenCamera {
    fn describe(&self) -> String {
        self.0.describe().to_string()
    }

    fn run(
        mut self,
        count: Option<u64>,
        recode: Recode,
        out: &Offer,
        stop: &AtomicBool,
    ) -> Result<(), SourceError> {
        let mut n = 0u64;
        while count.is_none_or(|c| n < c) && !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let quality = recode.quality().or(recode.transcode.quality);
            let frame = self.0.next_jpeg(quality.unwrap_or(80))?;
            let sent_us = unix_micros();
            let encode_us = t.elapsed().as_micros() as u64;
            let (bytes, quality) = transcoded(&recode, frame, "camera", n)?;
            let meta = FrameMeta {
                frame: Some(n),
                sent_us: Some(sent_us),
                encode_us: Some(encode_us),
                ..FrameMeta::default()
            };
            let meta = with_quality(meta, quality);
            let name = format!("camera-{n:06}.jpg");
            let frame = SourceFrame {
                name,
                bytes,
                meta,
                quality,
            };
            if !out.offer(frame) {
                break;
            }
            n += 1;
        }
        Ok(())
    }
}

#[cfg(not(feature = "camera"))]
struct OpenCamera;

#[cfg(not(feature = "camera"))]
fn open_camera(_device: PathBuf, _size: (u32, u32), _fps: f64) -> Result<OpenCamera, SourceError> {
    Err(SourceError::NoCameraSupport)
}

#[cfg(not(feature = "camera"))]
impl OpenCamera {
    fn describe(&self) -> String {
        String::new()
    }

    fn run(self, _: Option<u64>, _: Recode, _: &Offer, _: &AtomicBool) -> Result<(), SourceError> {
        Err(SourceError::NoCameraSupport)
    }
}
