//! Range iteration in both directions. The iterator works a leaf at a time: it descends
//! to the leaf, gathers the journal messages that ancestors hold for the leaf's key
//! range, and merges them over the leaf's entries. A leaf with no pending messages (the
//! usual case once journals have drained) is read in place, as a plain B-tree would.

use std::sync::Arc;

use thunderhead_disk::PageStore;

use crate::config::TREE_DEPTH_MAX;
use crate::error::Result;
use crate::key::KeyRange;
use crate::node::{Buffer, Entry, Fences, NodeRef, PointOp, RangeSweep};
use crate::page::LeafPage;
use crate::pager::Pager;
use crate::tree::read::{depth_exceeded, load_value};
use crate::tree::view::{BranchView, LeafView, NodeView, view};
use crate::value::{ValueBytes, ValueStored};

/// An iterator over the entries of a key range, in key order (or reverse order through
/// [`DoubleEndedIterator`]). Items are `Result`s: a page that fails to load or validate
/// ends the iteration with its error.
pub struct Range<'a, S: PageStore> {
    pager: &'a Pager<S>,
    root: &'a NodeRef,
    bounds: KeyRange,
    front: Side<'a>,
    back: Side<'a>,
    finished: bool,
}

/// One end of the iteration.
struct Side<'a> {
    leaf: Option<LeafCursor<'a>>,
    /// Where the next leaf starts (front) or ends (back); `None` before the first leaf.
    next: Next,
    /// Last key yielded from the leaves this end has left behind; with the cursor, it
    /// tells where this end stands, so the other can stop where they meet. Kept per leaf
    /// rather than per item: copying every key yielded would cost a scan dearly.
    passed: Option<Vec<u8>>,
}

impl Side<'_> {
    /// The last key this end yielded, if any; `front` says which end it is.
    fn last_key(&self, front: bool) -> Option<Vec<u8>> {
        if let Some(leaf) = &self.leaf {
            let yielded = if front {
                (leaf.front > leaf.first).then(|| leaf.front - 1)
            } else {
                (leaf.back < leaf.end).then_some(leaf.back)
            };
            if let Some(index) = yielded {
                return Some(leaf.entries.key(index));
            }
        }
        self.passed.clone()
    }
}

enum Next {
    Start,
    At(Vec<u8>),
    Done,
}

struct LeafCursor<'a> {
    entries: LeafEntries<'a>,
    /// Entries not yet yielded: `[front, back)`.
    front: usize,
    back: usize,
    /// The bounds `[first, end)` the cursor started with.
    first: usize,
    end: usize,
}

