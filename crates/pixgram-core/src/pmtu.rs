//! Path MTU discovery on the sender's side (docs/PROTOCOL.md §8.4, after RFC 8899 DPLPMTUD):
//! start at the base size every path carries, probe larger sizes with padded PROBE HELLOs the
//! receiver confirms with a CHALLENGE carrying their length, and use the largest confirmed.
//! Pure: the sender hands in the time and says what it sent and what came back.

use std::time::Duration;

use crate::time::Timestamp;

/// Sizes tried first, in order, before bisecting: the largest UDP payload of a 1500-byte
/// Ethernet MTU, of a 9000-byte jumbo MTU, and of any IPv4 datagram (loopback).
pub const CANDIDATES: [usize; 3] = [1472, 8972, 65_507];
/// An unanswered probe is sent this many times before its size counts as too large.
pub const PROBE_TRIES: u32 = 3;
/// Once the search is done, sizes above the one in use are probed again after this long.
pub const RAISE_AFTER: Duration = Duration::from_secs(600);
/// After a black hole, the search starts again after this long.
pub const RESEARCH_AFTER: Duration = Duration::from_secs(1);
/// The search stops when the confirmed size and the smallest failed size are this close.
const RESOLUTION: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Probe {
    size: usize,
    sent_at: Option<Timestamp>,
    tries: u32,
}

/// The sender's knowledge of the largest datagram the path carries.
#[derive(Debug, Clone)]
pub struct PathMtu {
    base: usize,
    max: usize,
    current: usize,
    /// The smallest size known not to pass (`max + 1` when none is).
    failed: usize,
    probe: Option<Probe>,
    /// When the next search step may start; `None` while a probe is out or the search is
    /// off (`max <= base`).
    next_at: Option<Timestamp>,
}

impl PathMtu {
    /// Discovery between `base` (always used first) and `max`; off if `max <= base`.
    pub fn new(base: usize, max: usize) -> Self {
        PathMtu {
            base,
            max,
            current: base,
            failed: max + 1,
            probe: None,
            next_at: (max > base).then_some(Timestamp::ZERO),
        }
    }

    /// The datagram size to use now.
    pub fn current(&self) -> usize {
        self.current
    }

    fn next_size(&self) -> Option<usize> {
        let open = |s: usize| s > self.current && s < self.failed && s <= self.max;
        // The candidates, then the maximum itself (a keyed sender's is 65,463: its seal
        // takes 44 bytes of the 65,507), then bisecting.
        if let Some(c) = CANDIDATES
            .iter()
            .copied()
            .chain([self.max])
            .find(|&c| open(c))
        {
            return Some(c);
        }
        let top = self.failed.min(self.max + 1);
        (top.saturating_sub(self.current) > RESOLUTION).then(|| (self.current + top) / 2)
    }

    /// The size of a probe to send now, if one is due; `timeout` is how long an unanswered
    /// probe waits before it is sent again (a few round trips).
    pub fn poll(&mut self, now: Timestamp, timeout: Duration) -> Option<usize> {
        if let Some(p) = self.probe {
            let waited = p.sent_at.is_none_or(|t| now.saturating_since(t) >= timeout);
            if !waited {
                return None;
            }
            if p.tries < PROBE_TRIES {
                return Some(p.size);
            }
            // Too large for the path.
            self.failed = p.size;
            self.probe = None;
            self.next_at = Some(now);
        }
        if self.next_at.is_none_or(|t| now < t) {
            return None;
        }
        match self.next_size() {
            Some(size) => {
                self.next_at = None;
                self.probe = Some(Probe {
                    size,
                    sent_at: None,
                    tries: 0,
                });
                Some(size)
            }
            None => {
                // Done: look above again much later (the path may have changed).
                self.failed = self.max + 1;
                self.next_at = Some(now + RAISE_AFTER);
                None
            }
        }
    }

    /// When [`PathMtu::poll`] next has something to do.
    pub fn poll_timeout(&self, timeout: Duration) -> Option<Timestamp> {
        match self.probe {
            Some(Probe {
                sent_at: Some(t), ..
            }) => Some(t + timeout),
            Some(_) => Some(Timestamp::ZERO),
            None => self.next_at,
        }
    }

