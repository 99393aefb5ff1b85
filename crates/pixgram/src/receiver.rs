//! Blocking UDP driver for [`pixgram_core::Receiver`].

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use pixgram_core::seal::{OpenStats, Psk};
use pixgram_core::{
    DeliveryKey, Receiver, ReceiverConfig, ReceiverEvent, ReceiverStats, MAX_REPLY_LEN,
};

use crate::clock::Clock;
use crate::envelope::ReceiverEnvelope;
use crate::error::DriverError;
use crate::sender::is_timeout;
use crate::socket::{self, BufferGrant, DEFAULT_RECV_BUFFER, DEFAULT_SEND_BUFFER};

/// Serves any number of senders on one UDP socket.
#[derive(Debug)]
pub struct UdpReceiver {
    socket: UdpSocket,
    core: Receiver,
    clock: Clock,
    rx_buf: Vec<u8>,
    tx_buf: [u8; MAX_REPLY_LEN],
    read_timeout: Option<Duration>,
    grant: BufferGrant,
    /// With a pre-shared key: opens (or drops) what arrives, seals the replies.
    envelope: Option<ReceiverEnvelope>,
}

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
            socket,
            core: Receiver::new(config),
            clock: Clock::new(),
            rx_buf: vec![0; 65_536],
            tx_buf: [0; MAX_REPLY_LEN],
            read_timeout: None,
            grant,
            envelope,
        })
    }

    /// With a key: what was opened and what was refused.
    pub fn open_stats(&self) -> Option<OpenStats> {
        self.envelope.as_ref().map(ReceiverEnvelope::stats)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, DriverError> {
        Ok(self.socket.local_addr()?)
    }

    /// What the kernel granted for socket buffers.
    pub fn buffer_grant(&self) -> BufferGrant {
        self.grant
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReceiverStats {
        self.core.stats()
    }

    /// The protocol state machine (read-only).
    pub fn core(&self) -> &Receiver {
        &self.core
    }

    /// Receives until an event is ready and returns it, or returns `None` once `deadline` has
    /// passed (`None` deadline: wait as long as it takes).
    pub fn next_event(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<ReceiverEvent>, DriverError> {
        loop {
            if let Some(e) = self.core.poll_event() {
                return Ok(Some(e));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            let timer = self.core.poll_timeout().map(|t| self.clock.instant(t));
            let wake = match (timer, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wait = wake.map(|w| {
                w.saturating_duration_since(now)
                    .max(Duration::from_micros(100))
            });
            // No timer and no deadline: wake now and then anyway, so callers can check flags.
            self.set_read_timeout(wait.unwrap_or(Duration::from_millis(200)))?;
            match self.socket.recv_from(&mut self.rx_buf) {
                Ok((n, from)) => {
                    let now = self.clock.now();
                    match &mut self.envelope {
                        None => self.core.handle(now, from, &self.rx_buf[..n]),
                        Some(e) => {
                            let core = &self.core;
                            let valid = |s, t: &_| core.check_token(now, from, s, t);
                            if let Some(inner) = e.open(&mut self.rx_buf[..n], valid) {
                                self.core.handle(now, from, inner);
                            }
                        }
                    }
                }
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e.into()),
            }
            self.core.handle_timeout(self.clock.now());
            self.send_replies();
        }
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
        while let Some((dst, len)) = self.core.poll_transmit(&mut self.tx_buf) {
            // A failed acknowledgement is like a lost one: the sender copes.
            let reply = match &mut self.envelope {
                Some(e) => match e.seal(&self.tx_buf[..len]) {
                    Some(r) => r,
                    None => continue,
                },
                None => &self.tx_buf[..len],
            };
            let _ = self.socket.send_to(reply, dst);
        }
    }

    fn set_read_timeout(&mut self, wait: Duration) -> Result<(), DriverError> {
        // Whole milliseconds, so a busy socket does not pay a setsockopt per datagram.
        let wait = Duration::from_millis((wait.as_micros().div_ceil(1000) as u64).max(1));
        if self.read_timeout != Some(wait) {
            self.socket.set_read_timeout(Some(wait))?;
            self.read_timeout = Some(wait);
        }
        Ok(())
    }
}
