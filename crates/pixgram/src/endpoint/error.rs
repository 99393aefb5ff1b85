//! The error of the few-lines API.

use std::path::PathBuf;

use thiserror::Error;

use crate::error::DriverError;

/// What went wrong sending or receiving.
#[derive(Debug, Error)]
pub enum Error {
    /// The address could not be resolved.
    #[error("cannot resolve the address: {0}")]
    Address(std::io::Error),
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A value could not be encoded as JSON.
    #[error("cannot encode as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The socket, the receiver, or the protocol.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// A live source failed.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// A stream of frames ended early.
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
}
