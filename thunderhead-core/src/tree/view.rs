//! One read interface over transient nodes (borrowed from a writer) and stored nodes
//! (validated pages from the cache), so that lookups, iteration and checks are written
//! once for both.

use std::sync::Arc;

use thunderhead_disk::{PageId, PageStore};

use crate::error::{Error, Result};
use crate::key::{Key, compare_split, joined};
use crate::node::{
    Branch, Buffer, Entry, Fences, Leaf, Newest, Node, NodeRef, RangeMessage, StoredRef,
};
use crate::page::{BranchPage, KeyHash, LeafPage, SegmentPage, SegmentSlot};
use crate::pager::{LoadedNode, Pager};
use crate::value::ValueStored;

pub(crate) enum NodeView<'a> {
    Leaf(LeafView<'a>),
    Branch(BranchView<'a>),
}

pub(crate) enum LeafView<'a> {
    Transient(&'a Leaf),
    Stored(Arc<LeafPage>),
}

#[derive(Clone)]
pub(crate) enum BranchView<'a> {
    Transient(&'a Branch),
    Stored(StoredBranch<'a>),
}

/// A stored branch's view, held, or borrowed from something that outlives the read (a
/// snapshot's root): a borrow spares the reference count of the one page every read of
/// the tree goes through, whose line reader threads would otherwise pass between them.
#[derive(Clone)]
pub(crate) enum StoredBranch<'a> {
    Held(Arc<BranchPage>),
    Borrowed(&'a BranchPage),
}

impl std::ops::Deref for StoredBranch<'_> {
    type Target = BranchPage;

    fn deref(&self) -> &BranchPage {
        match self {
            StoredBranch::Held(page) => page,
            StoredBranch::Borrowed(page) => page,
        }
    }
}

/// Views a stored node, loading it through the cache.
pub(crate) fn view_stored<S: PageStore>(
    pager: &Pager<S>,
    stored: StoredRef,
) -> Result<NodeView<'static>> {
    Ok(loaded_view(pager.load_node(stored)?))
}

fn loaded_view(loaded: LoadedNode) -> NodeView<'static> {
    match loaded {
        LoadedNode::Leaf(leaf) => NodeView::Leaf(LeafView::Stored(leaf)),
        LoadedNode::Branch(branch) => {
            NodeView::Branch(BranchView::Stored(StoredBranch::Held(branch)))
        }
    }
}

/// Views a stored node someone else holds, borrowing it if it is a branch.
pub(crate) fn borrowed_view(loaded: &LoadedNode) -> NodeView<'_> {
    match loaded {
        LoadedNode::Leaf(leaf) => NodeView::Leaf(LeafView::Stored(leaf.clone())),
        LoadedNode::Branch(branch) => {
            NodeView::Branch(BranchView::Stored(StoredBranch::Borrowed(branch)))
        }
    }
}

/// Views the node `node` points to, loading it if it is stored.
pub(crate) fn view<'a, S: PageStore>(pager: &Pager<S>, node: &'a NodeRef) -> Result<NodeView<'a>> {
    Ok(match node {
        NodeRef::Stored(stored) => view_stored(pager, *stored)?,
        NodeRef::Transient(node) => match node.as_ref() {
            Node::Leaf(leaf) => NodeView::Leaf(LeafView::Transient(leaf)),
            Node::Branch(branch) => NodeView::Branch(BranchView::Transient(branch)),
        },
    })
}

impl NodeView<'_> {
    pub fn level(&self) -> u8 {
        match self {
            NodeView::Leaf(_) => 0,
            NodeView::Branch(branch) => branch.level(),
        }
    }
}

/// The part of `key` a stored node compares: what follows the implied prefix.
pub(crate) fn after_implied(page: PageId, implied_len: usize, key: &[u8]) -> Result<&[u8]> {
    key.get(implied_len..).ok_or_else(|| {
        Error::corrupted(
            page,
            format!("implied prefix of {implied_len} bytes is longer than the key"),
        )
    })
}

