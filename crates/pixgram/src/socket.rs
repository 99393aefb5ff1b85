//! UDP sockets sized for bursts of frames.

use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::DriverError;

/// Receive buffer a receiving end asks for by default: 32 MiB. A sender's default window of
/// 16 frames of a 4000x3000 JPEG (1.9 MB) holds 30 MB in flight, and on loopback it arrives
/// faster than a busy receiver reads it: into 8 MiB (what 4 MiB asked gives), 2-4% of its
/// datagrams were dropped, and every dropped frame tail cost a 20 ms retransmission timeout
/// (1,569 frames/s pipelined against 2,439 stop-and-wait). The kernel takes it past
/// `net.core.rmem_max` only for a privileged process (see [`FORCE_BUFFER_MAX`]); the memory
/// is the kernel's, used only while datagrams wait to be read.
pub const DEFAULT_RECV_BUFFER: usize = 32 << 20;
/// The least receive buffer that is enough at the default settings: a 1080p JPEG is about
/// 300 KB, and the kernel's default 208 KiB drops part of every such frame sent in one burst.
/// Granted less than [`DEFAULT_RECV_BUFFER`] but at least this, a receiver does not warn (an
/// unprivileged one gets `rmem_max`); a sender's socket, which reads only replies, asks for
/// this.
pub const MIN_RECV_BUFFER: usize = 4 << 20;
/// Send buffer pixgram asks for.
pub const DEFAULT_SEND_BUFFER: usize = 4 << 20;

/// What the kernel granted when pixgram asked for socket buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferGrant {
    /// Bytes asked for (receive).
    pub recv_asked: usize,
    /// Bytes granted (receive), as the kernel reports it (Linux doubles the figure it keeps for
    /// bookkeeping, so `granted >= asked` means the request was met).
    pub recv_granted: usize,
    /// Bytes asked for (send).
    pub send_asked: usize,
    /// Bytes granted (send).
    pub send_granted: usize,
}

impl BufferGrant {
    /// A one-line warning if the kernel granted less receive buffer than asked, with the command
    /// that raises the limit; `None` if the request was met. The default request
    /// ([`DEFAULT_RECV_BUFFER`]) is met by [`MIN_RECV_BUFFER`].
    pub fn warning(&self) -> Option<String> {
        let enough = if self.recv_asked == DEFAULT_RECV_BUFFER {
            MIN_RECV_BUFFER
        } else {
            self.recv_asked
        };
        (self.recv_granted < enough).then(|| {
            format!(
                "the kernel granted a {} KiB receive buffer instead of {} KiB, so bursts of \
                 large frames may be dropped; raise the limit with: sudo sysctl -w \
                 net.core.rmem_max={}",
                self.recv_granted / 1024,
                self.recv_asked / 1024,
                self.recv_asked
            )
        })
    }
}

/// Binds a UDP socket on `addr` and asks for `recv_buffer` and `send_buffer` bytes of buffer.
pub fn bind(
    addr: SocketAddr,
    recv_buffer: usize,
    send_buffer: usize,
) -> Result<(UdpSocket, BufferGrant), DriverError> {
    let bind_err = |source| DriverError::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(bind_err)?;
    // Failing to grow a buffer is not fatal: the grant below says what we got.
    let _ = socket.set_recv_buffer_size(recv_buffer);
    let _ = socket.set_send_buffer_size(send_buffer);
    force_buffers(&socket, recv_buffer, send_buffer);
    socket.bind(&addr.into()).map_err(bind_err)?;
    let grant = BufferGrant {
        recv_asked: recv_buffer,
        recv_granted: socket.recv_buffer_size().unwrap_or(0),
        send_asked: send_buffer,
        send_granted: socket.send_buffer_size().unwrap_or(0),
    };
    Ok((socket.into(), grant))
}

/// Most bytes of socket buffer pixgram takes past the system's limit (`net.core.rmem_max`,
/// `wmem_max`) when it may (root, or `CAP_NET_ADMIN`): 64 MiB, which holds 0.5 s at 1 Gbit/s
/// or 5 ms at 100 Gbit/s. A larger request is left to the system's limit, and the grant's
/// warning says how to raise it.
pub const FORCE_BUFFER_MAX: usize = 64 << 20;

/// Where the system's limit granted less than asked: the FORCE options (privileged) up to
/// [`FORCE_BUFFER_MAX`].
#[cfg(any(target_os = "linux", target_os = "android"))]
fn force_buffers(socket: &Socket, recv_buffer: usize, send_buffer: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    // Linux reports twice what it was asked for (bookkeeping included).
    let short = |got: std::io::Result<usize>, want: usize| got.map_or(true, |g| g < want);
    let recv = recv_buffer.min(FORCE_BUFFER_MAX);
    if short(socket.recv_buffer_size(), recv) {
        let _ = setsockopt(socket, sockopt::RcvBufForce, &recv);
    }
    let send = send_buffer.min(FORCE_BUFFER_MAX);
    if short(socket.send_buffer_size(), send) {
        let _ = setsockopt(socket, sockopt::SndBufForce, &send);
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn force_buffers(_: &Socket, _: usize, _: usize) {}

/// The unspecified address of `peer`'s family, port 0: where a sender binds to reach `peer`.
pub fn any_local_for(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(asked: usize, granted: usize) -> BufferGrant {
        BufferGrant {
            recv_asked: asked,
            recv_granted: granted,
            send_asked: DEFAULT_SEND_BUFFER,
            send_granted: DEFAULT_SEND_BUFFER,
        }
    }

    #[test]
    fn the_default_request_is_met_by_the_least_that_is_enough() {
        // An unprivileged receiver where rmem_max is 4 MiB gets 8 MiB (the kernel doubles).
        assert_eq!(grant(DEFAULT_RECV_BUFFER, 8 << 20).warning(), None);
        assert_eq!(grant(DEFAULT_RECV_BUFFER, MIN_RECV_BUFFER).warning(), None);
        // The kernel's own default, 208 KiB, is not enough.
        let w = grant(DEFAULT_RECV_BUFFER, 425_984).warning().unwrap();
        assert!(w.contains("net.core.rmem_max=33554432"), "{w}");
        // A size asked for on purpose is wanted in full.
        assert!(grant(16 << 20, 8 << 20).warning().is_some());
        assert_eq!(grant(16 << 20, 32 << 20).warning(), None);
    }
}
