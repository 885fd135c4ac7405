//! Flushing and rebalancing. When a branch's journal passes its budget, the messages
//! bound for its heaviest child go down in one batch (never to all children at once:
//! that is what made the original hitchhiker tree spike). The child applies them (a
//! leaf) or journals them (a branch, which may flush in turn), and is then split if it
//! overflows its page or merged with a sibling if it fell below the fill minimum.

use thunderhead_disk::PageStore;

use crate::config::{JOURNAL_SEGMENTS_MAX, Limits};
use crate::error::Result;
use crate::key::{Key, shortest_separator};
use crate::node::{Branch, Buffer, Child, Fences, Leaf, Node, NodeRef, entry_weight};
use crate::page::{branch_layout_bytes, leaf_layout_bytes};
use crate::pager::Pager;
use crate::tree::cow::{into_transient, make_transient, transient_mut};
use crate::tree::journal::{materialize, take_for_child};

/// Flushes the heaviest child until the journal is within budget.
pub(crate) fn drain<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    fences: &Fences,
) -> Result<()> {
    let budget = pager.limits().journal_bytes_max as u64;
    while branch.pending_total() > budget {
        let heaviest = branch.heaviest_child();
        flush_child(pager, branch, fences, heaviest)?;
    }
    Ok(())
}

/// Sends child `index` its messages, then restores the child's invariants.
pub(crate) fn flush_child<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    fences: &Fences,
    index: usize,
) -> Result<()> {
    settle_child(pager, branch, fences, index)?;
    fix_child(pager, branch, fences, index)
}

/// Applies (leaf) or journals (branch) a batch from the parent.
fn absorb(node: &mut Node, batch: Buffer) {
    if batch.is_empty() {
        return;
    }
    match node {
        Node::Leaf(leaf) => leaf.apply(batch),
        Node::Branch(branch) => branch.absorb(batch),
    }
}

/// Whether `node` no longer fits a page under these fences.
pub(crate) fn overflows(limits: &Limits, node: &Node, fences: &Fences) -> bool {
    let used = match node {
        Node::Leaf(leaf) => leaf_layout_bytes(&leaf.entries, fences.implied_len()),
        // Room for the most segments a journal may have is kept free.
        Node::Branch(branch) => {
            branch_layout_bytes(&branch.pivots, fences.implied_len(), JOURNAL_SEGMENTS_MAX)
        }
    };
    used > limits.page_size_bytes
}

/// Restores the invariants of transient child `index` and of whatever it turns into: a
/// journal over budget drains, a node too big for its page splits (and each piece is
/// fixed in turn, since a split branch's journal pieces may weigh more than the whole
/// did), and a node too light, or a branch left with one child, merges with a sibling.
/// A branch's own single child is left alone: the branch is then light itself, and its
/// parent merges it away (or the root steps aside for it).
pub(crate) fn fix_child<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    fences: &Fences,
    mut index: usize,
) -> Result<()> {
    let limits = *pager.limits();
    loop {
        let child_fences = branch.child_fences(index, fences);
        let child = transient_mut(&mut branch.children[index].node);
        if let Node::Branch(child) = child {
            drain(pager, child, &child_fences)?;
        }
        if overflows(&limits, child, &child_fences) {
            let pieces = split_child(pager, branch, fences, index)?;
            // Right to left, so that what a piece turns into leaves the indices of the
            // pieces still to fix unchanged.
            // A piece that turns light merges with a neighbour, maybe one already fixed
            // on its left, so the indices still to visit are clamped to what is left.
            for piece in (index..index + pieces).rev() {
                let piece = piece.min(branch.children.len() - 1);
                fix_child(pager, branch, fences, piece)?;
            }
            return Ok(());
        }
        if !is_light(&limits, child) || branch.children.len() == 1 {
            return Ok(());
        }
        let left = if index + 1 < branch.children.len() {
            index
        } else {
            index - 1
        };
        merge_children(pager, branch, fences, left)?;
        index = left;
    }
}

/// Whether a non-root node breaks the fill minimum.
fn is_light(limits: &Limits, node: &Node) -> bool {
    let lonely = matches!(node, Node::Branch(branch) if branch.children.len() < 2);
    lonely || node.weight() < limits.node_fill_min_bytes
}

