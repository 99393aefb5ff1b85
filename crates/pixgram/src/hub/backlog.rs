//! One subscriber's bounded queue of frames and messages waiting for its sender.
//!
//! Reliable subscribers get everything in order until the backlog is over its limits (in
//! frames or bytes); then every waiting frame but the newest is skipped at once (a resync:
//! counted, and the subscriber told with BEHIND). Latest subscribers never wait for an older
//! frame: a newer frame of the same stream replaces the one waiting. Messages are kept as long
//! as the limits allow; past them the oldest go, counted.
//!
//! Memory: the copies share the received bytes ([`Bytes`]), and every backlog takes every new
//! frame it wants at its back and gives from its front, so the backlogs of subscribers without
//! filters are all suffixes of one sequence: together they hold no more distinct bytes than the
//! longest one, at most [`BacklogLimits::bytes`] (plus one frame larger than that). Each link's
//! sender holds up to its window (16 frames; 1 for latest) in flight besides.

use std::collections::VecDeque;

use bytes::Bytes;
use pixgram_core::subscription::Mode;
use pixgram_core::{PayloadKind, StreamId};

/// What one backlog may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogLimits {
    /// Frames and messages waiting at most.
    pub items: usize,
    /// Bytes (payloads and metadata) waiting at most; one item larger than this alone is
    /// still taken, so that any frame the hub received can be forwarded.
    pub bytes: usize,
}

impl Default for BacklogLimits {
    fn default() -> Self {
        BacklogLimits {
            items: 64,
            bytes: 64 << 20,
        }
    }
}

/// A frame or message for one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The stream on the subscriber's session.
    pub stream: StreamId,
    /// Frame or message.
    pub kind: PayloadKind,
    /// Its bytes, shared with every other subscriber's copy.
    pub payload: Bytes,
    /// Its metadata, as the publisher sent it.
    pub metadata: Option<Bytes>,
}

impl Item {
    fn len(&self) -> usize {
        self.payload.len() + self.metadata.as_ref().map_or(0, Bytes::len)
    }

    fn is_frame(&self) -> bool {
        self.kind == PayloadKind::Frame
    }
}

/// What a backlog did, so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BacklogStats {
    /// Items taken in.
    pub queued: u64,
    /// Frames replaced by a newer one of their stream (latest mode).
    pub replaced: u64,
    /// Times a reliable backlog overflowed and skipped to its newest frame.
    pub resyncs: u64,
    /// Frames skipped by those resyncs.
    pub skipped: u64,
    /// Messages dropped over the limits.
    pub messages_dropped: u64,
}

/// One subscriber's queue.
#[derive(Debug)]
pub struct Backlog {
    mode: Mode,
    limits: BacklogLimits,
    items: VecDeque<Item>,
    bytes: usize,
    stats: BacklogStats,
}

