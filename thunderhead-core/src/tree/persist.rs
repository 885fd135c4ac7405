//! Commit: writing a writer's transient nodes as pages, children before parents, so that
//! every parent records its children's checksums. Stored subtrees are not touched: the
//! new version shares them with the old.

use thunderhead_disk::PageStore;

use crate::error::Result;
use crate::node::{Fences, Node, NodeRef, StoredRef};
use crate::page::{BranchContents, ChildSlot, encode_branch, encode_leaf};
use crate::pager::Pager;
use crate::tree::journal::persist_journal;

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
                let child_fences = branch.child_fences(index, fences);
                let child = &mut branch.children[index];
                let stored = persist(pager, &mut child.node, &child_fences, birth)?;
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
            persist_journal(pager, branch)?;
            // Tallies may have been recounted while segments merged.
            for (slot, child) in slots.iter_mut().zip(&branch.children) {
                slot.pending_bytes = u32::try_from(child.pending_bytes)
                    .unwrap_or(u32::MAX)
                    .into();
            }
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
    let page = pager.write_extent(bytes)?;
    let stored = StoredRef {
        page,
        checksum,
        birth,
    };
    *node = NodeRef::Stored(stored);
    Ok(stored)
}
