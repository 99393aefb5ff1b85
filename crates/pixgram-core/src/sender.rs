//! The sending endpoint: one session towards one receiver, with a window of frames in flight per
//! stream and a verdict (acknowledged or lost, with round-trip time) for every frame.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;

use crate::chunking::ChunkLayout;
use crate::ids::{ChunkIndex, FrameId, SessionId, StreamId};
use crate::receiver::PayloadKind;
use crate::time::Timestamp;
use crate::wire::{
    self, AckStatus, DataFlags, DataHeader, Datagram, DATA_HEADER_LEN, DATA_OVERHEAD,
};

/// Settings of a [`Sender`].
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Bytes per datagram on the wire, headers included. 1200 is safe on any path; loopback
    /// carries up to [`wire::MAX_DATAGRAM_SIZE`].
    pub datagram_size: usize,
    /// Frames per stream that may be unacknowledged at once. 1 is stop-and-wait.
    pub window: usize,
    /// How long to wait for a frame's verdict after its last chunk was sent.
    pub frame_timeout: Duration,
    /// With frames in flight and nothing heard from the receiver for this long, it is gone.
    pub peer_timeout: Duration,
    /// Largest frame body this sender accepts.
    pub max_frame_len: u64,
    /// Streams this sender may open.
    pub max_streams: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            datagram_size: 1200,
            window: 8,
            frame_timeout: Duration::from_secs(3),
            peer_timeout: Duration::from_secs(5),
            max_frame_len: 64 << 20,
            max_streams: 16,
        }
    }
}

/// A frame or message to send.
#[derive(Debug, Clone)]
pub struct OutgoingFrame {
    /// Stream to send it on.
    pub stream: StreamId,
    /// Frame or JSON message.
    pub kind: PayloadKind,
    /// Whether the receiver must deliver this stream in order (one setting per stream).
    pub ordered: bool,
    /// Metadata delivered with the frame (JSON by convention).
    pub metadata: Option<Bytes>,
    /// The bytes to deliver.
    pub payload: Bytes,
}

impl OutgoingFrame {
    /// An unordered binary frame (an image) on `stream`.
    pub fn frame(stream: StreamId, payload: impl Into<Bytes>) -> Self {
        OutgoingFrame {
            stream,
            kind: PayloadKind::Frame,
            ordered: false,
            metadata: None,
            payload: payload.into(),
        }
    }

    /// A JSON message on `stream`, delivered in order.
    pub fn message(stream: StreamId, json: impl Into<Bytes>) -> Self {
        OutgoingFrame {
            stream,
            kind: PayloadKind::Message,
            ordered: true,
            metadata: None,
            payload: json.into(),
        }
    }

    /// The same frame carrying `metadata`.
    pub fn with_metadata(mut self, metadata: impl Into<Bytes>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }

    /// The same frame, delivered in order or not.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    fn body_len(&self) -> u64 {
        let meta = self.metadata.as_ref().map_or(0, |m| 4 + m.len() as u64);
        meta + self.payload.len() as u64
    }
}

/// Why [`Sender::send`] refused a frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// The stream already has `window` frames in flight; send again after a verdict.
    #[error("window full: wait for an acknowledgement")]
    WindowFull,
    /// The frame is larger than `max_frame_len`.
    #[error("frame of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Opening the stream would exceed `max_streams`.
    #[error("too many streams")]
    TooManyStreams,
    /// The stream already carries frames with the other ordering.
    #[error("stream {0} is already used with the other ordering")]
    OrderingMismatch(StreamId),
}

/// Why a frame was not delivered, as far as the sender knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// The receiver saw part of the frame but not all of it in time.
    Expired,
    /// The receiver refused it for a limit (size, memory, streams).
    Rejected,
    /// No verdict arrived within `frame_timeout`.
    Timeout,
    /// The receiver stopped answering altogether.
    PeerGone,
}

