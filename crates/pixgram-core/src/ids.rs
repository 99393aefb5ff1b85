//! Identifiers carried on the wire, each its own type so they cannot be mixed up.

use std::fmt;

/// A sender's session: chosen at random by the sender's driver when it starts, so a receiver can
/// tell a restarted sender (whose frame ids begin again at 0) from the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u32);

/// A stream of frames within a session: one camera, one folder, or the message channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

/// A frame within a stream. Numbered from 0 per stream and session, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameId(pub u64);

/// The position of a chunk within its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkIndex(pub u32);

impl StreamId {
    /// The stream a sender uses for JSON messages unless told otherwise.
    pub const MESSAGES: StreamId = StreamId(0);
    /// The first stream a sender uses for images unless told otherwise.
    pub const FRAMES: StreamId = StreamId(1);
}

impl FrameId {
    /// The id after this one.
    pub fn next(self) -> FrameId {
        FrameId(self.0.wrapping_add(1))
    }
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(StreamId, FrameId, ChunkIndex);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}
