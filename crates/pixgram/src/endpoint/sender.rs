//! [`Sender`]: connect, send files, images with metadata and JSON messages, then wait for
//! their acknowledgements.

use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pixgram_core::seal::Psk;
use pixgram_core::{FrameId, OutgoingFrame, SendFailure, SenderConfig, SenderEvent, StreamId};

use super::{resolve, Error};
use crate::delivery::Delivery;
use crate::meta::FrameMeta;
use crate::publish::{Publisher, SendReport};
use crate::sender::UdpSender;
use crate::source::{file_name, LiveSource};

/// The largest datagram path MTU discovery looks for by default: the UDP limit.
pub const DISCOVER_UP_TO: usize = pixgram_core::wire::MAX_DATAGRAM_SIZE;

/// Sends frames and messages to one receiver; see the [crate docs](crate) for an example.
pub struct Sender {
    tx: UdpSender,
    delivery: Delivery,
    acked: u64,
    lost: Vec<(FrameId, SendFailure)>,
}

/// Options for a [`Sender`]: start from [`Sender::builder`].
#[derive(Debug, Clone)]
pub struct SenderBuilder {
    config: SenderConfig,
    delivery: Delivery,
    key: Option<Psk>,
}

/// What was delivered, once every frame has a verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// Frames and messages acknowledged.
    pub acked: u64,
    /// Those lost, and why.
    pub lost: Vec<(FrameId, SendFailure)>,
}

impl SenderBuilder {
    /// Frames in flight at once (default 16).
    pub fn window(mut self, frames: usize) -> Self {
        self.config.window = frames;
        self
    }

    /// Bytes per datagram on the wire, exactly: no path MTU discovery (default: start at
    /// 1200 and discover the largest size the path carries, see
    /// [`max_datagram_size`](Self::max_datagram_size)).
    pub fn datagram_size(mut self, bytes: usize) -> Self {
        self.config.datagram_size = bytes;
        self.config.max_datagram_size = None;
        self
    }

    /// The largest datagram path MTU discovery may use (default 65,507, the UDP limit:
    /// loopback carries it, Ethernet 1,472, jumbo frames 8,972). Probes are confirmed by the
    /// receiver before the size is used; a path that stops carrying it falls back.
    pub fn max_datagram_size(mut self, bytes: usize) -> Self {
        self.config.max_datagram_size = Some(bytes.max(self.config.datagram_size));
        self
    }

    /// How long a silent receiver is waited for before it is taken to be gone.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.peer_timeout = timeout;
        self.config.frame_timeout = timeout;
        self
    }

    /// At most this many bytes a second.
    pub fn max_rate(mut self, bytes_per_sec: f64) -> Self {
        self.config.max_rate = Some(bytes_per_sec);
        self
    }

    /// Frames delivered this way (default: reliable); messages are always reliable.
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Seals every datagram with `key` (the receiver needs the same key).
    pub fn key(mut self, key: Psk) -> Self {
        self.key = Some(key);
        self
    }

    /// Connects to the receiver at `addr`.
    pub fn connect(self, addr: impl ToSocketAddrs) -> Result<Sender, Error> {
        let config = self.delivery.tune(self.config);
        let tx = UdpSender::connect_keyed(resolve(addr)?, config, self.key.as_ref())?;
        Ok(Sender {
            tx,
            delivery: self.delivery,
            acked: 0,
            lost: Vec::new(),
        })
    }
}

impl Sender {
    /// Options, to change before [`SenderBuilder::connect`].
    pub fn builder() -> SenderBuilder {
        SenderBuilder {
            config: SenderConfig {
                max_datagram_size: Some(DISCOVER_UP_TO),
                ..SenderConfig::default()
            },
            delivery: Delivery::Reliable,
            key: None,
        }
    }

    /// Connects to the receiver at `addr` with the default options.
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Sender, Error> {
        Self::builder().connect(addr)
    }

