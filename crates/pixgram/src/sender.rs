//! Blocking UDP driver for [`pixgram_core::Sender`].

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pixgram_core::seal::{OpenStats, Psk, SEALED_HEADER_LEN, SEAL_OVERHEAD, TAG_LEN};
use pixgram_core::{FrameId, OutgoingFrame, Sender, SenderConfig, SenderEvent, SenderStats};

use crate::batch::{BatchSocket, IoStats, RxPool, TxBatch};
use crate::clock::{random_session, Clock};
use crate::envelope::SenderEnvelope;
use crate::error::{DriverError, SilenceHint};
use crate::socket::{self, BufferGrant, DEFAULT_SEND_BUFFER, MIN_RECV_BUFFER};
use crate::wake::{Wake, Waker};

/// Sends frames and messages to one receiver over UDP, one thread, no background work: every
/// call pumps the socket until it can return.
///
/// Every datagram the core releases at one wake-up goes into a [`TxBatch`] and out in as few
/// system calls as the kernel allows (UDP GSO: up to 54 datagrams of 1,200 bytes per call);
/// replies are read with `recvmmsg` into a reusable [`RxPool`] (see [`crate::batch`]).
#[derive(Debug)]
pub struct UdpSender {
    socket: BatchSocket,
    peer: SocketAddr,
    core: Sender,
    clock: Clock,
    /// Datagrams released together, packed one after another (each at most the size on the
    /// wire).
    batch: TxBatch,
    /// With a key: the core writes here, the envelope seals into the batch.
    rx: RxPool,
    events: VecDeque<SenderEvent>,
    /// "Connection refused" errors the kernel reported (ICMP port unreachable).
    refused: u32,
    gone: bool,
    grant: BufferGrant,
    /// With a pre-shared key: seals what is sent, opens (or drops) what arrives.
    envelope: Option<SenderEnvelope>,
    /// Other threads' way to end a [`UdpSender::pump`] early ([`UdpSender::waker`]).
    wake: Wake,
}

impl UdpSender {
    /// A sender bound to an ephemeral local port, talking to `peer`.
    pub fn connect(peer: SocketAddr, config: SenderConfig) -> Result<Self, DriverError> {
        Self::connect_keyed(peer, config, None)
    }

    /// Like [`UdpSender::connect`]; with `key`, every datagram is sealed with it and every
    /// datagram that does not authenticate is dropped. `config.datagram_size` stays the size
    /// on the wire: the protocol's datagrams shrink by the sealing overhead.
    pub fn connect_keyed(
        peer: SocketAddr,
        mut config: SenderConfig,
        key: Option<&Psk>,
    ) -> Result<Self, DriverError> {
        let envelope = key.map(SenderEnvelope::new).transpose()?;
        if envelope.is_some() {
            let min = pixgram_core::wire::MIN_DATAGRAM_SIZE + SEAL_OVERHEAD;
            if config.datagram_size < min {
                return Err(DriverError::DatagramTooSmall {
                    size: config.datagram_size,
                    min,
                });
            }
            config.datagram_size -= SEAL_OVERHEAD;
            config.sealed = true;
            config.max_datagram_size = config
                .max_datagram_size
                .map(|m| m.saturating_sub(SEAL_OVERHEAD).max(config.datagram_size));
        }
        let (socket, grant) = socket::bind(
            socket::any_local_for(peer),
            MIN_RECV_BUFFER,
            DEFAULT_SEND_BUFFER,
        )?;
        socket.connect(peer)?;
        // Path MTU discovery makes datagrams of any size up to the maximum, probes included.
        let probing = config.max_datagram_size.is_some();
        let datagram_size = config
            .datagram_size
            .max(config.max_datagram_size.unwrap_or(0));
        let wire_size = datagram_size + if envelope.is_some() { SEAL_OVERHEAD } else { 0 };
        let socket = BatchSocket::new(socket)?;
        if probing {
            // A probe must be dropped where it does not fit, not fragmented into passing.
            socket.set_dont_fragment()?;
        }
        let batch = if probing {
            TxBatch::new(wire_size, crate::batch::MAX_GSO_SEGMENTS)
        } else {
            TxBatch::for_gso(wire_size, sends_per_batch(wire_size))
        };
        Ok(UdpSender {
            socket,
            peer,
            core: Sender::new(config, random_session()),
            clock: Clock::new(),
            batch,
            rx: RxPool::new(RX_BUFFERS),
            events: VecDeque::new(),
            refused: 0,
            gone: false,
            grant,
            envelope,
            wake: Wake::new()?,
        })
    }

