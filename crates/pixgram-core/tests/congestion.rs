//! Congestion control and loss feedback in the simulator (issue 12): what the rate controller,
//! the NACK logic and the loss report do on paths with a long RTT, a changing RTT, parity,
//! random loss and a drop-tail bottleneck. Every run is seeded and uses injected time.

mod harness;

use std::time::Duration;

use harness::Link;
use pixgram_core::sender::FecPolicy;
use pixgram_core::{
    OutgoingFrame, ReceiverConfig, ReceiverEvent, SendFailure, SenderConfig, SenderEvent, StreamId,
    Timestamp,
};
use pixgram_netem::ImpairConfig;

fn secs(t: Timestamp) -> f64 {
    t.as_micros() as f64 / 1e6
}

fn body(len: usize, salt: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i * 131 + salt * 7) as u8)
        .collect()
}

/// Issue 12, defect 1: a stall NACK used to list the whole tail of the frame, chunks not yet
/// sent or still on the wire included; at a low rate and a long RTT the sender resent most of
/// the frame. Now a stall NACK lists only holes below the highest chunk received.
#[test]
fn a_slow_frame_on_a_long_path_is_not_resent_while_in_flight() {
    // 100 ms RTT, no loss, 1.6 Mbit/s cap: chunks arrive 6 ms apart, more than the NACK delay.
    let rate = 1.6e6 / 8.0;
    let config = SenderConfig {
        max_rate: Some(rate),
        ..SenderConfig::default()
    };
    let datagram = config.datagram_size;
    let mut link = Link::clean(config, Duration::from_millis(50), 1);
    let payload = body(1_000_000, 1);
    link.tx
        .send(
            link.now,
            OutgoingFrame::frame(StreamId::FRAMES, payload.clone()).reliable(true),
        )
        .unwrap();
    link.run_until(Timestamp::from_millis(60_000));
    assert_eq!(link.acked(), 1, "{:?}", link.tx_events);
    let acked_at = link.tx_events[0].0;
    let st = link.tx.stats();
    let chunks = payload
        .len()
        .div_ceil(datagram - pixgram_core::wire::DATA_OVERHEAD);
    // The ideal: every chunk once at the capped rate, plus one round trip.
    let ideal = (chunks * datagram) as f64 / rate + 0.1;
    let share = st.chunks_retransmitted as f64 / st.datagrams_sent as f64;
    println!(
        "1 MB at 1.6 Mbit/s, 100 ms RTT: acked after {:?} (ideal {ideal:.2} s), {} of {} \
         datagrams retransmitted ({:.1}%), {} NACKed chunks not due",
        acked_at,
        st.chunks_retransmitted,
        st.datagrams_sent,
        share * 100.0,
        st.nack_chunks_not_due
    );
    assert!(
        secs(acked_at) <= ideal * 1.1,
        "took {acked_at:?}, ideal {ideal:.2} s"
    );
    assert!(share <= 0.03, "{:.1}% retransmitted", share * 100.0);
}

/// A live stream of 600 frames of 50 kB at 30 frames/s (12 Mbit/s) with a 100 ms deadline,
/// sent with `--rate 20` (each frame is more than the pacer's burst, so the sender counts as
/// filling the path while a frame leaves); the one-way delay is `before` until `step_at`, then
/// `after`. Returns the frames not delivered whole.
fn live_through_a_delay_step(before: Duration, after: Duration, step_at: Timestamp) -> usize {
    let n = 600u64;
    let config = SenderConfig {
        max_rate: Some(20e6 / 8.0),
        ..SenderConfig::default()
    };
    let mut link = Link::clean(config, before, 2);
    let interval = Duration::from_micros(33_333);
    let mut stepped = false;
    for i in 0..n {
        let at = Timestamp::ZERO + interval * i as u32;
        link.run_until(at);
        if !stepped && at >= step_at {
            stepped = true;
            for imp in [&mut link.forward, &mut link.back] {
                let mut c = imp.config().clone();
                c.delay = after;
                imp.set_config(c);
            }
        }
        let frame = OutgoingFrame::live(
            StreamId::FRAMES,
            body(50_000, i),
            Duration::from_millis(100),
        );
        link.tx.send(link.now, frame).unwrap();
    }
    let end = link.now + Duration::from_millis(500);
    link.run_until(end);
    let lost = n as usize - link.frames_whole();
    println!(
        "live 30 fps, delay {before:?} then {after:?} from {step_at:?}: {lost} of {n} lost, \
         rate {:.0} kB/s, min RTT {:?}",
        link.tx.path().rate / 1e3,
        link.tx.path().min_rtt
    );
    lost
}

