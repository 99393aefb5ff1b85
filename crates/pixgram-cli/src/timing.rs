//! `recv`'s latency figures: capture to arrival and its parts, and decode times measured on a
//! thread of its own (`--decode`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pixgram::figures::Samples;

/// Latency from capture (the sender's `sent_us`) to arrival, and its parts.
#[derive(Default)]
pub struct Timing {
    total: Samples,
    encode: Samples,
    transit: Samples,
    /// Decoding on its own thread (`--decode`).
    pub decoder: Option<DecodeWorker>,
}

impl Timing {
    /// "latency ..." or nothing when no frame carried a timestamp.
    pub fn line(&mut self) -> Option<String> {
        self.total.percentile(50.0)?;
        let mut line = format!(
            "latency, capture to arrival: {}; encode {}; network and queues {}",
            self.total.describe(),
            self.encode.describe(),
            self.transit.describe()
        );
        if let Some(d) = &self.decoder {
            let (mut samples, skipped) = d.results();
            line.push_str(&format!(
                "; decode {} ({} frames decoded, {skipped} skipped while busy)",
                samples.describe(),
                samples.len()
            ));
        }
        Some(line)
    }
}

/// Decodes frames on a thread of its own and times it; skips frames while busy.
pub struct DecodeWorker {
    tx: Option<std::sync::mpsc::SyncSender<bytes::Bytes>>,
    times: Arc<Mutex<Samples>>,
    skipped: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DecodeWorker {
    pub fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(2);
        let times = Arc::new(Mutex::new(Samples::default()));
        let t = times.clone();
        let thread = std::thread::Builder::new()
            .name("pixgram-decode".into())
            .spawn(move || {
                for frame in rx {
                    let start = Instant::now();
                    if pixgram::codec::decode(&frame).is_ok() {
                        if let Ok(mut s) = t.lock() {
                            s.push(start.elapsed());
                        }
                    }
                }
            })
            .ok();
        DecodeWorker {
            tx: Some(tx),
            times,
            skipped: Arc::default(),
            thread,
        }
    }

    pub fn offer(&self, frame: bytes::Bytes) {
        if let Some(tx) = &self.tx {
            if tx.try_send(frame).is_err() {
                self.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits for the frames queued, then returns the decode times and the frames skipped.
    fn results(&self) -> (Samples, u64) {
        let times = self.times.lock().map(|s| s.clone()).unwrap_or_default();
        (times, self.skipped.load(Ordering::Relaxed))
    }

    /// Stops the thread once it has decoded what is queued.
    pub fn finish(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Timing {
    /// Counts one frame's latency from capture (`total`) and, if known, its encoding time.
    pub fn push(&mut self, total: Duration, encode: Option<Duration>) {
        self.total.push(total);
        if let Some(e) = encode {
            self.encode.push(e);
            self.transit.push(total.saturating_sub(e));
        }
    }
}
