//! A frame with restart markers that lost packets: which of its restart intervals arrived
//! whole, so the rest can be filled with grey (`--partial`).

use std::collections::BTreeMap;

use super::depacketize::Assembly;

/// The restart intervals of an incomplete frame that arrived whole: their index and their
/// bytes in `a.data` (without the RSTn marker that ends each).
pub(super) fn intervals_present(a: &Assembly) -> BTreeMap<usize, std::ops::Range<usize>> {
    let mut out = BTreeMap::new();
    let mut iter = a.pieces.iter().peekable();
    while let Some((&start, piece)) = iter.next() {
        // One run of contiguous pieces.
        let mut end = start + piece.len;
        while let Some((&o, p)) = iter.peek() {
            if o != end {
                break;
            }
            end += p.len;
            iter.next();
        }
        if piece.count == 0x3FFF && start != 0 {
            continue; // the sender did not say which interval this is
        }
        let (start, end) = (start as usize, end as usize);
        let reaches_end = a.end.is_some_and(|e| e as usize == end);
        let mut index = usize::from(if start == 0 { 0 } else { piece.count });
        let mut at = start;
        if !piece.first {
            // Starts inside an interval: skip to the next marker.
            index += 1;
            match find_rst(&a.data[at..end]) {
                Some(m) => at += m + 2,
                None => continue,
            }
        }
        loop {
            match find_rst(&a.data[at..end]) {
                Some(m) => {
                    out.insert(index, at..at + m);
                    at += m + 2;
                    index += 1;
                }
                None => {
                    if reaches_end && at < end {
                        out.insert(index, at..end);
                    }
                    break;
                }
            }
        }
    }
    out
}

/// Where the first RSTn marker in `d` is.
fn find_rst(d: &[u8]) -> Option<usize> {
    d.windows(2)
        .position(|w| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
}
