//! Readers' pins: which revisions readers still read, and so which freed pages may be
//! reused (DESIGN.md §5.3).
//!
//! A page freed at revision R is unreachable from R on but may still be read by a reader
//! of a revision before R. The latest revision and the readers' pins live behind one lock
//! so that a reader pins the latest revision in the same step as it learns which revision
//! that is: otherwise a commit could publish a newer revision and release the pages of
//! the one the reader is about to pin in between. `tests/loom_pins.rs` model-checks this.

use std::collections::BTreeMap;

use crate::sync::{Mutex, MutexGuard};

/// The latest committed revision and the revisions pinned by live readers.
#[derive(Debug)]
pub struct Pins {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    latest: u64,
    /// The oldest revision the retention rules keep; a reader may pin any revision from
    /// it (or the latest, if lower) on. It only rises.
    floor: u64,
    /// Pinned revisions, with how many readers pin each.
    pinned: BTreeMap<u64, usize>,
}

impl Pins {
    /// No reader yet; `latest` is the latest committed revision.
    pub fn new(latest: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                latest,
                floor: 0,
                pinned: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update under this lock is complete before anything can panic.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Pins the latest revision for a new reader and returns it. Its pages stay readable
    /// until [`Pins::unpin`] of that revision.
    pub fn pin_latest(&self) -> u64 {
        let mut inner = self.lock();
        let revision = inner.latest;
        *inner.pinned.entry(revision).or_default() += 1;
        revision
    }

    /// Pins `revision` for a reader of a past revision if it is still retained (at or
    /// after the floor, at most the latest); whether it was.
    pub fn pin_retained(&self, revision: u64) -> bool {
        let mut inner = self.lock();
        if revision < inner.floor.min(inner.latest) || revision > inner.latest {
            return false;
        }
        *inner.pinned.entry(revision).or_default() += 1;
        true
    }

    /// Pins `revision` whatever the floor: for a revision kept otherwise (a snapshot)
    /// while the caller holds what keeps it.
    pub fn pin(&self, revision: u64) {
        *self.lock().pinned.entry(revision).or_default() += 1;
    }

    /// The oldest retained revision readers may pin (the floor, or the latest if lower).
    pub fn floor(&self) -> u64 {
        let inner = self.lock();
        inner.floor.min(inner.latest)
    }

    /// Raises the floor to `floor` (if higher), and returns, in one step, the floor in
    /// force (never above the latest revision, which new readers pin) and the revisions
    /// pinned below it: together, what readers may read. A reader that pins after this
    /// sees the raised floor, so no revision is both released and newly pinned.
    pub fn kept(&self, floor: u64) -> (u64, Vec<u64>) {
        let mut inner = self.lock();
        inner.floor = inner.floor.max(floor);
        let floor = inner.floor.min(inner.latest);
        (
            floor,
            inner
                .pinned
                .range(..floor)
                .map(|(&revision, _)| revision)
                .collect(),
        )
    }

    /// Ends one reader's pin of `revision` (from [`Pins::pin_latest`]).
    pub fn unpin(&self, revision: u64) {
        let mut inner = self.lock();
        if let Some(count) = inner.pinned.get_mut(&revision) {
            *count -= 1;
            if *count == 0 {
                inner.pinned.remove(&revision);
            }
        }
    }

    /// Makes `revision` the latest: readers from now on pin it.
    pub fn publish(&self, revision: u64) {
        let mut inner = self.lock();
        debug_assert!(revision >= inner.latest, "revisions only grow");
        inner.latest = revision;
    }

    /// The oldest revision a reader may still read: the oldest pinned one, or the latest
    /// when none is pinned (a new reader pins that). Pages freed at this revision or
    /// before are no reader's concern.
    pub fn oldest_readable(&self) -> u64 {
        let inner = self.lock();
        let oldest_pinned = inner.pinned.keys().next().copied().unwrap_or(u64::MAX);
        oldest_pinned.min(inner.latest)
    }
}
