//! [`NatsSink`]: every delivered frame published on NATS (issue 17), for fleets of workers on
//! other machines. Frames go on `PREFIX.frames.KEY`, JSON messages on `PREFIX.messages.KEY`
//! ([`nats_key`]), the payload the frame's bytes unchanged and what pixgram knows about it as
//! JSON in a `Pixgram-Meta` header ([`META_HEADER`]).
//!
//! The receive loop stays synchronous: the sink owns a small tokio runtime (one worker
//! thread) that runs the NATS client. Two modes:
//! - **core NATS** (at most once): a frame is handed to a bounded queue ([`NatsConfig::queue_frames`]
//!   frames and [`NatsConfig::queue_bytes`] bytes) that one task drains into the client. A frame
//!   that finds no room within [`NatsConfig::queue_wait`] is not published and is counted
//!   ([`NatsSinkStats::dropped_behind`]): NATS (or the network to it) is slower than the
//!   cameras, and nothing grows without bound.
//! - **JetStream** ([`NatsConfig::jetstream`]): each frame is published at once and
//!   [`NatsSink::publish`] returns [`Published::Pending`] with a ticket; its JetStream
//!   acknowledgement is awaited off the receive loop (at most [`NatsConfig::ack_timeout`]),
//!   with at most [`NatsConfig::queue_frames`] frames awaiting theirs (pipelined: one round
//!   trip to the server is not paid per frame). [`NatsSink::take_acks`] gives each outcome,
//!   [`Published::Stored`] or [`Published::Failed`], in the order they came; the caller
//!   confirms the frame to its camera then, so its pixgram ACK means the stream has stored it
//!   (at-least-once), like the folder sink's ACK after fsync. [`NatsSink::on_ack`] wakes the
//!   caller's receive loop when one is ready.
//!
//! A frame larger than the server's `max_payload` is refused before it is sent
//! ([`Published::TooLarge`]), with the limit, so the caller can say how to raise it.

mod acks;
mod client;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::HeaderMap;
use bytes::Bytes;
use pixgram_core::StreamId;
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use acks::AckQueue;
pub use acks::OnAck;
use client::headers_wire_len;
pub use client::{check_subject, nats_key, NatsError, DEFAULT_PREFIX, META_HEADER};
pub(crate) use client::{connect_client, runtime};

