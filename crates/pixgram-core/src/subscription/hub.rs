//! The hub's side of subscriptions: address validation with stateless tokens, the table of
//! subscribers with their keepalive deadlines, and its limits. Pure: bytes and time in,
//! datagrams to send and events out.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::wire::{self, Control, Mode, SubscribeStatus, MAX_CONTROL_LEN};
use crate::handshake::{AddressValidator, ChallengeBudget};
use crate::ids::SessionId;
use crate::time::Timestamp;
use crate::transmit::Transmit;

/// Limits and deadlines of a [`SubscriptionTable`].
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Subscribers held at once; more are answered SUBSCRIBED(full).
    pub max_subscribers: usize,
    /// A subscriber not heard from (SUBSCRIBE or KEEPALIVE) for this long is dropped.
    pub keepalive_timeout: Duration,
    /// Tokens (SUBSCRIBE-TOKEN) sent per second at most, all addresses together.
    pub tokens_per_sec: f64,
    /// The secret tokens are made with (random, new at every start: the driver's job).
    pub secret: [u8; 32],
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_subscribers: 64,
            keepalive_timeout: Duration::from_secs(4),
            tokens_per_sec: 1_000.0,
            secret: [0; 32],
        }
    }
}

/// A subscriber the table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The subscriber's id.
    pub session: SessionId,
    /// How it wants frames.
    pub mode: Mode,
    /// Stream-key prefixes it wants; empty: all.
    pub filters: Vec<String>,
    last_heard: Timestamp,
}

impl Subscription {
    /// Whether the stream named `key` (see `pixgram::sink::stream_key`) is wanted.
    pub fn wants(&self, key: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| key.starts_with(f.as_str()))
    }
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The subscriber sent UNSUBSCRIBE.
    Unsubscribed,
    /// Nothing heard from it for the keepalive timeout.
    Expired,
    /// The same address subscribed again with another id (a restarted subscriber).
    Replaced,
    /// The driver ended it (its sender found the subscriber gone).
    Dropped,
}

/// What a [`SubscriptionTable`] tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// A validated subscriber: start sending to it.
    Subscribed {
        /// Its address, proven.
        addr: SocketAddr,
        /// What it asked for.
        subscription: Subscription,
    },
    /// Stop sending to `addr`.
    Ended {
        /// Its address.
        addr: SocketAddr,
        /// Its id.
        session: SessionId,
        /// Why.
        reason: EndReason,
    },
}

/// Counters of a [`SubscriptionTable`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionStats {
    /// Subscription datagrams that did not parse.
    pub malformed: u64,
    /// Datagrams of a type a subscriber does not send, or from an id the address does not hold.
    pub unexpected: u64,
    /// Tokens sent (to SUBSCRIBEs without a valid token, and to KEEPALIVEs from strangers).
    pub tokens_sent: u64,
    /// Tokens withheld over the budget.
    pub tokens_limited: u64,
    /// SUBSCRIBEs whose token was invalid or expired.
    pub tokens_invalid: u64,
    /// Subscriptions started.
    pub subscribed: u64,
    /// SUBSCRIBEs refused because every place was taken.
    pub over_limit: u64,
    /// KEEPALIVEs (and renewing SUBSCRIBEs) taken.
    pub keepalives: u64,
    /// Subscriptions ended by UNSUBSCRIBE.
    pub unsubscribed: u64,
    /// Subscriptions ended by silence.
    pub expired: u64,
    /// Subscriptions replaced by a new id at the same address.
    pub replaced: u64,
    /// Subscriptions the driver dropped.
    pub dropped: u64,
    /// BEHIND notices sent.
    pub behind_sent: u64,
}

/// The hub's subscription state machine.
#[derive(Debug)]
pub struct SubscriptionTable {
    config: HubConfig,
    validator: AddressValidator,
    budget: ChallengeBudget,
    subscribers: BTreeMap<SocketAddr, Subscription>,
    /// Replies waiting: never more than one per datagram taken, and bounded.
    replies: VecDeque<(SocketAddr, Control)>,
    events: VecDeque<HubEvent>,
    stats: SubscriptionStats,
}

/// Replies queued at most (the driver drains them after every datagram).
const MAX_QUEUED_REPLIES: usize = 1_024;