    /// With a key: what was opened and what was refused.
    pub fn open_stats(&self) -> Option<OpenStats> {
        self.envelope.as_ref().map(SenderEnvelope::stats)
    }

    /// System calls and datagrams of the batched socket so far.
    pub fn io_stats(&self) -> IoStats {
        self.socket.stats()
    }

    /// The receiver's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The local address.
    pub fn local_addr(&self) -> Result<SocketAddr, DriverError> {
        Ok(self.socket.socket().local_addr()?)
    }

    /// What the kernel granted for socket buffers.
    pub fn buffer_grant(&self) -> BufferGrant {
        self.grant
    }

    /// The protocol state machine (read-only).
    pub fn core(&self) -> &Sender {
        &self.core
    }

    /// Counters so far.
    pub fn stats(&self) -> &SenderStats {
        self.core.stats()
    }

    /// Queues `frame` and starts sending it, first waiting (and processing acknowledgements)
    /// while its stream's window is full.
    pub fn send(&mut self, frame: OutgoingFrame) -> Result<FrameId, DriverError> {
        // Acknowledgements already waiting are taken first: a request/reply sender (a hub's
        // replies) calls this a round trip after its previous frame, whose ACK is then in the
        // socket unread; with that frame still counted in flight, the pacer held the new
        // frame until the next pump (up to a millisecond of the Python drop-in's ticker).
        self.receive_waiting()?;
        self.check_refused()?;
        while !self.core.can_send(frame.stream) {
            self.pump(None)?;
        }
        let id = self.core.send(self.clock.now(), frame)?;
        // A refusal now is reported by the next call: this frame is in flight and gets its
        // verdict like the others.
        self.transmit()?;
        Ok(id)
    }

    /// Waits until every frame has a verdict, for as long as the receiver keeps answering:
    /// `quiet` counts from the last ACK or NACK (or from the call, if later), not from the
    /// start. The core itself reports the receiver gone after `peer_timeout` of silence; if
    /// `quiet` runs out first, the frames still in flight are abandoned
    /// ([`pixgram_core::SendFailure::Abandoned`]): every frame gets a verdict either way.
    pub fn flush(&mut self, quiet: Duration) -> Result<(), DriverError> {
        self.flush_until(quiet, || false)
    }

    /// Like [`UdpSender::flush`], and abandons the frames in flight as soon as `stop` says so
    /// (checked every 100 ms at least), e.g. on Ctrl-C.
    pub fn flush_until(
        &mut self,
        quiet: Duration,
        stop: impl Fn() -> bool,
    ) -> Result<(), DriverError> {
        let start = self.clock.now();
        while self.core.in_flight() > 0 {
            let since = self.core.last_heard().map_or(start, |h| h.max(start));
            let give_up = self.clock.instant(since) + quiet;
            if stop() || Instant::now() >= give_up {
                self.abandon();
                break;
            }
            self.pump(Some(
                give_up.min(Instant::now() + Duration::from_millis(100)),
            ))?;
        }
        Ok(())
    }

    /// Gives every frame in flight a verdict now: reported lost with
    /// [`pixgram_core::SendFailure::Abandoned`] (for Ctrl-C, or a caller that stops waiting).
    pub fn abandon(&mut self) {
        self.core.abandon();
        self.collect_events();
    }

    /// Frames without a verdict yet.
    pub fn in_flight(&self) -> usize {
        self.core.in_flight()
    }

    /// Whether the receiver ever answered this session (any valid ACK or NACK).
    pub fn heard_from_peer(&self) -> bool {
        self.core.last_heard().is_some()
    }

