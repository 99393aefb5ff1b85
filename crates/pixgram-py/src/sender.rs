//! `pixgram.Sender`: connects to a receiver and sends bytes, files, numpy images and JSON.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::errors::{driver_to_py, to_py, Error};
use crate::image::encode_bgr_array;
use crate::json::{dumps, meta_from_dict};
use crate::peer::resolve_peer;
use pixgram::{Delivery, FecPolicy, FrameMeta};

/// How often a blocking wait gives Python the chance to raise KeyboardInterrupt.
pub const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Sends frames and JSON messages to one receiver.
///
/// `Sender(to, mode="reliable", key_file=None, window=8, quality=85, fps=30.0,
/// deadline=None, fec=None, timeout=None)`: `to` is "host:port" or (host, port); `mode`
/// "reliable" (every frame whole) or "live" (frames at `fps`, each dropped after `deadline`
/// seconds, optional `fec` parity ratio such as 0.25); `timeout` is how long (seconds) a
/// silent receiver is waited for before `pixgram.Timeout`.
///
/// The session makes progress (acknowledgements, resends, the handshake) inside every call
/// and, between calls, on a background thread that pumps it every millisecond while frames
/// are in flight: a program may send and then do something else.
#[pyclass(frozen, module = "pixgram._native")]
pub struct Sender {
    shared: Arc<Shared>,
    ticker: Mutex<Option<JoinHandle<()>>>,
    quality: u8,
}

/// The library's sender, shared by the Python thread and the ticker.
struct Shared {
    tx: Mutex<Option<pixgram::Sender>>,
    stop: AtomicBool,
}

/// How often the ticker pumps a session with frames in flight, and for how long.
const TICK: Duration = Duration::from_millis(1);
const TICK_PUMP: Duration = Duration::from_micros(50);
/// How often it looks at a session with nothing in flight.
const IDLE_TICK: Duration = Duration::from_millis(10);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<pixgram::Sender>> {
        // A panic while pumping cannot leave the sender half-changed in a way that matters
        // more than the panic itself, which Python has already seen.
        self.tx.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pumps the session between the program's calls until told to stop.
    fn tick(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            let busy = match self.tx.try_lock() {
                Ok(mut guard) => match guard.as_mut() {
                    Some(tx) if tx.udp().in_flight() > 0 => {
                        // An error here (the receiver gone) is the program's next call's.
                        let _ = tx.wait(Instant::now() + TICK_PUMP);
                        true
                    }
                    Some(_) => false,
                    None => return,
                },
                Err(_) => true,
            };
            std::thread::sleep(if busy { TICK } else { IDLE_TICK });
        }
    }
}

/// What became of everything a sender sent: `acked` (a count) and `lost` (frame ids).
#[pyclass(frozen, get_all, module = "pixgram._native")]
pub struct Sent {
    /// Frames and messages acknowledged by the receiver.
    acked: u64,
    /// Ids of the frames that were not delivered.
    lost: Vec<u64>,
}

#[pymethods]
impl Sent {
    fn __repr__(&self) -> String {
        format!("Sent(acked={}, lost={:?})", self.acked, self.lost)
    }
}

fn delivery(mode: &str, fps: f64, deadline: Option<f64>, fec: Option<f64>) -> PyResult<Delivery> {
    let bad = |e: pixgram::delivery::DeliveryError| PyValueError::new_err(e.to_string());
    match mode {
        "reliable" => Ok(Delivery::Reliable),
        "live" => {
            let mut live = Delivery::live(fps).map_err(bad)?;
            if let Some(s) = deadline {
                live = live
                    .with_deadline(Duration::from_secs_f64(s.max(0.0)))
                    .map_err(bad)?;
            }
            if let Some(ratio) = fec {
                live = live.with_fec(FecPolicy::Ratio(ratio as f32));
            }
            Ok(live)
        }
        other => Err(PyValueError::new_err(format!(
            "mode is \"reliable\" or \"live\", not {other:?}"
        ))),
    }
}

