//! Free space: which pages of a store are free for reuse now, which were freed by a
//! commit but may still be read (by a reader of an older version, or by recovery falling
//! back to the last durable version), and where the used part of the store ends.
//!
//! The state is part of every committed version: a commit stores it (whole, or as its
//! changes against the last whole one, `stored.rs`) and the meta slot points at it. A
//! crash therefore never leaks a page or hands one out twice: whatever a commit that
//! never became durable allocated is free again in the version recovery falls back to.

mod changes;
mod stored;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::PageId;
use changes::{Changes, Checkpoint, Op, PendingRun, Run};
pub use stored::{Delta, Stored};

/// Changes against the base past which they are no longer tracked: more than any meta
/// slot holds (a 64 KiB page holds 4,096 runs), so such a state is written whole anyway.
#[cfg(not(test))]
const TRACKED_CHANGES_MAX: usize = 8192;
/// Small in tests, so that the random sequences cross it.
#[cfg(test)]
const TRACKED_CHANGES_MAX: usize = 24;

/// Released runs that a kept version still reads one allocation sets aside, at most. A
/// large commit can leave thousands of them under a snapshot; setting them all aside in
/// the next allocation cost the small commit after it a millisecond. At this rate they
/// are set aside over the next allocations instead; one that finds nothing to reuse
/// among the runs it looked at meanwhile grows the store.
const SET_ASIDE_PER_ALLOCATION: usize = 16;

/// Pages 0 (header) and 1, 2 (meta slots) are never allocated.
pub const FIRST_DATA_PAGE: u64 = 3;

/// Page kind byte of a free-space extent (node kinds 1 to 4 are the tree's).
pub const FREE_SPACE_PAGE_KIND: u8 = 5;

/// A run of consecutive pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extent {
    /// First page.
    pub start: PageId,
    /// Pages in the run (at least one).
    pub page_count: u64,
}

impl Extent {
    /// The extent of `page_count` pages starting at `start`.
    pub fn new(start: PageId, page_count: u64) -> Self {
        Self { start, page_count }
    }

    /// One past the last page.
    pub fn end(&self) -> u64 {
        self.start.0 + self.page_count
    }
}

/// The allocation state of a store.
#[derive(Clone, Debug, Default)]
pub struct FreeSpace {
    /// First page never allocated: the used length of the store.
    end: u64,
    /// Free runs by first page, coalesced: no two touch.
    free: BTreeMap<u64, u64>,
    /// The same runs by (length, first page), for best-fit allocation.
    free_by_len: BTreeSet<(u64, u64)>,
    /// Runs freed by a commit, in the order of the revision that freed them: readable
    /// by the versions from the one that wrote them to the one before, reusable once
    /// none of those is kept.
    pending: BTreeSet<PendingRun>,
    /// Pending runs that only an old kept version (below the retained window) still
    /// reads, by that version. In memory only; stored as pending.
    held: BTreeMap<u64, Vec<PendingRun>>,
    /// Pending runs that were below the floor at a release, in batches, oldest first:
    /// looked at one by one as pages are allocated, against `kept`, and freed (or set
    /// aside under the version that still reads them). In memory only; stored as
    /// pending until then.
    releasable: VecDeque<BTreeSet<PendingRun>>,
    /// The versions kept at the latest release. A version no longer kept is never kept
    /// again, so a run no version of these reads stays unread by later ones too.
    kept: Kept,
    /// Runs allocated since tracking began (by a writer that has not committed yet).
    fresh: Option<BTreeMap<u64, u64>>,
    /// Runs written by commits since the last durable one: all a crash can have lost or
    /// torn, so all recovery must verify before trusting the version.
    recent: BTreeSet<Run>,
    /// The state last stored whole, which later versions store changes against.
    base: Option<Base>,
    /// The changes since `base`: `None` without a base, or once they are too many to be
    /// stored as a delta (the next commit writes a new base anyway, and tracking a bulk
    /// release record by record would cost it more than that).
    since_base: Option<Changes>,
    /// The changes since [`FreeSpace::checkpoint`], while a commit may still fail.
    checkpoint: Option<Checkpoint>,
}

