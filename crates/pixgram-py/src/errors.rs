//! Rust errors as Python exceptions: one base class, `pixgram.Error`, and a subclass for each
//! case a program may want to catch on its own.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use pixgram::DriverError;

create_exception!(
    pixgram,
    Error,
    PyException,
    "Any pixgram failure; the subclasses below say which."
);
create_exception!(
    pixgram,
    Timeout,
    Error,
    "Nothing arrived in time, or the peer stopped answering."
);
create_exception!(
    pixgram,
    Refused,
    Error,
    "The receiver refused the session (it serves as many senders as it may), or nothing listens there."
);
create_exception!(
    pixgram,
    AddressError,
    Error,
    "An address that cannot be resolved, bound or understood (e.g. a tcp:// URL)."
);
create_exception!(
    pixgram,
    KeyFileError,
    Error,
    "A key file that cannot be used."
);
create_exception!(
    pixgram,
    ImageError,
    Error,
    "Bytes that are not a JPEG or PNG, or an array that is not HxWx3 uint8."
);

/// The exception for a library error.
pub fn to_py(e: pixgram::Error) -> PyErr {
    let text = e.to_string();
    match e {
        pixgram::Error::Address(_) => AddressError::new_err(text),
        pixgram::Error::File { path, source } => {
            pyo3::exceptions::PyOSError::new_err((source.raw_os_error().unwrap_or(0), text, path))
        }
        pixgram::Error::Driver(d) => driver_to_py(d),
        _ => Error::new_err(text),
    }
}

/// The exception for a driver error.
pub fn driver_to_py(e: DriverError) -> PyErr {
    let text = e.to_string();
    match e {
        DriverError::PeerGone { .. } => Timeout::new_err(text),
        DriverError::Refused { .. } | DriverError::Unreachable { .. } => Refused::new_err(text),
        DriverError::Bind { .. } => AddressError::new_err(text),
        DriverError::Key { .. } => KeyFileError::new_err(text),
        DriverError::File { path, source } => {
            pyo3::exceptions::PyOSError::new_err((source.raw_os_error().unwrap_or(0), text, path))
        }
        _ => Error::new_err(text),
    }
}

/// The exception for an image that cannot be decoded or encoded.
pub fn codec_to_py(e: pixgram::codec::CodecError) -> PyErr {
    ImageError::new_err(e.to_string())
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("Timeout", py.get_type::<Timeout>())?;
    m.add("Refused", py.get_type::<Refused>())?;
    m.add("AddressError", py.get_type::<AddressError>())?;
    m.add("KeyFileError", py.get_type::<KeyFileError>())?;
    m.add("ImageError", py.get_type::<ImageError>())?;
    Ok(())
}
