//! [`Subscriber`]: a receiver that subscribes to a hub from its own socket (so the address the
//! hub proves is the one it sends to), renews the subscription every second and says
//! UNSUBSCRIBE when dropped.

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

use pixgram_core::seal::Psk;
use pixgram_core::subscription::wire::MAX_CONTROL_LEN;
use pixgram_core::subscription::{ClientEvent, Mode, SubscriptionClient};
use pixgram_core::{ReceiverConfig, ReceiverEvent};

use crate::clock::{random_session, Clock};
use crate::endpoint::{incoming_of, Error, Incoming};
use crate::error::DriverError;
use crate::receive::EventSource;
use crate::receiver::UdpReceiver;
use crate::socket::DEFAULT_RECV_BUFFER;

/// Notices kept until [`Subscriber::poll_notice`] takes them; more are dropped.
const MAX_NOTICES: usize = 64;

/// What the hub told a subscriber.
pub type SubscriberNotice = ClientEvent;

/// Options for a [`Subscriber`]: start from [`Subscriber::builder`].
#[derive(Debug, Clone)]
pub struct SubscriberBuilder {
    hub: String,
    mode: Mode,
    filters: Vec<String>,
    config: ReceiverConfig,
    recv_buffer: usize,
    key: Option<Psk>,
}

impl SubscriberBuilder {
    /// Every frame ([`Mode::Reliable`], the default) or the latest of each stream.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Only streams whose key (`pixgram::sink::stream_key`: publisher address, session,
    /// stream) starts with `prefix`; repeatable (up to 8); none: every stream.
    pub fn stream(mut self, prefix: impl Into<String>) -> Self {
        self.filters.push(prefix.into());
        self
    }

    /// The receiver's limits and options.
    pub fn config(mut self, config: ReceiverConfig) -> Self {
        self.config = config;
        self
    }

    /// The receive buffer to ask the kernel for.
    pub fn recv_buffer(mut self, bytes: usize) -> Self {
        self.recv_buffer = bytes;
        self
    }

    /// Hears only a hub sealing with `key`.
    pub fn key(mut self, key: Psk) -> Self {
        self.key = Some(key);
        self
    }

    /// Binds the subscriber's socket to `local` and starts subscribing.
    pub fn bind(self, local: impl ToSocketAddrs) -> Result<Subscriber, Error> {
        let hub = first(self.hub.as_str())?;
        let mut rx = UdpReceiver::bind_keyed(
            first(local)?,
            self.config,
            self.recv_buffer,
            self.key.as_ref(),
        )?;
        rx.enable_subscriptions();
        let clock = Clock::new();
        let client =
            SubscriptionClient::new(clock.now(), hub, random_session(), self.mode, self.filters);
        let mut s = Subscriber {
            rx,
            client,
            clock,
            buf: vec![0; MAX_CONTROL_LEN],
            notices: VecDeque::new(),
            pending: VecDeque::new(),
            refused: false,
        };
        s.service();
        Ok(s)
    }
}

fn first(addr: impl ToSocketAddrs) -> Result<SocketAddr, Error> {
    addr.to_socket_addrs()
        .map_err(Error::Address)?
        .next()
        .ok_or_else(|| Error::Address(std::io::ErrorKind::NotFound.into()))
}

/// Receives what a hub serves; see the [hub module](super) for an example.
#[derive(Debug)]
pub struct Subscriber {
    rx: UdpReceiver,
    client: SubscriptionClient,
    clock: Clock,
    buf: Vec<u8>,
    notices: VecDeque<ClientEvent>,
    /// The hub said it is full.
    refused: bool,
    /// Events taken while waiting for the subscription, handed out first.
    pending: VecDeque<ReceiverEvent>,
}

impl Subscriber {
    /// Options for subscribing to the hub at `hub`.
    pub fn builder(hub: impl ToString) -> SubscriberBuilder {
        SubscriberBuilder {
            hub: hub.to_string(),
            mode: Mode::Reliable,
            filters: Vec::new(),
            config: ReceiverConfig {
                // Every stream of every publisher arrives on the hub's one session.
                max_streams_per_peer: 1_024,
                ..ReceiverConfig::default()
            },
            recv_buffer: DEFAULT_RECV_BUFFER,
            key: None,
        }
    }

