//! Batched UDP I/O for the drivers: many datagrams per system call.
//!
//! At the default 1,200-byte datagrams one `sendto` and one `recvfrom` per datagram cap a
//! stream near 300 MB/s on this project's machines, while the kernel moves 10 GB/s of
//! 1,200-byte UDP segments when it is handed them in batches (docs/BENCHMARKS.md). So:
//!
//! - **Send**: the driver writes every datagram the core releases at one wake-up into a
//!   [`TxBatch`] (equal-size slots, one contiguous buffer), and [`BatchSocket::send_batch`]
//!   hands each run of full-size datagrams to the kernel as one UDP GSO send (`UDP_SEGMENT`:
//!   at most [`MAX_GSO_SEGMENTS`] segments and 64 KB), one `sendmsg` per datagram where the
//!   kernel or the device has no GSO.
//! - **Receive**: [`RxPool`] is a fixed set of 64 KiB buffers read with `recvmmsg`, each of
//!   which may hold a run of datagrams coalesced by UDP GRO; [`RxPool::datagrams`] walks them
//!   one by one. Nothing is allocated per datagram or per call.
//!
//! The system calls are `quinn-udp`'s (it holds the `unsafe`, this crate forbids it), the
//! waiting is `ppoll` (through `nix`), so timers keep their sub-millisecond precision.

use std::io::{self, ErrorKind, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags};
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};

/// Most segments in one GSO send: Linux's `UDP_MAX_SEGMENTS` on older kernels (newer ones
/// take 128; 64 keeps one send within 64 KB at 1,200 bytes anyway).
pub const MAX_GSO_SEGMENTS: usize = 64;

/// Most bytes in one UDP send, GSO or not: the largest UDP payload over IPv4.
pub const MAX_SEND_BYTES: usize = 65_507;

/// Bytes of one receive buffer: the largest datagram, or the largest run GRO coalesces
/// (64 KB).
pub const RX_SLOT: usize = 65_536;

/// What one [`BatchSocket::wait`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready {
    /// Something to read.
    pub readable: bool,
    /// Room to write.
    pub writable: bool,
    /// The waker of [`BatchSocket::wait_or_woken`] was written to.
    pub woken: bool,
}

/// Counters of the batched paths, for benchmarks and `--verbose` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStats {
    /// `sendmsg` calls that carried at least one datagram.
    pub send_calls: u64,
    /// Datagrams those calls carried.
    pub datagrams_sent: u64,
    /// `recvmmsg` calls that returned at least one datagram.
    pub recv_calls: u64,
    /// Datagrams those calls returned (GRO runs counted segment by segment).
    pub datagrams_received: u64,
    /// Sends that found the socket's send buffer full and waited.
    pub send_waits: u64,
}

/// A non-blocking UDP socket with GSO/GRO where the kernel has them.
#[derive(Debug)]
pub struct BatchSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    stats: IoStats,
}

/// What one send of a run ended with.
enum Sent {
    /// The kernel took it (or refused it with an error that loses only these datagrams).
    Done,
    /// ICMP said nothing listens at the destination.
    Refused,
}

