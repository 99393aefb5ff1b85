//! Reliable and live delivery over a simulated lossy link, with injected time: every run is
//! seeded, takes milliseconds, and fails the same way every time.

mod harness;

use std::collections::HashMap;
use std::time::Duration;

use harness::Link;
use pixgram_core::sender::FecPolicy;
use pixgram_core::wire::{self, Datagram};
use pixgram_core::{
    FrameId, OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, ReceiverStats, Sender,
    SenderConfig, SenderEvent, SenderStats, SessionId, StreamId, Timestamp,
};
use pixgram_netem::{BurstLoss, ImpairConfig, ImpairStats, SimRng};

fn frame_bytes(rng: &mut SimRng, id: u64) -> Vec<u8> {
    // Sizes from one chunk to 200 KB; content from the seed so corruption would show.
    let len = [0usize, 1, 1156, 30_000, 200_000][(rng.below(5)) as usize];
    (0..len).map(|i| (i as u64 * 131 + id * 7) as u8).collect()
}

struct ReliableRun {
    tx: SenderStats,
    rx: ReceiverStats,
    link: ImpairStats,
    elapsed: Duration,
}

/// Sends `n` reliable frames with the default window and checks every one arrives once and intact.
fn reliable_run(forward: ImpairConfig, seed: u64, n: u64) -> ReliableRun {
    let mut link = Link::symmetric(
        SenderConfig::default(),
        ReceiverConfig::default(),
        forward,
        seed,
    );
    let mut rng = SimRng::new(seed);
    let mut sent: HashMap<FrameId, Vec<u8>> = HashMap::new();
    let mut delivered: HashMap<FrameId, usize> = HashMap::new();
    let mut acked = 0;
    let mut next = 0;
    let limit = Timestamp::from_millis(120_000);
    while acked < n {
        while next < n && link.tx.can_send(StreamId::FRAMES) {
            let bytes = frame_bytes(&mut rng, next);
            let frame = OutgoingFrame::frame(StreamId::FRAMES, bytes.clone()).reliable(true);
            let id = link.tx.send(link.now, frame).unwrap();
            sent.insert(id, bytes);
            next += 1;
        }
        let (tx_events, rx_events) = link.step_events(link.now + Duration::from_millis(50));
        for e in tx_events {
            match e {
                SenderEvent::Acked { .. } => acked += 1,
                other => panic!("seed {seed}: reliable frame not delivered: {other:?}"),
            }
        }
        for (_, e) in rx_events {
            match e {
                ReceiverEvent::Frame(f) => {
                    assert_eq!(
                        &f.payload[..],
                        &sent[&f.frame][..],
                        "seed {seed} frame {}",
                        f.frame
                    );
                    *delivered.entry(f.frame).or_default() += 1;
                }
                ReceiverEvent::Lost { .. } => panic!("seed {seed}: receiver lost a frame: {e:?}"),
                _ => {}
            }
        }
        assert!(
            link.now < limit,
            "seed {seed}: {acked} of {n} acked after 120 s"
        );
    }
    assert_eq!(delivered.len() as u64, n, "seed {seed}");
    assert!(
        delivered.values().all(|&c| c == 1),
        "seed {seed}: a frame delivered twice"
    );
    ReliableRun {
        tx: link.tx.stats().clone(),
        rx: link.rx.stats().clone(),
        link: link.forward.stats().clone(),
        elapsed: link.now - Timestamp::ZERO,
    }
}

fn lossy(loss: f64) -> ImpairConfig {
    ImpairConfig {
        loss,
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
        ..Default::default()
    }
}

#[test]
fn reliable_delivers_every_frame_at_0_to_30_percent_loss() {
    for loss in [0.0, 0.01, 0.05, 0.10, 0.20, 0.30] {
        for seed in 1..=4 {
            let run = reliable_run(lossy(loss), seed, 100);
            if loss > 0.0 {
                assert!(
                    run.link.dropped_random > 0,
                    "loss {loss}: the link dropped nothing"
                );
                assert!(run.tx.chunks_retransmitted > 0);
            }
        }
    }
}

#[test]
fn reliable_survives_bursts_reordering_duplication_corruption_and_truncation() {
    let nasty = ImpairConfig {
        loss: 0.02,
        burst: Some(BurstLoss {
            enter: 0.01,
            leave: 0.2,
            loss_in_bad: 0.8,
        }),
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(5),
        reorder: 0.05,
        reorder_delay: Duration::from_millis(3),
        duplicate: 0.03,
        corrupt: 0.01,
        truncate: 0.01,
        ..Default::default()
    };
    for seed in 1..=6 {
        let run = reliable_run(nasty.clone(), seed, 100);
        assert!(run.link.dropped_burst > 0 && run.link.duplicated > 0 && run.link.corrupted > 0);
        // Corrupted and truncated datagrams were caught, never delivered.
        assert!(run.rx.bad_checksum + run.rx.truncated + run.rx.bad_header > 0);
    }
}

