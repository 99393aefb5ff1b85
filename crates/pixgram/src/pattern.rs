//! A generated, moving test pattern for `pixgram send --pattern`: colour bars that scroll, a
//! square that crosses the frame, and the frame number and send time drawn in, so a viewer
//! sees at a glance that frames move and how old they are. Any size.

use crate::codec::Image;

/// 5x7 glyphs for digits, ':' and '.', one row per byte (bit 4 is the left column).
const GLYPHS: [(char, [u8; 7]); 12] = [
    ('0', [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E]),
    ('1', [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E]),
    ('2', [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F]),
    ('3', [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E]),
    ('4', [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02]),
    ('5', [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E]),
    ('6', [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E]),
    ('7', [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08]),
    ('8', [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E]),
    ('9', [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C]),
    (':', [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00]),
    ('.', [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C]),
];

const BARS: [[u8; 3]; 7] = [
    [192, 192, 192],
    [192, 192, 0],
    [0, 192, 192],
    [0, 192, 0],
    [192, 0, 192],
    [192, 0, 0],
    [0, 0, 192],
];

/// Draws frame `n` of a `width` x `height` pattern with `text` (digits, ':' and '.') in the
/// top-left corner.
pub fn render(width: u32, height: u32, n: u64, text: &str) -> Image {
    let (w, h) = (width.max(16) as usize, height.max(16) as usize);
    let mut rgb = vec![0u8; w * h * 3];
    let shift = (n as usize * 4) % w;
    let bar_w = w.div_ceil(BARS.len());
    // One row of bars, then copied down.
    for x in 0..w {
        let c = BARS[((x + shift) % w) / bar_w % BARS.len()];
        rgb[x * 3..x * 3 + 3].copy_from_slice(&c);
    }
    let (first, rest) = rgb.split_at_mut(w * 3);
    for row in rest.chunks_exact_mut(w * 3) {
        row.copy_from_slice(first);
    }
    // A white square crossing the frame.
    let side = (h / 6).max(4);
    let sx = (n as usize * 7) % (w - side);
    let sy = h / 2 - side / 2 + ((n as usize * 3) % (h / 4)) - h / 8;
    fill(
        &mut rgb,
        w,
        sx,
        sy.min(h - side),
        side,
        side,
        [255, 255, 255],
    );
    // The text, on a black band.
    let scale = (h / 120).max(1);
    let (gw, gh) = (6 * scale, 9 * scale);
    let band_w = (gw * text.len() + 2 * scale).min(w);
    fill(&mut rgb, w, 0, 0, band_w, gh.min(h), [0, 0, 0]);
    for (i, ch) in text.chars().enumerate() {
        let Some((_, rows)) = GLYPHS.iter().find(|(c, _)| *c == ch) else {
            continue;
        };
        for (ry, bits) in rows.iter().enumerate() {
            for rx in 0..5 {
                if bits & (0x10 >> rx) != 0 {
                    let x = scale + i * gw + rx * scale;
                    let y = scale + ry * scale;
                    if x + scale <= w && y + scale <= h {
                        fill(&mut rgb, w, x, y, scale, scale, [255, 255, 255]);
                    }
                }
            }
        }
    }
    Image {
        width: w as u32,
        height: h as u32,
        rgb,
    }
}

fn fill(rgb: &mut [u8], w: usize, x: usize, y: usize, fw: usize, fh: usize, c: [u8; 3]) {
    for yy in y..y + fh {
        for xx in x..(x + fw).min(w) {
            let at = (yy * w + xx) * 3;
            if at + 3 <= rgb.len() {
                rgb[at..at + 3].copy_from_slice(&c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_differ_and_have_the_asked_size() {
        let a = render(640, 480, 1, "1 12:00:00.000");
        let b = render(640, 480, 2, "2 12:00:00.033");
        assert_eq!((a.width, a.height, a.rgb.len()), (640, 480, 640 * 480 * 3));
        assert_ne!(a.rgb, b.rgb);
        let tiny = render(1, 1, 0, "0");
        assert_eq!((tiny.width, tiny.height), (16, 16));
    }
}
