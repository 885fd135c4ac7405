//! The structural checker. It walks a version (or a writer's tree, transient nodes and
//! all) and verifies every invariant the tree relies on; tests call it after every batch
//! of changes and the CLI will call it on files.

use thunderhead_disk::{PageId, PageStore};

use crate::config::{JOURNAL_SEGMENTS_MAX, TREE_DEPTH_MAX};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::node::{Branch, Buffer, Child, Fences, NodeRef};
use crate::page::{OverflowRef, branch_layout_bytes, overflow_page_count};
use crate::pager::Pager;
use crate::tree::flush::overflows;
use crate::tree::journal::segment_tallies;
use crate::tree::view::{BranchView, LeafView, NodeView, view};
use crate::value::{ValueStore, ValueStored};

/// What `check()` counted while verifying a tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Levels, the leaf level included.
    pub height: usize,
    /// Leaf nodes.
    pub leaf_count: u64,
    /// Branch nodes.
    pub branch_count: u64,
    /// Entries held in leaves (not counting messages still in journals).
    pub leaf_entry_count: u64,
    /// Journal bytes still waiting to be flushed, over all branches.
    pub journal_pending_bytes: u64,
    /// Stored journal segments.
    pub segment_count: u64,
    /// Values stored off-tree.
    pub overflow_value_count: u64,
    /// Every stored extent reachable from the root: (first page, page count).
    pub extents: Vec<(PageId, u64)>,
}

/// Verifies the tree under `root`. `seq` is the tree's last sequence number.
pub(crate) fn check_tree<S: PageStore>(
    pager: &Pager<S>,
    root: &NodeRef,
    seq: u64,
) -> Result<CheckReport> {
    let mut checker = Checker {
        pager,
        report: CheckReport::default(),
    };
    let root_view = view(pager, root)?;
    let height = root_view.level() as usize + 1;
    if height > TREE_DEPTH_MAX {
        return Err(invariant(
            root,
            format!("height {height} exceeds {TREE_DEPTH_MAX}"),
        ));
    }
    checker.report.height = height;
    let seq_high = checker.node(root, root_view, &Fences::default(), true)?;
    if seq_high > seq {
        return Err(invariant(
            root,
            format!("root journal holds sequence {seq_high} past the tree's {seq}"),
        ));
    }
    checker.report.extents.sort();
    for pair in checker.report.extents.windows(2) {
        if pair[0].0.0 + pair[0].1 > pair[1].0.0 {
            return Err(Error::Invariant {
                location: pair[1].0.to_string(),
                reason: format!("extent overlaps {:?}: a page is used twice", pair[0]),
            });
        }
    }
    Ok(checker.report)
}

fn location(node: &NodeRef) -> String {
    match node {
        NodeRef::Stored(stored) => format!("page {}", stored.page),
        NodeRef::Transient(_) => "transient node".to_string(),
    }
}

fn invariant(node: &NodeRef, reason: impl Into<String>) -> Error {
    Error::Invariant {
        location: location(node),
        reason: reason.into(),
    }
}

struct Checker<'p, S> {
    pager: &'p Pager<S>,
    report: CheckReport,
}

