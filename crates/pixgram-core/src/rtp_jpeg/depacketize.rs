//! The receiver's half of RFC 2435: RTP packets in (any order), complete JFIF files out.
//!
//! Packets are grouped into frames by RTP timestamp and placed by fragment offset, so
//! reordering within a frame costs nothing; frames are ordered by extended sequence number
//! (wrap-around included). A frame is delivered once every byte from offset 0 to the end of
//! its marker packet is there; when a later frame completes, or when no packet came for it in
//! [`DepacketizerConfig::frame_timeout`], an incomplete one is dropped and counted, or, with
//! restart markers and [`DepacketizerConfig::partial`], delivered with its missing restart
//! intervals filled with grey. A new SSRC (the sender restarted) abandons what the old one
//! left unfinished. Memory is bounded: at most [`DepacketizerConfig::max_frames`] frames of at
//! most [`DepacketizerConfig::max_frame_bytes`] each, and 127 cached table pairs.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::jfif::{self, FrameHeader, QuantTable};
use super::jpeg::Subsampling;
use super::partial::intervals_present;
use super::payload_header::parse_jpeg_payload;
use super::reception::ReceptionStats;
use super::rtp_header::RtpHeader;
use super::tables::tables_for_q;
use crate::time::Timestamp;

/// Limits and choices of a [`Depacketizer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepacketizerConfig {
    /// Largest frame (scan bytes) assembled; larger ones are dropped and counted.
    pub max_frame_bytes: usize,
    /// Frames assembled at once; past it the oldest is given up.
    pub max_frames: usize,
    /// An incomplete frame with no packet for this long is given up.
    pub frame_timeout: Duration,
    /// Deliver the decodable part of incomplete frames that have restart markers.
    pub partial: bool,
    /// The exact frame size out of band (`a=x-dimensions`): used when the in-band size is 0
    /// (over 2040 px) or rounds to it (sizes not a multiple of 8).
    pub dimensions: Option<(u16, u16)>,
    /// Accept only this payload type (`None`: any).
    pub payload_type: Option<u8>,
}

impl Default for DepacketizerConfig {
    fn default() -> Self {
        DepacketizerConfig {
            max_frame_bytes: 16 << 20,
            max_frames: 4,
            frame_timeout: Duration::from_millis(500),
            partial: false,
            dimensions: None,
            payload_type: None,
        }
    }
}

/// A rebuilt frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpJpegFrame {
    /// Its source.
    pub ssrc: u32,
    /// Its 90 kHz media time.
    pub timestamp: u32,
    /// A complete JFIF file.
    pub jfif: Vec<u8>,
    /// Some restart intervals were missing and are grey.
    pub partial: bool,
    /// Pixels.
    pub width: u16,
    /// Pixels.
    pub height: u16,
}

/// Why a frame was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLoss {
    /// A fragment never came.
    MissingFragment,
    /// Larger than `max_frame_bytes`.
    TooLarge,
    /// Q 128-254 with tables never received, or a reserved Q.
    NoTables,
    /// Size 0 in band and none out of band (x-dimensions).
    NoDimensions,
    /// Its source changed SSRC before it was complete.
    SourceChanged,
}

/// What the depacketizer has for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepacketizerEvent {
    /// A frame, whole or (with `partial`) partly grey.
    Frame(RtpJpegFrame),
    /// A frame given up.
    Lost {
        /// Its source.
        ssrc: u32,
        /// Its media time.
        timestamp: u32,
        /// Why.
        reason: FrameLoss,
    },
}

/// Counters: every packet lands in exactly one of `accepted` or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DepacketizerStats {
    /// Packets placed into a frame.
    pub accepted: u64,
    /// Datagrams that are not RTP.
    pub not_rtp: u64,
    /// Packets of another payload type.
    pub wrong_payload_type: u64,
    /// Packets with a JPEG header that cannot be read, a type other than 0/1/64/65, or a
    /// fragment that overlaps another.
    pub malformed: u64,
    /// Packets already received.
    pub duplicates: u64,
    /// Packets of a frame already delivered or given up.
    pub late: u64,
    /// Frames delivered whole.
    pub frames: u64,
    /// Frames delivered with grey intervals.
    pub partial_frames: u64,
    /// Frames given up (every [`FrameLoss`]).
    pub frames_lost: u64,
    /// Frames given up for a missing fragment.
    pub lost_missing_fragment: u64,
    /// Times the source's SSRC changed.
    pub ssrc_changes: u64,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Piece {
    pub(super) len: u32,
    /// Restart header: the index of the interval the piece starts in (0x3FFF: unknown).
    pub(super) count: u16,
    /// It starts an interval (the F bit; always for types 0/1).
    pub(super) first: bool,
}