/// Fixes every transient child of `branch`, right to left. Used where children were
/// adopted or rewritten wholesale (a merge of branches, a commit) rather than flushed.
pub(crate) fn fix_children<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    fences: &Fences,
) -> Result<()> {
    let mut index = branch.children.len();
    while index > 0 {
        index -= 1;
        // A merge at `index` may have consumed the child to its right; clamp.
        index = index.min(branch.children.len() - 1);
        if matches!(branch.children[index].node, NodeRef::Transient(_)) {
            fix_child(pager, branch, fences, index)?;
        }
    }
    Ok(())
}

/// Gives child `index` every message the branch holds for it, making it transient.
fn settle_child<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    fences: &Fences,
    index: usize,
) -> Result<()> {
    let batch = take_for_child(pager, branch, index)?;
    let child_fences = branch.child_fences(index, fences);
    let level = branch.level - 1;
    let child = make_transient(
        pager,
        &mut branch.children[index].node,
        &child_fences,
        Some(level),
    )?;
    absorb(child, batch);
    Ok(())
}

/// Replaces child `index` by the pieces it splits into; returns how many there are.
/// The pieces start with fresh watermarks, so the child first takes every message the
/// branch still holds for it.
fn split_child<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    fences: &Fences,
    index: usize,
) -> Result<usize> {
    settle_child(pager, branch, fences, index)?;
    let limits = *pager.limits();
    let placeholder = NodeRef::Transient(Box::new(Node::Leaf(Leaf::default())));
    let node = into_transient(std::mem::replace(
        &mut branch.children[index].node,
        placeholder,
    ));
    let (pieces, separators) = split_node(pager, &limits, node)?;
    let count = pieces.len();
    let watermark = branch.seq_high;
    let new_children = pieces.into_iter().map(|piece| Child {
        node: NodeRef::Transient(Box::new(piece)),
        watermark,
        pending_bytes: 0,
    });
    branch.children.splice(index..=index, new_children);
    branch.pivots.splice(index..index, separators);
    Ok(count)
}

/// Splits an overflowing node into pieces of even weight; returns them with the pivots
/// that separate them.
pub(crate) fn split_node<S: PageStore>(
    pager: &Pager<S>,
    limits: &Limits,
    node: Node,
) -> Result<(Vec<Node>, Vec<Key>)> {
    Ok(match node {
        Node::Leaf(leaf) => {
            let weights: Vec<usize> = leaf
                .entries
                .iter()
                .map(|entry| entry_weight(&entry.key, &entry.value))
                .collect();
            let cuts = cut_points(&weights, limits.node_split_target_bytes);
            let mut separators = Vec::with_capacity(cuts.len());
            let mut pieces = Vec::with_capacity(cuts.len() + 1);
            let mut entries = leaf.entries;
            for &cut in cuts.iter().rev() {
                let right = entries.split_off(cut);
                separators.push(shortest_separator(&entries[cut - 1].key, &right[0].key));
                pieces.push(Node::Leaf(Leaf { entries: right }));
            }
            pieces.push(Node::Leaf(Leaf { entries }));
            pieces.reverse();
            separators.reverse();
            (pieces, separators)
        }
        Node::Branch(mut branch) => {
            // The pieces get new fences, so the journal leaves its segments first.
            materialize(pager, &mut branch, usize::MAX)?;
            let weights: Vec<usize> = std::iter::once(0)
                .chain(branch.pivots.iter().map(|pivot| pivot.len()))
                .map(|pivot| crate::node::BRANCH_ENTRY_OVERHEAD_BYTES + pivot)
                .collect();
            let cuts = branch_cut_points(&weights, limits.node_split_target_bytes);
            let mut separators = Vec::with_capacity(cuts.len());
            let mut pieces = Vec::with_capacity(cuts.len() + 1);
            for &cut in cuts.iter().rev() {
                let children = branch.children.split_off(cut);
                let mut pivots = branch.pivots.split_off(cut - 1);
                let separator = pivots.remove(0);
                let buffer = branch.buffer.split_out(Some(&separator), None);
                let mut piece = Branch {
                    level: branch.level,
                    pivots,
                    children,
                    buffer,
                    segments: Vec::new(),
                    seq_high: branch.seq_high,
                };
                reset_tallies(&mut piece);
                separators.push(separator);
                pieces.push(Node::Branch(piece));
            }
            reset_tallies(&mut branch);
            pieces.push(Node::Branch(branch));
            pieces.reverse();
            separators.reverse();
            (pieces, separators)
        }
    })
}

