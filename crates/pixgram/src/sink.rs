//! Where received frames go: a folder, written atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use pixgram_core::ReceivedFrame;

use crate::error::DriverError;

/// Writes `bytes` to `dir/name` so that no reader ever sees a partial file: the bytes go to a
/// hidden temporary file in the same folder, which is then renamed into place.
pub fn save_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, DriverError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&tmp);
        DriverError::File {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

/// The file name a received frame is saved under:
/// `<session>-<stream>-<frame id>-<name>`, where `name` is the sender's file name from the
/// metadata key `"file"` (reduced to safe characters), or `frame.<ext>` with the extension
/// guessed from the content.
pub fn file_name_for(frame: &ReceivedFrame, sender_name: Option<&str>) -> String {
    let name = sender_name
        .map(sanitise)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("frame.{}", extension_for(&frame.payload)));
    format!(
        "{}-{}-{:06}-{}",
        frame.session, frame.stream, frame.frame.0, name
    )
}

/// Keeps the last path component and only `[A-Za-z0-9._-]`, so a sender cannot write outside
/// the folder or create hidden files.
pub fn sanitise(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    clean.trim_start_matches('.').chars().take(100).collect()
}

/// A file extension guessed from magic bytes.
pub fn extension_for(bytes: &[u8]) -> &'static str {
    match bytes {
        [0xFF, 0xD8, ..] => "jpg",
        [0x89, b'P', b'N', b'G', ..] => "png",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_folder() {
        assert_eq!(sanitise("../../etc/passwd"), "passwd");
        assert_eq!(sanitise("..\\x\\.hidden"), "hidden");
        assert_eq!(sanitise("a b$c.jpg"), "a_b_c.jpg");
        assert_eq!(sanitise(".."), "");
    }

    #[test]
    fn save_is_atomic_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("pixgram-sink-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = save_atomic(&dir, "x.bin", b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.bin")]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