impl SubscriptionTable {
    /// An empty table.
    pub fn new(config: HubConfig) -> Self {
        SubscriptionTable {
            validator: AddressValidator::new(config.secret),
            budget: ChallengeBudget::new(config.tokens_per_sec),
            subscribers: BTreeMap::new(),
            replies: VecDeque::new(),
            events: VecDeque::new(),
            stats: SubscriptionStats::default(),
            config,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &SubscriptionStats {
        &self.stats
    }

    /// The subscribers held.
    pub fn subscribers(&self) -> impl Iterator<Item = (&SocketAddr, &Subscription)> {
        self.subscribers.iter()
    }

    /// The subscription at `addr`, if held.
    pub fn get(&self, addr: SocketAddr) -> Option<&Subscription> {
        self.subscribers.get(&addr)
    }

    /// Takes one subscription datagram from `from`.
    pub fn handle(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) {
        let control = match wire::parse(datagram) {
            Ok(c) => c,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        match control {
            Control::Subscribe {
                session,
                mode,
                token,
                filters,
            } => {
                let valid = token.is_some_and(|t| self.validator.check(now, from, session, &t));
                if !valid {
                    if token.is_some() {
                        self.stats.tokens_invalid += 1;
                    }
                    // A SUBSCRIBE is at least MIN_SUBSCRIBE_LEN bytes: the token is smaller.
                    self.send_token(now, from, session);
                    return;
                }
                self.subscribe(now, from, session, mode, filters);
            }
            Control::Keepalive { session } => match self.subscribers.get_mut(&from) {
                Some(s) if s.session == session => {
                    s.last_heard = now;
                    self.stats.keepalives += 1;
                }
                // A hub that restarted, or dropped the subscriber: the token (44 bytes, no
                // more than the 48 of a KEEPALIVE) lets it subscribe again at once.
                _ => self.send_token(now, from, session),
            },
            Control::Unsubscribe { session } => {
                if self
                    .subscribers
                    .get(&from)
                    .is_some_and(|s| s.session == session)
                {
                    self.end(from, EndReason::Unsubscribed);
                } else {
                    self.stats.unexpected += 1;
                }
            }
            Control::SubscribeToken { .. }
            | Control::Subscribed { .. }
            | Control::Behind { .. } => self.stats.unexpected += 1,
        }
    }

    fn send_token(&mut self, now: Timestamp, to: SocketAddr, session: SessionId) {
        if !self.budget.take(now) || self.replies.len() >= MAX_QUEUED_REPLIES {
            self.stats.tokens_limited += 1;
            return;
        }
        let token = self.validator.issue(now, to, session);
        self.stats.tokens_sent += 1;
        self.replies
            .push_back((to, Control::SubscribeToken { session, token }));
    }

    fn reply(&mut self, to: SocketAddr, c: Control) {
        if self.replies.len() < MAX_QUEUED_REPLIES {
            self.replies.push_back((to, c));
        }
    }

    fn subscribe(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        session: SessionId,
        mode: Mode,
        filters: Vec<String>,
    ) {
        let status = match self.subscribers.get_mut(&from) {
            // A renewal (or a repeat whose SUBSCRIBED was lost): same subscription.
            Some(s) if s.session == session && s.mode == mode && s.filters == filters => {
                s.last_heard = now;
                self.stats.keepalives += 1;
                SubscribeStatus::Accepted
            }
            existing => {
                if existing.is_some() {
                    self.end(from, EndReason::Replaced);
                }
                if self.subscribers.len() >= self.config.max_subscribers {
                    self.stats.over_limit += 1;
                    SubscribeStatus::Full
                } else {
                    let subscription = Subscription {
                        session,
                        mode,
                        filters,
                        last_heard: now,
                    };
                    self.subscribers.insert(from, subscription.clone());
                    self.stats.subscribed += 1;
                    self.events.push_back(HubEvent::Subscribed {
                        addr: from,
                        subscription,
                    });
                    SubscribeStatus::Accepted
                }
            }
        };
        self.reply(from, Control::Subscribed { session, status });
    }

    fn end(&mut self, addr: SocketAddr, reason: EndReason) {
        let Some(s) = self.subscribers.remove(&addr) else {
            return;
        };
        match reason {
            EndReason::Unsubscribed => self.stats.unsubscribed += 1,
            EndReason::Expired => self.stats.expired += 1,
            EndReason::Replaced => self.stats.replaced += 1,
            EndReason::Dropped => self.stats.dropped += 1,
        }
        self.events.push_back(HubEvent::Ended {
            addr,
            session: s.session,
            reason,
        });
    }

    /// The driver ends the subscription at `addr` (its sender found the subscriber gone).
    pub fn drop_subscriber(&mut self, addr: SocketAddr) {
        self.end(addr, EndReason::Dropped);
    }

    /// Tells the subscriber at `addr` (only a validated one) that `skipped` frames in all were
    /// skipped for it.
    pub fn behind(&mut self, addr: SocketAddr, skipped: u64) {
        if let Some(s) = self.subscribers.get(&addr) {
            let session = s.session;
            self.stats.behind_sent += 1;
            self.reply(addr, Control::Behind { session, skipped });
        }
    }

    /// When [`SubscriptionTable::handle_timeout`] should next run: the earliest keepalive
    /// deadline. Call again after every input.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.subscribers
            .values()
            .map(|s| s.last_heard + self.config.keepalive_timeout)
            .min()
    }

    /// Ends every subscription silent for the keepalive timeout.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let timeout = self.config.keepalive_timeout;
        let expired: Vec<SocketAddr> = self
            .subscribers
            .iter()
            .filter(|(_, s)| now >= s.last_heard + timeout)
            .map(|(a, _)| *a)
            .collect();
        for addr in expired {
            self.end(addr, EndReason::Expired);
        }
    }

    /// The next reply, written into `buf` (at least [`MAX_CONTROL_LEN`] bytes).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let (to, c) = self.replies.pop_front()?;
        debug_assert!(buf.len() >= MAX_CONTROL_LEN);
        let len = wire::emit(buf, &c);
        Some(Transmit {
            destination: to,
            len,
        })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.events.pop_front()
    }
}
