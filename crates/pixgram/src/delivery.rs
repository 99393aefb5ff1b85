//! The delivery policy: every frame whole (reliable), or frames at a rate, each worthless
//! after a deadline (live), with optional forward error correction.

use std::time::Duration;

use pixgram_core::{FecPolicy, OutgoingFrame, SenderConfig, StreamId};
use thiserror::Error;

/// How frames are delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delivery {
    /// Every frame, whole, retransmitting lost chunks.
    Reliable,
    /// Frames at `interval`, each worthless after `deadline`, with optional FEC.
    Live {
        /// Time between frames (1 / fps).
        interval: Duration,
        /// How long a frame is worth sending.
        deadline: Duration,
        /// Parity chunks sent with each frame.
        fec: FecPolicy,
    },
}

/// A live policy that cannot be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
pub enum DeliveryError {
    /// Frames per second out of range.
    #[error("frames per second must be between 0 and 10000, not {0}")]
    Fps(f64),
    /// The deadline does not fit the wire's 16-bit milliseconds.
    #[error("a live deadline must be between 1 and 65535 ms")]
    Deadline,
}

impl Delivery {
    /// Live at `fps` frames a second, with the default deadline (three frame intervals, at
    /// least 50 ms: below 0.02 fps that is too long for the wire, [`DeliveryError::Deadline`])
    /// and no FEC.
    pub fn live(fps: f64) -> Result<Self, DeliveryError> {
        if !(fps > 0.0 && fps <= 10_000.0) {
            return Err(DeliveryError::Fps(fps));
        }
        let interval = Duration::from_secs_f64(1.0 / fps);
        Delivery::Live {
            interval,
            deadline: Duration::ZERO,
            fec: FecPolicy::Off,
        }
        .with_deadline((interval * 3).max(Duration::from_millis(50)))
    }

    /// The same live policy with another deadline (reliable delivery has none).
    pub fn with_deadline(self, deadline: Duration) -> Result<Self, DeliveryError> {
        if deadline.is_zero() || deadline > Duration::from_millis(u64::from(u16::MAX)) {
            return Err(DeliveryError::Deadline);
        }
        Ok(match self {
            Delivery::Live { interval, fec, .. } => Delivery::Live {
                interval,
                deadline,
                fec,
            },
            Delivery::Reliable => Delivery::Reliable,
        })
    }

    /// The same live policy with forward error correction `fec`.
    pub fn with_fec(self, fec: FecPolicy) -> Self {
        match self {
            Delivery::Live {
                interval, deadline, ..
            } => Delivery::Live {
                interval,
                deadline,
                fec,
            },
            Delivery::Reliable => Delivery::Reliable,
        }
    }

    /// Whether frames are live.
    pub fn is_live(&self) -> bool {
        matches!(self, Delivery::Live { .. })
    }

    /// `config` tuned for this policy. Live frames have a deadline and cannot wait for slow
    /// start from the core's cautious 5 MB/s: live starts at 50 MB/s, as every mode did before
    /// issue 12. Reliable delivery starts low, so a slow bottleneck's queue does not overflow
    /// for a whole round trip.
    pub fn tune(&self, config: SenderConfig) -> SenderConfig {
        SenderConfig {
            initial_rate: if self.is_live() {
                LIVE_INITIAL_RATE
            } else {
                config.initial_rate
            },
            ..config
        }
    }

    /// `bytes` as a frame on `stream` delivered this way.
    pub fn frame(&self, stream: StreamId, bytes: bytes::Bytes) -> OutgoingFrame {
        match *self {
            Delivery::Reliable => OutgoingFrame::frame(stream, bytes).reliable(true),
            Delivery::Live { deadline, fec, .. } => {
                OutgoingFrame::live(stream, bytes, deadline).with_fec(fec)
            }
        }
    }
}

/// Where a live stream's rate starts, in bytes per second.
const LIVE_INITIAL_RATE: f64 = 50e6;
