//! The hub (issue 17): receives streams like any [`UdpReceiver`] and serves every frame and
//! message it receives to subscribers (docs/PROTOCOL.md §10).
//!
//! - [`Hub`]: the receiver, the subscription table of the core
//!   ([`pixgram_core::subscription::SubscriptionTable`]) and one [`link::Link`] per subscriber:
//!   its own bounded [`backlog::Backlog`] and its own sender thread, so that the publishers'
//!   acknowledgements never wait for a subscriber and a slow one never slows the others.
//! - [`Subscriber`]: subscribes from its own receiver socket, keeps the subscription alive,
//!   and yields what the hub sends like any receiver.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use pixgram::hub::{Hub, HubOptions, Mode, Subscriber};
//! use pixgram::{FrameMeta, Incoming, ReceiverConfig, Sender, UdpReceiver};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rx = UdpReceiver::bind("127.0.0.1:0".parse()?, ReceiverConfig::default())?;
//! let mut hub = Hub::new(rx, HubOptions::default())?;
//! let hub_addr = hub.local_addr()?;
//! let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
//! let hub_stop = stop.clone();
//! let hub_thread = std::thread::spawn(move || {
//!     let until = pixgram::receive::Until { stop: Some(hub_stop), ..Default::default() };
//!     hub.serve(&until)
//! });
//! let mut sub = Subscriber::builder(hub_addr).mode(Mode::Reliable).bind("127.0.0.1:0")?;
//! assert!(sub.wait_subscribed(Instant::now() + Duration::from_secs(5))?);
//! let camera = std::thread::spawn(move || -> Result<pixgram::Sent, pixgram::Error> {
//!     let mut tx = Sender::connect(hub_addr)?;
//!     tx.send_image(vec![0xFF, 0xD8, 0xFF, 0xD9], FrameMeta::named("a.jpg"))?;
//!     tx.finish() // the hub's acknowledgement: the frame is in the hub
//! });
//! let got = sub.next(Some(Instant::now() + Duration::from_secs(5)))?;
//! match got {
//!     Some(Incoming::Frame(f)) => assert_eq!(&f.bytes[..], &[0xFF, 0xD8, 0xFF, 0xD9]),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(camera.join().unwrap()?.acked, 1);
//! drop(sub); // sends UNSUBSCRIBE
//! stop.store(true, std::sync::atomic::Ordering::Relaxed);
//! hub_thread.join().unwrap()?;
//! # Ok(()) }
//! ```

pub mod backlog;
pub mod link;
mod subscriber;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pixgram_core::seal::Psk;
pub use pixgram_core::subscription::wire::{valid_filter, MAX_FILTERS};
pub use pixgram_core::subscription::Mode;
use pixgram_core::subscription::{
    wire::MAX_CONTROL_LEN, EndReason, HubConfig, HubEvent, SubscriptionStats, SubscriptionTable,
};
use pixgram_core::{PayloadKind, ReceivedFrame, ReceiverEvent, StreamId};

use backlog::{BacklogLimits, Item};
use link::{Link, LinkStats};
pub use subscriber::{Subscriber, SubscriberBuilder, SubscriberNotice};

use crate::clock::Clock;
use crate::error::DriverError;
use crate::receive::{EventSource, Until};
use crate::receiver::UdpReceiver;
use crate::sink::stream_key;

/// Options of a [`Hub`].
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Subscribers served at once (default 64).
    pub max_subscribers: usize,
    /// Each subscriber's backlog.
    pub backlog: BacklogLimits,
    /// A subscriber silent this long is dropped (default 4 s; subscribers send a KEEPALIVE
    /// every second).
    pub keepalive_timeout: Duration,
    /// Seals what goes to subscribers (they need the key to receive anything).
    pub key: Option<Psk>,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            max_subscribers: 64,
            backlog: BacklogLimits::default(),
            keepalive_timeout: HubConfig::default().keepalive_timeout,
            key: None,
        }
    }
}

/// Origins (publisher streams) a hub gives a stream number of their own on its subscribers'
/// sessions; frames of more are not forwarded, and counted.
pub const MAX_ORIGINS: usize = 4_096;
/// Ended subscriptions whose figures are kept for the summary.
const ENDED_KEPT: usize = 64;

