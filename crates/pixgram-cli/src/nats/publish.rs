//! `recv --publish`: what recv does with each delivered frame or message besides its other
//! sinks, and the lines it prints about NATS (each kind of refusal said once, then counted in
//! the summary line).

use std::time::Duration;

use anyhow::bail;
use pixgram::sink::nats::{NatsConfig, NatsSink, Outgoing, Published, DEFAULT_PREFIX};
use pixgram::{PayloadKind, ReceivedFrame, ReceiverWaker};
use serde_json::{json, Value};

use super::NatsArgs;

/// How long the end of recv waits for queued frames to reach NATS.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Refuses flags that do not belong together.
pub fn check(args: &NatsArgs) -> anyhow::Result<()> {
    if args.jetstream.is_some() && args.publish.is_none() && args.from_nats.is_none() {
        bail!("--jetstream belongs to --publish or --from-nats");
    }
    if args.subject.is_some() && args.publish.is_none() && args.from_nats.is_none() {
        bail!("--subject belongs to --publish or --from-nats");
    }
    Ok(())
}

/// What became of a frame handed to [`Publisher::publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    /// NATS took it: confirm it to its sender.
    Taken,
    /// NATS did not: its sender is told it was not taken.
    Refused,
    /// JetStream has it, its acknowledgement awaited: confirm it when
    /// [`Publisher::take_acks`] gives this ticket's outcome.
    Pending(u64),
}

/// The NATS sink of `recv --publish`.
pub struct Publisher {
    sink: NatsSink,
    prefix: String,
    jetstream: Option<String>,
    said_too_large: bool,
    said_behind: bool,
    said_failed: bool,
    queue: usize,
    wait_ms: u64,
    /// JetStream: how long a frame may wait for its acknowledgement, and for room among the
    /// frames awaiting theirs.
    ack_timeout_ms: u128,
}

impl Publisher {
    /// Connects when --publish asks for it.
    pub fn from_args(args: &NatsArgs) -> anyhow::Result<Option<Publisher>> {
        check(args)?;
        let Some(url) = &args.publish else {
            return Ok(None);
        };
        let mut config = NatsConfig::new(url);
        config.prefix = args
            .subject
            .clone()
            .unwrap_or_else(|| DEFAULT_PREFIX.into());
        config.jetstream = args.jetstream.clone();
        config.queue_frames = args.nats_queue.max(1);
        config.queue_wait = Duration::from_millis(args.nats_wait);
        let sink = NatsSink::connect(config.clone())?;
        eprintln!(
            "pixgram: publishing on NATS at {url}: frames on {p}.frames.SENDER.STREAM, messages on \
             {p}.messages.SENDER.STREAM{}; the server takes messages up to {} bytes",
            match &config.jetstream {
                Some(s) => format!(
                    ", into JetStream stream {s} (a frame is acknowledged to its camera once \
                     JetStream has stored it; at most {} frames await that at once)",
                    config.queue_frames
                ),
                None => format!(", through a queue of {} frames", config.queue_frames),
            },
            sink.max_payload(),
            p = config.prefix,
        );
        Ok(Some(Publisher {
            sink,
            prefix: config.prefix,
            jetstream: config.jetstream,
            said_too_large: false,
            said_behind: false,
            said_failed: false,
            queue: config.queue_frames,
            wait_ms: args.nats_wait,
            ack_timeout_ms: config.ack_timeout.as_millis(),
        }))
    }

    /// Publishes `f` (saved as `name` by a folder sink); whether NATS took it, or that the
    /// answer comes later. What it made of it goes into `line`, recv's JSON line for the
    /// frame.
    pub fn publish(&mut self, f: &ReceivedFrame, name: &str, line: &mut Value) -> Handed {
        let message = f.kind == PayloadKind::Message;
        let meta = json!({
            "peer": f.peer.to_string(), "session": f.session.to_string(),
            "stream": f.stream.0, "frame": f.frame.0,
            "kind": if message { "message" } else { "frame" },
            "name": name, "bytes": f.payload.len(),
            "meta": f.metadata.as_deref().map(pixgram::meta::display_value),
        });
        let published = self.sink.publish(&Outgoing {
            peer: f.peer,
            stream: f.stream,
            message,
            payload: &f.payload,
            meta,
        });
        match published {
            Published::Pending(ticket) => Handed::Pending(ticket),
            p if self.note(&p, message, line) => Handed::Taken,
            _ => Handed::Refused,
        }
    }