/// Something the application should know. Drain with [`Sender::poll_event`] after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderEvent {
    /// The receiver has the whole frame.
    Acked {
        /// Stream.
        stream: StreamId,
        /// Frame.
        frame: FrameId,
        /// From the last chunk sent to its acknowledgement, less the receiver's ack delay.
        rtt: Duration,
        /// From [`Sender::send`] to the acknowledgement.
        latency: Duration,
    },
    /// The frame will not be delivered.
    Lost {
        /// Stream.
        stream: StreamId,
        /// Frame.
        frame: FrameId,
        /// Why.
        reason: SendFailure,
    },
    /// Nothing was heard from the receiver for `peer_timeout` while frames were in flight; those
    /// frames were reported `Lost` with [`SendFailure::PeerGone`].
    PeerGone,
}

/// Counters of a sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderStats {
    /// Frames accepted by `send`.
    pub frames_sent: u64,
    /// Frames acknowledged whole.
    pub frames_acked: u64,
    /// Frames reported lost.
    pub frames_lost: u64,
    /// Payload bytes of acknowledged frames.
    pub payload_bytes_acked: u64,
    /// Datagrams produced.
    pub datagrams_sent: u64,
    /// Bytes of those datagrams.
    pub bytes_sent: u64,
    /// Datagrams received that were valid acknowledgements for this session.
    pub acks_received: u64,
    /// Acknowledgements for frames no longer in flight.
    pub duplicate_acks: u64,
    /// Datagrams received that were not for this session or did not parse.
    pub ignored_datagrams: u64,
}

/// One datagram produced by [`Sender::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Bytes written at the start of the buffer.
    pub len: usize,
}

#[derive(Debug)]
struct OutFrame {
    flags: DataFlags,
    layout: ChunkLayout,
    meta_prefix: [u8; 4],
    metadata: Bytes,
    payload: Bytes,
    next_chunk: u32,
    submitted: Timestamp,
    last_sent: Option<Timestamp>,
}

impl OutFrame {
    /// Copies body bytes `range` (prefix, metadata and payload seen as one) into `dst`.
    fn copy_body(&self, range: std::ops::Range<usize>, dst: &mut [u8]) {
        let prefix: &[u8] = if self.flags.contains(DataFlags::METADATA) {
            &self.meta_prefix
        } else {
            &[]
        };
        let mut at = 0; // position of the current part in body coordinates
        let mut written = 0;
        for part in [prefix, &self.metadata[..], &self.payload[..]] {
            let (start, end) = (range.start.max(at), range.end.min(at + part.len()));
            if start < end {
                dst[written..written + end - start].copy_from_slice(&part[start - at..end - at]);
                written += end - start;
            }
            at += part.len();
        }
    }
}

#[derive(Debug)]
struct StreamTx {
    ordered: bool,
    next_id: FrameId,
    in_flight: usize,
}

/// The sending endpoint, free of I/O.
///
/// [`send`](Sender::send) queues a frame; [`poll_transmit`](Sender::poll_transmit) yields its
/// datagrams; [`handle`](Sender::handle) takes the receiver's acknowledgements;
/// [`handle_timeout`](Sender::handle_timeout) runs when [`poll_timeout`](Sender::poll_timeout)
/// says; [`poll_event`](Sender::poll_event) reports each frame's fate. After every input, drain
/// `poll_transmit` and `poll_event` until `None`.
#[derive(Debug)]
pub struct Sender {
    config: SenderConfig,
    session: SessionId,
    streams: HashMap<StreamId, StreamTx>,
    frames: BTreeMap<(StreamId, FrameId), OutFrame>,
    send_queue: VecDeque<(StreamId, FrameId)>,
    events: VecDeque<SenderEvent>,
    /// Last time the receiver was heard from, or frames went in flight, whichever is later.
    peer_clock: Timestamp,
    close_queued: bool,
    stats: SenderStats,
}

