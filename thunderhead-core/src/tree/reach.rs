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
use crate::node::StoredRef;
use crate::page::{OverflowRef, SegmentSlot, overflow_page_count};
use crate::pager::{LoadedNode, Pager};
use crate::tree::view::{LeafView, NodeView, view_stored};
use crate::value::ValueStore;

/// What one stored node uses besides its children.
struct Parts {
    segments: Vec<SegmentSlot>,
    overflows: Vec<OverflowRef>,
    /// Stored children.
    children: Vec<StoredRef>,
    level: u8,
}

fn parts<S: PageStore>(pager: &Pager<S>, node: StoredRef) -> Result<Parts> {
    let mut parts = Parts {
        segments: Vec::new(),
        overflows: Vec::new(),
        children: Vec::new(),
        level: 0,
    };
    match view_stored(pager, node)? {
        NodeView::Leaf(LeafView::Stored(page)) => {
            parts.overflows.extend(page.overflows());
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
                parts.children.push(child);
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

/// Sorted extents to free must not overlap: a page freed twice would be handed out twice.
fn check_disjoint(freed: &[(Extent, u64)]) -> Result<()> {
    match freed
        .windows(2)
        .map(|pair| [pair[0].0, pair[1].0])
        .find(|pair| pair[0].end() > pair[1].start.0)
    {
        Some(pair) => Err(Error::Invariant {
            location: pair[1].start.to_string(),
            reason: format!("freed extents {:?} and {:?} overlap", pair[0], pair[1]),
        }),
        None => Ok(()),
    }
}

/// What a commit changed: the first pages of every extent the new version's newly
/// written nodes refer to, and the extents of the old version that nothing in the new
/// one uses, each with the revision that wrote it (to be freed once no kept version
/// reads it).
pub(crate) struct CommitDiff {
    pub referenced: HashSet<u64>,
    pub freed: Vec<(Extent, u64)>,
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
    let mut stack = vec![(new, None)];
    while let Some((node, level)) = stack.pop() {
        if node.birth != birth {
            continue;
        }
        let parts = parts(pager, node)?;
        check_level(node, parts.level, level)?;
        referenced.extend(parts.segments.iter().map(|slot| slot.page.get()));
        referenced.extend(parts.overflows.iter().map(|reference| reference.page().0));
        let level = child_level(node, &parts)?;
        for child in parts.children {
            referenced.insert(child.page.0);
            stack.push((child, level));
        }
    }
    let mut freed = Vec::new();
    let mut stack = vec![(old, None)];
    while let Some((node, level)) = stack.pop() {
        if referenced.contains(&node.page.0) {
            continue;
        }
        let parts = parts(pager, node)?;
        check_level(node, parts.level, level)?;
        freed.push((Extent::new(node.page, 1), node.birth));
        for slot in &parts.segments {
            if !referenced.contains(&slot.page.get()) {
                freed.push((segment_extent(slot), slot.birth.get()));
            }
        }
        for reference in &parts.overflows {
            if !referenced.contains(&reference.page().0) {
                freed.push((overflow_extent(reference, page_size), reference.birth()));
            }
        }
        let level = child_level(node, &parts)?;
        for child in parts.children {
            stack.push((child, level));
        }
    }
    freed.sort();
    freed.dedup_by_key(|(extent, _)| *extent);
    check_disjoint(&freed)?;
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
    let mut stack = vec![(root, None)];
    while let Some((node, level)) = stack.pop() {
        if !recent.contains(&node.page.0) {
            continue;
        }
        // Loading checks the node (and each segment) against the checksum its parent
        // recorded, and validates its structure.
        let parts = parts(pager, node)?;
        check_level(node, parts.level, level)?;
        verified += 1 + parts.segments.len() as u64;
        for reference in &parts.overflows {
            if recent.contains(&reference.page().0) {
                pager.get_value(reference)?;
                verified += 1;
            }
        }
        let level = child_level(node, &parts)?;
        for child in parts.children {
            stack.push((child, level));
        }
    }
    Ok(verified)
}

/// Something a stored node (or a tree's catalog entry) refers to.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// A node one level below the referrer (any level for a root).
    Node(StoredRef),
    /// A journal segment or an overflow extent (with the revision that wrote it): it
    /// refers to nothing.
    Extent(Extent, u64),
}

impl Target {
    fn start(&self) -> u64 {
        match self {
            Target::Node(node) => node.page.0,
            Target::Extent(extent, _) => extent.start.0,
        }
    }

    /// The extent, with the revision that wrote it.
    fn freed(&self) -> (Extent, u64) {
        match self {
            Target::Node(node) => (Extent::new(node.page, 1), node.birth),
            Target::Extent(extent, born) => (*extent, *born),
        }
    }
}

/// Everything `parts` refers to, each once per reference.
fn targets(parts: &Parts, page_size: usize) -> Vec<Target> {
    let mut targets: Vec<Target> = parts
        .segments
        .iter()
        .map(|slot| Target::Extent(segment_extent(slot), slot.birth.get()))
        .collect();
    targets.extend(
        parts.overflows.iter().map(|reference| {
            Target::Extent(overflow_extent(reference, page_size), reference.birth())
        }),
    );
    targets.extend(parts.children.iter().map(|child| Target::Node(*child)));
    targets
}

/// The pages a commit changed when trees may share pages (forks): what the new version
/// uses of what this writer wrote, what nothing uses any more, and the new counts of
/// extra references for pages referred to more than once.
pub(crate) struct SharedDiff {
    /// First pages of the fresh extents the new version uses.
    pub referenced: HashSet<u64>,
    /// Extents of the old version nothing refers to any more, with the revision that
    /// wrote each.
    pub freed: Vec<(Extent, u64)>,
    /// `(first page, extra references)`: the new count for every page whose count
    /// changed (zero: referred to once, the entry goes).
    pub extra: Vec<(u64, u64)>,
}

/// Reference counting over the changed part of a set of trees that may share subtrees
/// (a fork shares its source's root; copy-on-write of a shared node then shares its
/// children). A page's count is the number of distinct parents referring to it: stored
/// nodes, and catalog entries for roots. Only counts above one are stored
/// (`extra_of` returns the stored extra, zero when absent); a fresh page starts at zero.
///
/// `old_roots` lose a reference and `new_roots` gain one; every fresh node reachable
/// from a new root through fresh nodes adds one reference to each of its parts. Pages
/// whose count falls to zero are freed and take one reference from each of their parts,
/// processed top level first so a node's count is final when it is decided. A shared
/// node that loses a reference but keeps others stops the walk: its other owners still
/// hold its subtree. The cost follows the nodes this commit wrote and the nodes it
/// stopped using, as with [`commit_diff`].
pub(crate) fn shared_diff<S: PageStore>(
    pager: &Pager<S>,
    changes: &[(Option<StoredRef>, Option<StoredRef>)],
    fresh: &HashSet<u64>,
    mut extra_of: impl FnMut(u64) -> Result<u64>,
) -> Result<SharedDiff> {
    use std::collections::{BinaryHeap, HashMap};

    let page_size = pager.limits().page_size_bytes;
    let old_roots: Vec<StoredRef> = changes.iter().filter_map(|(old, _)| *old).collect();
    let new_roots: Vec<StoredRef> = changes.iter().filter_map(|(_, new)| *new).collect();
    let mut delta: HashMap<u64, i64> = HashMap::new();
    let mut what: HashMap<u64, Target> = HashMap::new();
    let mut as_root: HashMap<u64, u32> = HashMap::new();
    for root in &new_roots {
        *delta.entry(root.page.0).or_default() += 1;
        *as_root.entry(root.page.0).or_default() += 1;
        what.insert(root.page.0, Target::Node(*root));
    }
    for root in &old_roots {
        *delta.entry(root.page.0).or_default() -= 1;
        *as_root.entry(root.page.0).or_default() += 1;
        what.insert(root.page.0, Target::Node(*root));
    }
    let mut visited = HashSet::new();
    let mut stack: Vec<(StoredRef, Option<u8>)> = Vec::new();
    // (references before, references after) of every page decided.
    let mut decided: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut freed = Vec::new();
    let mut lost: Vec<(Target, Option<u8>)> = Vec::new();
    let mut paired: Vec<u64> = Vec::new();
    // The usual commit rewrites a tree's root in place: the old root, which only this
    // tree refers to, is freed, and the new one takes over most of its parts. Comparing
    // the two part lists directly leaves out everything they share, so the maps below
    // hold what differs, not every child of the root twice.
    for (old, new) in changes {
        let (Some(old), Some(new)) = (*old, *new) else {
            continue;
        };
        let replaced_alone = old.page != new.page
            && fresh.contains(&new.page.0)
            && !fresh.contains(&old.page.0)
            && as_root.get(&old.page.0) == Some(&1)
            && as_root.get(&new.page.0) == Some(&1);
        if !replaced_alone || extra_of(old.page.0)? != 0 {
            continue;
        }
        let old_parts = parts(pager, old)?;
        let new_parts = parts(pager, new)?;
        check_level(old, old_parts.level, None)?;
        check_level(new, new_parts.level, None)?;
        if old_parts.level != new_parts.level {
            continue;
        }
        let child_level = child_level(new, &new_parts)?;
        let mut old_targets = targets(&old_parts, page_size);
        let mut new_targets = targets(&new_parts, page_size);
        old_targets.sort_unstable_by_key(Target::start);
        new_targets.sort_unstable_by_key(Target::start);
        let (mut o, mut n) = (0, 0);
        while o < old_targets.len() || n < new_targets.len() {
            let old_start = old_targets.get(o).map(Target::start);
            let new_start = new_targets.get(n).map(Target::start);
            match (old_start, new_start) {
                (Some(a), Some(b)) if a == b => {
                    o += 1;
                    n += 1;
                }
                (Some(a), b) if b.is_none_or(|b| a < b) => {
                    lost.push((old_targets[o], child_level));
                    o += 1;
                }
                _ => {
                    let target = new_targets[n];
                    *delta.entry(target.start()).or_default() += 1;
                    if let Target::Node(child) = target
                        && fresh.contains(&child.page.0)
                    {
                        stack.push((child, child_level));
                    }
                    n += 1;
                }
            }
        }
        visited.insert(new.page.0);
        decided.insert(old.page.0, (1, 0));
        paired.push(old.page.0);
        freed.push((Extent::new(old.page, 1), old.birth));
    }
    // What this writer wrote and the new version reaches.
    stack.extend(
        new_roots
            .iter()
            .filter(|root| fresh.contains(&root.page.0) && !visited.contains(&root.page.0))
            .map(|root| (*root, None)),
    );
    while let Some((node, level)) = stack.pop() {
        if !visited.insert(node.page.0) {
            continue;
        }
        let parts = parts(pager, node)?;
        check_level(node, parts.level, level)?;
        let child_level = child_level(node, &parts)?;
        for target in targets(&parts, page_size) {
            *delta.entry(target.start()).or_default() += 1;
            if let Target::Node(child) = target
                && fresh.contains(&child.page.0)
            {
                stack.push((child, child_level));
            }
        }
    }
    // A paired old root was decided freed on the grounds that nothing else refers to it.
    if let Some(page) = paired
        .iter()
        .find(|page| delta.get(page).copied() != Some(-1))
    {
        return Err(Error::Invariant {
            location: PageId(*page).to_string(),
            reason: "a replaced root is still referred to by this commit".into(),
        });
    }
    // Pages that lost references, highest level first; extents (no level) last.
    let mut queue: BinaryHeap<(i32, u64)> = BinaryHeap::new();
    let mut levels: HashMap<u64, Option<u8>> = HashMap::new();
    for (target, level) in lost {
        lose_reference(
            target,
            level,
            &mut delta,
            &mut what,
            &mut levels,
            &mut queue,
        );
    }
    for root in &old_roots {
        if decided.contains_key(&root.page.0) {
            continue;
        }
        if delta.get(&root.page.0).copied().unwrap_or(0) < 0 {
            // Only the level is needed now: the header, not the journal.
            let level = match pager.load_node(*root)? {
                LoadedNode::Leaf(_) => 0,
                LoadedNode::Branch(branch) => branch.level(),
            };
            check_level(*root, level, None)?;
            levels.insert(root.page.0, None);
            queue.push((i32::from(level), root.page.0));
        }
    }
    let count_of = |page: u64, delta: i64, extra_of: &mut dyn FnMut(u64) -> Result<u64>| {
        let before = if fresh.contains(&page) {
            0
        } else {
            1 + i64::try_from(extra_of(page)?).unwrap_or(i64::MAX - 1)
        };
        let after = before + delta;
        if after < 0 {
            return Err(Error::Invariant {
                location: PageId(page).to_string(),
                reason: format!("reference count {before} would fall by {}", -delta),
            });
        }
        Ok((before as u64, after as u64))
    };
    while let Some((_, page)) = queue.pop() {
        if decided.contains_key(&page) {
            continue;
        }
        let change = delta.get(&page).copied().unwrap_or(0);
        if change == 0 {
            // As many references gained as lost (a child the rewritten parent kept).
            continue;
        }
        let (before, after) = count_of(page, change, &mut extra_of)?;
        decided.insert(page, (before, after));
        if after > 0 {
            continue;
        }
        let Some(&target) = what.get(&page) else {
            return Err(Error::Invariant {
                location: PageId(page).to_string(),
                reason: "a page lost a reference before it was known".into(),
            });
        };
        if !fresh.contains(&page) {
            freed.push(target.freed());
        }
        let Target::Node(node) = target else {
            continue;
        };
        let parts = parts(pager, node)?;
        check_level(node, parts.level, levels.get(&page).copied().flatten())?;
        let child_level = child_level(node, &parts)?;
        for target in targets(&parts, page_size) {
            lose_reference(
                target,
                child_level,
                &mut delta,
                &mut what,
                &mut levels,
                &mut queue,
            );
        }
    }
    // Every other page whose count changed gained references only.
    let mut referenced = HashSet::new();
    let mut extra = Vec::new();
    for (&page, &change) in &delta {
        if change == 0 {
            continue;
        }
        let (before, after) = match decided.get(&page) {
            Some(&counts) => counts,
            None => count_of(page, change, &mut extra_of)?,
        };
        if fresh.contains(&page) && after > 0 {
            referenced.insert(page);
        }
        // A freed page's stored count goes too; one referred to once has none.
        if before.saturating_sub(1) != after.saturating_sub(1) {
            extra.push((page, after.saturating_sub(1)));
        }
    }
    freed.sort();
    extra.sort();
    check_disjoint(&freed)?;
    Ok(SharedDiff {
        referenced,
        freed,
        extra,
    })
}

/// `target` (a node at `level`, or an extent) loses a reference. If it now has fewer
/// than before, it waits in `queue`, ranked by level, to have its count decided; else
/// it is still referred to as often as before, or more, and nothing is decided here.
fn lose_reference(
    target: Target,
    level: Option<u8>,
    delta: &mut std::collections::HashMap<u64, i64>,
    what: &mut std::collections::HashMap<u64, Target>,
    levels: &mut std::collections::HashMap<u64, Option<u8>>,
    queue: &mut std::collections::BinaryHeap<(i32, u64)>,
) {
    let start = target.start();
    let change = delta.entry(start).or_default();
    *change -= 1;
    if *change >= 0 {
        return;
    }
    what.entry(start).or_insert(target);
    let rank = match target {
        Target::Node(_) => {
            levels.insert(start, level);
            level.map_or(-1, i32::from)
        }
        Target::Extent(..) => -1,
    };
    queue.push((rank, start));
}

/// Every distinct extent reachable from `roots` (each root once per entry in the
/// list), with the number of distinct parents referring to each: what the stored extra
/// counts must say. Walks every node once, however many trees share it.
pub(crate) fn reference_counts<S: PageStore>(
    pager: &Pager<S>,
    roots: &[StoredRef],
) -> Result<(std::collections::HashMap<u64, u64>, Vec<Extent>)> {
    let page_size = pager.limits().page_size_bytes;
    let mut counts: std::collections::HashMap<u64, u64> = Default::default();
    let mut extents = Vec::new();
    let mut stack = Vec::new();
    for root in roots {
        let count = counts.entry(root.page.0).or_default();
        if *count == 0 {
            stack.push((*root, None));
        }
        *count += 1;
    }
    while let Some((node, level)) = stack.pop() {
        let parts = parts(pager, node)?;
        check_level(node, parts.level, level)?;
        extents.push(Extent::new(node.page, 1));
        let child_level = child_level(node, &parts)?;
        for target in targets(&parts, page_size) {
            let count = counts.entry(target.start()).or_default();
            *count += 1;
            if *count > 1 {
                continue;
            }
            match target {
                Target::Node(child) => stack.push((child, child_level)),
                Target::Extent(extent, _) => extents.push(extent),
            }
        }
    }
    extents.sort();
    Ok((counts, extents))
}

/// The extents reachable from `roots` that are not in `seen` (by first page), which
/// learns them: walking many versions of a store this way reads each shared subtree
/// once.
pub(crate) fn unseen_extents<S: PageStore>(
    pager: &Pager<S>,
    roots: &[StoredRef],
    seen: &mut HashSet<u64>,
) -> Result<Vec<Extent>> {
    let page_size = pager.limits().page_size_bytes;
    let mut extents = Vec::new();
    let mut stack: Vec<(StoredRef, Option<u8>)> = roots
        .iter()
        .filter(|root| seen.insert(root.page.0))
        .map(|root| (*root, None))
        .collect();
    while let Some((node, level)) = stack.pop() {
        let parts = parts(pager, node)?;
        check_level(node, parts.level, level)?;
        extents.push(Extent::new(node.page, 1));
        let child_level = child_level(node, &parts)?;
        for target in targets(&parts, page_size) {
            if !seen.insert(target.start()) {
                continue;
            }
            match target {
                Target::Node(child) => stack.push((child, child_level)),
                Target::Extent(extent, _) => extents.push(extent),
            }
        }
    }
    Ok(extents)
}
