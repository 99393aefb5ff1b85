//! `--transcode` in RTP mode: a JPEG that RFC 2435 cannot carry (progressive, 4:4:4,
//! grayscale, optimised Huffman tables, 12-bit, or a PNG) re-encoded as one it can: baseline,
//! 4:2:0, standard Huffman tables (`jpeg-encoder`, which never optimises them unless asked).

use std::borrow::Cow;

use pixgram_core::rtp_jpeg::jpeg;

use super::RtpError;
use crate::codec::{self, CodecError, Image};

/// `img` as a JPEG RFC 2435 carries, of `quality` (1-100), with a restart marker every
/// `restart_interval` MCUs if given.
pub fn encode_for_rtp(
    img: &Image,
    quality: u8,
    restart_interval: Option<u16>,
) -> Result<Vec<u8>, CodecError> {
    let too_large = || CodecError::TooLarge(img.width, img.height);
    let (w, h) = (
        u16::try_from(img.width).map_err(|_| too_large())?,
        u16::try_from(img.height).map_err(|_| too_large())?,
    );
    let mut out = Vec::with_capacity(img.rgb.len() / 8);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    enc.set_progressive(false);
    enc.set_optimized_huffman_tables(false);
    if let Some(r) = restart_interval.filter(|&r| r > 0) {
        enc.set_restart_interval(r);
    }
    enc.encode(&img.rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// `bytes` unchanged if RFC 2435 carries them; otherwise, with `transcode`, decoded and
/// re-encoded at `quality`; otherwise the reason it cannot be sent.
pub fn to_rtp_jpeg(bytes: &[u8], transcode: bool, quality: u8) -> Result<Cow<'_, [u8]>, RtpError> {
    match jpeg::parse(bytes) {
        Ok(_) => Ok(Cow::Borrowed(bytes)),
        Err(_) if transcode => {
            let img = codec::decode(bytes)?;
            Ok(Cow::Owned(encode_for_rtp(&img, quality, None)?))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern;

    #[test]
    fn re_encoded_frames_are_ones_rfc_2435_carries_and_decode() {
        let img = pattern::render(320, 240, 3, "rtp");
        for restart in [None, Some(20)] {
            let j = encode_for_rtp(&img, 80, restart).unwrap();
            let f = jpeg::parse(&j).expect("carried");
            assert_eq!(f.restart_interval, restart.unwrap_or(0));
            assert_eq!(codec::decode(&j).unwrap().width, 320);
        }
        let png = codec::encode_png(&img).unwrap();
        assert!(matches!(
            to_rtp_jpeg(&png, false, 85),
            Err(RtpError::Unsupported(_))
        ));
        let fixed = to_rtp_jpeg(&png, true, 85).unwrap();
        assert!(jpeg::parse(&fixed).is_ok());
    }
}