#[derive(Debug)]
pub(super) struct Assembly {
    timestamp: u32,
    first_seq: u32,
    last_seq: u32,
    rtp_type: u8,
    q: u8,
    w8: u8,
    h8: u8,
    restart_interval: u16,
    tables: Option<[QuantTable; 2]>,
    pub(super) data: Vec<u8>,
    pub(super) pieces: BTreeMap<u32, Piece>,
    received: u64,
    pub(super) end: Option<u32>,
    last_packet: Timestamp,
    too_large: bool,
}

/// The current source.
#[derive(Debug)]
struct Source {
    ssrc: u32,
    reception: ReceptionStats,
}

/// RTP/JPEG packets in, [`DepacketizerEvent`]s out. Pure: time comes in as `now`.
#[derive(Debug)]
pub struct Depacketizer {
    config: DepacketizerConfig,
    source: Option<Source>,
    frames: Vec<Assembly>,
    /// Frames recently finished: their timestamp, and the highest extended sequence number
    /// of a frame delivered whole (`None` for one given up), to tell late packets from new
    /// frames.
    done: VecDeque<(u32, Option<u32>)>,
    q_cache: BTreeMap<u8, [QuantTable; 2]>,
    events: VecDeque<DepacketizerEvent>,
    stats: DepacketizerStats,
}

const DONE_REMEMBERED: usize = 16;

