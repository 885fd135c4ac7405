//! Range iteration in both directions.
//!
//! Each end keeps its path from the root: every branch it went through, the child it took,
//! and a position in each of that branch's journal segments. Moving on to the next leaf
//! climbs only to the nearest branch with a next child and descends from there. A leaf
//! gathers the live messages for its own key range straight from the segments on its path:
//! a walk forward takes up each segment where the leaf before left it, so a scan reads
//! every message once, and a short range copies only the few messages that fall in its
//! leaves, not all those a high branch holds for the child it goes through. Inside a leaf,
//! its entries and the messages for it are merged as the end advances, comparing keys in
//! place rather than copying them; a leaf with no messages (every leaf once journals have
//! drained) reads as a plain B-tree's.

use std::cmp::Ordering;
use std::sync::Arc;

use thunderhead_disk::{PageId, PageStore};

use crate::config::TREE_DEPTH_MAX;
use crate::error::{Error, Result};
use crate::key::{Key, KeyRange, compare_split};
use crate::node::{Buffer, Entry, Fences, NodeRef, PointMessage, PointOp, RangeMessage};
use crate::page::{LeafPage, SegmentPage};
use crate::pager::LoadedNode;
use crate::pager::Pager;
use crate::tree::read::{depth_exceeded, load_value};
use crate::tree::view::{
    BranchView, LeafView, NodeView, borrowed_view, segment_collect_from, view,
};
use crate::value::{ValueBytes, ValueStored};

/// An iterator over the entries of a key range, in key order (or reverse order through
/// [`DoubleEndedIterator`]). Items are `Result`s: a page that fails to load or validate
/// ends the iteration with its error.
pub struct Range<'a, S: PageStore> {
    pager: &'a Pager<S>,
    root: &'a NodeRef,
    /// The root's view when a snapshot holds it, or why it could not load it.
    root_view: Option<&'a LoadedNode>,
    root_error: Option<Error>,
    bounds: KeyRange,
    front: End<'a>,
    back: End<'a>,
    finished: bool,
}

/// One end of the iteration.
#[derive(Default)]
struct End<'a> {
    /// The branches from the root down to the current leaf's parent.
    path: Vec<Level<'a>>,
    /// `None` before the first leaf.
    leaf: Option<LeafCursor<'a>>,
    /// Last key yielded from the leaves this end has left behind; with the cursor's last
    /// position, it tells where this end stands, so that the other can stop where they
    /// meet. Kept per leaf rather than per item: copying every key yielded would cost a
    /// scan dearly.
    passed: Option<Vec<u8>>,
    /// How many leaves this end has entered: the serial number of the current one, which
    /// tells a segment's saved position whether it was left by the leaf just before.
    leaves: u64,
}

/// A branch on an end's path.
struct Level<'a> {
    branch: BranchView<'a>,
    /// The branch's own fences.
    fences: Fences,
    /// The branch's journal segments, each loaded when first needed and kept for the
    /// children after.
    segments: Vec<Option<LoadedSegment>>,
    /// The child the end is in.
    index: usize,
}

/// A journal segment of a branch on the path.
struct LoadedSegment {
    page: Arc<SegmentPage>,
    /// The serial number of the last leaf whose messages came from this segment, and the
    /// position of the first point message above that leaf's range: where the next leaf's
    /// messages begin, so that a forward walk searches each segment once rather than once
    /// per leaf.
    after: Option<(u64, usize)>,
}

/// Which child a descent takes at each branch.
#[derive(Clone, Copy)]
enum Pick<'k> {
    /// The child holding `key`.
    Holding(&'k [u8]),
    /// The child holding the keys just below `key`, or the last child.
    Below(Option<&'k [u8]>),
    First,
    Last,
}

impl Pick<'_> {
    fn index(self, branch: &BranchView<'_>) -> Result<usize> {
        Ok(match self {
            Pick::Holding(key) => branch.route(key)?,
            Pick::Below(Some(key)) => branch.route_below(key)?,
            Pick::Below(None) | Pick::Last => branch.len() - 1,
            Pick::First => 0,
        })
    }
}