/// How a [`NatsSink`] publishes.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://HOST:PORT` (several separated by commas).
    pub url: String,
    /// Subjects start with this (`pixgram` by default).
    pub prefix: String,
    /// Publish into this JetStream stream (created over `PREFIX.>` if missing); each frame's
    /// outcome comes with its acknowledgement.
    pub jetstream: Option<String>,
    /// Core NATS: frames queued for the client at most. JetStream: frames awaiting their
    /// acknowledgement at most (a frame finding no room waits at most
    /// [`NatsConfig::ack_timeout`] for it).
    pub queue_frames: usize,
    /// Core NATS: bytes queued for the client at most.
    pub queue_bytes: usize,
    /// Core NATS: how long a frame may wait for room in the queue (the receive loop waits
    /// with it) before it counts as not taken. Bounded, so one slow NATS server delays the
    /// cameras' ACKs by at most this much per frame.
    pub queue_wait: Duration,
    /// JetStream: how long an acknowledgement may take before the frame counts as not taken.
    pub ack_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl NatsConfig {
    /// Defaults for `url`: prefix `pixgram`, core NATS, a queue of 64 frames and 64 MiB that a
    /// frame waits at most 20 ms to enter.
    pub fn new(url: &str) -> Self {
        NatsConfig {
            url: url.to_string(),
            prefix: DEFAULT_PREFIX.to_string(),
            jetstream: None,
            queue_frames: 64,
            queue_bytes: 64 << 20,
            queue_wait: Duration::from_millis(20),
            ack_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// What NATS made of one frame or message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Core NATS: queued for the client (at most once from here).
    Queued,
    /// JetStream stored it (stream sequence number).
    Stored(u64),
    /// JetStream: published, its acknowledgement awaited; [`NatsSink::take_acks`] gives the
    /// outcome ([`Published::Stored`] or [`Published::Failed`]) under this ticket.
    Pending(u64),
    /// The queue was full (core NATS), or every place awaiting an acknowledgement taken
    /// (JetStream) for as long as a frame may wait: NATS was not taking frames as fast as
    /// they came.
    Behind,
    /// Larger than the server's `max_payload` (`limit`), headers included (`size`).
    TooLarge {
        /// The server's limit.
        limit: usize,
        /// What this frame would have been.
        size: usize,
    },
    /// The publish or its acknowledgement failed (or timed out); the reason.
    Failed(String),
}

impl Published {
    /// Whether the frame can be acknowledged to its sender as taken (a pending one: not
    /// yet).
    pub fn taken(&self) -> bool {
        matches!(self, Published::Queued | Published::Stored(_))
    }
}

/// One frame or message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The sender's address.
    pub peer: SocketAddr,
    /// Its stream.
    pub stream: StreamId,
    /// A message (`PREFIX.messages.KEY`) rather than a frame (`PREFIX.frames.KEY`).
    pub message: bool,
    /// The bytes, published unchanged.
    pub payload: &'a Bytes,
    /// The `Pixgram-Meta` header's JSON object.
    pub meta: Value,
}

/// What a [`NatsSink`] has done so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NatsSinkStats {
    /// Handed to the client (core) or acknowledged by JetStream.
    pub published: u64,
    /// Bytes of those.
    pub bytes: u64,
    /// Not published: the bounded queue was full (NATS slower than the cameras).
    pub dropped_behind: u64,
    /// Not published: over the server's `max_payload`.
    pub too_large: u64,
    /// Not published or not acknowledged: the client or JetStream said no, or timed out.
    pub failed: u64,
}

/// The sink: see the module's documentation.
pub struct NatsSink {
    /// Dropped last (the client and the queue's task live on it).
    runtime: Runtime,
    client: async_nats::Client,
    jetstream: Option<jetstream::Context>,
    acks: AckQueue,
    queue: Option<mpsc::Sender<(String, HeaderMap, Bytes)>>,
    queued_bytes: Arc<ByteBudget>,
    failed_in_task: Arc<AtomicU64>,
    drained: Option<tokio::task::JoinHandle<()>>,
    config: NatsConfig,
    stats: NatsSinkStats,
}

impl NatsSink {
    /// Connects to `config.url`; with JetStream, finds or creates the stream over `PREFIX.>`.
    pub fn connect(config: NatsConfig) -> Result<Self, NatsError> {
        check_subject(&config.prefix, false)?;
        let runtime = runtime()?;
        let client = runtime.block_on(connect_client(
            &config.url,
            config.connect_timeout,
            // The client's own command queue, ahead of the socket: kept short so that the
            // bounded queue here is where frames wait, and is what fills when NATS is slow.
            8,
            // Only JetStream's acknowledgements arrive, as many at once as frames await them.
            config.queue_frames.max(64),
            None,
        ))?;
        let jetstream = match &config.jetstream {
            None => None,
            Some(name) => {
                // The context spawns its acknowledgement task on the current runtime.
                let _inside = runtime.enter();
                let js = jetstream::new(client.clone());
                let subjects = vec![format!("{}.>", config.prefix)];
                runtime
                    .block_on(js.get_or_create_stream(jetstream::stream::Config {
                        name: name.clone(),
                        subjects,
                        ..Default::default()
                    }))
                    .map_err(|e| NatsError::JetStream {
                        what: format!("stream {name}"),
                        reason: e.to_string(),
                    })?;
                Some(js)
            }
        };
        let queued_bytes = Arc::new(ByteBudget::new(config.queue_bytes));
        let failed_in_task = Arc::new(AtomicU64::new(0));
        let (queue, drained) = if jetstream.is_none() {
            let (tx, mut rx) =
                mpsc::channel::<(String, HeaderMap, Bytes)>(config.queue_frames.max(1));
            let (c, q, f) = (client.clone(), queued_bytes.clone(), failed_in_task.clone());
            let task = runtime.spawn(async move {
                while let Some((subject, headers, payload)) = rx.recv().await {
                    let len = payload.len();
                    if c.publish_with_headers(subject, headers, payload)
                        .await
                        .is_err()
                    {
                        f.fetch_add(1, Ordering::Relaxed);
                    }
                    q.give_back(len);
                }
                let _ = c.flush().await;
            });
            (Some(tx), Some(task))
        } else {
            (None, None)
        };
        Ok(NatsSink {
            runtime,
            client,
            jetstream,
            acks: AckQueue::new(config.queue_frames),
            queue,
            queued_bytes,
            failed_in_task,
            drained,
            config,
            stats: NatsSinkStats::default(),
        })
    }

