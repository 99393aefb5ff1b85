//! [`NatsSource`]: frames taken back out of NATS (issue 17), so that a pool of workers or a
//! second viewer runs `pixgram recv --from-nats` with any sink and no code of its own.
//!
//! - **core NATS**: a subscription, or with a queue group a queue subscription (NATS gives
//!   each message to one member of the group). At most once: a worker that dies loses what
//!   it held. The client holds at most [`NatsSourceConfig::pending`] messages; past that NATS
//!   drops them for this worker and says so ("slow consumer", counted in
//!   [`NatsSourceStats::slow_consumer`]).
//! - **JetStream** ([`NatsSourceConfig::jetstream`]): a durable pull consumer on the stream,
//!   named after the queue group, shared by every worker of the group. A delivery is
//!   acknowledged ([`NatsSource::done`]) only once the sinks have it; one not acknowledged
//!   within [`NatsSourceConfig::ack_wait`] (its worker died) is delivered again, to another
//!   worker: at least once. At most [`NatsSourceConfig::pending`] deliveries are unacknowledged
//!   per consumer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::consumer::pull;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::error::DriverError;
use crate::receive::EventSource;
use crate::sink::nats::{check_subject, connect_client, runtime, NatsError, META_HEADER};
use crate::sink::{extension_for, sanitise};