impl Sender {
    /// A sender for one session. The driver picks `session` at random.
    ///
    /// # Panics
    /// If `config.datagram_size` is outside
    /// [`wire::MIN_DATAGRAM_SIZE`]`..=`[`wire::MAX_DATAGRAM_SIZE`] or `config.window` is 0.
    pub fn new(config: SenderConfig, session: SessionId) -> Self {
        assert!(
            (wire::MIN_DATAGRAM_SIZE..=wire::MAX_DATAGRAM_SIZE).contains(&config.datagram_size),
            "datagram size out of range"
        );
        assert!(config.window > 0, "window must be at least 1");
        Sender {
            config,
            session,
            streams: HashMap::new(),
            frames: BTreeMap::new(),
            send_queue: VecDeque::new(),
            events: VecDeque::new(),
            peer_clock: Timestamp::ZERO,
            close_queued: false,
            stats: SenderStats::default(),
        }
    }

    /// This sender's session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The configuration in force.
    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> &SenderStats {
        &self.stats
    }

    /// Frames sent or awaiting a verdict, all streams together.
    pub fn in_flight(&self) -> usize {
        self.frames.len()
    }

    /// Whether `stream` has room in its window.
    pub fn can_send(&self, stream: StreamId) -> bool {
        self.streams
            .get(&stream)
            .is_none_or(|s| s.in_flight < self.config.window)
    }

