//! `--compat seed` for send, recv and msg: the original Python scripts' wire format, so their
//! users can replace one side at a time.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use pixgram::compat::seed::{SeedClient, SeedConfig, SeedServer, SeedServerEvent, SeedStats};
use pixgram::compat::seed_files::{self, GONE_AFTER};
use pixgram::figures::{ms, rate_line};
use pixgram::receive::{receive, Handler, Until};
use pixgram::sink::{Arrived, FolderSink, Refusal, Sinks};
use pixgram::{sink, source};
use serde_json::json;

use crate::cli::{resolve, Mode, MsgArgs, RecvArgs, SendArgs};
use crate::flags;
use crate::output::{print_line, write_stdout};
use crate::report::progress_bar;
use crate::signals::receiving_stop_flag;

pub fn recv(args: &RecvArgs) -> anyhow::Result<()> {
    if args.key_file.is_some() {
        bail!("--key-file does not apply to --compat seed: the original format has no encryption");
    }
    if args.http.is_some() || args.stdout || args.window {
        bail!("--http, --stdout and --window are not available with --compat seed yet; use --save DIR");
    }
    if args.nats.publish.is_some() || args.nats.from_nats.is_some() {
        bail!("--publish and --from-nats are not available with --compat seed; use pixgram's own protocol");
    }
    let listen = resolve("--listen", &args.listen)?;
    let msg_listen = match &args.msg_listen {
        Some(a) => Some(resolve("--msg-listen", a)?),
        None => None,
    };
    if let Some(dir) = &args.save {
        sink::check_writable(dir)?;
    }
    let config = SeedConfig {
        max_image_len: args.max_frame_size,
        ..SeedConfig::default()
    };
    let mut server = SeedServer::bind(listen, msg_listen, config, args.recv_buffer)?;
    if let Some(w) = server.buffer_grant().warning() {
        eprintln!("pixgram: warning: {w}");
    }
    eprintln!(
        "pixgram: listening on {}{}; images and replies in the original scripts' format; \
         Ctrl-C to stop",
        server.image_addr(),
        server
            .message_addr()
            .map(|a| format!(", JSON messages on {a}"))
            .unwrap_or_default()
    );
    let until = Until {
        stop: Some(receiving_stop_flag()?),
        deadline: flags::deadline_after(args.duration),
        ..Until::default()
    };
    let mut seen = SeedEvents {
        quiet: args.quiet,
        count: args.count,
        sinks: Sinks {
            folder: args.save.as_ref().map(FolderSink::new),
            ..Sinks::default()
        },
        images: 0,
        messages: 0,
        bytes: 0,
        span: None,
        spinner: ProgressBar::new_spinner(),
        stdout_open: true,
    };
    receive(&mut server, &until, &mut seen)?;
    let SeedEvents {
        images,
        messages,
        bytes,
        span,
        spinner,
        ..
    } = seen;
    spinner.finish_and_clear();
    let (img, msg) = server.stats();
    let span = span.map_or(Duration::ZERO, |(a, b)| b - a);
    eprintln!(
        "received {}; {messages} messages; {}",
        rate_line(images, bytes, span),
        describe(&img, &msg)
    );
    Ok(())
}

/// What `recv --compat seed` does with each event: saves images, prints a JSON line per event.
struct SeedEvents {
    quiet: bool,
    count: Option<u64>,
    sinks: Sinks,
    images: u64,
    messages: u64,
    bytes: u64,
    /// The first and the last image's arrival.
    span: Option<(Instant, Instant)>,
    spinner: ProgressBar,
    stdout_open: bool,
}

impl Handler<SeedServer> for SeedEvents {
    type Error = anyhow::Error;

    fn done(&self) -> bool {
        !self.stdout_open || self.count.is_some_and(|n| self.images + self.messages >= n)
    }

    fn event(&mut self, _: &mut SeedServer, event: SeedServerEvent) -> anyhow::Result<()> {
        let line = match event {
            SeedServerEvent::Image {
                peer,
                bytes: image,
                single_datagram,
            } => {
                let now = Instant::now();
                self.span = Some((self.span.map_or(now, |s| s.0), now));
                self.images += 1;
                self.bytes += image.len() as u64;
                let images = self.images;
                let mut line = json!({"event": "frame", "peer": peer.to_string(),
                    "frame": images, "bytes": image.len(),
                    "format": if single_datagram { "one datagram" } else { "header and chunks" }});
                let name = format!(
                    "seed-{}-{images:06}.{}",
                    sink::sanitise(&peer.to_string()),
                    sink::extension_for(&image)
                );
                let image = bytes::Bytes::from(image);
                let taken = self.sinks.frame(&Arrived {
                    from: peer.ip(),
                    stream: &peer.to_string(),
                    name: &name,
                    payload: &image,
                    latency: None,
                })?;
                if let Some(Refusal::Failed(e)) = taken.refused {
                    return Err(e.into());
                }
                if let Some(path) = taken.saved {
                    line["saved"] = json!(path.display().to_string());
                }
                if self.quiet {
                    None
                } else {
                    Some(line)
                }
            }
            SeedServerEvent::Broken {
                peer,
                reason,
                received,
                declared,
            } => Some(json!({"event": "broken", "peer": peer.to_string(),
                "reason": format!("{reason:?}"), "received": received, "declared": declared})),
            SeedServerEvent::Message { peer, json } => {
                self.messages += 1;
                Some(json!({"event": "message", "peer": peer.to_string(), "message": json}))
            }
            SeedServerEvent::BadMessage { peer, error } => {
                Some(json!({"event": "bad_message", "peer": peer.to_string(), "error": error}))
            }
        };
        if let Some(line) = line {
            // A reader that went away (`| head`) ends recv quietly, with its summary.
            self.stdout_open = self
                .spinner
                .suspend(|| write_stdout(format!("{line}\n").as_bytes()))?;
        }
        self.spinner.set_message(format!(
            "{} images, {} messages, {:.1} MB",
            self.images,
            self.messages,
            self.bytes as f64 / 1e6
        ));
        self.spinner.tick();
        Ok(())
    }
}

