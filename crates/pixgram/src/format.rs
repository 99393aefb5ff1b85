//! The one image-format detector: which encoded image a buffer holds, from its signature.
//! Everything that needs to know (the codec, the folder sink's file extensions, MJPEG on
//! stdout, the viewer's content type, the sender's check before re-encoding) asks here, so
//! there is one rule.

/// An encoded image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (baseline or progressive).
    Jpeg,
    /// PNG.
    Png,
}

/// A JPEG starts with its SOI marker.
const JPEG_SIGNATURE: &[u8] = &[0xFF, 0xD8];
/// A PNG starts with `\x89PNG` (then `\r\n\x1a\n`, not required: the four bytes are
/// distinctive enough, and a decoder checks the rest).
const PNG_SIGNATURE: &[u8] = b"\x89PNG";

impl ImageFormat {
    /// The format of `bytes`, from its signature; `None` for anything else.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(JPEG_SIGNATURE) {
            Some(ImageFormat::Jpeg)
        } else if bytes.starts_with(PNG_SIGNATURE) {
            Some(ImageFormat::Png)
        } else {
            None
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        }
    }

    /// Other extensions files of this format go by (compared ignoring case).
    pub fn extension_aliases(self) -> &'static [&'static str] {
        match self {
            ImageFormat::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            ImageFormat::Png => &["png"],
        }
    }

    /// The HTTP content type.
    pub fn mime_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

/// The file extension for `bytes`: its format's, or `bin`.
pub fn extension_for(bytes: &[u8]) -> &'static str {
    ImageFormat::detect(bytes).map_or("bin", ImageFormat::extension)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_decide() {
        assert_eq!(
            ImageFormat::detect(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::detect(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::detect(b"\x89PN"),
            None,
            "a truncated signature"
        );
        assert_eq!(ImageFormat::detect(&[0xFF]), None);
        assert_eq!(ImageFormat::detect(b"GIF89a"), None);
        assert_eq!(extension_for(b"P6\n"), "bin");
        assert_eq!(extension_for(&[0xFF, 0xD8, 0xFF, 0xDB]), "jpg");
    }
}
