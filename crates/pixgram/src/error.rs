//! Errors of the drivers.

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong while driving the protocol over a socket.
#[derive(Debug, Error)]
pub enum DriverError {
    /// The local address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A socket call failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The receiver stopped answering (or never did).
    #[error("no answer from {addr} for {secs:.1} s: is the receiver running there?{}", hint.text())]
    PeerGone {
        /// The receiver's address.
        addr: SocketAddr,
        /// How long it was silent.
        secs: f64,
        /// What else is known about the silence.
        hint: SilenceHint,
    },
    /// The receiver answered the first exchange (CHALLENGEs) but took no frame of this
    /// session: it serves as many senders as it is configured to, all of them active.
    #[error(
        "the receiver at {addr} answered the first exchange ({challenges} CHALLENGEs) but took \
         no frame of this session for {secs:.1} s: it is serving as many senders as it is \
         configured to, all of them active"
    )]
    Refused {
        /// The receiver's address.
        addr: SocketAddr,
        /// CHALLENGEs received.
        challenges: u64,
        /// How long it took nothing.
        secs: f64,
    },
    /// The kernel reported, repeatedly and with no answer ever heard, that nothing listens at
    /// the receiver's address (ICMP port unreachable on the connected socket).
    #[error("nothing is listening at {addr} (the kernel refused the datagrams): is the receiver running there?")]
    Unreachable {
        /// The receiver's address.
        addr: SocketAddr,
    },
    /// The core refused the frame.
    #[error(transparent)]
    Send(#[from] pixgram_core::SendError),
    /// A key file is unusable.
    #[error("key file {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The system's random number generator failed.
    #[error("the system's random number generator failed")]
    Random,
    /// The datagram size leaves no room for sealing.
    #[error("a datagram size of {size} bytes is too small with a key: at least {min} bytes")]
    DatagramTooSmall {
        /// Asked for.
        size: usize,
        /// The least that works.
        min: usize,
    },
    /// A folder to save into is missing and cannot be created, or cannot be written.
    #[error("cannot save into {}: {reason}", dir.display())]
    NotWritable {
        /// The folder.
        dir: PathBuf,
        /// What the system said, in a few words ("permission denied", "not a folder").
        reason: String,
        /// The system's error kind.
        kind: std::io::ErrorKind,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
}

/// What is known about a receiver's silence, besides its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceHint {
    /// Nothing more.
    None,
    /// The kernel reported that nothing listens on that port.
    PortClosed,
    /// This sender has a key: the receiver may have another.
    OtherKey,
    /// It never answered, and this sender has no key: the receiver may require one.
    MayNeedKey,
}

impl SilenceHint {
    /// The hint as the end of a sentence (empty for [`SilenceHint::None`]).
    pub fn text(self) -> &'static str {
        match self {
            SilenceHint::None => "",
            SilenceHint::PortClosed => " (the kernel reported that nothing listens on that port)",
            SilenceHint::OtherKey => {
                " Or it has another key: a receiver drops datagrams that fail authentication \
                 without answering."
            }
            SilenceHint::MayNeedKey => {
                " The receiver may require a key: a receiver with a key drops datagrams \
                 without one, without answering."
            }
        }
    }
}
