//! What a receiver knows of one RTP source (RFC 3550 appendix A.1, A.3, A.8): the extended
//! highest sequence number (so wrap-around orders correctly), packets expected and received,
//! and interarrival jitter, which become the report block of an RTCP receiver report.

/// Counters of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceptionStats {
    base_seq: u32,
    /// Highest sequence number seen, extended with the count of wrap-arounds (cycles << 16).
    pub max_ext_seq: u32,
    /// Packets received (duplicates included, as RFC 3550 counts).
    pub received: u64,
    expected_prior: u64,
    received_prior: u64,
    transit: Option<i64>,
    /// Interarrival jitter in 90 kHz units, scaled by 16 (RFC 3550 A.8).
    jitter_q4: u64,
    started: bool,
}

/// Gap in sequence numbers taken as the source restarting rather than loss or reordering.
const MAX_DROPOUT: u32 = 3000;

impl ReceptionStats {
    /// Counts a packet of `seq`, media time `rtp_ts`, arriving at `arrival` (90 kHz units of
    /// the receiver's clock). Returns its extended sequence number.
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, arrival: u32) -> u32 {
        self.received += 1;
        let transit = i64::from(arrival.wrapping_sub(rtp_ts) as i32);
        if let Some(prev) = self.transit {
            let d = (transit - prev).unsigned_abs();
            // J += (|D| - J) / 16, kept times 16.
            self.jitter_q4 = self.jitter_q4 + d - self.jitter_q4.div_ceil(16).min(self.jitter_q4);
            self.jitter_q4 = self.jitter_q4.min(u64::from(u32::MAX));
        }
        self.transit = Some(transit);
        if !self.started {
            self.started = true;
            self.base_seq = u32::from(seq);
            self.max_ext_seq = u32::from(seq);
            return self.max_ext_seq;
        }
        let max = self.max_ext_seq;
        let delta = seq.wrapping_sub(max as u16);
        if delta == 0 {
            return max;
        }
        if u32::from(delta) < MAX_DROPOUT {
            // Ahead (possibly across a wrap).
            let ext = max.wrapping_add(u32::from(delta));
            self.max_ext_seq = ext;
            ext
        } else if u32::from(delta) > 65536 - 100 {
            // Slightly behind: reordered.
            max.wrapping_sub(u32::from(seq.wrapping_sub(max as u16).wrapping_neg()))
        } else {
            // A jump: the source restarted its numbering.
            self.base_seq = u32::from(seq);
            self.max_ext_seq = u32::from(seq);
            self.received = 1;
            self.expected_prior = 0;
            self.received_prior = 0;
            self.max_ext_seq
        }
    }

    /// Packets expected so far: the span of sequence numbers seen.
    pub fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        u64::from(self.max_ext_seq.wrapping_sub(self.base_seq)) + 1
    }

    /// Packets lost so far (expected minus received; negative with duplicates).
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter, 90 kHz units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 / 16) as u32
    }

    /// Fraction lost since the previous call, in 1/256 (RFC 3550 A.3), and starts the next
    /// interval.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let interval_expected = expected.saturating_sub(self.expected_prior);
        let interval_received = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost = interval_expected.saturating_sub(interval_received);
        if interval_expected == 0 || lost == 0 {
            0
        } else {
            ((lost << 8) / interval_expected).min(255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_extend_across_the_wrap_and_loss_is_counted() {
        let mut s = ReceptionStats::default();
        assert_eq!(s.on_packet(65534, 0, 0), 65534);
        assert_eq!(s.on_packet(65535, 0, 0), 65535);
        assert_eq!(s.on_packet(1, 0, 0), 65537, "0 lost, across the wrap");
        assert_eq!(s.on_packet(0, 0, 0), 65536, "reordered behind the highest");
        assert_eq!(s.max_ext_seq, 65537);
        assert_eq!(s.expected(), 4);
        assert_eq!(s.cumulative_lost(), 0);
        s.on_packet(5, 0, 0);
        assert_eq!(s.cumulative_lost(), 3);
        assert_eq!(s.take_fraction_lost(), (3 * 256 / 8) as u8);
        assert_eq!(s.take_fraction_lost(), 0, "nothing since the last report");
    }

    #[test]
    fn jitter_follows_the_variation_of_transit_time() {
        let mut s = ReceptionStats::default();
        for i in 0..200u32 {
            // Packets 3000 ticks apart, arriving alternately 0 and 90 ticks late.
            s.on_packet(i as u16, i * 3000, i * 3000 + (i % 2) * 90);
        }
        assert!((80..=90).contains(&s.jitter()), "{}", s.jitter());
        let mut steady = ReceptionStats::default();
        for i in 0..50u32 {
            steady.on_packet(i as u16, i * 3000, i * 3000 + 500);
        }
        assert_eq!(steady.jitter(), 0);
    }
}
