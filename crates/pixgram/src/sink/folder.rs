//! The folder sink: each frame a file, written atomically and durably, within a budget per
//! source.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use pixgram_core::ReceivedFrame;

use super::saver::{NotQueued, SaveDone, SaverPool, SaverStats};
use crate::error::DriverError;
pub use crate::format::extension_for;
use crate::format::ImageFormat;
use crate::save_budget::SaveBudget;

/// A folder frames are saved into, optionally within a [`SaveBudget`] per source, and
/// optionally on a [`SaverPool`] (off the caller's thread, reported later).
#[derive(Debug)]
pub struct FolderSink {
    dir: PathBuf,
    budget: Option<SaveBudget>,
    failures: u64,
    savers: Option<SaverPool>,
    /// The ticket of the next file handed to the savers.
    next_ticket: u64,
}

/// Why a frame was not saved.
#[derive(Debug)]
pub enum Refusal {
    /// Its source is over its budget of files or bytes per second.
    OverBudget,
    /// Writing it failed.
    Failed(DriverError),
    /// The savers' queue had no room in time: the disk is slower than the senders.
    Behind,
}

/// What [`FolderSink::offer`] did with a frame.
#[derive(Debug)]
pub enum Offered {
    /// Saved (durably) at this path.
    Saved(PathBuf),
    /// Handed to the savers under this ticket: [`FolderSink::take_done`] reports it.
    Queued(u64),
}

impl FolderSink {
    /// Saves into `dir` without a budget (check it first with [`check_writable`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FolderSink {
            dir: dir.into(),
            budget: None,
            failures: 0,
            savers: None,
            next_ticket: 0,
        }
    }

    /// Saves on `pool` (started for this folder) instead of on the caller's thread.
    pub fn with_savers(mut self, pool: SaverPool) -> Self {
        self.savers = Some(pool);
        self
    }

    /// Whether saves go to a saver pool.
    pub fn has_savers(&self) -> bool {
        self.savers.is_some()
    }

    /// Files handed to the savers and not reported yet.
    pub fn saving(&self) -> usize {
        self.savers.as_ref().map_or(0, SaverPool::in_progress)
    }

    /// The saver pool's counters, if there is one.
    pub fn saver_stats(&self) -> Option<SaverStats> {
        self.savers.as_ref().map(SaverPool::stats)
    }

    /// Waits (at most `timeout`) until the savers have done every file handed to them.
    pub fn drain(&self, timeout: std::time::Duration) -> bool {
        self.savers.as_ref().is_none_or(|p| p.drain(timeout))
    }

    /// Moves the savers' reports of files done into `out`, counting the failed ones.
    pub fn take_done(&mut self, out: &mut Vec<SaveDone>) {
        if let Some(p) = &self.savers {
            let before = out.len();
            p.take_done(out);
            self.failures += out[before..].iter().filter(|d| d.saved.is_err()).count() as u64;
        }
    }

    /// Saves `bytes` from `from` as `name` if the budget admits it: here and now
    /// ([`FolderSink::save`]), or, with a saver pool, queued for it (waiting while its queue is
    /// full), the result reported by [`FolderSink::take_done`].
    pub fn offer(&mut self, from: IpAddr, name: &str, bytes: &Bytes) -> Result<Offered, Refusal> {
        let Some(pool) = &self.savers else {
            return self.save(from, name, bytes).map(Offered::Saved);
        };
        if let Some(b) = &mut self.budget {
            if !b.admit(from, bytes.len(), Instant::now()) {
                return Err(Refusal::OverBudget);
            }
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let queued = pool.submit(ticket, name, bytes.clone());
        if queued.is_err() {
            self.failures += 1;
        }
        match queued {
            Ok(()) => Ok(Offered::Queued(ticket)),
            Err(NotQueued::Behind) => Err(Refusal::Behind),
            Err(NotQueued::Closed) => Err(Refusal::Failed(DriverError::File {
                path: self.dir.join(name),
                source: io::Error::other("the savers have stopped"),
            })),
        }
    }

    /// Saves only what `budget` admits.
    pub fn with_budget(mut self, budget: SaveBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Frames refused by the budget so far.
    pub fn over_budget(&self) -> u64 {
        self.budget.as_ref().map_or(0, SaveBudget::refused)
    }

    /// Saves that failed so far (with savers: also files their queue had no room for).
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Saves `bytes` from `from` as `name` ([`save_atomic`]), if the budget admits it.
    pub fn save(&mut self, from: IpAddr, name: &str, bytes: &[u8]) -> Result<PathBuf, Refusal> {
        if let Some(b) = &mut self.budget {
            if !b.admit(from, bytes.len(), Instant::now()) {
                return Err(Refusal::OverBudget);
            }
        }
        save_atomic(&self.dir, name, bytes).map_err(|e| {
            self.failures += 1;
            Refusal::Failed(e)
        })
    }
}

/// Writes `bytes` to `dir/name` so that no reader ever sees a partial file, and so that once
/// this returns the file survives a crash or power loss:
///
/// 1. the bytes go to a new hidden temporary file in the same folder, created with
///    `create_new` (`O_EXCL`: a file or symlink already at that name is never followed or
///    overwritten) under an unpredictable name (process id, a counter, clock-derived bits);
/// 2. the file is `fsync`ed (`sync_all`), then linked into place under `name`, never
///    replacing anything: if `name` exists (a file, a folder, a symlink: nothing is followed),
///    `stem-1.ext`, `stem-2.ext`, ... are tried instead, so no sender can overwrite a file
///    another one saved;
/// 3. the folder is `fsync`ed, so the new name itself is on disk.
///
/// Returns the path actually written. An acknowledgement sent after this returns means the
/// sink has the frame.
pub fn save_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, DriverError> {
    let placed = place_durable_file(dir, name, bytes)?;
    sync_dir(dir).map_err(|source| DriverError::File {
        path: placed.clone(),
        source,
    })?;
    Ok(placed)
}

/// Steps 1 and 2 of [`save_atomic`]: the file's bytes are durable and it has its name, but the
/// name is durable only once the folder is `fsync`ed ([`sync_dir`]). The saver pool
/// ([`super::saver`]) places a batch of files this way and syncs the folder once for all.
pub fn place_durable_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, DriverError> {
    let path = dir.join(name);
    let file_err = |source| DriverError::File {
        path: path.clone(),
        source,
    };
    let (tmp, mut f) = create_temp(dir, name).map_err(file_err)?;
    let write = || -> io::Result<PathBuf> {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        let placed = place_new(&tmp, dir, name)?;
        fs::remove_file(&tmp)?;
        Ok(placed)
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&tmp);
        file_err(source)
    })
}