/// Issue 12 target 5: 90% of the link at 5% random loss (issue 3 asked for 80%). Seeds 1-4
/// measure 92-95%: lost datagrams leave the bottleneck idle unless the sender paces faster for
/// the loss it measures, and a window of 8 frames ran dry waiting for resends.
#[test]
fn reliable_goodput_at_5_percent_loss_is_at_least_90_percent_of_the_link() {
    // 10 MB/s link with a 256 KiB queue, 5% random loss, 5 ms each way; 1,000 frames so the
    // figure is the steady state, not slow start. The ceiling is 95% less header overhead.
    let rate = 10_000_000u64;
    let link = ImpairConfig {
        loss: 0.05,
        delay: Duration::from_millis(5),
        rate: Some(rate),
        queue_bytes: 256 * 1024,
        ..Default::default()
    };
    for seed in 1..=4 {
        let run = reliable_run(link.clone(), seed, 1000);
        let goodput = run.rx.payload_bytes_delivered as f64 / run.elapsed.as_secs_f64();
        let share = goodput / rate as f64;
        println!(
            "seed {seed}: goodput {:.2} MB/s = {:.0}% of the link; {} chunks retransmitted in \
             {:?} ({} HELLOs); link {:?}",
            goodput / 1e6,
            share * 100.0,
            run.tx.chunks_retransmitted,
            run.elapsed,
            run.tx.hellos_sent,
            run.link,
        );
        assert!(
            share >= 0.90,
            "seed {seed}: goodput only {:.0}% of the link",
            share * 100.0
        );
    }
}

/// Issue 12, found while merging: on the same link some seeds collapsed, the bandwidth
/// estimate stuck near 1 MB/s for seconds (seed 12: 22% of the link). A short round read a
/// burst of old NACKed chunks as heavy loss and reset the estimate to a stalled sample. Seeds
/// 1-40 now measure 89.2-94.7%, 39 of them at least 90%.
#[test]
fn reliable_goodput_at_5_percent_loss_never_collapses() {
    let link = ImpairConfig {
        loss: 0.05,
        delay: Duration::from_millis(5),
        rate: Some(10_000_000),
        queue_bytes: 256 * 1024,
        ..Default::default()
    };
    let mut within = 0;
    for seed in 1..=40 {
        let run = reliable_run(link.clone(), seed, 1000);
        let share = run.rx.payload_bytes_delivered as f64 / run.elapsed.as_secs_f64() / 1e7;
        println!("seed {seed}: {:.1}% of the link", share * 100.0);
        within += usize::from(share >= 0.90);
        assert!(
            share >= 0.88,
            "seed {seed}: {:.0}% of the link",
            share * 100.0
        );
    }
    assert!(
        within >= 38,
        "only {within} of 40 seeds reach 90% of the link"
    );
}

#[test]
fn live_with_fec_delivers_nearly_every_frame_on_time_at_2_percent_loss() {
    let deadline = Duration::from_millis(100);
    let interval = Duration::from_micros(33_333); // 30 frames/s
    let mut whole = 0u64;
    let mut offered = 0u64;
    let mut rebuilt = 0u64;
    for seed in 1..=5 {
        let mut link = Link::symmetric(
            SenderConfig::default(),
            ReceiverConfig::default(),
            lossy(0.02),
            seed,
        );
        let mut submitted: HashMap<FrameId, (Timestamp, Vec<u8>)> = HashMap::new();
        for n in 0..200u64 {
            let at = Timestamp::ZERO + interval * n as u32;
            while link.now < at {
                let (_, rx_events) = link.step_events(at);
                whole += check_live(&rx_events, &submitted, deadline);
            }
            let bytes: Vec<u8> = (0..60_000u64).map(|i| (i * 13 + n) as u8).collect();
            let frame = OutgoingFrame::live(StreamId::FRAMES, bytes.clone(), deadline)
                .with_fec(FecPolicy::Ratio(0.10));
            let id = link.tx.send(link.now, frame).unwrap();
            submitted.insert(id, (link.now, bytes));
            offered += 1;
        }
        let end = link.now + deadline * 2;
        while link.now < end {
            let (_, rx_events) = link.step_events(end);
            whole += check_live(&rx_events, &submitted, deadline);
        }
        rebuilt += link.rx.stats().frames_recovered_by_fec;
        assert!(link.tx.stats().parity_chunks_sent > 0);
    }
    let share = whole as f64 / offered as f64;
    println!(
        "live: {whole} of {offered} frames whole and on time ({rebuilt} completed from parity)"
    );
    assert!(
        share >= 0.99,
        "only {:.1}% whole and on time",
        share * 100.0
    );
    assert!(
        rebuilt > 0,
        "FEC never had to rebuild anything: the test proves nothing"
    );
}