impl<'a> End<'a> {
    /// How `key` compares with the last key this end yielded (`None` before the first).
    fn compare_last(&self, key: &[u8]) -> Option<Ordering> {
        if let Some(leaf) = &self.leaf
            && let Some(last) = leaf.last
        {
            return Some(leaf.compare(last, key).reverse());
        }
        self.passed.as_deref().map(|passed| key.cmp(passed))
    }

    /// Moves to `leaf`, remembering the last key yielded from the one left behind.
    fn enter_leaf(&mut self, leaf: LeafCursor<'a>) {
        if let Some(left) = self.leaf.take()
            && let Some(last) = left.last
        {
            self.passed = Some(left.key(last));
        }
        self.leaf = Some(leaf);
    }
}

/// A position in a leaf's merged view: one of its entries, or a point message for it.
#[derive(Clone, Copy)]
enum Pos {
    Base(usize),
    Point(usize),
}

/// A leaf seen through the messages its ancestors hold for it, read lazily from one end.
struct LeafCursor<'a> {
    base: Base<'a>,
    /// Leaf entries not yet passed: `[front, back)`.
    front: usize,
    back: usize,
    /// Point messages for the leaf in key order; those not yet passed: `[point_front,
    /// point_back)`.
    points: Vec<(Key, PointMessage)>,
    /// Where each point message's key falls among the leaf's entries: `Ok(index)` if it
    /// is entry `index`'s key, `Err(index)` if it goes just before entry `index`.
    places: Vec<Result<usize, usize>>,
    point_front: usize,
    point_back: usize,
    covered: Covered,
    /// The last position yielded.
    last: Option<Pos>,
}

/// A leaf's own entries.
enum Base<'a> {
    Stored {
        page: Arc<LeafPage>,
        /// The keys' shared prefix: implied by the fences, then the page's local one.
        prefix: Vec<u8>,
    },
    Borrowed(&'a [Entry]),
}

impl Base<'_> {
    fn len(&self) -> usize {
        match self {
            Base::Stored { page, .. } => page.len(),
            Base::Borrowed(entries) => entries.len(),
        }
    }

    /// How key `index` compares with `key`, without building it.
    fn compare(&self, index: usize, key: &[u8]) -> Ordering {
        match self {
            Base::Stored { page, prefix } => compare_split(prefix, page.suffix(index), key),
            Base::Borrowed(entries) => entries[index].key.as_slice().cmp(key),
        }
    }

    fn key(&self, index: usize) -> Vec<u8> {
        match self {
            Base::Stored { page, prefix } => {
                let suffix = page.suffix(index);
                let mut key = Vec::with_capacity(prefix.len() + suffix.len());
                key.extend_from_slice(prefix);
                key.extend_from_slice(suffix);
                key
            }
            Base::Borrowed(entries) => entries[index].key.to_vec(),
        }
    }

    fn value(&self, index: usize) -> ValueStored {
        match self {
            Base::Stored { page, .. } => page.value(index),
            Base::Borrowed(entries) => entries[index].value.clone(),
        }
    }

    /// Index of the first entry with a key at or above `key`.
    fn lower_bound(&self, key: &[u8]) -> usize {
        self.search(key).unwrap_or_else(|index| index)
    }

    /// `Ok(index)` if entry `index` has `key`, else `Err(index of the first above it)`.
    fn search(&self, key: &[u8]) -> Result<usize, usize> {
        match self {
            Base::Stored { page, prefix } => {
                let implied = prefix.len() - page.local_prefix().len();
                match key.get(..implied) {
                    Some(head) if head == &prefix[..implied] => page.search(&key[implied..]),
                    // A key outside the leaf's prefix is below or above all its entries.
                    _ if key < prefix.as_slice() => Err(0),
                    _ => Err(page.len()),
                }
            }
            Base::Borrowed(entries) => {
                entries.binary_search_by(|entry| entry.key.as_slice().cmp(key))
            }
        }
    }
}

/// What the range tombstones for a leaf cover, as disjoint intervals in key order. Every
/// tombstone is newer than every entry of the leaf (Invariant M), so an entry needs only
/// to know whether one covers it; and a buffer never holds a point message older than a
/// tombstone that covers it, so point messages need not ask.
#[derive(Default)]
struct Covered {
    intervals: Vec<KeyRange>,
}