/// Names tried for one file before giving up: `name`, then `stem-1.ext` to `stem-999.ext`.
const NAME_TRIES: u32 = 1000;

/// Gives the file at `tmp` a name in `dir` that did not exist: a hard link, which fails
/// rather than replace (and does not follow a symlink at the new name).
fn place_new(tmp: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    for n in 0..NAME_TRIES {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}{ext}"))
        };
        match fs::hard_link(tmp, &candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{name} and {} numbered variants exist already",
            NAME_TRIES - 1
        ),
    ))
}

/// Makes sure frames can be saved into `dir`: creates it (and its parents) if absent, then
/// proves it is writable by creating (`create_new`) and removing a probe file. The error names
/// the folder: `cannot save into DIR: permission denied`.
pub fn check_writable(dir: &Path) -> Result<(), DriverError> {
    let fail = |e: io::Error| DriverError::NotWritable {
        dir: dir.to_path_buf(),
        reason: describe(&e),
        kind: e.kind(),
    };
    if dir.exists() && !dir.is_dir() {
        return Err(fail(io::Error::from(io::ErrorKind::NotADirectory)));
    }
    fs::create_dir_all(dir).map_err(fail)?;
    let (probe, f) = create_temp(dir, "pixgram-write-check").map_err(fail)?;
    drop(f);
    fs::remove_file(&probe).map_err(fail)
}