/// What a hub forwarded, so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Frames and messages received from publishers.
    pub received: u64,
    /// Copies queued for subscribers (one per subscriber wanting it).
    pub queued: u64,
    /// Frames not forwarded: their stream was one over [`MAX_ORIGINS`].
    pub over_origins: u64,
    /// Subscription datagrams dropped because too many waited at once.
    pub control_dropped: u64,
}

/// A subscriber as the hub's summary shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberFigures {
    /// Its address.
    pub addr: SocketAddr,
    /// How it wanted frames.
    pub mode: Mode,
    /// Its link's counters.
    pub link: LinkStats,
    /// Why it ended, if it has.
    pub ended: Option<EndReason>,
}

/// Receives streams and serves them to subscribers; see the [module docs](self).
#[derive(Debug)]
pub struct Hub {
    rx: UdpReceiver,
    table: SubscriptionTable,
    clock: Clock,
    links: BTreeMap<SocketAddr, (Mode, Link)>,
    origins: HashMap<String, StreamId>,
    backlog: BacklogLimits,
    key: Option<Psk>,
    buf: Vec<u8>,
    stats: HubStats,
    ended: VecDeque<SubscriberFigures>,
}

impl Hub {
    /// A hub on `rx` (already bound, with the receive limits and key wanted).
    pub fn new(mut rx: UdpReceiver, options: HubOptions) -> Result<Hub, DriverError> {
        rx.enable_subscriptions();
        let table = SubscriptionTable::new(HubConfig {
            max_subscribers: options.max_subscribers,
            keepalive_timeout: options.keepalive_timeout,
            secret: crate::security::fresh_secret()?.0,
            ..HubConfig::default()
        });
        Ok(Hub {
            rx,
            table,
            clock: Clock::new(),
            links: BTreeMap::new(),
            origins: HashMap::new(),
            backlog: options.backlog,
            key: options.key,
            buf: vec![0; MAX_CONTROL_LEN],
            stats: HubStats::default(),
            ended: VecDeque::new(),
        })
    }

    /// The address publishers send to and subscribers subscribe at.
    pub fn local_addr(&self) -> Result<SocketAddr, DriverError> {
        self.rx.local_addr()
    }

    /// The receiver underneath.
    pub fn receiver(&self) -> &UdpReceiver {
        &self.rx
    }

    /// The receiver underneath, to confirm frames with.
    pub fn receiver_mut(&mut self) -> &mut UdpReceiver {
        &mut self.rx
    }

    /// The subscription table's counters.
    pub fn subscription_stats(&self) -> &SubscriptionStats {
        self.table.stats()
    }

    /// Forwarding counters.
    pub fn stats(&self) -> HubStats {
        HubStats {
            control_dropped: self.rx.control_dropped(),
            ..self.stats.clone()
        }
    }

    /// Every subscriber held now, then the last ended ones.
    pub fn subscribers(&self) -> Vec<SubscriberFigures> {
        let held = self
            .links
            .iter()
            .map(|(addr, (mode, link))| SubscriberFigures {
                addr: *addr,
                mode: *mode,
                link: link.stats(),
                ended: None,
            });
        held.chain(self.ended.iter().cloned()).collect()
    }

    /// Receives until an event is ready (frames are queued for the subscribers before they are
    /// returned), `until` passes or a [`crate::ReceiverWaker`] wakes its receiver; serves
    /// subscriptions meanwhile.
    pub fn next_event(&mut self, until: Instant) -> Result<Option<ReceiverEvent>, DriverError> {
        loop {
            self.service();
            let expiry = self.table.poll_timeout().map(|t| self.clock.instant(t));
            let wake = expiry
                .map_or(until, |e| e.min(until))
                .min(Instant::now() + LINK_CHECK);
            match self.rx.next_event(Some(wake))? {
                Some(ReceiverEvent::Frame(f)) => {
                    self.fan_out(&f);
                    return Ok(Some(ReceiverEvent::Frame(f)));
                }
                Some(e) => return Ok(Some(e)),
                // Woken (a saver or JetStream reported): the caller takes that now.
                None if Instant::now() >= until || self.rx.take_woken() => {
                    self.service();
                    return Ok(None);
                }
                None => {}
            }
        }
    }

