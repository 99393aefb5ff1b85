//! Image codecs: JPEG (pure Rust by default: encode with `jpeg-encoder`, SIMD; decode with
//! `zune-jpeg`; with the `turbojpeg` feature, both through the system's libjpeg-turbo), PNG
//! (`png`), resizing, and the rule that an already-encoded file is sent as it is unless the
//! user asks for something else. Choice of crates and their speed: docs/BENCHMARKS.md.

use std::borrow::Cow;
use std::io::Cursor;

use thiserror::Error;

/// Largest image decoded, in pixels: 20 megapixels (a 5472 x 3648 camera photo), whose RGB is
/// 60 MB and whose widest intermediate (8-bit RGBA) 80 MB, so a decode stays within the
/// receiver's memory bound. Larger declarations are refused before any pixel buffer is
/// allocated (a 16384 x 16384, 16-bit RGBA PNG of 2 MB used to take 1.8 GB).
pub const MAX_PIXELS: u64 = 20_000_000;

pub use crate::format::ImageFormat;

/// 8-bit RGB pixels, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

/// What went wrong with an image.
#[derive(Debug, Error)]
pub enum CodecError {
    /// Neither JPEG nor PNG.
    #[error("not a JPEG or PNG image")]
    NotAnImage,
    /// The image is damaged or uses a feature the decoder lacks.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// Too many pixels.
    #[error("{0} x {1} pixels is more than pixgram decodes")]
    TooLarge(u32, u32),
    /// The encoder refused.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Decodes a JPEG or PNG into RGB.
pub fn decode(bytes: &[u8]) -> Result<Image, CodecError> {
    match ImageFormat::detect(bytes) {
        Some(ImageFormat::Jpeg) => decode_jpeg(bytes),
        Some(ImageFormat::Png) => decode_png(bytes),
        None => Err(CodecError::NotAnImage),
    }
}

fn check_size(w: u32, h: u32) -> Result<(), CodecError> {
    if w == 0 || h == 0 || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(CodecError::TooLarge(w, h));
    }
    Ok(())
}

#[cfg(feature = "turbojpeg")]
fn decode_jpeg(bytes: &[u8]) -> Result<Image, CodecError> {
    let header = turbojpeg::read_header(bytes).map_err(|e| CodecError::Decode(e.to_string()))?;
    check_size(header.width as u32, header.height as u32)?;
    let img = turbojpeg::decompress(bytes, turbojpeg::PixelFormat::RGB)
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok(Image {
        width: img.width as u32,
        height: img.height as u32,
        rgb: img.pixels,
    })
}

#[cfg(not(feature = "turbojpeg"))]
fn decode_jpeg(bytes: &[u8]) -> Result<Image, CodecError> {
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(Cursor::new(bytes), options);
    d.decode_headers()
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    let info = d
        .info()
        .ok_or_else(|| CodecError::Decode("no frame header".into()))?;
    check_size(u32::from(info.width), u32::from(info.height))?;
    let rgb = d.decode().map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok(Image {
        width: u32::from(info.width),
        height: u32::from(info.height),
        rgb,
    })
}

fn decode_png(bytes: &[u8]) -> Result<Image, CodecError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    let (w, h) = (reader.info().width, reader.info().height);
    check_size(w, h)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| CodecError::Decode("image too large".into()))?;
    let mut buf = vec![0u8; size];
    let out = reader
        .next_frame(&mut buf)
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    buf.truncate(out.buffer_size());
    let rgb = match out.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => {
            // In place: pixel i moves from 4i to 3i, never over one not yet moved.
            let pixels = buf.len() / 4;
            for i in 0..pixels {
                buf.copy_within(4 * i..4 * i + 3, 3 * i);
            }
            buf.truncate(3 * pixels);
            buf
        }
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        png::ColorType::Indexed => {
            return Err(CodecError::Decode("indexed colour was not expanded".into()))
        }
    };
    Ok(Image {
        width: w,
        height: h,
        rgb,
    })
}