/// A leaf's entries as the iterator sees them: the leaf itself (read in place), or the
/// leaf seen through the messages its ancestors hold for it.
enum LeafEntries<'a> {
    Base(Base<'a>),
    Merged(Base<'a>, Overlay),
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

/// The result of merging a leaf with journal messages, as indices rather than copies:
/// the leaf's surviving entries are still read in place.
struct Overlay {
    order: Vec<Source>,
    /// Values put by messages, with their keys, in key order.
    puts: Vec<(Vec<u8>, ValueStored)>,
}

#[derive(Clone, Copy)]
enum Source {
    Base(u32),
    Put(u32),
}

impl Base<'_> {
    fn len(&self) -> usize {
        match self {
            Base::Stored { page, .. } => page.len(),
            Base::Borrowed(entries) => entries.len(),
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
            Base::Borrowed(entries) => entries[index].key.clone(),
        }
    }

    /// Writes key `index` into `out` (replacing what it held), without allocating once
    /// `out` has grown to the longest key.
    fn key_into(&self, index: usize, out: &mut Vec<u8>) {
        out.clear();
        match self {
            Base::Stored { page, prefix } => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(page.suffix(index));
            }
            Base::Borrowed(entries) => out.extend_from_slice(&entries[index].key),
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
        match self {
            Base::Stored { page, prefix } => {
                let implied = prefix.len() - page.local_prefix().len();
                match key.get(..implied) {
                    Some(head) if head == &prefix[..implied] => {
                        page.search(&key[implied..]).unwrap_or_else(|index| index)
                    }
                    // A key outside the leaf's prefix is below or above all its entries.
                    _ if key < prefix.as_slice() => 0,
                    _ => page.len(),
                }
            }
            Base::Borrowed(entries) => entries.partition_point(|entry| entry.key.as_slice() < key),
        }
    }

    /// Merges the leaf with `messages` (all newer than it) in one pass, with the same
    /// rules as a leaf applying a batch: a point message replaces or deletes its key unless a
    /// newer range covers it; a range hides the leaf entries it covers.
    fn merge(&self, messages: Buffer) -> Overlay {
        let mut sweep = RangeSweep::new(&messages.ranges);
        let mut order = Vec::with_capacity(self.len() + messages.points.len());
        let mut puts = Vec::new();
        let mut points = messages.points.into_iter().peekable();
        let mut key = Vec::new();
        let mut index = 0;
        let len = self.len();
        loop {
            if index < len {
                self.key_into(index, &mut key);
            }
            let take_point = match points.peek() {
                None if index >= len => break,
                None => false,
                Some(_) if index >= len => true,
                Some((point, _)) => point.as_slice() <= key.as_slice(),
            };
            if take_point {
                let (point, message) = points.next().expect("peeked");
                if index < len && point == key {
                    index += 1;
                }
                if message.seq > sweep.covering_seq(&point)
                    && let PointOp::Put(value) = message.op
                {
                    order.push(Source::Put(puts.len() as u32));
                    puts.push((point, value));
                }
            } else {
                if messages.ranges.is_empty() || sweep.covering_seq(&key) == 0 {
                    order.push(Source::Base(index as u32));
                }
                index += 1;
            }
        }
        Overlay { order, puts }
    }
}

impl LeafEntries<'_> {
    fn len(&self) -> usize {
        match self {
            LeafEntries::Base(base) => base.len(),
            LeafEntries::Merged(_, overlay) => overlay.order.len(),
        }
    }

    /// Key `index`, in a vector of exactly its length (it is handed to the caller).
    fn key(&self, index: usize) -> Vec<u8> {
        match self {
            LeafEntries::Base(base) => base.key(index),
            LeafEntries::Merged(base, overlay) => match overlay.order[index] {
                Source::Base(at) => base.key(at as usize),
                Source::Put(at) => overlay.puts[at as usize].0.clone(),
            },
        }
    }

    fn key_into(&self, index: usize, out: &mut Vec<u8>) {
        match self {
            LeafEntries::Base(base) => base.key_into(index, out),
            LeafEntries::Merged(base, overlay) => match overlay.order[index] {
                Source::Base(at) => base.key_into(at as usize, out),
                Source::Put(at) => {
                    out.clear();
                    out.extend_from_slice(&overlay.puts[at as usize].0);
                }
            },
        }
    }

    fn value(&self, index: usize) -> ValueStored {
        match self {
            LeafEntries::Base(base) => base.value(index),
            LeafEntries::Merged(base, overlay) => match overlay.order[index] {
                Source::Base(at) => base.value(at as usize),
                Source::Put(at) => overlay.puts[at as usize].1.clone(),
            },
        }
    }

    /// Index of the first entry with a key at or above `key`.
    fn lower_bound(&self, key: &[u8]) -> usize {
        match self {
            LeafEntries::Base(base) => base.lower_bound(key),
            LeafEntries::Merged(..) => {
                let mut scratch = Vec::new();
                let (mut low, mut high) = (0, self.len());
                while low < high {
                    let middle = low + (high - low) / 2;
                    self.key_into(middle, &mut scratch);
                    if scratch.as_slice() < key {
                        low = middle + 1;
                    } else {
                        high = middle;
                    }
                }
                low
            }
        }
    }
}

