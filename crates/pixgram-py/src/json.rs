//! Python objects to and from JSON, through Python's own `json` module (so what Python can
//! dump, pixgram can send, and a metadata dict reads back as `json.loads` gives it).

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::Error;
use pixgram::FrameMeta;

/// `obj` as JSON text.
pub fn dumps(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<String> {
    py.import("json")?.call_method1("dumps", (obj,))?.extract()
}

/// JSON text as a Python object.
pub fn loads<'py>(py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

/// A metadata dict (or `None`) as frame metadata.
pub fn meta_from_dict(py: Python<'_>, meta: Option<&Bound<'_, PyDict>>) -> PyResult<FrameMeta> {
    let Some(meta) = meta else {
        return Ok(FrameMeta::default());
    };
    let text = dumps(py, meta.as_any())?;
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| Error::new_err(format!("metadata is not a JSON object: {e}")))?;
    Ok(FrameMeta::from_object(object))
}
