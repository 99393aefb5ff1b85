use super::*;

/// Frame size at `quality` for a source whose frames are 40 KB at 80 (JPEG-like: the size
/// falls with quality, steeply at the top).
fn size_at(quality: u8) -> usize {
    let q = f64::from(quality);
    (8_000.0 + 32_000.0 * (q / 80.0).powi(2)) as usize
}

/// What the sender's estimate says of the path.
#[derive(Clone, Copy, PartialEq)]
enum Estimate {
    /// Nothing.
    None,
    /// The link's rate.
    Link,
    /// An app-limited flow's: the link's rate while the stream fills it, else a little above
    /// the stream's own rate.
    AppLimited,
}

/// A link of `rate(t)` bytes a second under a 30 fps stream: frames over the rate are
/// dropped. Returns every change and the quality of each frame.
fn run(
    seconds: f64,
    rate: impl Fn(Duration) -> f64,
    estimate: Estimate,
) -> (Vec<QualityChange>, Vec<(Duration, u8)>) {
    let interval = Duration::from_micros(33_333);
    let mut c = QualityControl::new(80, interval);
    let (mut dropped, mut credit) = (0u64, 0.0f64);
    let (mut changes, mut frames) = (Vec::new(), Vec::new());
    let n = (seconds / interval.as_secs_f64()) as u32;
    for i in 0..n {
        let now = interval * i;
        let q = c.quality();
        let bytes = size_at(q);
        // What the link carries in one interval; a frame that does not fit is dropped.
        credit = (credit + rate(now) * interval.as_secs_f64()).min(rate(now) * 0.1);
        if bytes as f64 <= credit {
            credit -= bytes as f64;
        } else {
            dropped += 1;
        }
        c.frame_sent(q, bytes, dropped);
        frames.push((now, q));
        let stream = bytes as f64 * 30.0;
        let estimate = match estimate {
            Estimate::None => None,
            Estimate::Link => Some(rate(now)),
            Estimate::AppLimited => Some(rate(now).min(stream * 1.1)),
        };
        if let Some(ch) = c.update(QualityInput {
            now,
            estimate,
            dropped,
        }) {
            assert_eq!(ch.to, c.quality());
            changes.push(ch);
        }
    }
    (changes, frames)
}

/// The best quality whose stream fits `rate` bytes a second at 30 fps.
fn best_fit(rate: f64) -> u8 {
    *LADDER
        .iter()
        .filter(|&&q| q <= 80)
        .find(|&&q| size_at(q) as f64 * 30.0 <= rate)
        .unwrap_or(&10)
}

fn quality_at(frames: &[(Duration, u8)], t: Duration) -> u8 {
    frames.iter().rev().find(|(at, _)| *at <= t).unwrap().1
}