/// Which leaf to descend to.
enum Seek<'k> {
    /// The leaf holding `key`.
    Holding(&'k [u8]),
    /// The leaf holding the keys just below `key`, or the last leaf.
    Below(Option<&'k [u8]>),
}

impl<'a, S: PageStore> Range<'a, S> {
    pub(crate) fn new(pager: &'a Pager<S>, root: &'a NodeRef, bounds: KeyRange) -> Self {
        let side = || Side {
            leaf: None,
            next: Next::Start,
            passed: None,
        };
        let finished = bounds.is_empty();
        Self {
            pager,
            root,
            bounds,
            front: side(),
            back: side(),
            finished,
        }
    }

    /// Descends to a leaf and returns its entries (with journal messages merged) and its
    /// fences.
    fn load_leaf(&self, seek: Seek<'_>) -> Result<(LeafCursor<'a>, Fences)> {
        let mut fences = Fences::default();
        let mut node = view(self.pager, self.root)?;
        let mut path: Vec<(BranchView<'a>, usize)> = Vec::new();
        let leaf = loop {
            if path.len() > TREE_DEPTH_MAX {
                return Err(depth_exceeded());
            }
            match node {
                NodeView::Leaf(leaf) => break leaf,
                NodeView::Branch(branch) => {
                    let index = match seek {
                        Seek::Holding(key) => branch.route(key)?,
                        Seek::Below(Some(key)) => branch.route_below(key)?,
                        Seek::Below(None) => branch.len() - 1,
                    };
                    let child = branch.child(self.pager, index)?;
                    fences = branch.child_fences(index, &fences);
                    path.push((branch, index));
                    node = child;
                }
            }
        };
        let mut overlay = Buffer::default();
        for (branch, index) in &path {
            branch.collect(
                self.pager,
                *index,
                fences.low(),
                fences.high(),
                &mut overlay,
            )?;
        }
        let base = match leaf {
            LeafView::Stored(page) => {
                let prefix = [fences.implied_prefix(), page.local_prefix()].concat();
                Base::Stored { page, prefix }
            }
            LeafView::Transient(leaf) => Base::Borrowed(&leaf.entries),
        };
        let entries = if overlay.is_empty() {
            LeafEntries::Base(base)
        } else {
            let merged = base.merge(overlay);
            LeafEntries::Merged(base, merged)
        };
        let front = match fences.low() {
            Some(low) if low >= self.bounds.start.as_slice() => 0,
            _ => entries.lower_bound(&self.bounds.start),
        };
        let back = match (fences.high(), self.bounds.end.as_deref()) {
            (_, None) => entries.len(),
            (Some(high), Some(end)) if high <= end => entries.len(),
            (_, Some(end)) => entries.lower_bound(end),
        };
        let back = back.max(front);
        Ok((
            LeafCursor {
                entries,
                front,
                back,
                first: front,
                end: back,
            },
            fences,
        ))
    }

    fn item(
        &self,
        entries: &LeafEntries<'_>,
        index: usize,
        key: Vec<u8>,
    ) -> Result<(Vec<u8>, ValueBytes)> {
        Ok((key, load_value(self.pager, entries.value(index))?))
    }

    fn fail<T>(&mut self, error: crate::error::Error) -> Option<Result<T>> {
        self.finished = true;
        Some(Err(error))
    }
}

impl<S: PageStore> Iterator for Range<'_, S> {
    type Item = Result<(Vec<u8>, ValueBytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            if let Some(leaf) = &mut self.front.leaf
                && leaf.front < leaf.back
            {
                let index = leaf.front;
                leaf.front += 1;
                let key = leaf.entries.key(index);
                if self.back.last_key(false).is_some_and(|back| key >= back) {
                    self.finished = true;
                    return None;
                }
                let entries = &self.front.leaf.as_ref().expect("leaf present").entries;
                return Some(
                    self.item(entries, index, key)
                        .inspect_err(|_| self.finished = true),
                );
            }
            let seek_key = match &self.front.next {
                Next::Start => self.bounds.start.clone(),
                Next::At(key) => key.clone(),
                Next::Done => {
                    self.finished = true;
                    return None;
                }
            };
            if self.bounds.end.as_ref().is_some_and(|end| seek_key >= *end) {
                self.finished = true;
                return None;
            }
            match self.load_leaf(Seek::Holding(&seek_key)) {
                Ok((leaf, fences)) => {
                    self.front.next = fences.high.map_or(Next::Done, Next::At);
                    self.front.passed = self.front.last_key(true);
                    self.front.leaf = Some(leaf);
                }
                Err(error) => return self.fail(error),
            }
        }
        None
    }
}

impl<S: PageStore> DoubleEndedIterator for Range<'_, S> {
    fn next_back(&mut self) -> Option<Self::Item> {
        while !self.finished {
            if let Some(leaf) = &mut self.back.leaf
                && leaf.front < leaf.back
            {
                leaf.back -= 1;
                let index = leaf.back;
                let key = leaf.entries.key(index);
                if self.front.last_key(true).is_some_and(|front| key <= front) {
                    self.finished = true;
                    return None;
                }
                let entries = &self.back.leaf.as_ref().expect("leaf present").entries;
                return Some(
                    self.item(entries, index, key)
                        .inspect_err(|_| self.finished = true),
                );
            }
            let seek_key = match &self.back.next {
                Next::Start => self.bounds.end.clone(),
                Next::At(key) => Some(key.clone()),
                Next::Done => {
                    self.finished = true;
                    return None;
                }
            };
            if seek_key
                .as_ref()
                .is_some_and(|key| *key <= self.bounds.start)
            {
                self.finished = true;
                return None;
            }
            match self.load_leaf(Seek::Below(seek_key.as_deref())) {
                Ok((leaf, fences)) => {
                    self.back.next = fences.low.map_or(Next::Done, Next::At);
                    self.back.passed = self.back.last_key(false);
                    self.back.leaf = Some(leaf);
                }
                Err(error) => return self.fail(error),
            }
        }
        None
    }
}