    /// How long ago the receiver last answered, `None` if it never did.
    pub fn since_heard(&self) -> Option<Duration> {
        let heard = self.core.last_heard()?;
        Some(self.clock.now().saturating_since(heard))
    }

    /// Whether the kernel said, more than once and with the receiver never heard from, that
    /// nothing listens at the peer's address. One refusal alone may be a stale ICMP answer to
    /// an earlier program that used the same local port.
    pub fn is_refused(&self) -> bool {
        self.refused >= 2 && self.core.last_heard().is_none()
    }

    fn check_refused(&mut self) -> Result<(), DriverError> {
        if self.is_refused() {
            self.abandon();
            return Err(DriverError::Unreachable { addr: self.peer });
        }
        Ok(())
    }

    fn collect_events(&mut self) {
        while let Some(e) = self.core.poll_event() {
            if e == SenderEvent::PeerGone {
                self.gone = true;
            }
            self.events.push_back(e);
        }
    }

    /// Tells the receiver this session is over.
    pub fn close(mut self) -> Result<SenderStats, DriverError> {
        self.core.close();
        self.transmit()?;
        Ok(self.core.stats().clone())
    }

    /// The next verdict or notice, if one is waiting. Does not block.
    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        if self.events.is_empty() {
            // Acknowledgements taken while sending (between batches) have verdicts waiting
            // in the core: hand them out now, not at the next pump.
            self.collect_events();
        }
        self.events.pop_front()
    }

    /// A [`Waker`] for another thread: it ends the [`UdpSender::pump`] under way (or the next
    /// one) at once, so that a loop which pumps while it waits for frames from a source
    /// takes a new frame when it comes, not when the pump's deadline passes.
    pub fn waker(&self) -> Result<Waker, DriverError> {
        Ok(self.wake.waker()?)
    }

    /// Processes input for at most until `deadline` (or the core's next timer, or a
    /// [`Waker`]): sends what is ready, waits for one datagram, runs timers. Returns an error
    /// if the receiver is gone.
    pub fn pump(&mut self, deadline: Option<Instant>) -> Result<(), DriverError> {
        self.transmit()?;
        let wake = match (
            self.core.poll_timeout().map(|t| self.clock.instant(t)),
            deadline,
        ) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a
                .or(b)
                .unwrap_or_else(|| Instant::now() + Duration::from_millis(100)),
        };
        // Replies already waiting are taken without a wait; otherwise sleep until one comes
        // or the next timer (to the microsecond: the pacer's pauses are shorter than 1 ms).
        if !self.receive_waiting()? && !self.wake.take() {
            let wait = wake
                .saturating_duration_since(Instant::now())
                .max(Duration::from_micros(MIN_WAIT_US));
            let ready = self
                .socket
                .wait_or_woken(false, Some(self.wake.fd()), Some(wait))?;
            if ready.readable {
                self.receive_waiting()?;
            }
            if ready.woken {
                self.wake.take();
            }
        }
        self.core.handle_timeout(self.clock.now());
        self.transmit()?;
        self.collect_events();
        self.check_refused()?;
        if std::mem::take(&mut self.gone) {
            let heard = self.core.last_heard().is_some();
            let challenges = self.core.stats().challenges_received;
            if !heard && challenges > 0 {
                return Err(DriverError::Refused {
                    addr: self.peer,
                    challenges,
                    secs: self.core.config().peer_timeout.as_secs_f64(),
                });
            }
            return Err(DriverError::PeerGone {
                addr: self.peer,
                secs: self.core.config().peer_timeout.as_secs_f64(),
                hint: if self.refused > 0 {
                    SilenceHint::PortClosed
                } else if self.envelope.is_some() {
                    SilenceHint::OtherKey
                } else if !heard {
                    SilenceHint::MayNeedKey
                } else {
                    SilenceHint::None
                },
            });
        }
        Ok(())
    }

    /// Sends everything the core releases now: fills the batch with `poll_transmit` until it
    /// says `None` (or the batch is full), hands the batch to the kernel, takes the replies
    /// that came meanwhile, and goes on while the core has more.
    fn transmit(&mut self) -> Result<(), DriverError> {
        loop {
            self.batch.clear();
            let now = self.clock.now();
            while self.batch.has_room() {
                // A datagram larger than the size frames are cut for is a path MTU probe.
                let size = self.core.datagram_size();
                let len = match &mut self.envelope {
                    None => self
                        .core
                        .poll_transmit(now, self.batch.slot())
                        .map(|t| Some((t.len, t.len > size))),
                    Some(e) => {
                        // The core writes the inner datagram where the sealed one carries
                        // it, and it is sealed in place: no copy.
                        let slot = self.batch.slot();
                        let end = slot.len() - TAG_LEN;
                        self.core
                            .poll_transmit(now, &mut slot[SEALED_HEADER_LEN..end])
                            .map(|t| e.seal_in_place(slot, t.len).map(|n| (n, t.len > size)))
                    }
                };
                match len {
                    Some(Some((len, true))) => self.batch.commit_alone(len),
                    Some(Some((len, false))) => self.batch.commit(len),
                    // Nothing to seal it with (the core sends nothing before the first
                    // exchange): dropped.
                    Some(None) => {}
                    None => break,
                }
            }
            if self.batch.is_empty() {
                return Ok(());
            }
            let more = !self.batch.has_room();
            let UdpSender {
                socket,
                peer,
                core,
                clock,
                batch,
                rx,
                envelope,
                refused,
                ..
            } = self;
            let sent = socket.send_batch(*peer, batch, SEND_STALL, |s| {
                read_replies(s, rx, core, clock, envelope, refused).map(|_| ())
            });
            match sent {
                Ok(n) => self.refused += n,
                Err(e) => return Err(e.into()),
            }
            // Take acknowledgements as they come, not after the whole burst: their timing is
            // the RTT, and NACKs should be served early.
            self.receive_waiting()?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Handles every reply already waiting on the socket, without blocking; whether there
    /// was any.
    fn receive_waiting(&mut self) -> Result<bool, DriverError> {
        Ok(read_replies(
            &mut self.socket,
            &mut self.rx,
            &mut self.core,
            &self.clock,
            &mut self.envelope,
            &mut self.refused,
        )?)
    }
}

/// Receive buffers of a sender: replies are small, but GRO may coalesce a run of them.
const RX_BUFFERS: usize = 4;

/// Shortest wait of [`UdpSender::pump`], so that a timer that does not move cannot spin.
const MIN_WAIT_US: u64 = 50;

/// How long a send waits for room in a full socket buffer before failing.
const SEND_STALL: Duration = Duration::from_secs(5);

/// Sends per batch: about 32 datagrams or one GSO send, whichever is more, between two looks
/// for replies (as the unbatched driver did every 32 datagrams).
fn sends_per_batch(wire_size: usize) -> usize {
    let per_send = (crate::batch::MAX_SEND_BYTES / wire_size.max(1)).max(1);
    32usize.div_ceil(per_send)
}

/// Reads every reply waiting on `socket` and hands each to `core`, opened first with a key;
/// counts refusals. Whether anything was read.
fn read_replies(
    socket: &mut BatchSocket,
    rx: &mut RxPool,
    core: &mut Sender,
    clock: &Clock,
    envelope: &mut Option<SenderEnvelope>,
    refused: &mut u32,
) -> std::io::Result<bool> {
    let mut any = false;
    loop {
        match socket.recv(rx) {
            Ok(0) => return Ok(any),
            Ok(_) => {
                any = true;
                let now = clock.now();
                rx.datagrams(|_, d| match envelope {
                    None => core.handle(now, d),
                    Some(e) => {
                        if let Some(inner) = e.open(d) {
                            core.handle(now, inner);
                        }
                    }
                });
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => *refused += 1,
            Err(e) if is_timeout(&e) => return Ok(any),
            Err(e) => return Err(e),
        }
    }
}

/// Whether a socket error is a read timeout (Linux says WouldBlock, others TimedOut).
pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}
