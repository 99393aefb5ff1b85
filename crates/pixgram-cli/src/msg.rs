//! `pixgram msg`: JSON messages to a receiver, in order, each acknowledged.

use std::io::BufRead;
use std::time::Duration;

use anyhow::{bail, Context};
use pixgram::{OutgoingFrame, SenderConfig, SenderEvent, StreamId, UdpSender};
use serde_json::Value;

use crate::cli::{resolve, Compat, MsgArgs};
use crate::summary::ms;

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
            Err(e) => bail!("message {} is not valid JSON ({e}): {}", i + 1, shorten(t)),
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

pub fn run(args: MsgArgs) -> anyhow::Result<()> {
    if args.compat == Some(Compat::Seed) {
        return crate::compat::msg(&args);
    }
    let to = resolve("--to", &args.to)?;
    let docs = documents(&args.json)?;
    let timeout = Duration::from_secs_f64(args.timeout.max(0.1));
    let config = SenderConfig {
        peer_timeout: timeout,
        frame_timeout: timeout,
        ..Default::default()
    };
    let key = crate::keygen::load(args.key_file.as_deref())?;
    let mut tx = UdpSender::connect_keyed(to, config, key.as_ref())?;
    let count = docs.len();
    for doc in docs {
        tx.send(OutgoingFrame::message(StreamId::MESSAGES, doc))?;
    }
    let flushed = tx.flush(timeout * 2);
    let mut delivered = 0;
    while let Some(e) = tx.poll_event() {
        match e {
            SenderEvent::Acked { frame, latency, .. } => {
                delivered += 1;
                eprintln!("message {frame} delivered in {}", ms(latency));
            }
            SenderEvent::Lost { frame, reason, .. } => {
                eprintln!("message {frame} NOT delivered ({reason:?})");
            }
            SenderEvent::PeerGone | SenderEvent::LateAck { .. } => {}
        }
    }
    tx.close()?;
    flushed?;
    if delivered < count {
        bail!(
            "{} of {count} messages were not acknowledged",
            count - delivered
        );
    }
    Ok(())
}
