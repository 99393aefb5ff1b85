//! What a run of sends came to: a verdict per frame and the totals.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use pixgram_core::{FrameId, SendFailure};
use thiserror::Error;

use crate::codec::CodecError;
use crate::error::DriverError;
use crate::figures::Samples;
use crate::publish::quality::QualitySummary;

/// The fate of one frame.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Its name (the metadata's `"file"`).
    pub name: String,
    /// Its id.
    pub frame: FrameId,
    /// Its payload's size.
    pub bytes: usize,
    /// Acknowledged (with the RTT, or for a late one the latency), or lost and why.
    pub outcome: Result<Duration, SendFailure>,
    /// Reported lost first, then acknowledged after all (`outcome` holds the latency).
    pub late: bool,
}

/// Frames not delivered remembered by name (the most recent; the counts stay exact).
pub(crate) const NAMED_MAX: usize = 4096;
/// Names of frames never sent that a report keeps.
pub const NAMES_KEPT: usize = 20;

/// What ended a run of sends early.
#[derive(Debug, Error)]
pub enum PublishError {
    /// The socket or the receiver.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// A file could not be re-encoded as asked.
    #[error("{}: {source}", path.display())]
    Transcode {
        /// The file.
        path: PathBuf,
        /// Why.
        source: CodecError,
    },
    /// The sender refused one frame (too large, ...).
    #[error("{name}: {source}")]
    Refused {
        /// The frame's name.
        name: String,
        /// Why.
        source: DriverError,
    },
}

/// What a run of sends came to.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Frames handed to the sender.
    pub sent: u64,
    /// Frames acknowledged.
    pub acked: u64,
    /// Frames lost.
    pub lost: u64,
    /// Frames asked for but never handed to the sender (the run ended first).
    pub unsent: u64,
    /// Frames first reported lost, then acknowledged (already in `acked`).
    pub late_acks: u64,
    /// Reliable files sent again after the receiver expired them.
    pub retried: u64,
    /// Payload bytes acknowledged.
    pub bytes_acked: u64,
    /// Round-trip times of the acknowledged frames.
    pub rtt: Samples,
    /// Send-to-acknowledgement latencies.
    pub latency: Samples,
    /// How long the run took.
    pub elapsed: Duration,
    /// What ended the run early, if anything.
    pub error: Option<PublishError>,
    /// The stop flag ended the run.
    pub interrupted: bool,
    /// Frames lost, by id: name, size, why.
    pub not_delivered: BTreeMap<FrameId, (String, usize, SendFailure)>,
    /// Names of the first frames never sent.
    pub unsent_names: Vec<String>,
    /// What became of a re-encoding source's quality, when it was stepped.
    pub quality: Option<QualitySummary>,
}

impl SendReport {
    /// Frames asked for: sent, or meant to be and never sent.
    pub fn asked(&self) -> u64 {
        self.sent + self.unsent
    }
}
