//! The driver's batched UDP I/O on loopback, one thread: 54 datagrams of 1,200 bytes
//! (pixgram's default size, one GSO send's worth) sent and then read back, every one of them,
//! per iteration. `batched`: [`BatchSocket::send_batch`] (one GSO `sendmsg`) and
//! [`BatchSocket::recv`] (GRO + `recvmmsg` into an [`RxPool`]); `one_by_one`: one `send_to`
//! and one `recv_from` per datagram, as the drivers did before. Bytes/s counts what arrived;
//! each bench prints its datagrams per system call at the end.
//!
//! `cargo bench -p pixgram --bench batch`

use std::net::UdpSocket;
use std::time::Duration;

use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use pixgram::batch::{BatchSocket, RxPool, TxBatch, RX_SLOTS};

const DATAGRAM: usize = 1200;
/// One GSO send's worth: 54 x 1,200 bytes is the most under 64 KB.
const RUN: usize = 54;

fn main() {
    divan::main();
}

fn pair() -> (UdpSocket, UdpSocket) {
    let (rx, _) = pixgram::socket::bind("127.0.0.1:0".parse().unwrap(), 8 << 20, 1 << 20).unwrap();
    let (tx, _) = pixgram::socket::bind("127.0.0.1:0".parse().unwrap(), 1 << 20, 8 << 20).unwrap();
    (rx, tx)
}

#[divan::bench(sample_count = 200)]
fn batched(bencher: Bencher) {
    let (rx, tx) = pair();
    let to = rx.local_addr().unwrap();
    let (mut rx, mut tx) = (BatchSocket::new(rx).unwrap(), BatchSocket::new(tx).unwrap());
    let mut batch = TxBatch::for_gso(DATAGRAM, 1);
    while batch.has_room() {
        batch.slot().fill(7);
        batch.commit(DATAGRAM);
    }
    assert_eq!(batch.len(), RUN);
    let mut pool = RxPool::new(RX_SLOTS);
    bencher
        .counter(BytesCount::new(RUN * DATAGRAM))
        .counter(ItemsCount::new(RUN))
        .bench_local(|| {
            tx.send_batch(to, &batch, Duration::from_secs(1), |_| Ok(()))
                .unwrap();
            let mut got = 0;
            while got < RUN {
                if rx.recv(&mut pool).unwrap() == 0 {
                    rx.wait(false, Some(Duration::from_secs(1))).unwrap();
                    continue;
                }
                pool.datagrams(|_, d| {
                    assert_eq!(d.len(), DATAGRAM);
                    got += 1;
                });
            }
        });
    let (s, r) = (tx.stats(), rx.stats());
    eprintln!(
        "batched: {:.1} datagrams per send call, {:.1} per receive call",
        s.datagrams_sent as f64 / s.send_calls.max(1) as f64,
        r.datagrams_received as f64 / r.recv_calls.max(1) as f64
    );
}

#[divan::bench(sample_count = 200)]
fn one_by_one(bencher: Bencher) {
    let (rx, tx) = pair();
    let to = rx.local_addr().unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let datagram = [7u8; DATAGRAM];
    let mut buf = vec![0u8; 65_536];
    bencher
        .counter(BytesCount::new(RUN * DATAGRAM))
        .counter(ItemsCount::new(RUN))
        .bench_local(|| {
            for _ in 0..RUN {
                tx.send_to(&datagram, to).unwrap();
            }
            for _ in 0..RUN {
                assert_eq!(rx.recv_from(&mut buf).unwrap().0, DATAGRAM);
            }
        });
    eprintln!("one_by_one: 1 datagram per send call, 1 per receive call");
}
