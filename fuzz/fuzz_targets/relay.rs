//! The impairing relay of `pixgram impair` (`pixgram_netem::Relay`), reachable from the
//! network, fed arbitrary datagrams from arbitrary clients and from upstream, with an
//! arbitrary impairment and time steps: never panics, keeps at most `max_clients` flows, never
//! routes a datagram to a flow that has ended or to an address that sent nothing, never sends
//! more than two copies' worth of what it got, and releases everything it holds in the end.
#![no_main]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pixgram_netem::{BurstLoss, ImpairConfig, Relay, RelayConfig, Route};

fuzz_target!(|data: &[u8]| {
    // Header: [loss %, delay ms, jitter ms, duplicate %, corrupt %, truncate %, rate, clients].
    if data.len() < 8 {
        return;
    }
    let (head, mut rest) = data.split_at(8);
    let pct = |b: u8| f64::from(b % 101) / 100.0;
    let impairment = ImpairConfig {
        loss: pct(head[0]) / 2.0,
        burst: (head[0] & 0x80 != 0).then_some(BurstLoss {
            enter: 0.1,
            leave: 0.5,
            loss_in_bad: 0.9,
        }),
        delay: Duration::from_millis(u64::from(head[1])),
        jitter: Duration::from_millis(u64::from(head[2] % 50)),
        reorder: pct(head[2]) / 4.0,
        reorder_delay: Duration::from_millis(7),
        duplicate: pct(head[3]),
        corrupt: pct(head[4]),
        truncate: pct(head[5]),
        // 0: unlimited; else 1..255 kB/s behind a 4 kB queue.
        rate: (head[6] != 0).then_some(u64::from(head[6]) * 1000),
        queue_bytes: 4096,
        // A tbf-like bucket of 0-7 kB when the top bits say so.
        bucket_bytes: u64::from(head[6] >> 5) * 1024,
        mtu: (head[6] & 1 == 1).then_some(600),
    };
    let max_clients = usize::from(head[7] % 6);
    let max_held_bytes = 16 << 10;
    let mut relay = Relay::new(RelayConfig {
        forward: impairment.clone(),
        back: impairment,
        seed: u64::from(head[0]) << 8 | u64::from(head[7]),
        max_clients,
        flow_idle_timeout: Duration::from_millis(500),
        max_held_bytes,
    });
    let mut now = Duration::ZERO;
    let mut t = Tally::default();
    // Records: [who, time step (ms), length hi, length lo, bytes...]; bit 7 of `who`: a reply
    // from upstream on flow `who % 8`, else a datagram from client port `who % 16`.
    while rest.len() >= 4 {
        let who = rest[0];
        now += Duration::from_millis(u64::from(rest[1]));
        let len = (usize::from(rest[2] & 0x0F) << 8 | usize::from(rest[3])).min(rest.len() - 4);
        let datagram = &rest[4..4 + len];
        rest = &rest[4 + len..];
        t.bytes_in += len as u64;
        t.longest = t.longest.max(len);
        if who & 0x80 != 0 {
            relay.from_upstream(now, pixgram_netem::FlowId(usize::from(who % 8)), datagram);
        } else {
            let client = SocketAddr::from(([10, 0, 0, 1], 4000 + u16::from(who % 16)));
            t.clients.insert(client);
            relay.from_client(now, client, datagram);
        }
        if who & 0x40 != 0 {
            relay.handle_timeout(now);
        }
        assert!(
            relay.open_flows() <= max_clients,
            "{} flows",
            relay.open_flows()
        );
        while relay.poll_closed().is_some() {}
        t.drain(&mut relay, now);
    }
    // Long after: everything held has been released, sent or dropped.
    now += Duration::from_secs(3600);
    t.drain(&mut relay, now);
    assert_eq!(relay.poll_timeout(), None, "datagrams held forever");
    let s = relay.stats();
    assert!(s.flows_opened as usize >= relay.open_flows());
});

/// What went in and came out.
#[derive(Default)]
struct Tally {
    clients: HashSet<SocketAddr>,
    bytes_in: u64,
    bytes_out: u64,
    longest: usize,
}

impl Tally {
    /// Takes every datagram due at `now`, checking where it goes.
    fn drain(&mut self, relay: &mut Relay, now: Duration) {
        let mut buf = vec![0u8; 65_536];
        while let Some(t) = relay.poll_transmit(now, &mut buf) {
            assert!(t.len <= self.longest, "a datagram grew");
            self.bytes_out += t.len as u64;
            match t.destination {
                Route::Upstream(flow) => {
                    assert!(relay.client(flow).is_some(), "sent for ended {flow:?}")
                }
                Route::Client(addr) => assert!(self.clients.contains(&addr), "to a stranger"),
            }
        }
        let (out, got) = (self.bytes_out, self.bytes_in);
        assert!(out <= 2 * got, "{out} bytes out for {got} in");
    }
}
