//! [`SaverPool`]: a folder's files written and made durable on a few threads of their own, off
//! the receive loop, with group commit: each saver takes every file waiting (up to
//! [`SaverConfig::batch`]), writes and `fsync`s each, and `fsync`s the folder once for all of
//! them. Only then are they reported done ([`SaverPool::take_done`]), so the receive loop's
//! ACK, sent when it collects the report, still means the file is on disk.
//!
//! What waits is bounded ([`SaverConfig::queue_frames`], [`SaverConfig::queue_bytes`]): a
//! frame that finds no room waits (the receive loop with it, so the sender's window fills
//! and it slows down) at most [`SaverConfig::queue_wait`], then is refused and counted
//! ([`SaverStats::refused_behind`]): the disk is slower than the senders, and nothing grows
//! without bound.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::folder::{place_durable_file, sync_dir};
use crate::error::DriverError;

/// Where a saver pool puts files.
pub trait FileStore: Send + Sync + 'static {
    /// Writes `bytes` under `name` (or a free variant of it), the bytes themselves durable;
    /// returns where.
    fn place(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, DriverError>;
    /// Makes every name placed so far durable.
    fn commit(&self) -> Result<(), DriverError>;
}

/// A folder as a [`FileStore`]: files written atomically ([`super::save_atomic`]'s steps),
/// the folder `fsync`ed by [`FileStore::commit`].
#[derive(Debug, Clone)]
pub struct FolderStore(pub PathBuf);

impl FileStore for FolderStore {
    fn place(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, DriverError> {
        place_durable_file(&self.0, name, bytes)
    }

    fn commit(&self) -> Result<(), DriverError> {
        sync_dir(&self.0).map_err(|source| DriverError::File {
            path: self.0.clone(),
            source,
        })
    }
}

/// How a [`SaverPool`] works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaverConfig {
    /// Saver threads (at least 1).
    pub threads: usize,
    /// Files waiting or being written at most.
    pub queue_frames: usize,
    /// Bytes waiting or being written at most (one larger file still passes alone).
    pub queue_bytes: usize,
    /// Files one saver writes before one folder `fsync` for all of them.
    pub batch: usize,
    /// How long [`SaverPool::submit`] waits for room before refusing a file.
    pub queue_wait: Duration,
}

impl Default for SaverConfig {
    /// Four savers (they mostly wait on the disk), 64 files and 256 MiB in the queue, batches
    /// of up to 16 files, 10 s of waiting for room.
    fn default() -> Self {
        SaverConfig {
            threads: 4,
            queue_frames: 64,
            queue_bytes: 256 << 20,
            batch: 16,
            queue_wait: Duration::from_secs(10),
        }
    }
}

/// What a saver pool has done so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SaverStats {
    /// Files handed to the savers.
    pub submitted: u64,
    /// Files saved and durable.
    pub saved: u64,
    /// Files whose write or folder `fsync` failed.
    pub failed: u64,
    /// Files refused: no room in the queue within [`SaverConfig::queue_wait`].
    pub refused_behind: u64,
    /// Submits that had to wait for room (the disk was the bottleneck).
    pub waited_for_room: u64,
    /// Folder `fsync`s (each one commits a batch).
    pub commits: u64,
    /// Most files waiting or being written at once.
    pub max_queued_frames: usize,
    /// Most bytes waiting or being written at once.
    pub max_queued_bytes: usize,
}

/// A file saved or not, reported by [`SaverPool::take_done`].
#[derive(Debug)]
pub struct SaveDone {
    /// The ticket it was submitted with.
    pub ticket: u64,
    /// Where it is, durable, or why it is not.
    pub saved: Result<PathBuf, DriverError>,
}

/// Why [`SaverPool::submit`] did not take a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// No room came within [`SaverConfig::queue_wait`].
    Behind,
    /// The pool is finishing.
    Closed,
}

struct Job {
    ticket: u64,
    name: String,
    bytes: Bytes,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Files (and their bytes) queued or being written.
    frames: usize,
    bytes: usize,
    done: Vec<SaveDone>,
    closing: bool,
    stats: SaverStats,
}

struct Shared {
    store: Box<dyn FileStore>,
    config: SaverConfig,
    state: Mutex<State>,
    /// Signalled when a job is queued or the pool closes.
    work: Condvar,
    /// Signalled when jobs finish (room, and reports to take).
    finished: Condvar,
    notify: Box<dyn Fn() + Send + Sync>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A saver that panicked leaves consistent counters: carry on with them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Saver threads behind a bounded queue: see the module's documentation.
pub struct SaverPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SaverPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaverPool")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl SaverPool {
    /// Savers into the folder `dir`.
    pub fn for_folder(
        dir: &Path,
        config: SaverConfig,
        notify: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        Self::start(FolderStore(dir.to_path_buf()), config, notify)
    }

