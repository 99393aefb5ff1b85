//! The drivers' clock: the only place pixgram reads the time for the core.

use std::time::{Duration, Instant};

use pixgram_core::Timestamp;

/// Converts between the wall clock and the core's [`Timestamp`]s (microseconds since `start`).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    /// The current time for the core.
    pub fn now(&self) -> Timestamp {
        self.at(Instant::now())
    }

    /// `instant` as a core timestamp (the epoch if it is earlier).
    pub fn at(&self, instant: Instant) -> Timestamp {
        Timestamp::from_micros(instant.saturating_duration_since(self.start).as_micros() as u64)
    }

    /// A core timestamp as a wall-clock instant.
    pub fn instant(&self, t: Timestamp) -> Instant {
        self.start + Duration::from_micros(t.as_micros())
    }
}

/// A session id that differs between runs and processes. Not secret: it only tells a restarted
/// sender from the old one.
pub fn random_session() -> pixgram_core::SessionId {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    pixgram_core::SessionId(h.finish() as u32)
}
