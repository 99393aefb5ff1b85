//! `pixgram.Receiver`: binds a UDP port and yields the frames and messages that arrive.

use std::ffi::c_int;
use std::path::PathBuf;
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

/// Serves any number of senders on one UDP port.
///
/// `Receiver(listen="0.0.0.0:0", key_file=None, max_frame_size=64 MiB, max_peers=None)`;
/// iterate it (blocking, Ctrl-C interrupts) or call `recv(timeout)`.
#[pyclass(module = "pixgram._native")]
pub struct Receiver {
    rx: Option<pixgram::Receiver>,
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
    fn rx(&mut self) -> PyResult<&mut pixgram::Receiver> {
        self.rx
            .as_mut()
            .ok_or_else(|| Error::new_err("this receiver is closed"))
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
        Ok(Receiver { rx: Some(rx) })
    }

    /// The (host, port) this receiver listens on (port 0 asked: the one it got).
    #[getter]
    fn address(&mut self) -> PyResult<(String, u16)> {
        Ok(peer_tuple(self.rx()?.local_addr().map_err(to_py)?))
    }

    /// The next Frame or Message; waits at most `timeout` seconds (None: as long as it
    /// takes), then raises `pixgram.Timeout`. The GIL is released while waiting and Ctrl-C
    /// raises KeyboardInterrupt within 50 ms.
    #[pyo3(signature = (timeout=None))]
    fn recv(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let end = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        let rx = self.rx()?;
        loop {
            let slice = Instant::now() + SIGNAL_CHECK;
            let until = end.map_or(slice, |e| e.min(slice));
            if let Some(item) = py.detach(|| rx.next(Some(until))).map_err(to_py)? {
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

    /// What has already arrived, without waiting: a Frame, a Message, or None.
    fn poll(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let rx = self.rx()?;
        match py.detach(|| rx.next(Some(Instant::now()))).map_err(to_py)? {
            Some(item) => to_object(py, item).map(Some),
            None => Ok(None),
        }
    }

    /// Closes the socket; closing twice is harmless.
    fn close(&mut self) {
        self.rx = None;
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.recv(py, None)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _kind: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> bool {
        self.close();
        false
    }
}
