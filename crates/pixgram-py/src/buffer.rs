//! The one `unsafe` of the crate: exporting bytes that Rust owns through Python's buffer
//! protocol, so `memoryview(frame)`, `bytes(frame)` and `numpy.frombuffer(frame)` read the
//! received datagrams' reassembled bytes where they are, without a copy.

use std::ffi::c_int;

use pyo3::ffi;
use pyo3::prelude::*;

/// Fills `view` with a read-only, one-dimensional, unsigned-byte view of `bytes`, owned by
/// `owner` (which the view keeps alive).
///
/// # Safety
/// `view` is the pointer Python passed to `__getbuffer__`, and `bytes` must stay at the same
/// address, unchanged, for as long as `owner` lives: callers pass memory of a `frozen`
/// pyclass that never changes it (a `bytes::Bytes` or a `Vec<u8>` never resized).
#[allow(unsafe_code)]
pub unsafe fn export_readonly(
    owner: &Bound<'_, PyAny>,
    bytes: &[u8],
    view: *mut ffi::Py_buffer,
    flags: c_int,
) -> PyResult<()> {
    let len = ffi::Py_ssize_t::try_from(bytes.len())
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("buffer too large"))?;
    // SAFETY: PyBuffer_FillInfo takes a new reference to `owner` (released with the view),
    // refuses a writable request on read-only memory, and writes only into `view`, which
    // Python allocated for this call. The memory is not written through the view (readonly=1).
    let rc = unsafe {
        ffi::PyBuffer_FillInfo(
            view,
            owner.as_ptr(),
            bytes.as_ptr() as *mut std::ffi::c_void,
            len,
            1,
            flags,
        )
    };
    if rc == -1 {
        return Err(PyErr::fetch(owner.py()));
    }
    Ok(())
}