/// Where a whole stored state lies, which later versions store their changes against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Base {
    /// Its extent.
    pub extent: Extent,
    /// The extent's checksum.
    pub checksum: u32,
    /// The revision whose commit wrote it.
    pub born: u64,
}

/// The versions whose pages must stay readable: every revision from `floor` on (the
/// retained history up to the latest, which readers of recent revisions also lie in),
/// and single older ones (snapshots, readers of old revisions, and the durable revision
/// recovery falls back to).
#[derive(Clone, Debug, Default)]
pub struct Kept {
    /// Every revision at or after this one is kept.
    pub floor: u64,
    /// Kept revisions below `floor`.
    pub below: BTreeSet<u64>,
    /// Kept runs of revisions below `floor`, inclusive (what the durable revision, which
    /// recovery may return to, keeps readable itself).
    pub ranges: Vec<(u64, u64)>,
    /// The last durable revision (also in `below` when it is under `floor`).
    pub durable: u64,
}

impl Kept {
    /// Keeps everything from `floor` on, and `durable` (recovery's fallback).
    pub fn new(floor: u64, durable: u64) -> Self {
        let mut kept = Self {
            floor,
            below: BTreeSet::new(),
            ranges: Vec::new(),
            durable,
        };
        kept.keep(durable);
        kept
    }

    /// Keeps `revision` too.
    pub fn keep(&mut self, revision: u64) {
        if revision < self.floor {
            self.below.insert(revision);
        }
    }

    /// Keeps every revision from `first` to `last` too.
    pub fn keep_range(&mut self, first: u64, last: u64) {
        let last = last.min(self.floor.saturating_sub(1));
        if first < self.floor && first <= last {
            self.ranges.push((first, last));
        }
    }

    fn holds(&self, revision: u64) -> bool {
        revision >= self.floor
            || self.below.contains(&revision)
            || self
                .ranges
                .iter()
                .any(|&(first, last)| (first..=last).contains(&revision))
    }

    /// A kept version that reads a run written at `born` and freed at `freed` (the
    /// versions `born..freed`): `None` when there is none and the run can be reused.
    /// Runs freed after the floor are always read (by the floor's revision or later).
    fn reader_of(&self, born: u64, freed: u64) -> Option<u64> {
        if freed > self.floor {
            return Some(self.floor);
        }
        let point = self
            .below
            .range(..freed)
            .next_back()
            .copied()
            .filter(|&newest| newest >= born);
        point.or_else(|| {
            self.ranges
                .iter()
                .find(|&&(first, last)| first < freed && last >= born)
                .map(|&(first, _)| first.max(born))
        })
    }
}

impl FreeSpace {
    /// A store whose pages below `end` are all in use (`end` is at least
    /// [`FIRST_DATA_PAGE`]).
    pub fn new(end: u64) -> Self {
        Self {
            end: end.max(FIRST_DATA_PAGE),
            ..Self::default()
        }
    }

    /// First page never allocated.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Reserves `page_count` consecutive pages: the smallest free run that fits, else
    /// pages past the end. Each allocation first frees one released run, and more while
    /// nothing fits, so the store grows only once nothing is left to reuse, or once the
    /// allocation has set aside [`SET_ASIDE_PER_ALLOCATION`] runs a kept version reads.
    pub fn allocate(&mut self, page_count: u64) -> PageId {
        let page_count = page_count.max(1);
        let mut set_aside = SET_ASIDE_PER_ALLOCATION;
        set_aside -= self.free_some_released(1, set_aside);
        let fit = loop {
            let fit = self.free_by_len.range((page_count, 0)..).next().copied();
            if fit.is_some() || self.releasable.is_empty() || set_aside == 0 {
                break fit;
            }
            set_aside -= self.free_some_released(1, set_aside);
        };
        let start = match fit {
            Some((len, start)) => {
                self.remove_free(start, len);
                if len > page_count {
                    self.insert_free(start + page_count, len - page_count);
                }
                start
            }
            None => {
                let start = self.end;
                self.end += page_count;
                start
            }
        };
        if let Some(fresh) = &mut self.fresh {
            fresh.insert(start, page_count);
        }
        PageId(start)
    }