impl<S: PageStore> Checker<'_, S> {
    /// Checks one node and its subtree; returns the highest sequence number journaled in
    /// it (0 for a leaf), which the parent compares with its watermark.
    fn node(
        &mut self,
        node_ref: &NodeRef,
        node: NodeView<'_>,
        fences: &Fences,
        is_root: bool,
    ) -> Result<u64> {
        let limits = *self.pager.limits();
        if let NodeRef::Stored(stored) = node_ref {
            self.report.extents.push((stored.page, 1));
        }
        match node {
            NodeView::Leaf(leaf) => {
                self.report.leaf_count += 1;
                if let LeafView::Stored(page) = &leaf
                    && page.implied_len() != fences.implied_len()
                {
                    return Err(invariant(
                        node_ref,
                        "stored implied prefix length disagrees with the fences",
                    ));
                }
                let entries = leaf.entries(fences);
                self.report.leaf_entry_count += entries.len() as u64;
                let mut weight = 0;
                for (index, entry) in entries.iter().enumerate() {
                    if !fences.contains(&entry.key) {
                        return Err(invariant(
                            node_ref,
                            format!("entry {index} lies outside the node's fences"),
                        ));
                    }
                    if index > 0 && entries[index - 1].key >= entry.key {
                        return Err(invariant(
                            node_ref,
                            format!("entry {index} is out of order"),
                        ));
                    }
                    if entry.key.len() > limits.key_bytes_max {
                        return Err(invariant(
                            node_ref,
                            format!("entry {index} has an oversized key"),
                        ));
                    }
                    weight += crate::node::entry_weight(&entry.key, &entry.value);
                    self.value(node_ref, &entry.key, &entry.value)?;
                }
                let transient = crate::node::Node::Leaf(crate::node::Leaf { entries });
                if overflows(&limits, &transient, fences) {
                    return Err(invariant(node_ref, "leaf does not fit its page"));
                }
                if !is_root && weight < limits.node_fill_min_bytes {
                    return Err(invariant(
                        node_ref,
                        format!("leaf weighs {weight} bytes, under the minimum"),
                    ));
                }
                Ok(0)
            }
            NodeView::Branch(branch) => self.branch(node_ref, branch, fences, is_root),
        }
    }

    fn value(&mut self, node_ref: &NodeRef, key: &[u8], value: &ValueStored) -> Result<()> {
        let inline_max = self.pager.limits().entry_inline_bytes_max;
        match value {
            ValueStored::Overflow(reference) => {
                if key.len() + reference.value_len.get() as usize <= inline_max {
                    return Err(invariant(
                        node_ref,
                        "a value small enough to be inline is stored off-tree",
                    ));
                }
                self.overflow(reference)
            }
            ValueStored::Inline(bytes) if key.len() + bytes.len() > inline_max => Err(invariant(
                node_ref,
                "a value too large to be inline is stored inline",
            )),
            ValueStored::Inline(_) => Ok(()),
        }
    }

    fn overflow(&mut self, reference: &OverflowRef) -> Result<()> {
        let limits = self.pager.limits();
        self.pager.get_value(reference)?;
        self.report.overflow_value_count += 1;
        let pages = overflow_page_count(reference.value_len.get(), limits.page_size_bytes);
        self.report.extents.push((reference.page(), pages));
        Ok(())
    }

    fn branch(
        &mut self,
        node_ref: &NodeRef,
        branch: BranchView<'_>,
        fences: &Fences,
        is_root: bool,
    ) -> Result<u64> {
        let limits = *self.pager.limits();
        self.report.branch_count += 1;
        let count = branch.len();
        if count < 2 {
            return Err(invariant(node_ref, format!("branch with {count} children")));
        }
        if let BranchView::Stored(page) = &branch
            && page.implied_len() != fences.implied_len()
        {
            return Err(invariant(
                node_ref,
                "stored implied prefix length disagrees with the fences",
            ));
        }
        let pivots: Vec<Key> = (0..count - 1)
            .map(|index| branch.pivot(index, fences))
            .collect();
        for (index, pivot) in pivots.iter().enumerate() {
            let above_low = fences.low().is_none_or(|low| pivot.as_slice() > low);
            let below_high = fences.high().is_none_or(|high| pivot.as_slice() < high);
            let ordered = index == 0 || pivots[index - 1] < *pivot;
            if !(above_low && below_high && ordered) {
                return Err(invariant(
                    node_ref,
                    format!("pivot {index} is out of order or outside the fences"),
                ));
            }
        }
        // Rebuild the branch's bookkeeping in memory to recount its journal exactly.
        let segments = branch.segments();
        if segments.len() > JOURNAL_SEGMENTS_MAX {
            return Err(invariant(
                node_ref,
                format!("{} journal segments", segments.len()),
            ));
        }
        let seq_high = branch.seq_high();
        let mut shadow = Branch {
            level: branch.level(),
            pivots: pivots.clone(),
            children: (0..count)
                .map(|index| Child {
                    node: NodeRef::Transient(Box::new(crate::node::Node::Leaf(Default::default()))),
                    watermark: branch.watermark(index),
                    pending_bytes: 0,
                })
                .collect(),
            buffer: match &branch {
                BranchView::Transient(transient) => transient.buffer.clone(),
                BranchView::Stored(_) => Buffer::default(),
            },
            segments: segments.clone(),
            seq_high,
        };
        if branch_layout_bytes(&pivots, fences.implied_len(), JOURNAL_SEGMENTS_MAX)
            > limits.page_size_bytes
        {
            return Err(invariant(node_ref, "branch does not fit its page"));
        }
        if !is_root && shadow.weight() < limits.node_fill_min_bytes {
            return Err(invariant(
                node_ref,
                format!("branch weighs {} bytes, under the minimum", shadow.weight()),
            ));
        }
        for slot in &segments {
            let segment = self.pager.load_segment(slot)?;
            self.report.segment_count += 1;
            self.report
                .extents
                .push((PageId(slot.page.get()), u64::from(slot.page_count.get())));
            if slot.seq_max.get() > seq_high {
                return Err(invariant(
                    node_ref,
                    "segment newer than the branch's sequence high-water mark",
                ));
            }
            let mut messages = Buffer::default();
            crate::tree::view::segment_collect(&segment, 0, None, None, &mut messages);
            self.messages_inside(node_ref, &messages, fences)?;
            // A message at or below its child's watermark is dead: its value now lives (or
            // lived) below, which may be the very same overflow extent, so only live
            // messages own what they point to.
            for (key, message) in &messages.points {
                let live = message.seq > shadow.children[shadow.route(key)].watermark;
                if let (true, crate::node::PointOp::Put(value)) = (live, &message.op) {
                    self.value(node_ref, key, value)?;
                }
            }
        }
        self.messages_inside(node_ref, &shadow.buffer, fences)?;
        if shadow.buffer.seq_max() > seq_high {
            return Err(invariant(
                node_ref,
                "buffer newer than the branch's sequence high-water mark",
            ));
        }
        let tallies = segment_tallies(self.pager, &shadow)?;
        for (child, tally) in shadow.children.iter_mut().zip(tallies) {
            child.pending_bytes = tally;
        }
        shadow.count_buffer();
        let mut pending_total = 0;
        for index in 0..count {
            let recorded = branch.pending_bytes(index);
            let counted = shadow.children[index].pending_bytes;
            if recorded != counted {
                return Err(invariant(
                    node_ref,
                    format!(
                        "child {index} tallies {recorded} pending bytes, recount gives {counted}"
                    ),
                ));
            }
            if branch.watermark(index) > seq_high {
                return Err(invariant(
                    node_ref,
                    format!("child {index} watermark is past the branch's high-water mark"),
                ));
            }
            pending_total += counted;
        }
        if pending_total > limits.journal_bytes_max as u64 {
            return Err(invariant(
                node_ref,
                format!("journal holds {pending_total} pending bytes, over budget"),
            ));
        }
        self.report.journal_pending_bytes += pending_total;
        for index in 0..count {
            let child_fences = branch.child_fences(index, fences);
            let child_view = branch.child(self.pager, index)?;
            let child_ref = match &branch {
                BranchView::Transient(transient) => borrow_child(&transient.children[index].node),
                BranchView::Stored(_) => {
                    NodeRef::Stored(branch.stored_child(index).expect("stored child"))
                }
            };
            let child_seq = self.node(&child_ref, child_view, &child_fences, false)?;
            if child_seq > branch.watermark(index) {
                return Err(invariant(
                    node_ref,
                    format!(
                        "child {index} journals sequence {child_seq}, newer than its watermark"
                    ),
                ));
            }
        }
        Ok(seq_high)
    }

    fn messages_inside(
        &self,
        node_ref: &NodeRef,
        messages: &Buffer,
        fences: &Fences,
    ) -> Result<()> {
        for key in messages.points.keys() {
            if !fences.contains(key) {
                return Err(invariant(
                    node_ref,
                    "journal message outside the node's fences",
                ));
            }
        }
        for range in &messages.ranges {
            if range.range.clip(fences.low(), fences.high()).as_ref() != Some(&range.range) {
                return Err(invariant(
                    node_ref,
                    "range message reaching outside the node's fences",
                ));
            }
        }
        Ok(())
    }
}

/// A stand-in reference to a child for error locations (transient children are walked
/// through their view; only stored ones need their page number).
fn borrow_child(node: &NodeRef) -> NodeRef {
    match node {
        NodeRef::Stored(stored) => NodeRef::Stored(*stored),
        NodeRef::Transient(_) => {
            NodeRef::Transient(Box::new(crate::node::Node::Leaf(Default::default())))
        }
    }
}
