//! Deterministic simulated-network tests of the sans-IO core: senders and a receiver joined by a
//! seeded impaired network (see `harness.rs`), many seeds per scenario. Every run checks the
//! invariants of `Sim::check_invariants` (byte-identical delivery, at most once, one verdict per
//! frame, every frame that reached the receiver accounted for, amplification, memory).

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use harness::{addr, base_header, bytes, plan, Limits, Mix, Planned, Sim};
use pixgram_core::chunking::ChunkLayout;
use pixgram_core::wire::{self, DataFlags, DataHeader};
use pixgram_core::Transmit;
use pixgram_core::{
    ChunkIndex, FrameId, LossReason, OutgoingFrame, PayloadKind, Receiver, ReceiverConfig,
    ReceiverEvent, ReceiverStats, SendFailure, SenderConfig, SenderEvent, SessionId, StreamId,
    Timestamp,
};
use pixgram_netem::{ImpairConfig, SimRng};

const SEEDS: u64 = 24;

/// `0..n`, or only the seed in `PIXGRAM_SIM_SEED` (to replay one failing run with
/// `PIXGRAM_SIM_TRACE=1`).
fn seeds(n: u64) -> Vec<u64> {
    match std::env::var("PIXGRAM_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("PIXGRAM_SIM_SEED is a number")],
        Err(_) => (0..n).collect(),
    }
}

/// Datagram size and window picked by the seed: small, default and jumbo datagrams;
/// stop-and-wait up to 8 frames in flight.
fn sender_config(rng: &mut SimRng) -> SenderConfig {
    let sizes = [wire::MIN_DATAGRAM_SIZE, 1200, 1472, 8972];
    SenderConfig {
        datagram_size: sizes[rng.below(sizes.len() as u64) as usize],
        window: 1 + rng.below(8) as usize,
        ..SenderConfig::default()
    }
}

/// One sender, `n` frames of `mix`, through `up` and `down`; invariants checked.
fn run_one(name: &str, seed: u64, up: ImpairConfig, down: ImpairConfig, n: usize, mix: Mix) -> Sim {
    let mut rng = SimRng::new(seed);
    let config = sender_config(&mut rng);
    let frames = plan(
        &mut rng,
        n,
        config.datagram_size,
        mix,
        Duration::from_micros(500),
    );
    let mut sim = Sim::new(name, seed, up, down, ReceiverConfig::default());
    sim.add_peer(config, SessionId(rng.next_u64() as u32), frames);
    sim.peers[0].close_when_done = rng.chance(0.5);
    sim.run();
    sim.check_invariants();
    sim
}

fn link(delay_ms: u64) -> ImpairConfig {
    ImpairConfig {
        delay: Duration::from_millis(delay_ms),
        ..ImpairConfig::default()
    }
}

fn parse_errors(s: &ReceiverStats) -> u64 {
    s.truncated + s.bad_magic + s.bad_version + s.unknown_type + s.bad_checksum + s.bad_header
}

#[test]
fn perfect_link_delivers_every_frame_byte_identical() {
    for seed in seeds(SEEDS) {
        let sim = run_one("perfect", seed, link(1), link(1), 40, Mix::ALL);
        let p = &sim.peers[0];
        let (sent, acked, delivered) = sim.totals();
        assert_eq!(
            (acked, delivered),
            (sent, sent),
            "{} not all delivered",
            sim.label
        );
        for ((stream, frame), v) in &p.verdicts {
            assert!(
                matches!(v[0].event, SenderEvent::Acked { .. }),
                "{} {stream:?}/{frame:?}: {:?}",
                sim.label,
                v[0].event
            );
        }
        // Messages arrive in submission order, none missing: ids 0, 1, 2, ...
        let messages: Vec<u64> = sim
            .delivered
            .iter()
            .filter(|f| f.kind == PayloadKind::Message)
            .map(|f| f.frame.0)
            .collect();
        let expected: Vec<u64> = (0..messages.len() as u64).collect();
        assert_eq!(messages, expected, "{} message order", sim.label);
        let sent_messages = p
            .sent
            .values()
            .filter(|(f, _)| f.kind == PayloadKind::Message)
            .count();
        assert_eq!(messages.len(), sent_messages, "{}", sim.label);
        assert!(
            sim.rx.values().all(|r| r.lost.is_empty()),
            "{} losses",
            sim.label
        );
        let st = sim.receiver.stats();
        assert_eq!(parse_errors(st), 0, "{}", sim.label);
        assert_eq!(
            st.duplicate_chunks + st.conflicting_chunks + st.stale_chunks,
            0
        );
        // Nothing was asked for again; the receiver sent progress reports only, and the
        // sender got each one.
        assert_eq!(
            st.nacks_sent + st.chunks_nacked,
            0,
            "{} NACK on a perfect link",
            sim.label
        );
        assert_eq!(
            st.progress_reports_sent,
            p.sender.stats().progress_reports_received,
            "{}",
            sim.label
        );
        assert_eq!(p.sender.stats().chunks_retransmitted, 0, "{}", sim.label);
        // Both endings of a session happen across the seeds: CLOSE or idle.
        assert_eq!(sim.sessions_started.len(), 1, "{}", sim.label);
        assert_eq!(sim.sessions_ended.len(), 1, "{}", sim.label);
    }
}