impl Depacketizer {
    /// A depacketizer with `config`.
    pub fn new(config: DepacketizerConfig) -> Self {
        Depacketizer {
            config,
            source: None,
            frames: Vec::new(),
            done: VecDeque::new(),
            q_cache: BTreeMap::new(),
            events: VecDeque::new(),
            stats: DepacketizerStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &DepacketizerStats {
        &self.stats
    }

    /// Frames being assembled now (at most [`DepacketizerConfig::max_frames`]).
    pub fn frames_in_progress(&self) -> usize {
        self.frames.len()
    }

    /// The current source's SSRC and reception counters (for RTCP receiver reports).
    pub fn reception(&mut self) -> Option<(u32, &mut ReceptionStats)> {
        self.source.as_mut().map(|s| (s.ssrc, &mut s.reception))
    }

    /// Takes one datagram that arrived at `now`. Then drain [`Depacketizer::poll_event`].
    pub fn handle_packet(&mut self, now: Timestamp, datagram: &[u8]) {
        let Ok((rtp, range)) = RtpHeader::parse(datagram) else {
            self.stats.not_rtp += 1;
            return;
        };
        if self
            .config
            .payload_type
            .is_some_and(|pt| pt != rtp.payload_type)
        {
            self.stats.wrong_payload_type += 1;
            return;
        }
        let Some(p) = parse_jpeg_payload(&datagram[range]) else {
            self.stats.malformed += 1;
            return;
        };
        if self.source.as_ref().is_some_and(|s| s.ssrc != rtp.ssrc) {
            self.stats.ssrc_changes += 1;
            for a in std::mem::take(&mut self.frames) {
                self.give_up(a, FrameLoss::SourceChanged);
            }
            self.done.clear();
            self.source = None;
        }
        let arrival = (now.as_micros().wrapping_mul(9) / 100) as u32;
        let source = self.source.get_or_insert(Source {
            ssrc: rtp.ssrc,
            reception: ReceptionStats::default(),
        });
        let ext_seq = source
            .reception
            .on_packet(rtp.sequence, rtp.timestamp, arrival);
        // A packet of a frame already finished is late, unless that frame was delivered whole
        // and this packet follows it: a sender that gives consecutive frames one timestamp
        // (GStreamer's rtpjpegpay fed untimestamped buffers does) starts a new frame.
        let finished = self
            .done
            .iter()
            .rev()
            .find(|d| d.0 == rtp.timestamp)
            .copied();
        match finished {
            Some((_, Some(last))) if (ext_seq.wrapping_sub(last) as i32) > 0 => {
                self.done.retain(|d| d.0 != rtp.timestamp);
            }
            Some(_) => {
                self.stats.late += 1;
                return;
            }
            None => {}
        }
        let idx = match self
            .frames
            .iter()
            .position(|a| a.timestamp == rtp.timestamp)
        {
            Some(i) => i,
            None => {
                if self.frames.len() >= self.config.max_frames.max(1) {
                    let oldest = self.oldest();
                    let a = self.frames.remove(oldest);
                    self.finish_incomplete(a);
                }
                self.frames.push(Assembly {
                    timestamp: rtp.timestamp,
                    first_seq: ext_seq,
                    last_seq: ext_seq,
                    rtp_type: p.rtp_type,
                    q: p.q,
                    w8: p.w8,
                    h8: p.h8,
                    restart_interval: p.restart.map_or(0, |r| r.0),
                    tables: None,
                    data: Vec::new(),
                    pieces: BTreeMap::new(),
                    received: 0,
                    end: None,
                    last_packet: now,
                    too_large: false,
                });
                self.frames.len() - 1
            }
        };
        let a = &mut self.frames[idx];
        a.last_packet = now;
        a.first_seq = a.first_seq.min(ext_seq);
        a.last_seq = a.last_seq.max(ext_seq);
        let len = p.data.len() as u32;
        let end = p.offset as usize + p.data.len();
        if end > self.config.max_frame_bytes {
            a.too_large = true;
            self.stats.accepted += 1;
        } else if a.pieces.contains_key(&p.offset) {
            self.stats.duplicates += 1;
            return;
        } else if overlaps(&a.pieces, p.offset, len) {
            self.stats.malformed += 1;
            return;
        } else {
            if a.data.len() < end {
                a.data.resize(end, 0);
            }
            a.data[p.offset as usize..end].copy_from_slice(p.data);
            let (count, first) = p.restart.map_or((0x3FFF, true), |r| (r.2, r.1));
            a.pieces.insert(p.offset, Piece { len, count, first });
            a.received += u64::from(len);
            self.stats.accepted += 1;
        }
        if p.offset == 0 {
            a.tables = p.tables;
            a.q = p.q;
        }
        if rtp.marker {
            a.end = Some(end as u32);
        }
        let complete =
            a.end.is_some_and(|e| u64::from(e) == a.received) && a.pieces.contains_key(&0);
        if complete || (a.too_large && a.end.is_some()) {
            let a = self.frames.swap_remove(idx);
            // Older frames still incomplete will not be completed now: they go first, so
            // events stay in sequence order.
            while let Some(i) = (0..self.frames.len())
                .filter(|&i| self.frames[i].first_seq < a.first_seq)
                .min_by_key(|&i| self.frames[i].first_seq)
            {
                let o = self.frames.swap_remove(i);
                self.finish_incomplete(o);
            }
            if a.too_large {
                self.give_up(a, FrameLoss::TooLarge);
            } else {
                self.deliver(a, false);
            }
        }
    }

    /// Whether [`Depacketizer::poll_event`] has something.
    pub fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<DepacketizerEvent> {
        self.events.pop_front()
    }

    /// When [`Depacketizer::handle_timeout`] should next be called: the earliest moment an
    /// incomplete frame times out (`None`: no frame in progress).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let t = self.config.frame_timeout.as_micros() as u64;
        self.frames
            .iter()
            .map(|a| Timestamp::from_micros(a.last_packet.as_micros() + t))
            .min()
    }

    /// Gives up the frames whose time is up at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(i) = self
            .frames
            .iter()
            .position(|a| now.saturating_since(a.last_packet) >= self.config.frame_timeout)
        {
            let a = self.frames.swap_remove(i);
            self.finish_incomplete(a);
        }
    }

    /// Gives up every frame in progress (the stream ended).
    pub fn flush(&mut self) {
        for a in std::mem::take(&mut self.frames) {
            self.finish_incomplete(a);
        }
    }

    fn oldest(&self) -> usize {
        (0..self.frames.len())
            .min_by_key(|&i| self.frames[i].first_seq)
            .unwrap_or(0)
    }

    fn remember_done(&mut self, ts: u32, whole_up_to: Option<u32>) {
        if self.done.len() >= DONE_REMEMBERED {
            self.done.pop_front();
        }
        self.done.push_back((ts, whole_up_to));
    }

