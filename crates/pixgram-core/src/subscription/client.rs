//! The subscriber's side: SUBSCRIBE until the hub validates it, then KEEPALIVE every second;
//! BEHIND notices; UNSUBSCRIBE on exit. Pure: bytes and time in, datagrams and events out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use super::wire::{self, Control, Mode, SubscribeStatus, MAX_CONTROL_LEN};
use crate::ids::SessionId;
use crate::time::Timestamp;
use crate::wire::Token;

/// How often a subscription is renewed.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// How often a SUBSCRIBE is repeated until the hub answers.
pub const SUBSCRIBE_RETRY: Duration = Duration::from_millis(250);
/// After this long without an answer the subscriber is told once ([`ClientEvent::NoAnswer`]);
/// it keeps asking.
pub const NO_ANSWER_AFTER: Duration = Duration::from_secs(5);

/// What a [`SubscriptionClient`] tells its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    /// The hub holds the subscription (again, after it forgot it: `renewed`).
    Subscribed {
        /// Not the first time.
        renewed: bool,
    },
    /// The hub has no place for another subscriber.
    Full,
    /// The hub skipped frames for this subscriber: `skipped` in all so far.
    Behind {
        /// Frames skipped in all.
        skipped: u64,
    },
    /// The hub has not answered for [`NO_ANSWER_AFTER`].
    NoAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Asking; since when, and whether NoAnswer was said.
    Asking {
        since: Timestamp,
        told: bool,
    },
    Held,
    Closed,
}

/// Counters of a [`SubscriptionClient`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// SUBSCRIBEs sent.
    pub subscribes: u64,
    /// KEEPALIVEs sent.
    pub keepalives: u64,
    /// Datagrams from the hub taken.
    pub from_hub: u64,
    /// Subscription datagrams ignored (from another address, another id, or malformed).
    pub ignored: u64,
    /// Frames the hub said it skipped, in all.
    pub skipped: u64,
}

/// One subscription to one hub.
#[derive(Debug)]
pub struct SubscriptionClient {
    hub: SocketAddr,
    session: SessionId,
    mode: Mode,
    filters: Vec<String>,
    token: Option<Token>,
    state: State,
    ever_held: bool,
    next_send: Timestamp,
    /// Send now, whatever the timer says (a token just came).
    send_now: bool,
    events: VecDeque<ClientEvent>,
    stats: ClientStats,
}

impl SubscriptionClient {
    /// A subscription to `hub` under id `session` (random: the driver's job), starting `now`.
    pub fn new(
        now: Timestamp,
        hub: SocketAddr,
        session: SessionId,
        mode: Mode,
        filters: Vec<String>,
    ) -> Self {
        SubscriptionClient {
            hub,
            session,
            mode,
            filters,
            token: None,
            state: State::Asking {
                since: now,
                told: false,
            },
            ever_held: false,
            next_send: now,
            send_now: true,
            events: VecDeque::new(),
            stats: ClientStats::default(),
        }
    }

    /// The hub's address.
    pub fn hub(&self) -> SocketAddr {
        self.hub
    }

    /// Whether the hub holds the subscription.
    pub fn is_held(&self) -> bool {
        self.state == State::Held
    }

    /// Counters so far.
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// Takes a subscription datagram that came from `from`.
    pub fn handle(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) {
        let c = match wire::parse(datagram) {
            Ok(c) if from == self.hub && self.state != State::Closed => c,
            _ => {
                self.stats.ignored += 1;
                return;
            }
        };
        let ours = |s: SessionId| s == self.session;
        match c {
            Control::SubscribeToken { session, token } if ours(session) => {
                self.token = Some(token);
                if self.state == State::Held {
                    // The hub forgot us (restarted, or expired us): ask again.
                    self.state = State::Asking {
                        since: now,
                        told: false,
                    };
                }
                self.send_now = true;
            }
            Control::Subscribed { session, status } if ours(session) => match status {
                SubscribeStatus::Accepted => {
                    if self.state != State::Held {
                        self.events.push_back(ClientEvent::Subscribed {
                            renewed: self.ever_held,
                        });
                        self.ever_held = true;
                        self.state = State::Held;
                        self.next_send = now + KEEPALIVE_INTERVAL;
                    }
                }
                SubscribeStatus::Full => {
                    self.events.push_back(ClientEvent::Full);
                    self.state = State::Closed;
                }
            },
            Control::Behind { session, skipped } if ours(session) => {
                if skipped > self.stats.skipped {
                    self.stats.skipped = skipped;
                    self.events.push_back(ClientEvent::Behind { skipped });
                }
            }
            _ => {
                self.stats.ignored += 1;
                return;
            }
        }
        self.stats.from_hub += 1;
    }

    /// When [`SubscriptionClient::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.state {
            State::Closed => None,
            _ if self.send_now => Some(Timestamp::ZERO),
            State::Asking { since, told: false } => {
                Some(self.next_send.min(since + NO_ANSWER_AFTER))
            }
            _ => Some(self.next_send),
        }
    }

    /// Notes what is due; the datagram itself comes from [`SubscriptionClient::poll_transmit`].
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if let State::Asking { since, told: false } = self.state {
            if now >= since + NO_ANSWER_AFTER {
                self.events.push_back(ClientEvent::NoAnswer);
                self.state = State::Asking { since, told: true };
            }
        }
        if now >= self.next_send {
            self.send_now = true;
        }
    }

    /// The datagram due now, if one is, written into `buf` (at least [`MAX_CONTROL_LEN`]
    /// bytes), for the hub. Call after every input.
    pub fn poll_transmit(&mut self, now: Timestamp, buf: &mut [u8]) -> Option<usize> {
        if !self.send_now || self.state == State::Closed {
            return None;
        }
        debug_assert!(buf.len() >= MAX_CONTROL_LEN);
        self.send_now = false;
        let c = match self.state {
            State::Held => {
                self.next_send = now + KEEPALIVE_INTERVAL;
                self.stats.keepalives += 1;
                Control::Keepalive {
                    session: self.session,
                }
            }
            _ => {
                self.next_send = now + SUBSCRIBE_RETRY;
                self.stats.subscribes += 1;
                Control::Subscribe {
                    session: self.session,
                    mode: self.mode,
                    token: self.token,
                    filters: self.filters.clone(),
                }
            }
        };
        Some(wire::emit(buf, &c))
    }

    /// Ends the subscription: the UNSUBSCRIBE to send (into `buf`), if the hub held it.
    pub fn unsubscribe(&mut self, buf: &mut [u8]) -> Option<usize> {
        let held = self.state == State::Held;
        self.state = State::Closed;
        held.then(|| {
            wire::emit(
                buf,
                &Control::Unsubscribe {
                    session: self.session,
                },
            )
        })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }
}