    /// Queues a frame. Its datagrams come out of [`poll_transmit`](Sender::poll_transmit), its
    /// verdict out of [`poll_event`](Sender::poll_event).
    pub fn send(&mut self, now: Timestamp, frame: OutgoingFrame) -> Result<FrameId, SendError> {
        let len = frame.body_len();
        if len > self.config.max_frame_len {
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_frame_len,
            });
        }
        let Some(layout) = ChunkLayout::for_frame(len, self.config.datagram_size - DATA_OVERHEAD)
        else {
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_frame_len,
            });
        };
        if !self.streams.contains_key(&frame.stream)
            && self.streams.len() >= self.config.max_streams
        {
            return Err(SendError::TooManyStreams);
        }
        let stream = self.streams.entry(frame.stream).or_insert(StreamTx {
            ordered: frame.ordered,
            next_id: FrameId(0),
            in_flight: 0,
        });
        if stream.ordered != frame.ordered {
            return Err(SendError::OrderingMismatch(frame.stream));
        }
        if stream.in_flight >= self.config.window {
            return Err(SendError::WindowFull);
        }
        let id = stream.next_id;
        stream.next_id = id.next();
        stream.in_flight += 1;
        if self.frames.is_empty() {
            self.peer_clock = now;
        }
        let flags = DataFlags::default()
            .with(DataFlags::MESSAGE, frame.kind == PayloadKind::Message)
            .with(DataFlags::METADATA, frame.metadata.is_some())
            .with(DataFlags::ORDERED, frame.ordered);
        let metadata = frame.metadata.unwrap_or_default();
        let meta_prefix = u32::try_from(metadata.len())
            .map_err(|_| SendError::TooLarge {
                len,
                max: u64::from(u32::MAX),
            })?
            .to_be_bytes();
        self.frames.insert(
            (frame.stream, id),
            OutFrame {
                flags,
                layout,
                meta_prefix,
                metadata,
                payload: frame.payload,
                next_chunk: 0,
                submitted: now,
                last_sent: None,
            },
        );
        self.send_queue.push_back((frame.stream, id));
        self.stats.frames_sent += 1;
        Ok(id)
    }

    /// Queues a CLOSE datagram telling the receiver this session is over. Frames still in flight
    /// keep their timers; send it once they are settled.
    pub fn close(&mut self) {
        self.close_queued = true;
    }

    /// Writes the next datagram into `buf` (at least `datagram_size` bytes), or returns `None`
    /// when nothing is ready. Call until `None` after every input.
    pub fn poll_transmit(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<Transmit> {
        let len = if let Some(&key) = self.send_queue.front() {
            let frame = self
                .frames
                .get_mut(&key)
                .expect("queued frames are in flight");
            let index = ChunkIndex(frame.next_chunk);
            let range = frame.layout.range(index).expect("next chunk exists");
            let header = DataHeader {
                session: self.session,
                stream: key.0,
                flags: frame.flags,
                frame: key.1,
                index,
                count: frame.layout.count(),
                frame_len: frame.layout.len(),
            };
            wire::emit_data_header(buf, &header);
            let payload_len = range.len();
            frame.copy_body(
                range,
                &mut buf[DATA_HEADER_LEN..DATA_HEADER_LEN + payload_len],
            );
            frame.next_chunk += 1;
            if frame.next_chunk == frame.layout.count() {
                frame.last_sent = Some(now);
                self.send_queue.pop_front();
            }
            wire::finish_data(buf, payload_len)
        } else if self.close_queued {
            self.close_queued = false;
            wire::emit_close(buf, self.session)
        } else {
            return None;
        };
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += len as u64;
        Some(Transmit { len })
    }

    /// Takes one datagram from the receiver.
    pub fn handle(&mut self, now: Timestamp, datagram: &[u8]) {
        let ack = match wire::parse(datagram) {
            Ok(Datagram::Ack(a)) if a.session == self.session => a,
            _ => {
                self.stats.ignored_datagrams += 1;
                return;
            }
        };
        self.stats.acks_received += 1;
        self.peer_clock = self.peer_clock.max(now);
        let Some(frame) = self.frames.remove(&(ack.stream, ack.frame)) else {
            self.stats.duplicate_acks += 1;
            return;
        };
        if frame.last_sent.is_none() {
            // Refused before we finished sending it: stop sending it.
            self.send_queue.retain(|k| *k != (ack.stream, ack.frame));
        }
        self.release(ack.stream);
        let event = match ack.status {
            AckStatus::Complete => {
                self.stats.frames_acked += 1;
                self.stats.payload_bytes_acked += frame.payload.len() as u64;
                let sent = frame.last_sent.unwrap_or(now);
                SenderEvent::Acked {
                    stream: ack.stream,
                    frame: ack.frame,
                    rtt: now
                        .saturating_since(sent)
                        .saturating_sub(Duration::from_micros(u64::from(ack.ack_delay_us))),
                    latency: now.saturating_since(frame.submitted),
                }
            }
            AckStatus::Expired | AckStatus::Rejected => {
                self.stats.frames_lost += 1;
                SenderEvent::Lost {
                    stream: ack.stream,
                    frame: ack.frame,
                    reason: if ack.status == AckStatus::Expired {
                        SendFailure::Expired
                    } else {
                        SendFailure::Rejected
                    },
                }
            }
        };
        self.events.push_back(event);
    }

    fn release(&mut self, stream: StreamId) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.in_flight -= 1;
        }
    }

    /// When [`handle_timeout`](Sender::handle_timeout) should next be called; `None` while no
    /// frame is in flight. Call again after every input.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.frames.is_empty() {
            return None;
        }
        let peer_deadline = self.peer_clock + self.config.peer_timeout;
        let frame_deadline = self
            .frames
            .values()
            .filter_map(|f| f.last_sent)
            .min()
            .map(|t| t + self.config.frame_timeout);
        Some(frame_deadline.map_or(peer_deadline, |f| f.min(peer_deadline)))
    }

    /// Reports frames whose verdict is overdue, and the receiver gone if it has been silent for
    /// `peer_timeout`. Harmless to call early or often.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.frames.is_empty() {
            return;
        }
        let peer_gone = now.saturating_since(self.peer_clock) >= self.config.peer_timeout;
        let overdue: Vec<(StreamId, FrameId)> = self
            .frames
            .iter()
            .filter(|(_, f)| {
                peer_gone
                    || f.last_sent
                        .is_some_and(|t| now.saturating_since(t) >= self.config.frame_timeout)
            })
            .map(|(k, _)| *k)
            .collect();
        let reason = if peer_gone {
            SendFailure::PeerGone
        } else {
            SendFailure::Timeout
        };
        for key in overdue {
            self.frames.remove(&key);
            self.send_queue.retain(|k| *k != key);
            self.release(key.0);
            self.stats.frames_lost += 1;
            self.events.push_back(SenderEvent::Lost {
                stream: key.0,
                frame: key.1,
                reason,
            });
        }
        if peer_gone {
            self.events.push_back(SenderEvent::PeerGone);
            self.peer_clock = now;
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }
}