    /// The hub's address.
    pub fn hub(&self) -> SocketAddr {
        self.client.hub()
    }

    /// Whether the hub refused the subscription (it is full).
    pub fn is_refused(&self) -> bool {
        self.refused
    }

    /// Whether the hub holds the subscription.
    pub fn is_subscribed(&self) -> bool {
        self.client.is_held()
    }

    /// The subscription's counters (`skipped`: frames the hub said it skipped for us).
    pub fn client_stats(&self) -> &pixgram_core::subscription::client::ClientStats {
        self.client.stats()
    }

    /// The receiver underneath.
    pub fn receiver(&self) -> &UdpReceiver {
        &self.rx
    }

    /// The receiver underneath, to confirm frames with.
    pub fn receiver_mut(&mut self) -> &mut UdpReceiver {
        &mut self.rx
    }

    /// The next thing the hub told us (subscribed, full, behind, no answer), if any.
    pub fn poll_notice(&mut self) -> Option<SubscriberNotice> {
        self.notices.pop_front()
    }

    /// Waits until the hub holds the subscription (`true`), refused it, or `deadline`.
    pub fn wait_subscribed(&mut self, deadline: Instant) -> Result<bool, DriverError> {
        while !self.client.is_held() && Instant::now() < deadline {
            if self.refused {
                return Ok(false);
            }
            let until = deadline.min(Instant::now() + std::time::Duration::from_millis(50));
            // Frames before the SUBSCRIBED (it may be lost) are not lost: they wait in the core.
            if let Some(e) = self.rx.next_event(Some(until))? {
                self.pending.push_back(e);
            }
            self.service();
        }
        Ok(self.client.is_held())
    }

    /// Receives until an event is ready, `until` passes or a [`crate::ReceiverWaker`] wakes
    /// its receiver, keeping the subscription alive.
    pub fn next_event(&mut self, until: Instant) -> Result<Option<ReceiverEvent>, DriverError> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            self.service();
            let due = self.client.poll_timeout().map(|t| self.clock.instant(t));
            let wake = due.map_or(until, |d| d.min(until));
            if let Some(e) = self.rx.next_event(Some(wake))? {
                return Ok(Some(e));
            }
            // Woken (a saver reported): the caller takes that now.
            if Instant::now() >= until || self.rx.take_woken() {
                self.service();
                return Ok(None);
            }
        }
    }

    /// The next frame or message, waiting at most until `deadline` (`None`: as long as it
    /// takes); `Ok(None)` once the deadline has passed.
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Option<Incoming>, Error> {
        loop {
            let until =
                deadline.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(1));
            match self.next_event(until)? {
                Some(ReceiverEvent::Frame(f)) => return Ok(Some(incoming_of(f))),
                Some(_) => {}
                None if deadline.is_some() => return Ok(None),
                None => {}
            }
        }
    }

    fn service(&mut self) {
        let now = self.clock.now();
        while let Some((from, d)) = self.rx.take_control() {
            self.client.handle(now, from, &d);
        }
        self.client.handle_timeout(now);
        while let Some(e) = self.client.poll_event() {
            self.refused |= e == ClientEvent::Full;
            if self.notices.len() < MAX_NOTICES {
                self.notices.push_back(e);
            }
        }
        let hub = self.client.hub();
        while let Some(n) = self.client.poll_transmit(now, &mut self.buf) {
            self.rx.send_control(hub, &self.buf[..n]);
        }
    }
}

impl EventSource for Subscriber {
    type Event = ReceiverEvent;
    fn next_event(&mut self, until: Instant) -> Result<Option<ReceiverEvent>, DriverError> {
        Subscriber::next_event(self, until)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(n) = self.client.unsubscribe(&mut self.buf) {
            let hub = self.client.hub();
            self.rx.send_control(hub, &self.buf[..n]);
        }
    }
}
