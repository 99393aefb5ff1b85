//! `pixgram send --rtp`: any source (files, --dir, --pattern, --stdin, --camera) as RTP/JPEG
//! through the library's RTP sender; this file turns flags into its configuration and prints.

use std::time::Instant;

use anyhow::bail;
use pixgram::rtp::{self, RtpPublish, RtpSender, RtpSenderConfig};
use pixgram::source::{self, LiveSource};

use crate::cli::{parse_size, resolve, SendArgs};

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let to = resolve("--to", &args.to)?;
    if args.key_file.is_some() {
        bail!("--key-file belongs to pixgram's protocol: RTP/JPEG is not encrypted");
    }
    if args.mode.is_some()
        || args.fec.is_some()
        || args.deadline.is_some()
        || args.meta.is_some()
        || args.datagram_size.is_some()
        || args.max_datagram_size.is_some()
        || args.max_loss.is_some()
    {
        bail!(
            "--mode, --fec, --deadline, --meta, --datagram-size, --max-datagram-size and \
             --max-loss belong to pixgram's protocol, not --rtp (RTP/JPEG: --mtu, --pt, --rate)"
        );
    }
    let f = &args.rtp;
    let config = RtpSenderConfig {
        payload_type: f.pt,
        mtu: f.mtu,
        // --rate is in Mbit/s; the sender paces in bytes/s.
        rate: Some(
            args.rate
                .map_or(rtp::sender::DEFAULT_RATE, |m| m * 1e6 / 8.0),
        ),
        ..RtpSenderConfig::new(to)
    };
    let stop = crate::signals::stop_flag()?;
    let opts = RtpPublish {
        transcode: f.transcode,
        quality: args.quality,
        fps: args.fps,
        sdp: f.sdp.clone(),
        stop: Some(stop.clone()),
    };
    let started = Instant::now();
    let live = crate::flags::is_live_source(&args);
    let (tx, published, running) = if live {
        if !args.files.is_empty() || !args.dir.is_empty() {
            bail!("--pattern, --stdin and --camera replace files: name no FILE and no --dir");
        }
        let source = live_source(&args)?;
        // A pattern or camera runs at --fps (30 by default): its frames are spread at that
        // rate; stdin's rate is known only from --fps.
        let opts = RtpPublish {
            fps: args.fps.or((!args.stdin).then_some(LIVE_FPS)),
            ..opts
        };
        // RTP paces on its own clock and looks at the queue between packets: no waker.
        let (frames, running) = source.start(args.count, stop, None)?;
        let mut tx = RtpSender::connect(config)?;
        let published = rtp::send_stream(&mut tx, frames, args.count, &opts);
        (tx, published, Some(running))
    } else {
        let files = source::collect_files(&args.files, &args.dir)?;
        if files.is_empty() {
            bail!("nothing to send: name files, or a folder with --dir");
        }
        let mut tx = RtpSender::connect(config)?;
        let published = rtp::send_files(&mut tx, &files, args.repeat, &opts);
        (tx, published, None)
    };
    if let Some(r) = running {
        // A live source ends when its frames are no longer taken.
        r.join().end.result?;
    }
    let published = published?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let s = *tx.stats();
    eprintln!(
        "rtp: sent {} frames ({} re-encoded), {} packets, {:.1} MB to {} (SSRC {:08x}, payload \
         type {}) in {secs:.2} s: {:.1} frames/s, {:.1} MB/s; {} sends refused (nothing \
         listening)",
        published.frames,
        published.transcoded,
        s.packets,
        s.payload_bytes as f64 / 1e6,
        tx.destination(),
        tx.ssrc(),
        tx.payload_type(),
        published.frames as f64 / secs,
        s.payload_bytes as f64 / 1e6 / secs,
        s.refused
    );
    eprintln!("{}", report_line(&s));
    if let Some(p) = &args.rtp.sdp {
        eprintln!("rtp: session description in {}", p.display());
    }
    if let Some(r) = s.last_report.filter(|r| r.cumulative_lost > 0) {
        // RTP has no acknowledgement; a receiver report is the only word on delivery.
        return Err(crate::exit::undelivered(format!(
            "the receiver reported {} packets lost (RTCP): some frames did not arrive whole",
            r.cumulative_lost
        )));
    }
    if published.interrupted {
        return Err(crate::exit::undelivered(format!(
            "interrupted after {} frames",
            published.frames
        )));
    }
    Ok(())
}

/// What the receiver's RTCP reports said, or that none came.
fn report_line(s: &rtp::RtpSendStats) -> String {
    match s.last_report {
        Some(r) => format!(
            "rtcp: {} sender reports sent; receiver reports: {}, the last {:.1}% lost in its \
             interval, {} packets lost in all, jitter {:.2} ms, {}",
            s.sender_reports,
            s.receiver_reports,
            f64::from(r.fraction_lost) * 100.0 / 256.0,
            r.cumulative_lost,
            f64::from(r.jitter) / 90.0,
            rtt_words(s.rtt),
        ),
        None => format!(
            "rtcp: {} sender reports sent; no receiver report came (receivers outside an RTCP \
             session, such as GStreamer's bare udpsrc, send none)",
            s.sender_reports
        ),
    }
}

/// The round-trip time from the receiver's echo of a sender report (RFC 3550 §6.4.1), or why
/// there is none.
fn rtt_words(rtt: Option<std::time::Duration>) -> String {
    match rtt {
        // An upper bound: a report waits in the socket until the sender next reads it.
        Some(d) => format!("round trip at most {:.2} ms", d.as_secs_f64() * 1e3),
        None => "no round trip (no report echoed a sender report yet)".into(),
    }
}

/// The frame rate of --pattern and --camera without --fps.
const LIVE_FPS: f64 = 30.0;

fn live_source(args: &SendArgs) -> anyhow::Result<LiveSource> {
    let size = args
        .size
        .as_deref()
        .map(|s| parse_size("--size", s))
        .transpose()?;
    let transcode = crate::flags::transcode(args)?;
    let fps = args.fps.unwrap_or(LIVE_FPS);
    Ok(if args.pattern {
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
            bail!("--camera needs a build with the camera feature: cargo build --release --features camera");
        }
        LiveSource::Camera {
            device: args.camera.clone().unwrap_or_default(),
            size: size.unwrap_or((1280, 720)),
            fps,
            transcode,
        }
    })
}