#[test]
fn empty_and_boundary_sizes_round_trip_exactly() {
    // Every size around chunk boundaries, for each datagram size, metadata or not.
    for (k, &size) in [wire::MIN_DATAGRAM_SIZE, 1200, 8972].iter().enumerate() {
        let cap = size - wire::DATA_OVERHEAD;
        let mut rng = SimRng::new(k as u64);
        let mut frames = Vec::new();
        for body in [
            0,
            1,
            2,
            cap - 1,
            cap,
            cap + 1,
            2 * cap - 1,
            2 * cap,
            2 * cap + 1,
            7 * cap,
        ] {
            frames.push(OutgoingFrame::frame(StreamId(1), bytes(&mut rng, body)));
            if body >= 4 {
                let meta = bytes(&mut rng, (body - 4) / 2);
                let payload = bytes(&mut rng, body - 4 - meta.len());
                frames.push(OutgoingFrame::frame(StreamId(4), payload).with_metadata(meta));
            }
            frames.push(OutgoingFrame::message(StreamId(0), bytes(&mut rng, body)));
        }
        let planned = frames
            .into_iter()
            .map(|frame| Planned {
                at: Timestamp::ZERO,
                frame,
            })
            .collect();
        let mut sim = Sim::new(
            "boundaries",
            k as u64,
            link(0),
            link(0),
            ReceiverConfig::default(),
        );
        let config = SenderConfig {
            datagram_size: size,
            window: 3,
            ..SenderConfig::default()
        };
        sim.add_peer(config, SessionId(9), planned);
        sim.run();
        sim.check_invariants();
        let (sent, acked, delivered) = sim.totals();
        assert_eq!((acked, delivered), (sent, sent), "{}", sim.label);
    }
}

fn lossy(loss: f64) -> ImpairConfig {
    ImpairConfig {
        loss,
        delay: Duration::from_millis(2),
        jitter: Duration::from_micros(300),
        ..ImpairConfig::default()
    }
}

fn loss_scenario(loss: f64) {
    let mut delivered_total = 0;
    let mut sent_total = 0;
    for seed in seeds(SEEDS) {
        let name = format!("loss {}%", loss * 100.0);
        let sim = run_one(&name, seed, lossy(loss), lossy(loss), 40, Mix::ALL);
        let (sent, _, delivered) = sim.totals();
        sent_total += sent;
        delivered_total += delivered;
        // Reliable frames and messages get through whatever the loss; unreliable ones may
        // not: that is the contract. (The sender may still report the receiver gone: at 20%
        // loss two unreliable frames in a row can vanish whole, and the receiver cannot
        // answer frames it never saw; the harness checks that PeerGone follows peer_timeout
        // of silence.)
        let p = &sim.peers[0];
        for ((stream, frame), (f, _)) in &p.sent {
            if f.reliable && p.peer_gone.is_empty() {
                let key = (p.addr, *stream, *frame);
                assert_eq!(
                    sim.rx[&key].delivered, 1,
                    "{} reliable {key:?} lost",
                    sim.label
                );
            }
        }
        if loss <= 0.05 {
            assert!(
                p.peer_gone.is_empty(),
                "{} PeerGone at {loss} loss",
                sim.label
            );
        }
        if loss > 0.0 {
            assert!(sim.up.stats().dropped_random > 0 || sim.up.stats().offered < 50);
        }
    }
    assert!(delivered_total > 0 && delivered_total <= sent_total);
}

