//! `pixgram send --pattern | --stdin | --camera`: frames produced live. The source (render and
//! encode, or read and split) runs on its own thread and hands frames over a two-frame queue;
//! the sending thread never waits for it, and a source that outruns the link loses its
//! oldest-not-yet-sent frames (counted), never the link's pacing.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use pixgram::codec::{self, Transcode};
use pixgram::mjpeg::MjpegSplitter;
use serde_json::{json, Map, Value};

use crate::cli::{parse_size, resolve, SendArgs};
use crate::send::{conclude, connect, parse_meta, path_line, transcode_of, Delivery, FrameSender};

/// One frame from a live source.
pub struct SourceFrame {
    /// Its name (the metadata's "file").
    pub name: String,
    /// Encoded bytes.
    pub bytes: Vec<u8>,
    /// Metadata: frame number, capture time (`sent_us`, Unix microseconds), encode time.
    pub meta: Map<String, Value>,
}

/// Frames the source made but the sender had no room for.
static SKIPPED: AtomicU64 = AtomicU64::new(0);

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let to = resolve("--to", &args.to)?;
    let meta = parse_meta(args.meta.as_deref())?;
    let delivery = Delivery::from_args(&args)?;
    let transcode = transcode_of(&args)?;
    if !args.files.is_empty() || !args.dir.is_empty() {
        bail!("--pattern, --stdin and --camera replace files: name no FILE and no --dir");
    }
    let fps = args.fps.unwrap_or(30.0);
    let size = args
        .size
        .as_deref()
        .map(|s| parse_size("--size", s))
        .transpose()?;
    let stop = crate::signals::stop_flag()?;
    let (tx_frames, frames) = mpsc::sync_channel::<SourceFrame>(2);
    let count = args.count;
    let source = if args.pattern {
        let (w, h) = size.unwrap_or((640, 480));
        let quality = args.quality.unwrap_or(80);
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("pixgram-pattern".into())
            .spawn(move || pattern(w, h, fps, count, quality, &tx_frames, &stop))?
    } else if args.stdin {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("pixgram-stdin".into())
            .spawn(move || stdin(count, transcode, &tx_frames, &stop))?
    } else {
        camera(&args, size, fps, transcode, tx_frames, stop.clone())?
    };
    let mut tx = connect(&args, to)?;
    let bar = match count {
        Some(n) => crate::send::progress_bar(n),
        None => ProgressBar::new_spinner(),
    };
    let verbose = args.verbose;
    let b = bar.clone();
    let mut report = FrameSender::new(&mut tx, meta, bar.clone())
        .with_delivery(delivery)
        .with_stop(stop.clone())
        .send_stream(frames, count, |v| {
            if verbose {
                b.suspend(|| crate::recv::print_line(&v.line()));
            }
        });
    bar.finish_and_clear();
    let source_result = source
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("source panicked")));
    eprintln!("{}", report.summary());
    eprintln!("{}", path_line(&tx));
    let skipped = SKIPPED.load(Ordering::Relaxed);
    if skipped > 0 {
        eprintln!("source: {skipped} frames skipped because the sender was busy with earlier ones");
    }
    if stop.load(Ordering::Relaxed) && count.is_none() {
        // Ctrl-C is how an endless stream ends: judged by what was sent.
        report.interrupted = false;
    }
    let outcome = conclude(&mut report, &tx, delivery, args.max_loss);
    tx.close()?;
    source_result?;
    outcome
}

