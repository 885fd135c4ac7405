//! Reachability of stored pages, for free space and recovery. A commit must learn which
//! extents the version it replaces used and the new one does not (to free them), and
//! recovery must verify the extents a commit wrote; both walk only the part of the tree
//! that changed, so their cost follows the size of the change, not of the tree.
//!
//! What a node uses: its page, its journal segments, and the overflow extents of its
//! entries and of its *live* journal messages (newer than the watermark of the child
//! they are bound for). A message at or below its child's watermark is dead: its value
//! has moved down, maybe to the very same extent, so only the live copy owns it. This is
//! the rule `check` counts reachable extents by.

use std::collections::HashSet;

use thunderhead_disk::{Extent, PageId, PageStore};

use crate::config::TREE_DEPTH_MAX;
use crate::error::{Error, Result};
use crate::node::{Fences, StoredRef};
use crate::page::{OverflowRef, SegmentSlot, overflow_page_count};
use crate::pager::Pager;
use crate::tree::view::{LeafView, NodeView, view_stored};
use crate::value::{ValueStore, ValueStored};

/// What one stored node uses besides its children.
struct Parts {
    segments: Vec<SegmentSlot>,
    overflows: Vec<OverflowRef>,
    /// Stored children with their fences.
    children: Vec<(StoredRef, Fences)>,
    level: u8,
}

fn parts<S: PageStore>(pager: &Pager<S>, node: StoredRef, fences: &Fences) -> Result<Parts> {
    let mut parts = Parts {
        segments: Vec::new(),
        overflows: Vec::new(),
        children: Vec::new(),
        level: 0,
    };
    match view_stored(pager, node)? {
        NodeView::Leaf(LeafView::Stored(page)) => {
            for index in 0..page.len() {
                if let ValueStored::Overflow(reference) = page.value(index) {
                    parts.overflows.push(reference);
                }
            }
        }
        NodeView::Leaf(LeafView::Transient(_)) => unreachable!("a stored node was loaded"),
        NodeView::Branch(branch) => {
            parts.level = branch.level();
            for index in 0..branch.segment_count() {
                let slot = branch.segment(index);
                let segment = pager.load_segment(&slot)?;
                for (index, seq, reference) in segment.overflow_puts() {
                    if seq > branch.watermark(branch.route(&segment.point_key(index))?) {
                        parts.overflows.push(reference);
                    }
                }
                parts.segments.push(slot);
            }
            for index in 0..branch.len() {
                let child = branch
                    .stored_child(index)
                    .expect("stored branches have stored children");
                parts
                    .children
                    .push((child, branch.child_fences(index, fences)));
            }
        }
    }
    Ok(parts)
}

/// The level `node`'s children must have.
fn child_level(node: StoredRef, parts: &Parts) -> Result<Option<u8>> {
    match parts.level.checked_sub(1) {
        Some(level) => Ok(Some(level)),
        None if parts.children.is_empty() => Ok(None),
        None => Err(Error::corrupted(node.page, "a branch at the leaf level")),
    }
}

fn segment_extent(slot: &SegmentSlot) -> Extent {
    Extent::new(PageId(slot.page.get()), u64::from(slot.page_count.get()))
}

fn overflow_extent(reference: &OverflowRef, page_size: usize) -> Extent {
    let pages = overflow_page_count(reference.value_len(), page_size);
    Extent::new(reference.page(), pages)
}

/// Levels strictly decrease on the way down, so a walk is bounded even over a corrupt
/// file whose pointers form a cycle.
fn check_level(node: StoredRef, level: u8, expected: Option<u8>) -> Result<()> {
    let fits = match expected {
        Some(expected) => level == expected,
        None => (level as usize) < TREE_DEPTH_MAX,
    };
    if fits {
        return Ok(());
    }
    Err(Error::corrupted(
        node.page,
        format!("node at level {level} where {expected:?} was expected"),
    ))
}

