//! `pixgram.Receiver`: binds a UDP port and yields the frames and messages that arrive.

use std::ffi::c_int;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::buffer::export_readonly;
use crate::errors::{driver_to_py, to_py, Error, Timeout};
use crate::image::decode_to_bgr_array;
use crate::json::loads;
use crate::peer::{peer_tuple, resolve_peer};
use crate::sender::SIGNAL_CHECK;
use pixgram::Incoming;

/// How far ahead a poll's deadline is set: long enough to reach the socket read.
const POLL_WINDOW: Duration = Duration::from_micros(30);

/// Serves any number of senders on one UDP port.
///
/// `Receiver(listen="0.0.0.0:0", key_file=None, max_frame_size=64 MiB, max_peers=None)`;
/// iterate it (blocking, Ctrl-C interrupts) or call `recv(timeout)`.
#[pyclass(frozen, module = "pixgram._native")]
pub struct Receiver {
    /// None once closed; a receive takes the lock one 50 ms slice at a time, so `close()`
    /// from another thread ends a blocked `recv()` (which raises `pixgram.Error`).
    rx: Mutex<Option<pixgram::Receiver>>,
}

/// A frame that arrived whole. Its bytes are exposed without a copy through the buffer
/// protocol: `bytes(f)`, `memoryview(f)`, `numpy.frombuffer(f, numpy.uint8)`, or `f.data`.
#[pyclass(frozen, module = "pixgram._native")]
pub struct Frame {
    /// Who sent it: (host, port).
    #[pyo3(get)]
    peer: (String, u16),
    /// Its stream.
    #[pyo3(get)]
    stream: u32,
    /// Its id in the stream.
    #[pyo3(get)]
    id: u64,
    bytes: Bytes,
    meta_json: Vec<u8>,
    meta: PyOnceLock<Py<PyAny>>,
}

/// A JSON message that arrived: `.json()` parses it, `.text` is the JSON text.
#[pyclass(frozen, module = "pixgram._native")]
pub struct Message {
    /// Who sent it: (host, port).
    #[pyo3(get)]
    peer: (String, u16),
    /// Its stream.
    #[pyo3(get)]
    stream: u32,
    /// Its id in the stream.
    #[pyo3(get)]
    id: u64,
    bytes: Bytes,
}

#[pymethods]
impl Frame {
    /// The metadata dict (empty if the frame carried none).
    #[getter]
    fn meta(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let meta = self
            .meta
            .get_or_try_init(py, || loads(py, &self.meta_json).map(Bound::unbind))?;
        Ok(meta.clone_ref(py))
    }

    /// The bytes, as a read-only memoryview over the received buffer (no copy).
    #[getter]
    fn data<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("builtins")?
            .getattr("memoryview")?
            .call1((slf,))
    }

    /// The image decoded (JPEG or PNG) to an HxWx3 uint8 BGR numpy array, as
    /// `cv2.imdecode(buf, cv2.IMREAD_COLOR)` gives it.
    fn image<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decode_to_bgr_array(py, &self.bytes)
    }

    #[allow(unsafe_code)]
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let owner = slf.clone().into_any();
        // SAFETY: `Bytes` of a frozen object: immutable, at one address while it lives.
        unsafe { export_readonly(&owner, &slf.get().bytes, view, flags) }
    }

    fn __len__(&self) -> usize {
        self.bytes.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Frame(peer={:?}, stream={}, id={}, {} bytes)",
            self.peer,
            self.stream,
            self.id,
            self.bytes.len()
        )
    }
}

#[pymethods]
impl Message {
    /// The JSON text.
    #[getter]
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The message parsed (`json.loads`).
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        loads(py, &self.bytes)
    }

    fn __repr__(&self) -> String {
        format!(
            "Message(peer={:?}, stream={}, id={}, {:?})",
            self.peer,
            self.stream,
            self.id,
            self.text()
        )
    }
}