/// Encodes RGB as a JPEG of `quality` (1-100; 4:2:0 below 90).
#[cfg(feature = "turbojpeg")]
pub fn encode_jpeg(img: &Image, quality: u8) -> Result<Vec<u8>, CodecError> {
    let q = quality.clamp(1, 100);
    let sub = if q < 90 {
        turbojpeg::Subsamp::Sub2x2
    } else {
        turbojpeg::Subsamp::None
    };
    let image = turbojpeg::Image {
        pixels: &img.rgb[..],
        width: img.width as usize,
        pitch: img.width as usize * 3,
        height: img.height as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    let out = turbojpeg::compress(image, i32::from(q), sub)
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out.to_vec())
}

/// Encodes RGB as a JPEG of `quality` (1-100; 4:2:0 below 90).
#[cfg(not(feature = "turbojpeg"))]
pub fn encode_jpeg(img: &Image, quality: u8) -> Result<Vec<u8>, CodecError> {
    let (w, h) = (
        u16::try_from(img.width).map_err(|_| CodecError::TooLarge(img.width, img.height))?,
        u16::try_from(img.height).map_err(|_| CodecError::TooLarge(img.width, img.height))?,
    );
    let mut out = Vec::with_capacity(img.rgb.len() / 8);
    jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
        .encode(&img.rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// Encodes RGB as a PNG (fast compression: PNG here is for lossless frames, not archives).
pub fn encode_png(img: &Image) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, img.width, img.height);
    e.set_color(png::ColorType::Rgb);
    e.set_depth(png::BitDepth::Eight);
    e.set_compression(png::Compression::Fast);
    let mut w = e
        .write_header()
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    w.write_image_data(&img.rgb)
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    w.finish().map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// `img` scaled to `width` x `height` (bilinear).
pub fn resize(img: &Image, width: u32, height: u32) -> Image {
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (dw, dh) = (width.max(1) as usize, height.max(1) as usize);
    if sw == 0 || sh == 0 || img.rgb.len() < sw * sh * 3 {
        // Nothing to sample from: a black image of the size asked for.
        return Image {
            width: dw as u32,
            height: dh as u32,
            rgb: vec![0; dw * dh * 3],
        };
    }
    let mut rgb = vec![0u8; dw * dh * 3];
    let fx = sw as f32 / dw as f32;
    let fy = sh as f32 / dh as f32;
    for y in 0..dh {
        let sy = ((y as f32 + 0.5) * fy - 0.5).clamp(0.0, (sh - 1) as f32);
        let (y0, ty) = (sy as usize, sy.fract());
        let y1 = (y0 + 1).min(sh - 1);
        for x in 0..dw {
            let sx = ((x as f32 + 0.5) * fx - 0.5).clamp(0.0, (sw - 1) as f32);
            let (x0, tx) = (sx as usize, sx.fract());
            let x1 = (x0 + 1).min(sw - 1);
            for c in 0..3 {
                let p = |xx: usize, yy: usize| f32::from(img.rgb[(yy * sw + xx) * 3 + c]);
                let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
                let bottom = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
                rgb[(y * dw + x) * 3 + c] = (top * (1.0 - ty) + bottom * ty).round() as u8;
            }
        }
    }
    Image {
        width: dw as u32,
        height: dh as u32,
        rgb,
    }
}

/// What the user asked to change about images before sending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transcode {
    /// Send in this format.
    pub format: Option<ImageFormat>,
    /// JPEG quality.
    pub quality: Option<u8>,
    /// Scale to width x height.
    pub size: Option<(u32, u32)>,
}

impl Transcode {
    /// Whether anything is asked at all.
    pub fn is_identity(&self) -> bool {
        *self == Transcode::default()
    }

