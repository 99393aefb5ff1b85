//! Frame bodies used again. A delivered frame leaves the receiver as [`Bytes`] views of its
//! body; when the application drops the last of them, the body comes back here, emptied, and
//! the next frame of about its size is reassembled into it. Without this every large frame
//! was a fresh allocation whose pages the kernel faulted in as the chunks were copied (the
//! allocator handing freed bodies back to the system in between): 27 faults per 300 kB
//! frame, 17% of a keyed receiver's time for pipelined 1080p frames.
//!
//! Bounded: at most [`POOL_BODIES`] bodies and [`POOL_BYTES`] in all are held, only bodies of
//! [`MIN_POOLED`] to [`MAX_POOLED`] bytes are kept (smaller ones cost the allocator little),
//! and a body is taken only for a frame at least half its size. A taken body's pages are
//! committed before its frame's chunks arrive, so a frame in reassembly may hold up to its
//! body's size while charged for what arrived: at most [`POOL_BYTES`] beyond the receiver's
//! budget, and only once frames were delivered.

use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

/// The most bodies held for reuse.
pub const POOL_BODIES: usize = 4;
/// The most bytes (capacity) held for reuse in all.
pub const POOL_BYTES: usize = 16 << 20;
/// Smaller bodies are not kept: below the allocator's threshold for mapping memory of its
/// own (128 KiB in glibc) they are reused cheaply anyway.
pub const MIN_POOLED: usize = 128 << 10;
/// Larger bodies are not kept.
pub const MAX_POOLED: usize = 8 << 20;

type Shelf = Mutex<Vec<Vec<u8>>>;

/// Whether a body of this size is one the pool keeps.
fn poolable(len: usize) -> bool {
    (MIN_POOLED..=MAX_POOLED).contains(&len)
}

/// The capacity of the bodies on a shelf, in bytes.
fn capacity(bodies: &[Vec<u8>]) -> usize {
    bodies.iter().map(Vec::capacity).sum()
}

/// The receiver's pool of emptied bodies; clones share it.
#[derive(Clone, Default)]
pub(crate) struct BodyPool {
    shelf: Arc<Shelf>,
}

impl std::fmt::Debug for BodyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (bodies, bytes) = self.held();
        f.debug_struct("BodyPool")
            .field("bodies", &bodies)
            .field("bytes", &bytes)
            .finish()
    }
}

impl BodyPool {
    /// An empty body with room for `len` bytes: one from the pool if one fits (and is not
    /// more than twice as large), else a new reservation.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        if poolable(len) {
            if let Ok(mut shelf) = self.shelf.lock() {
                let fits = |b: &Vec<u8>| b.capacity() >= len && b.capacity() / 2 <= len;
                if let Some(i) = shelf.iter().position(fits) {
                    return shelf.swap_remove(i);
                }
            }
        }
        Vec::with_capacity(len)
    }

    /// `body` as [`Bytes`] that return it here when the last view of it is dropped.
    pub(crate) fn wrap(&self, body: Vec<u8>) -> Bytes {
        if !poolable(body.capacity()) {
            return Bytes::from(body);
        }
        Bytes::from_owner(Lent {
            body,
            shelf: Arc::downgrade(&self.shelf),
        })
    }

    /// Bodies held and their capacity in bytes.
    pub(crate) fn held(&self) -> (usize, usize) {
        self.shelf
            .lock()
            .map_or((0, 0), |s| (s.len(), capacity(&s)))
    }
}

/// A body lent to the application inside [`Bytes`].
struct Lent {
    body: Vec<u8>,
    /// Weak: a pool whose receiver is gone takes nothing back.
    shelf: Weak<Shelf>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(shelf) = self.shelf.upgrade() else {
            return;
        };
        let Ok(mut shelf) = shelf.lock() else {
            return;
        };
        if shelf.len() < POOL_BODIES && capacity(&shelf) + self.body.capacity() <= POOL_BYTES {
            let mut body = std::mem::take(&mut self.body);
            body.clear();
            shelf.push(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_frame_body_is_used_again_for_a_frame_of_about_its_size() {
        let pool = BodyPool::default();
        let mut body = pool.take(300_000);
        body.resize(300_000, 7);
        let ptr = body.as_ptr();
        let bytes = pool.wrap(body);
        let payload = bytes.slice(4..);
        drop(bytes);
        // A view is still alive: nothing is back yet.
        assert_eq!(pool.held().0, 0);
        drop(payload);
        assert_eq!(pool.held(), (1, 300_000));
        // Too small a frame for it, then one that fits.
        let small = pool.take(100_000);
        assert_ne!(small.as_ptr(), ptr);
        let again = pool.take(290_000);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty());
        assert_eq!(pool.held().0, 0);
    }

    #[test]
    fn the_pool_keeps_at_most_its_bounds() {
        let pool = BodyPool::default();
        let lent: Vec<Bytes> = (0..10)
            .map(|_| pool.wrap(Vec::with_capacity(3 << 20)))
            .collect();
        drop(lent);
        let (bodies, bytes) = pool.held();
        assert!(
            bodies <= POOL_BODIES && bytes <= POOL_BYTES,
            "{bodies} {bytes}"
        );
        assert_eq!(bodies, 4);
        // Small and huge bodies are not kept.
        drop(pool.wrap(Vec::with_capacity(1000)));
        drop(pool.wrap(Vec::with_capacity(MAX_POOLED + 1)));
        assert_eq!(pool.held().0, 4);
        // A pool whose receiver is gone takes nothing back, and does not fail.
        let orphan = pool.wrap(Vec::with_capacity(1 << 20));
        drop(pool);
        drop(orphan);
    }
}
