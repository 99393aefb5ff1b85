//! Issue 13: frames saved off the receive loop (a [`SaverPool`]) are acknowledged only once
//! their file is durable, and a [`pixgram::ReceiverWaker`] ends the receiver's wait at once.
//! Real loopback sockets; the store is a real folder whose writes wait at a gate the test
//! opens, so "not yet durable" lasts as long as the test wants.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pixgram::error::DriverError;
use pixgram::receive::{receive, Handler, Until};
use pixgram::sink::saver::{FileStore, FolderStore, SaveDone, SaverConfig, SaverPool};
use pixgram::{
    DeliveryKey, OutgoingFrame, ReceiverConfig, ReceiverEvent, SenderEvent, StreamId, UdpReceiver,
    UdpSender,
};

/// A folder whose writes wait until the gate opens.
struct GatedFolder {
    folder: FolderStore,
    open: Mutex<bool>,
    opened: Condvar,
}

/// The savers' handle on a [`GatedFolder`] the test also holds.
struct Gated(Arc<GatedFolder>);

impl FileStore for Gated {
    fn place(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, DriverError> {
        let mut open = self.0.open.lock().unwrap();
        while !*open {
            open = self.0.opened.wait(open).unwrap();
        }
        drop(open);
        self.0.folder.place(name, bytes)
    }

    fn commit(&self) -> Result<(), DriverError> {
        self.0.folder.commit()
    }
}

/// The receive loop's handler: frames to the savers, confirmed when the savers say so.
struct SaveThenConfirm {
    pool: SaverPool,
    keys: HashMap<u64, DeliveryKey>,
    next: u64,
    done: Vec<SaveDone>,
}

impl Handler<UdpReceiver> for SaveThenConfirm {
    type Error = DriverError;

    fn event(&mut self, _rx: &mut UdpReceiver, event: ReceiverEvent) -> Result<(), DriverError> {
        if let ReceiverEvent::Frame(f) = event {
            let name = format!("frame-{}.bin", f.frame.0);
            self.pool
                .submit(self.next, &name, f.payload.clone())
                .unwrap();
            self.keys.insert(self.next, f.key());
            self.next += 1;
        }
        Ok(())
    }

