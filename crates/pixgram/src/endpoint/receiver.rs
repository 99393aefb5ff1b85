//! [`Receiver`]: bind, then iterate what arrives.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

use bytes::Bytes;
use pixgram_core::seal::Psk;
use pixgram_core::{FrameId, PayloadKind, ReceiverConfig, ReceiverEvent, StreamId};

use super::{resolve, Error};
use crate::meta::FrameMeta;
use crate::receiver::UdpReceiver;
use crate::socket::DEFAULT_RECV_BUFFER;

/// Serves any number of senders on one UDP port; see the [crate docs](crate) for an example.
pub struct Receiver {
    rx: UdpReceiver,
}

/// Options for a [`Receiver`]: start from [`Receiver::builder`].
#[derive(Debug, Clone)]
pub struct ReceiverBuilder {
    config: ReceiverConfig,
    key: Option<Psk>,
}

/// An image (or any frame) that arrived whole.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Who sent it.
    pub peer: SocketAddr,
    /// Its stream.
    pub stream: StreamId,
    /// Its id in the stream.
    pub id: FrameId,
    /// Its bytes.
    pub bytes: Bytes,
    /// Its metadata (empty if it carried none, or none pixgram understands).
    pub meta: FrameMeta,
}

/// A JSON message that arrived.
#[derive(Debug, Clone)]
pub struct Message {
    /// Who sent it.
    pub peer: SocketAddr,
    /// Its stream.
    pub stream: StreamId,
    /// Its id in the stream.
    pub id: FrameId,
    /// The JSON text.
    pub bytes: Bytes,
}

impl Message {
    /// The message parsed.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }
}

/// What arrives.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A frame.
    Frame(Frame),
    /// A message.
    Message(Message),
}

impl ReceiverBuilder {
    /// Largest frame taken, metadata included (default 64 MiB).
    pub fn max_frame_size(mut self, bytes: u64) -> Self {
        self.config.max_frame_len = bytes;
        self
    }

    /// Senders served at once.
    pub fn max_peers(mut self, peers: usize) -> Self {
        self.config.max_peers = peers;
        self
    }

    /// Hears only senders sealing with `key`.
    pub fn key(mut self, key: Psk) -> Self {
        self.key = Some(key);
        self
    }

    /// Binds to `addr` (port 0: any free port, see [`Receiver::local_addr`]).
    pub fn bind(self, addr: impl ToSocketAddrs) -> Result<Receiver, Error> {
        let rx = UdpReceiver::bind_keyed(
            resolve(addr)?,
            self.config,
            DEFAULT_RECV_BUFFER,
            self.key.as_ref(),
        )?;
        Ok(Receiver { rx })
    }
}

impl Receiver {
    /// Options, to change before [`ReceiverBuilder::bind`].
    pub fn builder() -> ReceiverBuilder {
        ReceiverBuilder {
            config: ReceiverConfig::default(),
            key: None,
        }
    }

    /// Binds to `addr` with the default options.
    pub fn bind(addr: impl ToSocketAddrs) -> Result<Receiver, Error> {
        Self::builder().bind(addr)
    }

    /// The address senders should connect to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.rx.local_addr()?)
    }

    /// The next frame or message, waiting at most until `deadline` (`None`: as long as it
    /// takes); `Ok(None)` once the deadline has passed.
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Option<Incoming>, Error> {
        loop {
            let Some(event) = self.rx.next_event(deadline)? else {
                return Ok(None);
            };
            let ReceiverEvent::Frame(f) = event else {
                continue;
            };
            return Ok(Some(incoming_of(f)));
        }
    }

    /// Everything that arrives, as it arrives (blocking; never ends by itself: `take(n)`).
    pub fn incoming(&mut self) -> impl Iterator<Item = Result<Incoming, Error>> + '_ {
        std::iter::from_fn(move || self.next(None).transpose())
    }

    /// The driver underneath, for its counters.
    pub fn udp(&self) -> &UdpReceiver {
        &self.rx
    }
}

/// A delivered frame or message as the few-lines API shows it.
pub(crate) fn incoming_of(f: pixgram_core::ReceivedFrame) -> Incoming {
    match f.kind {
        PayloadKind::Message => Incoming::Message(Message {
            peer: f.peer,
            stream: f.stream,
            id: f.frame,
            bytes: f.payload,
        }),
        PayloadKind::Frame => Incoming::Frame(Frame {
            peer: f.peer,
            stream: f.stream,
            id: f.frame,
            meta: f
                .metadata
                .as_deref()
                .and_then(FrameMeta::parse)
                .unwrap_or_default(),
            bytes: f.payload,
        }),
    }
}