    /// The server's `max_payload`: the largest message (payload and headers) it takes.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// The subject `item` goes on.
    pub fn subject_for(&self, item: &Outgoing) -> String {
        let kind = if item.message { "messages" } else { "frames" };
        format!(
            "{}.{kind}.{}",
            self.config.prefix,
            nats_key(item.peer, item.stream)
        )
    }

    /// Publishes `item`: queued (core NATS) or pending its acknowledgement (JetStream), or
    /// why not.
    pub fn publish(&mut self, item: &Outgoing) -> Published {
        let subject = self.subject_for(item);
        let mut headers = HeaderMap::new();
        headers.insert(META_HEADER, item.meta.to_string().as_str());
        let size = headers_wire_len(&headers) + item.payload.len();
        let limit = self.max_payload();
        let published = if size > limit {
            self.stats.too_large += 1;
            return Published::TooLarge { limit, size };
        } else if self.jetstream.is_some() {
            return self.publish_to_stream(subject, headers, item.payload.clone());
        } else {
            self.enqueue(subject, headers, item.payload.clone())
        };
        match &published {
            Published::Queued | Published::Stored(_) | Published::Pending(_) => {
                self.stats.published += 1;
                self.stats.bytes += item.payload.len() as u64;
            }
            Published::Behind => self.stats.dropped_behind += 1,
            Published::Failed(_) => self.stats.failed += 1,
            Published::TooLarge { .. } => {}
        }
        published
    }

