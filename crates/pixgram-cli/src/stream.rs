//! `pixgram send --pattern | --stdin | --camera`: frames produced live by a library source,
//! published as they come.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::bail;
use indicatif::ProgressBar;
use pixgram::publish::Publisher;
use pixgram::source::LiveSource;

use crate::cli::{parse_size, resolve, SendArgs};
use crate::{flags, quality, report};

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let to = resolve("--to", &args.to)?;
    let meta = flags::meta(args.meta.as_deref())?;
    let delivery = flags::delivery(&args)?;
    let transcode = flags::transcode(&args)?;
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
    let count = args.count;
    let source = if args.pattern {
        let (width, height) = size.unwrap_or((640, 480));
        LiveSource::Pattern {
            width,
            height,
            fps,
            quality: args.quality.unwrap_or(80),
        }
    } else if args.stdin {
        LiveSource::Mjpeg {
            input: Box::new(std::io::stdin()),
            label: "stdin".into(),
            transcode,
        }
    } else {
        if !cfg!(feature = "camera") {
            bail!(
                "--camera needs a build with the camera feature: cargo build --release \
                 --features camera (Linux, V4L2)"
            );
        }
        LiveSource::Camera {
            device: args.camera.clone().expect("a live source"),
            size: size.unwrap_or((1280, 720)),
            fps,
            transcode,
        }
    };
    let mut tx = flags::connect(&args, to, delivery)?;
    // The source wakes the sender's wait with each frame: it goes out at once.
    let (frames, running) = source.start(count, stop.clone(), Some(tx.waker()?))?;
    if let Some(d) = &running.description {
        eprintln!("pixgram: {d}");
    }
    let bar = match count {
        Some(n) => report::progress_bar(n),
        None => ProgressBar::new_spinner(),
    };
    let mut publisher = Publisher::new(&mut tx, meta)
        .with_delivery(delivery)
        .with_stop(stop.clone());
    if let Some(knob) = running.quality() {
        // A re-encoding source: its quality steps to fit the path, each change printed.
        let interval = Duration::from_secs_f64(1.0 / fps.max(0.001));
        let on_change = |c: &_| bar.suspend(|| eprintln!("{}", quality::change_line(c)));
        publisher = publisher.with_quality(knob, interval, on_change);
    }
    let mut sent = publisher.send_stream(frames, count, report::on_verdict(&bar, args.verbose));
    bar.finish_and_clear();
    let source = running.join();
    if let Some(s) = &source.end.mjpeg {
        if s.garbage_bytes + s.oversize_frames + s.broken_frames > 0 {
            eprintln!(
                "pixgram: stdin: {} frames; skipped {} bytes outside frames, {} frames too \
                 large, {} broken",
                s.frames, s.garbage_bytes, s.oversize_frames, s.broken_frames
            );
        }
    }
    eprintln!("{}", report::summary(&mut sent));
    if let Some(q) = &sent.quality {
        eprintln!("{}", quality::summary_line(q));
    }
    report::print_path(&tx);
    if source.skipped > 0 {
        eprintln!(
            "source: {} frames skipped because the sender was busy with earlier ones",
            source.skipped
        );
    }
    if stop.load(Ordering::Relaxed) && count.is_none() {
        // Ctrl-C is how an endless stream ends: judged by what was sent.
        sent.interrupted = false;
    }
    let outcome = report::conclude(&mut sent, &tx, delivery, args.max_loss);
    tx.close()?;
    source.end.result?;
    outcome
}
