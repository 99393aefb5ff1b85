//! Flags become library configs: each function here reads flags and returns what the library
//! takes, with the error naming the flag.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pixgram::codec::{ImageFormat, Transcode};
use pixgram::delivery::DeliveryError;
use pixgram::endpoint::DISCOVER_UP_TO;
use pixgram::{Delivery, DriverError, FecPolicy, FrameMeta, Psk, SenderConfig, UdpSender};
use serde_json::Value;

use crate::cli::{parse_size, Format, Mode, SendArgs};

/// The datagram size a send starts at (and keeps, when path MTU discovery is off).
const DEFAULT_DATAGRAM_SIZE: u32 = 1200;

/// Whether `send` streams from a live source instead of sending files.
pub fn is_live_source(args: &SendArgs) -> bool {
    args.pattern || args.stdin || args.camera.is_some()
}

/// The delivery policy: --mode (live for a live source, reliable for files), --fps,
/// --deadline, --fec; --max-loss checked to belong.
pub fn delivery(args: &SendArgs) -> anyhow::Result<Delivery> {
    let mode = args.mode.unwrap_or(if is_live_source(args) {
        Mode::Live
    } else {
        Mode::Reliable
    });
    if mode == Mode::Reliable {
        if args.fps.is_some() || args.deadline.is_some() || args.fec.is_some() {
            bail!("--fps, --deadline and --fec belong to --mode live");
        }
        if args.max_loss.is_some() {
            bail!(
                "--max-loss belongs to --mode live (reliable mode delivers every frame or fails)"
            );
        }
        return Ok(Delivery::Reliable);
    }
    if let Some(m) = args.max_loss {
        if !(0.0..=100.0).contains(&m) {
            bail!("--max-loss takes a percentage from 0 to 100, not {m}");
        }
    }
    let fps = args.fps.unwrap_or(30.0);
    let named = |e: DeliveryError| match e {
        DeliveryError::Fps(_) => anyhow::anyhow!("--fps must be between 0 and 10000, not {fps}"),
        DeliveryError::Deadline => anyhow::anyhow!("--deadline must be between 1 and 65535 ms"),
    };
    let mut live = Delivery::live(fps).map_err(named)?;
    if let Some(ms) = args.deadline {
        live = live
            .with_deadline(Duration::from_millis(ms))
            .map_err(named)?;
    }
    let fec = match args.fec.as_deref() {
        None => FecPolicy::Off,
        Some("auto") => FecPolicy::Auto,
        Some(p) => match p.trim_end_matches('%').parse::<f32>() {
            Ok(v) if (0.0..=100.0).contains(&v) => FecPolicy::Ratio(v / 100.0),
            _ => bail!("--fec takes a percentage from 0 to 100, or `auto`, not `{p}`"),
        },
    };
    Ok(live.with_fec(fec))
}

/// A sender to `to` configured by the flags (window, datagram size, timeouts, rate, key),
/// tuned for `delivery`.
pub fn connect(args: &SendArgs, to: SocketAddr, delivery: Delivery) -> anyhow::Result<UdpSender> {
    let datagram_size = args.datagram_size.unwrap_or(DEFAULT_DATAGRAM_SIZE);
    let config = delivery.tune(SenderConfig {
        window: args.window as usize,
        datagram_size: datagram_size as usize,
        max_datagram_size: match (args.datagram_size, args.max_datagram_size) {
            // A size forced alone is the size: no discovery.
            (Some(_), None) => None,
            (_, max) => Some(
                max.map_or(DISCOVER_UP_TO, |m| m as usize)
                    .max(datagram_size as usize),
            ),
        },
        peer_timeout: Duration::from_secs_f64(args.timeout),
        frame_timeout: Duration::from_secs_f64(args.timeout),
        max_rate: args.rate.map(|mbit| mbit * 1e6 / 8.0),
        max_frame_len: args.max_frame_size,
        ..SenderConfig::default()
    });
    let key = key(args.key_file.as_deref())?;
    UdpSender::connect_keyed(to, config, key.as_ref()).map_err(|e| match e {
        DriverError::DatagramTooSmall { size, min } => {
            anyhow::anyhow!("--datagram-size {size} is too small with a key: at least {min} bytes")
        }
        e => e.into(),
    })
}

/// The key named by `--key-file` or PIXGRAM_KEY_FILE, if any.
pub fn key(path: Option<&Path>) -> anyhow::Result<Option<Psk>> {
    path.map(|p| pixgram::security::read_key_file(p).map_err(anyhow::Error::from))
        .transpose()
}

/// What --quality, --resize and --format ask for.
pub fn transcode(args: &SendArgs) -> anyhow::Result<Transcode> {
    Ok(Transcode {
        format: args.format.map(|f| match f {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
        }),
        quality: args.quality,
        size: args
            .resize
            .as_deref()
            .map(|s| parse_size("--resize", s))
            .transpose()?,
    })
}

/// `--meta`: it must be a JSON object.
pub fn meta(meta: Option<&str>) -> anyhow::Result<FrameMeta> {
    let Some(text) = meta else {
        return Ok(FrameMeta::default());
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(FrameMeta::from_object(m)),
        Ok(_) => bail!("--meta must be a JSON object, like '{{\"camera\":\"front\"}}'"),
        Err(e) => bail!("--meta is not valid JSON: {e}"),
    }
}

/// The JSON documents to send, each checked and re-encoded compactly. `-` stands for the lines
/// of stdin (blank lines skipped).
pub fn documents(args: &[String]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut texts = Vec::new();
    for a in args {
        if a == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.context("reading stdin")?;
                if !line.trim().is_empty() {
                    texts.push(line);
                }
            }
        } else {
            texts.push(a.clone());
        }
    }
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| match serde_json::from_str::<Value>(t) {
            Ok(v) => Ok(serde_json::to_vec(&v).expect("a parsed value encodes")),
            // Numbered like the frame ids the receiver reports: the first message is 0.
            Err(e) => bail!("message {i} is not valid JSON ({e}): {}", shorten(t)),
        })
        .collect()
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

/// `--duration SECS` from now: `None` without the flag, or when it is too far to be an instant
/// (`inf`, `1e30`: no limit, rather than a panic); NaN and negative values are 0.
pub fn deadline_after(secs: Option<f64>) -> Option<Instant> {
    let s = secs?;
    let s = if s.is_nan() { 0.0 } else { s.max(0.0) };
    Instant::now().checked_add(Duration::try_from_secs_f64(s).ok()?)
}