#[test]
fn loss_1_percent() {
    loss_scenario(0.01);
}

#[test]
fn loss_5_percent() {
    loss_scenario(0.05);
}

#[test]
fn loss_20_percent() {
    loss_scenario(0.20);
}

#[test]
fn burst_loss() {
    for seed in seeds(SEEDS) {
        let burst = ImpairConfig {
            burst: Some(pixgram_netem::BurstLoss {
                enter: 0.02,
                leave: 0.3,
                loss_in_bad: 0.9,
            }),
            delay: Duration::from_millis(3),
            ..ImpairConfig::default()
        };
        run_one("burst loss", seed, burst.clone(), burst, 40, Mix::ALL);
    }
}

#[test]
fn reordering_and_jitter() {
    for seed in seeds(SEEDS) {
        let c = ImpairConfig {
            delay: Duration::from_millis(2),
            jitter: Duration::from_millis(4),
            reorder: 0.1,
            reorder_delay: Duration::from_millis(15),
            ..ImpairConfig::default()
        };
        let sim = run_one("reorder", seed, c.clone(), c, 40, Mix::ALL);
        // Nothing is lost by reordering alone.
        let (sent, acked, delivered) = sim.totals();
        assert_eq!((acked, delivered), (sent, sent), "{}", sim.label);
    }
}

#[test]
fn duplication() {
    for seed in seeds(SEEDS) {
        let c = ImpairConfig {
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(2),
            duplicate: 0.2,
            ..ImpairConfig::default()
        };
        let sim = run_one("duplicate", seed, c.clone(), c, 40, Mix::ALL);
        let (sent, acked, delivered) = sim.totals();
        assert_eq!((acked, delivered), (sent, sent), "{}", sim.label);
        if sim.up.stats().duplicated > 0 {
            let st = sim.receiver.stats();
            assert!(st.duplicate_chunks + st.stale_chunks > 0, "{}", sim.label);
        }
    }
}

#[test]
fn corruption_and_truncation_are_counted_never_delivered() {
    for seed in seeds(SEEDS) {
        let c = ImpairConfig {
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
            corrupt: 0.05,
            truncate: 0.05,
            ..ImpairConfig::default()
        };
        let sim = run_one("corrupt", seed, c.clone(), c, 40, Mix::ALL);
        // Each spoiled copy is refused exactly once, under one of the parse counters; a copy
        // may be both truncated and corrupted.
        let up = sim.up.stats();
        let errors = parse_errors(sim.receiver.stats());
        assert!(
            errors >= up.corrupted.max(up.truncated) && errors <= up.corrupted + up.truncated,
            "{} {errors} parse errors for {} corrupted and {} truncated copies",
            sim.label,
            up.corrupted,
            up.truncated
        );
        let down = sim.down.stats();
        let ignored = sim.peers[0].sender.stats().ignored_datagrams;
        assert!(
            ignored >= down.corrupted.max(down.truncated)
                && ignored <= down.corrupted + down.truncated,
            "{} sender ignored {ignored} replies for {} corrupted and {} truncated",
            sim.label,
            down.corrupted,
            down.truncated
        );
    }
}

#[test]
fn everything_at_once() {
    for seed in seeds(SEEDS) {
        let c = ImpairConfig {
            loss: 0.03,
            delay: Duration::from_millis(2),
            jitter: Duration::from_millis(3),
            reorder: 0.05,
            reorder_delay: Duration::from_millis(8),
            duplicate: 0.05,
            corrupt: 0.02,
            truncate: 0.02,
            rate: Some(20_000_000),
            queue_bytes: 200_000,
            ..ImpairConfig::default()
        };
        run_one("everything", seed, c.clone(), c, 40, Mix::ALL);
    }
}