    /// JetStream: the outcome of each pending frame that has one now, by ticket.
    pub fn take_acks(&mut self, out: &mut Vec<(u64, Published)>) {
        self.sink.take_acks(out);
    }

    /// Wakes `rx`'s receive loop when a JetStream outcome is ready.
    pub fn wake(&self, waker: ReceiverWaker) {
        self.sink.on_ack(Box::new(move || waker.wake()));
    }

    /// JetStream: waits (at most `timeout`) until every pending frame has its outcome.
    pub fn settle(&mut self, timeout: Duration) {
        if self.jetstream.is_some() {
            self.sink.finish(timeout);
        }
    }

    /// What `published` means for a frame (`message`: a message) and its `line`; whether it
    /// was taken. Each kind of refusal is said once on stderr.
    pub fn note(&mut self, published: &Published, message: bool, line: &mut Value) -> bool {
        match published {
            Published::Queued => {}
            Published::Pending(_) => return true,
            Published::Stored(seq) => line["nats_seq"] = json!(seq),
            Published::Behind => {
                line["nats"] = json!("not published: NATS behind, queue full");
                if !std::mem::replace(&mut self.said_behind, true) {
                    let full = match &self.jetstream {
                        Some(_) => format!(
                            "all {} frames it may have awaiting their JetStream acknowledgement \
                             (--nats-queue) still awaited them after {} ms",
                            self.queue, self.ack_timeout_ms
                        ),
                        None => format!(
                            "its queue of {} frames (--nats-queue) stayed full for {} ms \
                             (--nats-wait)",
                            self.queue, self.wait_ms
                        ),
                    };
                    eprintln!(
                        "pixgram: NATS is not taking frames as fast as they arrive: {full}, so \
                         frames over it are not published and their senders are told they were \
                         not taken; the nats line at the end counts them"
                    );
                }
            }
            Published::TooLarge { limit, size } => {
                line["nats"] = json!(format!(
                    "not published: {size} bytes over max_payload {limit}"
                ));
                if !std::mem::replace(&mut self.said_too_large, true) {
                    eprintln!(
                        "pixgram: a frame of {size} bytes (with its Pixgram-Meta header) is over \
                         the NATS server's max_payload of {limit} bytes: not published, and its \
                         sender is told it was not taken; raise max_payload in the server's \
                         configuration (e.g. `max_payload: 8MB`; NATS allows up to 64MB) or send \
                         smaller frames"
                    );
                }
            }
            Published::Failed(why) => {
                line["nats"] = json!(format!("not published: {why}"));
                if !std::mem::replace(&mut self.said_failed, true) {
                    eprintln!(
                        "pixgram: NATS did not take a frame ({why}); its sender is told it was \
                         not taken; the nats line at the end counts such frames"
                    );
                }
            }
        }
        if published.taken() {
            true
        } else {
            line["event"] = json!(if message {
                "message_not_published"
            } else {
                "not_published"
            });
            false
        }
    }

    /// Publishes what is still queued and returns the summary line.
    pub fn finish(&mut self) -> String {
        let flushed = self.sink.finish(FLUSH_TIMEOUT);
        // Outcomes that came after the receive loop stopped confirming: counted.
        self.sink.take_acks(&mut Vec::new());
        let s = self.sink.stats();
        format!(
            "nats: published {} frames and messages ({:.1} MB) under {}.>{}; not published: {} \
             with NATS behind (queue full), {} over the server's max_payload ({} bytes), {} \
             failed{}",
            s.published,
            s.bytes as f64 / 1e6,
            self.prefix,
            match &self.jetstream {
                Some(j) => format!(", each stored by JetStream stream {j} before its ACK"),
                None => String::new(),
            },
            s.dropped_behind,
            s.too_large,
            self.sink.max_payload(),
            s.failed,
            if flushed {
                ""
            } else {
                "; the queue did not drain within 5 s at the end (some queued frames may not \
                 have reached NATS)"
            }
        )
    }
}
