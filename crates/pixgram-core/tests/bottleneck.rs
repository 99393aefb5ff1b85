//! Issue 12's targets in the simulator: reliable and live transfers through a tbf-like
//! bottleneck (a link rate behind a drop-tail queue, `ImpairConfig::bottleneck`), with injected
//! time and seeded frame sizes, so every figure is the same on every run. The kernel figures
//! for the same targets come from `scripts/bottleneck.sh` and `bench/bottleneck.sh`.
//!
//! Each test prints the figures it asserts (`cargo test -p pixgram-core --release --test
//! bottleneck -- --nocapture`).

mod harness;

use std::time::Duration;

use harness::{bottleneck_ways, quantile, Link, Shared};
use pixgram_core::sender::FecPolicy;
use pixgram_core::wire::DATA_OVERHEAD;
use pixgram_core::{
    OutgoingFrame, ReceiverConfig, ReceiverEvent, SenderConfig, SenderEvent, StreamId, Timestamp,
};
use pixgram_netem::{ImpairConfig, SimRng};

/// The queue a tbf with `latency 50ms` holds.
const TBF_QUEUE: Duration = Duration::from_millis(50);

/// A frame the size of a corpus JPEG (200 KB to 2 MB), its size drawn from `rng`.
fn photo(rng: &mut SimRng, salt: u64) -> Vec<u8> {
    let len = 200_000 + rng.below(1_800_000) as usize;
    (0..len as u64)
        .map(|i| (i * 131 + salt * 7) as u8)
        .collect()
}

#[derive(Debug)]
struct Outcome {
    /// Payload bytes delivered per second over the run, as a share of the bottleneck.
    goodput: f64,
    /// Datagrams sent that were retransmissions, as a share of datagrams sent.
    retransmitted: f64,
    /// 95th percentile of the time datagrams waited at the bottleneck.
    queue_p95: Duration,
    /// 95th percentile of the sender's RTT samples above the base RTT.
    rtt_rise_p95: Duration,
}

/// Reliable frames (window 8, sizes as in the corpus) for `run` through a bottleneck of `mbit`
/// Mbit/s with a `queue` and `one_way` delay each way, `loss` of the datagrams dropped at
/// random before the queue.
fn reliable(mbit: f64, one_way: Duration, loss: f64, run: Duration, seed: u64) -> Outcome {
    let (forward, back) = bottleneck_ways(mbit, TBF_QUEUE, one_way, loss);
    reliable_through(mbit, forward, back, run, seed)
}

/// A kernel tbf as `scripts/bottleneck.sh` sets it up (`burst 32kb latency 50ms`: a 32 KB
/// bucket that lets a burst through after a pause, a queue of 50 ms plus the bucket) at
/// `mbit` Mbit/s, the veth's 0.1 ms each way.
fn kernel_tbf(mbit: f64) -> (ImpairConfig, ImpairConfig) {
    let one_way = Duration::from_micros(100);
    let forward = ImpairConfig {
        delay: one_way,
        ..ImpairConfig::tbf((mbit * 1e6 / 8.0) as u64, TBF_BURST, TBF_QUEUE)
    };
    let back = ImpairConfig {
        delay: one_way,
        ..Default::default()
    };
    (forward, back)
}

/// tbf's `burst 32kb`.
const TBF_BURST: u64 = 32 * 1024;

