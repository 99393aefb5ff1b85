//! The verdicts a stream has given, kept as runs of consecutive frame ids with one status, so a
//! stream that decides millions of frames in order remembers them in a few runs.
//!
//! Everything below `base` is forgotten: the sender has said (with its floor, carried in every
//! DATA chunk) that it resolved those frames, so no answer about them is owed. A chunk below
//! `base` is a late duplicate and is dropped. At most [`MAX_RUNS`] runs are kept; past that the
//! oldest run is forgotten and `base` rises over it (counted by the caller through
//! [`Verdicts::forgotten`]).

use std::collections::BTreeMap;

use crate::ids::FrameId;
use crate::wire::AckStatus;

/// Runs of verdicts a stream keeps. An honest sender leaves gaps only where frames are still
/// in flight (at most its window), so this is far more than one needs.
pub(crate) const MAX_RUNS: usize = 1024;

#[derive(Debug, Clone)]
pub(crate) struct Verdicts {
    /// Run start -> (end, exclusive; status).
    runs: BTreeMap<FrameId, (FrameId, AckStatus)>,
    base: FrameId,
    forgotten: u64,
}

impl Verdicts {
    /// Verdicts starting at `base` (frames below it count as resolved).
    pub(crate) fn starting_at(base: FrameId) -> Self {
        Verdicts {
            runs: BTreeMap::new(),
            base,
            forgotten: 0,
        }
    }

    /// Frames below this are resolved by the sender or forgotten.
    pub(crate) fn base(&self) -> FrameId {
        self.base
    }

    /// Runs forgotten for lack of room (not for the sender's floor).
    pub(crate) fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Runs held.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }

    /// The verdict on `frame`, if one is remembered.
    pub(crate) fn get(&self, frame: FrameId) -> Option<AckStatus> {
        let (_, &(end, status)) = self.runs.range(..=frame).next_back()?;
        (frame < end).then_some(status)
    }

    /// The lowest decided frame in `from..to`, if any.
    pub(crate) fn first_in(&self, from: FrameId, to: FrameId) -> Option<FrameId> {
        if self.get(from).is_some() {
            return Some(from);
        }
        let (&start, _) = self.runs.range(from..).next()?;
        (start < to).then_some(start)
    }

    /// Records `status` for `frame` (a frame below `base`, or decided already, is left alone).
    pub(crate) fn insert(&mut self, frame: FrameId, status: AckStatus) {
        self.insert_range(frame, FrameId(frame.0.saturating_add(1)), status);
    }

    /// Records `status` for every frame in `from..to`, which must all be undecided and at or
    /// above `base` (otherwise nothing is recorded).
    pub(crate) fn insert_range(&mut self, from: FrameId, to: FrameId, status: AckStatus) {
        if from < self.base || from >= to || self.first_in(from, to).is_some() {
            return;
        }
        let (mut start, mut stop) = (from, to);
        // Merge with the run ending right before it.
        if let Some((&s, &(e, st))) = self.runs.range(..from).next_back() {
            if e == from && st == status {
                self.runs.remove(&s);
                start = s;
            }
        }
        // And with the run starting right after it.
        if let Some(&(e, st)) = self.runs.get(&to) {
            if st == status {
                self.runs.remove(&to);
                stop = e;
            }
        }
        self.runs.insert(start, (stop, status));
        while self.runs.len() > MAX_RUNS {
            if let Some((_, (e, _))) = self.runs.pop_first() {
                self.base = self.base.max(e);
                self.forgotten += 1;
            }
        }
    }

    /// Forgets everything below `floor` (the sender resolved it). Returns whether `base` rose.
    pub(crate) fn raise_base(&mut self, floor: FrameId) -> bool {
        if floor <= self.base {
            return false;
        }
        self.base = floor;
        while let Some((&s, &(e, st))) = self.runs.first_key_value() {
            if e <= floor {
                self.runs.remove(&s);
            } else {
                if s < floor {
                    self.runs.remove(&s);
                    self.runs.insert(floor, (e, st));
                }
                break;
            }
        }
        true
    }

    /// Keeps at most `runs` runs (the newest), raising `base` over the rest: the compact
    /// memory of a session that went idle.
    pub(crate) fn truncate(&mut self, runs: usize) {
        while self.runs.len() > runs {
            if let Some((_, (e, _))) = self.runs.pop_first() {
                self.base = self.base.max(e);
                self.forgotten += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_verdicts_share_a_run() {
        let mut v = Verdicts::starting_at(FrameId(0));
        for i in 0..10_000 {
            v.insert(FrameId(i), AckStatus::Complete);
        }
        assert_eq!(v.runs(), 1);
        assert_eq!(v.get(FrameId(9_999)), Some(AckStatus::Complete));
        assert_eq!(v.get(FrameId(10_000)), None);
    }

    #[test]
    fn gaps_and_statuses_split_runs_and_fill_back() {
        let mut v = Verdicts::starting_at(FrameId(0));
        v.insert(FrameId(0), AckStatus::Complete);
        v.insert(FrameId(2), AckStatus::Complete);
        v.insert(FrameId(3), AckStatus::Expired);
        assert_eq!(v.runs(), 3);
        assert_eq!(v.get(FrameId(1)), None);
        v.insert(FrameId(1), AckStatus::Complete);
        assert_eq!(v.runs(), 2);
        assert_eq!(v.get(FrameId(3)), Some(AckStatus::Expired));
        // A verdict is never changed.
        v.insert(FrameId(3), AckStatus::Complete);
        assert_eq!(v.get(FrameId(3)), Some(AckStatus::Expired));
        v.insert_range(FrameId(10), FrameId(20), AckStatus::Expired);
        assert_eq!(v.first_in(FrameId(4), FrameId(30)), Some(FrameId(10)));
        assert_eq!(v.first_in(FrameId(4), FrameId(10)), None);
        assert_eq!(v.get(FrameId(19)), Some(AckStatus::Expired));
        v.insert_range(FrameId(4), FrameId(10), AckStatus::Expired);
        assert_eq!(v.runs(), 2, "0..3 complete, 3..20 expired");
    }

    #[test]
    fn the_floor_forgets_and_cuts_runs() {
        let mut v = Verdicts::starting_at(FrameId(0));
        for i in [0, 1, 2, 5, 6] {
            v.insert(FrameId(i), AckStatus::Complete);
        }
        assert!(v.raise_base(FrameId(1)));
        assert_eq!(v.get(FrameId(0)), None);
        assert_eq!(v.get(FrameId(1)), Some(AckStatus::Complete));
        assert!(v.raise_base(FrameId(4)));
        assert_eq!(v.runs(), 1);
        assert!(!v.raise_base(FrameId(3)));
        assert_eq!(v.base(), FrameId(4));
        v.insert(FrameId(2), AckStatus::Complete);
        assert_eq!(
            v.get(FrameId(2)),
            None,
            "nothing below the base is recorded"
        );
    }

    #[test]
    fn runs_are_bounded() {
        let mut v = Verdicts::starting_at(FrameId(0));
        for i in 0..(MAX_RUNS as u64 + 10) {
            v.insert(FrameId(2 * i), AckStatus::Complete);
        }
        assert_eq!(v.runs(), MAX_RUNS);
        assert_eq!(v.forgotten(), 10);
        assert_eq!(v.base(), FrameId(19));
        v.truncate(4);
        assert_eq!(v.runs(), 4);
    }
}
