//! Figures for reports: percentiles of durations, rate lines, shares.

use std::time::Duration;

/// Collects durations and answers percentiles.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// The `p`-th percentile (nearest rank), `None` if empty.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, self.0.len()) - 1])
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// "p50 X ms p99 Y ms", or "n/a".
    pub fn describe(&mut self) -> String {
        match (self.percentile(50.0), self.percentile(99.0)) {
            (Some(a), Some(b)) => format!("p50 {} p99 {}", ms(a), ms(b)),
            _ => "n/a".into(),
        }
    }
}

/// "12.34 ms".
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// "N frames, B bytes in T s: F frames/s, M MB/s".
pub fn rate_line(frames: u64, bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs < 1e-3 {
        // Too short a span for a meaningful rate.
        return format!("{frames} frames, {:.2} MB", bytes as f64 / 1e6);
    }
    format!(
        "{frames} frames, {:.2} MB in {:.2} s: {:.1} frames/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        secs,
        frames as f64 / secs,
        bytes as f64 / 1e6 / secs
    )
}

/// "96.7%", or "n/a" of nothing.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "n/a".into();
    }
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = Samples::default();
        for i in 1..=100 {
            s.push(Duration::from_millis(i));
        }
        assert_eq!(s.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(s.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(s.percentile(100.0), Some(Duration::from_millis(100)));
    }
}
