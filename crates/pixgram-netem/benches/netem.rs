//! What the network model costs per datagram, so the simulator tests and `pixgram impair` are
//! known not to be limited by it: 1,000 datagrams of 1,200 bytes per iteration through
//! `Impairment::apply` into a `DelayLine` and out again (`impairment`), and through the
//! `Relay` state machine from one client to its flow (`relay`), each with a perfect link and
//! with a bad one (5% loss, bursts, 20 ms + 5 ms jitter, 1% reordering, duplication and
//! corruption, 100 Mbit/s behind a 50 ms queue).
//!
//! `cargo bench -p pixgram-netem --bench netem`

use std::net::SocketAddr;
use std::time::Duration;

use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use pixgram_netem::{BurstLoss, DelayLine, ImpairConfig, Impairment, Relay, RelayConfig};

const DATAGRAM: usize = 1200;
const RUN: usize = 1000;

fn main() {
    divan::main();
}

fn bad() -> ImpairConfig {
    ImpairConfig {
        loss: 0.05,
        burst: Some(BurstLoss {
            enter: 0.01,
            leave: 0.3,
            loss_in_bad: 0.5,
        }),
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        reorder: 0.01,
        reorder_delay: Duration::from_millis(10),
        duplicate: 0.01,
        corrupt: 0.01,
        ..ImpairConfig::bottleneck(12_500_000, Duration::from_millis(50))
    }
}

fn config(bad_link: bool) -> ImpairConfig {
    if bad_link {
        bad()
    } else {
        ImpairConfig::default()
    }
}

/// Times `per_datagram` over [`RUN`] datagrams, 100 µs apart.
fn run(bencher: Bencher, mut per_datagram: impl FnMut(Duration, &[u8])) {
    let datagram = vec![0x5Au8; DATAGRAM];
    let mut now = Duration::ZERO;
    bencher
        .counter(ItemsCount::new(RUN))
        .counter(BytesCount::new(RUN * DATAGRAM))
        .bench_local(|| {
            for _ in 0..RUN {
                now += Duration::from_micros(100);
                per_datagram(now, &datagram);
            }
        });
}

#[divan::bench(args = [false, true])]
fn impairment(bencher: Bencher, bad_link: bool) {
    let mut link = Impairment::new(config(bad_link), 1);
    let mut line = DelayLine::new();
    let mut out = Vec::new();
    run(bencher, |now, datagram| {
        link.apply(now, datagram, &mut out);
        for (at, bytes) in out.drain(..) {
            line.push(at, bytes);
        }
        while let Some(d) = line.pop_due(now) {
            divan::black_box(d);
        }
    });
}

#[divan::bench(args = [false, true])]
fn relay(bencher: Bencher, bad_link: bool) {
    let mut relay = Relay::new(RelayConfig {
        forward: config(bad_link),
        ..RelayConfig::default()
    });
    let client = SocketAddr::from(([127, 0, 0, 1], 5000));
    let mut buf = vec![0; 65_536];
    run(bencher, |now, datagram| {
        relay.from_client(now, client, datagram);
        while let Some(d) = relay.poll_transmit(now, &mut buf) {
            divan::black_box(d);
        }
    });
}