/// Issue 12, defect 2: the lowest RTT never expired, so after the path's RTT rose every window
/// looked queued and was cut, down to the floor (333 of 600 frames lost).
#[test]
fn a_path_whose_delay_rises_is_not_mistaken_for_a_queue() {
    let (short, long) = (Duration::from_millis(1), Duration::from_millis(31));
    let stepped = live_through_a_delay_step(short, long, Timestamp::from_millis(5_000));
    let always_long = live_through_a_delay_step(long, long, Timestamp::ZERO);
    assert!(
        stepped <= always_long,
        "{stepped} frames lost after the delay step, {always_long} with the long delay throughout"
    );
}

/// Issue 12, defect 3: the RTT was measured from the frame's last chunk, a parity chunk sent
/// after the data had already completed the frame, giving samples far below the path's RTT.
#[test]
fn parity_sent_after_the_data_does_not_shorten_rtt_samples() {
    let rtt = Duration::from_millis(40);
    let config = SenderConfig {
        max_rate: Some(500e3),
        ..SenderConfig::default()
    };
    let mut link = Link::clean(config, rtt / 2, 3);
    let interval = Duration::from_millis(200);
    for i in 0..50u64 {
        link.run_until(Timestamp::ZERO + interval * i as u32);
        let frame = OutgoingFrame::live(StreamId::FRAMES, body(60_000, i), Duration::from_secs(1))
            .with_fec(FecPolicy::Ratio(0.25));
        link.tx.send(link.now, frame).unwrap();
    }
    let end = link.now + Duration::from_secs(2);
    link.run_until(end);
    let samples: Vec<Duration> = link
        .tx_events
        .iter()
        .filter_map(|(_, e)| match e {
            SenderEvent::Acked { rtt, .. } => Some(*rtt),
            _ => None,
        })
        .collect();
    let lowest = samples.iter().min().copied();
    println!(
        "{} samples, lowest {lowest:?}, controller's min RTT {:?}, {} parity chunks sent",
        samples.len(),
        link.tx.path().min_rtt,
        link.tx.stats().parity_chunks_sent
    );
    assert_eq!(samples.len(), 50);
    assert!(link.tx.stats().parity_chunks_sent > 0);
    assert!(
        lowest >= Some(rtt),
        "an RTT sample of {lowest:?} on a {rtt:?} path"
    );
    assert!(link.tx.path().min_rtt >= Some(rtt));
}