/// [`reliable`] through any `forward` and `back` (the bottleneck on `forward`, of `mbit`).
fn reliable_through(
    mbit: f64,
    forward: ImpairConfig,
    back: ImpairConfig,
    run: Duration,
    seed: u64,
) -> Outcome {
    let rate = (mbit * 1e6 / 8.0) as u64;
    let one_way = forward.delay;
    let loss = forward.loss;
    let mut link = Link::new(
        SenderConfig::default(),
        ReceiverConfig::default(),
        forward,
        back,
        seed,
    );
    let mut rng = SimRng::new(seed);
    let end = Timestamp::ZERO + run;
    let mut n = 0u64;
    // Frames for `run`, then until every one is acknowledged: goodput is all their bytes
    // over the time to the last acknowledgement (a frame half delivered when a fixed
    // stretch ends would count for nothing, or for half).
    let limit = end + Duration::from_secs(120);
    while (link.now < end || link.acked() < n as usize) && link.now < limit {
        while link.now < end && link.tx.can_send(StreamId::FRAMES) {
            let frame = OutgoingFrame::frame(StreamId::FRAMES, photo(&mut rng, n)).reliable(true);
            link.tx.send(link.now, frame).unwrap();
            n += 1;
        }
        let until = link.now + Duration::from_millis(20);
        link.step(until);
    }
    assert_eq!(
        link.acked(),
        n as usize,
        "seed {seed}: not all frames acknowledged"
    );
    let elapsed = link.tx_events.last().map_or(link.now, |(t, _)| *t) - Timestamp::ZERO;
    for (_, e) in &link.tx_events {
        assert!(
            matches!(e, SenderEvent::Acked { .. }),
            "seed {seed}: a reliable frame failed: {e:?}"
        );
    }
    let base = one_way * 2;
    let rises: Vec<u32> = link
        .tx_events
        .iter()
        .filter_map(|(_, e)| match e {
            SenderEvent::Acked { rtt, .. } => Some(rtt.saturating_sub(base).as_micros() as u32),
            _ => None,
        })
        .collect();
    let st = link.tx.stats();
    let out = Outcome {
        goodput: link.rx.stats().payload_bytes_delivered as f64
            / elapsed.as_secs_f64()
            / rate as f64,
        retransmitted: st.chunks_retransmitted as f64 / st.datagrams_sent.max(1) as f64,
        queue_p95: quantile(&link.forward_waits, 0.95),
        rtt_rise_p95: quantile(&rises, 0.95),
    };
    println!(
        "{mbit:>5} Mbit/s, RTT {:>3} ms, loss {:.0}%, seed {seed}: goodput {:.1}% of the \
         bottleneck, {:.2}% of {} datagrams retransmitted, queue p95 {:.1} ms, RTT rise p95 \
         {:.1} ms, {} dropped at the queue, rate {:.2} Mbit/s",
        base.as_millis(),
        loss * 100.0,
        out.goodput * 100.0,
        out.retransmitted * 100.0,
        st.datagrams_sent,
        out.queue_p95.as_secs_f64() * 1e3,
        out.rtt_rise_p95.as_secs_f64() * 1e3,
        link.forward.stats().dropped_queue,
        link.tx.path().rate * 8.0 / 1e6,
    );
    out
}

/// Long enough for the steady state to dominate, short enough at high rates to stay quick.
fn duration_for(mbit: f64) -> Duration {
    if mbit <= 20.0 {
        Duration::from_secs(20)
    } else if mbit <= 100.0 {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(2)
    }
}

/// What of `o` misses the targets, if anything.
fn misses(what: &str, o: &Outcome, goodput: f64, queue: Option<Duration>) -> Vec<String> {
    let mut out = Vec::new();
    if o.goodput < goodput {
        out.push(format!("{what}: goodput {:.1}%", o.goodput * 100.0));
    }
    if o.retransmitted > 0.03 {
        out.push(format!(
            "{what}: {:.2}% retransmitted",
            o.retransmitted * 100.0
        ));
    }
    if let Some(limit) = queue {
        if o.queue_p95 > limit || o.rtt_rise_p95 > limit {
            out.push(format!(
                "{what}: queue p95 {:?}, RTT rise p95 {:?}",
                o.queue_p95, o.rtt_rise_p95
            ));
        }
    }
    out
}

