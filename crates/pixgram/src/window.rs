//! `pixgram recv --window`: one desktop window per stream, like the original scripts' `imshow`.
//! Built with the `window` feature (minifb; X11 or Wayland at run time). Frames are decoded
//! (JPEG or PNG, `codec`) and shown on a thread of their own that owns every window; if that
//! thread falls behind, frames are skipped (the latest wins) and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use minifb::{Window, WindowOptions};

/// Windows open at once; frames of further streams are not shown.
pub const MAX_WINDOWS: usize = 16;

/// The window thread and the queue feeding it.
pub struct WindowSink {
    tx: Option<SyncSender<(String, Bytes)>>,
    thread: Option<JoinHandle<()>>,
    skipped: Arc<AtomicU64>,
    shown: Arc<AtomicU64>,
}

impl Default for WindowSink {
    fn default() -> Self {
        Self::start()
    }
}

impl WindowSink {
    /// Starts the window thread (windows open as streams arrive).
    pub fn start() -> Self {
        let (tx, rx) = mpsc::sync_channel(2);
        let skipped = Arc::new(AtomicU64::new(0));
        let shown = Arc::new(AtomicU64::new(0));
        let (s, w) = (skipped.clone(), shown.clone());
        let thread = std::thread::Builder::new()
            .name("pixgram-window".into())
            .spawn(move || show_loop(&rx, &s, &w))
            .ok();
        WindowSink {
            tx: Some(tx),
            thread,
            skipped,
            shown,
        }
    }

    /// Shows `frame` in the window of stream `key` (skipped if the window thread is busy).
    pub fn show(&self, key: &str, frame: Bytes) {
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_)) = tx.try_send((key.to_string(), frame)) {
                self.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Frames not shown: the window thread was busy, or they could not be decoded.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Frames drawn in a window.
    pub fn shown(&self) -> u64 {
        self.shown.load(Ordering::Relaxed)
    }

    /// Closes the windows once the frames queued are drawn.
    pub fn finish(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WindowSink {
    fn drop(&mut self) {
        self.finish();
    }
}

fn show_loop(rx: &Receiver<(String, Bytes)>, skipped: &AtomicU64, shown: &AtomicU64) {
    let mut windows: HashMap<String, Window> = HashMap::new();
    let mut warned = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(16)) {
            Ok((key, frame)) => {
                let Some((w, h, pixels)) = decode(&frame) else {
                    skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if !windows.contains_key(&key) && windows.len() < MAX_WINDOWS {
                    let title = format!("pixgram {key}");
                    match Window::new(&title, w, h, WindowOptions::default()) {
                        Ok(win) => {
                            windows.insert(key.clone(), win);
                        }
                        Err(e) if !warned => {
                            warned = true;
                            eprintln!(
                                "pixgram: warning: cannot open a window ({e}); is there a display?"
                            );
                        }
                        Err(_) => {}
                    }
                }
                let drawn = windows
                    .get_mut(&key)
                    .is_some_and(|win| win.update_with_buffer(&pixels, w, h).is_ok());
                if drawn {
                    shown.fetch_add(1, Ordering::Relaxed);
                } else {
                    skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                for win in windows.values_mut() {
                    win.update();
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        windows.retain(|_, w| w.is_open());
    }
}

/// A JPEG or PNG as 0RGB pixels: (width, height, pixels).
fn decode(frame: &[u8]) -> Option<(usize, usize, Vec<u32>)> {
    let img = crate::codec::decode(frame).ok()?;
    let pixels = img
        .rgb
        .chunks_exact(3)
        .map(|p| (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2]))
        .collect();
    Some((img.width as usize, img.height as usize, pixels))
}