/// Issue 12, defect 4: chunks rebuilt from parity vanished from the ACK's loss report, so
/// `FecPolicy::Auto` provisioned for almost no loss and lost frames at 5% loss.
#[test]
fn fec_auto_provisions_for_the_loss_before_recovery() {
    let lossy = ImpairConfig {
        loss: 0.05,
        delay: Duration::from_millis(10),
        ..Default::default()
    };
    let n = 300u64;
    let mut link = Link::new(
        SenderConfig::default(),
        ReceiverConfig::default(),
        lossy.clone(),
        lossy,
        4,
    );
    let interval = Duration::from_micros(33_333);
    for i in 0..n {
        link.run_until(Timestamp::ZERO + interval * i as u32);
        let frame = OutgoingFrame::live(
            StreamId::FRAMES,
            body(100_000, i),
            Duration::from_millis(200),
        )
        .with_fec(FecPolicy::Auto);
        link.tx.send(link.now, frame).unwrap();
    }
    let end = link.now + Duration::from_secs(1);
    link.run_until(end);
    let whole = link.frames_whole();
    let f = link.forward.stats();
    let real = f.dropped_random as f64 / f.offered as f64;
    let reported = link.tx.path().loss.expect("ACKs reported loss");
    println!(
        "FEC auto at 5% loss: {whole} of {n} frames whole, real loss {:.2}%, reported {:.2}%, \
         {} chunks rebuilt",
        real * 100.0,
        reported * 100.0,
        link.rx.stats().chunks_recovered_by_fec
    );
    assert!(link.rx.stats().chunks_recovered_by_fec > 0);
    assert!(whole as f64 >= 0.99 * n as f64, "{whole} of {n} whole");
    assert!(
        reported >= real / 2.0 && reported <= real * 2.0,
        "reported {reported}, real {real}"
    );
}

/// Issue 12, defect 5: a 4 MB live frame at 4 Mbit/s takes 8 s to send; the receiver owes no
/// answer before its last chunk, yet the sender counted that time as silence and reported the
/// receiver gone after 5 s.
#[test]
fn a_long_frame_to_a_healthy_receiver_is_not_peer_gone() {
    let config = SenderConfig {
        max_rate: Some(4e6 / 8.0),
        ..SenderConfig::default()
    };
    let timeout = config.peer_timeout;
    let mut link = Link::clean(config.clone(), Duration::from_millis(10), 5);
    let frame = OutgoingFrame::live(
        StreamId::FRAMES,
        body(4_000_000, 5),
        Duration::from_secs(30),
    );
    link.tx.send(link.now, frame).unwrap();
    link.run_until(Timestamp::from_millis(20_000));
    println!("healthy receiver: {:?}", link.tx_events);
    assert!(
        !link
            .tx_events
            .iter()
            .any(|(_, e)| *e == SenderEvent::PeerGone),
        "{:?}",
        link.tx_events
    );
    assert_eq!(link.acked(), 1);
    assert!(link.tx_events[0].0 > Timestamp::ZERO + timeout);

    // The same frame through a drop-tail bottleneck of 4 Mbit/s (a tbf's 50 ms queue) instead
    // of a rate cap: no PeerGone, and no verdict before the last chunk has left (the defect
    // was a verdict at 5 s with 2,096 of 3,461 chunks sent). The frame itself is lost: start-up
    // overflows the queue (10 chunks dropped; no random loss, so one seed says it all), and a
    // live frame's chunks are not sent again: Timeout at 11.8 s, the last datagram (a probe
    // of the last chunk) at 11.35 s.
    {
        let seed = 7;
        let mut link = Link::bottleneck(
            4.0,
            Duration::from_millis(50),
            Duration::from_millis(10),
            0.0,
            seed,
        );
        let frame = OutgoingFrame::live(
            StreamId::FRAMES,
            body(4_000_000, seed),
            Duration::from_secs(30),
        );
        link.tx.send(link.now, frame).unwrap();
        let mut last_sent = Timestamp::ZERO;
        while link.now < Timestamp::from_millis(30_000) && link.tx_events.is_empty() {
            let sent = link.tx.stats().datagrams_sent;
            link.run_until(link.now + Duration::from_millis(1));
            if link.tx.stats().datagrams_sent > sent {
                last_sent = link.now;
            }
        }
        let (verdict_at, verdict) = link.tx_events.first().cloned().expect("a verdict");
        println!(
            "through a 4 Mbit/s bottleneck, seed {seed}: {verdict:?} at {verdict_at:?}, last \
             datagram at {last_sent:?}; {} datagrams, {} dropped at the queue",
            link.tx.stats().datagrams_sent,
            link.forward.stats().dropped_queue
        );
        assert!(
            !matches!(
                verdict,
                SenderEvent::Lost {
                    reason: SendFailure::PeerGone,
                    ..
                }
            ),
            "seed {seed}: {verdict:?}"
        );
        assert!(
            verdict_at >= last_sent,
            "seed {seed}: {verdict_at:?} < {last_sent:?}"
        );
        assert!(verdict_at > Timestamp::ZERO + timeout);
    }

    // A frame as long to a receiver whose answers stop coming back once the first exchange
    // is done: reported gone a `peer_timeout` after the last chunk left (when an answer became
    // due), not before.
    let one_way = ImpairConfig {
        delay: Duration::from_millis(10),
        ..Default::default()
    };
    let mut link = Link::new(
        config,
        ReceiverConfig::default(),
        one_way.clone(),
        one_way,
        6,
    );
    // Reliable, so the frame waits for an answer instead of timing out first.
    let frame = OutgoingFrame::frame(StreamId::FRAMES, body(4_000_000, 6)).reliable(true);
    link.tx.send(link.now, frame).unwrap();
    // The CHALLENGE comes back after 20 ms; then the way back dies.
    link.run_until(Timestamp::from_millis(25));
    assert_eq!(link.tx.stats().challenges_received, 1);
    link.back.set_config(ImpairConfig {
        loss: 1.0,
        ..Default::default()
    });
    link.run_until(Timestamp::from_millis(40_000));
    let gone = link
        .tx_events
        .iter()
        .find(|(_, e)| *e == SenderEvent::PeerGone)
        .map(|(t, _)| *t)
        .unwrap_or_else(|| {
            panic!(
                "a receiver that never answers is reported gone: {:?}",
                link.tx_events
            )
        });
    let sent_whole = link.rx_events.iter().find_map(|(t, e)| match e {
        ReceiverEvent::Frame(_) => Some(*t),
        _ => None,
    });
    println!("deaf path: gone at {gone:?}, frame whole at the receiver at {sent_whole:?}");
    let whole = sent_whole.expect("the receiver got the frame");
    assert!(
        gone + Duration::from_millis(20) >= whole + timeout,
        "{gone:?}"
    );
    assert!(
        gone <= whole + timeout + Duration::from_millis(100),
        "{gone:?}"
    );
}

