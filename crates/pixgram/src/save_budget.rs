//! How much one source may write into a `--save` folder: files and bytes per second per source
//! IP address (token buckets of one second), so a flood of tiny frames cannot fill a disk with
//! empty files. Remembers at most [`MAX_SOURCES`] sources, the least recently seen going first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Sources remembered at once.
pub const MAX_SOURCES: usize = 4096;

/// Limits per source IP address; 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SaveLimits {
    /// Files per second.
    pub files_per_sec: f64,
    /// Bytes per second.
    pub bytes_per_sec: f64,
}

impl Default for SaveLimits {
    fn default() -> Self {
        SaveLimits {
            files_per_sec: 500.0,
            bytes_per_sec: 500e6,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    files: f64,
    bytes: f64,
    filled: Instant,
}

/// The budgets of every source seen recently.
#[derive(Debug, Default)]
pub struct SaveBudget {
    limits: SaveLimits,
    sources: HashMap<IpAddr, Bucket>,
    refused: u64,
}

impl SaveBudget {
    /// Budgets with these limits.
    pub fn new(limits: SaveLimits) -> Self {
        SaveBudget {
            limits,
            ..Default::default()
        }
    }

    /// Files refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Whether `from` may save a file of `len` bytes now (and charges it if so).
    pub fn admit(&mut self, from: IpAddr, len: usize, now: Instant) -> bool {
        let SaveLimits {
            files_per_sec,
            bytes_per_sec,
        } = self.limits;
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&from) {
            if let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, b)| b.filled)
                .map(|(a, _)| *a)
            {
                self.sources.remove(&oldest);
            }
        }
        let b = self.sources.entry(from).or_insert(Bucket {
            files: files_per_sec,
            bytes: bytes_per_sec,
            filled: now,
        });
        let dt = now.saturating_duration_since(b.filled).as_secs_f64();
        b.files = (b.files + dt * files_per_sec).min(files_per_sec);
        b.bytes = (b.bytes + dt * bytes_per_sec).min(bytes_per_sec);
        b.filled = now;
        let len = len as f64;
        let files_ok = files_per_sec <= 0.0 || b.files >= 1.0;
        // A file larger than a whole second's allowance passes when the bucket is full.
        let bytes_ok = bytes_per_sec <= 0.0 || b.bytes >= len.min(bytes_per_sec);
        if !(files_ok && bytes_ok) {
            self.refused += 1;
            return false;
        }
        if files_per_sec > 0.0 {
            b.files -= 1.0;
        }
        if bytes_per_sec > 0.0 {
            b.bytes -= len.min(b.bytes);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flood_of_tiny_files_is_cut_to_the_rate_and_others_are_not() {
        let mut b = SaveBudget::new(SaveLimits {
            files_per_sec: 100.0,
            bytes_per_sec: 1e6,
        });
        let t = Instant::now();
        let flood: IpAddr = "192.0.2.1".parse().unwrap();
        let honest: IpAddr = "192.0.2.2".parse().unwrap();
        let admitted = (0..15_000).filter(|_| b.admit(flood, 0, t)).count();
        assert_eq!(admitted, 100);
        assert!(b.admit(honest, 50_000, t));
        // A second later the flood gets another second's worth.
        let later = t + Duration::from_secs(1);
        let admitted = (0..15_000).filter(|_| b.admit(flood, 0, later)).count();
        assert_eq!(admitted, 100);
        assert_eq!(b.refused(), 2 * 14_900);
        // Bytes: a file over the whole allowance passes only on a full bucket.
        assert!(b.admit(honest, 5_000_000, later + Duration::from_secs(5)));
        assert!(!b.admit(honest, 5_000_000, later + Duration::from_secs(5)));
    }

    #[test]
    fn zero_means_unlimited_and_sources_are_bounded() {
        let mut b = SaveBudget::new(SaveLimits {
            files_per_sec: 0.0,
            bytes_per_sec: 0.0,
        });
        let t = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 100) {
            assert!(b.admit(IpAddr::from(i.to_be_bytes()), 1 << 20, t));
        }
        assert!(b.sources.len() <= MAX_SOURCES);
    }
}
