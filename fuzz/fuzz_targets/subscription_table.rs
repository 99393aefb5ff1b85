//! The hub's subscription table on arbitrary datagrams from a handful of addresses, time
//! moving: never panics, and never sends an address it has not validated more bytes than that
//! address sent it (docs/PROTOCOL.md §10.3); the number of subscribers stays within its limit.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pixgram_core::subscription::wire::MAX_CONTROL_LEN;
use pixgram_core::subscription::{HubConfig, SubscriptionTable};
use pixgram_core::Timestamp;

fuzz_target!(|data: &[u8]| {
    let mut table = SubscriptionTable::new(HubConfig {
        max_subscribers: 2,
        secret: [7; 32],
        ..HubConfig::default()
    });
    let mut now = Timestamp::from_millis(1_000);
    let mut sent_in: HashMap<SocketAddr, usize> = HashMap::new();
    let mut sent_out: HashMap<SocketAddr, usize> = HashMap::new();
    let mut buf = vec![0u8; MAX_CONTROL_LEN];
    // Each record: 1 byte address, 1 byte time step (ms x 16), 2 bytes length, then the bytes.
    let mut rest = data;
    while rest.len() >= 4 {
        let from = SocketAddr::from(([127, 0, 0, 1], 1000 + u16::from(rest[0] % 4)));
        now = now + Duration::from_millis(u64::from(rest[1]) * 16);
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) % 1_100).min(rest.len() - 4);
        let datagram = &rest[4..4 + len];
        rest = &rest[4 + len..];
        let validated = table.get(from).is_some();
        table.handle(now, from, datagram);
        table.handle_timeout(now);
        *sent_in.entry(from).or_default() += datagram.len();
        while let Some(t) = table.poll_transmit(&mut buf) {
            if !validated && table.get(t.destination).is_none() {
                let out = sent_out.entry(t.destination).or_default();
                *out += t.len;
                assert!(
                    *out <= sent_in[&t.destination],
                    "amplification towards {}",
                    t.destination
                );
            }
        }
        while table.poll_event().is_some() {}
        assert!(table.subscribers().count() <= 2);
    }
});
