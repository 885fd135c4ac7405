//! Copy-on-write: a stored node about to change is decoded into a transient one. Its
//! children stay stored pointers, so only the path being written is copied.

use thunderhead_disk::{Extent, PageId, PageStore};

use crate::config::JOURNAL_SEGMENTS_MAX;
use crate::error::{Error, Result};
use crate::node::{Branch, Buffer, Child, Fences, Leaf, Node, NodeRef, StoredRef};
use crate::pager::{LoadedNode, Pager};
use crate::tree::journal::materialize;

/// Makes `node` transient (decoding it if stored) and returns it. `fences` are the
/// node's fences, which give back the key prefix its page does not store.
pub(crate) fn make_transient<'n, S: PageStore>(
    pager: &Pager<S>,
    node: &'n mut NodeRef,
    fences: &Fences,
    level: Option<u8>,
) -> Result<&'n mut Node> {
    if let NodeRef::Stored(stored) = node {
        let decoded = decode(pager, *stored, fences)?;
        if level.is_some_and(|level| level != decoded.level()) {
            return Err(Error::corrupted(
                stored.page,
                format!(
                    "node at level {} where {level:?} was expected",
                    decoded.level()
                ),
            ));
        }
        // The writer's own earlier copy of this node is superseded by the transient one.
        pager.discard(Extent::new(stored.page, 1), Some(stored.birth));
        *node = NodeRef::Transient(Box::new(decoded));
    }
    match node {
        NodeRef::Transient(node) => Ok(node),
        NodeRef::Stored(_) => unreachable!("made transient above"),
    }
}

fn decode<S: PageStore>(pager: &Pager<S>, stored: StoredRef, fences: &Fences) -> Result<Node> {
    let implied = fences.implied_prefix();
    Ok(match pager.load_node(stored)? {
        LoadedNode::Leaf(page) => {
            check_implied(stored.page, page.implied_len(), implied.len())?;
            let view = crate::tree::view::LeafView::Stored(page);
            Node::Leaf(Leaf {
                entries: view.entries(fences),
            })
        }
        LoadedNode::Branch(page) => {
            check_implied(stored.page, page.implied_len(), implied.len())?;
            let pivots = (0..page.len() - 1)
                .map(|index| page.pivot(implied, index))
                .collect();
            let children = (0..page.len())
                .map(|index| {
                    let slot = page.child(index);
                    Child {
                        node: NodeRef::Stored(StoredRef {
                            page: PageId(slot.page.get()),
                            checksum: slot.checksum.get(),
                            birth: slot.birth.get(),
                        }),
                        watermark: slot.watermark.get(),
                        pending_bytes: u64::from(slot.pending_bytes.get()),
                    }
                })
                .collect();
            let segments = (0..page.segment_count())
                .map(|index| page.segment(index))
                .collect();
            let mut branch = Branch {
                level: page.level(),
                pivots,
                children,
                buffer: Buffer::default(),
                segments,
                seq_high: page.seq_high(),
            };
            // A transient journal always has room for one more segment, so a commit can
            // write its buffer whatever else happens to the node. The folded messages may
            // push the journal past its budget: every caller drains what it decodes.
            if branch.segments.len() >= JOURNAL_SEGMENTS_MAX {
                materialize(pager, &mut branch, usize::MAX)?;
            }
            Node::Branch(branch)
        }
    })
}

fn check_implied(page: PageId, stored: usize, expected: usize) -> Result<()> {
    if stored != expected {
        return Err(Error::corrupted(
            page,
            format!("implied prefix length {stored} where the fences imply {expected}"),
        ));
    }
    Ok(())
}

/// The transient node behind `node`; callers only ask after making it transient.
#[cfg(test)]
pub(crate) fn transient(node: &NodeRef) -> &Node {
    match node {
        NodeRef::Transient(node) => node,
        NodeRef::Stored(_) => unreachable!("node was made transient before"),
    }
}

/// The transient node behind `node`, mutably.
pub(crate) fn transient_mut(node: &mut NodeRef) -> &mut Node {
    match node {
        NodeRef::Transient(node) => node,
        NodeRef::Stored(_) => unreachable!("node was made transient before"),
    }
}

pub(crate) fn into_transient(node: NodeRef) -> Node {
    match node {
        NodeRef::Transient(node) => *node,
        NodeRef::Stored(_) => unreachable!("node was made transient before"),
    }
}
