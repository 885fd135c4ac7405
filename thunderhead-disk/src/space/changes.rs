//! What changed in a free-space state since a reference point, kept two ways.
//!
//! * Against the **base** (the last state stored whole): the records added and removed,
//!   which a commit stores in place of the whole state while they are few (a delta,
//!   DESIGN.md §5.4). Writing the whole state on every commit cost a fragmented store
//!   tens of pages and milliseconds per commit.
//! * Against a **checkpoint** (the start of a commit): every change in order, so a commit
//!   whose writes fail can put the state back exactly as it was without having copied it
//!   first. The copy it replaces was the largest cost of a small commit on a fragmented
//!   store.

use std::collections::BTreeSet;

use super::Base;

/// A run of pages as the stored state lists it: (first page, page count).
pub(super) type Run = (u64, u64);

/// A run freed by a commit that older versions may still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct PendingRun {
    /// The revision whose commit freed it.
    pub freed: u64,
    /// The revision whose commit wrote it.
    pub born: u64,
    pub start: u64,
    pub page_count: u64,
}

/// The records added to one set and removed from it since the base. A record is in at
/// most one of the two: adding back what was removed cancels the removal, and so on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SetChanges<T: Ord> {
    pub added: BTreeSet<T>,
    pub removed: BTreeSet<T>,
}

impl<T: Ord> Default for SetChanges<T> {
    fn default() -> Self {
        Self {
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Copy> SetChanges<T> {
    /// `record` joined the set (it was not in it).
    pub fn insert(&mut self, record: T) {
        if !self.removed.remove(&record) {
            self.added.insert(record);
        }
    }

    /// `record` left the set (it was in it).
    pub fn remove(&mut self, record: T) {
        if !self.added.remove(&record) {
            self.removed.insert(record);
        }
    }

    pub fn len(&self) -> usize {
        self.added.len() + self.removed.len()
    }
}

impl Changes {
    /// Records in all three sets.
    pub fn len(&self) -> usize {
        self.free.len() + self.recent.len() + self.pending.len()
    }
}

/// The changes of all three stored sets since the base.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Changes {
    pub free: SetChanges<Run>,
    /// With `recent_cleared`, only additions: what was written since the list was
    /// cleared.
    pub recent: SetChanges<Run>,
    /// The base's recently written runs are all gone (a sync made them durable): one
    /// flag rather than a removal record for each of the thousands a large commit
    /// writes, which would overflow the delta of the next commit.
    pub recent_cleared: bool,
    pub pending: SetChanges<PendingRun>,
}

/// One change since the checkpoint, undone in reverse order.
#[derive(Clone, Debug)]
pub(super) enum Op {
    FreeInserted(Run),
    FreeRemoved(Run),
    RecentInserted(Run),
    RecentRemoved(Run),
    PendingInserted(PendingRun),
    PendingRemoved(PendingRun),
    /// The recently written runs were cleared: they were these, and their changes
    /// against the base these (when tracked), with the old `recent_cleared`.
    RecentCleared(BTreeSet<Run>, Option<(SetChanges<Run>, bool)>),
    /// A new base was taken: the old one and the changes against it.
    Rebased(Option<Base>, Option<Box<Changes>>),
    /// The changes against the base grew too many to track; they were these.
    Overflowed(Box<Changes>),
}

/// What a roll back needs beyond the log: the parts it replaces whole.
#[derive(Clone, Debug)]
pub(super) struct Checkpoint {
    pub end: u64,
    pub fresh: Option<std::collections::BTreeMap<u64, u64>>,
    pub log: Vec<Op>,
}