/// What a commit changed: the first pages of every extent the new version's newly
/// written nodes refer to, and the extents of the old version that nothing in the new
/// one uses (to be freed once no reader needs the old version).
pub(crate) struct CommitDiff {
    pub referenced: HashSet<u64>,
    pub freed: Vec<Extent>,
}

/// Compares the version rooted at `old` with the one rooted at `new`, whose nodes
/// written by this commit carry `birth`. Only the changed part of either is walked:
/// a node the new version did not write is shared, subtree and all.
pub(crate) fn commit_diff<S: PageStore>(
    pager: &Pager<S>,
    old: StoredRef,
    new: StoredRef,
    birth: u64,
) -> Result<CommitDiff> {
    let page_size = pager.limits().page_size_bytes;
    let mut referenced = HashSet::new();
    referenced.insert(new.page.0);
    let mut stack = vec![(new, Fences::default(), None)];
    while let Some((node, fences, level)) = stack.pop() {
        if node.birth != birth {
            continue;
        }
        let parts = parts(pager, node, &fences)?;
        check_level(node, parts.level, level)?;
        referenced.extend(parts.segments.iter().map(|slot| slot.page.get()));
        referenced.extend(parts.overflows.iter().map(|reference| reference.page().0));
        let level = child_level(node, &parts)?;
        for (child, child_fences) in parts.children {
            referenced.insert(child.page.0);
            stack.push((child, child_fences, level));
        }
    }
    let mut freed = Vec::new();
    let mut stack = vec![(old, Fences::default(), None)];
    while let Some((node, fences, level)) = stack.pop() {
        if referenced.contains(&node.page.0) {
            continue;
        }
        let parts = parts(pager, node, &fences)?;
        check_level(node, parts.level, level)?;
        freed.push(Extent::new(node.page, 1));
        for slot in &parts.segments {
            if !referenced.contains(&slot.page.get()) {
                freed.push(segment_extent(slot));
            }
        }
        for reference in &parts.overflows {
            if !referenced.contains(&reference.page().0) {
                freed.push(overflow_extent(reference, page_size));
            }
        }
        let level = child_level(node, &parts)?;
        for (child, child_fences) in parts.children {
            stack.push((child, child_fences, level));
        }
    }
    freed.sort();
    freed.dedup();
    if let Some(pair) = freed
        .windows(2)
        .find(|pair| pair[0].end() > pair[1].start.0)
    {
        return Err(Error::Invariant {
            location: pair[1].start.to_string(),
            reason: format!("freed extents {:?} and {:?} overlap", pair[0], pair[1]),
        });
    }
    Ok(CommitDiff { referenced, freed })
}

/// Reads and verifies every extent of the version rooted at `root` that was written
/// since the last durable commit (`recent`, by first page): what a crash may have lost
/// or torn. A node not written since is durable with its whole subtree and is skipped,
/// so the cost follows what the last commits wrote. Any damage is an error.
pub(crate) fn verify_recent<S: PageStore>(
    pager: &Pager<S>,
    root: StoredRef,
    recent: &HashSet<u64>,
) -> Result<u64> {
    let mut verified = 0;
    let mut stack = vec![(root, Fences::default(), None)];
    while let Some((node, fences, level)) = stack.pop() {
        if !recent.contains(&node.page.0) {
            continue;
        }
        // Loading checks the node (and each segment) against the checksum its parent
        // recorded, and validates its structure.
        let parts = parts(pager, node, &fences)?;
        check_level(node, parts.level, level)?;
        verified += 1 + parts.segments.len() as u64;
        for reference in &parts.overflows {
            if recent.contains(&reference.page().0) {
                pager.get_value(reference)?;
                verified += 1;
            }
        }
        let level = child_level(node, &parts)?;
        for (child, child_fences) in parts.children {
            stack.push((child, child_fences, level));
        }
    }
    Ok(verified)
}