    /// The probe [`PathMtu::poll`] asked for went out at `now`.
    pub fn on_probe_sent(&mut self, now: Timestamp) {
        if let Some(p) = &mut self.probe {
            p.sent_at = Some(now);
            p.tries += 1;
        }
    }

    /// A CHALLENGE confirmed a datagram of `size` bytes arrived; `true` if it answered the
    /// probe out (then it is no answer to anything else).
    pub fn on_confirmed(&mut self, size: usize, now: Timestamp) -> bool {
        let Some(p) = self.probe.filter(|p| p.size == size && p.sent_at.is_some()) else {
            return false;
        };
        self.current = self.current.max(p.size);
        self.probe = None;
        self.next_at = Some(now);
        true
    }

    /// Datagrams of the size in use stopped getting through (acknowledgements stopped while
    /// smaller ones had passed): fall back to the base and search again soon.
    pub fn on_black_hole(&mut self, now: Timestamp) {
        if self.current <= self.base {
            return;
        }
        // Search again from the base: probes, unlike data, say what passes now.
        self.failed = self.max + 1;
        self.current = self.base;
        self.probe = None;
        self.next_at = Some(now + RESEARCH_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a path that carries datagrams up to `mtu`.
    fn search(base: usize, max: usize, mtu: usize) -> (PathMtu, u32) {
        let mut p = PathMtu::new(base, max);
        let timeout = Duration::from_millis(100);
        let mut now = Timestamp::ZERO;
        let mut sent = 0;
        for _ in 0..1000 {
            if let Some(size) = p.poll(now, timeout) {
                p.on_probe_sent(now);
                sent += 1;
                if size <= mtu {
                    assert!(p.on_confirmed(size, now + Duration::from_millis(1)));
                }
            }
            now = now + Duration::from_millis(50);
            if now > Timestamp::from_millis(100_000) {
                break;
            }
        }
        (p, sent)
    }

    #[test]
    fn finds_each_common_path_mtu_and_stays_under_it() {
        assert_eq!(search(1200, 65_507, 65_507).0.current(), 65_507);
        assert_eq!(search(1200, 65_507, 1472).0.current(), 1472);
        assert_eq!(search(1200, 65_507, 8972).0.current(), 8972);
        let (p, sent) = search(1200, 65_507, 4000);
        assert!(
            p.current() <= 4000 && p.current() > 4000 - RESOLUTION,
            "{}",
            p.current()
        );
        assert!(sent < 40, "{sent} probes");
        // Capped by the sender's maximum, which is tried before bisecting: a keyed sender's
        // (65,463) in three probes, not the twelve of a bisection from 8,972.
        assert_eq!(search(1200, 9000, 65_507).0.current(), 9000);
        let (keyed, sent) = search(1200, 65_463, 65_507);
        assert_eq!((keyed.current(), sent), (65_463, 3));
        let (off, sent) = search(1200, 1200, 65_507);
        assert_eq!((off.current(), sent), (1200, 0));
    }

    #[test]
    fn an_unanswered_size_is_tried_three_times_and_a_black_hole_falls_back() {
        let mut p = PathMtu::new(1200, 65_507);
        let t = Duration::from_millis(100);
        let mut now = Timestamp::ZERO;
        assert_eq!(p.poll(now, t), Some(1472));
        p.on_probe_sent(now);
        assert!(p.on_confirmed(1472, now));
        for _ in 0..PROBE_TRIES {
            assert_eq!(p.poll(now, t), Some(8972));
            p.on_probe_sent(now);
            assert_eq!(p.poll(now, t), None, "waits for the answer");
            now = now + t;
        }
        // 8972 failed three times: bisect between 1472 and 8972.
        let next = p.poll(now, t).unwrap();
        assert!(next > 1472 && next < 8972, "{next}");
        assert!(!p.on_confirmed(9000, now), "not the probe out");
        p.on_black_hole(now);
        assert_eq!(p.current(), 1200);
        assert_eq!(p.poll(now, t), None);
        assert_eq!(p.poll(now + RESEARCH_AFTER, t), Some(1472));
    }
}
