//! `pixgram demo`: a receiver and a sender on loopback over real UDP; sample images and JSON
//! messages go through, every byte is checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pixgram::receive::{Handler, Until};
use pixgram::sink::{Arrived, FolderSink, Refusal, Sinks};
use pixgram::{
    sink, source, FrameId, FrameMeta, OutgoingFrame, PayloadKind, ReceiverConfig, ReceiverEvent,
    SenderConfig, StreamId, UdpReceiver, UdpSender,
};
use serde_json::json;

use crate::cli::DemoArgs;
use pixgram::figures::rate_line;
use pixgram::publish::Publisher;

use crate::report::verdict_line;

/// What the receiver thread hands back.
enum Arrival {
    Frame {
        frame: FrameId,
        name: String,
        path: PathBuf,
        bytes: usize,
    },
    Message(Vec<u8>),
}

/// A line on stdout, dropped (not a panic) once nobody reads it (`pixgram demo | head`).
macro_rules! out {
    ($($t:tt)*) => {
        crate::output::print_line(&format!($($t)*))
    };
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("pixgram-demo-{}", std::process::id()));
    let out_dir = scratch.join("received");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let result = demo(&args, &scratch, &out_dir);
    if args.keep {
        eprintln!("received files kept in {}", out_dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result
}

fn demo(args: &DemoArgs, scratch: &Path, out_dir: &Path) -> anyhow::Result<()> {
    let (files, origin) = demo_images(args.dir.as_deref(), scratch)?;
    let messages: Vec<Vec<u8>> = [
        json!({"hello": "pixgram", "kind": "telemetry"}),
        json!([1, 2, 3, {"battery": 0.87}]),
        json!({"cmd": "stop", "reason": "demo finished"}),
    ]
    .iter()
    .map(|v| serde_json::to_vec(v).expect("encodes"))
    .collect();
    let expected = files.len() as u64 * u64::from(args.repeat) + messages.len() as u64;

    // Acknowledged only once saved: the sender's verdicts mean the files are on disk.
    let config = ReceiverConfig {
        confirm_deliveries: true,
        ..ReceiverConfig::default()
    };
    let rx = UdpReceiver::bind("127.0.0.1:0".parse()?, config)?;
    let addr = rx.local_addr()?;
    if let Some(w) = rx.buffer_grant().warning() {
        eprintln!("pixgram: warning: {w}");
    }
    out!(
        "pixgram demo: {} images from {origin}, sent {}x over UDP to a receiver on {addr} \
         (window {}, {}-byte datagrams), then {} JSON messages",
        files.len(),
        args.repeat,
        args.window,
        args.datagram_size,
        messages.len()
    );
    let (arrivals_tx, arrivals) = mpsc::channel();
    let out = out_dir.to_path_buf();
    let receiver = std::thread::spawn(move || receive(rx, &out, expected, arrivals_tx));

    let mut tx = UdpSender::connect(
        addr,
        SenderConfig {
            window: args.window as usize,
            datagram_size: args.datagram_size as usize,
            ..Default::default()
        },
    )?;
    let mut verdicts = HashMap::new();
    let mut report =
        Publisher::new(&mut tx, FrameMeta::default()).send_files(&files, args.repeat, |v, _| {
            verdicts.insert(v.frame, verdict_line(v));
        });
    if let Some(e) = report.error.take() {
        return Err(crate::exit::from_publish(e));
    }
    for m in &messages {
        tx.send(OutgoingFrame::message(StreamId::MESSAGES, m.clone()))?;
    }
    tx.flush(Duration::from_secs(5))?;
    tx.close()?;
    let rx_stats = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver thread panicked"))??;

    // Check every byte.
    let originals: HashMap<String, &PathBuf> = files
        .iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    let mut identical = 0;
    let mut problems = Vec::new();
    let mut got_messages = Vec::new();
    let mut frames = Vec::new();
    for arrival in arrivals.try_iter() {
        match arrival {
            Arrival::Frame {
                frame,
                name,
                path,
                bytes,
            } => frames.push((frame, name, path, bytes)),
            Arrival::Message(m) => got_messages.push(m),
        }
    }
    frames.sort_by_key(|f| f.0);
    for (frame, name, path, bytes) in frames {
        let same = originals
            .get(&name)
            .is_some_and(|o| std::fs::read(o).ok() == std::fs::read(&path).ok());
        if same {
            identical += 1;
        } else {
            problems.push(format!("{name} ({bytes} B) differs from the original"));
        }
        let check = if same { "identical" } else { "DIFFERENT" };
        let line = verdicts.get(&frame).map_or("", String::as_str);
        out!("  {line}  -> saved, {check}");
    }
    for (i, m) in got_messages.iter().enumerate() {
        out!("  message {i}  {}", String::from_utf8_lossy(m));
    }
    if got_messages != messages {
        problems.push("the JSON messages did not arrive intact and in order".into());
    }
    out!(
        "sender:   {}; RTT {}; {} lost",
        rate_line(report.acked, report.bytes_acked, report.elapsed),
        report.rtt.describe(),
        report.lost
    );
    out!(
        "receiver: {} datagrams, {} frames, {} messages, {} malformed datagrams, {} frames expired",
        rx_stats.datagrams,
        rx_stats.frames_delivered,
        rx_stats.messages_delivered,
        rx_stats.bad_checksum + rx_stats.truncated + rx_stats.bad_header,
        rx_stats.frames_expired
    );
    let want = files.len() as u64 * u64::from(args.repeat);
    if identical != want || !problems.is_empty() {
        bail!(
            "{identical} of {want} frames arrived identical; {}",
            if problems.is_empty() {
                "some never arrived".to_string()
            } else {
                problems.join("; ")
            }
        );
    }
    out!(
        "OK: all {want} frames and {} messages arrived byte-identical.",
        messages.len()
    );
    Ok(())
}

/// The receiver thread: saves frames, passes arrivals on, stops after `expected` or 30 s.
fn receive(
    mut rx: UdpReceiver,
    out: &Path,
    expected: u64,
    arrivals: mpsc::Sender<Arrival>,
) -> anyhow::Result<pixgram::ReceiverStats> {
    let mut saver = DemoEvents {
        sinks: Sinks {
            folder: Some(FolderSink::new(out)),
            ..Sinks::default()
        },
        expected,
        got: 0,
        arrivals,
    };
    let until = Until {
        deadline: Some(Instant::now() + Duration::from_secs(30)),
        poll: Duration::from_secs(30),
        ..Until::default()
    };
    pixgram::receive::receive(&mut rx, &until, &mut saver)?;
    Ok(rx.stats().clone())
}

/// The demo's receiving end: every frame into the folder, every arrival to the checker.
struct DemoEvents {
    sinks: Sinks,
    expected: u64,
    got: u64,
    arrivals: mpsc::Sender<Arrival>,
}

impl Handler<UdpReceiver> for DemoEvents {
    type Error = anyhow::Error;

    fn done(&self) -> bool {
        self.got >= self.expected
    }

    fn event(&mut self, rx: &mut UdpReceiver, event: ReceiverEvent) -> anyhow::Result<()> {
        let ReceiverEvent::Frame(f) = event else {
            return Ok(());
        };
        self.got += 1;
        if f.kind == PayloadKind::Message {
            rx.confirm(f.key(), true);
            let _ = self.arrivals.send(Arrival::Message(f.payload.to_vec()));
            return Ok(());
        }
        let name = f
            .metadata
            .as_deref()
            .and_then(FrameMeta::parse)
            .and_then(|m| m.file)
            .unwrap_or_default();
        let taken = self.sinks.frame(&Arrived {
            from: f.peer.ip(),
            stream: "",
            name: &sink::file_name_for(&f, Some(&name)),
            payload: &f.payload,
            latency: None,
        })?;
        rx.confirm(f.key(), taken.saved.is_some());
        let path = match (taken.saved, taken.refused) {
            (Some(path), _) => path,
            (None, Some(Refusal::Failed(e))) => return Err(e.into()),
            (None, _) => anyhow::bail!("{name}: not saved"),
        };
        let _ = self.arrivals.send(Arrival::Frame {
            frame: f.frame,
            name,
            path,
            bytes: f.payload.len(),
        });
        Ok(())
    }
}

/// The images to send and where they came from: `--dir`, the shared corpus, or generated.
fn demo_images(dir: Option<&Path>, scratch: &Path) -> anyhow::Result<(Vec<PathBuf>, String)> {
    let is_image = |p: &PathBuf| {
        matches!(
            p.extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("jpg" | "jpeg" | "png" | "ppm" | "bmp")
        )
    };
    if let Some(d) = dir {
        let files = source::collect_files(&[], &[d.to_path_buf()])?;
        if files.is_empty() {
            bail!("--dir {} holds no files", d.display());
        }
        return Ok((files, d.display().to_string()));
    }
    let candidates = [
        std::env::var_os("PIXGRAM_CORPUS").map(PathBuf::from),
        Some(PathBuf::from("../shared/corpus")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")),
    ];
    for c in candidates.into_iter().flatten() {
        if let Ok(files) = source::collect_files(&[], std::slice::from_ref(&c)) {
            let images: Vec<PathBuf> = files.into_iter().filter(is_image).collect();
            if !images.is_empty() {
                return Ok((images, c.display().to_string()));
            }
        }
    }
    let gen_dir = scratch.join("generated");
    std::fs::create_dir_all(&gen_dir)?;
    let files = (0..8)
        .map(|i| {
            let path = gen_dir.join(format!("generated_{i}.ppm"));
            std::fs::write(&path, test_pattern(320, 240, i))?;
            Ok(path)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok((files, "generated test frames".into()))
}

/// A binary PPM image: a colour gradient shifted by `n`.
fn test_pattern(w: usize, h: usize, n: usize) -> Vec<u8> {
    let mut img = format!("P6\n{w} {h}\n255\n").into_bytes();
    for y in 0..h {
        for x in 0..w {
            img.extend_from_slice(&[(x + n * 16) as u8, (y + n * 8) as u8, ((x ^ y) + n) as u8]);
        }
    }
    img
}