    /// Makes `extent` free for reuse now. It must not be free or pending already.
    pub fn free(&mut self, extent: Extent) {
        debug_assert!(extent.start.0 >= FIRST_DATA_PAGE && extent.end() <= self.end);
        debug_assert!(!self.overlaps_free(extent), "double free of {extent:?}");
        let (mut start, mut len) = (extent.start.0, extent.page_count);
        if let Some((&before, &before_len)) = self.free.range(..start).next_back()
            && before + before_len == start
        {
            self.remove_free(before, before_len);
            start = before;
            len += before_len;
        }
        if let Some(after_len) = self.free.get(&(start + len)).copied() {
            self.remove_free(start + len, after_len);
            len += after_len;
        }
        self.insert_free(start, len);
    }

    /// Records that the commit of `revision` freed `extent`, which the commit of `born`
    /// wrote: the versions from `born` to `revision - 1` may still read it, so it waits
    /// for [`FreeSpace::release`]. A `born` of 0 means unknown (every older version).
    pub fn defer(&mut self, revision: u64, born: u64, extent: Extent) {
        self.insert_pending(PendingRun {
            freed: revision,
            born: born.min(revision.saturating_sub(1)),
            start: extent.start.0,
            page_count: extent.page_count,
        });
    }

    /// Releases every pending run no kept version can read. A run freed at revision F
    /// and written at B is read by exactly the versions B..F; it is released once none
    /// of them is kept. Recovery's fallback (the durable revision) is one of the kept
    /// versions: a run written after it is never needed by recovery, which is what lets
    /// a store that is rarely synced reuse pages (DESIGN.md §5.4).
    ///
    /// This only notes which runs to look at, in time independent of how many there
    /// are; each becomes free when an allocation needs it (or on
    /// [`FreeSpace::free_released`]). The commit after a large one would otherwise pay
    /// for freeing, and then storing, all that the large one left, however small it is.
    ///
    /// Runs blocked only by a single old version are set aside under it and looked at
    /// again only when it goes, so a long-lived snapshot costs nothing per commit.
    pub fn release(&mut self, kept: &Kept) {
        self.kept.clone_from(kept);
        let gone: Vec<u64> = self
            .held
            .keys()
            .copied()
            .filter(|blocker| !kept.holds(*blocker))
            .collect();
        let mut again = BTreeSet::new();
        for blocker in gone {
            again.extend(self.held.remove(&blocker).into_iter().flatten());
        }
        self.push_releasable(again);
        let later = match kept.floor.checked_add(1) {
            Some(first_kept) => self.pending.split_off(&PendingRun {
                freed: first_kept,
                born: 0,
                start: 0,
                page_count: 0,
            }),
            None => BTreeSet::new(),
        };
        let below = std::mem::replace(&mut self.pending, later);
        self.push_releasable(below);
    }

    /// Frees up to `count` released runs, oldest first (setting aside those a kept
    /// version still reads).
    pub fn free_released(&mut self, count: usize) {
        self.free_some_released(count, usize::MAX);
    }

    /// [`FreeSpace::free_released`], stopping early once it has set aside
    /// `set_aside_max` runs; returns how many it set aside.
    fn free_some_released(&mut self, count: usize, set_aside_max: usize) -> usize {
        let (mut freed, mut set_aside) = (0, 0);
        while freed < count && set_aside < set_aside_max {
            let Some(batch) = self.releasable.front_mut() else {
                break;
            };
            let run = batch.pop_first().expect("batches are never empty");
            if batch.is_empty() {
                self.releasable.pop_front();
            }
            if let Some(blocker) = self.kept.reader_of(run.born, run.freed) {
                self.held.entry(blocker).or_default().push(run);
                set_aside += 1;
                continue;
            }
            self.pending_gone(run);
            // Listed only if written since the last durable commit; reused, it will be
            // noted again by the commit that writes it.
            self.remove_recent((run.start, run.page_count));
            self.free(Extent::new(PageId(run.start), run.page_count));
            freed += 1;
        }
        set_aside
    }