impl LeafView<'_> {
    /// The stored value of `key`, if the leaf has it.
    pub fn get(&self, key: &[u8]) -> Result<Option<ValueStored>> {
        Ok(match self {
            LeafView::Transient(leaf) => leaf
                .entries
                .binary_search_by(|entry| entry.key.as_slice().cmp(key))
                .ok()
                .map(|index| leaf.entries[index].value.clone()),
            LeafView::Stored(page) => {
                let rest = after_implied(page.id, page.implied_len(), key)?;
                page.search(rest).ok().map(|index| page.value(index))
            }
        })
    }

    /// Copies the entries out (used when journal messages must be merged over them).
    pub fn entries(&self, fences: &Fences) -> Vec<Entry> {
        match self {
            LeafView::Transient(leaf) => leaf.entries.clone(),
            LeafView::Stored(page) => {
                let prefix = joined(&[fences.implied_prefix(), page.local_prefix()]);
                (0..page.len())
                    .map(|index| Entry {
                        key: joined(&[&prefix, page.suffix(index)]),
                        value: page.value(index),
                    })
                    .collect()
            }
        }
    }
}

impl<'a> BranchView<'a> {
    pub fn level(&self) -> u8 {
        match self {
            BranchView::Transient(branch) => branch.level,
            BranchView::Stored(page) => page.level(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            BranchView::Transient(branch) => branch.children.len(),
            BranchView::Stored(page) => page.len(),
        }
    }

    pub fn seq_high(&self) -> u64 {
        match self {
            BranchView::Transient(branch) => branch.seq_high,
            BranchView::Stored(page) => page.seq_high(),
        }
    }

    pub fn route(&self, key: &[u8]) -> Result<usize> {
        Ok(match self {
            BranchView::Transient(branch) => branch.route(key),
            BranchView::Stored(page) => {
                page.route(after_implied(page.id, page.implied_len(), key)?)
            }
        })
    }

    pub fn route_below(&self, key: &[u8]) -> Result<usize> {
        Ok(match self {
            BranchView::Transient(branch) => branch.route_below(key),
            BranchView::Stored(page) => {
                page.route_below(after_implied(page.id, page.implied_len(), key)?)
            }
        })
    }

    pub fn watermark(&self, index: usize) -> u64 {
        match self {
            BranchView::Transient(branch) => branch.children[index].watermark,
            BranchView::Stored(page) => page.child(index).watermark.get(),
        }
    }

    pub fn pending_bytes(&self, index: usize) -> u64 {
        match self {
            BranchView::Transient(branch) => branch.children[index].pending_bytes,
            BranchView::Stored(page) => u64::from(page.child(index).pending_bytes.get()),
        }
    }

    pub fn segments(&self) -> Vec<SegmentSlot> {
        match self {
            BranchView::Transient(branch) => branch.segments.clone(),
            BranchView::Stored(page) => (0..page.segment_count())
                .map(|index| page.segment(index))
                .collect(),
        }
    }

    pub fn segment_count(&self) -> usize {
        match self {
            BranchView::Transient(branch) => branch.segments.len(),
            BranchView::Stored(page) => page.segment_count(),
        }
    }

    pub fn segment(&self, index: usize) -> SegmentSlot {
        match self {
            BranchView::Transient(branch) => branch.segments[index],
            BranchView::Stored(page) => page.segment(index),
        }
    }

    /// Pivot `index` in full, given the branch's own fences.
    pub fn pivot(&self, index: usize, own: &Fences) -> Key {
        match self {
            BranchView::Transient(branch) => branch.pivots[index].clone(),
            BranchView::Stored(page) => page.pivot(own.implied_prefix(), index),
        }
    }

    /// Child `index`'s fences given the branch's own.
    pub fn child_fences(&self, index: usize, own: &Fences) -> Fences {
        let low = if index == 0 {
            own.low.clone()
        } else {
            Some(self.pivot(index - 1, own))
        };
        let high = if index + 1 == self.len() {
            own.high.clone()
        } else {
            Some(self.pivot(index, own))
        };
        Fences { low, high }
    }

    /// The child pointer of a stored branch.
    pub fn stored_child(&self, index: usize) -> Option<StoredRef> {
        match self {
            BranchView::Transient(branch) => match &branch.children[index].node {
                NodeRef::Stored(stored) => Some(*stored),
                NodeRef::Transient(_) => None,
            },
            BranchView::Stored(page) => {
                let slot = page.child(index);
                Some(StoredRef {
                    page: PageId(slot.page.get()),
                    checksum: slot.checksum.get(),
                    birth: slot.birth.get(),
                })
            }
        }
    }

    /// Views child `index`, checking that it sits one level down: levels strictly
    /// decrease on every descent, so a corrupt file cannot make a reader loop.
    pub fn child<S: PageStore>(&self, pager: &Pager<S>, index: usize) -> Result<NodeView<'a>> {
        let child = match self {
            BranchView::Transient(branch) => view(pager, &branch.children[index].node)?,
            BranchView::Stored(page) => {
                let stored = self
                    .stored_child(index)
                    .expect("stored branches have stored children");
                loaded_view(pager.load_child(page, index, stored)?)
            }
        };
        if child.level().checked_add(1) != Some(self.level()) {
            let location = self
                .stored_child(index)
                .map_or(PageId::NONE, |stored| stored.page);
            return Err(Error::corrupted(
                location,
                format!(
                    "child at level {} under a branch at level {}",
                    child.level(),
                    self.level()
                ),
            ));
        }
        Ok(child)
    }