#[test]
fn ordered_streams_stay_in_order_under_loss_and_reordering() {
    let mix = Mix {
        images: false,
        ordered_frames: true,
        messages: true,
        reliable_frames: false,
        huge: false,
    };
    for seed in seeds(SEEDS) {
        let c = ImpairConfig {
            loss: 0.1,
            delay: Duration::from_millis(2),
            jitter: Duration::from_millis(5),
            reorder: 0.2,
            reorder_delay: Duration::from_millis(10),
            duplicate: 0.05,
            ..ImpairConfig::default()
        };
        // Strictly increasing ids per ordered stream is checked on every delivery.
        let sim = run_one("ordered", seed, c.clone(), c, 60, mix);
        // Messages are reliable: all of them, in order.
        let p = &sim.peers[0];
        let sent: Vec<FrameId> = p
            .sent
            .keys()
            .filter(|(s, _)| *s == StreamId::MESSAGES)
            .map(|(_, f)| *f)
            .collect();
        let got: Vec<FrameId> = sim
            .delivered
            .iter()
            .filter(|f| f.stream == StreamId::MESSAGES)
            .map(|f| f.frame)
            .collect();
        assert_eq!(got, sent, "{} messages", sim.label);
    }
}

/// Hostile traffic from `from`: garbage, valid-CRC headers declaring huge frames, conflicting
/// chunks reusing frame ids (its own and the honest senders' session and frame ids).
fn hostile_traffic(sim: &mut Sim, rng: &mut SimRng, from: SocketAddr, honest: &[SessionId]) {
    let max_len = sim.receiver.config().max_frame_len;
    let mut buf = vec![0u8; wire::MAX_DATAGRAM_SIZE];
    // The hostile address receives: its own sessions validate (those of the honest senders it
    // names from its address do not, and are answered with CHALLENGEs).
    let validator =
        pixgram_core::handshake::AddressValidator::new(sim.receiver.config().address_secret.0);
    for k in 0..3 {
        let session = SessionId(0xBAD0 + k);
        let token = validator.issue(Timestamp::ZERO, from, session);
        sim.inject(Timestamp::ZERO, from, support::hello(session, Some(token)));
    }
    for i in 0..3000u64 {
        let at = Timestamp::from_micros(rng.below(60_000));
        let kind = rng.below(6);
        let bytes_out: Vec<u8> = match kind {
            0 => {
                // Garbage, sometimes with a plausible start.
                let len = rng.below(1500) as usize;
                let mut g = bytes(rng, len);
                if len >= 4 && rng.chance(0.5) {
                    g[..3].copy_from_slice(b"PG\x01");
                }
                g
            }
            _ => {
                // A valid datagram: a frame of `len` bytes in chunks of `size`.
                let len = match rng.below(4) {
                    0 => max_len + 1 + rng.below(u64::from(u32::MAX)),
                    1 => max_len - rng.below(1000),
                    2 => rng.below(1 << 20),
                    _ => rng.below(4000),
                };
                let size = 1 + rng.below(1400);
                let count = len.div_ceil(size).max(1);
                let Some(layout) = u32::try_from(count)
                    .ok()
                    .and_then(|c| ChunkLayout::from_header(len, c))
                else {
                    continue;
                };
                let index = ChunkIndex(rng.below(u64::from(layout.count())) as u32);
                let chunk = layout.chunk_len(index).expect("index in range");
                let session = if rng.chance(0.5) {
                    honest[rng.below(honest.len() as u64) as usize]
                } else {
                    SessionId(0xBAD0 + (i % 3) as u32)
                };
                let header = DataHeader {
                    session,
                    stream: StreamId(rng.below(24) as u32),
                    flags: DataFlags::from_bits(rng.below(16) as u8).expect("known bits"),
                    frame: FrameId(if rng.chance(0.8) {
                        rng.below(16)
                    } else {
                        rng.next_u64()
                    }),
                    index,
                    count: layout.count(),
                    frame_len: len,
                    ..base_header()
                };
                let payload = bytes(rng, chunk);
                let n = wire::emit_data(&mut buf, &header, &payload);
                buf[..n].to_vec()
            }
        };
        sim.inject(at, from, bytes_out);
    }
}