    fn push_releasable(&mut self, batch: BTreeSet<PendingRun>) {
        if !batch.is_empty() {
            self.releasable.push_back(batch);
        }
    }

    /// Starts recording allocations, for a writer that may abort.
    pub fn track_fresh(&mut self) {
        self.fresh.get_or_insert_with(BTreeMap::new);
    }

    /// The runs allocated since tracking began; tracking goes on from empty.
    pub fn take_fresh(&mut self) -> Vec<Extent> {
        self.fresh
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
            .into_iter()
            .map(|(start, page_count)| Extent::new(PageId(start), page_count))
            .collect()
    }

    /// The runs allocated since tracking began, without ending the record.
    pub fn fresh(&self) -> impl Iterator<Item = Extent> + '_ {
        self.fresh
            .iter()
            .flatten()
            .map(|(&start, &page_count)| Extent::new(PageId(start), page_count))
    }

    /// Whether `start` begins a run allocated since tracking began.
    pub fn is_fresh(&self, start: PageId) -> bool {
        self.fresh
            .as_ref()
            .is_some_and(|fresh| fresh.contains_key(&start.0))
    }

    /// Frees `extent` at once if it is a run allocated since tracking began (a writer's
    /// own page that it has stopped using before anyone could see it); whether it was.
    pub fn discard_fresh(&mut self, extent: Extent) -> bool {
        let Some(fresh) = &mut self.fresh else {
            return false;
        };
        if fresh.get(&extent.start.0) != Some(&extent.page_count) {
            return false;
        }
        fresh.remove(&extent.start.0);
        self.free(extent);
        true
    }

    /// Records that a commit since the last durable one wrote `extent`.
    pub fn note_written(&mut self, extent: Extent) {
        self.insert_recent((extent.start.0, extent.page_count));
    }

    /// The runs written since the last durable commit, in page order.
    pub fn recent(&self) -> impl Iterator<Item = Extent> + '_ {
        self.recent
            .iter()
            .map(|&(start, len)| Extent::new(PageId(start), len))
    }

    /// The version is durable: nothing written so far can be lost any more.
    pub fn clear_recent(&mut self) {
        let runs = std::mem::take(&mut self.recent);
        let tracked = self.since_base.as_mut().map(|changes| {
            let recent = std::mem::take(&mut changes.recent);
            (recent, std::mem::replace(&mut changes.recent_cleared, true))
        });
        self.log(|| Op::RecentCleared(runs, tracked));
    }

    /// Returns a free run that ends the store to the unused space past the end; the new
    /// end, which the store may be truncated to once a version recording it is durable.
    pub fn trim(&mut self) -> u64 {
        if let Some((&start, &len)) = self.free.iter().next_back()
            && start + len == self.end
        {
            self.remove_free(start, len);
            self.end = start;
        }
        self.end
    }

    /// The free runs, in page order.
    pub fn free_extents(&self) -> impl Iterator<Item = Extent> + '_ {
        self.free
            .iter()
            .map(|(&start, &len)| Extent::new(PageId(start), len))
    }

    /// The runs waiting for kept versions: (revision that freed it, revision that
    /// wrote it, run), in the order of the revision that freed them.
    pub fn pending_extents(&self) -> impl Iterator<Item = (u64, u64, Extent)> + '_ {
        let mut runs: Vec<PendingRun> = self.pending.iter().copied().collect();
        if !self.held.is_empty() || !self.releasable.is_empty() {
            runs.extend(self.held.values().flatten().copied());
            runs.extend(self.releasable.iter().flatten().copied());
            runs.sort_unstable();
        }
        runs.into_iter().map(|run| {
            (
                run.freed,
                run.born,
                Extent::new(PageId(run.start), run.page_count),
            )
        })
    }

    /// Pages free now.
    pub fn free_page_count(&self) -> u64 {
        self.free.values().sum()
    }

    /// Pages of released runs that no version kept at the latest release reads: free
    /// for the allocations to come, though still stored as pending.
    pub fn released_page_count(&self) -> u64 {
        self.releasable
            .iter()
            .flatten()
            .filter(|run| self.kept.reader_of(run.born, run.freed).is_none())
            .map(|run| run.page_count)
            .sum()
    }

    /// The whole state this one stores its changes against, if any.
    pub fn base(&self) -> Option<Base> {
        self.base
    }

    /// From now on the state is stored as changes against `base` (a whole state stored
    /// at `base.extent` that equals this one), or whole if `None`.
    pub fn set_base(&mut self, base: Option<Base>) {
        let old = std::mem::replace(&mut self.base, base);
        let changes = std::mem::replace(&mut self.since_base, base.map(|_| Changes::default()));
        self.log(|| Op::Rebased(old, changes.map(Box::new)));
    }

    /// Starts a commit's changes: until [`FreeSpace::keep_changes`], every change can be
    /// undone by [`FreeSpace::roll_back`]. Costs nothing in the size of the state.
    pub fn checkpoint(&mut self) {
        self.checkpoint = Some(Checkpoint {
            end: self.end,
            fresh: self.fresh.clone(),
            log: Vec::new(),
        });
    }

    /// The commit succeeded: its changes stay.
    pub fn keep_changes(&mut self) {
        self.checkpoint = None;
    }

    /// The commit failed: the state goes back to what it was at the checkpoint. Runs a
    /// single old version held, and released runs, go back among the pending (where the
    /// state stores them anyway); the next release sets them aside again.
    pub fn roll_back(&mut self) {
        let Some(checkpoint) = self.checkpoint.take() else {
            return;
        };
        for (_, runs) in std::mem::take(&mut self.held) {
            self.pending.extend(runs);
        }
        for batch in std::mem::take(&mut self.releasable) {
            self.pending.extend(batch);
        }
        for op in checkpoint.log.into_iter().rev() {
            match op {
                Op::FreeInserted((start, len)) => self.remove_free(start, len),
                Op::FreeRemoved((start, len)) => self.insert_free(start, len),
                Op::RecentInserted(run) => self.remove_recent(run),
                Op::RecentRemoved(run) => self.insert_recent(run),
                Op::PendingInserted(run) => {
                    self.pending.remove(&run);
                    self.pending_gone(run);
                }
                Op::PendingRemoved(run) => self.insert_pending(run),
                Op::RecentCleared(runs, tracked) => {
                    self.recent = runs;
                    if let (Some(changes), Some((recent, cleared))) =
                        (&mut self.since_base, tracked)
                    {
                        changes.recent = recent;
                        changes.recent_cleared = cleared;
                    }
                }
                Op::Rebased(base, changes) => {
                    self.base = base;
                    self.since_base = changes.map(|changes| *changes);
                }
                Op::Overflowed(changes) => self.since_base = Some(*changes),
            }
        }
        self.end = checkpoint.end;
        self.fresh = checkpoint.fresh;
    }

    fn overlaps_free(&self, extent: Extent) -> bool {
        self.free
            .range(..extent.end())
            .next_back()
            .is_some_and(|(&start, &len)| start + len > extent.start.0)
    }

    // Every change to the three stored sets goes through the six functions below (and
    // `clear_recent`), which note it against the base and the checkpoint.

    fn insert_free(&mut self, start: u64, len: u64) {
        self.free.insert(start, len);
        self.free_by_len.insert((len, start));
        self.track(|changes| changes.free.insert((start, len)));
        self.log(|| Op::FreeInserted((start, len)));
    }

    fn remove_free(&mut self, start: u64, len: u64) {
        self.free.remove(&start);
        self.free_by_len.remove(&(len, start));
        self.track(|changes| changes.free.remove((start, len)));
        self.log(|| Op::FreeRemoved((start, len)));
    }

    fn insert_recent(&mut self, run: Run) {
        if self.recent.insert(run) {
            self.track(|changes| changes.recent.insert(run));
            self.log(|| Op::RecentInserted(run));
        }
    }

    fn remove_recent(&mut self, run: Run) {
        if self.recent.remove(&run) {
            self.track(|changes| changes.recent.remove(run));
            self.log(|| Op::RecentRemoved(run));
        }
    }

    fn insert_pending(&mut self, run: PendingRun) {
        if self.pending.insert(run) {
            self.track(|changes| changes.pending.insert(run));
            self.log(|| Op::PendingInserted(run));
        }
    }

    /// `run` has left the pending runs (the caller took it out of `pending`, `held` or
    /// `releasable`).
    fn pending_gone(&mut self, run: PendingRun) {
        self.track(|changes| changes.pending.remove(run));
        self.log(|| Op::PendingRemoved(run));
    }

    /// Notes a change against the base, while the changes are tracked; past
    /// [`TRACKED_CHANGES_MAX`] they stop being tracked (the log keeps them, for a roll
    /// back).
    fn track(&mut self, change: impl FnOnce(&mut Changes)) {
        if let Some(changes) = &mut self.since_base {
            change(changes);
            if changes.len() > TRACKED_CHANGES_MAX {
                let changes = self.since_base.take().expect("tracked");
                self.log(|| Op::Overflowed(Box::new(changes)));
            }
        }
    }

    fn log(&mut self, op: impl FnOnce() -> Op) {
        if let Some(checkpoint) = &mut self.checkpoint {
            checkpoint.log.push(op());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal_checksum;

    fn extent(start: u64, page_count: u64) -> Extent {
        Extent::new(PageId(start), page_count)
    }

    /// Releases what no kept version reads, and frees all of it.
    fn release_now(space: &mut FreeSpace, kept: &Kept) {
        space.release(kept);
        space.free_released(usize::MAX);
    }

    fn whole(page: PageId, bytes: &[u8], checksum: u32) -> FreeSpace {
        FreeSpace::decode(page, bytes, checksum)
            .unwrap()
            .into_whole(page)
            .unwrap()
    }

    /// Allocation takes the best-fitting run, splits it, extends the end when nothing
    /// fits; frees coalesce with both neighbours; trim gives back a free tail.
    #[test]
    fn allocate_free_coalesce_trim() {
        let mut space = FreeSpace::new(0);
        assert_eq!(space.end(), FIRST_DATA_PAGE);
        let a = space.allocate(2);
        let b = space.allocate(1);
        let c = space.allocate(3);
        assert_eq!((a.0, b.0, c.0, space.end()), (3, 5, 6, 9));
        space.free(extent(3, 2));
        space.free(extent(6, 3));
        assert_eq!(space.allocate(1), PageId(3), "best fit is the 2-page run");
        assert_eq!(space.allocate(3), PageId(6));
        assert_eq!(space.allocate(2), PageId(9), "nothing fits: grow");
        // Page 4 is the rest of the run page 3 came from.
        space.free(extent(5, 1));
        space.free(extent(3, 1));
        assert_eq!(space.free_extents().collect::<Vec<_>>(), vec![extent(3, 3)]);
        space.free(extent(9, 2));
        assert_eq!(space.trim(), 9);
        assert_eq!(space.free_page_count(), 3);
    }

    /// Deferred runs wait until no kept version reads them.
    #[test]
    fn deferred_runs_wait_for_release() {
        let mut space = FreeSpace::new(20);
        space.defer(5, 2, extent(3, 2));
        space.defer(7, 6, extent(10, 1));
        release_now(&mut space, &Kept::new(4, 10));
        assert_eq!(space.free_page_count(), 0);
        release_now(&mut space, &Kept::new(6, 10));
        assert_eq!(space.free_page_count(), 2);
        assert_eq!(space.pending_extents().count(), 1);
        release_now(&mut space, &Kept::new(u64::MAX, u64::MAX));
        assert_eq!(space.free_page_count(), 3);
    }

    /// A run is kept exactly while a kept version lies between its birth and its
    /// freeing: a snapshot of revision 4 holds what 4 read, not what was written after.
    #[test]
    fn old_versions_hold_only_what_they_read() {
        let mut space = FreeSpace::new(40);
        space.defer(6, 3, extent(3, 1)); // read by 3..=5: the snapshot at 4 reads it
        space.defer(7, 5, extent(4, 1)); // read by 5..=6: written after the snapshot
        space.defer(8, 4, extent(5, 1)); // read by 4..=7
        let mut kept = Kept::new(10, 10);
        kept.keep(4);
        release_now(&mut space, &kept);
        assert_eq!(space.free_extents().collect::<Vec<_>>(), vec![extent(4, 1)]);
        assert_eq!(space.pending_extents().count(), 2);
        // Encoded and decoded, the held runs are pending again, and still held.
        let (bytes, checksum) = space.encode_inline();
        let mut back = whole(PageId(1), &bytes, checksum);
        assert_eq!(back, space);
        release_now(&mut back, &kept);
        assert_eq!(back.free_page_count(), 1);
        // The snapshot goes: both are free.
        release_now(&mut space, &Kept::new(10, 10));
        assert_eq!(space.free_page_count(), 3);
        assert_eq!(space.pending_extents().count(), 0);
    }

    /// A kept run of revisions holds what any of them reads, and lets it go with them.
    #[test]
    fn kept_ranges_hold_what_their_revisions_read() {
        let mut space = FreeSpace::new(40);
        space.defer(5, 1, extent(3, 1)); // read by 1..=4
        space.defer(9, 7, extent(4, 1)); // read by 7..=8
        let mut kept = Kept::new(20, 20);
        kept.keep_range(3, 6);
        release_now(&mut space, &kept);
        assert_eq!(space.free_extents().collect::<Vec<_>>(), vec![extent(4, 1)]);
        let mut kept = Kept::new(20, 20);
        kept.keep_range(5, 6);
        release_now(&mut space, &kept);
        assert_eq!(space.free_page_count(), 2);
    }

    /// Before the durable revision catches up, only runs written since it are released
    /// (recovery falls back to it, so it is kept), and they leave the recent list.
    #[test]
    fn runs_written_since_the_durable_revision_are_released_early() {
        let mut space = FreeSpace::new(20);
        space.note_written(extent(10, 2));
        space.defer(6, 3, extent(3, 2));
        space.defer(6, 5, extent(10, 2));
        release_now(&mut space, &Kept::new(u64::MAX, 4));
        assert_eq!(
            space.free_extents().collect::<Vec<_>>(),
            vec![extent(10, 2)]
        );
        assert_eq!(space.recent().count(), 0);
        assert_eq!(space.pending_extents().count(), 1, "durable-era run waits");
        space.note_written(extent(12, 1));
        space.defer(7, 6, extent(12, 1));
        release_now(&mut space, &Kept::new(6, 4));
        assert_eq!(
            space.pending_extents().count(),
            2,
            "a reader of 6 still needs it"
        );
    }

    /// Released runs become free as allocations need them: one per allocation, more
    /// while nothing fits, so the store grows only once none is left.
    #[test]
    fn released_runs_are_freed_as_pages_are_allocated() {
        let mut space = FreeSpace::new(30);
        for start in [4, 6, 9, 20] {
            space.defer(5, 2, extent(start, 1));
        }
        space.defer(5, 2, extent(10, 2));
        space.note_written(extent(20, 1));
        space.release(&Kept::new(6, 6));
        assert_eq!(space.free_page_count(), 0);
        assert_eq!(
            space.pending_extents().count(),
            5,
            "stored as pending still"
        );
        assert_eq!(space.allocate(1), PageId(4));
        assert_eq!(space.pending_extents().count(), 4);
        // Nothing free fits three pages until 9, 10 and 11 coalesce.
        assert_eq!(space.allocate(3), PageId(9));
        assert_eq!(space.end(), 30);
        assert_eq!(space.recent().count(), 1);
        // Frees 20 (which leaves the recent list), then takes the best fit.
        assert_eq!(space.allocate(1), PageId(6));
        assert_eq!(space.recent().count(), 0);
        assert_eq!(space.allocate(1), PageId(20));
        assert_eq!(space.allocate(1), PageId(30), "nothing left to reuse: grow");
        assert_eq!(space.pending_extents().count(), 0);
    }

    /// An allocation sets aside a bounded number of released runs: the thousands a
    /// snapshot still reads after a large commit are set aside a few at a time, not all by
    /// the next small commit; the store grows by a page for each allocation meanwhile,
    /// and the run after them is reused once they are set aside.
    #[test]
    fn allocations_set_aside_few_runs_at_a_time() {
        let rounds = 40;
        let blocked = (rounds * SET_ASIDE_PER_ALLOCATION) as u64;
        let end = 3 * blocked + 100;
        let mut space = FreeSpace::new(end);
        for index in 0..blocked {
            space.defer(9, 3, extent(100 + 2 * index, 1)); // read by 3..=8
        }
        space.defer(9, 6, extent(50, 1)); // read by 6..=8: after the snapshot
        let mut kept = Kept::new(10, 10);
        kept.keep(4);
        space.release(&kept);
        for round in 0..rounds {
            assert_eq!(space.allocate(1), PageId(end + round as u64));
            let held: usize = space.held.values().map(Vec::len).sum();
            assert_eq!(held, (round + 1) * SET_ASIDE_PER_ALLOCATION);
        }
        assert_eq!(
            space.allocate(1),
            PageId(50),
            "set aside: the next run is reused"
        );
        assert_eq!(space.pending_extents().count() as u64, blocked);
    }

    /// Fresh tracking records exactly the allocations since the last take.
    #[test]
    fn fresh_tracking() {
        let mut space = FreeSpace::new(0);
        space.allocate(1);
        space.track_fresh();
        let a = space.allocate(2);
        assert_eq!(space.take_fresh(), vec![extent(a.0, 2)]);
        assert!(space.take_fresh().is_empty());
    }

    /// The encoding round-trips, and damage is a typed error, never a panic.
    #[test]
    fn encode_decode_and_reject_damage() {
        let mut space = FreeSpace::new(100);
        space.free(extent(10, 5));
        space.free(extent(40, 1));
        space.defer(3, 1, extent(50, 4));
        space.note_written(extent(60, 2));
        let pages = space.encoded_page_count(4096);
        let (bytes, checksum) = space.encode(4096, pages);
        let back = whole(PageId(7), &bytes, checksum);
        assert_eq!(back, space);
        assert!(FreeSpace::decode(PageId(7), &bytes, checksum ^ 1).is_err());
        for at in (0..200).step_by(3) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(FreeSpace::decode(PageId(7), &damaged, checksum).is_err());
            // Even with a matching checksum, structure is validated.
            let resealed = seal_checksum(&mut damaged);
            let _ = FreeSpace::decode(PageId(7), &damaged, resealed);
        }
        let (inline, checksum) = space.encode_inline();
        assert_eq!(inline.len(), space.encoded_len());
        assert_eq!(whole(PageId(1), &inline, checksum), space);
        let mut overlapping = FreeSpace::new(100);
        overlapping.free(extent(10, 5));
        overlapping.defer(3, 1, extent(12, 1));
        let (bytes, checksum) = overlapping.encode(4096, 1);
        assert!(FreeSpace::decode(PageId(7), &bytes, checksum).is_err());
    }
}

#[cfg(test)]
mod proptests;