/// Reliable frames of `frame_len` bytes, `total` bytes in all, through a drop-tail bottleneck
/// of `mbit` Mbit/s with a `queue` of queueing delay and `one_way` delay each way. Returns
/// (goodput / bottleneck, retransmitted share of datagrams).
fn through_bottleneck(mbit: f64, queue: Duration, one_way: Duration, seed: u64) -> (f64, f64) {
    let rate = (mbit * 1e6 / 8.0) as u64;
    let mut link = Link::bottleneck(mbit, queue, one_way, 0.0, seed);
    let frame_len = 1 << 20;
    // About ten seconds at the bottleneck's rate.
    let frames = (rate * 10).div_ceil(frame_len as u64);
    let mut sent = 0u64;
    for _ in 0..10_000_000u64 {
        while sent < frames && link.tx.can_send(StreamId::FRAMES) {
            let frame =
                OutgoingFrame::frame(StreamId::FRAMES, body(frame_len, sent)).reliable(true);
            link.tx.send(link.now, frame).unwrap();
            sent += 1;
        }
        if link.acked() as u64 == frames {
            break;
        }
        assert!(
            link.now < Timestamp::from_millis(300_000),
            "stuck: {:?} {:?} {:?}",
            link.tx.poll_timeout(),
            link.rx.poll_timeout(),
            link.tx.stats()
        );
        let until = link.now + Duration::from_millis(50);
        link.step(until);
    }
    assert_eq!(link.acked() as u64, frames);
    assert!(link
        .tx_events
        .iter()
        .all(|(_, e)| matches!(e, SenderEvent::Acked { .. })));
    let elapsed = secs(link.now);
    let goodput = link.rx.stats().payload_bytes_delivered as f64 / elapsed;
    let st = link.tx.stats();
    let retx = st.chunks_retransmitted as f64 / st.datagrams_sent as f64;
    let f = link.forward.stats();
    println!(
        "{mbit} Mbit/s bottleneck, {queue:?} queue, {:?} base RTT, seed {seed}: goodput {:.2} \
         Mbit/s = {:.1}% of it, {:.1}% of {} datagrams retransmitted, {} dropped by the queue, \
         {:.1} s",
        one_way * 2,
        goodput * 8.0 / 1e6,
        goodput / rate as f64 * 100.0,
        retx * 100.0,
        st.datagrams_sent,
        f.dropped_queue,
        elapsed
    );
    (goodput / rate as f64, retx)
}

