//! Files to a server of the original scripts, one at a time (the format is stop-and-wait),
//! each waiting for its reply; a server that never answered three images in a row is taken
//! to be gone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::seed::SeedClient;
use crate::error::DriverError;
use crate::figures::Samples;
use crate::source;

/// Images in a row without a reply, none ever answered, after which the server is gone.
pub const GONE_AFTER: u32 = 3;

/// What a run of images came to.
#[derive(Debug, Default)]
pub struct SeedSendReport {
    /// Images answered.
    pub acked: u64,
    /// Images not answered in time.
    pub lost: u64,
    /// Bytes of the images answered.
    pub bytes: u64,
    /// Their round-trip times.
    pub rtt: Samples,
    /// How long the run took.
    pub elapsed: Duration,
    /// The run stopped: [`GONE_AFTER`] images in a row, and none before, had no reply.
    pub gone: bool,
}

/// What ended a run early.
#[derive(Debug, Error)]
pub enum SeedSendError {
    /// A file could not be read.
    #[error(transparent)]
    File(DriverError),
    /// The socket failed while sending `name`.
    #[error("sending {name} to {to}")]
    Send {
        /// The file, as given.
        name: String,
        /// The server.
        to: SocketAddr,
        /// Why.
        source: DriverError,
    },
}

/// Sends `files` `repeat` times through `client`, each waiting up to `timeout` for its reply;
/// `on_image` hears of each: the file, its size, and the round-trip time if it was answered.
pub fn send_files(
    client: &mut SeedClient,
    to: SocketAddr,
    files: &[PathBuf],
    repeat: u32,
    timeout: Duration,
    mut on_image: impl FnMut(&Path, usize, Option<Duration>),
) -> Result<SeedSendReport, SeedSendError> {
    let mut r = SeedSendReport::default();
    let mut in_a_row = 0u32;
    let start = Instant::now();
    for _ in 0..repeat {
        for path in files {
            let image = source::read_file(path).map_err(SeedSendError::File)?;
            let reply =
                client
                    .send_image(&image, timeout)
                    .map_err(|source| SeedSendError::Send {
                        name: path.display().to_string(),
                        to,
                        source,
                    })?;
            on_image(path, image.len(), reply);
            match reply {
                Some(t) => {
                    r.acked += 1;
                    r.bytes += image.len() as u64;
                    r.rtt.push(t);
                    in_a_row = 0;
                }
                None => {
                    r.lost += 1;
                    in_a_row += 1;
                    if r.acked == 0 && in_a_row >= GONE_AFTER {
                        r.gone = true;
                        r.elapsed = start.elapsed();
                        return Ok(r);
                    }
                }
            }
        }
    }
    r.elapsed = start.elapsed();
    Ok(r)
}
