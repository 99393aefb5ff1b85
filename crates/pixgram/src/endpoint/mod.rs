//! The few-lines API: [`Sender`] and [`Receiver`], each built with defaults or a builder,
//! failing with one [`Error`]. They wrap [`crate::UdpSender`] and [`crate::UdpReceiver`]; use
//! those for the full protocol (events, back-pressure, counters).

mod error;
mod receiver;
mod sender;

pub use error::Error;
pub(crate) use receiver::incoming_of;
pub use receiver::{Frame, Incoming, Message, Receiver, ReceiverBuilder};
pub use sender::{Sender, SenderBuilder, Sent, DISCOVER_UP_TO};

use std::net::{SocketAddr, ToSocketAddrs};

/// The first address `addr` resolves to.
fn resolve(addr: impl ToSocketAddrs) -> Result<SocketAddr, Error> {
    addr.to_socket_addrs()
        .map_err(Error::Address)?
        .next()
        .ok_or_else(|| Error::Address(std::io::ErrorKind::NotFound.into()))
}
