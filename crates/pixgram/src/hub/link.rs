//! One subscriber's fan-out: its [`Backlog`] and a thread running an ordinary
//! [`UdpSender`] towards the subscriber's (proven) address, with the core's congestion
//! control, pacing, path MTU discovery and its own peer-gone detection. The hub thread only
//! pushes into the backlog: it never waits for a subscriber.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pixgram_core::seal::Psk;
use pixgram_core::subscription::Mode;
use pixgram_core::{OutgoingFrame, PayloadKind, SenderConfig, SenderEvent};

use super::backlog::{Backlog, BacklogLimits, BacklogStats, Item};
use crate::sender::UdpSender;
use crate::wake::Waker;

/// How long a link's sender waits for a silent subscriber before it takes it to be gone (the
/// keepalive timeout usually ends it first).
pub const LINK_PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// Where a link's rate starts: a subscriber's frames are often live, and cannot wait for slow
/// start from the core's cautious default (the controller finds the path's rate within a few
/// round trips either way).
const LINK_INITIAL_RATE: f64 = 50e6;

/// What a link did, so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// The backlog's counters.
    pub backlog: BacklogStats,
    /// Frames and messages handed to the sender.
    pub sent: u64,
    /// Of those, acknowledged by the subscriber.
    pub acked: u64,
    /// Of those, lost (live deadline, abandoned, subscriber gone).
    pub lost: u64,
    /// Datagrams the link's socket sent.
    pub datagrams: u64,
    /// Bytes its socket sent.
    pub bytes: u64,
    /// The sender's pacing rate when last looked at, bits per second.
    pub pacing_bps: u64,
    /// Its smoothed RTT then, microseconds (0: none yet).
    pub srtt_us: u64,
}

#[derive(Debug)]
struct Shared {
    backlog: Mutex<Backlog>,
    stop: AtomicBool,
    gone: AtomicBool,
    sent: AtomicU64,
    acked: AtomicU64,
    lost: AtomicU64,
    datagrams: AtomicU64,
    bytes: AtomicU64,
    pacing_bps: AtomicU64,
    srtt_us: AtomicU64,
}

impl Shared {
    fn backlog(&self) -> MutexGuard<'_, Backlog> {
        // A panic on the link thread leaves the backlog consistent (every change is one call).
        self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One subscriber's fan-out link.
#[derive(Debug)]
pub struct Link {
    shared: Arc<Shared>,
    /// Ends the link thread's wait in its sender's socket: a frame pushed goes out at once.
    wake: Waker,
    thread: Option<JoinHandle<()>>,
}

impl Link {
    /// Starts sending to `addr` in `mode` (sealed with `key`, if given).
    pub fn start(
        addr: SocketAddr,
        mode: Mode,
        limits: BacklogLimits,
        key: Option<Psk>,
    ) -> std::io::Result<Link> {
        let shared = Arc::new(Shared {
            backlog: Mutex::new(Backlog::new(mode, limits)),
            stop: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            datagrams: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            pacing_bps: AtomicU64::new(0),
            srtt_us: AtomicU64::new(0),
        });
        let config = SenderConfig {
            // Latest: one frame in flight, so that the backlog (not the window) holds the
            // next, and a newer frame can replace it.
            window: if mode == Mode::Latest { 1 } else { 16 },
            max_datagram_size: Some(pixgram_core::wire::MAX_DATAGRAM_SIZE),
            peer_timeout: LINK_PEER_TIMEOUT,
            frame_timeout: LINK_PEER_TIMEOUT,
            initial_rate: LINK_INITIAL_RATE,
            // A stream per publisher stream, and messages.
            max_streams: super::MAX_ORIGINS + 1,
            ..SenderConfig::default()
        };
        let tx = UdpSender::connect_keyed(addr, config, key.as_ref())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let wake = tx
            .waker()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pixgram-hub-{addr}"))
            .spawn(move || run(&s, tx))?;
        Ok(Link {
            shared,
            wake,
            thread: Some(thread),
        })
    }

    /// Queues `item`; `Some(skipped)` when the backlog overflowed (see [`Backlog::push`]).
    pub fn push(&self, item: Item) -> Option<u64> {
        let skipped = self.shared.backlog().push(item);
        self.wake.wake();
        skipped
    }

    /// Whether the sender found the subscriber gone (or could not send at all).
    pub fn is_gone(&self) -> bool {
        self.shared.gone.load(Ordering::Relaxed)
    }

    /// Counters so far.
    pub fn stats(&self) -> LinkStats {
        let s = &self.shared;
        LinkStats {
            backlog: s.backlog().stats(),
            sent: s.sent.load(Ordering::Relaxed),
            acked: s.acked.load(Ordering::Relaxed),
            lost: s.lost.load(Ordering::Relaxed),
            datagrams: s.datagrams.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            pacing_bps: s.pacing_bps.load(Ordering::Relaxed),
            srtt_us: s.srtt_us.load(Ordering::Relaxed),
        }
    }

    /// Stops sending: what is in flight is given up, the session closed, the thread ended.
    /// Returns the final counters.
    pub fn stop(mut self) -> LinkStats {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.wake.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stats()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.wake.wake();
    }
}

/// How long the link thread pumps its sender at most before it looks at the backlog and the
/// stop flag again. Not a delay: a frame pushed or a stop ends the pump at once (the link's
/// [`Waker`]), and so does any datagram or timer of the sender.
const PUMP_SLICE: Duration = Duration::from_millis(20);

fn run(s: &Shared, mut tx: UdpSender) {
    let result = (|| -> Result<(), crate::error::DriverError> {
        while !s.stop.load(Ordering::Relaxed) {
            let next = {
                let mut b = s.backlog();
                match b.next_stream() {
                    Some(stream) if tx.core().can_send(stream) => b.pop(),
                    _ => None,
                }
            };
            if let Some(item) = next {
                tx.send(outgoing(item))?;
                s.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                // Acknowledgements, pacing and timers until the next push (or the window
                // opens, or a timer runs).
                tx.pump(Some(Instant::now() + PUMP_SLICE))?;
            }
            count(s, &mut tx);
        }
        Ok(())
    })();
    if result.is_err() {
        s.gone.store(true, Ordering::Relaxed);
    }
    tx.abandon();
    count(s, &mut tx);
    let _ = tx.close();
}

fn count(s: &Shared, tx: &mut UdpSender) {
    while let Some(e) = tx.poll_event() {
        match e {
            SenderEvent::Acked { .. } | SenderEvent::LateAck { .. } => {
                s.acked.fetch_add(1, Ordering::Relaxed);
            }
            SenderEvent::Lost { .. } => {
                s.lost.fetch_add(1, Ordering::Relaxed);
            }
            SenderEvent::PeerGone => s.gone.store(true, Ordering::Relaxed),
        }
    }
    let io = tx.io_stats();
    s.datagrams.store(io.datagrams_sent, Ordering::Relaxed);
    s.bytes.store(tx.stats().bytes_sent, Ordering::Relaxed);
    let path = tx.core().path();
    s.pacing_bps
        .store((path.rate * 8.0) as u64, Ordering::Relaxed);
    let srtt = path.srtt.map_or(0, |d| d.as_micros() as u64);
    s.srtt_us.store(srtt, Ordering::Relaxed);
}

fn outgoing(item: Item) -> OutgoingFrame {
    let frame = match item.kind {
        PayloadKind::Message => OutgoingFrame::message(item.stream, item.payload),
        PayloadKind::Frame => OutgoingFrame::frame(item.stream, item.payload).reliable(true),
    };
    match item.metadata {
        Some(m) => frame.with_metadata(m),
        None => frame,
    }
}
