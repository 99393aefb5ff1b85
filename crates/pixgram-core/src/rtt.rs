//! Round-trip time estimation and the retransmission timeout, as in RFC 6298.

use std::time::Duration;

/// Smoothed RTT, its variation and the retransmission timeout derived from them.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    latest: Option<Duration>,
    min_rto: Duration,
    max_rto: Duration,
    initial_rto: Duration,
}

impl RttEstimator {
    /// An estimator with no sample yet. `initial_rto` is used until the first sample; every RTO
    /// is kept within `min_rto..=max_rto`.
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            latest: None,
            min_rto,
            // A ceiling below the floor (a library caller's mistake) must not make clamp panic.
            max_rto: max_rto.max(min_rto),
            initial_rto,
        }
    }

    /// Takes one RTT sample (RFC 6298 section 2: alpha = 1/8, beta = 1/4). Samples from
    /// retransmitted frames must not be fed (Karn's algorithm).
    pub fn on_sample(&mut self, rtt: Duration) {
        self.latest = Some(rtt);
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + rtt / 8);
            }
        }
    }

    /// Smoothed RTT, if any sample arrived.
    pub fn smoothed(&self) -> Option<Duration> {
        self.srtt
    }

    /// The most recent sample.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// The retransmission timeout: `srtt + 4 * rttvar`, clamped.
    pub fn rto(&self) -> Duration {
        let raw = match self.srtt {
            None => self.initial_rto,
            Some(srtt) => srtt + (self.rttvar * 4).max(Duration::from_millis(1)),
        };
        raw.clamp(self.min_rto, self.max_rto)
    }

    /// The RTO after `backoffs` consecutive expiries: doubled each time, clamped.
    pub fn backed_off(&self, backoffs: u32) -> Duration {
        self.rto()
            .saturating_mul(1u32 << backoffs.min(16))
            .min(self.max_rto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(
            Duration::from_millis(200),
            Duration::from_millis(5),
            Duration::from_secs(2),
        )
    }

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut e = est();
        assert_eq!(e.rto(), Duration::from_millis(200));
        e.on_sample(Duration::from_millis(40));
        assert_eq!(e.smoothed(), Some(Duration::from_millis(40)));
        // 40 + 4 * 20
        assert_eq!(e.rto(), Duration::from_millis(120));
    }

    #[test]
    fn steady_samples_shrink_the_variance() {
        let mut e = est();
        for _ in 0..50 {
            e.on_sample(Duration::from_millis(10));
        }
        assert!(e.rto() < Duration::from_millis(12), "{:?}", e.rto());
        assert!(e.rto() >= Duration::from_millis(10));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut e = est();
        e.on_sample(Duration::from_millis(100));
        assert_eq!(e.backed_off(1), e.rto() * 2);
        assert_eq!(e.backed_off(30), Duration::from_secs(2));
    }
}