impl Covered {
    /// `ranges` sorted by start, as a buffer keeps them.
    fn new(ranges: Vec<RangeMessage>) -> Self {
        let mut intervals: Vec<KeyRange> = Vec::with_capacity(ranges.len());
        for RangeMessage { range, .. } in ranges {
            match intervals.last_mut() {
                // Overlapping or touching the last interval: extend it.
                Some(last) if last.end.as_ref().is_none_or(|end| range.start <= *end) => {
                    last.end = match (last.end.take(), range.end) {
                        (Some(last_end), Some(end)) => Some(last_end.max(end)),
                        _ => None,
                    };
                }
                _ => intervals.push(range),
            }
        }
        Self { intervals }
    }

    /// Whether leaf entry `index` is covered.
    fn covers(&self, base: &Base<'_>, index: usize) -> bool {
        if self.intervals.is_empty() {
            return false;
        }
        let after = self
            .intervals
            .partition_point(|interval| base.compare(index, &interval.start).is_ge());
        after > 0
            && self.intervals[after - 1]
                .end
                .as_deref()
                .is_none_or(|end| base.compare(index, end).is_lt())
    }
}

impl<'a> LeafCursor<'a> {
    /// The cursor over `leaf` (under `fences`) merged with `messages`, limited to
    /// `bounds`.
    fn new(leaf: LeafView<'a>, fences: &Fences, messages: Buffer, bounds: &KeyRange) -> Self {
        let base = match leaf {
            LeafView::Stored(page) => {
                let prefix = [fences.implied_prefix(), page.local_prefix()].concat();
                Base::Stored { page, prefix }
            }
            LeafView::Transient(leaf) => Base::Borrowed(&leaf.entries),
        };
        let front = match fences.low() {
            Some(low) if low >= bounds.start.as_slice() => 0,
            _ => base.lower_bound(&bounds.start),
        };
        let back = match (fences.high(), bounds.end.as_deref()) {
            (_, None) => base.len(),
            (Some(high), Some(end)) if high <= end => base.len(),
            (_, Some(end)) => base.lower_bound(end),
        };
        let points: Vec<(Key, PointMessage)> = messages.points.into_iter().collect();
        // A search of the heads per message, rather than a comparison of keys per entry:
        // a leaf holds few messages and many entries.
        let places = points.iter().map(|(key, _)| base.search(key)).collect();
        let point_front = points.partition_point(|(key, _)| key[..] < bounds.start[..]);
        let point_back = bounds.end.as_ref().map_or(points.len(), |end| {
            points.partition_point(|(key, _)| key[..] < end[..])
        });
        Self {
            base,
            front,
            back: back.max(front),
            points,
            places,
            point_front,
            point_back: point_back.max(point_front),
            covered: Covered::new(messages.ranges),
            last: None,
        }
    }

    /// The next visible position from one end (`front` says which).
    fn next(&mut self, front: bool) -> Option<Pos> {
        loop {
            let (entry, point) = if front {
                (
                    (self.front < self.back).then_some(self.front),
                    (self.point_front < self.point_back).then_some(self.point_front),
                )
            } else {
                (
                    (self.back > self.front).then(|| self.back - 1),
                    (self.point_back > self.point_front).then(|| self.point_back - 1),
                )
            };
            let pos = match (entry, point) {
                (None, None) => return None,
                (Some(entry), None) => Pos::Base(entry),
                (None, Some(point)) => Pos::Point(point),
                (Some(entry), Some(point)) => {
                    // How the entry's key compares with the message's.
                    let order = match self.places[point] {
                        Ok(index) => entry.cmp(&index),
                        Err(index) if entry < index => Ordering::Less,
                        Err(_) => Ordering::Greater,
                    };
                    // Whichever comes first in this end's direction.
                    match if front { order } else { order.reverse() } {
                        Ordering::Less => Pos::Base(entry),
                        // The message replaces or deletes the entry of its key.
                        Ordering::Equal => {
                            self.pass_entry(front);
                            Pos::Point(point)
                        }
                        Ordering::Greater => Pos::Point(point),
                    }
                }
            };
            match pos {
                Pos::Base(_) => self.pass_entry(front),
                Pos::Point(_) if front => self.point_front += 1,
                Pos::Point(_) => self.point_back -= 1,
            }
            if self.visible(pos) {
                self.last = Some(pos);
                return Some(pos);
            }
        }
    }

    fn pass_entry(&mut self, front: bool) {
        if front {
            self.front += 1;
        } else {
            self.back -= 1;
        }
    }