/// The bytes of any buffer, whatever its item type (a float32 array's 4 bytes an item).
fn raw_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    match PyBuffer::<u8>::get(data) {
        Ok(buffer) => buffer.to_vec(py),
        Err(_) => {
            let view = py
                .import("builtins")?
                .getattr("memoryview")?
                .call1((data,))?;
            PyBuffer::<u8>::get(&view.call_method1("cast", ("B",))?)?.to_vec(py)
        }
    }
}

/// Runs `f` on the open sender with the GIL released.
fn with_tx<T: Send>(
    py: Python<'_>,
    shared: &Shared,
    f: impl FnOnce(&mut pixgram::Sender) -> Result<T, pixgram::Error> + Send,
) -> PyResult<T> {
    py.detach(|| {
        let mut guard = shared.lock();
        let tx = guard.as_mut().ok_or(None)?;
        f(tx).map_err(Some)
    })
    .map_err(|e| e.map_or_else(|| Error::new_err("this sender is closed"), to_py))
}

#[pymethods]
impl Sender {
    #[new]
    #[pyo3(signature = (to, mode="reliable", key_file=None, window=8, quality=85, fps=30.0,
                        deadline=None, fec=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        to: &Bound<'_, PyAny>,
        mode: &str,
        key_file: Option<PathBuf>,
        window: usize,
        quality: u8,
        fps: f64,
        deadline: Option<f64>,
        fec: Option<f64>,
        timeout: Option<f64>,
    ) -> PyResult<Self> {
        let addr = resolve_peer(to)?;
        if window == 0 {
            return Err(PyValueError::new_err("window must be at least 1"));
        }
        let mut builder = pixgram::Sender::builder()
            .window(window)
            .delivery(delivery(mode, fps, deadline, fec)?);
        if let Some(path) = key_file {
            let key = pixgram::security::read_key_file(&path).map_err(driver_to_py)?;
            builder = builder.key(key);
        }
        if let Some(t) = timeout {
            builder = builder.timeout(Duration::from_secs_f64(t.max(0.001)));
        }
        let tx = py.detach(|| builder.connect(addr)).map_err(to_py)?;
        let shared = Arc::new(Shared {
            tx: Mutex::new(Some(tx)),
            stop: AtomicBool::new(false),
        });
        let ticking = Arc::clone(&shared);
        let ticker = std::thread::Builder::new()
            .name("pixgram-sender".into())
            .spawn(move || ticking.tick())
            .map_err(|e| Error::new_err(format!("cannot start the sender's thread: {e}")))?;
        Ok(Sender {
            shared,
            ticker: Mutex::new(Some(ticker)),
            quality: quality.clamp(1, 100),
        })
    }

    /// Sends `data` as one frame with the metadata dict `meta`; returns its frame id.
    ///
    /// `data` is encoded bytes (JPEG, PNG, anything: bytes, bytearray, memoryview), a path
    /// (str or os.PathLike: the file is sent, named in the metadata), or a numpy HxWx3 uint8
    /// BGR array (encoded to JPEG at `quality`, default the sender's).
    #[pyo3(signature = (data, meta=None, quality=None))]
    fn send(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        meta: Option<&Bound<'_, PyDict>>,
        quality: Option<u8>,
    ) -> PyResult<u64> {
        let mut frame_meta = meta_from_dict(py, meta)?;
        let bytes: Vec<u8> = if data.is_instance_of::<PyString>() || data.hasattr("__fspath__")? {
            let path: PathBuf = data.extract()?;
            let bytes = std::fs::read(&path).map_err(|e| {
                pyo3::exceptions::PyOSError::new_err((
                    e.raw_os_error().unwrap_or(0),
                    e.to_string(),
                    path.clone(),
                ))
            })?;
            if frame_meta.file.is_none() {
                frame_meta.file = path.file_name().map(|n| n.to_string_lossy().into_owned());
            }
            bytes
        } else if data.hasattr("__array_interface__")? {
            let q = quality.unwrap_or(self.quality).clamp(1, 100);
            let (jpeg, w, h) = encode_bgr_array(py, data, q)?;
            frame_meta.width = Some(w.into());
            frame_meta.height = Some(h.into());
            jpeg
        } else if let Ok(b) = data.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else {
            raw_bytes(py, data)?
        };
        self.send_frame(py, bytes, frame_meta)
    }

    /// Sends the raw bytes of any buffer (a numpy array of any dtype and shape, C order) as
    /// they are, with `meta`; returns the frame id. No image encoding.
    #[pyo3(signature = (data, meta=None))]
    fn send_bytes(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        meta: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<u64> {
        let frame_meta = meta_from_dict(py, meta)?;
        let bytes = match data.cast::<PyBytes>() {
            Ok(b) => b.as_bytes().to_vec(),
            Err(_) => raw_bytes(py, data)?,
        };
        self.send_frame(py, bytes, frame_meta)
    }

    /// Sends `obj` (anything `json.dumps` takes) as a JSON message; returns its id.
    fn send_json(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<u64> {
        let text = dumps(py, obj)?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::new_err(format!("not JSON: {e}")))?;
        self.wait_for_room(py, true)?;
        let id = with_tx(py, &self.shared, |tx| tx.send_json(&value))?;
        Ok(id.0)
    }

    /// Waits until everything sent is acknowledged (or lost), at most `timeout` seconds
    /// (None: as long as the receiver answers); True if nothing is left in flight.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let end = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        loop {
            let slice = Instant::now() + SIGNAL_CHECK;
            let until = end.map_or(slice, |e| e.min(slice));
            if with_tx(py, &self.shared, |tx| tx.wait(until))? {
                return Ok(true);
            }
            if end.is_some_and(|e| Instant::now() >= e) {
                return Ok(false);
            }
            py.check_signals()?;
        }
    }

    /// Frames and messages acknowledged so far.
    #[getter]
    fn acked(&self, py: Python<'_>) -> PyResult<u64> {
        with_tx(py, &self.shared, |tx| Ok(tx.verdicts().0))
    }

    /// Waits for every verdict (as long as the receiver answers), closes the session and
    /// returns what was delivered. Closing twice is harmless (the second returns None).
    fn close(&self, py: Python<'_>) -> PyResult<Option<Sent>> {
        self.stop_ticker(py);
        let Some(tx) = self.shared.lock().take() else {
            return Ok(None);
        };
        let sent = py.detach(|| tx.finish()).map_err(to_py)?;
        Ok(Some(Sent {
            acked: sent.acked,
            lost: sent.lost.iter().map(|(id, _)| id.0).collect(),
        }))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _kind: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

impl Sender {
    fn send_frame(&self, py: Python<'_>, bytes: Vec<u8>, meta: FrameMeta) -> PyResult<u64> {
        self.wait_for_room(py, false)?;
        let id = with_tx(py, &self.shared, |tx| tx.send_image(bytes, meta))?;
        Ok(id.0)
    }

    /// Waits for room in the window (a frame's, or with `message` a JSON message's) in
    /// slices, so that Ctrl-C interrupts a send blocked behind unacknowledged frames; the
    /// wait itself ends like the library's (the receiver gone after its timeout).
    fn wait_for_room(&self, py: Python<'_>, message: bool) -> PyResult<()> {
        while !with_tx(py, &self.shared, |tx| {
            tx.wait_for_room(message, Instant::now() + SIGNAL_CHECK)
        })? {
            py.check_signals()?;
        }
        Ok(())
    }

    fn stop_ticker(&self, py: Python<'_>) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let ticker = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(ticker) = ticker {
            // It never needs the GIL; it stops within one tick.
            py.detach(|| {
                let _ = ticker.join();
            });
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Dropped without close(): the ticker ends within one tick, holding nothing Python owns.
        let ticker = self
            .ticker
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(ticker) = ticker {
            let _ = ticker.join();
        }
    }
}