    /// `bytes` as they should be sent: unchanged (pass-through, no decode) when nothing is
    /// asked or when the file already is in the asked format and nothing else is asked;
    /// otherwise decoded, scaled and re-encoded (JPEG quality 85 unless told).
    pub fn apply<'a>(&self, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, CodecError> {
        let current = ImageFormat::detect(bytes);
        let only_format = self.quality.is_none() && self.size.is_none();
        if self.is_identity() || (only_format && self.format == current && current.is_some()) {
            return Ok(Cow::Borrowed(bytes));
        }
        let mut img = decode(bytes)?;
        if let Some((w, h)) = self.size {
            img = resize(&img, w, h);
        }
        let format = self.format.or(current).unwrap_or(ImageFormat::Jpeg);
        let out = match format {
            ImageFormat::Jpeg => encode_jpeg(&img, self.quality.unwrap_or(85))?,
            ImageFormat::Png => encode_png(&img)?,
        };
        Ok(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11: a PNG declaring 16384 x 16384 16-bit RGBA (1.8 GB decoded) is refused from its
    /// header, before any pixel buffer.
    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let mut bytes = Vec::new();
        {
            let mut e = png::Encoder::new(&mut bytes, 16_384, 16_384);
            e.set_color(png::ColorType::Rgba);
            e.set_depth(png::BitDepth::Sixteen);
            let mut w = e.write_header().unwrap();
            // A little deflate data: a decoder reads the header up to here.
            w.write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x03, 0x00])
                .unwrap();
            drop(w);
        }
        let t = std::time::Instant::now();
        assert!(matches!(
            decode(&bytes),
            Err(CodecError::TooLarge(16_384, 16_384))
        ));
        assert!(t.elapsed() < std::time::Duration::from_millis(200));
    }

    #[test]
    fn rgba_pngs_lose_their_alpha_in_place() {
        let mut bytes = Vec::new();
        {
            let mut e = png::Encoder::new(&mut bytes, 2, 1);
            e.set_color(png::ColorType::Rgba);
            let mut w = e.write_header().unwrap();
            w.write_image_data(&[1, 2, 3, 255, 4, 5, 6, 0]).unwrap();
        }
        let img = decode(&bytes).unwrap();
        assert_eq!(img.rgb, [1, 2, 3, 4, 5, 6]);
    }

    fn gradient(w: u32, h: u32) -> Image {
        let rgb = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 255 / w) as u8, (y * 255 / h) as u8, 128]
            })
            .collect();
        Image {
            width: w,
            height: h,
            rgb,
        }
    }

    #[test]
    fn jpeg_and_png_round_trip() {
        let img = gradient(64, 48);
        let jpeg = encode_jpeg(&img, 90).unwrap();
        assert_eq!(ImageFormat::detect(&jpeg), Some(ImageFormat::Jpeg));
        let back = decode(&jpeg).unwrap();
        assert_eq!((back.width, back.height), (64, 48));
        let err: i64 = back
            .rgb
            .iter()
            .zip(&img.rgb)
            .map(|(a, b)| (i64::from(*a) - i64::from(*b)).abs())
            .sum();
        assert!(err / (img.rgb.len() as i64) < 4, "mean error {err}");
        let png = encode_png(&img).unwrap();
        assert_eq!(decode(&png).unwrap(), img, "PNG is lossless");
    }

    #[test]
    fn quality_changes_the_size() {
        let img = gradient(320, 240);
        let low = encode_jpeg(&img, 20).unwrap();
        let high = encode_jpeg(&img, 95).unwrap();
        assert!(low.len() < high.len());
    }

    #[test]
    fn pass_through_sends_the_same_bytes_and_transcoding_changes_them() {
        let jpeg = encode_jpeg(&gradient(32, 32), 80).unwrap();
        let same = Transcode::default().apply(&jpeg).unwrap();
        assert!(matches!(same, Cow::Borrowed(b) if b == &jpeg[..]));
        let t = Transcode {
            format: Some(ImageFormat::Jpeg),
            ..Default::default()
        };
        assert!(matches!(t.apply(&jpeg).unwrap(), Cow::Borrowed(_)));
        let t = Transcode {
            size: Some((16, 8)),
            format: Some(ImageFormat::Png),
            ..Default::default()
        };
        let small = decode(&t.apply(&jpeg).unwrap()).unwrap();
        assert_eq!((small.width, small.height), (16, 8));
    }

    #[test]
    fn non_images_are_refused_clearly() {
        let t = Transcode {
            quality: Some(50),
            ..Default::default()
        };
        assert!(matches!(t.apply(b"hello"), Err(CodecError::NotAnImage)));
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0, 1, 2]).is_err());
    }
}