    fn visible(&self, pos: Pos) -> bool {
        match pos {
            Pos::Base(index) => !self.covered.covers(&self.base, index),
            Pos::Point(index) => matches!(self.points[index].1.op, PointOp::Put(_)),
        }
    }

    fn compare(&self, pos: Pos, key: &[u8]) -> Ordering {
        match pos {
            Pos::Base(index) => self.base.compare(index, key),
            Pos::Point(index) => self.points[index].0.as_slice().cmp(key),
        }
    }

    /// The key at `pos`, in a vector of exactly its length (it is handed to the caller).
    fn key(&self, pos: Pos) -> Vec<u8> {
        match pos {
            Pos::Base(index) => self.base.key(index),
            Pos::Point(index) => self.points[index].0.to_vec(),
        }
    }

    fn value(&self, pos: Pos) -> ValueStored {
        match pos {
            Pos::Base(index) => self.base.value(index),
            Pos::Point(index) => match &self.points[index].1.op {
                PointOp::Put(value) => value.clone(),
                PointOp::Delete => unreachable!("deleted keys are not visible"),
            },
        }
    }
}

impl<'a, S: PageStore> Range<'a, S> {
    pub(crate) fn new(pager: &'a Pager<S>, root: &'a NodeRef, bounds: KeyRange) -> Self {
        let finished = bounds.is_empty();
        Self {
            pager,
            root,
            root_view: None,
            root_error: None,
            bounds,
            front: End::default(),
            back: End::default(),
            finished,
        }
    }

    /// Starts from the root's view the caller holds rather than load it; if the caller
    /// could not load it, the first step reports why.
    pub(crate) fn with_root(self, root: Result<&'a LoadedNode>) -> Self {
        match root {
            Ok(loaded) => Self {
                root_view: Some(loaded),
                ..self
            },
            Err(error) => Self {
                root_error: Some(error),
                ..self
            },
        }
    }

    /// Enters child `index` of the branch of `level` (whose `index` is replaced): records
    /// the level on `path` and returns the child and its fences.
    fn enter_child(
        &self,
        path: &mut Vec<Level<'a>>,
        mut level: Level<'a>,
        index: usize,
    ) -> Result<(NodeView<'a>, Fences)> {
        if path.len() >= TREE_DEPTH_MAX {
            return Err(depth_exceeded());
        }
        let branch = &level.branch;
        let child_fences = branch.child_fences(index, &level.fences);
        if !nested(&child_fences, &level.fences) {
            let page = branch
                .stored_child(index)
                .map_or(PageId::NONE, |child| child.page);
            return Err(Error::corrupted(page, "pivots outside the branch's fences"));
        }
        let child = branch.child(self.pager, index)?;
        level.index = index;
        path.push(level);
        Ok((child, child_fences))
    }

    /// The live messages the branches on `path` hold for the keys of `fences` inside the
    /// bounds, for the leaf numbered `serial` of an end moving `front` or back.
    fn leaf_messages(
        &self,
        path: &mut [Level<'a>],
        fences: &Fences,
        serial: u64,
        front: bool,
    ) -> Result<Buffer> {
        // Messages outside the bounds would be passed over unseen.
        let low = match fences.low() {
            Some(low) if low > self.bounds.start.as_slice() => Some(low),
            _ => Some(self.bounds.start.as_slice()).filter(|start| !start.is_empty()),
        };
        let high = match (fences.high(), self.bounds.end.as_deref()) {
            (Some(high), Some(end)) => Some(high.min(end)),
            (high, end) => high.or(end),
        };
        let mut messages = Buffer::default();
        for level in path {
            let branch = &level.branch;
            if let BranchView::Transient(branch) = branch {
                branch.buffer.copy_range_into(low, high, &mut messages);
            }
            let watermark = branch.watermark(level.index);
            for (position, loaded) in level.segments.iter_mut().enumerate() {
                let slot = branch.segment(position);
                if slot.seq_max.get() <= watermark {
                    continue;
                }
                let loaded = match loaded {
                    Some(loaded) => loaded,
                    None => loaded.insert(LoadedSegment {
                        page: branch.load_segment(self.pager, position, &slot)?,
                        after: None,
                    }),
                };
                // Going forward, this leaf begins where the one before it ended.
                let first = match loaded.after {
                    Some((previous, after)) if front && previous + 1 == serial => after,
                    _ => low.map_or(0, |low| loaded.page.lower_bound(low)),
                };
                let after =
                    segment_collect_from(&loaded.page, watermark, first, low, high, &mut messages);
                loaded.after = Some((serial, after));
            }
        }
        Ok(messages)
    }

    /// Descends from `node` to a leaf, taking the child `pick` names at every branch, and
    /// opens the leaf as the end's leaf number `serial`.
    fn descend(
        &self,
        path: &mut Vec<Level<'a>>,
        mut node: NodeView<'a>,
        mut fences: Fences,
        pick: Pick<'_>,
        (serial, front): (u64, bool),
    ) -> Result<LeafCursor<'a>> {
        loop {
            match node {
                NodeView::Leaf(leaf) => {
                    let messages = self.leaf_messages(path, &fences, serial, front)?;
                    return Ok(LeafCursor::new(leaf, &fences, messages, &self.bounds));
                }
                NodeView::Branch(branch) => {
                    let index = pick.index(&branch)?;
                    let level = Level {
                        segments: (0..branch.segment_count()).map(|_| None).collect(),
                        branch,
                        fences,
                        index,
                    };
                    (node, fences) = self.enter_child(path, level, index)?;
                }
            }
        }
    }