    fn finish_incomplete(&mut self, a: Assembly) {
        if a.too_large {
            self.give_up(a, FrameLoss::TooLarge);
        } else if self.config.partial && a.restart_interval > 0 && a.pieces.contains_key(&0) {
            self.deliver(a, true);
        } else {
            self.give_up(a, FrameLoss::MissingFragment);
        }
    }

    fn give_up(&mut self, a: Assembly, reason: FrameLoss) {
        self.remember_done(a.timestamp, None);
        self.stats.frames_lost += 1;
        if reason == FrameLoss::MissingFragment {
            self.stats.lost_missing_fragment += 1;
        }
        self.events.push_back(DepacketizerEvent::Lost {
            ssrc: self.source.as_ref().map_or(0, |s| s.ssrc),
            timestamp: a.timestamp,
            reason,
        });
    }

    /// The tables of `a`: in band (cached for Q 128-254), cached, or computed (Q 1-99).
    fn tables(&mut self, a: &Assembly) -> Option<[QuantTable; 2]> {
        match a.q {
            1..=99 => {
                let [l, c] = tables_for_q(a.q);
                let t = |d: [u8; 64]| QuantTable {
                    wide: false,
                    data: d.to_vec(),
                };
                Some([t(l), t(c)])
            }
            128..=254 => match &a.tables {
                Some(t) => {
                    self.q_cache.insert(a.q, t.clone());
                    Some(t.clone())
                }
                None => self.q_cache.get(&a.q).cloned(),
            },
            255 => a.tables.clone(),
            _ => None,
        }
    }

    fn size(&self, a: &Assembly) -> Option<(u16, u16)> {
        let pick = |b: u8, exact: Option<u16>| match (b, exact) {
            (0, Some(e)) => Some(e),
            (0, None) => None,
            (b, Some(e)) if e.div_ceil(8) == u16::from(b) => Some(e),
            (b, _) => Some(u16::from(b) * 8),
        };
        let d = self.config.dimensions;
        Some((pick(a.w8, d.map(|d| d.0))?, pick(a.h8, d.map(|d| d.1))?))
    }

    fn deliver(&mut self, mut a: Assembly, partial: bool) {
        let Some(tables) = self.tables(&a) else {
            return self.give_up(a, FrameLoss::NoTables);
        };
        let Some((width, height)) = self.size(&a) else {
            return self.give_up(a, FrameLoss::NoDimensions);
        };
        let subsampling = if a.rtp_type & 1 == 0 {
            Subsampling::Yuv422
        } else {
            Subsampling::Yuv420
        };
        let header = FrameHeader {
            subsampling,
            width,
            height,
            restart_interval: a.restart_interval,
            tables,
        };
        let mut out = Vec::with_capacity(jfif::MAX_HEADER_LEN + a.data.len() + 2);
        jfif::write_header(&header, &mut out);
        if partial {
            let intervals = intervals_present(&a);
            let (mw, mh) = subsampling.mcu();
            let mcus = (u32::from(width).div_ceil(mw) * u32::from(height).div_ceil(mh)) as usize;
            let ri = usize::from(a.restart_interval);
            let n = mcus.div_ceil(ri);
            for i in 0..n {
                match intervals.get(&i) {
                    Some(r) => {
                        let d = &a.data[r.clone()];
                        out.extend_from_slice(d.strip_suffix(&[0xFF, 0xD9]).unwrap_or(d));
                    }
                    None => jfif::grey_mcus(subsampling, ri.min(mcus - i * ri), &mut out),
                }
                if i + 1 < n {
                    out.extend_from_slice(&[0xFF, 0xD0 + (i % 8) as u8]);
                }
            }
            self.stats.partial_frames += 1;
        } else {
            out.append(&mut a.data);
            self.stats.frames += 1;
        }
        jfif::finish(&mut out);
        self.remember_done(a.timestamp, (!partial).then_some(a.last_seq));
        self.events
            .push_back(DepacketizerEvent::Frame(RtpJpegFrame {
                ssrc: self.source.as_ref().map_or(0, |s| s.ssrc),
                timestamp: a.timestamp,
                jfif: out,
                partial,
                width,
                height,
            }));
    }
}

fn overlaps(pieces: &BTreeMap<u32, Piece>, offset: u32, len: u32) -> bool {
    let before = pieces
        .range(..offset)
        .next_back()
        .is_some_and(|(o, p)| o + p.len > offset);
    let after = pieces
        .range(offset..)
        .next()
        .is_some_and(|(o, _)| *o < offset + len);
    before || after
}