#[test]
fn honest_senders_get_through_beside_a_hostile_one() {
    for seed in seeds(SEEDS / 2) {
        let mut rng = SimRng::new(1000 + seed);
        let receiver = ReceiverConfig {
            max_frame_len: 4 << 20,
            max_peer_bytes: 12 << 20,
            max_total_bytes: 48 << 20,
            ..ReceiverConfig::default()
        };
        let mut sim = Sim::new("hostile", seed, link(1), link(1), receiver);
        let mut sessions = Vec::new();
        for k in 0..3 {
            let config = sender_config(&mut rng);
            let frames = plan(
                &mut rng,
                20,
                config.datagram_size,
                Mix::ALL,
                Duration::from_millis(2),
            );
            let session = SessionId(100 + k);
            sessions.push(session);
            sim.add_peer(config, session, frames);
        }
        let hostile = addr(99);
        hostile_traffic(&mut sim, &mut rng, hostile, &sessions);
        sim.run();
        sim.check_invariants();
        let (sent, acked, delivered) = sim.totals();
        assert_eq!(
            (acked, delivered),
            (sent, sent),
            "{} honest frames lost",
            sim.label
        );
        let st = sim.receiver.stats();
        assert!(
            st.over_frame_limit > 0,
            "{} huge declarations not refused",
            sim.label
        );
        assert!(parse_errors(st) > 0, "{}", sim.label);
        assert!(sim.max_buffered <= sim.receiver.config().max_total_bytes);
        let out = sim.bytes_out.get(&hostile).copied().unwrap_or(0);
        assert!(out <= sim.bytes_in[&hostile], "{} amplification", sim.label);
    }
}

#[test]
fn several_senders_share_one_receiver_under_impairment() {
    for seed in seeds(SEEDS / 2) {
        let mut rng = SimRng::new(2000 + seed);
        let c = ImpairConfig {
            loss: 0.02,
            delay: Duration::from_millis(2),
            jitter: Duration::from_millis(2),
            duplicate: 0.02,
            corrupt: 0.01,
            ..ImpairConfig::default()
        };
        let mut sim = Sim::new(
            "several senders",
            seed,
            c.clone(),
            c,
            ReceiverConfig::default(),
        );
        for k in 0..4 {
            let config = sender_config(&mut rng);
            let frames = plan(
                &mut rng,
                15,
                config.datagram_size,
                Mix::ALL,
                Duration::from_millis(1),
            );
            sim.add_peer(config, SessionId(rng.next_u64() as u32 | k), frames);
            let last = sim.peers.len() - 1;
            sim.peers[last].close_when_done = rng.chance(0.5);
        }
        sim.run();
        sim.check_invariants();
    }
}

fn drain(rx: &mut Receiver, out: &mut HashMap<SocketAddr, u64>) -> Vec<ReceiverEvent> {
    let mut buf = vec![0u8; wire::MAX_DATAGRAM_SIZE];
    let mut n = 0;
    while let Some(Transmit {
        destination: dst,
        len,
    }) = rx.poll_transmit(&mut buf)
    {
        n += 1;
        assert!(n < 1_000_000, "poll_transmit never ends");
        *out.entry(dst).or_default() += len as u64;
    }
    std::iter::from_fn(|| rx.poll_event())
        .take(1_000_000)
        .collect()
}