/// Tallies of a branch whose journal is all in its buffer.
fn reset_tallies(branch: &mut Branch) {
    debug_assert!(branch.segments.is_empty());
    for child in &mut branch.children {
        child.pending_bytes = 0;
    }
    branch.count_buffer();
}

/// Where to cut a sequence of weights into pieces of about `target` each: each cut is
/// the index that starts a new piece. Pieces are never empty.
pub(crate) fn cut_points(weights: &[usize], target: usize) -> Vec<usize> {
    let total: usize = weights.iter().sum();
    let piece_count = total.div_ceil(target).clamp(2, weights.len().max(2));
    let mut cuts = Vec::with_capacity(piece_count - 1);
    let mut cumulative = 0usize;
    let mut next_piece = 1;
    for (index, weight) in weights.iter().enumerate() {
        if next_piece == piece_count {
            break;
        }
        let goal = total * next_piece / piece_count;
        // Cut before this item if that lands closer to the goal than cutting after it.
        if index > 0
            && cumulative + weight / 2 >= goal
            && cuts.last().is_none_or(|&last| last < index)
        {
            cuts.push(index);
            next_piece += 1;
        }
        cumulative += weight;
    }
    cuts
}

/// Where to cut a branch whose entries weigh `weights` (the first child's entry, then
/// one per pivot). Unlike a leaf's entries, the pivot at a cut leaves both pieces: it
/// rises to the parent, and the right piece's first child takes an entry without one.
/// An even cut of the weights can therefore leave the right piece up to a pivot under
/// its share, and a piece under the fill minimum merges straight back into the node it
/// was cut from, which overflows and splits the same way again, forever. A branch
/// overflows only a little past a page, so most splits make two pieces; that cut is
/// placed where the lighter piece, counted as stored, is heaviest.
pub(crate) fn branch_cut_points(weights: &[usize], target: usize) -> Vec<usize> {
    let mut cuts = cut_points(weights, target);
    if let [cut] = cuts.as_mut_slice() {
        let total: usize = weights.iter().sum();
        let mut left = weights[0];
        let mut best = (0, *cut);
        for (index, &weight) in weights.iter().enumerate().skip(1) {
            let right = total - left - weight + crate::node::BRANCH_ENTRY_OVERHEAD_BYTES;
            if left.min(right) > best.0 {
                best = (left.min(right), index);
            }
            left += weight;
        }
        *cut = best.1;
    }
    cuts
}

/// Merges child `left` and child `left + 1` into one (which `fix_child` may split again).
fn merge_children<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    fences: &Fences,
    left: usize,
) -> Result<()> {
    settle_child(pager, branch, fences, left)?;
    settle_child(pager, branch, fences, left + 1)?;
    let separator = branch.pivots.remove(left);
    let right = into_transient(branch.children.remove(left + 1).node);
    let merged_fences = branch.child_fences(left, fences);
    let merged = transient_mut(&mut branch.children[left].node);
    match (merged, right) {
        (Node::Leaf(merged), Node::Leaf(right)) => merged.entries.extend(right.entries),
        (Node::Branch(merged), Node::Branch(mut right)) => {
            materialize(pager, merged, usize::MAX)?;
            materialize(pager, &mut right, usize::MAX)?;
            merged.pivots.push(separator);
            merged.pivots.extend(right.pivots);
            merged.children.extend(right.children);
            merged.buffer.absorb(right.buffer);
            merged.seq_high = merged.seq_high.max(right.seq_high);
            reset_tallies(merged);
            // A branch merged because it had one child brings that child along, and the
            // child may be light: it was exempt while it had no sibling.
            fix_children(pager, merged, &merged_fences)?;
        }
        _ => unreachable!("siblings share a level"),
    }
    branch.children[left].watermark = branch.seq_high;
    branch.children[left].pending_bytes = 0;
    Ok(())
}