/// What a [`NatsSource`] subscribes to.
#[derive(Debug, Clone)]
pub struct NatsSourceConfig {
    /// `nats://HOST:PORT`.
    pub url: String,
    /// The subject, wildcards allowed (`pixgram.frames.>`).
    pub subject: String,
    /// A queue group: each message goes to one member. With JetStream, the durable
    /// consumer's name (`pixgram-workers` when none is given).
    pub queue: Option<String>,
    /// Consume from this JetStream stream (at least once) instead of core NATS; created over
    /// `FIRST.>` (the subject's first token) if missing.
    pub jetstream: Option<String>,
    /// JetStream: how long a delivery may stay unacknowledged before it goes to another
    /// worker.
    pub ack_wait: Duration,
    /// Messages held by the client (core) or unacknowledged (JetStream) at most.
    pub pending: usize,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl NatsSourceConfig {
    /// Defaults for `url` and `subject`: core NATS, no queue group, 256 pending.
    pub fn new(url: &str, subject: &str) -> Self {
        NatsSourceConfig {
            url: url.to_string(),
            subject: subject.to_string(),
            queue: None,
            jetstream: None,
            ack_wait: Duration::from_secs(5),
            pending: 256,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// One frame or message from NATS.
pub struct NatsDelivery {
    /// The subject it came on.
    pub subject: String,
    /// Its bytes, as the camera sent them.
    pub payload: Bytes,
    /// The `Pixgram-Meta` header's JSON, if it had one that parses.
    pub meta: Option<Value>,
    /// A JSON message (`PREFIX.messages.KEY`) rather than a frame.
    pub message: bool,
    /// A file name for it: the one the publishing receiver gave it, else one made from the
    /// subject and a sequence number.
    pub name: String,
    /// JetStream: delivered before (its first worker did not acknowledge it in time).
    pub redelivered: bool,
    acker: Option<jetstream::message::Acker>,
}

/// What a [`NatsSource`] has seen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NatsSourceStats {
    /// Deliveries taken.
    pub delivered: u64,
    /// Bytes of those.
    pub bytes: u64,
    /// JetStream deliveries that had been delivered before.
    pub redelivered: u64,
    /// JetStream acknowledgements sent.
    pub acked: u64,
    /// JetStream deliveries handed back (the sinks could not take them).
    pub nacked: u64,
    /// Slow consumer events: NATS dropped messages for this worker.
    pub slow_consumer: u64,
}

enum Inbox {
    Core(async_nats::Subscriber),
    JetStream(Box<pull::Stream>),
}

/// The source: see the module's documentation.
pub struct NatsSource {
    runtime: Runtime,
    _client: async_nats::Client,
    inbox: Inbox,
    slow: Arc<AtomicU64>,
    stats: NatsSourceStats,
}

impl NatsSource {
    /// Connects and subscribes.
    pub fn connect(config: NatsSourceConfig) -> Result<Self, NatsError> {
        check_subject(&config.subject, true)?;
        let runtime = runtime()?;
        let slow = Arc::new(AtomicU64::new(0));
        let pending = config.pending.max(1);
        let inbox = runtime.block_on(async {
            let client = connect_client(
                &config.url,
                config.connect_timeout,
                128,
                pending,
                Some(slow.clone()),
            )
            .await?;
            let failed = |e: &dyn std::fmt::Display| NatsError::Subscribe {
                subject: config.subject.clone(),
                reason: e.to_string(),
            };
            let inbox = match &config.jetstream {
                None => {
                    let subject = config.subject.clone();
                    let sub = match &config.queue {
                        Some(g) => client.queue_subscribe(subject, g.clone()).await,
                        None => client.subscribe(subject).await,
                    };
                    let sub = sub.map_err(|e| failed(&e))?;
                    // The subscription is on the server once this returns: frames published
                    // from now on reach this worker.
                    client.flush().await.map_err(|e| failed(&e))?;
                    Inbox::Core(sub)
                }
                Some(stream) => {
                    let js = jetstream::new(client.clone());
                    let js_error = |what: String| {
                        move |e: &dyn std::fmt::Display| NatsError::JetStream {
                            what: what.clone(),
                            reason: e.to_string(),
                        }
                    };
                    // Workers may start before the receiver that publishes: the stream is
                    // created as the publisher would, over the subject's first token.
                    let prefix = config.subject.split('.').next().unwrap_or_default();
                    let s = js
                        .get_or_create_stream(jetstream::stream::Config {
                            name: stream.clone(),
                            subjects: vec![format!("{prefix}.>")],
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| js_error(format!("stream {stream}"))(&e))?;
                    let durable = config
                        .queue
                        .clone()
                        .unwrap_or_else(|| "pixgram-workers".into());
                    let consumer: jetstream::consumer::Consumer<pull::Config> = s
                        .get_or_create_consumer(
                            &durable,
                            pull::Config {
                                durable_name: Some(durable.clone()),
                                filter_subject: config.subject.clone(),
                                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                                ack_wait: config.ack_wait,
                                max_ack_pending: pending as i64,
                                ..Default::default()
                            },
                        )
                        .await
                        .map_err(|e| js_error(format!("consumer {durable}"))(&e))?;
                    let messages = consumer
                        .stream()
                        .max_messages_per_batch(pending.min(64))
                        .heartbeat(Duration::from_secs(1))
                        .expires(Duration::from_secs(5))
                        .messages()
                        .await
                        .map_err(|e| failed(&e))?;
                    Inbox::JetStream(Box::new(messages))
                }
            };
            Ok::<_, NatsError>((client, inbox))
        })?;
        let (client, inbox) = inbox;
        Ok(NatsSource {
            runtime,
            _client: client,
            inbox,
            slow,
            stats: NatsSourceStats::default(),
        })
    }

    /// The next delivery, waiting at most until `until`; `None` if nothing came.
    pub fn next(&mut self, until: Instant) -> Result<Option<NatsDelivery>, NatsError> {
        let wait = until.saturating_duration_since(Instant::now());
        let inbox = &mut self.inbox;
        let got = self.runtime.block_on(async {
            match inbox {
                Inbox::Core(sub) => match tokio::time::timeout(wait, sub.next()).await {
                    Err(_) => Ok(None),
                    Ok(None) => Err("the subscription was closed".to_string()),
                    Ok(Some(m)) => Ok(Some((m, None, false))),
                },
                Inbox::JetStream(msgs) => match tokio::time::timeout(wait, msgs.next()).await {
                    Err(_) => Ok(None),
                    Ok(None) => Err("the consumer's stream ended".to_string()),
                    Ok(Some(Err(e))) => Err(e.to_string()),
                    Ok(Some(Ok(m))) => {
                        let again = m.info().is_ok_and(|i| i.delivered > 1);
                        let (m, acker) = m.split();
                        Ok(Some((m, Some(acker), again)))
                    }
                },
            }
        });
        let (m, acker, redelivered) = match got {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(None),
            Err(reason) => {
                return Err(NatsError::Subscribe {
                    subject: match &self.inbox {
                        Inbox::Core(_) => "core NATS".into(),
                        Inbox::JetStream(_) => "JetStream".into(),
                    },
                    reason,
                })
            }
        };
        self.stats.delivered += 1;
        self.stats.bytes += m.payload.len() as u64;
        self.stats.redelivered += u64::from(redelivered);
        let meta = m
            .headers
            .as_ref()
            .and_then(|h| h.get(META_HEADER))
            .and_then(|v| serde_json::from_str::<Value>(v.as_str()).ok());
        let subject = m.subject.to_string();
        let message = subject.split('.').any(|t| t == "messages");
        let name = delivery_name(meta.as_ref(), &subject, self.stats.delivered, &m.payload);
        Ok(Some(NatsDelivery {
            subject,
            payload: m.payload,
            meta,
            message,
            name,
            redelivered,
            acker,
        }))
    }

    /// The sinks took `delivery` (`stored`) or could not: with JetStream, acknowledged, or
    /// handed back for another delivery.
    pub fn done(&mut self, delivery: NatsDelivery, stored: bool) {
        let Some(acker) = delivery.acker else {
            return;
        };
        let kind = if stored {
            jetstream::AckKind::Ack
        } else {
            jetstream::AckKind::Nak(None)
        };
        if self.runtime.block_on(acker.ack_with(kind)).is_ok() {
            if stored {
                self.stats.acked += 1;
            } else {
                self.stats.nacked += 1;
            }
        }
    }

    /// What it has seen so far.
    pub fn stats(&self) -> NatsSourceStats {
        NatsSourceStats {
            slow_consumer: self.slow.load(Ordering::Relaxed),
            ..self.stats
        }
    }
}

impl EventSource for NatsSource {
    type Event = NatsDelivery;
    fn next_event(&mut self, until: Instant) -> Result<Option<NatsDelivery>, DriverError> {
        self.next(until)
            .map_err(|e| DriverError::Io(std::io::Error::other(e)))
    }
}

/// A file name for a delivery: the publishing receiver's (`name` in its metadata), else
/// `nats-SUBJECT-N.EXT`.
fn delivery_name(meta: Option<&Value>, subject: &str, n: u64, payload: &[u8]) -> String {
    meta.and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(sanitise)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| sanitise(&format!("nats-{subject}-{n:06}.{}", extension_for(payload))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_come_from_the_publisher_or_the_subject() {
        let meta = json!({"name": "../../etc/s1-0-000003-a.jpg"});
        assert_eq!(
            delivery_name(Some(&meta), "pixgram.frames.x.0", 1, b""),
            "s1-0-000003-a.jpg"
        );
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0];
        assert_eq!(
            delivery_name(None, "pixgram.frames.x.0", 7, &jpeg),
            "nats-pixgram.frames.x.0-000007.jpg"
        );
    }
}
