//! Commit: writing a writer's transient nodes as pages, children before parents, so that
//! every parent records its children's checksums. Stored subtrees are not touched: the
//! new version shares them with the old.

use thunderhead_disk::PageStore;

use crate::error::Result;
use crate::node::{Fences, Node, NodeRef, StoredRef};
use crate::page::{BranchContents, ChildSlot, encode_branch, encode_leaf};
use crate::pager::Pager;
use crate::tree::flush::{drain, fix_children};
use crate::tree::journal::{compact_journal, write_journal};

/// Readies every transient node for writing, top down: each journal is compacted, which
/// can push it past its budget, so it drains, and every child that changed shape on the
/// way is fixed. Afterwards the root may need fixing (`Tree::fix_root`).
pub(crate) fn settle<S: PageStore>(
    pager: &Pager<S>,
    node: &mut NodeRef,
    fences: &Fences,
) -> Result<()> {
    let NodeRef::Transient(node) = node else {
        return Ok(());
    };
    let Node::Branch(branch) = node.as_mut() else {
        return Ok(());
    };
    compact_journal(pager, branch)?;
    drain(pager, branch, fences)?;
    for index in 0..branch.children.len() {
        // Stored children are settled already; their fences cost a pivot copy each.
        if matches!(branch.children[index].node, NodeRef::Transient(_)) {
            let child_fences = branch.child_fences(index, fences);
            settle(pager, &mut branch.children[index].node, &child_fences)?;
        }
    }
    fix_children(pager, branch, fences)?;
    // Handing a child its messages for a merge or split cuts range messages that
    // straddle it, and the pieces left may weigh more than the whole did.
    drain(pager, branch, fences)
}

/// Writes `node` (if transient) and everything transient below it; leaves it stored.
pub(crate) fn persist<S: PageStore>(
    pager: &Pager<S>,
    node: &mut NodeRef,
    fences: &Fences,
    birth: u64,
) -> Result<StoredRef> {
    let transient = match node {
        NodeRef::Stored(stored) => return Ok(*stored),
        NodeRef::Transient(transient) => transient,
    };
    let page_size = pager.limits().page_size_bytes;
    let bytes = match transient.as_mut() {
        Node::Leaf(leaf) => encode_leaf(&leaf.entries, fences.implied_len(), page_size),
        Node::Branch(branch) => {
            let mut slots = Vec::with_capacity(branch.children.len());
            for index in 0..branch.children.len() {
                let stored = match &branch.children[index].node {
                    NodeRef::Stored(stored) => *stored,
                    NodeRef::Transient(_) => {
                        let child_fences = branch.child_fences(index, fences);
                        persist(
                            pager,
                            &mut branch.children[index].node,
                            &child_fences,
                            birth,
                        )?
                    }
                };
                let child = &branch.children[index];
                slots.push(ChildSlot {
                    page: stored.page.0.into(),
                    checksum: stored.checksum.into(),
                    pending_bytes: u32::try_from(child.pending_bytes)
                        .unwrap_or(u32::MAX)
                        .into(),
                    watermark: child.watermark.into(),
                    birth: stored.birth.into(),
                });
            }
            write_journal(pager, branch, birth)?;
            let contents = BranchContents {
                level: branch.level,
                implied_len: fences.implied_len(),
                seq_high: branch.seq_high,
                pivots: &branch.pivots,
                children: &slots,
                segments: &branch.segments,
            };
            encode_branch(&contents, page_size)
        }
    };
    let checksum = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let page = pager.write_cached(bytes, checksum)?;
    let stored = StoredRef {
        page,
        checksum,
        birth,
    };
    *node = NodeRef::Stored(stored);
    Ok(stored)
}
