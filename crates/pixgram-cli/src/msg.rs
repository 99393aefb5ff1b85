//! `pixgram msg`: JSON messages to a receiver, in order, each acknowledged.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pixgram::{OutgoingFrame, SenderConfig, SenderEvent, StreamId, UdpSender};

use pixgram::figures::ms;

use crate::cli::{resolve, MsgArgs};
use crate::{exit, flags};

pub fn run(args: MsgArgs) -> anyhow::Result<()> {
    let to = resolve("--to", &args.to)?;
    let docs = flags::documents(&args.json)?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let config = SenderConfig {
        peer_timeout: timeout,
        frame_timeout: timeout,
        ..Default::default()
    };
    let key = flags::key(args.key_file.as_deref())?;
    let stop = crate::signals::stop_flag()?;
    let mut tx = UdpSender::connect_keyed(to, config, key.as_ref())?;
    let count = docs.len();
    let sent = (|| -> anyhow::Result<usize> {
        let mut sent = 0;
        for doc in docs {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tx.send(OutgoingFrame::message(StreamId::MESSAGES, doc))?;
            sent += 1;
        }
        // As long as the receiver keeps answering; the core gives up after --timeout of
        // silence.
        tx.flush_until(timeout * 2, || stop.load(Ordering::Relaxed))?;
        Ok(sent)
    })();
    tx.abandon();
    let mut not_delivered = BTreeMap::new();
    let mut delivered = 0;
    while let Some(e) = tx.poll_event() {
        match e {
            SenderEvent::Acked { frame, latency, .. } => {
                delivered += 1;
                eprintln!("message {frame} delivered in {}", ms(latency));
            }
            SenderEvent::Lost { frame, reason, .. } => {
                not_delivered.insert(frame, reason);
            }
            SenderEvent::LateAck { frame, latency, .. } => {
                if not_delivered.remove(&frame).is_some() {
                    delivered += 1;
                    eprintln!(
                        "message {frame} delivered in {} (acknowledged late)",
                        ms(latency)
                    );
                }
            }
            SenderEvent::PeerGone => {}
        }
    }
    for (frame, reason) in &not_delivered {
        eprintln!("message {frame} NOT delivered ({reason:?})");
    }
    let heard = tx.heard_from_peer();
    let refused = tx.is_refused();
    let peer = tx.peer();
    let keyed = tx.open_stats().is_some();
    tx.close()?;
    let sent = sent.map_err(|e| exit::classify(e, heard))?;
    if !heard && !stop.load(Ordering::Relaxed) {
        return Err(exit::unreachable(if refused {
            format!("nothing is listening at {peer} (the kernel refused the datagrams)")
        } else if keyed {
            format!("no answer from {peer} (or it has another key)")
        } else {
            format!(
                "no answer from {peer}: is `pixgram recv` running there? (the receiver may \
                 require --key-file)"
            )
        }));
    }
    if delivered < count {
        let interrupted = if sent < count { " (interrupted)" } else { "" };
        return Err(exit::undelivered(format!(
            "{} of {count} messages were not acknowledged{interrupted}",
            count - delivered
        )));
    }
    Ok(())
}