    /// Loads journal segment `index` (whose slot is `slot`), through the link a stored
    /// branch keeps.
    pub fn load_segment<S: PageStore>(
        &self,
        pager: &Pager<S>,
        index: usize,
        slot: &SegmentSlot,
    ) -> Result<Arc<SegmentPage>> {
        match self {
            BranchView::Transient(_) => pager.load_segment(slot),
            BranchView::Stored(page) => pager.load_branch_segment(page, index, slot),
        }
    }

    /// Offers the newest journal message about `key` (bound for child `index`).
    pub fn lookup<S: PageStore>(
        &self,
        pager: &Pager<S>,
        key: &[u8],
        index: usize,
        newest: &mut Newest,
    ) -> Result<()> {
        if let BranchView::Transient(branch) = self {
            branch.buffer.lookup(key, newest);
        }
        let watermark = self.watermark(index);
        let hash = KeyHash::of(key);
        let stored = match self {
            BranchView::Stored(page) => Some(page),
            BranchView::Transient(_) => None,
        };
        // Most segments hold nothing about the key: the view's copy of their filters says
        // so without a cache lookup per segment.
        let candidates = stored.map_or(u64::MAX, |page| page.segments_concerning(hash));
        for segment_index in 0..self.segment_count() {
            if segment_index < 64 && candidates & (1 << segment_index) == 0 {
                continue;
            }
            let slot = self.segment(segment_index);
            if slot.seq_max.get() <= watermark || slot.seq_max.get() <= newest.seq() {
                continue;
            }
            let segment = self.load_segment(pager, segment_index, &slot)?;
            if let Some(page) = stored {
                page.keep_segment_keys(segment_index, segment.keys());
            }
            segment_lookup(&segment, key, hash, watermark, newest);
        }
        Ok(())
    }
}

/// Offers the segment's messages about `key` newer than `watermark`.
pub(crate) fn segment_lookup(
    segment: &SegmentPage,
    key: &[u8],
    hash: KeyHash,
    watermark: u64,
    newest: &mut Newest,
) {
    if segment.may_hold(hash)
        && let Ok(index) = segment.search(key)
        && segment.point_seq(index) > watermark
    {
        newest.offer_point(&segment.point_message(index));
    }
    for index in 0..segment.range_count() {
        let (seq, start, end) = segment.range_parts(index);
        let prefix = segment.prefix();
        if seq > watermark
            && compare_split(prefix, start, key).is_le()
            && end.is_none_or(|end| compare_split(prefix, end, key).is_gt())
        {
            newest.offer_range(seq);
        }
    }
}

/// Copies the segment's messages newer than `watermark` for keys in `[low, high)`.
pub(crate) fn segment_collect(
    segment: &SegmentPage,
    watermark: u64,
    low: Option<&[u8]>,
    high: Option<&[u8]>,
    into: &mut Buffer,
) {
    let first = low.map_or(0, |low| segment.lower_bound(low));
    segment_collect_from(segment, watermark, first, low, high, into);
}

/// `segment_collect` with the first point message at or above `low` already known
/// (`first`); returns the first at or above `high`, where the next range's messages begin.
pub(crate) fn segment_collect_from(
    segment: &SegmentPage,
    watermark: u64,
    first: usize,
    low: Option<&[u8]>,
    high: Option<&[u8]>,
    into: &mut Buffer,
) -> usize {
    // The heads find the end without reading a message past the range; on a short range,
    // that message would often be the only line of the segment it needs.
    let stop = high.map_or(segment.point_count(), |high| {
        segment.lower_bound_from(first, high)
    });
    for index in first..stop {
        if segment.point_seq(index) > watermark {
            into.insert_point(segment.point_key(index), segment.point_message(index));
        }
    }
    for range in 0..segment.range_count() {
        if segment.range_parts(range).0 <= watermark {
            continue;
        }
        let message = segment.range_message(range);
        if let Some(inside) = message.range.clip(low, high) {
            into.insert_range(RangeMessage {
                seq: message.seq,
                range: inside,
            });
        }
    }
    stop
}