    /// Runs until `until` with no sinks of its own (every frame is acknowledged as soon as the
    /// hub has it, unless the receiver was made with `confirm_deliveries`, then it is confirmed
    /// here), then ends every subscription.
    pub fn serve(&mut self, until: &Until) -> Result<(), DriverError> {
        struct Forward;
        impl crate::receive::Handler<Hub> for Forward {
            type Error = DriverError;
            fn event(&mut self, hub: &mut Hub, e: ReceiverEvent) -> Result<(), DriverError> {
                if let ReceiverEvent::Frame(f) = e {
                    if hub.rx.core().config().confirm_deliveries {
                        hub.rx.confirm(f.key(), true);
                    }
                }
                Ok(())
            }
        }
        crate::receive::receive(self, until, &mut Forward)?;
        self.shutdown();
        Ok(())
    }

    /// Stops every link (what is in flight is given up).
    pub fn shutdown(&mut self) {
        let addrs: Vec<SocketAddr> = self.links.keys().copied().collect();
        for addr in addrs {
            self.end_link(addr, EndReason::Dropped);
        }
    }

    /// Subscription datagrams, keepalive deadlines, links found gone, replies.
    fn service(&mut self) {
        let now = self.clock.now();
        while let Some((from, d)) = self.rx.take_control() {
            self.table.handle(now, from, &d);
        }
        self.table.handle_timeout(now);
        let gone: Vec<SocketAddr> = self
            .links
            .iter()
            .filter(|(_, (_, l))| l.is_gone())
            .map(|(a, _)| *a)
            .collect();
        for addr in gone {
            self.table.drop_subscriber(addr);
        }
        while let Some(e) = self.table.poll_event() {
            match e {
                HubEvent::Subscribed { addr, subscription } => {
                    let mode = subscription.mode;
                    match Link::start(addr, mode, self.backlog, self.key.clone()) {
                        Ok(link) => {
                            self.links.insert(addr, (mode, link));
                        }
                        Err(_) => self.table.drop_subscriber(addr),
                    }
                }
                HubEvent::Ended { addr, reason, .. } => self.end_link(addr, reason),
            }
        }
        self.send_replies();
    }

    fn send_replies(&mut self) {
        while let Some(t) = self.table.poll_transmit(&mut self.buf) {
            self.rx.send_control(t.destination, &self.buf[..t.len]);
        }
    }

    fn end_link(&mut self, addr: SocketAddr, reason: EndReason) {
        if let Some((mode, link)) = self.links.remove(&addr) {
            let stats = link.stop();
            if self.ended.len() >= ENDED_KEPT {
                self.ended.pop_front();
            }
            self.ended.push_back(SubscriberFigures {
                addr,
                mode,
                link: stats,
                ended: Some(reason),
            });
        }
    }

    /// Queues `f` for every subscriber that wants it; tells those that fell behind.
    fn fan_out(&mut self, f: &ReceivedFrame) {
        self.stats.received += 1;
        if self.links.is_empty() {
            return;
        }
        let key = stream_key(f.peer, f.session, f.stream);
        let stream = match f.kind {
            PayloadKind::Message => StreamId::MESSAGES,
            PayloadKind::Frame => {
                let next = StreamId(self.origins.len() as u32 + 1);
                match self.origins.get(&key) {
                    Some(s) => *s,
                    None if self.origins.len() < MAX_ORIGINS => {
                        self.origins.insert(key.clone(), next);
                        next
                    }
                    None => {
                        self.stats.over_origins += 1;
                        return;
                    }
                }
            }
        };
        let mut behind = Vec::new();
        for (addr, (_, link)) in &self.links {
            if !self.table.get(*addr).is_some_and(|s| s.wants(&key)) {
                continue;
            }
            self.stats.queued += 1;
            let item = Item {
                stream,
                kind: f.kind,
                payload: f.payload.clone(),
                metadata: f.metadata.clone(),
            };
            if let Some(skipped) = link.push(item) {
                behind.push((*addr, skipped));
            }
        }
        for (addr, skipped) in behind {
            self.table.behind(addr, skipped);
        }
        self.send_replies();
    }
}

/// How often at least the hub looks for links whose subscriber is gone.
const LINK_CHECK: Duration = Duration::from_millis(100);

impl EventSource for Hub {
    type Event = ReceiverEvent;
    fn next_event(&mut self, until: Instant) -> Result<Option<ReceiverEvent>, DriverError> {
        Hub::next_event(self, until)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.shutdown();
    }
}
