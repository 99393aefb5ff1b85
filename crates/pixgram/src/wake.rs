//! Ending a driver's wait from another thread: a saver reporting a file durable wakes a
//! [`crate::UdpReceiver`]; a live source with a new frame wakes a [`crate::UdpSender`].
//!
//! A flag checked every turn, and for a driver asleep in `poll`, a socket pair whose read
//! end it watches beside its UDP socket. One wake costs at most one datagram on the pair,
//! however often it is called before the driver looks.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The driver's end: what its wait watches.
#[derive(Debug)]
pub(crate) struct Wake {
    flag: Arc<AtomicBool>,
    read: UnixDatagram,
    write: UnixDatagram,
}

impl Wake {
    pub(crate) fn new() -> std::io::Result<Self> {
        let (read, write) = UnixDatagram::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(Wake {
            flag: Arc::new(AtomicBool::new(false)),
            read,
            write,
        })
    }

    /// A [`Waker`] for another thread.
    pub(crate) fn waker(&self) -> std::io::Result<Waker> {
        Ok(Waker {
            flag: self.flag.clone(),
            write: self.write.try_clone()?,
        })
    }

    /// The descriptor a wait watches: readable once a [`Waker`] woke it.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Whether a waker woke it since the last call; empties the socket.
    pub(crate) fn take(&self) -> bool {
        if !self.flag.swap(false, Ordering::AcqRel) {
            return false;
        }
        let mut byte = [0u8; 8];
        // Bounded: the socket holds at most one datagram per wake, and wakes are sent only
        // when the flag was clear.
        for _ in 0..64 {
            if self.read.recv(&mut byte).is_err() {
                break;
            }
        }
        true
    }
}

/// Ends a driver's wait from another thread: [`crate::UdpReceiver::next_event`] returns
/// `None` at once (so the receive loop's handler takes what a saver reported without waiting
/// for the next datagram), and [`crate::UdpSender::pump`] returns at once (so a send loop
/// takes a live source's new frame without waiting out its pump).
#[derive(Debug)]
pub struct Waker {
    flag: Arc<AtomicBool>,
    write: UnixDatagram,
}

impl Waker {
    /// Wakes the driver (once, however often it is called before the driver looks).
    pub fn wake(&self) {
        if !self.flag.swap(true, Ordering::AcqRel) {
            // Full (cannot be: one datagram per wake) or closed (the driver is gone): the
            // flag is still seen at the driver's next turn.
            let _ = self.write.send(&[1]);
        }
    }
}
