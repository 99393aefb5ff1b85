//! The payload format end to end: JPEG -> packets -> (reordered, lost, duplicated) -> JFIF.

use proptest::prelude::*;

use super::jfif::{self, FrameHeader, QuantTable};
use super::*;
use crate::time::Timestamp;

fn tables(q: u8) -> [QuantTable; 2] {
    tables::tables_for_q(q).map(|t| QuantTable {
        wide: false,
        data: t.to_vec(),
    })
}

/// A JPEG whose header pixgram writes itself and whose scan is `scan` (not decodable unless
/// the scan is; the payload format does not look inside it).
fn jpeg(w: u16, h: u16, sub: Subsampling, dri: u16, scan: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let header = FrameHeader {
        subsampling: sub,
        width: w,
        height: h,
        restart_interval: dri,
        tables: tables(75),
    };
    jfif::write_header(&header, &mut out);
    out.extend_from_slice(scan);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// Scan bytes with no marker in them.
fn scan_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + usize::from(seed)) % 255) as u8)
        .collect()
}

/// A scan of `n` restart intervals of grey MCUs (decodable), `mcus` MCUs each.
fn restart_scan(sub: Subsampling, n: usize, mcus: usize) -> Vec<u8> {
    let mut s = Vec::new();
    for i in 0..n {
        jfif::grey_mcus(sub, mcus, &mut s);
        if i + 1 < n {
            s.extend_from_slice(&[0xFF, 0xD0 + (i % 8) as u8]);
        }
    }
    s
}

fn packets(file: &[u8], mtu: usize, first_sequence: u16, ssrc: u32, ts: u32) -> Vec<Vec<u8>> {
    let frame = jpeg::parse(file).unwrap();
    let mut p = Packetizer::new(PacketizerConfig {
        payload_type: 26,
        ssrc,
        first_sequence,
        mtu,
    });
    let mut out = Vec::new();
    p.packetize(&frame, ts, |d| out.push(d.to_vec()));
    out
}

fn run(d: &mut Depacketizer, pkts: &[Vec<u8>]) -> Vec<DepacketizerEvent> {
    for (i, p) in pkts.iter().enumerate() {
        d.handle_packet(Timestamp::from_micros(i as u64), p);
    }
    std::iter::from_fn(|| d.poll_event()).collect()
}

