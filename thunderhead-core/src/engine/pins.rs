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
    /// Pinned revisions, with how many readers pin each.
    pinned: BTreeMap<u64, usize>,
}

impl Pins {
    /// No reader yet; `latest` is the latest committed revision.
    pub fn new(latest: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                latest,
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
