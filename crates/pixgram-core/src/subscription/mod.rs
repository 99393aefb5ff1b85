//! Subscriptions to a hub (docs/PROTOCOL.md §10): a subscriber asks a hub for the frames it
//! receives; the hub proves the subscriber's address with a stateless token before it keeps
//! anything or sends more than it was sent, then sends frames with an ordinary [`crate::Sender`]
//! of its own towards that address, for as long as KEEPALIVEs come.
//!
//! - [`wire`]: the six datagrams (types 9-14) and [`wire::is_subscription`], the test a driver
//!   makes to set them apart from the protocol's own.
//! - [`hub`]: [`SubscriptionTable`], the hub's state machine (tokens, places, keepalive deadlines).
//! - [`client`]: [`SubscriptionClient`], the subscriber's.

pub mod client;
pub mod hub;
pub mod wire;

pub use client::{ClientEvent, SubscriptionClient};
pub use hub::{EndReason, HubConfig, HubEvent, Subscription, SubscriptionStats, SubscriptionTable};
pub use wire::{is_subscription, Mode};

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::wire::{self, Control, MAX_CONTROL_LEN};
    use super::*;
    use crate::ids::SessionId;
    use crate::time::Timestamp;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn table(max: usize) -> SubscriptionTable {
        SubscriptionTable::new(HubConfig {
            max_subscribers: max,
            secret: [9; 32],
            ..HubConfig::default()
        })
    }

    /// Runs client and hub against each other (no loss) at `now` until both are quiet;
    /// asserts that no reply to an address is larger than the datagram it answers while the
    /// address is unvalidated. Returns the datagrams each way.
    fn exchange(
        now: Timestamp,
        client: &mut SubscriptionClient,
        at: SocketAddr,
        hub: &mut SubscriptionTable,
    ) -> (usize, usize) {
        let (mut up, mut down) = (0, 0);
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let mut reply = [0u8; MAX_CONTROL_LEN];
        client.handle_timeout(now);
        for _ in 0..10 {
            let Some(n) = client.poll_transmit(now, &mut buf) else {
                break;
            };
            up += 1;
            let validated = hub.get(at).is_some();
            hub.handle(now, at, &buf[..n]);
            while let Some(t) = hub.poll_transmit(&mut reply) {
                assert_eq!(t.destination, at);
                if !validated && hub.get(at).is_none() {
                    assert!(t.len <= n, "amplification: {} answered with {}", n, t.len);
                }
                down += 1;
                client.handle(now, client.hub(), &reply[..t.len]);
            }
        }
        (up, down)
    }

    #[test]
    fn a_subscriber_is_held_after_one_round_trip_of_proof_then_kept_alive_then_expires() {
        let t0 = Timestamp::from_millis(1_000);
        let mut hub = table(4);
        let mut c = SubscriptionClient::new(
            t0,
            addr(9000),
            SessionId(5),
            Mode::Latest,
            vec!["cam".into()],
        );
        assert_eq!(exchange(t0, &mut c, addr(1), &mut hub), (2, 2));
        assert!(c.is_held());
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Subscribed { renewed: false })
        );
        match hub.poll_event() {
            Some(HubEvent::Subscribed {
                addr: a,
                subscription,
            }) => {
                assert_eq!(a, addr(1));
                assert_eq!(subscription.mode, Mode::Latest);
                assert!(subscription.wants("cam-1") && !subscription.wants("other"));
            }
            e => panic!("{e:?}"),
        }
        // Keepalives every second keep it for a minute.
        let mut now = t0;
        for _ in 0..60 {
            now = now + Duration::from_secs(1);
            hub.handle_timeout(now);
            exchange(now, &mut c, addr(1), &mut hub);
        }
        assert!(hub.get(addr(1)).is_some());
        assert!(hub.stats().keepalives >= 59, "{:?}", hub.stats());
        assert_eq!(hub.poll_event(), None);
        // Silence: expired at the keepalive timeout, not before.
        let deadline = hub.poll_timeout().unwrap();
        assert_eq!(deadline, now + HubConfig::default().keepalive_timeout);
        hub.handle_timeout(Timestamp::from_micros(deadline.as_micros() - 1_000));
        assert!(hub.get(addr(1)).is_some());
        hub.handle_timeout(deadline);
        assert!(matches!(
            hub.poll_event(),
            Some(HubEvent::Ended {
                reason: EndReason::Expired,
                ..
            })
        ));
        assert_eq!(hub.stats().expired, 1);
        // Its next keepalive draws a token, and it is held again within that round trip.
        let later = deadline + Duration::from_secs(1);
        exchange(later, &mut c, addr(1), &mut hub);
        assert!(hub.get(addr(1)).is_some());
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Subscribed { renewed: true })
        );
    }

    #[test]
    fn spoofed_or_unanswering_addresses_get_one_small_token_and_no_state() {
        let now = Timestamp::from_millis(10);
        let mut hub = table(64);
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let mut out = [0u8; MAX_CONTROL_LEN];
        let (mut sent_in, mut sent_out) = (0, 0);
        for port in 1..=500u16 {
            let n = wire::emit(
                &mut buf,
                &Control::Subscribe {
                    session: SessionId(u32::from(port)),
                    mode: Mode::Reliable,
                    token: None,
                    filters: vec![],
                },
            );
            sent_in += n;
            hub.handle(now, addr(port), &buf[..n]);
            while let Some(t) = hub.poll_transmit(&mut out) {
                sent_out += t.len;
            }
            // A forged token, and a keepalive from a stranger.
            let forged = wire::emit(
                &mut buf,
                &Control::Subscribe {
                    session: SessionId(1),
                    mode: Mode::Reliable,
                    token: Some([port as u8; 32]),
                    filters: vec![],
                },
            );
            hub.handle(now, addr(port), &buf[..forged]);
            let k = wire::emit(
                &mut buf,
                &Control::Keepalive {
                    session: SessionId(2),
                },
            );
            hub.handle(now, addr(port), &buf[..k]);
            sent_in += forged + k;
            while let Some(t) = hub.poll_transmit(&mut out) {
                sent_out += t.len;
            }
        }
        assert_eq!(hub.subscribers().count(), 0);
        assert_eq!(hub.poll_event(), None);
        assert!(sent_out <= sent_in, "{sent_out} bytes out for {sent_in} in");
        assert_eq!(hub.stats().tokens_invalid, 500);
        // The budget: a tenth of a second's worth at once.
        assert_eq!(hub.stats().tokens_sent, 100);
        assert_eq!(hub.stats().tokens_limited, 1_400);
        // A BEHIND goes only to a validated address.
        hub.behind(addr(1), 3);
        assert!(hub.poll_transmit(&mut out).is_none());
    }

    #[test]
    fn places_are_limited_and_unsubscribe_frees_one_at_once() {
        let now = Timestamp::from_millis(10);
        let mut hub = table(2);
        let mut clients: Vec<_> = (0..3)
            .map(|i| SubscriptionClient::new(now, addr(9000), SessionId(i), Mode::Reliable, vec![]))
            .collect();
        for (i, c) in clients.iter_mut().enumerate() {
            exchange(now, c, addr(100 + i as u16), &mut hub);
        }
        assert!(clients[0].is_held() && clients[1].is_held());
        assert_eq!(clients[2].poll_event(), Some(ClientEvent::Full));
        assert_eq!(hub.stats().over_limit, 1);
        let mut buf = [0u8; MAX_CONTROL_LEN];
        // An UNSUBSCRIBE under another id is refused; its own ends it.
        let wrong = wire::emit(
            &mut buf,
            &Control::Unsubscribe {
                session: SessionId(77),
            },
        );
        hub.handle(now, addr(100), &buf[..wrong]);
        assert!(hub.get(addr(100)).is_some());
        let n = clients[0].unsubscribe(&mut buf).unwrap();
        hub.handle(now, addr(100), &buf[..n]);
        assert!(hub.get(addr(100)).is_none());
        assert_eq!(hub.stats().unsubscribed, 1);
        // A restarted subscriber at the same address replaces its old subscription.
        let mut again =
            SubscriptionClient::new(now, addr(9000), SessionId(42), Mode::Latest, vec![]);
        exchange(now, &mut again, addr(101), &mut hub);
        assert!(again.is_held());
        assert_eq!(hub.get(addr(101)).unwrap().session, SessionId(42));
        assert_eq!(hub.stats().replaced, 1);
    }

    #[test]
    fn the_client_retries_says_once_that_no_hub_answers_and_takes_behind_notices() {
        let t0 = Timestamp::from_millis(0);
        let mut c = SubscriptionClient::new(t0, addr(9000), SessionId(1), Mode::Reliable, vec![]);
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let mut sent = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(10) {
            c.handle_timeout(now);
            while c.poll_transmit(now, &mut buf).is_some() {
                sent += 1;
            }
            now = c
                .poll_timeout()
                .unwrap()
                .max(now + Duration::from_millis(1));
        }
        assert_eq!(sent, 40, "every 250 ms for 10 s");
        assert_eq!(c.poll_event(), Some(ClientEvent::NoAnswer));
        assert_eq!(c.poll_event(), None);
        // Datagrams from anyone but the hub are ignored.
        let n = wire::emit(
            &mut buf,
            &Control::Behind {
                session: SessionId(1),
                skipped: 4,
            },
        );
        c.handle(now, addr(1234), &buf[..n]);
        assert_eq!(c.poll_event(), None);
        c.handle(now, addr(9000), &buf[..n]);
        assert_eq!(c.poll_event(), Some(ClientEvent::Behind { skipped: 4 }));
        assert_eq!(c.stats().skipped, 4);
    }
}
