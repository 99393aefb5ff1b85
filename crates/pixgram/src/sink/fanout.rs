//! [`Sinks`]: one frame handed to every sink chosen, in a fixed order (the live ones first,
//! the folder last), and what each made of it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use pixgram_core::{SessionId, StreamId};

use super::folder::{sanitise, FolderSink, Offered, Refusal};
use super::stdout::{MjpegStdout, Wrote};
use crate::viewer::Viewer;

/// One frame as the sinks see it.
#[derive(Debug, Clone, Copy)]
pub struct Arrived<'a> {
    /// The sender's address (the save budget is per address).
    pub from: IpAddr,
    /// Its stream's name in the viewer and window titles ([`stream_key`]).
    pub stream: &'a str,
    /// The file name to save it under.
    pub name: &'a str,
    /// Its bytes.
    pub payload: &'a Bytes,
    /// Capture to arrival, if known.
    pub latency: Option<Duration>,
}

/// What the sinks made of one frame.
#[derive(Debug, Default)]
pub struct Taken {
    /// Where the folder saved it.
    pub saved: Option<PathBuf>,
    /// The folder's savers have it, under this ticket ([`FolderSink::take_done`] reports it).
    pub saving: Option<u64>,
    /// Why the folder did not.
    pub refused: Option<Refusal>,
    /// What stdout did with it, if it is a sink.
    pub stdout: Option<Wrote>,
}

/// The sinks frames go to; none by default.
#[derive(Default)]
pub struct Sinks {
    /// A folder.
    pub folder: Option<FolderSink>,
    /// MJPEG on stdout.
    pub stdout: Option<MjpegStdout>,
    /// The browser viewer.
    pub viewer: Option<Viewer>,
    /// Desktop windows.
    #[cfg(feature = "window")]
    pub window: Option<crate::window::WindowSink>,
}

impl Sinks {
    /// Hands `frame` to every sink: stdout, the viewer, windows, then the folder (which may
    /// only queue it for its savers: [`Taken::saving`]). An error
    /// only for a stdout write that failed other than by its reader leaving.
    pub fn frame(&mut self, frame: &Arrived) -> io::Result<Taken> {
        let mut taken = Taken::default();
        if let Some(out) = &mut self.stdout {
            taken.stdout = Some(out.write(frame.payload)?);
        }
        if let Some(v) = &self.viewer {
            v.on_frame(frame.stream, frame.payload.clone(), frame.latency);
        }
        #[cfg(feature = "window")]
        if let Some(w) = &self.window {
            w.show(frame.stream, frame.payload.clone());
        }
        if let Some(folder) = &mut self.folder {
            match folder.offer(frame.from, frame.name, frame.payload) {
                Ok(Offered::Saved(path)) => taken.saved = Some(path),
                Ok(Offered::Queued(ticket)) => taken.saving = Some(ticket),
                Err(why) => taken.refused = Some(why),
            }
        }
        Ok(taken)
    }

    /// Tells the live sinks `count` frames of `stream` were lost (`expired`: incomplete).
    pub fn lost(&self, stream: &str, count: u64, expired: bool) {
        if let Some(v) = &self.viewer {
            v.on_lost(stream, count, expired);
        }
    }

    /// Whether stdout is a sink whose reader went away.
    pub fn stdout_closed(&self) -> bool {
        self.stdout.as_ref().is_some_and(MjpegStdout::is_closed)
    }
}

/// A stream's name in the viewer and window titles: sender, session, stream.
pub fn stream_key(peer: SocketAddr, session: SessionId, stream: StreamId) -> String {
    sanitise(&format!("{peer}-{session}-{}", stream.0))
}