/// Issue 12, the headline: reliable mode through a tbf-like bottleneck (4 and 20 Mbit/s, a
/// 50 ms drop-tail queue, 20 ms base RTT), a ten-second transfer of 1 MiB frames. With the
/// loss-window AIMD: 89.7% and 74.1% of the bottleneck with 94.0% and 78.4% of the datagrams
/// retransmissions, later 94.2% and 86.0% with 30.4% and 9.4%; with the model-based
/// controller (bbr.rs) 95.1% and 95.4% with 0.2% and 0.1%. Asserted: the target, 90%
/// of the bottleneck with at most 3% retransmitted (`tests/bottleneck.rs` covers the other
/// rates and paths).
#[test]
fn reliable_mode_through_a_drop_tail_bottleneck_fills_it_and_resends_little() {
    let queue = Duration::from_millis(50);
    let one_way = Duration::from_millis(10);
    for mbit in [4.0, 20.0] {
        let (share, retx) = through_bottleneck(mbit, queue, one_way, 1);
        assert!(
            share >= 0.90,
            "{mbit} Mbit/s: {:.1}% of the bottleneck",
            share * 100.0
        );
        assert!(
            retx <= 0.03,
            "{mbit} Mbit/s: {:.1}% retransmitted",
            retx * 100.0
        );
    }
}

/// What an application-limited sender measured and delivered (see [`app_limited`]).
struct AppLimited {
    /// The bandwidth estimate at the end, Mbit/s.
    estimate: f64,
    /// Latency from submission to delivery of the frames after the first 30.
    p50: Duration,
    p99: Duration,
    /// Frames delivered whole, of those submitted.
    whole: usize,
    submitted: usize,
    /// Datagrams that were retransmissions, as a share of datagrams sent.
    retransmitted: f64,
}