    /// The first leaf of an end (`front` says which), or the next one, or `None` when
    /// the end has run out of leaves or out of the bounds.
    fn next_leaf(&self, end: &mut End<'a>, front: bool) -> Result<Option<LeafCursor<'a>>> {
        end.leaves += 1;
        let serial = (end.leaves, front);
        if end.leaf.is_none() {
            let pick = if front {
                Pick::Holding(&self.bounds.start)
            } else {
                Pick::Below(self.bounds.end.as_deref())
            };
            let root = match self.root_view {
                Some(loaded) => borrowed_view(loaded),
                None => view(self.pager, self.root)?,
            };
            return self
                .descend(&mut end.path, root, Fences::default(), pick, serial)
                .map(Some);
        }
        // Climb to the nearest branch with a child beyond the current one.
        let (level, index) = loop {
            let Some(level) = end.path.pop() else {
                return Ok(None);
            };
            let next = if front {
                Some(level.index + 1).filter(|&next| next < level.branch.len())
            } else {
                level.index.checked_sub(1)
            };
            if let Some(next) = next {
                break (level, next);
            }
        };
        let (child, child_fences) = self.enter_child(&mut end.path, level, index)?;
        let beyond = if front {
            let end = self.bounds.end.as_deref();
            matches!((child_fences.low(), end), (Some(low), Some(end)) if low >= end)
        } else {
            child_fences
                .high()
                .is_some_and(|high| high <= self.bounds.start.as_slice())
        };
        if beyond {
            return Ok(None);
        }
        let pick = if front { Pick::First } else { Pick::Last };
        self.descend(&mut end.path, child, child_fences, pick, serial)
            .map(Some)
    }

    fn fail<T>(&mut self, error: Error) -> Option<Result<T>> {
        self.finished = true;
        Some(Err(error))
    }
}

/// Whether `inner` is a non-empty range inside `outer`: what a child's fences must be, so
/// that a damaged branch cannot send an end backwards (or a buffer an inverted range).
fn nested(inner: &Fences, outer: &Fences) -> bool {
    let low_inside = match (inner.low(), outer.low()) {
        (Some(low), Some(outer)) => low >= outer,
        (None, Some(_)) => false,
        (_, None) => true,
    };
    let high_inside = match (inner.high(), outer.high()) {
        (Some(high), Some(outer)) => high <= outer,
        (None, Some(_)) => false,
        (_, None) => true,
    };
    let ordered = match (inner.low(), inner.high()) {
        (Some(low), Some(high)) => low < high,
        _ => true,
    };
    low_inside && high_inside && ordered
}

impl<S: PageStore> Range<'_, S> {
    /// The next item from one end (`front` says which).
    fn step(&mut self, front: bool) -> Option<Result<(Vec<u8>, ValueBytes)>> {
        while !self.finished {
            if let Some(error) = self.root_error.take() {
                return self.fail(error);
            }
            let (this, other) = if front {
                (&mut self.front, &self.back)
            } else {
                (&mut self.back, &self.front)
            };
            if let Some(leaf) = &mut this.leaf
                && let Some(pos) = leaf.next(front)
            {
                let key = leaf.key(pos);
                // The ends have met once this one reaches the last key the other yielded.
                let met = other
                    .compare_last(&key)
                    .is_some_and(|order| if front { order.is_ge() } else { order.is_le() });
                if met {
                    self.finished = true;
                    return None;
                }
                let value = leaf.value(pos);
                return Some(match load_value(self.pager, value) {
                    Ok(value) => Ok((key, value)),
                    Err(error) => return self.fail(error),
                });
            }
            let mut end = std::mem::take(this);
            let next = self.next_leaf(&mut end, front);
            match next {
                Ok(Some(leaf)) => end.enter_leaf(leaf),
                Ok(None) => self.finished = true,
                Err(error) => return self.fail(error),
            }
            *if front {
                &mut self.front
            } else {
                &mut self.back
            } = end;
        }
        None
    }
}