impl Backlog {
    /// An empty backlog for a subscriber in `mode`.
    pub fn new(mode: Mode, limits: BacklogLimits) -> Self {
        Backlog {
            mode,
            limits: BacklogLimits {
                items: limits.items.max(1),
                bytes: limits.bytes,
            },
            items: VecDeque::new(),
            bytes: 0,
            stats: BacklogStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> BacklogStats {
        self.stats
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The stream of the item that goes next.
    pub fn next_stream(&self) -> Option<StreamId> {
        self.items.front().map(|i| i.stream)
    }

    /// The item that goes next.
    pub fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        self.bytes -= item.len();
        Some(item)
    }

    /// Takes `item`; `Some(skipped)` when a reliable backlog overflowed and skipped to its
    /// newest frame (`skipped`: frames skipped since it was made, for the BEHIND notice).
    pub fn push(&mut self, item: Item) -> Option<u64> {
        self.stats.queued += 1;
        if self.mode == Mode::Latest && item.is_frame() {
            if let Some(old) = self
                .items
                .iter_mut()
                .find(|i| i.is_frame() && i.stream == item.stream)
            {
                self.bytes = self.bytes - old.len() + item.len();
                *old = item;
                self.stats.replaced += 1;
                self.trim_messages();
                return None;
            }
        }
        self.bytes += item.len();
        self.items.push_back(item);
        let mut resynced = false;
        if self.mode == Mode::Reliable && self.over() {
            let newest = self.items.iter().rposition(Item::is_frame);
            let before = self.items.len();
            let mut at = 0;
            let mut freed = 0;
            self.items.retain(|i| {
                let keep = !i.is_frame() || Some(at) == newest;
                at += 1;
                if !keep {
                    freed += i.len();
                }
                keep
            });
            self.bytes -= freed;
            let skipped = (before - self.items.len()) as u64;
            if skipped > 0 {
                self.stats.resyncs += 1;
                self.stats.skipped += skipped;
                resynced = true;
            }
        }
        self.trim_messages();
        resynced.then_some(self.stats.skipped)
    }

    fn over(&self) -> bool {
        self.items.len() > self.limits.items
            || (self.bytes > self.limits.bytes && self.items.len() > 1)
    }

    /// Past the limits with only messages left to drop: the oldest go.
    fn trim_messages(&mut self) {
        while self.over() {
            let Some(at) = self.items.iter().position(|i| !i.is_frame()) else {
                break;
            };
            if let Some(m) = self.items.remove(at) {
                self.bytes -= m.len();
                self.stats.messages_dropped += 1;
            }
        }
        // Latest mode with more streams than places: the oldest frames go, counted as
        // replaced (a newer frame of another stream took the place).
        while self.mode == Mode::Latest && self.over() {
            match self.items.pop_front() {
                Some(f) => {
                    self.bytes -= f.len();
                    self.stats.replaced += 1;
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u32, n: u8, len: usize) -> Item {
        Item {
            stream: StreamId(stream),
            kind: PayloadKind::Frame,
            payload: Bytes::from(vec![n; len]),
            metadata: None,
        }
    }

    fn message(n: u8) -> Item {
        Item {
            stream: StreamId::MESSAGES,
            kind: PayloadKind::Message,
            payload: Bytes::from(vec![n; 10]),
            metadata: None,
        }
    }

    fn limits(items: usize, bytes: usize) -> BacklogLimits {
        BacklogLimits { items, bytes }
    }

    #[test]
    fn a_reliable_backlog_keeps_order_then_skips_to_the_newest_frame_when_over() {
        let mut b = Backlog::new(Mode::Reliable, limits(4, 1 << 20));
        for n in 0..4 {
            assert_eq!(b.push(frame(1, n, 100)), None);
        }
        // The fifth item overflows: every frame but the newest is skipped, messages stay.
        assert_eq!(b.push(message(9)), Some(3));
        assert_eq!(b.push(frame(1, 5, 100)), None);
        assert_eq!((b.len(), b.bytes()), (3, 210));
        assert_eq!(b.pop().unwrap().payload[0], 3);
        assert_eq!(b.pop().unwrap().kind, PayloadKind::Message);
        assert_eq!(b.pop().unwrap().payload[0], 5);
        assert!(b.pop().is_none() && b.bytes() == 0);
        let s = b.stats();
        assert_eq!((s.resyncs, s.skipped, s.queued), (1, 3, 6));
        // Bytes count as well: three frames of 400 in a 1,000-byte backlog.
        let mut b = Backlog::new(Mode::Reliable, limits(64, 1_000));
        assert_eq!(b.push(frame(1, 0, 400)), None);
        assert_eq!(b.push(frame(1, 1, 400)), None);
        assert_eq!(b.push(frame(1, 2, 400)), Some(2));
        assert_eq!(b.pop().unwrap().payload[0], 2);
        // One frame larger than the whole backlog still goes through.
        assert_eq!(b.push(frame(1, 3, 5_000)), None);
        assert_eq!(b.pop().unwrap().payload.len(), 5_000);
    }

    #[test]
    fn a_latest_backlog_holds_one_frame_per_stream_and_never_resyncs() {
        let mut b = Backlog::new(Mode::Latest, limits(8, 1 << 20));
        for n in 0..100 {
            assert_eq!(b.push(frame(1, n, 50)), None);
            assert_eq!(b.push(frame(2, n, 60)), None);
        }
        b.push(message(1));
        assert_eq!((b.len(), b.bytes()), (3, 120));
        assert_eq!(b.pop().unwrap().payload[0], 99);
        assert_eq!(b.pop().unwrap().payload.len(), 60);
        assert_eq!(b.pop().unwrap().kind, PayloadKind::Message);
        assert_eq!(b.stats().replaced, 198);
        assert_eq!(b.stats().resyncs, 0);
    }

    #[test]
    fn messages_over_the_limits_go_oldest_first() {
        let mut b = Backlog::new(Mode::Latest, limits(3, 1 << 20));
        for n in 0..10 {
            b.push(message(n));
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.pop().unwrap().payload[0], 7);
        assert_eq!(b.stats().messages_dropped, 7);
    }
}