/// Counts frames delivered whole and within their deadline; fails on a corrupt or late one.
fn check_live(
    events: &[(Timestamp, ReceiverEvent)],
    submitted: &HashMap<FrameId, (Timestamp, Vec<u8>)>,
    deadline: Duration,
) -> u64 {
    let mut whole = 0;
    for (at, e) in events {
        if let ReceiverEvent::Frame(f) = e {
            let (sent_at, bytes) = &submitted[&f.frame];
            assert_eq!(&f.payload[..], &bytes[..], "frame {}", f.frame);
            assert!(
                *at - *sent_at <= deadline,
                "frame {} late: {:?}",
                f.frame,
                *at - *sent_at
            );
            whole += 1;
        }
    }
    whole
}

#[test]
fn live_frames_never_wait_for_a_lost_one() {
    // A window of 2 and a link that drops everything for a while: the sender supersedes
    // old frames instead of blocking, and the receiver delivers newer frames as they complete.
    let mut link = Link::symmetric(
        SenderConfig {
            window: 2,
            ..Default::default()
        },
        ReceiverConfig::default(),
        ImpairConfig {
            delay: Duration::from_millis(5),
            ..Default::default()
        },
        3,
    );
    let deadline = Duration::from_millis(50);
    let mut delivered = Vec::new();
    for n in 0..20u64 {
        let frame = OutgoingFrame::live(StreamId::FRAMES, vec![n as u8; 5000], deadline);
        link.tx
            .send(link.now, frame)
            .expect("live sends never block");
        let until = link.now + Duration::from_millis(2);
        while link.now < until {
            let (_, rx) = link.step_events(until);
            delivered.extend(rx.into_iter().filter_map(|(_, e)| match e {
                ReceiverEvent::Frame(f) => Some(f.frame.0),
                _ => None,
            }));
        }
    }
    assert!(link.tx.stats().frames_superseded > 0);
    assert!(delivered.windows(2).all(|w| w[0] < w[1]), "{delivered:?}");
}

#[test]
fn reliable_frames_refused_for_lack_of_room_are_retried_until_delivered() {
    // The receiver holds 600 KB in total: one 400 KB frame fits, two do not. The frames
    // refused are tried again as memory frees, and every frame arrives once, intact.
    let mut link = Link::symmetric(
        SenderConfig::default(),
        ReceiverConfig {
            max_total_bytes: 600_000,
            ..ReceiverConfig::default()
        },
        ImpairConfig {
            // Loss keeps a frame in reassembly (waiting for a resend) while the next begins.
            loss: 0.05,
            delay: Duration::from_millis(2),
            ..Default::default()
        },
        11,
    );
    let mut sent: HashMap<FrameId, Vec<u8>> = HashMap::new();
    let mut delivered = 0;
    let mut acked = 0;
    let mut next = 0u64;
    while acked < 24 {
        while next < 24 && link.tx.can_send(StreamId::FRAMES) {
            let bytes: Vec<u8> = (0..400_000u64).map(|i| (i * 7 + next) as u8).collect();
            let id = link
                .tx
                .send(
                    link.now,
                    OutgoingFrame::frame(StreamId::FRAMES, bytes.clone()).reliable(true),
                )
                .unwrap();
            sent.insert(id, bytes);
            next += 1;
        }
        let (tx_events, rx_events) = link.step_events(link.now + Duration::from_millis(20));
        for e in tx_events {
            match e {
                SenderEvent::Acked { .. } => acked += 1,
                other => panic!("reliable frame not delivered: {other:?}"),
            }
        }
        for (_, e) in rx_events {
            match e {
                ReceiverEvent::Frame(f) => {
                    assert_eq!(&f.payload[..], &sent[&f.frame][..]);
                    delivered += 1;
                }
                ReceiverEvent::Lost { .. } => panic!("receiver reported a loss: {e:?}"),
                _ => {}
            }
        }
        assert!(
            link.now < Timestamp::from_millis(60_000),
            "stuck at {acked} acked"
        );
    }
    assert_eq!(delivered, 24);
    assert!(
        link.tx.stats().rejections_retried > 0,
        "no frame was ever refused: the test proves nothing"
    );
    assert!(link.rx.stats().over_budget > 0);
}

