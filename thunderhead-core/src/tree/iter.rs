//! Range iteration in both directions. The iterator works a leaf at a time: it descends
//! to the leaf, gathers the journal messages that ancestors hold for the leaf's key
//! range, and merges them over the leaf's entries. A leaf with no pending messages (the
//! usual case once journals have drained) is read in place, as a plain B-tree would.

use std::sync::Arc;

use thunderhead_disk::PageStore;

use crate::config::TREE_DEPTH_MAX;
use crate::error::Result;
use crate::key::KeyRange;
use crate::node::{Buffer, Entry, Fences, NodeRef, merge_entries};
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
    /// Last key yielded from this end, to stop when the ends meet.
    last_key: Option<Vec<u8>>,
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
}

enum LeafEntries<'a> {
    Stored {
        page: Arc<LeafPage>,
        prefix: Vec<u8>,
    },
    Borrowed(&'a [Entry]),
    Owned(Vec<Entry>),
}

impl LeafEntries<'_> {
    fn len(&self) -> usize {
        match self {
            LeafEntries::Stored { page, .. } => page.len(),
            LeafEntries::Borrowed(entries) => entries.len(),
            LeafEntries::Owned(entries) => entries.len(),
        }
    }

    fn key(&self, index: usize) -> Vec<u8> {
        match self {
            LeafEntries::Stored { page, prefix } => {
                [prefix.as_slice(), page.suffix(index)].concat()
            }
            LeafEntries::Borrowed(entries) => entries[index].key.clone(),
            LeafEntries::Owned(entries) => entries[index].key.clone(),
        }
    }

    fn value(&self, index: usize) -> ValueStored {
        match self {
            LeafEntries::Stored { page, .. } => page.value(index),
            LeafEntries::Borrowed(entries) => entries[index].value.clone(),
            LeafEntries::Owned(entries) => entries[index].value.clone(),
        }
    }

    /// Index of the first entry with a key at or above `key`.
    fn lower_bound(&self, key: &[u8]) -> usize {
        match self {
            LeafEntries::Stored { page, prefix } => {
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
            LeafEntries::Borrowed(entries) => {
                entries.partition_point(|entry| entry.key.as_slice() < key)
            }
            LeafEntries::Owned(entries) => {
                entries.partition_point(|entry| entry.key.as_slice() < key)
            }
        }
    }
}

/// Records the last key yielded from one end, reusing its allocation.
fn remember(last_key: &mut Option<Vec<u8>>, key: &[u8]) {
    let last = last_key.get_or_insert_with(Vec::new);
    last.clear();
    last.extend_from_slice(key);
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
            last_key: None,
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
        let entries = if !overlay.is_empty() {
            LeafEntries::Owned(merge_entries(leaf.entries(&fences).into_iter(), overlay))
        } else {
            match leaf {
                LeafView::Stored(page) => {
                    let prefix = [fences.implied_prefix(), page.local_prefix()].concat();
                    LeafEntries::Stored { page, prefix }
                }
                LeafView::Transient(leaf) => LeafEntries::Borrowed(&leaf.entries),
            }
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
                if self.back.last_key.as_ref().is_some_and(|back| key >= *back) {
                    self.finished = true;
                    return None;
                }
                remember(&mut self.front.last_key, &key);
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
                if self
                    .front
                    .last_key
                    .as_ref()
                    .is_some_and(|front| key <= *front)
                {
                    self.finished = true;
                    return None;
                }
                remember(&mut self.back.last_key, &key);
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
                    self.back.leaf = Some(leaf);
                }
                Err(error) => return self.fail(error),
            }
        }
        None
    }
}
