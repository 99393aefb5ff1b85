//! Where received frames go: a folder ([`FolderSink`], each frame a file written atomically
//! and durably), MJPEG on stdout ([`MjpegStdout`]), the browser viewer
//! ([`crate::viewer::Viewer`]) and, with the `window` feature, desktop windows. [`Sinks`]
//! hands each frame to every sink the application chose. A folder may save on a
//! [`saver::SaverPool`] of its own, off the receive loop, each frame then confirmed when its
//! file is durable.

mod fanout;
mod folder;
// Issue 13: saving off the receive loop.
pub mod saver;
// Issue 17: frames into NATS (the `nats` feature).
#[cfg(feature = "nats")]
pub mod nats;
mod stdout;

pub use fanout::{stream_key, Arrived, Sinks, Taken};
pub use folder::{
    check_writable, extension_for, file_name_for, place_durable_file, sanitise, save_atomic,
    sync_dir, with_content_extension, FolderSink, Offered, Refusal,
};
pub use stdout::{MjpegStdout, Wrote};