/// First chunks of many large frames from `from` (and nothing more), through `rx`; checks
/// the budget `cap` after every datagram and the amplification bound.
#[allow(clippy::too_many_arguments)]
fn declare_frames(
    rx: &mut Receiver,
    rng: &mut SimRng,
    now: &mut Timestamp,
    from: SocketAddr,
    session: SessionId,
    reliable: bool,
    cap: u64,
    io: &mut (HashMap<SocketAddr, u64>, HashMap<SocketAddr, u64>),
) {
    let mut buf = vec![0u8; wire::MAX_DATAGRAM_SIZE];
    support::validate(rx, *now, from, session);
    *io.0.entry(from).or_default() += wire::MIN_HELLO_LEN as u64;
    for stream in 0..6u32 {
        // Stream 0: many small frames (the frames-in-flight limit binds); others: 1 MiB frames
        // (the byte budget binds). Flags are fixed per stream, as a real sender's are.
        let (len, frames) = if stream == 0 {
            (10_000u64, 12)
        } else {
            (1 << 20, 4)
        };
        let mut bits = [
            0,
            DataFlags::ORDERED,
            DataFlags::METADATA,
            DataFlags::MESSAGE,
        ][rng.below(4) as usize];
        if reliable {
            bits |= DataFlags::RELIABLE;
        }
        for f in 0..frames {
            let size = 1000;
            let layout = ChunkLayout::from_header(len, len.div_ceil(size) as u32).unwrap();
            // The last chunk: memory is charged for what arrives, and a chunk at the end of a
            // frame is charged everything before it (a first chunk alone costs a page).
            let last = ChunkIndex(layout.count() - 1);
            let header = DataHeader {
                session,
                stream: StreamId(stream),
                flags: DataFlags::from_bits(bits).unwrap(),
                frame: FrameId(f),
                index: last,
                count: layout.count(),
                frame_len: len,
                ..base_header()
            };
            let payload = bytes(rng, layout.chunk_len(last).unwrap());
            let n = wire::emit_data(&mut buf, &header, &payload);
            *now = *now + Duration::from_micros(100);
            *io.0.entry(from).or_default() += n as u64;
            rx.handle(*now, from, &buf[..n]);
            drain(rx, &mut io.1);
            let b = rx.buffered_bytes();
            assert!(b <= cap, "{b} bytes buffered, over {cap}");
            for (d, o) in &io.1 {
                assert!(*o <= io.0[d], "amplification towards {d}");
            }
        }
    }
}

/// Runs the receiver's timers up to `until`; returns the loss events.
fn run_timers(
    rx: &mut Receiver,
    now: &mut Timestamp,
    until: Timestamp,
    out: &mut HashMap<SocketAddr, u64>,
) -> Vec<ReceiverEvent> {
    let mut events = Vec::new();
    let mut sweeps = 0;
    while let Some(t) = rx.poll_timeout().filter(|&t| t <= until) {
        sweeps += 1;
        assert!(sweeps < 100_000, "receiver timers never settle");
        *now = t.max(*now);
        rx.handle_timeout(*now);
        events.extend(drain(rx, out));
    }
    events
}

#[test]
fn memory_stays_within_budget_and_is_released_after_frame_timeout() {
    for seed in seeds(8) {
        let mut rng = SimRng::new(seed);
        let config = ReceiverConfig {
            max_frame_len: 1 << 20,
            max_frames_in_flight: 8,
            max_peer_bytes: 3 << 20,
            max_total_bytes: 5 << 20,
            max_streams_per_peer: 8,
            ..ReceiverConfig::default()
        };
        let frame_timeout = config.frame_timeout;
        let (peer_cap, total_cap) = (config.max_peer_bytes, config.max_total_bytes);
        let mut rx = Receiver::new(config);
        let mut io = Default::default();
        let mut now = Timestamp::ZERO;
        // One sender: the peer budget binds. Then three more: the total budget binds.
        declare_frames(
            &mut rx,
            &mut rng,
            &mut now,
            addr(50),
            SessionId(8),
            false,
            peer_cap,
            &mut io,
        );
        assert!(rx.buffered_bytes() > 0);
        for a in 51..54 {
            let session = SessionId(a as u32);
            declare_frames(
                &mut rx,
                &mut rng,
                &mut now,
                addr(a),
                session,
                false,
                total_cap,
                &mut io,
            );
        }
        let st = rx.stats().clone();
        assert!(st.over_budget > 0, "seed {seed}: budget never hit");
        assert!(
            st.over_frames_in_flight > 0,
            "seed {seed}: frames-in-flight limit never hit"
        );
        assert_eq!(
            st.frames_rejected, st.over_budget,
            "seed {seed}: one REJECTED per refusal"
        );
        // frame_timeout after the last chunk (at the receiver's own sweep instants) all of it
        // is released, while the senders are still being served (not forgotten as idle).
        let last_chunk = now;
        let events = run_timers(
            &mut rx,
            &mut now,
            last_chunk + frame_timeout + Duration::from_millis(200),
            &mut io.1,
        );
        assert_eq!(
            rx.buffered_bytes(),
            0,
            "seed {seed}: memory not released after frame_timeout"
        );
        assert_eq!(
            rx.peer_count(),
            4,
            "seed {seed}: released by expiry, not by forgetting peers"
        );
        let expired: u64 = events
            .iter()
            .map(|e| match e {
                ReceiverEvent::Lost {
                    reason: LossReason::Expired,
                    count,
                    ..
                } => *count,
                _ => 0,
            })
            .sum();
        assert!(
            expired > 0 && expired == rx.stats().frames_expired,
            "seed {seed}"
        );
        let idle = now + rx.config().peer_idle_timeout + Duration::from_millis(200);
        run_timers(&mut rx, &mut now, idle, &mut io.1);
        assert_eq!(rx.peer_count(), 0);
        assert_eq!(
            rx.poll_timeout(),
            None,
            "seed {seed}: timers armed with nobody to serve"
        );
    }
}

