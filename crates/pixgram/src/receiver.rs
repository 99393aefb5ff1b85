//! Blocking UDP driver for [`pixgram_core::Receiver`].

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pixgram_core::seal::{OpenStats, Psk};
use pixgram_core::{
    DeliveryKey, Receiver, ReceiverConfig, ReceiverEvent, ReceiverStats, MAX_REPLY_LEN,
};

use crate::batch::{BatchSocket, IoStats, RxPool, RX_SLOTS};
use crate::clock::Clock;
use crate::envelope::ReceiverEnvelope;
use crate::error::DriverError;
use crate::sender::is_timeout;
use crate::socket::{self, BufferGrant, DEFAULT_RECV_BUFFER, DEFAULT_SEND_BUFFER};
use crate::wake::{Wake, Waker};

/// Serves any number of senders on one UDP socket.
///
/// Reads with `recvmmsg` and UDP GRO into a reusable [`RxPool`] (up to 8 buffers of 64 KiB,
/// each possibly a run of datagrams coalesced by the kernel) and hands the core each datagram
/// in place: nothing is allocated per datagram, and the core copies each payload once, into
/// the frame it rebuilds.
#[derive(Debug)]
pub struct UdpReceiver {
    socket: BatchSocket,
    core: Receiver,
    clock: Clock,
    rx: RxPool,
    tx_buf: [u8; MAX_REPLY_LEN],
    grant: BufferGrant,
    /// With a pre-shared key: opens (or drops) what arrives, seals the replies.
    envelope: Option<ReceiverEnvelope>,
    /// Other threads' way to end a wait early ([`UdpReceiver::waker`]).
    wake: Wake,
    /// A waker ended the last [`UdpReceiver::next_event`] that returned `None`: see
    /// [`UdpReceiver::take_woken`].
    woken: bool,
    /// Subscription datagrams (docs/PROTOCOL.md §10) set apart for a hub or a subscriber:
    /// `None` until [`UdpReceiver::enable_subscriptions`].
    control: Option<ControlQueue>,
}

/// Wakes a [`UdpReceiver`] from another thread (a saver reporting a file durable): its
/// [`UdpReceiver::next_event`] returns `None` at once. The same [`Waker`] a sender's has.
pub type ReceiverWaker = Waker;

/// Subscription datagrams waiting for their driver, bounded.
#[derive(Debug, Default)]
struct ControlQueue {
    waiting: std::collections::VecDeque<(SocketAddr, Vec<u8>)>,
    /// Dropped because the queue was full.
    dropped: u64,
}

/// Subscription datagrams held at most between two calls of [`UdpReceiver::take_control`].
pub const MAX_CONTROL_QUEUED: usize = 256;

impl UdpReceiver {
    /// Listens on `addr` with the default socket buffer.
    pub fn bind(addr: SocketAddr, config: ReceiverConfig) -> Result<Self, DriverError> {
        Self::bind_with_buffer(addr, config, DEFAULT_RECV_BUFFER)
    }

    /// Listens on `addr`, asking the kernel for `recv_buffer` bytes of receive buffer.
    pub fn bind_with_buffer(
        addr: SocketAddr,
        config: ReceiverConfig,
        recv_buffer: usize,
    ) -> Result<Self, DriverError> {
        Self::bind_keyed(addr, config, recv_buffer, None)
    }

    /// Like [`UdpReceiver::bind_with_buffer`]; with `key`, only datagrams sealed with it are
    /// taken (the rest are counted in [`UdpReceiver::open_stats`] and never answered) and
    /// replies are sealed.
    pub fn bind_keyed(
        addr: SocketAddr,
        config: ReceiverConfig,
        recv_buffer: usize,
        key: Option<&Psk>,
    ) -> Result<Self, DriverError> {
        let envelope = key.map(ReceiverEnvelope::new).transpose()?;
        let (socket, grant) = socket::bind(addr, recv_buffer, DEFAULT_SEND_BUFFER)?;
        let mut config = config;
        if config.address_secret == pixgram_core::Secret::default() {
            // Tokens must be unforgeable: a secret of this receiver's own, new at every start.
            config.address_secret = crate::security::fresh_secret()?;
        }
        Ok(UdpReceiver {
            socket: BatchSocket::new(socket)?,
            core: Receiver::new(config),
            clock: Clock::new(),
            rx: RxPool::new(RX_SLOTS),
            tx_buf: [0; MAX_REPLY_LEN],
            grant,
            envelope,
            wake: Wake::new()?,
            woken: false,
            control: None,
        })
    }

    /// A [`ReceiverWaker`] for another thread.
    pub fn waker(&self) -> Result<ReceiverWaker, DriverError> {
        Ok(self.wake.waker()?)
    }

