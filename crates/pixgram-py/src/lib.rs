//! pixgram for Python: the native module `pixgram._native` behind the `pixgram` package
//! (python/pixgram). It wraps the library's few-lines API ([`pixgram::Sender`],
//! [`pixgram::Receiver`]) and codecs; no protocol logic lives here.

mod buffer;
mod errors;
mod image;
mod json;
mod peer;
mod receiver;
mod sender;

use pyo3::prelude::*;

/// Decodes a JPEG or PNG (bytes or any buffer) to an HxWx3 uint8 BGR numpy array.
#[pyfunction]
fn decode_image<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let bytes = pyo3::buffer::PyBuffer::<u8>::get(data)?.to_vec(py)?;
    image::decode_to_bgr_array(py, &bytes)
}

/// Encodes an HxWx3 uint8 BGR numpy array as JPEG bytes of `quality`.
#[pyfunction]
#[pyo3(signature = (array, quality=85))]
fn encode_jpeg<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    quality: u8,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let (jpeg, _, _) = image::encode_bgr_array(py, array, quality)?;
    Ok(pyo3::types::PyBytes::new(py, &jpeg))
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<sender::Sender>()?;
    m.add_class::<sender::Sent>()?;
    m.add_class::<receiver::Receiver>()?;
    m.add_class::<receiver::Frame>()?;
    m.add_class::<receiver::Message>()?;
    m.add_class::<image::Pixels>()?;
    m.add_function(wrap_pyfunction!(decode_image, m)?)?;
    m.add_function(wrap_pyfunction!(encode_jpeg, m)?)?;
    errors::register(m)?;
    Ok(())
}
