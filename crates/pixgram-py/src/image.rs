//! numpy arrays and encoded images: an HxWx3 uint8 BGR array (OpenCV's order) to JPEG, and a
//! JPEG or PNG to such an array, the codecs being the library's (`pixgram::codec`).

use std::ffi::c_int;

use pyo3::buffer::PyBuffer;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::buffer::export_readonly;
use crate::errors::{codec_to_py, ImageError};
use pixgram::codec::{self, Image};

/// Decoded pixels that numpy views in place (`numpy.frombuffer`); never changed once made.
#[pyclass(frozen, module = "pixgram._native")]
pub struct Pixels {
    bytes: Vec<u8>,
}

#[pymethods]
impl Pixels {
    #[allow(unsafe_code)]
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let owner = slf.clone().into_any();
        // SAFETY: `bytes` belongs to a frozen object and is never resized or written.
        unsafe { export_readonly(&owner, &slf.get().bytes, view, flags) }
    }

    fn __len__(&self) -> usize {
        self.bytes.len()
    }
}

/// Swaps the first and third byte of every pixel (RGB to BGR and back).
fn swap_red_blue(pixels: &mut [u8]) {
    for px in pixels.chunks_exact_mut(3) {
        px.swap(0, 2);
    }
}

/// `array` (HxWx3, uint8, BGR) as a JPEG of `quality`; returns it with its width and height.
pub fn encode_bgr_array(
    py: Python<'_>,
    array: &Bound<'_, PyAny>,
    quality: u8,
) -> PyResult<(Vec<u8>, u32, u32)> {
    let shape: Vec<usize> = array.getattr("shape")?.extract()?;
    let dtype: String = array.getattr("dtype")?.str()?.extract()?;
    let [h, w, 3] = shape[..] else {
        return Err(ImageError::new_err(format!(
            "an image array is HxWx3 (BGR), not {shape:?}"
        )));
    };
    if dtype != "uint8" {
        return Err(ImageError::new_err(format!(
            "an image array is uint8, not {dtype}"
        )));
    }
    let (width, height) = (
        u32::try_from(w).map_err(|_| ImageError::new_err("image too wide"))?,
        u32::try_from(h).map_err(|_| ImageError::new_err("image too tall"))?,
    );
    let buffer = PyBuffer::<u8>::get(array)?;
    let mut rgb = buffer.to_vec(py)?; // follows strides: any layout numpy has
    swap_red_blue(&mut rgb);
    let image = Image { width, height, rgb };
    let jpeg = py
        .detach(|| codec::encode_jpeg(&image, quality))
        .map_err(codec_to_py)?;
    Ok((jpeg, width, height))
}

/// `bytes` (a JPEG or PNG) decoded to an HxWx3 uint8 BGR numpy array, as `cv2.imdecode` gives.
pub fn decode_to_bgr_array<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let image = py
        .detach(|| {
            codec::decode(bytes).map(|mut img| {
                swap_red_blue(&mut img.rgb);
                img
            })
        })
        .map_err(codec_to_py)?;
    let shape = (image.height as usize, image.width as usize, 3usize);
    let pixels = Bound::new(py, Pixels { bytes: image.rgb })?;
    let numpy = py.import("numpy")?;
    let flat = numpy.call_method1("frombuffer", (pixels, numpy.getattr("uint8")?))?;
    flat.call_method1("reshape", (shape,))
}
