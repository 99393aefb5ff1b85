//! The stdout sink: JPEG frames back to back (MJPEG), for a player (`| ffplay -f mjpeg -`).

use std::io::{self, Write};

use crate::format::ImageFormat;

/// Writes JPEG frames to stdout until its reader goes away.
#[derive(Debug, Default)]
pub struct MjpegStdout {
    closed: bool,
    not_jpeg: u64,
}

/// What became of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrote {
    /// On stdout.
    Written,
    /// Not a JPEG: skipped (counted).
    NotJpeg,
    /// Stdout's reader has gone away (EPIPE: the player quit); nothing more is written.
    Closed,
}

impl MjpegStdout {
    /// A sink writing to this process's stdout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `frame` and flushes. Rust ignores SIGPIPE, so a reader that went away shows as
    /// [`Wrote::Closed`], not a killed process; other write errors are errors.
    pub fn write(&mut self, frame: &[u8]) -> io::Result<Wrote> {
        if self.closed {
            return Ok(Wrote::Closed);
        }
        if ImageFormat::detect(frame) != Some(ImageFormat::Jpeg) {
            self.not_jpeg += 1;
            return Ok(Wrote::NotJpeg);
        }
        let mut out = io::stdout().lock();
        match out.write_all(frame).and_then(|()| out.flush()) {
            Ok(()) => Ok(Wrote::Written),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(Wrote::Closed)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the reader has gone away.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Frames skipped for not being JPEG.
    pub fn not_jpeg(&self) -> u64 {
        self.not_jpeg
    }
}