fn frames(events: &[DepacketizerEvent]) -> Vec<&RtpJpegFrame> {
    events
        .iter()
        .filter_map(|e| match e {
            DepacketizerEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

#[test]
fn a_frame_comes_back_byte_for_byte_through_the_rebuilt_header() {
    let file = jpeg(1920, 1080, Subsampling::Yuv420, 0, &scan_bytes(300_000, 1));
    let pkts = packets(&file, 1400, 7, 1, 3000);
    assert!(pkts.iter().all(|p| p.len() <= 1400));
    assert!(
        pkts.last().unwrap()[1] & 0x80 != 0,
        "marker on the last packet"
    );
    assert!(pkts[..pkts.len() - 1].iter().all(|p| p[1] & 0x80 == 0));
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let ev = run(&mut d, &pkts);
    let f = frames(&ev);
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].jfif, file,
        "the header pixgram writes is the header it rebuilds"
    );
    assert_eq!((f[0].width, f[0].height), (1920, 1080));
    assert_eq!(d.stats().frames, 1);
}

#[test]
fn sequence_numbers_wrap_and_frames_stay_in_order() {
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let mut all = Vec::new();
    let mut seq = 65_500u16;
    for k in 0..5u32 {
        let file = jpeg(
            640,
            480,
            Subsampling::Yuv422,
            0,
            &scan_bytes(30_000, k as u8),
        );
        let p = packets(&file, 1400, seq, 9, k * 3000);
        seq = seq.wrapping_add(p.len() as u16);
        all.extend(p);
    }
    let ev = run(&mut d, &all);
    let ts: Vec<u32> = frames(&ev).iter().map(|f| f.timestamp).collect();
    assert_eq!(ts, vec![0, 3000, 6000, 9000, 12_000]);
    let (_, r) = d.reception().unwrap();
    assert_eq!(r.cumulative_lost(), 0);
    assert!(r.max_ext_seq > 65_535, "extended across the wrap");
}

#[test]
fn a_missing_fragment_drops_and_counts_the_frame_only() {
    let a = packets(
        &jpeg(640, 480, Subsampling::Yuv420, 0, &scan_bytes(20_000, 1)),
        1400,
        0,
        3,
        0,
    );
    let b = packets(
        &jpeg(640, 480, Subsampling::Yuv420, 0, &scan_bytes(20_000, 2)),
        1400,
        a.len() as u16,
        3,
        3000,
    );
    let mut all: Vec<Vec<u8>> = a.clone();
    all.remove(4);
    all.extend(b);
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let ev = run(&mut d, &all);
    assert_eq!(frames(&ev).len(), 1);
    assert!(ev.contains(&DepacketizerEvent::Lost {
        ssrc: 3,
        timestamp: 0,
        reason: FrameLoss::MissingFragment
    }));
    assert_eq!(d.stats().lost_missing_fragment, 1);
    assert!(
        matches!(ev[0], DepacketizerEvent::Lost { .. }),
        "events in sequence order"
    );
    assert_eq!(d.reception().unwrap().1.cumulative_lost(), 1);
}

#[test]
fn the_last_incomplete_frame_times_out() {
    let mut p = packets(
        &jpeg(640, 480, Subsampling::Yuv420, 0, &scan_bytes(20_000, 1)),
        1400,
        0,
        3,
        0,
    );
    p.pop();
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    run(&mut d, &p);
    let t = d.poll_timeout().unwrap();
    d.handle_timeout(Timestamp::from_micros(t.as_micros() - 1));
    assert_eq!(d.poll_event(), None);
    d.handle_timeout(t);
    assert!(matches!(
        d.poll_event(),
        Some(DepacketizerEvent::Lost { .. })
    ));
    assert_eq!(d.poll_timeout(), None);
}

/// Consecutive frames under one timestamp (GStreamer's rtpjpegpay fed untimestamped
/// buffers): each is a frame of its own; a duplicate of a delivered frame's packet is late.
#[test]
fn frames_sharing_a_timestamp_are_told_apart_by_sequence() {
    let mut all = Vec::new();
    let mut seq = 65_530u16;
    for k in 0..3u8 {
        let p = packets(
            &jpeg(640, 480, Subsampling::Yuv420, 0, &scan_bytes(9000, k)),
            1400,
            seq,
            1,
            42,
        );
        seq = seq.wrapping_add(p.len() as u16);
        all.extend(p);
    }
    let dup = all[1].clone();
    all.push(dup);
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let ev = run(&mut d, &all);
    assert_eq!(frames(&ev).len(), 3);
    assert_eq!(d.stats().late, 1);
}

#[test]
fn a_new_ssrc_abandons_the_old_sources_frame() {
    let old = packets(
        &jpeg(640, 480, Subsampling::Yuv420, 0, &scan_bytes(20_000, 1)),
        1400,
        100,
        1,
        0,
    );
    let new = packets(
        &jpeg(640, 480, Subsampling::Yuv420, 0, &scan_bytes(20_000, 2)),
        1400,
        9,
        2,
        777,
    );
    let mut all = old[..5].to_vec();
    all.extend(new);
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let ev = run(&mut d, &all);
    assert_eq!(d.stats().ssrc_changes, 1);
    assert_eq!(frames(&ev).len(), 1);
    assert_eq!(frames(&ev)[0].ssrc, 2);
    assert!(ev.iter().any(|e| matches!(
        e,
        DepacketizerEvent::Lost {
            reason: FrameLoss::SourceChanged,
            ..
        }
    )));
}

#[test]
fn restart_intervals_let_a_partial_frame_through_with_grey_in_the_gap() {
    // 640x480 4:2:0: 40 x 30 MCUs; one interval per MCU row.
    let scan = restart_scan(Subsampling::Yuv420, 30, 40);
    let file = jpeg(640, 480, Subsampling::Yuv420, 40, &scan);
    let pkts = packets(&file, 200, 0, 5, 0);
    assert!(
        pkts.iter().all(|p| p[12 + 4] == 65),
        "type 65 with restart markers"
    );
    let mut cut = pkts.clone();
    cut.remove(pkts.len() / 2);
    let whole = Depacketizer::new(DepacketizerConfig::default());
    drop(whole);
    let mut strict = Depacketizer::new(DepacketizerConfig::default());
    run(&mut strict, &cut);
    strict.flush();
    assert_eq!(strict.stats().frames_lost, 1);
    let mut d = Depacketizer::new(DepacketizerConfig {
        partial: true,
        ..Default::default()
    });
    run(&mut d, &cut);
    d.flush();
    let ev: Vec<_> = std::iter::from_fn(|| d.poll_event()).collect();
    let f = frames(&ev);
    assert_eq!(f.len(), 1);
    assert!(f[0].partial);
    // Grey is what the intervals were made of: the partial frame equals the whole one.
    assert_eq!(f[0].jfif, file);
    assert_eq!(jpeg::parse(&f[0].jfif).unwrap().restart_interval, 40);
}

#[test]
fn sizes_over_2040_go_out_of_band() {
    let file = jpeg(4000, 3000, Subsampling::Yuv420, 0, &scan_bytes(50_000, 3));
    let pkts = packets(&file, 1400, 0, 1, 0);
    assert_eq!((pkts[0][12 + 6], pkts[0][12 + 7]), (0, 0));
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let ev = run(&mut d, &pkts);
    assert!(ev.iter().any(|e| matches!(
        e,
        DepacketizerEvent::Lost {
            reason: FrameLoss::NoDimensions,
            ..
        }
    )));
    let mut d = Depacketizer::new(DepacketizerConfig {
        dimensions: Some((4000, 3000)),
        ..Default::default()
    });
    assert_eq!(frames(&run(&mut d, &pkts))[0].jfif, file);
    // A size not a multiple of 8 comes back exact only with x-dimensions.
    let odd = packets(
        &jpeg(642, 482, Subsampling::Yuv420, 0, &scan_bytes(5000, 3)),
        1400,
        0,
        1,
        0,
    );
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let f = run(&mut d, &odd);
    assert_eq!((frames(&f)[0].width, frames(&f)[0].height), (648, 488));
    let mut d = Depacketizer::new(DepacketizerConfig {
        dimensions: Some((642, 482)),
        ..Default::default()
    });
    let f = run(&mut d, &odd);
    assert_eq!((frames(&f)[0].width, frames(&f)[0].height), (642, 482));
}

/// Q 1-99 tables are computed; Q 128-254 tables are cached from the last frame that had them.
#[test]
fn tables_are_computed_for_q_below_100_and_cached_above_127() {
    let file = jpeg(320, 240, Subsampling::Yuv420, 0, &scan_bytes(800, 1));
    let one = packets(&file, 1400, 0, 1, 0);
    assert_eq!(one.len(), 1);
    let p = &one[0];
    let mut q50 = p[..20].to_vec();
    q50[12 + 5] = 50;
    q50.extend_from_slice(&p[20 + 132..]);
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let f = run(&mut d, &[q50]);
    let [l, _] = tables::tables_for_q(50);
    let fr = frames(&f)[0];
    assert_eq!(jpeg::parse(&fr.jfif).unwrap().qtables[0], l);
    // Q 200 with tables, then Q 200 with none: the cached ones.
    let mut with = p.clone();
    with[12 + 5] = 200;
    let mut without = p[..20].to_vec();
    without[4..8].copy_from_slice(&3000u32.to_be_bytes());
    without[12 + 5] = 200;
    without.extend_from_slice(&[0, 0, 0, 0]);
    without.extend_from_slice(&p[20 + 132..]);
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let f = run(&mut d, &[without.clone()]);
    assert!(f.iter().any(|e| matches!(
        e,
        DepacketizerEvent::Lost {
            reason: FrameLoss::NoTables,
            ..
        }
    )));
    let mut d = Depacketizer::new(DepacketizerConfig::default());
    let f = run(&mut d, &[with, without]);
    let fr = frames(&f);
    assert_eq!(fr.len(), 2);
    assert_eq!(fr[0].jfif, fr[1].jfif);
}

#[test]
fn jpegs_rfc_2435_cannot_carry_are_refused_with_the_reason() {
    let good = jpeg(64, 64, Subsampling::Yuv420, 0, &scan_bytes(100, 1));
    assert!(jpeg::parse(&good).is_ok());
    let sof = good.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let mut progressive = good.clone();
    progressive[sof + 1] = 0xC2;
    assert_eq!(jpeg::parse(&progressive), Err(JpegError::Progressive));
    let mut twelve = good.clone();
    twelve[sof + 4] = 12;
    assert_eq!(jpeg::parse(&twelve), Err(JpegError::Precision(12)));
    let mut yuv444 = good.clone();
    yuv444[sof + 4 + 5 + 2] = 0x11;
    assert_eq!(jpeg::parse(&yuv444), Err(JpegError::Sampling("4:4:4")));
    let dht = good.windows(2).position(|w| w == [0xFF, 0xC4]).unwrap();
    let mut optimised = good.clone();
    optimised[dht + 5 + 16] ^= 1; // a symbol of the DC luminance table
    assert_eq!(jpeg::parse(&optimised), Err(JpegError::NonStandardHuffman));
    assert!(jpeg::parse(b"not a jpeg").is_err());
    assert!(jpeg::parse(&good[..good.len() / 3]).is_err());
}

#[test]
fn memory_stays_within_the_frame_limits() {
    let mut d = Depacketizer::new(DepacketizerConfig {
        max_frame_bytes: 10_000,
        max_frames: 2,
        ..Default::default()
    });
    let big = packets(
        &jpeg(640, 480, Subsampling::Yuv420, 0, &scan_bytes(20_000, 1)),
        1400,
        0,
        1,
        0,
    );
    let ev = run(&mut d, &big);
    assert!(ev.iter().any(|e| matches!(
        e,
        DepacketizerEvent::Lost {
            reason: FrameLoss::TooLarge,
            ..
        }
    )));
    // Many frames each missing their last packet: at most two assembled at once.
    for k in 1..20u32 {
        let mut p = packets(
            &jpeg(64, 64, Subsampling::Yuv420, 0, &scan_bytes(3000, 1)),
            1400,
            (k * 10) as u16,
            1,
            k * 3000,
        );
        p.pop();
        run(&mut d, &p);
        assert!(d.frames_in_progress() <= 2);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any order, with duplicates: the frame arrives whole, once.
    #[test]
    fn reordered_and_duplicated_packets_rebuild_the_frame(seed in any::<u64>(), len in 1usize..40_000) {
        let file = jpeg(800, 600, Subsampling::Yuv422, 0, &scan_bytes(len, seed as u8));
        let mut pkts = packets(&file, 600, seed as u16, 1, 0);
        let mut rng = seed | 1;
        let n = pkts.len();
        for i in (1..n).rev() {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            pkts.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let dup = pkts[(rng % n as u64) as usize].clone();
        pkts.insert(0, dup);
        let mut d = Depacketizer::new(DepacketizerConfig::default());
        let ev = run(&mut d, &pkts);
        let f = frames(&ev);
        prop_assert_eq!(f.len(), 1);
        prop_assert_eq!(&f[0].jfif, &file);
    }

    /// Arbitrary datagrams never panic, and every one is counted once.
    #[test]
    fn arbitrary_datagrams_are_counted_never_panic(data in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..50)) {
        let mut d = Depacketizer::new(DepacketizerConfig { partial: true, ..Default::default() });
        for (i, p) in data.iter().enumerate() {
            d.handle_packet(Timestamp::from_micros(i as u64 * 1000), p);
        }
        d.flush();
        let s = *d.stats();
        prop_assert_eq!(
            s.accepted + s.not_rtp + s.wrong_payload_type + s.malformed + s.duplicates + s.late,
            data.len() as u64
        );
    }
}