/// A few lowercase words for what went wrong, without the OS error number.
fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists => "not a folder".into(),
        io::ErrorKind::NotFound => "no such folder, and it cannot be created there".into(),
        io::ErrorKind::StorageFull => "no space left".into(),
        _ => e.to_string(),
    }
}

/// Temporary files created by this process, for unique names.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates a new hidden file `.{name}.{pid}-{counter}-{bits}.tmp` in `dir` with `create_new`
/// (never opening an existing file or following a symlink). The bits come from the clock's
/// nanoseconds mixed with the counter, so the name cannot be guessed in advance by another
/// local user; a name that exists anyway is skipped and another one tried.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, fs::File)> {
    let mut last = None;
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let bits = mix(nanos ^ n.rotate_left(32) ^ u64::from(std::process::id()));
        let tmp = dir.join(format!(
            ".{name}.{}-{n}-{bits:016x}.tmp",
            std::process::id()
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// SplitMix64's finaliser: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `fsync` of a folder, so a rename into it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The file name a received frame is saved under:
/// `<session>-<stream>-<frame id>-<name>`, where `name` is the sender's file name from the
/// metadata key `"file"` (reduced to safe characters), or `frame.<ext>` with the extension
/// guessed from the content. When the content is a JPEG or PNG and the sender's name says
/// otherwise (`photo.png` re-encoded as JPEG), the extension is replaced by the content's
/// (`photo.jpg`), or added if the name has none.
pub fn file_name_for(frame: &ReceivedFrame, sender_name: Option<&str>) -> String {
    let name = sender_name
        .map(sanitise)
        .filter(|n| !n.is_empty())
        .map(|n| with_content_extension(&n, &frame.payload))
        .unwrap_or_else(|| format!("frame.{}", extension_for(&frame.payload)));
    format!(
        "{}-{}-{:06}-{}",
        frame.session, frame.stream, frame.frame.0, name
    )
}

/// `name` with its extension made to agree with what `bytes` are, when that is known (JPEG,
/// PNG); other names are kept as they are.
pub fn with_content_extension(name: &str, bytes: &[u8]) -> String {
    let Some(format) = ImageFormat::detect(bytes) else {
        return name.to_string();
    };
    let (sniffed, aliases) = (format.extension(), format.extension_aliases());
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    };
    match ext {
        Some(e) if aliases.iter().any(|a| a.eq_ignore_ascii_case(e)) => name.to_string(),
        _ => format!("{stem}.{sniffed}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11: a file already saved, or a symlink planted at the name, is never replaced
    /// or followed: the new frame gets a numbered name.
    #[test]
    fn a_save_never_replaces_or_follows_what_is_there() {
        let dir = std::env::temp_dir().join(format!("pixgram-noreplace-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let first = save_atomic(&dir, "a.jpg", b"first").unwrap();
        assert_eq!(first, dir.join("a.jpg"));
        let second = save_atomic(&dir, "a.jpg", b"second").unwrap();
        assert_eq!(second, dir.join("a-1.jpg"));
        assert_eq!(fs::read(&first).unwrap(), b"first");
        let outside = dir.join("outside");
        std::os::unix::fs::symlink(&outside, dir.join("b.jpg")).unwrap();
        let third = save_atomic(&dir, "b.jpg", b"third").unwrap();
        assert_eq!(third, dir.join("b-1.jpg"));
        assert!(!outside.exists(), "followed a planted symlink");
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh folder under the system's temporary folder, removed by the caller.
    fn scratch(tag: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pixgram-sink-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn names_cannot_escape_the_folder() {
        assert_eq!(sanitise("../../etc/passwd"), "passwd");
        assert_eq!(sanitise("..\\x\\.hidden"), "hidden");
        assert_eq!(sanitise("a b$c.jpg"), "a_b_c.jpg");
        assert_eq!(sanitise(".."), "");
    }

    #[test]
    fn save_is_atomic_and_leaves_no_temp_file() {
        let dir = scratch("atomic");
        let p = save_atomic(&dir, "x.bin", b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        // Saving again under the same name never replaces the first (issue 11).
        let q = save_atomic(&dir, "x.bin", b"again").unwrap();
        assert_eq!(fs::read(&q).unwrap(), b"again");
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert_eq!(names(&dir), ["x-1.bin", "x.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_files_are_new_files_with_unpredictable_names() {
        let dir = scratch("excl");
        let (a, fa) = create_temp(&dir, "x.jpg").unwrap();
        let (b, fb) = create_temp(&dir, "x.jpg").unwrap();
        drop((fa, fb));
        assert_ne!(a, b);
        let (an, bn) = (
            a.file_name().unwrap().to_string_lossy().into_owned(),
            b.file_name().unwrap().to_string_lossy().into_owned(),
        );
        assert!(an.starts_with(".x.jpg.") && an.ends_with(".tmp"), "{an}");
        // The random-looking parts differ in more than the counter.
        let tail = |s: &str| s.rsplit('-').next().unwrap().to_string();
        assert_ne!(tail(&an), tail(&bn));
        // The old name (".x.jpg.<pid>.tmp") as a symlink to a victim file is not followed.
        let victim = dir.join("victim");
        fs::write(&victim, b"keep").unwrap();
        let old_style = dir.join(format!(".x.jpg.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_style).unwrap();
        save_atomic(&dir, "x.jpg", b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(dir.join("x.jpg")).unwrap(), b"new");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn check_writable_creates_the_folder_and_leaves_nothing() {
        let dir = scratch("writable").join("a/b");
        check_writable(&dir).unwrap();
        assert!(dir.is_dir());
        assert!(names(&dir).is_empty());
        fs::remove_dir_all(dir.parent().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn check_writable_names_the_folder_when_it_cannot_be_used() {
        let dir = scratch("notdir");
        let file = dir.join("file");
        fs::write(&file, b"x").unwrap();
        for bad in [file.clone(), file.join("sub")] {
            let e = check_writable(&bad).unwrap_err();
            let text = e.to_string();
            assert_eq!(
                text,
                format!("cannot save into {}: not a folder", bad.display())
            );
        }
        // /proc accepts no new folders, even from root.
        let e = check_writable(Path::new("/proc/pixgram-test")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot save into /proc/pixgram-test: "),
            "{e}"
        );
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(describe(&denied), "permission denied");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_extension_follows_the_content() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0];
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A];
        assert_eq!(with_content_extension("photo.png", &jpeg), "photo.jpg");
        assert_eq!(with_content_extension("photo.jpg", &png), "photo.png");
        assert_eq!(with_content_extension("photo.JPEG", &jpeg), "photo.JPEG");
        assert_eq!(with_content_extension("photo.jpg", &jpeg), "photo.jpg");
        assert_eq!(with_content_extension("photo.PNG", &png), "photo.PNG");
        assert_eq!(with_content_extension("a.b.tiff", &jpeg), "a.b.jpg");
        assert_eq!(with_content_extension("photo", &jpeg), "photo.jpg");
        // Unknown content: the sender's name is kept, whatever it says.
        assert_eq!(with_content_extension("photo.png", b"GIF89a"), "photo.png");
        assert_eq!(with_content_extension("data.bin", b"xyz"), "data.bin");
    }

    #[test]
    fn a_png_re_encoded_as_jpeg_is_saved_as_jpg() {
        let frame = ReceivedFrame {
            peer: "127.0.0.1:1".parse().unwrap(),
            session: pixgram_core::SessionId(0x1234),
            stream: pixgram_core::StreamId(1),
            frame: pixgram_core::FrameId(7),
            kind: pixgram_core::PayloadKind::Frame,
            metadata: None,
            payload: bytes::Bytes::from_static(&[0xFF, 0xD8, 0xFF, 0xD9]),
            first_chunk_at: pixgram_core::Timestamp::ZERO,
            completed_at: pixgram_core::Timestamp::ZERO,
        };
        let name = file_name_for(&frame, Some("holiday/photo.png"));
        assert!(name.ends_with("-000007-photo.jpg"), "{name}");
        assert!(file_name_for(&frame, None).ends_with("-frame.jpg"));
    }
}
