//! A delay line: items (datagrams, with whatever routing the caller needs) held until their
//! instant, released in time order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Items waiting until their instant, released in time order (ties in insertion order).
#[derive(Debug)]
pub struct DelayLine<T> {
    heap: BinaryHeap<Reverse<(Duration, u64, Slot<T>)>>,
    seq: u64,
}

/// Wrapper that makes any item orderable by ignoring it.
#[derive(Debug)]
struct Slot<T>(T);
impl<T> PartialEq for Slot<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T> Default for DelayLine<T> {
    fn default() -> Self {
        DelayLine {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> DelayLine<T> {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds `item` until `at`.
    pub fn push(&mut self, at: Duration, item: T) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, Slot(item))));
    }

    /// The instant of the earliest item.
    pub fn next_due(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Removes and returns the earliest item if it is due at `now`.
    pub fn pop_due(&mut self, now: Duration) -> Option<(Duration, T)> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((t, _, Slot(item)))| (t, item))
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_line_releases_in_time_order() {
        let mut d = DelayLine::new();
        d.push(Duration::from_millis(5), "b");
        d.push(Duration::from_millis(1), "a");
        d.push(Duration::from_millis(5), "c");
        assert_eq!(d.pop_due(Duration::ZERO), None);
        let all: Vec<_> = std::iter::from_fn(|| d.pop_due(Duration::from_millis(9)))
            .map(|(_, x)| x)
            .collect();
        assert_eq!(all, ["a", "b", "c"]);
    }

    #[test]
    fn ties_keep_insertion_order_and_nothing_is_released_early() {
        let mut d = DelayLine::new();
        assert!(d.is_empty() && d.next_due().is_none());
        for i in 0..100 {
            d.push(Duration::from_millis(7), i);
        }
        d.push(Duration::from_millis(3), -1);
        assert_eq!(d.len(), 101);
        assert_eq!(d.next_due(), Some(Duration::from_millis(3)));
        assert_eq!(
            d.pop_due(Duration::from_millis(6)),
            Some((Duration::from_millis(3), -1))
        );
        assert_eq!(d.pop_due(Duration::from_millis(6)), None);
        let order: Vec<i32> = std::iter::from_fn(|| d.pop_due(Duration::from_millis(7)))
            .map(|(_, x)| x)
            .collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
        assert!(d.is_empty());
    }
}
