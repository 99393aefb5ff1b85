//! V4L2 webcams (`pixgram send --camera /dev/video0`), through the pure-Rust `linuxvideo`
//! crate; built with the `camera` feature. The camera's own MJPEG is used when it offers it
//! (no decode or re-encode at all); otherwise YUYV frames are converted and JPEG-encoded.

use std::io;
use std::path::Path;

use linuxvideo::format::{PixFormat, PixelFormat};
use linuxvideo::stream::ReadStream;
use linuxvideo::{BufType, Device, Fract};

use crate::codec::{self, CodecError, Image};

/// An open camera, streaming.
pub struct Camera {
    stream: ReadStream,
    width: u32,
    height: u32,
    mjpeg: bool,
    name: String,
}

impl Camera {
    /// Opens `device` asking for `size` and `fps` (the driver picks the nearest it supports).
    pub fn open(device: &Path, size: (u32, u32), fps: f64) -> io::Result<Self> {
        let dev = Device::open(device)?;
        let formats = dev
            .formats(BufType::VIDEO_CAPTURE)
            .map(|f| f.map(|f| f.pixel_format()))
            .collect::<io::Result<Vec<_>>>()?;
        let (format, mjpeg) = if formats.contains(&PixelFormat::MJPG) {
            (PixelFormat::MJPG, true)
        } else if formats.contains(&PixelFormat::JPEG) {
            (PixelFormat::JPEG, true)
        } else if formats.contains(&PixelFormat::YUYV) {
            (PixelFormat::YUYV, false)
        } else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the camera offers neither MJPEG nor YUYV ({formats:?})"),
            ));
        };
        let capture = dev.video_capture(PixFormat::new(size.0, size.1, format))?;
        let fps = fps.clamp(1.0, 240.0).round() as u32;
        let _ = capture.set_frame_interval(Fract::new(1, fps));
        let (width, height) = (capture.format().width(), capture.format().height());
        Ok(Camera {
            stream: capture.into_stream()?,
            width,
            height,
            mjpeg,
            name: format!(
                "camera {}: {width}x{height} {}",
                device.display(),
                if mjpeg {
                    "MJPEG (sent as the camera encodes it)"
                } else {
                    "YUYV (encoded here)"
                }
            ),
        })
    }

    /// What was negotiated, in words.
    pub fn describe(&self) -> &str {
        &self.name
    }

    /// The next frame as a JPEG (`quality` applies to cameras without MJPEG).
    pub fn next_jpeg(&mut self, quality: u8) -> Result<Vec<u8>, CodecError> {
        let (w, h, mjpeg) = (self.width, self.height, self.mjpeg);
        let raw = self
            .stream
            .dequeue(|buf| Ok(buf.to_vec()))
            .map_err(|e| CodecError::Decode(format!("camera: {e}")))?;
        if mjpeg {
            return Ok(raw);
        }
        codec::encode_jpeg(&yuyv_to_rgb(&raw, w, h), quality)
    }
}

/// YUYV 4:2:2 (BT.601) to RGB.
fn yuyv_to_rgb(yuyv: &[u8], width: u32, height: u32) -> Image {
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for px in yuyv.chunks_exact(4) {
        let (y0, u, y1, v) = (px[0], px[1], px[2], px[3]);
        for y in [y0, y1] {
            let c = f32::from(y) - 16.0;
            let d = f32::from(u) - 128.0;
            let e = f32::from(v) - 128.0;
            let r = 1.164 * c + 1.596 * e;
            let g = 1.164 * c - 0.392 * d - 0.813 * e;
            let b = 1.164 * c + 2.017 * d;
            rgb.extend([r, g, b].map(|x| x.clamp(0.0, 255.0) as u8));
        }
    }
    rgb.resize(width as usize * height as usize * 3, 0);
    Image { width, height, rgb }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_grey_is_grey() {
        let img = yuyv_to_rgb(&[128, 128, 128, 128].repeat(8), 4, 4);
        assert_eq!(img.rgb.len(), 48);
        assert!(img.rgb.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    }
}