    fn collect(&mut self, rx: &mut UdpReceiver) -> Result<(), DriverError> {
        self.pool.take_done(&mut self.done);
        for d in self.done.drain(..) {
            rx.confirm(self.keys.remove(&d.ticket).unwrap(), d.saved.is_ok());
        }
        Ok(())
    }
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pixgram-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Pumps `tx` until `until`, collecting the frames acknowledged.
fn pump_acks(tx: &mut UdpSender, until: Instant, acked: &mut Vec<u64>, want: usize) {
    while Instant::now() < until && acked.len() < want {
        tx.pump(Some(until)).unwrap();
        while let Some(e) = tx.poll_event() {
            match e {
                SenderEvent::Acked { frame, .. } => acked.push(frame.0),
                other => panic!("not acknowledged: {other:?}"),
            }
        }
    }
}

#[test]
fn a_frame_is_acknowledged_only_after_its_file_is_durable() {
    let dir = scratch("saved-before-acked");
    let gate = Arc::new(GatedFolder {
        folder: FolderStore(dir.clone()),
        open: Mutex::new(false),
        opened: Condvar::new(),
    });
    let config = ReceiverConfig {
        confirm_deliveries: true,
        ..ReceiverConfig::default()
    };
    let mut rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let addr = rx.local_addr().unwrap();
    let waker = rx.waker().unwrap();
    let stop_waker = rx.waker().unwrap();
    let pool = SaverPool::start(Gated(gate.clone()), SaverConfig::default(), move || {
        waker.wake()
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let until = Until {
        stop: Some(stop.clone()),
        deadline: Some(Instant::now() + Duration::from_secs(20)),
        // Long: a confirmation must not wait for this poll (the waker ends the wait).
        poll: Duration::from_secs(5),
        tick: None,
    };
    let receiving = std::thread::spawn(move || {
        let mut h = SaveThenConfirm {
            pool,
            keys: HashMap::new(),
            next: 0,
            done: Vec::new(),
        };
        receive(&mut rx, &until, &mut h).unwrap();
        (h.pool.stats(), rx.stats().acks_sent)
    });

    let mut tx = UdpSender::connect(addr, Default::default()).unwrap();
    let frames: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 200_000]).collect();
    for f in &frames {
        tx.send(OutgoingFrame::frame(StreamId::FRAMES, f.clone()).reliable(true))
            .unwrap();
    }
    // The frames are whole at the receiver, but their files are not written: no ACK.
    let mut acked = Vec::new();
    pump_acks(
        &mut tx,
        Instant::now() + Duration::from_millis(700),
        &mut acked,
        1,
    );
    assert!(acked.is_empty(), "acknowledged before saved: {acked:?}");
    assert_eq!(tx.in_flight(), 3);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

    *gate.open.lock().unwrap() = true;
    gate.opened.notify_all();
    let opened = Instant::now();
    pump_acks(&mut tx, opened + Duration::from_secs(10), &mut acked, 3);
    acked.sort();
    assert_eq!(acked, [0, 1, 2]);
    // Every acknowledged frame is in its file.
    for (i, f) in frames.iter().enumerate() {
        let path = dir.join(format!("frame-{i}.bin"));
        assert_eq!(&std::fs::read(&path).unwrap(), f, "{}", path.display());
    }
    stop.store(true, Ordering::Relaxed);
    stop_waker.wake();
    let (saver, acks_sent) = receiving.join().unwrap();
    assert_eq!(saver.saved, 3);
    assert!(acks_sent >= 3);
    assert!(saver.commits >= 1 && saver.commits <= 3, "{saver:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_waker_ends_the_receivers_wait_at_once() {
    let mut rx =
        UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), ReceiverConfig::default()).unwrap();
    let waker = rx.waker().unwrap();
    let start = Instant::now();
    let waking = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        waker.wake();
        waker.wake();
    });
    let got = rx
        .next_event(Some(start + Duration::from_secs(10)))
        .unwrap();
    assert!(got.is_none());
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "not woken: {waited:?}");
    waking.join().unwrap();
    // Drain a wake the thread's second call may have left (if the receiver looked between
    // the two), then: two wakes before the receiver looks are one, and the wait after that
    // one runs to its deadline.
    let _ = rx.next_event(Some(Instant::now()));
    let waker = rx.waker().unwrap();
    waker.wake();
    waker.wake();
    let woken = Instant::now();
    assert!(rx
        .next_event(Some(woken + Duration::from_secs(10)))
        .unwrap()
        .is_none());
    assert!(woken.elapsed() < Duration::from_secs(5));
    let again = Instant::now();
    assert!(rx
        .next_event(Some(again + Duration::from_millis(100)))
        .unwrap()
        .is_none());
    assert!(again.elapsed() >= Duration::from_millis(100));
}

/// A hub and a subscriber wait in loops of their own around their receiver's: a waker must
/// end those too (else a hub saving its frames, or publishing them into JetStream, confirms
/// them only when the next datagram or its poll interval comes).
#[test]
fn a_waker_ends_a_hubs_wait_and_a_subscribers_at_once() {
    use pixgram::hub::{Hub, HubOptions, Subscriber};
    let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap(), ReceiverConfig::default()).unwrap();
    let waker = rx.waker().unwrap();
    let mut hub = Hub::new(rx, HubOptions::default()).unwrap();
    waker.wake();
    let start = Instant::now();
    let until = start + Duration::from_secs(30);
    assert!(hub.next_event(until).unwrap().is_none());
    assert!(
        Instant::now() < until - Duration::from_secs(10),
        "the hub was not woken"
    );
    let mut sub = Subscriber::builder(hub.local_addr().unwrap())
        .bind("127.0.0.1:0")
        .unwrap();
    let waker = sub.receiver().waker().unwrap();
    waker.wake();
    let start = Instant::now();
    let until = start + Duration::from_secs(30);
    assert!(sub.next_event(until).unwrap().is_none());
    assert!(
        Instant::now() < until - Duration::from_secs(10),
        "the subscriber was not woken"
    );
}