impl<S: PageStore> Iterator for Range<'_, S> {
    type Item = Result<(Vec<u8>, ValueBytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(true)
    }
}

impl<S: PageStore> DoubleEndedIterator for Range<'_, S> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fences(low: Option<&[u8]>, high: Option<&[u8]>) -> Fences {
        Fences {
            low: low.map(Key::from_slice),
            high: high.map(Key::from_slice),
        }
    }

    /// A child's fences must lie inside its branch's and be in order; a damaged branch
    /// whose pivots say otherwise is refused before it can turn an end round.
    #[test]
    fn child_fences_must_nest() {
        let outer = fences(Some(b"c"), Some(b"p"));
        assert!(nested(&fences(Some(b"c"), Some(b"p")), &outer));
        assert!(nested(&fences(Some(b"d"), Some(b"e")), &outer));
        assert!(!nested(&fences(Some(b"b"), Some(b"e")), &outer));
        assert!(!nested(&fences(Some(b"d"), Some(b"q")), &outer));
        assert!(!nested(&fences(None, Some(b"e")), &outer));
        assert!(!nested(&fences(Some(b"d"), None), &outer));
        assert!(!nested(&fences(Some(b"e"), Some(b"d")), &outer));
        assert!(!nested(&fences(Some(b"e"), Some(b"e")), &outer));
        let unbounded = fences(None, None);
        assert!(nested(&fences(None, Some(b"a")), &unbounded));
        assert!(nested(&fences(Some(b"a"), None), &unbounded));
        assert!(nested(&unbounded, &unbounded));
    }

    /// Overlapping and touching tombstones join; separate ones stay apart; an unbounded
    /// one swallows everything after its start.
    #[test]
    fn tombstones_merge_into_disjoint_intervals() {
        let range = |start: &[u8], end: Option<&[u8]>| RangeMessage {
            seq: 1,
            range: KeyRange {
                start: start.to_vec(),
                end: end.map(<[u8]>::to_vec),
            },
        };
        let covered = Covered::new(vec![
            range(b"a", Some(b"c")),
            range(b"b", Some(b"d")),
            range(b"d", Some(b"e")),
            range(b"g", Some(b"h")),
            range(b"m", None),
            range(b"n", Some(b"o")),
        ]);
        let intervals: Vec<(&[u8], Option<&[u8]>)> = covered
            .intervals
            .iter()
            .map(|interval| (interval.start.as_slice(), interval.end.as_deref()))
            .collect();
        assert_eq!(
            intervals,
            vec![
                (&b"a"[..], Some(&b"e"[..])),
                (&b"g"[..], Some(&b"h"[..])),
                (&b"m"[..], None)
            ]
        );
        let entries: Vec<Entry> = [&b"a"[..], b"d", b"e", b"f", b"g", b"h", b"z"]
            .iter()
            .map(|key| Entry {
                key: Key::from_slice(key),
                value: ValueStored::Inline(thunderhead_disk::PageSlice::copy_from_slice(b"")),
            })
            .collect();
        let base = Base::Borrowed(&entries);
        let hidden: Vec<bool> = (0..entries.len())
            .map(|index| covered.covers(&base, index))
            .collect();
        assert_eq!(hidden, vec![true, true, false, false, true, false, true]);
    }
}