/// Frames of `len` bytes through `forward` (the way back has only its delay), in datagrams
/// of at most `max_datagram` bytes: `live`, 30 a second for 10 s with a 100 ms deadline;
/// else reliable, stop-and-wait (window 1), each sent when the one before is acknowledged,
/// 300 of them.
fn app_limited(forward: ImpairConfig, max_datagram: usize, len: usize, live: bool) -> AppLimited {
    let back = ImpairConfig {
        delay: forward.delay,
        ..Default::default()
    };
    let config = SenderConfig {
        max_datagram_size: Some(max_datagram),
        window: if live { 8 } else { 1 },
        ..SenderConfig::default()
    };
    let mut link = Link::new(config, ReceiverConfig::default(), forward, back, 1);
    let interval = Duration::from_micros(33_333);
    let deadline = Duration::from_millis(100);
    let mut submitted = Vec::new();
    let limit = Timestamp::ZERO + Duration::from_secs(30);
    for i in 0..300u64 {
        if live {
            link.run_until(Timestamp::ZERO + interval * i as u32);
        } else {
            while !link.tx.can_send(StreamId::FRAMES) && link.now < limit {
                let until = link.now + Duration::from_millis(1);
                link.step(until);
            }
        }
        let frame = if live {
            OutgoingFrame::live(StreamId::FRAMES, body(len, i), deadline)
        } else {
            OutgoingFrame::frame(StreamId::FRAMES, body(len, i)).reliable(true)
        };
        let id = link.tx.send(link.now, frame).unwrap();
        submitted.push((id, link.now));
    }
    let end = link.now + Duration::from_secs(1);
    link.run_until(end);
    // Latencies from the 31st frame on: after start-up.
    let settled = submitted[30].1;
    let mut latencies = Vec::new();
    let mut whole = 0;
    for (t, e) in &link.rx_events {
        if let ReceiverEvent::Frame(f) = e {
            whole += 1;
            let (_, at) = submitted.iter().find(|(id, _)| *id == f.frame).unwrap();
            if *at >= settled {
                latencies.push(t.saturating_since(*at).as_micros() as u32);
            }
        }
    }
    let st = link.tx.stats();
    let out = AppLimited {
        estimate: link.tx.path().bandwidth.unwrap_or(0.0) * 8e-6,
        p50: harness::quantile(&latencies, 0.5),
        p99: harness::quantile(&latencies, 0.99),
        whole,
        submitted: submitted.len(),
        retransmitted: st.chunks_retransmitted as f64 / st.datagrams_sent.max(1) as f64,
    };
    println!(
        "{} frames of {} kB, datagrams up to {max_datagram} B: estimate {:.0} Mbit/s, latency \
         p50 {:?} p99 {:?} (after 30 frames), {} of {} whole, {:.2}% retransmitted",
        if live { "live 30 fps" } else { "stop-and-wait" },
        len / 1000,
        out.estimate,
        out.p50,
        out.p99,
        out.whole,
        out.submitted,
        out.retransmitted * 100.0,
    );
    out
}

/// A veth pair between namespaces: 1 Gbit/s, 0.1 ms each way, 1472-byte datagrams.
fn veth() -> ImpairConfig {
    ImpairConfig {
        delay: Duration::from_micros(100),
        rate: Some(125_000_000),
        queue_bytes: 1 << 20,
        ..Default::default()
    }
}

/// Loopback: 10 Gbit/s, 20 us each way, 64 KB datagrams.
fn loopback() -> ImpairConfig {
    ImpairConfig {
        delay: Duration::from_micros(20),
        rate: Some(1_250_000_000),
        queue_bytes: 4 << 20,
        ..Default::default()
    }
}

/// An application-limited sender (a frame, then a pause) measures the path, not its own
/// pacing. A flight from idle was sampled over its send time plus the RTT, always below the
/// rate it was paced at, and a live stream's samples spanned the pauses between frames: the
/// estimate settled where a frame's send time is a few RTTs or the 5 ms sample span, and
/// every frame was spread over that long. Before: a 64 KB frame at 30 fps on a 1 Gbit/s veth
/// (the hub's subscriber links in `scripts/netns-hub.sh`) measured 26-94 Mbit/s and took
/// p50 12.5 ms, p99 20.7 ms; a 290 KB frame on loopback 253 Mbit/s and 7.4 / 8.3 ms. Now
/// samples of a flight from idle (live frames too) start one lowest RTT after its first send:
/// 1,070 Mbit/s and 0.6 / 0.6 ms, 10 Gbit/s and 0.25 / 0.25 ms. A stop-and-wait sender's
/// flights from idle were sampled so already, over fewer RTTs of its own: unchanged (9.8
/// Gbit/s), asserted so that it stays.
#[test]
fn an_application_limited_sender_measures_a_fast_path() {
    let v = app_limited(veth(), 1472, 64_000, true);
    assert!(
        v.estimate >= 500.0,
        "veth: estimate {:.0} Mbit/s",
        v.estimate
    );
    assert!(v.p50 <= Duration::from_millis(2), "veth: p50 {:?}", v.p50);
    assert!(v.p99 <= Duration::from_millis(6), "veth: p99 {:?}", v.p99);
    assert_eq!(v.whole, v.submitted);
    let l = app_limited(loopback(), 65_507, 290_000, true);
    assert!(
        l.estimate >= 5_000.0,
        "loopback: estimate {:.0} Mbit/s",
        l.estimate
    );
    assert!(
        l.p99 <= Duration::from_millis(1),
        "loopback: p99 {:?}",
        l.p99
    );
    assert_eq!(l.whole, l.submitted);
    let s = app_limited(loopback(), 65_507, 1_890_000, false);
    assert!(
        s.estimate >= 5_000.0,
        "stop-and-wait: estimate {:.0} Mbit/s",
        s.estimate
    );
    assert_eq!(s.whole, s.submitted);
}

