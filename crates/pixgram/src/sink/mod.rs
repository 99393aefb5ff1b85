//! Where received frames go: a folder ([`FolderSink`], each frame a file written atomically
//! and durably), MJPEG on stdout ([`MjpegStdout`]), the browser viewer
//! ([`crate::viewer::Viewer`]) and, with the `window` feature, desktop windows. [`Sinks`]
//! hands each frame to every sink the application chose.

mod fanout;
mod folder;
// Issue 17: frames into NATS (the `nats` feature).
#[cfg(feature = "nats")]
pub mod nats;
mod stdout;

pub use fanout::{stream_key, Arrived, Sinks, Taken};
pub use folder::{
    check_writable, extension_for, file_name_for, sanitise, save_atomic, with_content_extension,
    FolderSink, Refusal,
};
pub use stdout::{MjpegStdout, Wrote};