impl BatchSocket {
    /// Takes over `socket` (bound, possibly connected): makes it non-blocking and turns on
    /// UDP GRO where the kernel has it.
    ///
    /// `quinn-udp`'s state (what the kernel supports: GSO, and its fallbacks once a device
    /// refuses them) is probed on a scratch socket of the same family, not on `socket`:
    /// `UdpSocketState::new` also sets don't-fragment (`IP_PMTUDISC_PROBE`) and asks for
    /// TOS, packet-info and timestamp control messages, and pixgram's socket keeps the
    /// kernel's defaults (a datagram forced above the path MTU is fragmented, as before;
    /// path MTU discovery belongs to the protocol).
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        let family = socket2::Domain::for_address(socket.local_addr()?);
        let scratch = socket2::Socket::new(family, socket2::Type::DGRAM, None)?;
        let state = UdpSocketState::new(UdpSockRef::from(&scratch))?;
        drop(scratch);
        socket.set_nonblocking(true)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if state.gro_segments() > 1 {
            // Best effort: without it every datagram arrives on its own, still batched by
            // recvmmsg.
            let _ = nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::UdpGroSegment,
                &true,
            );
        }
        Ok(BatchSocket {
            socket,
            state,
            stats: IoStats::default(),
        })
    }

    /// Sets don't-fragment (`IP_PMTUDISC_PROBE` on Linux) on the socket, as path MTU
    /// discovery needs: a datagram larger than the path carries is dropped (or refused with
    /// `EMSGSIZE` locally), never fragmented into passing.
    pub fn set_dont_fragment(&self) -> io::Result<()> {
        UdpSocketState::new(UdpSockRef::from(&self.socket)).map(|_| ())
    }

    /// The socket (non-blocking).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Counters so far.
    pub fn stats(&self) -> IoStats {
        self.stats
    }

    /// Segments one send may carry now: 1 without GSO (or after the device refused it).
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments().clamp(1, MAX_GSO_SEGMENTS)
    }

    /// Whether the kernel coalesces received runs (UDP GRO).
    pub fn has_gro(&self) -> bool {
        self.state.gro_segments() > 1
    }

    /// Waits until the socket is readable (and, with `want_write`, writable) or `timeout`
    /// passes (`None`: no limit). Precise to the microsecond (`ppoll`).
    pub fn wait(&self, want_write: bool, timeout: Option<Duration>) -> io::Result<Ready> {
        self.wait_or_woken(want_write, None, timeout)
    }

    /// Like [`BatchSocket::wait`], and also returns as soon as `waker` (a descriptor another
    /// thread writes to, e.g. a saver reporting a file durable) is readable:
    /// [`Ready::woken`]. The caller drains it.
    pub fn wait_or_woken(
        &self,
        want_write: bool,
        waker: Option<BorrowedFd<'_>>,
        timeout: Option<Duration>,
    ) -> io::Result<Ready> {
        let mut events = PollFlags::POLLIN;
        if want_write {
            events |= PollFlags::POLLOUT;
        }
        // No allocation: without a waker the second entry is not passed to poll.
        let mut fds = [
            PollFd::new(self.socket.as_fd(), events),
            PollFd::new(waker.unwrap_or(self.socket.as_fd()), PollFlags::POLLIN),
        ];
        let watched = if waker.is_some() { 2 } else { 1 };
        match poll(&mut fds[..watched], timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(Ready::default()),
            Err(e) => return Err(e.into()),
        }
        let got = fds[0].revents().unwrap_or(PollFlags::empty());
        // An error or hang-up is "readable": the next read reports it.
        let readable = got.intersects(PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP);
        let woken = waker.is_some() && fds[1].revents().is_some_and(|r| !r.is_empty());
        Ok(Ready {
            readable,
            writable: got.contains(PollFlags::POLLOUT),
            woken,
        })
    }

    /// Sends every datagram of `batch` to `to`, in order: each run of full-size datagrams as
    /// one GSO send. Waits (up to `stall` in all) while the send buffer is full, then gives up
    /// with `WouldBlock`; while waiting, `on_readable` is called whenever replies are waiting,
    /// so acknowledgements are not left queued behind a full buffer. Returns how many sends
    /// were refused (ICMP port unreachable): those datagrams are lost, like any other.
    pub fn send_batch(
        &mut self,
        to: SocketAddr,
        batch: &TxBatch,
        stall: Duration,
        mut on_readable: impl FnMut(&mut Self) -> io::Result<()>,
    ) -> io::Result<u32> {
        let mut refused = 0;
        let mut at = 0;
        let mut waited = Duration::ZERO;
        while at < batch.len() {
            let take = batch.run_from(at, self.max_segments());
            let (contents, segment) = batch.run(at, take);
            match self.send_run(to, contents, segment, take) {
                Ok(Sent::Done) => at += take,
                Ok(Sent::Refused) => {
                    refused += 1;
                    at += take;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if waited >= stall {
                        return Err(e);
                    }
                    self.stats.send_waits += 1;
                    let step = Duration::from_millis(10).min(stall - waited);
                    let started = std::time::Instant::now();
                    let ready = self.wait(true, Some(step))?;
                    waited += started.elapsed();
                    if ready.readable {
                        on_readable(self)?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(refused)
    }

    /// One send of `count` datagrams in `contents` (`segment` bytes each, the last possibly
    /// shorter).
    fn send_run(
        &mut self,
        to: SocketAddr,
        contents: &[u8],
        segment: usize,
        count: usize,
    ) -> io::Result<Sent> {
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: (count > 1).then_some(segment),
            src_ip: None,
        };
        match self
            .state
            .try_send(UdpSockRef::from(&self.socket), &transmit)
        {
            Ok(()) => {
                self.stats.send_calls += 1;
                self.stats.datagrams_sent += count as u64;
                Ok(Sent::Done)
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(Sent::Refused),
            // The kernel's queue towards the device is full: these datagrams are lost, as on
            // the wire, and the protocol recovers them.
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(Sent::Done),
            // Larger than the path takes with don't-fragment set (a path MTU probe): lost, as
            // on the wire.
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Ok(Sent::Done),
            Err(e)
                if count > 1
                    && self.state.max_gso_segments() <= 1
                    && matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::EINVAL)) =>
            {
                // The device refused segmentation offload (quinn-udp now sends one datagram
                // per call): send this run one by one.
                for chunk in contents.chunks(segment) {
                    if let Sent::Refused = self.send_run(to, chunk, segment, 1)? {
                        return Ok(Sent::Refused);
                    }
                }
                Ok(Sent::Done)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends one datagram to `to`; a full send buffer or a refusal drops it (`Ok(false)`).
    pub fn send_one(&mut self, to: SocketAddr, datagram: &[u8]) -> io::Result<bool> {
        match self.send_run(to, datagram, datagram.len(), 1) {
            Ok(Sent::Done) => Ok(true),
            Ok(Sent::Refused) => Ok(false),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads what is waiting into `pool`, without blocking: `Ok(0)` if nothing is.
    pub fn recv(&mut self, pool: &mut RxPool) -> io::Result<usize> {
        pool.filled = 0;
        let mut chunks = pool.buf.chunks_mut(RX_SLOT);
        let mut slices: [IoSliceMut<'_>; RX_SLOTS] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        let n = match self.state.recv(
            UdpSockRef::from(&self.socket),
            &mut slices[..pool.slots],
            &mut pool.meta[..pool.slots],
        ) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        pool.filled = n;
        if n > 0 {
            self.stats.recv_calls += 1;
            self.stats.datagrams_received += pool.datagram_count() as u64;
        }
        Ok(n)
    }
}

/// `ppoll`: the timeout to the nanosecond.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn poll(fds: &mut [PollFd], timeout: Option<Duration>) -> nix::Result<nix::libc::c_int> {
    nix::poll::ppoll(fds, timeout.map(nix::sys::time::TimeSpec::from), None)
}

/// `poll` where there is no `ppoll`: the timeout rounded up to whole milliseconds.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn poll(fds: &mut [PollFd], timeout: Option<Duration>) -> nix::Result<nix::libc::c_int> {
    let ms = timeout.map(|t| {
        let ms = t.as_micros().div_ceil(1000).min(i32::MAX as u128);
        nix::poll::PollTimeout::try_from(ms as i32).unwrap_or(nix::poll::PollTimeout::MAX)
    });
    nix::poll::poll(fds, ms.unwrap_or(nix::poll::PollTimeout::NONE))
}

/// Receive buffers in one pool.
pub const RX_SLOTS: usize = 8;

/// Reusable receive buffers: up to [`RX_SLOTS`] buffers of [`RX_SLOT`] bytes, filled by one
/// [`BatchSocket::recv`].
#[derive(Debug)]
pub struct RxPool {
    buf: Box<[u8]>,
    meta: [RecvMeta; RX_SLOTS],
    slots: usize,
    filled: usize,
}

impl RxPool {
    /// A pool of `slots` buffers (1 to [`RX_SLOTS`]).
    pub fn new(slots: usize) -> Self {
        let slots = slots.clamp(1, RX_SLOTS);
        RxPool {
            buf: vec![0; slots * RX_SLOT].into_boxed_slice(),
            meta: [RecvMeta::default(); RX_SLOTS],
            slots,
            filled: 0,
        }
    }

    /// Datagrams the last read returned (GRO runs counted one by one).
    pub fn datagram_count(&self) -> usize {
        self.meta[..self.filled]
            .iter()
            .map(|m| m.len.div_ceil(m.stride.max(1)).max(1))
            .sum()
    }

    /// The `i`-th buffer filled by the last read: its sender, its bytes, and the size of one
    /// datagram in it (the bytes hold `len / stride` rounded up, the last possibly shorter).
    fn slot(&mut self, i: usize) -> (SocketAddr, &mut [u8], usize) {
        let m = self.meta[i];
        let bytes = &mut self.buf[i * RX_SLOT..i * RX_SLOT + m.len.min(RX_SLOT)];
        (m.addr, bytes, m.stride.max(1))
    }

    /// Calls `f` with every datagram the last read returned, in order, each with its sender.
    /// The datagram is mutable so that it can be opened in place.
    pub fn datagrams(&mut self, mut f: impl FnMut(SocketAddr, &mut [u8])) {
        for i in 0..self.filled {
            let (from, bytes, stride) = self.slot(i);
            if bytes.is_empty() {
                // A zero-length datagram is one too (and counted as truncated by the core).
                f(from, bytes);
                continue;
            }
            for d in bytes.chunks_mut(stride) {
                f(from, d);
            }
        }
        self.filled = 0;
    }
}

/// Datagrams waiting to be sent together, packed one after the other in one buffer, so that
/// a run of equal-size ones (the last may be shorter) is the contiguous buffer a GSO send
/// takes.
#[derive(Debug)]
pub struct TxBatch {
    buf: Vec<u8>,
    /// Start and length of each datagram, and whether it goes in a send of its own.
    spans: Vec<(usize, usize, bool)>,
    /// Where the next datagram goes.
    end: usize,
    stride: usize,
}

impl TxBatch {
    /// A batch of up to `capacity` datagrams of at most `stride` bytes.
    pub fn new(stride: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        TxBatch {
            buf: vec![0; stride * capacity],
            spans: Vec::with_capacity(capacity),
            end: 0,
            stride,
        }
    }

    /// A batch sized for GSO: as many `stride`-byte datagrams as one send carries (at least
    /// one), times `sends`.
    pub fn for_gso(stride: usize, sends: usize) -> Self {
        let per_send = (MAX_SEND_BYTES / stride.max(1)).clamp(1, MAX_GSO_SEGMENTS);
        TxBatch::new(stride, per_send * sends.max(1))
    }

    /// Datagrams in the batch.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the batch holds none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Whether another datagram of up to [`TxBatch::stride`] bytes fits.
    pub fn has_room(&self) -> bool {
        self.end + self.stride <= self.buf.len() && self.spans.len() < self.spans.capacity()
    }

    /// Bytes of the largest datagram.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Room for the next datagram ([`TxBatch::stride`] bytes), to write it into; then
    /// [`TxBatch::commit`] its length. Panics if the batch is full.
    pub fn slot(&mut self) -> &mut [u8] {
        &mut self.buf[self.end..self.end + self.stride]
    }

    /// Counts the datagram of `len` bytes just written at the start of [`TxBatch::slot`].
    pub fn commit(&mut self, len: usize) {
        self.push(len, false);
    }

    /// [`TxBatch::commit`] for a datagram that must go in a send of its own: a path MTU
    /// probe. In a GSO run a shorter datagram after it would share its fate, and a probe too
    /// large for the path is dropped whole (on a veth of MTU 1500 one 1,200-byte chunk was
    /// lost with each 8,972-byte probe, and a live frame without parity with it).
    pub fn commit_alone(&mut self, len: usize) {
        self.push(len, true);
    }

    fn push(&mut self, len: usize, alone: bool) {
        assert!(len <= self.stride && self.has_room());
        self.spans.push((self.end, len, alone));
        self.end += len;
    }

    /// Empties the batch (the buffer is kept).
    pub fn clear(&mut self) {
        self.spans.clear();
        self.end = 0;
    }

    /// How many datagrams from `at` one GSO send can carry (at most `max_segments`, at most
    /// [`MAX_SEND_BYTES`]): those of the first one's size, and one shorter to end the run;
    /// one committed alone is a run of one.
    pub fn run_from(&self, at: usize, max_segments: usize) -> usize {
        let Some(&(_, segment, alone)) = self.spans.get(at) else {
            return 0;
        };
        if alone {
            return 1;
        }
        let max = max_segments.min(MAX_SEND_BYTES / segment.max(1)).max(1);
        let mut n = 1;
        while n < max {
            match self.spans.get(at + n) {
                Some(&(_, len, false)) if len == segment => n += 1,
                Some(&(_, len, false)) if len < segment => return n + 1,
                _ => break,
            }
        }
        n
    }

    /// The bytes of the `count` datagrams from `at` and the segment size (the first one's).
    pub fn run(&self, at: usize, count: usize) -> (&[u8], usize) {
        let (start, segment, _) = self.spans[at];
        let (last, len, _) = self.spans[at + count - 1];
        (&self.buf[start..last + len], segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(stride: usize, lens: &[usize]) -> TxBatch {
        let mut b = TxBatch::new(stride, lens.len());
        for (i, &len) in lens.iter().enumerate() {
            b.slot()[..len].fill(i as u8);
            b.commit(len);
        }
        b
    }

    #[test]
    fn runs_end_after_a_short_datagram() {
        let b = batch(100, &[96, 96, 40, 96, 20, 20, 30]);
        assert_eq!(b.run_from(0, 64), 3);
        let (bytes, seg) = b.run(0, 3);
        assert_eq!((bytes.len(), seg), (232, 96));
        assert!(bytes[192..].iter().all(|&x| x == 2));
        assert_eq!(b.run_from(3, 64), 2);
        assert_eq!(b.run_from(5, 64), 1, "a longer datagram starts a new run");
        assert_eq!(b.run(5, 1), (&[5u8; 20][..], 20));
        assert_eq!(b.run_from(6, 64), 1);
        assert_eq!(b.run_from(7, 64), 0);
    }

    #[test]
    fn a_datagram_committed_alone_is_a_run_of_its_own() {
        let mut b = TxBatch::new(9_000, 5);
        b.commit_alone(8_972);
        for _ in 0..3 {
            b.commit(1_200);
        }
        b.commit_alone(1_472);
        assert_eq!(b.run_from(0, 64), 1, "the probe goes alone");
        assert_eq!(b.run_from(1, 64), 3, "and the chunks after it together");
        assert_eq!(b.run_from(4, 64), 1);
        // Without it the probe would lead the run, the shorter chunk riding as its last.
        let mut mixed = TxBatch::new(9_000, 2);
        mixed.commit(8_972);
        mixed.commit(1_200);
        assert_eq!(mixed.run_from(0, 64), 2);
    }

    #[test]
    fn runs_respect_segment_and_byte_limits() {
        let b = batch(1200, &[1200; 100]);
        assert_eq!(b.run_from(0, 64), 54, "64 KB: 54 segments of 1,200 bytes");
        assert_eq!(batch(1200, &[1196; 64]).run_from(0, 64), 54);
        assert_eq!(b.run_from(0, 10), 10);
        assert_eq!(b.run_from(0, 1), 1);
        assert_eq!(b.run_from(90, 64), 10);
        let big = batch(65_507, &[65_507, 65_507]);
        assert_eq!(big.run_from(0, 64), 1);
    }

    #[test]
    fn gso_batches_hold_whole_sends() {
        let b = TxBatch::for_gso(1200, 4);
        assert_eq!(b.buf.len(), 1200 * 54 * 4);
        assert_eq!(TxBatch::for_gso(65_507, 4).buf.len(), 65_507 * 4);
    }

    /// Loopback only: a batch out, every datagram back in order and intact, GSO or not.
    #[test]
    fn loopback_batches_arrive_whole() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut rx = BatchSocket::new(rx).unwrap();
        let mut tx = BatchSocket::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let mut lens = vec![1200; 120];
        lens[70] = 500;
        lens.push(33);
        let b = batch(1200, &lens);
        tx.send_batch(to, &b, Duration::from_secs(1), |_| Ok(()))
            .unwrap();
        let mut pool = RxPool::new(RX_SLOTS);
        let mut got = Vec::new();
        let start = std::time::Instant::now();
        while got.len() < lens.len() && start.elapsed() < Duration::from_secs(5) {
            rx.wait(false, Some(Duration::from_millis(100))).unwrap();
            rx.recv(&mut pool).unwrap();
            pool.datagrams(|_, d| got.push((d.len(), d[0], d[d.len() - 1])));
        }
        let want: Vec<_> = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, i as u8, i as u8))
            .collect();
        assert_eq!(got, want);
        tx.send_one(to, &[]).unwrap();
        let mut empty = 0;
        while empty == 0 && start.elapsed() < Duration::from_secs(5) {
            rx.wait(false, Some(Duration::from_millis(100))).unwrap();
            rx.recv(&mut pool).unwrap();
            pool.datagrams(|_, d| {
                assert!(d.is_empty());
                empty += 1;
            });
        }
        assert_eq!(empty, 1, "a zero-length datagram arrives as one");
        let s = tx.stats();
        assert_eq!(s.datagrams_sent, lens.len() as u64 + 1);
        if tx.max_segments() > 1 {
            assert!(s.send_calls <= 7, "{s:?}");
        }
    }
}