    /// Starts `config.threads` savers into `store`; `notify` is called (on a saver's thread)
    /// after each batch is reported done, e.g. to wake the receive loop.
    pub fn start(
        store: impl FileStore,
        config: SaverConfig,
        notify: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let config = SaverConfig {
            threads: config.threads.max(1),
            queue_frames: config.queue_frames.max(1),
            batch: config.batch.max(1),
            ..config
        };
        let shared = Arc::new(Shared {
            store: Box::new(store),
            config,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            finished: Condvar::new(),
            notify: Box::new(notify),
        });
        let mut workers = Vec::with_capacity(config.threads);
        for n in 0..config.threads {
            let s = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("pixgram-saver-{n}"))
                .spawn(move || saver(&s));
            match spawned {
                Ok(w) => workers.push(w),
                Err(e) => {
                    let pool = SaverPool { shared, workers };
                    drop(pool);
                    return Err(e);
                }
            }
        }
        Ok(SaverPool { shared, workers })
    }

    /// Queues `bytes` to be saved as `name`, waiting while the queue is full (at most
    /// [`SaverConfig::queue_wait`]). Its report comes from [`SaverPool::take_done`] with
    /// `ticket`.
    pub fn submit(&self, ticket: u64, name: &str, bytes: Bytes) -> Result<(), NotQueued> {
        let c = self.shared.config;
        let len = bytes.len();
        let mut st = self.shared.lock();
        let fits = |st: &State| {
            st.frames == 0 || (st.frames < c.queue_frames && st.bytes + len <= c.queue_bytes)
        };
        if !fits(&st) && !st.closing {
            st.stats.waited_for_room += 1;
            let deadline = Instant::now() + c.queue_wait;
            while !fits(&st) && !st.closing {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    st.stats.refused_behind += 1;
                    return Err(NotQueued::Behind);
                }
                st = match self.shared.finished.wait_timeout(st, left) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
        }
        if st.closing {
            return Err(NotQueued::Closed);
        }
        st.frames += 1;
        st.bytes += len;
        st.stats.submitted += 1;
        st.stats.max_queued_frames = st.stats.max_queued_frames.max(st.frames);
        st.stats.max_queued_bytes = st.stats.max_queued_bytes.max(st.bytes);
        st.queue.push_back(Job {
            ticket,
            name: name.to_string(),
            bytes,
        });
        drop(st);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Moves every report of files done (durable, or failed) into `out`.
    pub fn take_done(&self, out: &mut Vec<SaveDone>) {
        out.append(&mut self.shared.lock().done);
    }

    /// Files queued or being written.
    pub fn in_progress(&self) -> usize {
        self.shared.lock().frames
    }

    /// Counters so far.
    pub fn stats(&self) -> SaverStats {
        self.shared.lock().stats
    }

    /// Waits until every file submitted is done (at most `timeout`); whether they all are.
    /// Their reports are still to be taken.
    pub fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while st.frames > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = match self.shared.finished.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

impl Drop for SaverPool {
    /// Lets the savers finish what is queued, then joins them.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_all();
        self.shared.finished.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// One saver: takes a batch, writes each file, commits the folder once, reports them all.
fn saver(shared: &Shared) {
    loop {
        let batch: Vec<Job> = {
            let mut st = shared.lock();
            while st.queue.is_empty() && !st.closing {
                st = match shared.work.wait(st) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
            }
            if st.queue.is_empty() {
                return;
            }
            let take = st.queue.len().min(shared.config.batch);
            st.queue.drain(..take).collect()
        };
        let mut results: Vec<(u64, usize, Result<PathBuf, DriverError>)> = batch
            .into_iter()
            .map(|j| {
                let placed = shared.store.place(&j.name, &j.bytes);
                (j.ticket, j.bytes.len(), placed)
            })
            .collect();
        let committed = if results.iter().any(|r| r.2.is_ok()) {
            Some(shared.store.commit())
        } else {
            None
        };
        let mut st = shared.lock();
        if committed.is_some() {
            st.stats.commits += 1;
        }
        for (ticket, len, placed) in results.drain(..) {
            let saved = match (&committed, placed) {
                (Some(Err(e)), Ok(path)) => Err(DriverError::File {
                    path,
                    source: std::io::Error::new(e_kind(e), e.to_string()),
                }),
                (_, placed) => placed,
            };
            if saved.is_ok() {
                st.stats.saved += 1;
            } else {
                st.stats.failed += 1;
            }
            st.frames -= 1;
            st.bytes -= len;
            st.done.push(SaveDone { ticket, saved });
        }
        // Inside the lock: whoever sees these files done (drain) sees the wake-up sent too.
        (shared.notify)();
        drop(st);
        shared.finished.notify_all();
    }
}

/// The I/O error kind inside a driver error (for a folder `fsync` that failed a whole batch).
fn e_kind(e: &DriverError) -> std::io::ErrorKind {
    match e {
        DriverError::File { source, .. } => source.kind(),
        _ => std::io::ErrorKind::Other,
    }
}

#[cfg(test)]
#[path = "saver_tests.rs"]
mod tests;