/// ...and still not above a bottleneck's rate by more than a token bucket lets through:
/// the same live stream through a kernel-like tbf of 20 Mbit/s (a 32 KB bucket, 50 ms of
/// queue) arrives whole and on time, with few retransmissions.
#[test]
fn an_application_limited_sender_fits_a_token_bucket() {
    let tbf = ImpairConfig {
        delay: Duration::from_micros(100),
        ..ImpairConfig::tbf(2_500_000, 32 * 1024, Duration::from_millis(50))
    };
    let t = app_limited(tbf, 1472, 64_000, true);
    assert_eq!(t.whole, t.submitted);
    assert!(t.p99 <= Duration::from_millis(50), "tbf: p99 {:?}", t.p99);
    assert!(
        t.retransmitted <= 0.03,
        "tbf: {:.2}% resent",
        t.retransmitted * 100.0
    );
}

/// A bulk sender's start-up on a path whose RTT is far below the rate sample's span
/// (loopback: 40 us against 5 ms) finds the path's rate. Its full-pipe test counted RTT
/// rounds, three of which passed before a doubled rate could show in any sample: start-up
/// ended at 2.9 of 10 Gbit/s, and the probe cycle's 25% per 80 ms took 0.3 s to find the
/// rest (1,000 frames of 290 kB in 0.364 s, against 0.232 s at the path's rate; on real
/// loopback `send --loop 1000` took either 0.2 s or 0.5 s, depending on where start-up
/// ended). Now the test counts a round once per sample span: the estimate is 10.1 Gbit/s
/// 45 ms in (4.4 before), and the frames take 0.268 s.
#[test]
fn start_up_on_a_short_fast_path_finds_its_rate() {
    let config = SenderConfig {
        max_datagram_size: Some(65_507),
        ..SenderConfig::default()
    };
    let back = ImpairConfig {
        delay: loopback().delay,
        ..Default::default()
    };
    let mut link = Link::new(config, ReceiverConfig::default(), loopback(), back, 1);
    let limit = Timestamp::ZERO + Duration::from_secs(5);
    let (frames, len) = (1000, 290_000);
    let early = Timestamp::ZERO + Duration::from_millis(45);
    let mut estimate_early = None;
    for i in 0..frames as u64 {
        while !link.tx.can_send(StreamId::FRAMES) && link.now < limit {
            let until = link.now + Duration::from_micros(100);
            link.step(until);
            if estimate_early.is_none() && link.now >= early {
                estimate_early = Some(link.tx.path().bandwidth.unwrap_or(0.0) * 8e-6);
            }
        }
        let frame = OutgoingFrame::frame(StreamId::FRAMES, body(len, i)).reliable(true);
        link.tx.send(link.now, frame).unwrap();
    }
    while link.acked() < frames && link.now < limit {
        let until = link.now + Duration::from_micros(100);
        link.step(until);
    }
    let took = secs(link.now);
    let early_mbit = estimate_early.unwrap_or(0.0);
    println!(
        "{} of {frames} frames acknowledged in {took:.3} s; estimate 45 ms in: {early_mbit:.0} \
         Mbit/s",
        link.acked()
    );
    assert_eq!(link.acked(), frames);
    assert!(
        early_mbit >= 8_000.0,
        "estimate 45 ms in: {early_mbit:.0} Mbit/s"
    );
    assert!(took <= 0.30, "{frames} frames took {took:.3} s");
}