impl Receiver {
    fn lock(&self) -> MutexGuard<'_, Option<pixgram::Receiver>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the open receiver, the GIL released.
    fn with_rx<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut pixgram::Receiver) -> Result<T, pixgram::Error> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut guard = self.lock();
            let rx = guard.as_mut().ok_or(None)?;
            f(rx).map_err(Some)
        })
        .map_err(|e| e.map_or_else(|| Error::new_err("this receiver is closed"), to_py))
    }
}

fn to_object(py: Python<'_>, item: Incoming) -> PyResult<Py<PyAny>> {
    Ok(match item {
        Incoming::Frame(f) => Py::new(
            py,
            Frame {
                peer: peer_tuple(f.peer),
                stream: f.stream.0,
                id: f.id.0,
                bytes: f.bytes,
                meta_json: f.meta.to_bytes(),
                meta: PyOnceLock::new(),
            },
        )?
        .into_any(),
        Incoming::Message(m) => Py::new(
            py,
            Message {
                peer: peer_tuple(m.peer),
                stream: m.stream.0,
                id: m.id.0,
                bytes: m.bytes,
            },
        )?
        .into_any(),
    })
}

#[pymethods]
impl Receiver {
    #[new]
    #[pyo3(signature = (listen=None, key_file=None, max_frame_size=None, max_peers=None))]
    fn new(
        py: Python<'_>,
        listen: Option<&Bound<'_, PyAny>>,
        key_file: Option<PathBuf>,
        max_frame_size: Option<u64>,
        max_peers: Option<usize>,
    ) -> PyResult<Self> {
        let addr = match listen {
            Some(listen) => resolve_peer(listen)?,
            None => std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let mut builder = pixgram::Receiver::builder();
        if let Some(path) = key_file {
            let key = pixgram::security::read_key_file(&path).map_err(driver_to_py)?;
            builder = builder.key(key);
        }
        if let Some(n) = max_frame_size {
            builder = builder.max_frame_size(n);
        }
        if let Some(n) = max_peers {
            builder = builder.max_peers(n);
        }
        let rx = py.detach(|| builder.bind(addr)).map_err(to_py)?;
        Ok(Receiver {
            rx: Mutex::new(Some(rx)),
        })
    }

    /// The (host, port) this receiver listens on (port 0 asked: the one it got).
    #[getter]
    fn address(&self, py: Python<'_>) -> PyResult<(String, u16)> {
        Ok(peer_tuple(self.with_rx(py, |rx| rx.local_addr())?))
    }

    /// The next Frame or Message; waits at most `timeout` seconds (None: as long as it
    /// takes), then raises `pixgram.Timeout`. The GIL is released while waiting and Ctrl-C
    /// raises KeyboardInterrupt within 50 ms.
    #[pyo3(signature = (timeout=None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let end = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        loop {
            let slice = Instant::now() + SIGNAL_CHECK;
            let until = end.map_or(slice, |e| e.min(slice));
            if let Some(item) = self.with_rx(py, |rx| rx.next(Some(until)))? {
                return to_object(py, item);
            }
            if end.is_some_and(|e| Instant::now() >= e) {
                return Err(Timeout::new_err(format!(
                    "nothing arrived in {:.3} s",
                    timeout.unwrap_or_default()
                )));
            }
            py.check_signals()?;
        }
    }

    /// What has already arrived (in the socket's buffer too), without waiting for more: a
    /// Frame, a Message, or None (after at most about 0.1 ms).
    fn poll(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        // The library's receive reads what is waiting before it checks the deadline again;
        // a deadline already passed would return before reading.
        let next = |rx: &mut pixgram::Receiver| rx.next(Some(Instant::now() + POLL_WINDOW));
        match self.with_rx(py, next)? {
            Some(item) => to_object(py, item).map(Some),
            None => Ok(None),
        }
    }

    /// Closes the socket; closing twice is harmless.
    fn close(&self, py: Python<'_>) {
        let closed = py.detach(|| self.lock().take());
        drop(closed);
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.recv(py, None)
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
    ) -> bool {
        self.close(py);
        false
    }
}
