//! The yardstick of bench/nats.sh: the same frames published directly with the NATS client
//! (async-nats), no pixgram in between, so the figures show NATS's own ceiling on this machine.
//!
//! `cargo run --release -p pixgram --features nats --example nats_publish -- URL SUBJECT FILE COUNT [jetstream]`
//! publishes FILE's bytes COUNT times on SUBJECT, with a `Pixgram-Meta` header like the one
//! `recv --publish` adds, then flushes; it prints `published N frames, X MB in T s: F frames/s,
//! M MB/s`. With `jetstream`, every publish's JetStream acknowledgement is awaited, up to
//! [`ACKS_AWAITED`] at once (the oldest awaited when that many are), as `recv --publish
//! --jetstream` does with its default `--nats-queue` (a stream must capture SUBJECT).

use std::collections::VecDeque;
use std::time::Instant;

use async_nats::HeaderMap;
use bytes::Bytes;

/// JetStream acknowledgements awaited at once.
const ACKS_AWAITED: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, subject, file, count, jetstream) = match args.as_slice() {
        [u, s, f, c] => (u, s, f, c, false),
        [u, s, f, c, j] if j == "jetstream" => (u, s, f, c, true),
        _ => return Err("usage: nats_publish URL SUBJECT FILE COUNT [jetstream]".into()),
    };
    let payload = Bytes::from(std::fs::read(file)?);
    let count: u64 = count.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = async_nats::connect(url.as_str()).await?;
        let js = async_nats::jetstream::new(client.clone());
        let start = Instant::now();
        let mut acks = VecDeque::with_capacity(ACKS_AWAITED);
        for n in 0..count {
            let mut headers = HeaderMap::new();
            let meta = format!("{{\"frame\":{n},\"name\":\"direct-{n:06}.jpg\"}}");
            headers.insert("Pixgram-Meta", meta.as_str());
            if jetstream {
                if acks.len() == ACKS_AWAITED {
                    if let Some(ack) = acks.pop_front() {
                        ack.await?;
                    }
                }
                acks.push_back(
                    js.publish_with_headers(subject.clone(), headers, payload.clone())
                        .await?,
                );
            } else {
                client
                    .publish_with_headers(subject.clone(), headers, payload.clone())
                    .await?;
            }
        }
        for ack in acks {
            ack.await?;
        }
        client.flush().await?;
        let secs = start.elapsed().as_secs_f64();
        let mb = (payload.len() as u64 * count) as f64 / 1e6;
        println!(
            "published {count} frames, {mb:.2} MB in {secs:.2} s: {:.1} frames/s, {:.1} MB/s",
            count as f64 / secs,
            mb / secs
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
