//! `send`'s quality lines for a re-encoding live source: one per change as it happens, and
//! one in the summary.

use pixgram::publish::quality::{QualityChange, QualitySummary, StepReason};

/// One change, as printed when it happens.
pub fn change_line(c: &QualityChange) -> String {
    let mbit = |bytes_per_s: f64| bytes_per_s * 8.0 / 1e6;
    let estimate = c.estimate.map_or("no estimate yet".into(), |e| {
        format!("estimate {:.1} Mbit/s", mbit(e))
    });
    let why = match c.reason {
        StepReason::SenderDropped(n) => format!("the sender dropped {n} frames"),
        StepReason::RateAboveEstimate => "the stream is above the path's rate".into(),
        StepReason::Headroom => "the path has room".into(),
        StepReason::Probe => "no drop for a while, trying one step up".into(),
    };
    format!(
        "quality {} -> {} at {:.1} s: {why} (stream {:.1} Mbit/s, {estimate})",
        c.from,
        c.to,
        c.at.as_secs_f64(),
        mbit(c.stream_rate)
    )
}

/// The summary's quality line.
pub fn summary_line(s: &QualitySummary) -> String {
    if s.down + s.up == 0 {
        return format!("quality: {} throughout (the path had room)", s.first);
    }
    format!(
        "quality: started at {}, lowest {}, ended at {}; {} steps down, {} up",
        s.first, s.lowest, s.last, s.down, s.up
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn lines_name_the_step_and_its_reason() {
        let c = QualityChange {
            at: Duration::from_millis(1500),
            from: 80,
            to: 75,
            reason: StepReason::SenderDropped(3),
            stream_rate: 1e6,
            estimate: Some(0.5e6),
        };
        assert_eq!(
            change_line(&c),
            "quality 80 -> 75 at 1.5 s: the sender dropped 3 frames (stream 8.0 Mbit/s, \
             estimate 4.0 Mbit/s)"
        );
        let mut s = QualitySummary::starting_at(80);
        assert_eq!(
            summary_line(&s),
            "quality: 80 throughout (the path had room)"
        );
        s.record(c);
        assert_eq!(
            summary_line(&s),
            "quality: started at 80, lowest 75, ended at 75; 1 steps down, 0 up"
        );
    }
}
