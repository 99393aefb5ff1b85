//! `recv --from-nats`: frames taken out of NATS (a subscription, a queue group, or a JetStream
//! consumer shared by a group) into recv's sinks, one JSON line per frame on stdout (on stderr
//! with --stdout), with the same receive loop, Ctrl-C, --count and --duration as recv.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use pixgram::figures::rate_line;
use pixgram::receive::{receive, Handler, Until};
use pixgram::sink::nats::DEFAULT_PREFIX;
use pixgram::sink::{Arrived, Refusal, Sinks};
use pixgram::source::nats::{NatsDelivery, NatsSource, NatsSourceConfig};
use serde_json::{json, Value};

use crate::cli::RecvArgs;
use crate::output::write_stdout;

/// Runs `recv --from-nats`.
pub fn from_nats(args: RecvArgs) -> anyhow::Result<()> {
    super::check(&args.nats)?;
    let url = args.nats.from_nats.clone().context("--from-nats")?;
    if let Some(dir) = &args.save {
        pixgram::sink::check_writable(dir)?;
    }
    let subject = args
        .nats
        .subject
        .clone()
        .unwrap_or_else(|| format!("{DEFAULT_PREFIX}.frames.>"));
    let mut config = NatsSourceConfig::new(&url, &subject);
    config.queue = args.nats.queue.clone();
    config.jetstream = args.nats.jetstream.clone();
    config.ack_wait = Duration::try_from_secs_f64(args.nats.ack_wait.max(0.1))
        .context("--ack-wait takes seconds")?;
    let mut source = NatsSource::connect(config)?;
    eprintln!(
        "pixgram: taking {subject} from NATS at {url}{}{}; Ctrl-C to stop",
        args.nats
            .queue
            .as_ref()
            .map(|g| format!(" as a member of queue group {g}"))
            .unwrap_or_default(),
        args.nats
            .jetstream
            .as_ref()
            .map(|s| format!(
                " from JetStream stream {s} (each frame acknowledged once the sinks have it)"
            ))
            .unwrap_or_default(),
    );
    let stop = crate::signals::receiving_stop_flag()?;
    let mut handler = FromNats {
        sinks: crate::recv::sinks(&args)?,
        quiet: args.quiet,
        count: args.count,
        frames: 0,
        bytes: 0,
        not_taken: 0,
        first: None,
        last: None,
        json_closed: false,
    };
    let until = Until {
        stop: Some(stop),
        deadline: crate::flags::deadline_after(args.duration),
        poll: Duration::from_millis(200),
        tick: None,
    };
    receive(&mut source, &until, &mut handler)?;
    let s = source.stats();
    let span = match (handler.first, handler.last) {
        (Some(a), Some(b)) => b - a,
        _ => Duration::ZERO,
    };
    eprintln!(
        "from NATS: {}; {} not taken by the sinks; {} redelivered by JetStream, {} acknowledged, \
         {} handed back; {} slow-consumer events (NATS dropped messages for this worker)",
        rate_line(handler.frames, handler.bytes, span),
        handler.not_taken,
        s.redelivered,
        s.acked,
        s.nacked,
        s.slow_consumer,
    );
    Ok(())
}

/// The receive loop's handler for deliveries from NATS.
struct FromNats {
    sinks: Sinks,
    quiet: bool,
    count: Option<u64>,
    frames: u64,
    bytes: u64,
    not_taken: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    json_closed: bool,
}

impl Handler<NatsSource> for FromNats {
    type Error = anyhow::Error;

    fn event(&mut self, source: &mut NatsSource, d: NatsDelivery) -> anyhow::Result<()> {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.frames += 1;
        self.bytes += d.payload.len() as u64;
        let mut line = json!({
            "event": if d.message { "message" } else { "frame" },
            "subject": d.subject, "bytes": d.payload.len(),
        });
        if d.redelivered {
            line["redelivered"] = json!(true);
        }
        let stored = if d.message {
            match serde_json::from_slice::<Value>(&d.payload) {
                Ok(m) => line["message"] = m,
                Err(_) => line["event"] = json!("invalid_message"),
            }
            true
        } else {
            self.frame(&d, &mut line)?
        };
        if let Some(m) = &d.meta {
            line["meta"] = m.clone();
        }
        if !self.quiet || !stored || d.message {
            self.emit(&line)?;
        }
        if !stored {
            self.not_taken += 1;
        }
        source.done(d, stored);
        Ok(())
    }

    fn done(&self) -> bool {
        self.sinks.stdout_closed() || self.count.is_some_and(|n| self.frames >= n)
    }
}

impl FromNats {
    /// Hands a frame to the sinks; whether they took it.
    fn frame(&mut self, d: &NatsDelivery, line: &mut Value) -> anyhow::Result<bool> {
        let peer = d
            .meta
            .as_ref()
            .and_then(|m| m.get("peer"))
            .and_then(Value::as_str)
            .and_then(|p| p.parse::<SocketAddr>().ok());
        let stream = d
            .subject
            .split_once(".frames.")
            .map_or(d.subject.as_str(), |(_, k)| k);
        let taken = self
            .sinks
            .frame(&Arrived {
                from: peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip()),
                stream,
                name: &d.name,
                payload: &d.payload,
                latency: None,
            })
            .context("cannot write to stdout")?;
        if let Some(path) = &taken.saved {
            line["saved"] = json!(path.display().to_string());
        }
        Ok(match taken.refused {
            None => true,
            Some(Refusal::OverBudget) => {
                line["event"] = json!("not_saved");
                line["error"] = json!("over the save budget");
                false
            }
            Some(Refusal::Failed(e)) => {
                line["event"] = json!("not_saved");
                line["error"] = json!(e.to_string());
                false
            }
            Some(Refusal::Behind) => {
                line["event"] = json!("not_saved");
                line["error"] = json!("the savers' queue had no room in time");
                false
            }
        })
    }

    /// One JSON line on stdout, or stderr when stdout carries MJPEG.
    fn emit(&mut self, line: &Value) -> anyhow::Result<()> {
        let text = format!("{line}\n");
        if self.sinks.stdout.is_some() {
            eprintln!("{line}");
        } else if !self.json_closed && !write_stdout(text.as_bytes())? {
            self.json_closed = true;
        }
        Ok(())
    }
}
