//! `pixgram msg`: JSON messages to a receiver, in order, each acknowledged; the library sends
//! them, this prints each verdict.

use std::sync::atomic::Ordering;
use std::time::Duration;

use pixgram::figures::ms;
use pixgram::publish::send_messages;
use pixgram::{SenderConfig, UdpSender};

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
    // As long as the receiver keeps answering; the core gives up after --timeout of silence.
    let report = send_messages(&mut tx, docs, timeout * 2, &stop);
    for &(frame, latency, late) in &report.delivered {
        if late {
            eprintln!(
                "message {frame} delivered in {} (acknowledged late)",
                ms(latency)
            );
        } else {
            eprintln!("message {frame} delivered in {}", ms(latency));
        }
    }
    for (frame, reason) in &report.not_delivered {
        eprintln!("message {frame} NOT delivered ({reason:?})");
    }
    let delivered = report.delivered.len();
    let heard = tx.heard_from_peer();
    let refused = tx.is_refused();
    let peer = tx.peer();
    let keyed = tx.open_stats().is_some();
    tx.close()?;
    if let Some(e) = report.error {
        return Err(exit::classify(e.into(), heard));
    }
    let sent = report.sent;
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
