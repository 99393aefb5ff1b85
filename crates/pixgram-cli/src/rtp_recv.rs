//! `pixgram recv --rtp`: RTP/JPEG frames from GStreamer, FFmpeg, VLC or `pixgram send --rtp`
//! into every sink of `recv`, through the library's RTP receiver and receive loop; this file
//! turns flags into its configuration, prints a JSON line per frame or loss, and the summary.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pixgram::receive::{receive, Handler, Until};
use pixgram::rtp::{self, DepacketizerConfig, RtpEvent, RtpReceiver, RtpReceiverConfig};
use pixgram::sink::{sanitise, Arrived, Sinks};
use serde_json::json;

use crate::cli::{resolve, RecvArgs};

pub fn run(args: RecvArgs) -> anyhow::Result<()> {
    let listen = resolve("--listen", &args.listen)?;
    if args.key_file.is_some() {
        bail!("--key-file belongs to pixgram's protocol: RTP/JPEG is not encrypted");
    }
    if args.decode {
        bail!("--decode belongs to pixgram's protocol (its latency summary), not --rtp");
    }
    if let Some(dir) = &args.save {
        pixgram::sink::check_writable(dir)?;
    }
    let sdp = args.rtp.sdp.as_deref().map(rtp::read_sdp).transpose()?;
    let config = RtpReceiverConfig {
        depacketizer: DepacketizerConfig {
            // RFC 2435 offsets are 24 bits: no frame is larger than 16 MiB.
            max_frame_bytes: (args.max_frame_size as usize).min(16 << 20),
            partial: args.rtp.partial,
            dimensions: sdp.and_then(|s| s.dimensions),
            payload_type: sdp.map(|s| s.payload_type),
            ..DepacketizerConfig::default()
        },
        // RTP has no retransmission: the receive buffer is all there is between a burst and
        // a loss (RtpReceiverConfig's 32 MiB), unless --recv-buffer names another size.
        recv_buffer: if args.recv_buffer == pixgram::socket::DEFAULT_RECV_BUFFER {
            rtp::RTP_RECV_BUFFER
        } else {
            args.recv_buffer
        },
        ..RtpReceiverConfig::new(listen)
    };
    let mut rx = RtpReceiver::bind(config)?;
    if let Some(w) = rx.buffer_grant().warning() {
        eprintln!("pixgram: warning: {w}");
    }
    eprintln!(
        "pixgram: listening on {}, RTP/JPEG{}{}; Ctrl-C to stop",
        rx.local_addr()?,
        if rx.has_rtcp() {
            " (RTCP on the next port)"
        } else {
            " (no RTCP: the next port is taken)"
        },
        args.save
            .as_ref()
            .map(|d| format!(", saving into {}", d.display()))
            .unwrap_or_default()
    );
    let stop = crate::signals::receiving_stop_flag()?;
    let mut events = RtpEvents {
        sinks: crate::recv::sinks(&args)?,
        quiet: args.quiet,
        count: args.count,
        frames: 0,
        partial: 0,
        lost: 0,
        bytes: 0,
        first: None,
        last: None,
    };
    let until = Until {
        stop: Some(stop),
        deadline: crate::flags::deadline_after(args.duration),
        poll: Duration::from_millis(200),
        tick: None,
    };
    receive(&mut rx, &until, &mut events)?;
    // Frames still incomplete are lost (or, with --partial, delivered in part).
    rx.flush();
    while !events.done() {
        match rx.next_event(Some(Instant::now()))? {
            Some(e) => events.event(&mut rx, e)?,
            None => break,
        }
    }
    let s = rx.stats();
    let d = s.depacketizer;
    let span = match (events.first, events.last) {
        (Some(a), Some(b)) if b > a => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    eprintln!(
        "rtp: {} frames ({} partial), {:.1} MB{}; {} frames lost ({} missing a fragment); \
         packets: {} placed, {} lost on the way, {} duplicate, {} late, {} malformed, {} not \
         RTP, {} of another payload type; {} SSRC changes; jitter {:.2} ms",
        events.frames,
        events.partial,
        events.bytes as f64 / 1e6,
        if span > 0.0 {
            format!(
                " at {:.1} frames/s",
                (events.frames.saturating_sub(1)) as f64 / span
            )
        } else {
            String::new()
        },
        d.frames_lost,
        d.lost_missing_fragment,
        d.accepted,
        s.packets_lost.max(0),
        d.duplicates,
        d.late,
        d.malformed,
        d.not_rtp,
        d.wrong_payload_type,
        d.ssrc_changes,
        f64::from(s.jitter) / 90.0,
    );
    eprintln!(
        "rtcp: {} sender reports heard, {} receiver reports sent{}",
        s.sender_reports,
        s.receiver_reports,
        s.last_report
            .map(|r| format!(
                " (the last: {:.1}% lost, jitter {:.2} ms)",
                f64::from(r.fraction_lost) * 100.0 / 256.0,
                f64::from(r.jitter) / 90.0
            ))
            .unwrap_or_default()
    );
    if let Some(n) = args.count {
        if events.frames < n {
            return Err(crate::exit::undelivered(format!(
                "received {} of the {n} frames asked for (--count)",
                events.frames
            )));
        }
    }
    Ok(())
}

struct RtpEvents {
    sinks: Sinks,
    quiet: bool,
    count: Option<u64>,
    frames: u64,
    partial: u64,
    lost: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl RtpEvents {
    fn line(&self, line: &serde_json::Value) {
        if self.quiet {
            return;
        }
        if self.sinks.stdout.is_some() {
            eprintln!("{line}");
        } else {
            crate::output::print_line(&line.to_string());
        }
    }
}

impl Handler<RtpReceiver> for RtpEvents {
    type Error = anyhow::Error;

    fn event(&mut self, _rx: &mut RtpReceiver, event: RtpEvent) -> anyhow::Result<()> {
        match event {
            RtpEvent::Frame { from, frame } => {
                let now = Instant::now();
                self.first.get_or_insert(now);
                self.last = Some(now);
                self.frames += 1;
                self.partial += u64::from(frame.partial);
                self.bytes += frame.jfif.len() as u64;
                let stream = sanitise(&format!("{from}-{:08x}", frame.ssrc));
                let name = format!("rtp-{:08x}-{:06}.jpg", frame.ssrc, self.frames);
                let payload = bytes::Bytes::from(frame.jfif);
                let taken = self
                    .sinks
                    .frame(&Arrived {
                        from: from.ip(),
                        stream: &stream,
                        name: &name,
                        payload: &payload,
                        latency: None,
                    })
                    .context("cannot write to stdout")?;
                let mut line = json!({
                    "event": "frame", "peer": from.to_string(),
                    "ssrc": format!("{:08x}", frame.ssrc), "timestamp": frame.timestamp,
                    "bytes": payload.len(), "width": frame.width, "height": frame.height,
                    "partial": frame.partial,
                });
                if let Some(p) = &taken.saved {
                    line["saved"] = json!(p.display().to_string());
                }
                if let Some(why) = &taken.refused {
                    line["not_saved"] = json!(format!("{why:?}"));
                }
                self.line(&line);
            }
            RtpEvent::Lost {
                from,
                ssrc,
                timestamp,
                reason,
            } => {
                self.lost += 1;
                let stream = sanitise(&format!("{from}-{ssrc:08x}"));
                self.sinks.lost(&stream, 1, true);
                self.line(&json!({
                    "event": "lost", "peer": from.to_string(), "ssrc": format!("{ssrc:08x}"),
                    "timestamp": timestamp, "reason": format!("{reason:?}"),
                }));
            }
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.sinks.stdout_closed() || self.count.is_some_and(|n| self.frames >= n)
    }
}