/// Target 1: 2, 4, 20, 100 and 500 Mbit/s behind a 50 ms drop-tail queue, 2 ms base RTT (a
/// veth pair's is far lower; the sender needs some RTT to measure): goodput >= 90% of the
/// bottleneck, <= 3% of datagrams retransmitted, queueing p95 <= 25 ms.
#[test]
fn target_1_fills_a_drop_tail_bottleneck_without_flooding_it() {
    let mut failed = Vec::new();
    for mbit in [2.0, 4.0, 20.0, 100.0, 500.0] {
        for seed in 1..=3 {
            let o = reliable(
                mbit,
                Duration::from_millis(1),
                0.0,
                duration_for(mbit),
                seed,
            );
            failed.extend(misses(
                &format!("{mbit} Mbit/s seed {seed}"),
                &o,
                0.90,
                Some(Duration::from_millis(25)),
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Target 1 through a kernel-like tbf (a 32 KB bucket, a 0.2 ms base RTT) at 2 and 4 Mbit/s,
/// where a bucket's burst after each pause reads as a delivery rate far above the tbf's.
#[test]
fn target_1_through_a_token_bucket_at_low_rates() {
    let mut failed = Vec::new();
    for mbit in [2.0, 4.0] {
        for seed in 1..=3 {
            let (forward, back) = kernel_tbf(mbit);
            let o = reliable_through(mbit, forward, back, Duration::from_secs(20), seed);
            failed.extend(misses(
                &format!("tbf {mbit} Mbit/s seed {seed}"),
                &o,
                0.90,
                Some(Duration::from_millis(25)),
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Target 2: the same with 20 and 100 ms of base RTT at 4 and 100 Mbit/s: goodput >= 85%,
/// <= 3% retransmitted.
#[test]
fn target_2_long_paths() {
    let mut failed = Vec::new();
    for one_way in [10, 50] {
        for mbit in [4.0, 100.0] {
            for seed in 1..=2 {
                let run = duration_for(mbit) + Duration::from_secs(1);
                let o = reliable(mbit, Duration::from_millis(one_way), 0.0, run, seed);
                failed.extend(misses(
                    &format!("{mbit} Mbit/s, {} ms RTT, seed {seed}", one_way * 2),
                    &o,
                    0.85,
                    None,
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Target 3: two pixgram flows through one 20 Mbit/s bottleneck each get 40-60% of what the
/// two get together, and together they fill it. Seeds 1-10 measure 40.4/59.6 to 50.8/49.2.
#[test]
fn target_3_two_flows_share_a_bottleneck() {
    let mut failed = Vec::new();
    for seed in 1..=10 {
        let rate = 20e6 / 8.0;
        let (forward, back) = bottleneck_ways(20.0, TBF_QUEUE, Duration::from_millis(5), 0.0);
        let configs = vec![SenderConfig::default(); 2];
        let mut net = Shared::new(&configs, forward, back, seed);
        let mut rng = SimRng::new(seed);
        let end = Timestamp::from_millis(20_000);
        // The second flow starts a second after the first, into a full bottleneck.
        let start = [Timestamp::ZERO, Timestamp::from_millis(1_000)];
        // Shares count from 2 s, once the second flow is past its start-up.
        let from = Timestamp::from_millis(2_000);
        let mut at_from: Option<Vec<u64>> = None;
        let mut n = 0;
        while net.now < end {
            if net.now >= from && at_from.is_none() {
                let d = net
                    .flows
                    .iter()
                    .map(|(_, rx)| rx.stats().payload_bytes_delivered);
                at_from = Some(d.collect());
            }
            for (i, (tx, _)) in net.flows.iter_mut().enumerate() {
                while net.now >= start[i] && tx.can_send(StreamId::FRAMES) {
                    let f = OutgoingFrame::frame(StreamId::FRAMES, photo(&mut rng, n));
                    tx.send(net.now, f.reliable(true)).unwrap();
                    n += 1;
                }
            }
            let until = (net.now + Duration::from_millis(20)).min(end);
            net.step(until);
        }
        let delivered: Vec<u64> = net
            .flows
            .iter()
            .zip(at_from.expect("ran past 2 s"))
            .map(|((_, rx), before)| rx.stats().payload_bytes_delivered - before)
            .collect();
        let retx: Vec<f64> = net
            .flows
            .iter()
            .map(|(tx, _)| {
                tx.stats().chunks_retransmitted as f64 / tx.stats().datagrams_sent.max(1) as f64
            })
            .collect();
        let total = (delivered[0] + delivered[1]) as f64;
        let shares = [delivered[0] as f64 / total, delivered[1] as f64 / total];
        let fill = total / 18.0 / rate;
        println!(
            "two flows, 20 Mbit/s, seed {seed}: shares {:.1}% / {:.1}% (second flow from 1 s, \
             shares from 2 s), together {:.1}% of the bottleneck over the last 18 s, \
             retransmitted {:.2}% / {:.2}%",
            shares[0] * 100.0,
            shares[1] * 100.0,
            fill * 100.0,
            retx[0] * 100.0,
            retx[1] * 100.0
        );
        if !shares.iter().all(|s| (0.40..=0.60).contains(s)) || fill < 0.85 {
            failed.push(format!("seed {seed}: shares {shares:?}, together {fill}"));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Target 4: from the first frame, reach 90% of a 100 Mbit/s bottleneck within 1 s at 20 ms
/// RTT, with at most 3% of that second's datagrams retransmissions.
#[test]
fn target_4_start_up_reaches_a_fast_bottleneck_within_a_second() {
    let mut failed = Vec::new();
    for seed in 1..=3 {
        let rate = 100e6 / 8.0;
        let mut link = Link::bottleneck(100.0, TBF_QUEUE, Duration::from_millis(10), 0.0, seed);
        let mut rng = SimRng::new(seed);
        let end = Timestamp::from_millis(1_000);
        let mut n = 0;
        // Bytes the receiver held at each 10 ms tick.
        let mut marks: Vec<u64> = Vec::new();
        while link.now < end {
            while link.tx.can_send(StreamId::FRAMES) {
                // Smaller frames (64-264 KB) so the receiver's count moves often.
                let len = 64_000 + rng.below(200_000) as usize;
                let f = OutgoingFrame::frame(StreamId::FRAMES, vec![n as u8; len]).reliable(true);
                link.tx.send(link.now, f).unwrap();
                n += 1;
            }
            let tick = Timestamp::from_millis(10 * (marks.len() as u64 + 1));
            link.step(tick.min(end));
            if link.now >= tick {
                marks.push(link.rx.stats().payload_bytes_delivered);
            }
        }
        // The first 100 ms stretch delivering at >= 90% of the bottleneck.
        let reached = (10..marks.len()).find(|&i| {
            (marks[i] - marks[i - 10]) as f64 / 0.1
                >= 0.9 * rate * (1200 - DATA_OVERHEAD) as f64 / 1200.0
        });
        let st = link.tx.stats();
        let retx = st.chunks_retransmitted as f64 / st.datagrams_sent.max(1) as f64;
        println!(
            "start-up, 100 Mbit/s, 20 ms RTT, seed {seed}: 90% of the bottleneck (less headers) \
             over a 100 ms stretch ending at {:?} ms; first second: {:.2}% of {} datagrams \
             retransmitted, {} dropped at the queue",
            reached.map(|i| (i + 1) * 10),
            retx * 100.0,
            st.datagrams_sent,
            link.forward.stats().dropped_queue
        );
        if reached.is_none() || retx > 0.03 {
            failed.push(format!(
                "seed {seed}: reached {reached:?}, {retx} retransmitted"
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Target 5: random loss is not congestion. 5% random loss each way (dropped before the
/// queue) on a 10 MB/s link with a 50 ms queue and 5 ms each way (as in `delivery_modes.rs`,
/// where goodput was 81-85% of the link): reliable goodput >= 90% of the link.
#[test]
fn target_5_random_loss_is_not_congestion() {
    let mut failed = Vec::new();
    for seed in 1..=4 {
        let o = reliable(
            80.0,
            Duration::from_millis(5),
            0.05,
            Duration::from_secs(5),
            seed,
        );
        if o.goodput < 0.90 {
            failed.push(format!("seed {seed}: goodput {:.1}%", o.goodput * 100.0));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Live frames of 50 kB at 30 frames/s (12 Mbit/s, a 100 ms deadline) on a path whose one-way
/// delay is `before` until 5 s, then `after`; returns the frames not delivered whole.
fn live_delay_step(before: Duration, after: Duration, seed: u64) -> usize {
    let n = 450u64;
    let mut link = Link::clean(SenderConfig::default(), before, seed);
    let interval = Duration::from_micros(33_333);
    let mut rng = SimRng::new(seed);
    for i in 0..n {
        let at = Timestamp::ZERO + interval * i as u32;
        link.run_until(at);
        if i == 150 {
            for imp in [&mut link.forward, &mut link.back] {
                let mut c = imp.config().clone();
                c.delay = after;
                imp.set_config(c);
            }
        }
        let len = 40_000 + rng.below(20_000) as usize;
        let frame = OutgoingFrame::live(
            StreamId::FRAMES,
            vec![i as u8; len],
            Duration::from_millis(100),
        );
        link.tx.send(link.now, frame).unwrap();
    }
    let end = link.now + Duration::from_millis(500);
    link.run_until(end);
    // Frames from the step on: the first ones may expire in the first exchange, a round trip
    // of the initial path before any DATA, which the step has nothing to do with.
    let whole_after = link
        .rx_events
        .iter()
        .filter(|(_, e)| matches!(e, ReceiverEvent::Frame(f) if f.frame.0 >= 150))
        .count();
    (n - 150) as usize - whole_after
}

/// Target 6: an RTT step mid-stream (2 to 62 ms and back) loses no more live frames than a
/// run at the final RTT from the start (counted from the step on).
#[test]
fn target_6_an_rtt_step_loses_no_more_frames_than_the_final_rtt() {
    let (short, long) = (Duration::from_millis(1), Duration::from_millis(31));
    for seed in 1..=3 {
        let up = live_delay_step(short, long, seed);
        let always_long = live_delay_step(long, long, seed);
        let down = live_delay_step(long, short, seed);
        let always_short = live_delay_step(short, short, seed);
        println!(
            "seed {seed}: RTT up {up} lost (long throughout {always_long}), down {down} lost \
             (short throughout {always_short})"
        );
        assert!(up <= always_long, "seed {seed}: {up} > {always_long}");
        assert!(down <= always_short, "seed {seed}: {down} > {always_short}");
    }
}

/// Target 6, second half: `--fec auto` at 5% random loss delivers >= 99% of live frames whole,
/// for every one of eight seeds (the rule before, twice the loss plus 2%, broke 0.7% of these
/// frames, 0-7 of 300 a seed: it met the target on average, not on every run).
#[test]
fn target_6_fec_auto_at_5_percent_loss_delivers_99_percent_of_live_frames() {
    let (mut parity, mut data) = (0u64, 0u64);
    for seed in 1..=8 {
        let lossy = ImpairConfig {
            loss: 0.05,
            delay: Duration::from_millis(10),
            ..Default::default()
        };
        let mut link = Link::new(
            SenderConfig::default(),
            ReceiverConfig::default(),
            lossy.clone(),
            lossy,
            seed,
        );
        let n = 300u64;
        let mut rng = SimRng::new(seed);
        let interval = Duration::from_micros(33_333);
        for i in 0..n {
            link.run_until(Timestamp::ZERO + interval * i as u32);
            let len = 50_000 + rng.below(100_000) as usize;
            let frame = OutgoingFrame::live(
                StreamId::FRAMES,
                vec![i as u8; len],
                Duration::from_millis(200),
            )
            .with_fec(FecPolicy::Auto);
            link.tx.send(link.now, frame).unwrap();
        }
        let end = link.now + Duration::from_secs(1);
        link.run_until(end);
        let whole = link
            .rx_events
            .iter()
            .filter(|(_, e)| matches!(e, ReceiverEvent::Frame(_)))
            .count();
        let stats = link.tx.stats();
        parity += stats.parity_chunks_sent;
        data += stats.datagrams_sent - stats.parity_chunks_sent;
        println!(
            "FEC auto, 5% loss, seed {seed}: {whole} of {n} live frames whole, {} parity chunks; \
             sender: {} acknowledged, {} lost",
            stats.parity_chunks_sent, stats.frames_acked, stats.frames_lost
        );
        assert!(
            whole as f64 >= 0.99 * n as f64,
            "seed {seed}: {whole} of {n}"
        );
        // And the sender knows: an ACK lost on the way back (5% of them) is answered again
        // (before that, 13-23 of 300 whole frames a seed were reported lost; now 0-3 over
        // 24 seeds, about the 0.25% that lose both answers).
        assert!(
            stats.frames_acked as f64 >= 0.99 * n as f64,
            "seed {seed}: {} acknowledged",
            stats.frames_acked
        );
    }
    println!(
        "parity: {:.1}% of the other datagrams",
        100.0 * parity as f64 / data as f64
    );
}

/// Live frames of `len` bytes at 30 frames/s (deadline 100 ms) through a bottleneck of `mbit`
/// Mbit/s, 10 ms each way: (frames whole at the receiver within their deadline, frames whole
/// but late, frames the sender dropped, datagrams sent, of them for frames never whole).
fn live_through(mbit: f64, len: usize, seed: u64) -> (usize, usize, u64, u64, u64) {
    let (forward, back) = bottleneck_ways(mbit, TBF_QUEUE, Duration::from_millis(10), 0.0);
    live_through_ways(mbit, forward, back, len, seed)
}

/// [`live_through`] through any `forward` and `back` (the bottleneck on `forward`, of `mbit`).
fn live_through_ways(
    mbit: f64,
    forward: ImpairConfig,
    back: ImpairConfig,
    len: usize,
    seed: u64,
) -> (usize, usize, u64, u64, u64) {
    let mut link = Link::new(
        SenderConfig::default(),
        ReceiverConfig::default(),
        forward,
        back,
        seed,
    );
    let n = 300u64;
    let deadline = Duration::from_millis(100);
    let interval = Duration::from_micros(33_333);
    let mut submitted = Vec::new();
    let mut rng = SimRng::new(seed);
    for i in 0..n {
        let at = Timestamp::ZERO + interval * i as u32;
        link.run_until(at);
        let size = len / 2 + rng.below(len as u64) as usize;
        let id = link
            .tx
            .send(
                link.now,
                OutgoingFrame::live(StreamId::FRAMES, vec![i as u8; size], deadline),
            )
            .unwrap();
        submitted.push((id, link.now));
    }
    let end = link.now + Duration::from_secs(1);
    link.run_until(end);
    let (mut on_time, mut late) = (0, 0);
    let mut whole = std::collections::HashSet::new();
    for (t, e) in &link.rx_events {
        if let ReceiverEvent::Frame(f) = e {
            whole.insert(f.frame);
            let sent = submitted.iter().find(|(id, _)| *id == f.frame).unwrap().1;
            if t.saturating_since(sent) <= deadline {
                on_time += 1;
            } else {
                late += 1;
            }
        }
    }
    let st = link.tx.stats();
    let dropped = st.frames_superseded + st.frames_past_deadline;
    // The drops for want of rate (what a quality step-down reads) are among those past their
    // deadline.
    assert!(
        st.frames_hopeless > 0 && st.frames_hopeless <= st.frames_past_deadline,
        "{st:?}"
    );
    let useful: u64 = link.rx.stats().payload_bytes_delivered / (1200 - DATA_OVERHEAD) as u64;
    let wasted = st.datagrams_sent.saturating_sub(useful);
    println!(
        "live 30 fps x {} kB (about {:.0} Mbit/s) into {mbit} Mbit/s, seed {seed}: {on_time} of \
         {n} whole and on time, {late} whole but late, {dropped} dropped at the sender \
         ({} superseded, {} past their deadline, {} of them judged hopeless), {} datagrams \
         sent, about {wasted} of them for frames never whole; estimate {:.1} Mbit/s, smoothed \
         RTT {:?}",
        len / 1000,
        len as f64 * 30.0 * 8.0 / 1e6,
        st.frames_superseded,
        st.frames_past_deadline,
        st.frames_hopeless,
        st.datagrams_sent,
        link.tx.path().bandwidth.unwrap_or(0.0) * 8e-6,
        link.tx.path().srtt,
    );
    (on_time, late, dropped, st.datagrams_sent, wasted)
}

/// Target 7: a live stream at three times the bottleneck's rate (12 Mbit/s of 25-75 kB
/// frames into 4 Mbit/s, 100 ms deadline): the sender drops frames, counted, rather than
/// queueing them past their deadline (each frame that can no longer arrive in time at the
/// bottleneck estimate, oldest first, when a newer one is submitted), and what arrives is
/// whole and on time. Before: every frame left late and part-sent, 0 of 300 arrived. Now
/// 62-74 whole and on time, 1-5 whole but late, about 7% of the datagrams for frames never
/// whole (seeds 1-3). Asserted with a margin. The other half of the target, stepping a
/// re-encoding source's quality down to fit, is the library's (`publish/quality.rs`; it reads
/// `frames_superseded` and `frames_hopeless`, asserted to be counted here).
#[test]
fn target_7_live_above_the_bottleneck_drops_at_the_sender() {
    for seed in 1..=3 {
        let (on_time, late, dropped, sent, wasted) = live_through(4.0, 50_000, seed);
        assert!(
            dropped >= 200,
            "seed {seed}: {dropped} dropped at the sender"
        );
        assert!(on_time >= 55, "seed {seed}: only {on_time} frames on time");
        assert!(
            late * 10 <= on_time,
            "seed {seed}: {late} late of {on_time}"
        );
        assert!(
            wasted * 10 <= sent,
            "seed {seed}: {wasted} of {sent} datagrams wasted"
        );
    }
}

/// Target 7 through a kernel-like tbf at 4 Mbit/s (a 32 KB bucket, 0.2 ms base RTT), as
/// `scripts/netns-quality.sh` runs it at its lowest quality: 30 fps of 10-30 kB frames (about
/// 4.8 Mbit/s). Between frames the bucket saves up tokens, and each frame's first 32 KB pass
/// at once: most frames that arrive must still arrive on time.
#[test]
fn target_7_live_through_a_token_bucket_arrives_on_time() {
    for seed in 1..=3 {
        let (forward, back) = kernel_tbf(4.0);
        let (on_time, late, dropped, _, _) = live_through_ways(4.0, forward, back, 20_000, seed);
        assert!(
            on_time >= 4 * late,
            "seed {seed}: {on_time} on time, {late} late"
        );
        assert!(on_time >= 150, "seed {seed}: only {on_time} frames on time");
        assert!(dropped > 0, "seed {seed}: none dropped at the sender");
    }
}

/// The run `scripts/netns-quality.sh` makes, with a quality step-down as the library does it:
/// live frames at 30 fps (deadline 100 ms) into a kernel-like 4 Mbit/s tbf for 10 s, then
/// 20 Mbit/s; frames of `big` bytes (give or take a quarter) for the first 10 frames and from
/// 15 s on, `small` between, each skipped when the window is full (the library waits for
/// room, and the source skips a frame meanwhile). Returns the longest time the sender sent no
/// datagram at all (it always has frames: one comes every 33 ms), when it began, and the
/// frames that arrived whole.
fn live_rate_step(seed: u64, big: usize, small: usize) -> (Duration, Timestamp, usize) {
    let (forward, back) = kernel_tbf(4.0);
    let config = SenderConfig {
        initial_rate: 50e6,
        ..SenderConfig::default()
    };
    let mut link = Link::new(config, ReceiverConfig::default(), forward, back, seed);
    let deadline = Duration::from_millis(100);
    let interval = Duration::from_micros(33_333);
    let mut rng = SimRng::new(seed);
    let (mut sent, mut last_sent) = (0u64, Timestamp::ZERO);
    let mut longest = (Duration::ZERO, Timestamp::ZERO);
    for i in 0..600u64 {
        let at = Timestamp::ZERO + interval * i as u32;
        if i == 300 {
            link.forward.set_config(kernel_tbf(20.0).0);
        }
        while link.now < at {
            link.step(at);
            if link.tx.stats().datagrams_sent != sent {
                sent = link.tx.stats().datagrams_sent;
                longest = longest.max((link.now.saturating_since(last_sent), last_sent));
                last_sent = link.now;
            }
        }
        let len = if (10..450).contains(&i) { small } else { big };
        let size = len * 3 / 4 + rng.below(len as u64 / 2) as usize;
        if link.tx.can_send(StreamId::FRAMES) {
            let frame = OutgoingFrame::live(StreamId::FRAMES, vec![i as u8; size], deadline);
            link.tx.send(link.now, frame).unwrap();
        }
    }
    longest = longest.max((link.now.saturating_since(last_sent), last_sent));
    (longest.0, longest.1, link.frames_whole())
}

/// Liveness of a live sender: with frames to send it always sends. An estimate too low for
/// any single frame to arrive by its deadline (85 kB/s, under the floor the sender paces at,
/// after the estimate collapsed) judged every new frame hopeless at submission; nothing was
/// sent, so no feedback came and the estimate never moved again. In the kernel
/// (`scripts/netns-quality.sh`) the sender sent nothing from 0.3 s to 10 s, or from 15.6 s
/// to the end. Before: seeds 5, 6, 10 and 12 sent nothing for 15-18 s (42-141 frames whole of
/// 600). Now, after half a second of silence (`STALE_ESTIMATE`) with nothing in flight, the
/// sender forgets its estimate and the next frame measures the path again: 576-578 whole.
/// (Sending that frame at the stale estimate instead re-measured the estimate: 76-169 whole.)
#[test]
fn target_7_live_sender_with_frames_never_falls_silent() {
    for seed in 1..=12 {
        let (silence, from, whole) = live_rate_step(seed, 33_000, 15_000);
        println!("seed {seed}: longest silence {silence:?} from {from:?}, {whole} of 600 whole");
        assert!(
            silence < Duration::from_secs(1),
            "seed {seed}: nothing sent for {silence:?} from {from:?} ({whole} whole)"
        );
    }
}
