//! [`Transmit`]: what every state machine of the project hands its driver to send.
//!
//! A [`Sender`](crate::Sender), a [`Receiver`](crate::Receiver), a
//! [`SeedReceiver`](crate::compat_seed::SeedReceiver) and `pixgram-netem`'s impairing relay
//! all answer `poll_transmit` the same way: the datagram is written at the start of a buffer
//! the driver lends, and a `Transmit` says where it goes and how many bytes it is. A driver
//! then has one send path for all of them, and no state machine allocates per datagram.

use std::net::SocketAddr;

/// One datagram, written at the start of the buffer passed to `poll_transmit`.
///
/// `To` is how the state machine names a destination: a socket address for the receivers,
/// [`SessionPeer`] for a sender (which only ever talks to the receiver of its session), a
/// route for a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<To = SocketAddr> {
    /// Where the datagram goes.
    pub destination: To,
    /// Bytes written at the start of the buffer.
    pub len: usize,
}

impl<To> Transmit<To> {
    /// The datagram's bytes, out of the buffer that was passed to `poll_transmit`.
    pub fn bytes<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[..self.len]
    }
}

/// The destination of everything a [`Sender`](crate::Sender) sends: the one receiver of its
/// session, wherever the driver reaches it (a connected socket, a simulated link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SessionPeer;

impl Transmit<SessionPeer> {
    /// A datagram of `len` bytes for the session's receiver.
    pub fn to_peer(len: usize) -> Self {
        Transmit {
            destination: SessionPeer,
            len,
        }
    }
}