    /// Sends a file, named by its file name in the metadata (`"file"`).
    pub fn send_file(&mut self, path: impl AsRef<Path>) -> Result<FrameId, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::File {
            path: path.to_path_buf(),
            source,
        })?;
        self.send_image(bytes, FrameMeta::named(file_name(path)))
    }

    /// Sends an encoded image (or any bytes) with `meta`.
    pub fn send_image(
        &mut self,
        bytes: impl Into<Bytes>,
        meta: FrameMeta,
    ) -> Result<FrameId, Error> {
        let frame = self.delivery.frame(StreamId::FRAMES, bytes.into());
        self.send(frame.with_metadata(meta.to_bytes()))
    }

    /// Waits, until `deadline` at most, for room in the window for one more frame
    /// (`message`: one more JSON message), processing acknowledgements meanwhile; whether
    /// there is room. A caller that must stay responsive (to Ctrl-C, to a stop flag) waits in
    /// slices with this before [`send_image`](Self::send_image), which itself waits as long as
    /// it takes.
    pub fn wait_for_room(&mut self, message: bool, deadline: Instant) -> Result<bool, Error> {
        let stream = if message {
            StreamId::MESSAGES
        } else {
            StreamId::FRAMES
        };
        while !self.tx.core().can_send(stream) {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            self.tx.pump(Some(deadline))?;
        }
        Ok(true)
    }

    /// Sends `value` as a JSON message.
    pub fn send_json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<FrameId, Error> {
        let json = serde_json::to_vec(value)?;
        self.send(OutgoingFrame::message(StreamId::MESSAGES, json))
    }

    /// Sends the frames of a live source (`count` of them, or until it ends) as they come, on
    /// a thread of their own, keeping the stream going between them; returns what became of
    /// them (they count in [`Sender::finish`] too). A re-encoding source (the pattern, or a
    /// camera or MJPEG stream given a quality) has its quality stepped to fit the path
    /// ([`SendReport::quality`]).
    pub fn stream(&mut self, source: LiveSource, count: Option<u64>) -> Result<SendReport, Error> {
        let interval = source.frame_interval().or(match self.delivery {
            Delivery::Live { interval, .. } => Some(interval),
            Delivery::Reliable => None,
        });
        let (queue, running) = source.start(count, Arc::default(), Some(self.tx.waker()?))?;
        let mut publisher =
            Publisher::new(&mut self.tx, FrameMeta::default()).with_delivery(self.delivery);
        if let (Some(knob), Some(interval)) = (running.quality(), interval) {
            publisher = publisher.with_quality(knob, interval, |_| {});
        }
        let mut report = publisher.send_stream(queue, count, |_, _| {});
        running.join().end.result?;
        self.acked += report.acked;
        let lost = report
            .not_delivered
            .iter()
            .map(|(id, (_, _, why))| (*id, *why));
        self.lost.extend(lost);
        match report.error.take() {
            Some(e) => Err(e.into()),
            None => Ok(report),
        }
    }

    fn send(&mut self, frame: OutgoingFrame) -> Result<FrameId, Error> {
        let id = self.tx.send(frame)?;
        self.take_verdicts();
        Ok(id)
    }

    /// Takes acknowledgements and runs timers (resending what was lost) until every frame
    /// sent has a verdict or `deadline` passes; `Ok(true)` once nothing is left in flight.
    /// Unlike [`Sender::finish`] the session stays open: call it in short slices to wait for
    /// a frame's acknowledgement while staying responsive (to Ctrl-C, to other sockets).
    pub fn wait(&mut self, deadline: Instant) -> Result<bool, Error> {
        while self.tx.in_flight() > 0 && Instant::now() < deadline {
            self.tx.pump(Some(deadline))?;
            self.take_verdicts();
        }
        self.take_verdicts();
        Ok(self.tx.in_flight() == 0)
    }

    /// Frames and messages acknowledged so far, and those lost (with why) so far.
    pub fn verdicts(&self) -> (u64, &[(FrameId, SendFailure)]) {
        (self.acked, &self.lost)
    }

    /// Waits until everything sent has a verdict (as long as the receiver answers), then
    /// closes the session.
    pub fn finish(mut self) -> Result<Sent, Error> {
        let quiet = self.tx.core().config().peer_timeout * 2;
        self.tx.flush(quiet)?;
        self.take_verdicts();
        self.tx.close()?;
        Ok(Sent {
            acked: self.acked,
            lost: self.lost,
        })
    }

    /// The driver underneath, for its counters and path estimates.
    pub fn udp(&self) -> &UdpSender {
        &self.tx
    }

    fn take_verdicts(&mut self) {
        while let Some(event) = self.tx.poll_event() {
            match event {
                SenderEvent::Acked { .. } => self.acked += 1,
                SenderEvent::Lost { frame, reason, .. } => self.lost.push((frame, reason)),
                SenderEvent::LateAck { frame, .. } => {
                    if let Some(i) = self.lost.iter().position(|(f, _)| *f == frame) {
                        self.lost.remove(i);
                        self.acked += 1;
                    }
                }
                SenderEvent::PeerGone => {}
            }
        }
    }
}