    /// JetStream: publishes at once and leaves the acknowledgement to the [`AckQueue`];
    /// counted when its outcome is taken ([`NatsSink::take_acks`]).
    fn publish_to_stream(
        &mut self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Published {
        let Some(js) = &self.jetstream else {
            return Published::Failed("not publishing into JetStream".into());
        };
        let timeout = self.config.ack_timeout;
        let Some(room) = self.acks.room(&self.runtime, timeout) else {
            self.stats.dropped_behind += 1;
            return Published::Behind;
        };
        let len = payload.len();
        let sent = self.runtime.block_on(async {
            tokio::time::timeout(timeout, js.publish_with_headers(subject, headers, payload)).await
        });
        let ack = match sent {
            Ok(Ok(ack)) => ack,
            Ok(Err(e)) => {
                self.stats.failed += 1;
                return Published::Failed(e.to_string());
            }
            Err(_) => {
                self.stats.failed += 1;
                return Published::Failed(format!(
                    "the NATS client took no frame within {} ms",
                    timeout.as_millis()
                ));
            }
        };
        let ack = async move { ack.await.map(|a| a.sequence).map_err(|e| e.to_string()) };
        Published::Pending(self.acks.track(&self.runtime, ack, timeout, len, room))
    }

    /// JetStream: the outcome of every pending frame whose acknowledgement came (or failed,
    /// or is overdue) since the last call, by ticket ([`Published::Pending`]), in the order
    /// they came; counted in [`NatsSink::stats`].
    pub fn take_acks(&mut self, out: &mut Vec<(u64, Published)>) {
        let mut taken = Vec::new();
        self.acks.take(&mut taken);
        for (ticket, outcome, len) in taken {
            match &outcome {
                Published::Stored(_) => {
                    self.stats.published += 1;
                    self.stats.bytes += len as u64;
                }
                _ => self.stats.failed += 1,
            }
            out.push((ticket, outcome));
        }
    }

    /// JetStream: frames published whose outcome [`NatsSink::take_acks`] has not given yet
    /// (ready or not).
    pub fn awaiting_acks(&self) -> usize {
        self.acks.awaiting()
    }

    /// Runs `f` (on the client's thread) whenever a JetStream outcome becomes ready, so the
    /// caller's receive loop can take it at once (set once).
    pub fn on_ack(&self, f: OnAck) {
        self.acks.on_ack(f);
    }

    /// Queues a frame, waiting at most [`NatsConfig::queue_wait`] for room (frames and bytes).
    fn enqueue(&mut self, subject: String, headers: HeaderMap, payload: Bytes) -> Published {
        let Some(queue) = self.queue.clone() else {
            return Published::Failed("the NATS sink was finished".into());
        };
        let len = payload.len();
        let deadline = Instant::now() + self.config.queue_wait;
        while !self.queued_bytes.try_take(len) {
            if Instant::now() >= deadline {
                return Published::Behind;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let item = (subject, headers, payload);
        let sent = match queue.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(false),
            Err(mpsc::error::TrySendError::Full(item)) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                match self
                    .runtime
                    .block_on(async { tokio::time::timeout(wait, queue.send(item)).await })
                {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(false),
                    Err(_) => Err(true),
                }
            }
        };
        match sent {
            Ok(()) => Published::Queued,
            Err(full) => {
                self.queued_bytes.give_back(len);
                if full {
                    Published::Behind
                } else {
                    Published::Failed("the NATS publishing task stopped".into())
                }
            }
        }
    }

    /// What was published and refused so far (publishes that failed inside the queue's task
    /// are counted in `failed` and taken out of `published`).
    pub fn stats(&self) -> NatsSinkStats {
        let late = self.failed_in_task.load(Ordering::Relaxed);
        NatsSinkStats {
            published: self.stats.published.saturating_sub(late),
            failed: self.stats.failed + late,
            ..self.stats
        }
    }

    /// Publishes what is still queued, flushes the client and waits for the JetStream
    /// acknowledgements still due (then in [`NatsSink::take_acks`]), at most `timeout`;
    /// whether everything went out (and was acknowledged) in time.
    pub fn finish(&mut self, timeout: Duration) -> bool {
        if self.jetstream.is_some() {
            return self.acks.settle(&self.runtime, timeout);
        }
        self.queue = None;
        let drained = self.drained.take();
        let client = self.client.clone();
        self.runtime.block_on(async move {
            let all = async {
                if let Some(task) = drained {
                    let _ = task.await;
                }
                client.flush().await.is_ok()
            };
            tokio::time::timeout(timeout, all).await.unwrap_or(false)
        })
    }
}

/// The bytes waiting in the core-NATS queue, held to a limit.
#[derive(Debug)]
struct ByteBudget {
    limit: usize,
    queued: AtomicUsize,
}

impl ByteBudget {
    fn new(limit: usize) -> Self {
        ByteBudget {
            limit,
            queued: AtomicUsize::new(0),
        }
    }

    /// Takes `len` bytes if they fit; one frame larger than the whole budget still passes
    /// when nothing else waits (else it could never be published).
    fn try_take(&self, len: usize) -> bool {
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before == 0 || before + len <= self.limit {
            return true;
        }
        self.queued.fetch_sub(len, Ordering::Relaxed);
        false
    }

    /// `len` bytes taken earlier left the queue.
    fn give_back(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_budget_holds_the_queue_to_its_limit() {
        let b = ByteBudget::new(1000);
        assert!(b.try_take(600));
        assert!(b.try_take(400));
        assert!(!b.try_take(1), "over the limit");
        b.give_back(600);
        assert!(b.try_take(500));
        assert!(!b.try_take(200));
        b.give_back(400);
        b.give_back(500);
        // Empty: a frame larger than the whole budget passes alone, and nothing after it.
        assert!(b.try_take(5000));
        assert!(!b.try_take(1));
    }
}