    /// With a key: what was opened and what was refused.
    pub fn open_stats(&self) -> Option<OpenStats> {
        self.envelope.as_ref().map(ReceiverEnvelope::stats)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, DriverError> {
        Ok(self.socket.socket().local_addr()?)
    }

    /// What the kernel granted for socket buffers.
    pub fn buffer_grant(&self) -> BufferGrant {
        self.grant
    }

    /// System calls and datagrams of the batched socket so far.
    pub fn io_stats(&self) -> IoStats {
        self.socket.stats()
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReceiverStats {
        self.core.stats()
    }

    /// The protocol state machine (read-only).
    pub fn core(&self) -> &Receiver {
        &self.core
    }

    /// Sets subscription datagrams (types 9-14, never sealed) apart from the protocol's
    /// own: they are queued (at most [`MAX_CONTROL_QUEUED`], the rest dropped and counted)
    /// for [`UdpReceiver::take_control`], and [`UdpReceiver::next_event`] returns `None`
    /// early while any wait.
    pub fn enable_subscriptions(&mut self) {
        self.control.get_or_insert_with(ControlQueue::default);
    }

    /// The next subscription datagram waiting, with where it came from.
    pub fn take_control(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.control.as_mut()?.waiting.pop_front()
    }

    /// Subscription datagrams dropped because too many waited.
    pub fn control_dropped(&self) -> u64 {
        self.control.as_ref().map_or(0, |c| c.dropped)
    }

    /// Sends one datagram from this socket (a subscription reply), unsealed.
    pub fn send_control(&mut self, to: SocketAddr, datagram: &[u8]) {
        // Lost like any datagram: the subscription exchange repeats itself.
        let _ = self.socket.send_one(to, datagram);
    }

    /// Receives until an event is ready and returns it, or returns `None` once `deadline` has
    /// passed (`None` deadline: wait as long as it takes) or a [`ReceiverWaker`] woke it.
    pub fn next_event(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<ReceiverEvent>, DriverError> {
        loop {
            if let Some(e) = self.core.poll_event() {
                return Ok(Some(e));
            }
            if self.control.as_ref().is_some_and(|c| !c.waiting.is_empty()) {
                return Ok(None);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            if self.wake.take() {
                self.woken = true;
                return Ok(None);
            }
            let timer = self.core.poll_timeout().map(|t| self.clock.instant(t));
            let wake = match (timer, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wait = wake.map(|w| {
                w.saturating_duration_since(now)
                    .max(Duration::from_micros(MIN_WAIT_US))
            });
            // What is waiting is read at once; otherwise sleep until something comes or the
            // next timer. No timer and no deadline: wake now and then anyway, so callers can
            // check flags.
            if !self.read_once()? {
                let wait = wait.unwrap_or(Duration::from_millis(200));
                let waker = Some(self.wake.fd());
                if self
                    .socket
                    .wait_or_woken(false, waker, Some(wait))?
                    .readable
                {
                    self.read_once()?;
                }
            }
            self.core.handle_timeout(self.clock.now());
            self.send_replies();
        }
    }

    /// Whether a [`ReceiverWaker`] ended a [`UdpReceiver::next_event`] since the last call
    /// (a driver that calls `next_event` in a loop of its own, like the hub, returns to its
    /// caller then, so the work reported off the loop is taken at once).
    pub fn take_woken(&mut self) -> bool {
        std::mem::take(&mut self.woken)
    }

    /// Tells the sender whether the application took a frame delivered while
    /// [`ReceiverConfig::confirm_deliveries`] is on: `stored` acknowledges it COMPLETE (the
    /// sender counts it delivered), otherwise FAILED (the sender reports it not stored).
    /// Until then the frame is not acknowledged at all.
    pub fn confirm(&mut self, frame: DeliveryKey, stored: bool) {
        self.core.confirm(self.clock.now(), frame, stored);
        self.send_replies();
    }

    /// Sends every reply the core has queued.
    fn send_replies(&mut self) {
        while let Some(t) = self.core.poll_transmit(&mut self.tx_buf) {
            // A failed acknowledgement is like a lost one: the sender copes.
            let reply = match &mut self.envelope {
                Some(e) => match e.seal(t.bytes(&self.tx_buf)) {
                    Some(r) => r,
                    None => continue,
                },
                None => t.bytes(&self.tx_buf),
            };
            let _ = self.socket.send_one(t.destination, reply);
        }
    }

    /// One `recvmmsg` (up to [`RX_SLOTS`] buffers, each possibly a GRO run), every datagram
    /// handed to the core; whether anything came. One read per turn of
    /// [`UdpReceiver::next_event`], so that timers, replies and events are served between.
    fn read_once(&mut self) -> Result<bool, DriverError> {
        match self.socket.recv(&mut self.rx) {
            Ok(0) => Ok(false),
            Ok(_) => {
                let now = self.clock.now();
                let (core, envelope) = (&mut self.core, &mut self.envelope);
                let control = &mut self.control;
                self.rx.datagrams(|from, d| match envelope {
                    _ if control.is_some() && pixgram_core::subscription::is_subscription(d) => {
                        if let Some(q) = control.as_mut() {
                            if q.waiting.len() < MAX_CONTROL_QUEUED {
                                q.waiting.push_back((from, d.to_vec()));
                            } else {
                                q.dropped += 1;
                            }
                        }
                    }
                    None => core.handle(now, from, d),
                    Some(e) => {
                        let valid = |s, t: &_| core.check_token(now, from, s, t);
                        if let Some(inner) = e.open(d, valid) {
                            core.handle_opened(now, from, inner);
                        }
                    }
                });
                Ok(true)
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::ConnectionRefused => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Shortest wait of [`UdpReceiver::next_event`], so that a timer that does not move cannot
/// spin.
const MIN_WAIT_US: u64 = 50;