#[test]
fn reliable_frames_are_bounded_too_and_released_when_the_sender_goes_idle() {
    let config = ReceiverConfig {
        max_frame_len: 1 << 20,
        max_frames_in_flight: 8,
        max_peer_bytes: 3 << 20,
        max_total_bytes: 5 << 20,
        ..ReceiverConfig::default()
    };
    let (peer_cap, idle) = (config.max_peer_bytes, config.peer_idle_timeout);
    let mut rx = Receiver::new(config);
    let mut rng = SimRng::new(11);
    let mut io = Default::default();
    let mut now = Timestamp::ZERO;
    declare_frames(
        &mut rx,
        &mut rng,
        &mut now,
        addr(0),
        SessionId(1),
        true,
        peer_cap,
        &mut io,
    );
    assert!(rx.stats().over_budget > 0 && rx.stats().over_frames_in_flight > 0);
    // Reliable frames wait for retransmissions until the sender is gone; NACKs meanwhile stay
    // within the amplification credit.
    let last_chunk = now;
    run_timers(&mut rx, &mut now, last_chunk + idle / 2, &mut io.1);
    assert!(rx.buffered_bytes() > 0);
    assert!(rx.stats().nacks_sent > 0);
    run_timers(
        &mut rx,
        &mut now,
        last_chunk + idle + Duration::from_millis(200),
        &mut io.1,
    );
    assert_eq!(rx.buffered_bytes(), 0);
    assert_eq!(rx.peer_count(), 0);
    assert!(io.1[&addr(0)] <= io.0[&addr(0)]);
}

fn peer_gone_scenario(name: &str, mix: Mix, up_loss: f64, down_loss: f64) {
    for seed in seeds(SEEDS / 2) {
        let mut rng = SimRng::new(seed);
        let config = SenderConfig {
            window: 4,
            ..sender_config(&mut rng)
        };
        let (frame_timeout, peer_timeout) = (config.frame_timeout, config.peer_timeout);
        let frames = plan(
            &mut rng,
            30,
            config.datagram_size,
            mix,
            Duration::from_millis(1),
        );
        let up = ImpairConfig {
            loss: up_loss,
            ..link(1)
        };
        let down = ImpairConfig {
            loss: down_loss,
            ..link(1)
        };
        let mut sim = Sim::new(name, seed, up, down, ReceiverConfig::default());
        sim.add_peer(config, SessionId(3), frames);
        sim.run();
        sim.check_invariants();
        let p = &sim.peers[0];
        let first = p.sent.values().map(|(_, at)| *at).min().unwrap();
        let slack = Duration::from_millis(50); // pacing of the first window
        assert!(!p.peer_gone.is_empty(), "{} no PeerGone at all", sim.label);
        assert!(
            p.peer_gone[0] <= first + peer_timeout + slack,
            "{} first PeerGone at {:?}, frames in flight since {first:?}, peer_timeout {peer_timeout:?}",
            sim.label,
            p.peer_gone[0]
        );
        // While frames keep going out unanswered, PeerGone keeps coming every peer_timeout.
        let last_send = p.sent.values().map(|(_, at)| *at).max().unwrap();
        let mut t = first;
        for &g in &p.peer_gone {
            assert!(
                g <= t + peer_timeout + slack,
                "{} PeerGone too late: {g:?}",
                sim.label
            );
            t = g;
        }
        assert!(
            t + peer_timeout + slack >= last_send,
            "{} frames sent after the last PeerGone for longer than peer_timeout",
            sim.label
        );
        for ((s, f), v) in &p.verdicts {
            let (frame, sent_at) = &p.sent[&(*s, *f)];
            let SenderEvent::Lost { reason, .. } = v[0].event else {
                panic!(
                    "{} {s:?}/{f:?} acknowledged by nobody: {:?}",
                    sim.label, v[0].event
                );
            };
            assert!(
                reason == SendFailure::PeerGone
                    || (reason == SendFailure::Timeout && !frame.reliable),
                "{} {s:?}/{f:?}: {reason:?}",
                sim.label
            );
            assert!(
                v[0].at <= *sent_at + frame_timeout.max(peer_timeout) + slack,
                "{} verdict for {s:?}/{f:?} late: sent {sent_at:?}, lost {:?}",
                sim.label,
                v[0].at
            );
        }
    }
}