/// `--timeout SECS`, from 0.1 s to a day (NaN: the 5 s default), so `inf` or `1e30` cannot
/// overflow an `Instant`.
fn timeout_flag(secs: f64) -> Duration {
    let secs = if secs.is_nan() {
        5.0
    } else {
        secs.clamp(0.1, 86_400.0)
    };
    Duration::from_secs_f64(secs)
}

/// What went wrong, by reason (only the reasons that occurred), and what the replies came to.
fn describe(img: &SeedStats, msg: &SeedStats) -> String {
    let reasons: Vec<String> = [
        ("interrupted by a lost chunk", img.broken_interrupted),
        ("overran their length", img.broken_overrun),
        ("oversize chunk", img.broken_oversize_chunk),
        ("stalled", img.broken_stalled),
        ("not a whole image", img.broken_not_whole_image),
        ("negative length", img.broken_negative_length),
        ("too large", img.broken_too_large),
        ("no room", img.broken_no_room),
        ("gave their place to a new sender", img.broken_evicted),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what} {n}"))
    .collect();
    let reasons = if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join(", "))
    };
    format!(
        "{} broken images{reasons}; {} stray datagrams; {} messages not JSON; {} replies sent \
         ({} of them late, waiting for the reply allowance; {} bytes beyond what their senders \
         sent), {} held back (no amplification); {} peers refused",
        img.broken(),
        img.stray_datagrams,
        msg.messages_rejected,
        img.replies_sent + msg.replies_sent,
        img.replies_deferred + msg.replies_deferred,
        img.allowance_bytes + msg.allowance_bytes,
        img.replies_limited + msg.replies_limited,
        img.peers_refused + msg.peers_refused,
    )
}

pub fn send(args: &SendArgs) -> anyhow::Result<()> {
    if args.key_file.is_some() {
        bail!("--key-file does not apply to --compat seed: the original format has no encryption");
    }
    if args.meta.is_some() {
        bail!("--meta cannot be sent with --compat seed: the original format has no metadata");
    }
    if args.pattern || args.stdin || args.camera.is_some() {
        bail!("--compat seed sends files: --pattern, --stdin and --camera need pixgram's own protocol");
    }
    if args.mode == Some(Mode::Live) || args.fps.is_some() || args.fec.is_some() {
        bail!("--compat seed is stop-and-wait: --mode live, --fps and --fec do not apply");
    }
    let rate = match args.rate {
        None => None,
        Some(mbit) if mbit.is_finite() && mbit >= 0.1 => Some(mbit * 1e6 / 8.0),
        Some(mbit) => bail!("--rate is in Mbit/s, at least 0.1, not {mbit}"),
    };
    let to = resolve("--to", &args.to)?;
    let files = source::collect_files(&args.files, &args.dir)?;
    if files.is_empty() {
        bail!("nothing to send: name files, or a folder with --dir");
    }
    let timeout = timeout_flag(args.timeout);
    let mut client = SeedClient::connect(to, rate)?;
    let total = files.len() as u64 * u64::from(args.repeat);
    let bar = progress_bar(total);
    let sent = seed_files::send_files(
        &mut client,
        to,
        &files,
        args.repeat,
        timeout,
        |path, len, reply| {
            let name = path.display();
            match reply {
                Some(t) if args.verbose => {
                    bar.suspend(|| print_line(&format!("{name}: {len} B, acked in {}", ms(t))))
                }
                Some(_) => {}
                None => bar.suspend(|| {
                    eprintln!(
                        "pixgram: {name}: no \"get message!!!\" within {:.1} s",
                        timeout.as_secs_f64()
                    )
                }),
            }
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    let mut sent = sent?;
    if sent.gone {
        bail!("no answer from {to} to {GONE_AFTER} images in a row: is the server running there?");
    }
    let (acked, lost) = (sent.acked, sent.lost);
    eprintln!(
        "sent {}; acked {acked}, not acknowledged {lost}; RTT {}",
        rate_line(acked, sent.bytes, sent.elapsed),
        sent.rtt.describe()
    );
    if lost > 0 {
        bail!("{lost} of {total} images were not acknowledged");
    }
    Ok(())
}

pub fn msg(args: &MsgArgs) -> anyhow::Result<()> {
    if args.key_file.is_some() {
        bail!("--key-file does not apply to --compat seed: the original format has no encryption");
    }
    let to = resolve("--to", &args.to)?;
    let docs = flags::documents(&args.json)?;
    let timeout = timeout_flag(args.timeout);
    let mut client = SeedClient::connect(to, None)?;
    let mut missing = 0;
    for (i, doc) in docs.iter().enumerate() {
        match client
            .send_message(doc, timeout)
            .with_context(|| format!("sending message {} to {to}", i + 1))?
        {
            Some(t) => eprintln!("message {} delivered in {}", i + 1, ms(t)),
            None => {
                missing += 1;
                eprintln!("message {} NOT acknowledged (no \"get the msg\")", i + 1);
            }
        }
    }
    if missing > 0 {
        bail!("{missing} of {} messages were not acknowledged", docs.len());
    }
    Ok(())
}
