//! Where frames to send come from: files, folders and glob patterns here; live sources (the
//! test pattern, MJPEG on stdin, a camera) in [`live`].

pub mod live;
// Issue 17: frames out of NATS (the `nats` feature).
#[cfg(feature = "nats")]
pub mod nats;

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::DriverError;

pub use live::{LiveSource, RunningSource, SourceError, SourceFrame, SourceReport};

/// The files to send: `files` as given (a name with `*`, `?` or `[...]` in its last part that
/// is not itself a file is a glob pattern, expanded in name order, and must match something),
/// then the regular, non-hidden files of each folder in `dirs` in name order (not recursive).
/// Every path is checked to be readable now, so a typo fails before anything is sent.
pub fn collect_files(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Vec<PathBuf>, DriverError> {
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        let is_pattern = name.as_deref().is_some_and(|n| n.contains(['*', '?', '[']));
        if is_pattern && !f.exists() {
            let dir = f
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let pattern = name.unwrap_or_default();
            let mut found: Vec<PathBuf> = fs::read_dir(dir)
                .map_err(|source| DriverError::File {
                    path: dir.to_path_buf(),
                    source,
                })?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| glob_match(&pattern, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect();
            if found.is_empty() {
                return Err(DriverError::File {
                    path: f.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the pattern matches no file",
                    ),
                });
            }
            found.sort();
            out.extend(found);
            continue;
        }
        check_readable(f)?;
        out.push(f.clone());
    }
    for d in dirs {
        let err = |source| DriverError::File {
            path: d.clone(),
            source,
        };
        let mut found: Vec<PathBuf> = fs::read_dir(d)
            .map_err(err)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Shell-style matching of one file name: `*` any run, `?` one character, `[abc]` / `[a-z]` one
/// of a set. Hidden files match only a pattern that starts with a dot.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else { return false };
                let set = &p[1..end];
                let hit = set
                    .windows(3)
                    .any(|w| w[1] == '-' && w[0] <= c && c <= w[2])
                    || set.contains(&c);
                hit && go(&p[end + 1..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

fn check_readable(path: &Path) -> Result<(), DriverError> {
    let meta = fs::metadata(path).map_err(|source| DriverError::File {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(DriverError::File {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        });
    }
    fs::File::open(path).map_err(|source| DriverError::File {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// The last part of `path` (what a frame's `"file"` says), or nothing.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, DriverError> {
    fs::read(path).map_err(|source| DriverError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads whole files into buffers it gets back once the frame is done with them, so that a
/// stream of frames does not fault in fresh pages for every file; and reads a file sent again
/// and again unchanged (`send --loop`) only once.
///
/// A file of a few hundred kilobytes read with [`read_file`] lands in a new allocation each
/// time; the allocator hands such sizes back to the kernel when they are freed, and the next
/// read faults every page in again (page faults were 9% of the sender's CPU time at 1080p,
/// docs/BENCHMARKS.md). Here each file is read once, into a reused buffer, and sent from there.
///
/// A path read twice in a row whose length, modification time and inode have not changed is
/// not read again: from its second read on, the reader keeps its bytes and hands out the same
/// buffer (reading a 1.9 MB file was the sender's largest cost in a loop of it). Another path
/// drops them, so a folder's stream keeps recycling buffers as above.
#[derive(Debug, Default)]
pub struct FileReader {
    spare: Vec<Vec<u8>>,
    last: Option<LastRead>,
}

/// The file a [`FileReader`] read last, and its bytes once it was read twice in a row.
#[derive(Debug)]
struct LastRead {
    path: PathBuf,
    stamp: FileStamp,
    bytes: Option<Bytes>,
}

/// What says a file is unchanged: length, modification time, inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
        }
    }
}

/// Buffers a [`FileReader`] keeps for reuse.
const SPARE_BUFFERS: usize = 8;

impl FileReader {
    /// A reader with no spare buffer yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The whole file, naming it in the error.
    pub fn read(&mut self, path: &Path) -> Result<Bytes, DriverError> {
        let err = |source| DriverError::File {
            path: path.to_path_buf(),
            source,
        };
        let mut f = fs::File::open(path).map_err(err)?;
        let meta = f.metadata().map_err(err)?;
        let stamp = FileStamp::of(&meta);
        let again = match &self.last {
            Some(last) if last.path == path && last.stamp == stamp => {
                if let Some(bytes) = &last.bytes {
                    return Ok(bytes.clone());
                }
                true
            }
            _ => false,
        };
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.reserve(meta.len() as usize);
        std::io::Read::read_to_end(&mut f, &mut buf).map_err(err)?;
        let bytes = Bytes::from(buf);
        self.last = Some(LastRead {
            path: path.to_path_buf(),
            stamp,
            bytes: again.then(|| bytes.clone()),
        });
        Ok(bytes)
    }

    /// Takes back a buffer from [`FileReader::read`] once nothing else holds it (otherwise it
    /// is simply dropped).
    pub fn recycle(&mut self, bytes: Bytes) {
        if self.spare.len() < SPARE_BUFFERS {
            if let Ok(buf) = bytes.try_into_mut() {
                self.spare.push(buf.into());
            }
        }
    }

    /// Buffers waiting for reuse.
    pub fn spare(&self) -> usize {
        self.spare.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reader_reuses_buffers_only_when_free() {
        let dir = std::env::temp_dir().join(format!("pixgram-reader-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, vec![1u8; 300_000]).unwrap();
        fs::write(&b, b"small").unwrap();
        let mut r = FileReader::new();
        let first = r.read(&a).unwrap();
        assert_eq!(&first[..], &vec![1u8; 300_000][..]);
        let held = first.clone();
        r.recycle(first);
        assert_eq!(r.spare(), 0, "still held elsewhere: not reused");
        r.recycle(held);
        assert_eq!(r.spare(), 1);
        assert_eq!(&r.read(&b).unwrap()[..], b"small");
        assert_eq!(r.spare(), 0);
        assert!(r.read(&dir.join("missing")).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_read_again_unchanged_is_read_once_and_a_changed_one_again() {
        let dir = std::env::temp_dir().join(format!("pixgram-again-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, vec![1u8; 1000]).unwrap();
        fs::write(&b, b"other").unwrap();
        let mut r = FileReader::new();
        let first = r.read(&a).unwrap();
        let second = r.read(&a).unwrap();
        let third = r.read(&a).unwrap();
        assert_eq!(first, second);
        assert_ne!(first.as_ptr(), second.as_ptr(), "the second read reads");
        assert_eq!(
            second.as_ptr(),
            third.as_ptr(),
            "the third shares the second's bytes"
        );
        // Changed (another length): read again.
        fs::write(&a, vec![2u8; 999]).unwrap();
        assert_eq!(&r.read(&a).unwrap()[..], &vec![2u8; 999][..]);
        assert_eq!(&r.read(&a).unwrap()[..], &vec![2u8; 999][..]);
        // Replaced by another file of the same length (another inode): read again.
        let c = dir.join("c");
        fs::write(&c, vec![3u8; 999]).unwrap();
        fs::rename(&c, &a).unwrap();
        assert_eq!(&r.read(&a).unwrap()[..], &vec![3u8; 999][..]);
        // Another path in between drops the kept bytes.
        assert_eq!(&r.read(&b).unwrap()[..], b"other");
        let again = r.read(&a).unwrap();
        assert_ne!(again.as_ptr(), third.as_ptr());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob_match("*.jpg", "a.jpg"));
        assert!(!glob_match("*.jpg", "a.png"));
        assert!(glob_match("frame-??.jpg", "frame-07.jpg"));
        assert!(glob_match("img[0-9].png", "img3.png"));
        assert!(!glob_match("img[0-9].png", "imgx.png"));
        assert!(!glob_match("*", ".hidden"));
    }

    #[test]
    fn a_pattern_expands_in_name_order_and_must_match() {
        let dir = std::env::temp_dir().join(format!("pixgram-glob-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for n in ["b.jpg", "a.jpg", "c.png"] {
            fs::write(dir.join(n), b"x").unwrap();
        }
        let got = collect_files(&[dir.join("*.jpg")], &[]).unwrap();
        assert_eq!(got, vec![dir.join("a.jpg"), dir.join("b.jpg")]);
        assert!(collect_files(&[dir.join("*.gif")], &[]).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