/// Unix time in microseconds: what `sent_us` carries (sender and receiver clocks compared).
fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Hands `frame` to the sender; if it is still busy with two, this one is skipped (live: the
/// newest frame matters, a queue would only add latency).
fn offer(tx: &SyncSender<SourceFrame>, frame: SourceFrame) -> bool {
    match tx.try_send(frame) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            SKIPPED.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

fn pattern(
    w: u32,
    h: u32,
    fps: f64,
    count: Option<u64>,
    quality: u8,
    tx: &SyncSender<SourceFrame>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let interval = Duration::from_secs_f64(1.0 / fps.max(0.001));
    let start = Instant::now();
    let mut n = 0u64;
    while count.is_none_or(|c| n < c) && !stop.load(Ordering::Relaxed) {
        let due = start + interval.mul_f64(n as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent_us = unix_us();
        let clock = sent_us / 1000 % 86_400_000;
        let text = format!(
            "{n} {:02}:{:02}:{:02}.{:03}",
            clock / 3_600_000,
            clock / 60_000 % 60,
            clock / 1000 % 60,
            clock % 1000
        );
        let t = Instant::now();
        let img = pixgram::pattern::render(w, h, n, &text);
        let bytes = codec::encode_jpeg(&img, quality)?;
        let encode_us = t.elapsed().as_micros() as u64;
        let meta = json!({"frame": n, "sent_us": sent_us, "encode_us": encode_us,
                          "width": img.width, "height": img.height});
        let Value::Object(meta) = meta else {
            unreachable!()
        };
        if !offer(
            tx,
            SourceFrame {
                name: format!("pattern-{n:06}.jpg"),
                bytes,
                meta,
            },
        ) {
            break;
        }
        n += 1;
    }
    Ok(())
}

fn stdin(
    count: Option<u64>,
    transcode: Transcode,
    tx: &SyncSender<SourceFrame>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut input = std::io::stdin().lock();
    let mut splitter = MjpegSplitter::new(64 << 20);
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    while count.is_none_or(|c| n < c) && !stop.load(Ordering::Relaxed) {
        let got = input.read(&mut buf).context("reading stdin")?;
        if got == 0 {
            break;
        }
        splitter.push(&buf[..got]);
        while let Some(frame) = splitter.next_frame() {
            let sent_us = unix_us();
            let bytes = match transcode.apply(&frame) {
                Ok(std::borrow::Cow::Borrowed(_)) => frame,
                Ok(std::borrow::Cow::Owned(b)) => b,
                Err(e) => bail!("stdin frame {n}: {e}"),
            };
            let Value::Object(meta) = json!({"frame": n, "sent_us": sent_us}) else {
                unreachable!()
            };
            // Frames from a pipe wait for room: the writer (ffmpeg) slows down instead.
            let frame = SourceFrame {
                name: format!("stdin-{n:06}.jpg"),
                bytes,
                meta,
            };
            if tx.send(frame).is_err() {
                return Ok(());
            }
            n += 1;
            if count.is_some_and(|c| n >= c) {
                break;
            }
        }
    }
    let s = splitter.stats();
    if s.garbage_bytes + s.oversize_frames + s.broken_frames > 0 {
        eprintln!(
            "pixgram: stdin: {} frames; skipped {} bytes outside frames, {} frames too large, \
             {} broken",
            s.frames, s.garbage_bytes, s.oversize_frames, s.broken_frames
        );
    }
    if n == 0 {
        bail!("stdin held no JPEG frame (is it an MJPEG stream? e.g. ffmpeg ... -f mjpeg -)");
    }
    Ok(())
}

#[cfg(feature = "camera")]
fn camera(
    args: &SendArgs,
    size: Option<(u32, u32)>,
    fps: f64,
    transcode: Transcode,
    tx: SyncSender<SourceFrame>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let device = args.camera.clone().expect("checked by the caller");
    let count = args.count;
    let camera = pixgram::camera::Camera::open(&device, size.unwrap_or((1280, 720)), fps)
        .with_context(|| format!("cannot open the camera {}", device.display()))?;
    eprintln!("pixgram: {}", camera.describe());
    Ok(std::thread::Builder::new()
        .name("pixgram-camera".into())
        .spawn(move || {
            let mut camera = camera;
            let mut n = 0u64;
            while count.is_none_or(|c| n < c) && !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let frame = camera.next_jpeg(args_quality(&transcode))?;
                let sent_us = unix_us();
                let encode_us = t.elapsed().as_micros() as u64;
                let bytes = match transcode.apply(&frame) {
                    Ok(std::borrow::Cow::Borrowed(_)) => frame,
                    Ok(std::borrow::Cow::Owned(b)) => b,
                    Err(e) => bail!("camera frame {n}: {e}"),
                };
                let Value::Object(meta) =
                    json!({"frame": n, "sent_us": sent_us, "encode_us": encode_us})
                else {
                    unreachable!()
                };
                let frame = SourceFrame {
                    name: format!("camera-{n:06}.jpg"),
                    bytes,
                    meta,
                };
                if !offer(&tx, frame) {
                    break;
                }
                n += 1;
            }
            Ok(())
        })?)
}

#[cfg(feature = "camera")]
fn args_quality(t: &Transcode) -> u8 {
    t.quality.unwrap_or(80)
}

#[cfg(not(feature = "camera"))]
fn camera(
    _args: &SendArgs,
    _size: Option<(u32, u32)>,
    _fps: f64,
    _transcode: Transcode,
    _tx: SyncSender<SourceFrame>,
    _stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    bail!(
        "--camera needs a build with the camera feature: cargo build --release --features \
         camera (Linux, V4L2)"
    )
}