#[test]
fn peer_gone_receiver_absent_unreliable() {
    peer_gone_scenario("gone, unreliable", Mix::UNRELIABLE, 1.0, 1.0);
}

#[test]
fn peer_gone_replies_lost_unreliable() {
    peer_gone_scenario("replies lost, unreliable", Mix::UNRELIABLE, 0.0, 1.0);
}

#[test]
fn peer_gone_receiver_absent_all_kinds() {
    peer_gone_scenario("gone, all kinds", Mix::ALL, 1.0, 1.0);
}

#[test]
fn hundred_frames_at_20_percent_loss_take_milliseconds() {
    let start = Instant::now();
    let mut rng = SimRng::new(77);
    let config = SenderConfig {
        window: 8,
        ..SenderConfig::default()
    };
    let frames = plan(
        &mut rng,
        100,
        config.datagram_size,
        Mix::ALL,
        Duration::from_millis(1),
    );
    // Tighter bounds than the default: this run must converge quickly in simulated time.
    let limits = Limits {
        max_steps: 200_000,
        max_time: Duration::from_secs(60),
    };
    let mut sim = Sim::new(
        "100 frames 20%",
        77,
        lossy(0.2),
        lossy(0.2),
        ReceiverConfig::default(),
    )
    .with_limits(limits);
    sim.add_peer(config, SessionId(77), frames);
    sim.run();
    sim.check_invariants();
    let wall = start.elapsed();
    assert!(
        wall < Duration::from_secs(3),
        "100 simulated frames took {wall:?}"
    );
    assert!(
        sim.now < Timestamp::from_millis(60_000),
        "simulated time {:?}",
        sim.now
    );
}

#[test]
fn a_sender_past_its_datagram_rate_is_cut_off_and_others_are_not() {
    let mut rx = Receiver::new(ReceiverConfig {
        max_peer_datagrams_per_sec: Some(10_000),
        ..ReceiverConfig::default()
    });
    let mut buf = vec![0u8; 2048];
    let mut out = HashMap::new();
    let mut send = |rx: &mut Receiver, now: Timestamp, from: SocketAddr, session: u32, f: u64| {
        let header = DataHeader {
            session: SessionId(session),
            frame: FrameId(f),
            frame_len: 100,
            count: 1,
            ..base_header()
        };
        let n = wire::emit_data(&mut buf, &header, &[7u8; 100]);
        rx.handle(now, from, &buf[..n]);
    };
    support::validate(&mut rx, Timestamp::ZERO, addr(1), SessionId(1));
    support::validate(&mut rx, Timestamp::ZERO, addr(2), SessionId(2));
    // 5,000 datagrams at one instant: the bucket holds max(rate / 10, 1024) = 1024.
    for f in 0..5000 {
        send(&mut rx, Timestamp::ZERO, addr(1), 1, f);
    }
    drain(&mut rx, &mut out);
    assert_eq!(rx.stats().over_rate, 5000 - 1024);
    // Another sender at the same instant is not affected.
    send(&mut rx, Timestamp::ZERO, addr(2), 2, 0);
    assert_eq!(rx.stats().over_rate, 5000 - 1024);
    // A tenth of a second later the first sender has 1,000 more.
    for f in 5000..7000 {
        send(&mut rx, Timestamp::from_millis(100), addr(1), 1, f);
    }
    assert_eq!(rx.stats().over_rate, 5000 - 1024 + 1000);
}