#[test]
fn a_stream_that_fits_keeps_its_quality() {
    let (changes, _) = run(20.0, |_| 2.0e6, Estimate::Link);
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn a_slow_path_steps_down_to_fit_within_ten_seconds_and_stays() {
    // 40 KB x 30 = 1.2 MB/s at 80; the path carries 0.55 MB/s (40 fits, 50 is 12% over).
    let rate = 0.55e6;
    let (changes, frames) = run(40.0, |_| rate, Estimate::Link);
    let fit = best_fit(rate);
    // The last rungs down, a stream less than 25% above the path, are found by their drops,
    // not by the estimate.
    let at10 = quality_at(&frames, Duration::from_secs(10));
    assert!(at10 <= fit, "quality {at10} at 10 s, {fit} fits");
    // From 10 s on: not more than one rung below the best fit, and above it only on a probe
    // (at most one rung, and at most 5% of the frames).
    let at = |q| LADDER.iter().position(|&x| x == q).unwrap();
    let (floor, probe) = (LADDER[at(fit) + 1], LADDER[at(fit) - 1]);
    let late: Vec<u8> = frames
        .iter()
        .filter(|(t, _)| *t >= Duration::from_secs(10))
        .map(|(_, q)| *q)
        .collect();
    for q in &late {
        assert!(*q >= floor && *q <= probe, "quality {q}; {fit} fits");
    }
    let above = late.iter().filter(|&&q| q > fit).count();
    assert!(
        above * 20 <= late.len(),
        "{above} of {} above {fit}",
        late.len()
    );
    // It settles: from 10 s on only probes and their steps back (2, 4, 8 s apart).
    let late = changes.iter().filter(|c| c.at > Duration::from_secs(10));
    assert!(late.count() <= 6, "{changes:#?}");
    assert!(changes[0].to < changes[0].from);
}

#[test]
fn the_quality_comes_back_when_the_path_allows() {
    // 0.5 MB/s for 10 s, then 5 MB/s: back at 80 (every rung seen on the way down) within
    // 3 s of the rise, and at 80 from then on.
    let (changes, frames) = run(
        25.0,
        |t| {
            if t < Duration::from_secs(10) {
                0.5e6
            } else {
                5.0e6
            }
        },
        Estimate::Link,
    );
    assert!(quality_at(&frames, Duration::from_secs(9)) <= best_fit(0.5e6));
    let back = frames.iter().filter(|(t, _)| *t >= Duration::from_secs(13));
    assert!(back.clone().all(|(_, q)| *q == 80), "{changes:#?}");
    let ups = changes.iter().filter(|c| c.reason == StepReason::Headroom);
    assert!(ups.count() >= 1);
    // Never above the source's own quality.
    assert!(frames.iter().all(|(_, q)| *q <= 80));
}

#[test]
fn drops_alone_step_down_without_an_estimate() {
    let (changes, frames) = run(10.0, |_| 0.6e6, Estimate::None);
    assert!(!changes.is_empty());
    assert!(changes
        .iter()
        .filter(|c| c.to < c.from)
        .all(|c| matches!(c.reason, StepReason::SenderDropped(n) if n > 0)));
    assert!(quality_at(&frames, Duration::from_secs(9)) <= best_fit(0.6e6));
}

#[test]
fn a_path_below_the_lowest_rung_stays_at_the_lowest() {
    let (_, frames) = run(15.0, |_| 0.1e6, Estimate::Link);
    assert_eq!(frames.last().unwrap().1, 10);
    assert!(frames.iter().all(|(_, q)| *q >= 10));
}

#[test]
fn an_app_limited_estimate_neither_steps_down_a_stream_that_fits_nor_keeps_it_down() {
    // The estimate is the stream's own rate (x 1.1) while it fits: no step down.
    let (changes, _) = run(20.0, |_| 2.0e6, Estimate::AppLimited);
    assert!(changes.is_empty(), "{changes:?}");
    // 0.5 MB/s for 10 s, then 5 MB/s: the estimate never shows the room, probes find it.
    let (changes, frames) = run(
        40.0,
        |t| {
            if t < Duration::from_secs(10) {
                0.5e6
            } else {
                5.0e6
            }
        },
        Estimate::AppLimited,
    );
    assert!(quality_at(&frames, Duration::from_secs(9)) <= best_fit(0.5e6));
    assert_eq!(
        quality_at(&frames, Duration::from_secs(40)),
        80,
        "{changes:#?}"
    );
    assert!(changes.iter().any(|c| c.reason == StepReason::Probe));
}

#[test]
fn failed_probes_wait_longer_each_time() {
    // A path that fits 50 and not 60, for 120 s: probes to 60 fail, each waits twice as long
    // (2, 4, 8, 16, 32, 32 s ...): at most 8 probes, and every frame from 5 s on at 50 or 60.
    let rate = size_at(55) as f64 * 30.0;
    let (changes, frames) = run(120.0, |_| rate, Estimate::AppLimited);
    let probes: Vec<_> = changes
        .iter()
        .filter(|c| c.reason == StepReason::Probe)
        .map(|c| c.at.as_secs_f64())
        .collect();
    assert!((3..=8).contains(&probes.len()), "{probes:?}");
    let gaps: Vec<f64> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0] * 1.5 || g[1] >= 30.0),
        "{probes:?}"
    );
    for (t, q) in frames.iter().filter(|(t, _)| *t >= Duration::from_secs(5)) {
        assert!(*q == 50 || *q == 60, "quality {q} at {t:?}");
    }
}

#[test]
fn the_ladder_starts_at_the_sources_quality() {
    let c = QualityControl::new(83, Duration::from_millis(33));
    assert_eq!(c.quality(), 83);
    assert_eq!(&c.ladder[..3], &[83, 80, 75]);
    assert_eq!(*c.ladder.last().unwrap(), 10);
    let low = QualityControl::new(5, Duration::from_millis(33));
    assert_eq!(low.ladder, vec![5]);
}

#[test]
fn a_summary_counts_steps_and_keeps_the_recent_ones() {
    let mut s = QualitySummary::starting_at(80);
    let change = |from, to| QualityChange {
        at: Duration::ZERO,
        from,
        to,
        reason: StepReason::Headroom,
        stream_rate: 1.0,
        estimate: None,
    };
    for _ in 0..40 {
        s.record(change(80, 75));
        s.record(change(75, 80));
    }
    assert_eq!((s.down, s.up, s.lowest, s.last), (40, 40, 75, 80));
    assert_eq!(s.changes.len(), CHANGES_KEPT);
}

#[test]
fn far_above_the_estimate_steps_several_rungs_at_once() {
    // 40 KB at 80 (1.2 MB/s) into 0.3 MB/s with the link's rate as the estimate: the first
    // step goes down more than one rung, and to a rung that fits within 1.5 s (one rung per
    // hold would be at 40 then).
    let (changes, frames) = run(5.0, |_| 0.3e6, Estimate::Link);
    let at = |q| LADDER.iter().position(|&x| x == q).unwrap();
    assert!(at(changes[0].to) >= at(changes[0].from) + 2, "{changes:#?}");
    let fit = best_fit(0.3e6);
    let q = quality_at(&frames, Duration::from_millis(1500));
    assert!(q <= fit, "quality {q} at 1.5 s, {fit} fits: {changes:#?}");
}

#[test]
fn deadlines_passed_count_as_drops_only_on_a_path_shorter_than_the_frame_interval() {
    let mut stats = SenderStats::default();
    stats.frames_superseded = 2;
    stats.frames_past_deadline = 50;
    stats.frames_hopeless = 5;
    let interval = Duration::from_millis(33);
    // Through a queue on a short path: every missed deadline says the rate is short.
    assert_eq!(
        rate_drops(&stats, Some(Duration::from_micros(300)), interval),
        52
    );
    // On a long path (or before any sample), only the frames judged hopeless.
    assert_eq!(
        rate_drops(&stats, Some(Duration::from_millis(80)), interval),
        7
    );
    assert_eq!(rate_drops(&stats, None, interval), 7);
}
