use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// A store that holds every write until the test opens its gate, and counts commits.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    entered: AtomicU64,
    placed: AtomicU64,
    commits: AtomicU64,
    fail_commit: bool,
}

impl Gate {
    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Waits (at most 5 s) until `n` writes have started.
    fn wait_entered(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.entered.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the saver never started writing");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl FileStore for Arc<Gate> {
    fn place(&self, name: &str, _bytes: &[u8]) -> Result<PathBuf, DriverError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        self.placed.fetch_add(1, Ordering::SeqCst);
        Ok(PathBuf::from(name))
    }

    fn commit(&self) -> Result<(), DriverError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        if self.fail_commit {
            return Err(DriverError::File {
                path: "dir".into(),
                source: std::io::Error::from(std::io::ErrorKind::StorageFull),
            });
        }
        Ok(())
    }
}

fn one_saver() -> SaverConfig {
    SaverConfig {
        threads: 1,
        ..SaverConfig::default()
    }
}

#[test]
fn a_file_is_reported_done_only_after_its_write_and_the_commit() {
    let gate = Arc::new(Gate::default());
    let pool = SaverPool::start(gate.clone(), one_saver(), || {}).unwrap();
    pool.submit(7, "a.jpg", Bytes::from_static(b"abc")).unwrap();
    gate.wait_entered(1);
    let mut done = Vec::new();
    // The write is held: nothing may be reported, however long it takes.
    assert!(!pool.drain(Duration::from_millis(100)));
    pool.take_done(&mut done);
    assert!(done.is_empty(), "reported done before it was durable");
    assert_eq!(pool.in_progress(), 1);
    assert_eq!(gate.commits.load(Ordering::SeqCst), 0);
    gate.release();
    assert!(pool.drain(Duration::from_secs(5)));
    pool.take_done(&mut done);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ticket, 7);
    assert_eq!(done[0].saved.as_ref().unwrap(), Path::new("a.jpg"));
    assert_eq!(gate.commits.load(Ordering::SeqCst), 1);
    assert_eq!(pool.stats().saved, 1);
}

#[test]
fn files_waiting_together_share_one_commit() {
    let gate = Arc::new(Gate::default());
    let pool = SaverPool::start(gate.clone(), one_saver(), || {}).unwrap();
    pool.submit(0, "first", Bytes::from_static(b"x")).unwrap();
    gate.wait_entered(1);
    for t in 1..10 {
        pool.submit(t, "next", Bytes::from_static(b"y")).unwrap();
    }
    gate.release();
    assert!(pool.drain(Duration::from_secs(5)));
    let mut done = Vec::new();
    pool.take_done(&mut done);
    let mut tickets: Vec<u64> = done.iter().map(|d| d.ticket).collect();
    tickets.sort();
    assert_eq!(tickets, (0..10).collect::<Vec<_>>());
    // The first alone, then the nine that queued behind it in one batch.
    assert_eq!(gate.commits.load(Ordering::SeqCst), 2);
    let s = pool.stats();
    assert_eq!((s.saved, s.commits, s.max_queued_frames), (10, 2, 10));
}

#[test]
fn a_full_queue_makes_the_caller_wait_then_refuses_and_counts() {
    let gate = Arc::new(Gate::default());
    let config = SaverConfig {
        threads: 1,
        queue_frames: 2,
        queue_bytes: 1 << 20,
        batch: 16,
        queue_wait: Duration::from_millis(50),
    };
    let pool = SaverPool::start(gate.clone(), config, || {}).unwrap();
    pool.submit(1, "a", Bytes::from_static(b"a")).unwrap();
    pool.submit(2, "b", Bytes::from_static(b"b")).unwrap();
    let start = Instant::now();
    assert_eq!(
        pool.submit(3, "c", Bytes::from_static(b"c")),
        Err(NotQueued::Behind)
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    let s = pool.stats();
    assert_eq!((s.refused_behind, s.waited_for_room), (1, 1));
    assert_eq!(s.max_queued_frames, 2);
    gate.release();
    assert!(pool.drain(Duration::from_secs(5)));
    // Room again: taken at once.
    pool.submit(4, "d", Bytes::from(vec![0u8; 2 << 20]))
        .unwrap();
    assert!(pool.drain(Duration::from_secs(5)));
    assert_eq!(pool.stats().saved, 3);
}

#[test]
fn the_byte_limit_holds_but_one_large_file_passes_alone() {
    let gate = Arc::new(Gate::default());
    let config = SaverConfig {
        threads: 1,
        queue_frames: 64,
        queue_bytes: 1000,
        batch: 16,
        queue_wait: Duration::from_millis(20),
    };
    let pool = SaverPool::start(gate.clone(), config, || {}).unwrap();
    pool.submit(1, "big", Bytes::from(vec![0u8; 5000])).unwrap();
    assert_eq!(
        pool.submit(2, "small", Bytes::from(vec![0u8; 10])),
        Err(NotQueued::Behind)
    );
    assert_eq!(pool.stats().max_queued_bytes, 5000);
    gate.release();
}

#[test]
fn a_failed_commit_fails_every_file_of_its_batch() {
    let gate = Arc::new(Gate {
        fail_commit: true,
        ..Gate::default()
    });
    gate.release();
    let notified = Arc::new(AtomicU64::new(0));
    let n = notified.clone();
    let pool = SaverPool::start(gate.clone(), one_saver(), move || {
        n.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    pool.submit(1, "a", Bytes::from_static(b"a")).unwrap();
    assert!(pool.drain(Duration::from_secs(5)));
    let mut done = Vec::new();
    pool.take_done(&mut done);
    assert_eq!(done.len(), 1);
    assert!(done[0].saved.is_err());
    assert_eq!(pool.stats().failed, 1);
    assert!(
        notified.load(Ordering::SeqCst) >= 1,
        "the loop was not woken"
    );
}

#[test]
fn a_folder_pool_saves_real_files_durably_named() {
    let dir = std::env::temp_dir().join(format!("pixgram-saver-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pool = SaverPool::for_folder(&dir, SaverConfig::default(), || {}).unwrap();
    for t in 0..20u64 {
        pool.submit(t, "same.jpg", Bytes::from(vec![t as u8; 1000]))
            .unwrap();
    }
    assert!(pool.drain(Duration::from_secs(20)));
    let mut done = Vec::new();
    pool.take_done(&mut done);
    assert_eq!(done.len(), 20);
    for d in &done {
        let path = d.saved.as_ref().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), vec![d.ticket as u8; 1000]);
    }
    // Twenty files, none replaced, no temporary file left.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 20);
    drop(pool);
    std::fs::remove_dir_all(&dir).unwrap();
}