/// The first exchange on a lossy path: at 5% loss each way a HELLO or its CHALLENGE is lost
/// in about one session in ten, and the HELLO is repeated. Repeated after 100 ms, that cost
/// a live stream at 30 fps (deadline 100 ms) its first frames; after 25 ms, the first frame
/// still arrives in time. 200 sessions of three live frames each, 10 ms each way.
#[test]
fn a_lost_hello_does_not_cost_a_live_stream_its_first_frames() {
    let lossy = ImpairConfig {
        loss: 0.05,
        delay: Duration::from_millis(10),
        ..Default::default()
    };
    let (seeds, mut whole, mut late_start) = (200u64, 0usize, 0usize);
    for seed in 1..=seeds {
        let mut link = Link::new(
            SenderConfig::default(),
            ReceiverConfig::default(),
            lossy.clone(),
            lossy.clone(),
            seed,
        );
        for i in 0..3u32 {
            link.run_until(Timestamp::ZERO + Duration::from_micros(33_333) * i);
            let frame = OutgoingFrame::live(
                StreamId::FRAMES,
                vec![i as u8; 20_000],
                Duration::from_millis(100),
            )
            .with_fec(FecPolicy::Auto);
            link.tx.send(link.now, frame).unwrap();
        }
        link.run_until(link.now + Duration::from_millis(500));
        whole += link
            .rx_events
            .iter()
            .filter(|(_, e)| matches!(e, ReceiverEvent::Frame(_)))
            .count();
        // Without loss the first frame is whole one round trip (HELLO, CHALLENGE) and a
        // half after it is sent: about 30 ms.
        let first = link.rx_events.iter().find_map(|(t, e)| {
            matches!(e, ReceiverEvent::Frame(_)).then_some(t.saturating_since(Timestamp::ZERO))
        });
        late_start += usize::from(first.is_none_or(|t| t > Duration::from_millis(40)));
    }
    let n = 3 * seeds as usize;
    println!(
        "{whole} of {n} live frames whole; {late_start} of {seeds} sessions' first frames \
         waited for a repeated HELLO"
    );
    assert!(
        late_start >= 5,
        "{late_start}: the test no longer loses HELLOs"
    );
    assert!(whole as f64 >= 0.99 * n as f64, "{whole} of {n}");
}

/// A live frame's sender whose window is full hears nothing when the receiver's progress
/// reports are lost, and waits a retransmission timeout before it takes what is in flight
/// as lost. Before a frame was acknowledged that timeout was the initial 200 ms, past a
/// 100 ms deadline: on a veth with 2% loss, one first frame of 480 kB in five was lost so.
/// Now three times the first exchange's round trip sets it (20 ms here, the lowest).
#[test]
fn a_full_window_waits_three_exchange_round_trips_not_200_ms() {
    let from: std::net::SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let mut tx = Sender::new(SenderConfig::default(), SessionId(3));
    let mut rx = Receiver::new(ReceiverConfig::default());
    let t0 = Timestamp::from_millis(1);
    let frame = OutgoingFrame::live(
        StreamId::FRAMES,
        vec![1u8; 480_000],
        Duration::from_millis(100),
    )
    .with_fec(FecPolicy::Ratio(0.1));
    tx.send(t0, frame).unwrap();
    let (mut buf, mut back) = (vec![0u8; 65_536], vec![0u8; 65_536]);
    let mut whole = None;
    let mut gaps = Vec::new();
    let mut last_data = None;
    for step in 0..4_000u64 {
        let now = t0 + Duration::from_micros(step * 50);
        tx.handle_timeout(now);
        rx.handle_timeout(now);
        while let Some(t) = tx.poll_transmit(now, &mut buf) {
            if matches!(wire::parse(&buf[..t.len]), Ok(Datagram::Data(..))) {
                if let Some(prev) = last_data.replace(now) {
                    gaps.push(now.saturating_since(prev));
                }
            }
            rx.handle(now, from, &buf[..t.len]);
        }
        // Every progress report of the first 5 ms is lost on the way back.
        while let Some(t) = rx.poll_transmit(&mut back) {
            let report = matches!(wire::parse(&back[..t.len]), Ok(Datagram::Nack(_)));
            if !(report && now < t0 + Duration::from_millis(5)) {
                tx.handle(now, &back[..t.len]);
            }
        }
        while let Some(e) = rx.poll_event() {
            if matches!(e, ReceiverEvent::Frame(_)) {
                whole.get_or_insert(now.saturating_since(t0));
            }
        }
    }
    let stall = gaps.iter().max().copied().unwrap_or_default();
    println!("longest pause between datagrams {stall:?}; whole after {whole:?}");
    assert!(
        whole.is_some_and(|w| w < Duration::from_millis(100)),
        "whole after {whole:?}: the sender stopped at {last_data:?}"
    );
    assert!(
        stall >= Duration::from_millis(10),
        "{stall:?}: the window never filled"
    );
    assert!(stall <= Duration::from_millis(25), "{stall:?}");
}
