//! Structural diff of two committed versions of a tree kept in the same pager.
//!
//! Two versions of a copy-on-write tree share every subtree neither commit touched, so a
//! diff walks both versions together, top down, aligned by key range, and never reads a
//! subtree that is the same page on both sides *with the same live ancestor messages for
//! its range*: such a subtree has the same logical contents on both sides. Everything
//! else is compared by logical contents (journal messages applied), not by pages, so a
//! flush that only moved messages down yields nothing.
//!
//! The walk keeps, for each side, a stack of expanded branches (a cursor, as an iterator
//! keeps) and the side's *current item*: the next subtree at the frontier, or the
//! materialised entries of a leaf partly compared. Both current items always start at the
//! same key. Each step either
//!
//! * skips both items (same page, same key range, same messages),
//! * enters a **joint descent** (same page and range, different messages): the page is
//!   read once for both sides, and only the children holding keys those messages
//!   decide differently are entered: one descent for all such keys, in key order,
//! * expands the taller item (or both, at equal levels) into its children, or
//! * compares two leaves' logical entries up to the lower of their high fences.
//!
//! Changes found go to a queue of *candidates* (a key and the stored values on each
//! side) that is emptied before the walk goes on; a candidate's values are loaded (and
//! compared byte for byte, when both sides store different references) only when it is
//! yielded. Memory is the two stacks (per level, a branch page, its segments and the
//! messages for its range) plus two leaves' worth of entries, and the candidates of one
//! leaf (or of the messages above one pruned child).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Weak};

use thunderhead_disk::{PageId, PageStore};

use crate::config::TREE_DEPTH_MAX;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::node::{
    Buffer, Entry, Fences, Leaf, PointMessage, PointOp, RangeMessage, RangeSweep, StoredRef,
};
use crate::page::{BranchPage, KeyHash, LeafPage, SegmentPage, SegmentSlot};
use crate::pager::{LoadedNode, Pager};
use crate::tree::read::depth_exceeded;
use crate::tree::view::{BranchView, LeafView, StoredBranch, segment_collect};
use crate::tree::{Snapshot, Version};
use crate::value::{ValueBytes, ValueStore, ValueStored};

/// One key whose value differs between the two versions of a [`Diff`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The key.
    pub key: Vec<u8>,
    /// What happened to it, going from the old version to the new.
    pub kind: ChangeKind,
}

/// How a key's value differs between the old and the new version.
#[derive(Clone, Debug)]
pub enum ChangeKind {
    /// Absent in the old version, present in the new.
    Added(ValueBytes),
    /// Present in the old version, absent in the new.
    Removed(ValueBytes),
    /// Present in both, with different bytes.
    Updated {
        /// The value in the old version.
        old: ValueBytes,
        /// The value in the new version.
        new: ValueBytes,
    },
}

impl ChangeKind {
    /// The value in the old version, if the key had one.
    pub fn old_value(&self) -> Option<&ValueBytes> {
        match self {
            ChangeKind::Added(_) => None,
            ChangeKind::Removed(old) | ChangeKind::Updated { old, .. } => Some(old),
        }
    }

    /// The value in the new version, if the key has one.
    pub fn new_value(&self) -> Option<&ValueBytes> {
        match self {
            ChangeKind::Removed(_) => None,
            ChangeKind::Added(new) | ChangeKind::Updated { new, .. } => Some(new),
        }
    }
}

// `ValueBytes` (a `PageSlice`) has no `PartialEq`: values compare by their bytes.
impl PartialEq for ChangeKind {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ChangeKind::Added(a), ChangeKind::Added(b))
            | (ChangeKind::Removed(a), ChangeKind::Removed(b)) => a[..] == b[..],
            (
                ChangeKind::Updated { old, new },
                ChangeKind::Updated {
                    old: other_old,
                    new: other_new,
                },
            ) => old[..] == other_old[..] && new[..] == other_new[..],
            _ => false,
        }
    }
}

impl Eq for ChangeKind {}

/// The changes from one committed version of a tree to another, in ascending key order.
/// Lazy: it reads pages as it goes, and skips every subtree the two versions share.
///
/// Items are `Result`s: a page that fails to load or validate ends the diff with its
/// error. Both versions must be stored in the pager given (as versions of one tree are).
///
/// ```
/// use std::sync::Arc;
/// use thunderhead_core::{ChangeKind, Pager, Snapshot, Tree, TreeConfig};
/// use thunderhead_disk::MemStore;
///
/// let pager = Arc::new(Pager::new(MemStore::new(4096)?, &TreeConfig::default())?);
/// let mut tree = Tree::new(pager.clone());
/// tree.put(b"apple", b"red")?;
/// tree.put(b"pear", b"green")?;
/// let first = tree.commit()?;
/// tree.put(b"apple", b"green")?;
/// tree.delete(b"pear")?;
/// let second = tree.commit()?;
/// let old = Snapshot::new(pager.clone(), first);
/// let new = Snapshot::new(pager, second);
/// let changes = old.diff(&new).collect::<Result<Vec<_>, _>>()?;
/// assert_eq!(changes.len(), 2);
/// assert!(matches!(&changes[0].kind, ChangeKind::Updated { new, .. } if &new[..] == b"green"));
/// assert!(matches!(&changes[1].kind, ChangeKind::Removed(old) if &old[..] == b"green"));
/// # Ok::<(), thunderhead_core::Error>(())
/// ```
pub struct Diff<S: PageStore> {
    reads: Reads<S>,
    roots: Option<(Version, Version)>,
    old: Side,
    new: Side,
    /// The joint descent under way, if any: frames of pages both sides share (under
    /// different messages). While it runs, neither side's walk moves.
    joint: Vec<JointFrame>,
    /// Keys found to (possibly) differ, in key order, not yet yielded.
    queue: VecDeque<Candidate>,
    /// An error to yield before anything else (the snapshots' pagers differ).
    failure: Option<Error>,
    finished: bool,
}

impl<S: PageStore> Diff<S> {
    /// The changes from version `old` to version `new`, both stored in `pager`.
    pub fn new(pager: Arc<Pager<S>>, old: Version, new: Version) -> Self {
        Self {
            reads: Reads {
                pager,
                count: 0,
                held: HashMap::new(),
                swept_len: 0,
            },
            roots: Some((old, new)),
            old: Side::default(),
            new: Side::default(),
            joint: Vec::new(),
            queue: VecDeque::new(),
            failure: None,
            finished: false,
        }
    }

    /// Pages (nodes, journal segments, overflow extents) this diff has loaded so far,
    /// counting each load it asked the pager for (cache hits included). A page one side
    /// already holds is handed to the other without a second load.
    pub fn pages_read(&self) -> u64 {
        self.reads.count
    }

    /// One step of the walk. Returns `false` once both versions are exhausted.
    fn advance(&mut self) -> Result<bool> {
        if let Some((old, new)) = self.roots.take() {
            self.start(old, new)?;
            return Ok(true);
        }
        if !self.joint.is_empty() {
            self.joint_step()?;
            return Ok(true);
        }
        self.old.fill()?;
        self.new.fill()?;
        match (self.old.item.take(), self.new.item.take()) {
            (None, None) => Ok(false),
            (Some(_), None) | (None, Some(_)) => Err(Error::corrupted(
                PageId::NONE,
                "the two versions' key ranges do not line up",
            )),
            (Some(Item::Subtree(old)), Some(Item::Subtree(new))) => {
                self.subtrees(old, new)?;
                Ok(true)
            }
            (Some(Item::Subtree(old)), Some(Item::Entries(new))) => {
                self.new.item = Some(Item::Entries(new));
                self.old.descend(&mut self.reads, old)?;
                Ok(true)
            }
            (Some(Item::Entries(old)), Some(Item::Subtree(new))) => {
                self.old.item = Some(Item::Entries(old));
                self.new.descend(&mut self.reads, new)?;
                Ok(true)
            }
            (Some(Item::Entries(old)), Some(Item::Entries(new))) => {
                self.compare_entries(old, new);
                Ok(true)
            }
        }
    }

    /// Begins with the two roots. The same root (a version against itself, or a commit
    /// that changed nothing) is the whole answer: nothing differs, nothing is read.
    fn start(&mut self, old: Version, new: Version) -> Result<()> {
        if old.root == new.root && old.root_checksum == new.root_checksum {
            return Ok(());
        }
        for (side, version) in [(&mut self.old, old), (&mut self.new, new)] {
            let root = version.root_ref();
            let loaded = self.reads.node(root)?;
            let level = loaded_level(&loaded);
            if usize::from(level) >= TREE_DEPTH_MAX {
                return Err(depth_exceeded());
            }
            side.item = Some(Item::Subtree(Subtree {
                node: root,
                level,
                fences: Fences::default(),
                pending: Some(Buffer::default()),
                index: 0,
                loaded: Some(loaded),
            }));
        }
        Ok(())
    }

    /// Both sides' next items are subtrees starting at the same key.
    fn subtrees(&mut self, mut old: Subtree, mut new: Subtree) -> Result<()> {
        if old.fences == new.fences && same_page(old.node, new.node) {
            // The same page over the same range: only the messages above it can differ.
            if old.pending.is_none()
                && new.pending.is_none()
                && let (Some(old_frame), Some(new_frame)) =
                    (self.old.stack.last_mut(), self.new.stack.last_mut())
            {
                if let Some((old_pending, new_pending)) = narrowed_messages(
                    &mut self.reads,
                    (&mut *old_frame, old.index),
                    (&mut *new_frame, new.index),
                    &old.fences,
                )? {
                    // With no key in doubt (the same messages above), passed over at once.
                    let loaded = old.loaded.or(new.loaded);
                    return self.joint_enter(
                        old.node,
                        old.level,
                        old.fences,
                        old_pending,
                        new_pending,
                        loaded,
                    );
                }
                if same_from_above(
                    &mut self.reads,
                    (old_frame, old.index),
                    (new_frame, new.index),
                    &old.fences,
                )? {
                    return Ok(());
                }
            }
            self.old.gather(&mut self.reads, &mut old)?;
            self.new.gather(&mut self.reads, &mut new)?;
            // `joint_enter` skips it outright when they are the same.
            let loaded = old.loaded.or(new.loaded);
            return self.joint_enter(
                old.node,
                old.level,
                old.fences,
                old.pending.unwrap_or_default(),
                new.pending.unwrap_or_default(),
                loaded,
            );
        }
        // Different pages: open the taller side first, so that both come down to the
        // same level (versions of different heights), then both together.
        match old.level.cmp(&new.level) {
            std::cmp::Ordering::Greater => {
                self.new.item = Some(Item::Subtree(new));
                self.old.descend(&mut self.reads, old)
            }
            std::cmp::Ordering::Less => {
                self.old.item = Some(Item::Subtree(old));
                self.new.descend(&mut self.reads, new)
            }
            std::cmp::Ordering::Equal => {
                self.old.descend(&mut self.reads, old)?;
                self.new.descend(&mut self.reads, new)
            }
        }
    }

    /// Compares two leaves' logical entries up to the lower of their high fences. A
    /// side whose leaf ends there moves on; the other keeps the rest of its entries for
    /// the next leaf of the first (the leaves of two versions need not line up).
    fn compare_entries(&mut self, mut old: Entries, mut new: Entries) {
        let limit = match (&old.high, &new.high) {
            (Some(a), Some(b)) => Some(a.min(b).clone()),
            (Some(a), None) => Some(a.clone()),
            (None, high) => high.clone(),
        };
        let below = |entry: &&Entry| limit.as_ref().is_none_or(|limit| entry.key < *limit);
        loop {
            let a = old.entries.get(old.at).filter(below);
            let b = new.entries.get(new.at).filter(below);
            let (key, old_value, new_value) = match (a, b) {
                (None, None) => break,
                (Some(a), None) => {
                    old.at += 1;
                    (&a.key, Some(&a.value), None)
                }
                (None, Some(b)) => {
                    new.at += 1;
                    (&b.key, None, Some(&b.value))
                }
                (Some(a), Some(b)) => match a.key.cmp(&b.key) {
                    std::cmp::Ordering::Less => {
                        old.at += 1;
                        (&a.key, Some(&a.value), None)
                    }
                    std::cmp::Ordering::Greater => {
                        new.at += 1;
                        (&b.key, None, Some(&b.value))
                    }
                    std::cmp::Ordering::Equal => {
                        old.at += 1;
                        new.at += 1;
                        (&a.key, Some(&a.value), Some(&b.value))
                    }
                },
            };
            self.queue
                .extend(candidate(key, old_value.cloned(), new_value.cloned()));
        }
        if old.high != limit {
            self.old.item = Some(Item::Entries(old));
        }
        if new.high != limit {
            self.new.item = Some(Item::Entries(new));
        }
    }

    /// Looks at a page both sides share, under messages `old` and `new` (everything the
    /// ancestors of each side hold for `fences`). Reads the page only if some key the
    /// messages decide differently is decided, on at least one side, by the page.
    fn joint_enter(
        &mut self,
        node: StoredRef,
        level: u8,
        fences: Fences,
        old: Buffer,
        new: Buffer,
        loaded: Option<LoadedNode>,
    ) -> Result<()> {
        if same_messages(&old, &new) {
            return Ok(());
        }
        if let Some(decided) = compare_overlays(&old, &new, None) {
            // Every key the messages disagree about is decided by them on both sides:
            // the page cannot matter.
            self.queue.extend(decided);
            return Ok(());
        }
        match load_node(&mut self.reads, node, level, loaded)? {
            LoadedNode::Leaf(page) => {
                let found = if same_ranges(&old.ranges, &new.ranges) {
                    check_implied(&page, &fences)?;
                    compare_over(&old, &new, Some(&Base::Page(&LeafView::Stored(page))))?
                } else {
                    let entries = leaf_entries(page, &fences)?;
                    compare_overlays(&old, &new, Some(&entries))
                };
                let found = found.expect("a comparison over a leaf always decides");
                self.queue.extend(found);
            }
            LoadedNode::Branch(page) => {
                let branch = open_branch(page, &fences)?;
                let differing = differing_points(&old, &new);
                self.joint.push(JointFrame {
                    node: Expanded::new(branch, fences),
                    old,
                    new,
                    differing,
                });
            }
        }
        Ok(())
    }

    /// Takes the next child of the joint descent's deepest branch.
    fn joint_step(&mut self) -> Result<()> {
        let frame = self.joint.last_mut().expect("a joint descent is under way");
        let mut first_key = None;
        if let Some(differing) = &mut frame.differing {
            // Skip to the child holding the next differing key.
            let Some(key) = differing.pop_front() else {
                self.joint.pop();
                return Ok(());
            };
            let index = frame.node.branch.route(&key)?;
            if index < frame.node.next {
                return Ok(()); // in the child just compared
            }
            frame.node.next = index;
            first_key = Some(key);
        }
        let Some((index, fences)) = frame.node.next_child() else {
            self.joint.pop();
            return Ok(());
        };
        // With the ranges the same on both sides, only the keys whose point messages
        // differ can differ below: the messages about those keys are all the rest of the
        // descent needs, however many others the journals hold for the child.
        let keys: Option<Vec<Key>> = first_key.map(|key| {
            let rest = frame.differing.iter().flatten();
            let inside = rest.take_while(|next| fences.high().is_none_or(|high| &next[..] < high));
            std::iter::once(key).chain(inside.cloned()).collect()
        });
        let (mut old, mut new) = (Buffer::default(), Buffer::default());
        for (side, into) in [(&frame.old, &mut old), (&frame.new, &mut new)] {
            match &keys {
                Some(keys) => copy_keys_into(side, keys, &fences, into),
                None => side.copy_range_into(fences.low(), fences.high(), into),
            }
        }
        if same_messages(&old, &new) {
            return Ok(());
        }
        if let Some(decided) = compare_overlays(&old, &new, None) {
            // Decided above this branch: its journal need not even be read.
            self.queue.extend(decided);
            return Ok(());
        }
        // This branch's journal is the same on both sides: gather it once (for the
        // differing keys only, when there are such), under the newer messages from above.
        let mut own = Buffer::default();
        match &keys {
            Some(keys) => {
                for key in keys {
                    let mut high = key.clone();
                    high.push(0);
                    let just = Fences {
                        low: Some(key.clone()),
                        high: Some(high),
                    };
                    frame
                        .node
                        .collect(&mut self.reads, index, &just, &mut own)?;
                }
            }
            None => frame
                .node
                .collect(&mut self.reads, index, &fences, &mut own)?,
        }
        let (mut old_all, mut new_all) = (own.clone(), own);
        old.copy_range_into(None, None, &mut old_all);
        new.copy_range_into(None, None, &mut new_all);
        let (node, level) = frame.node.child(index)?;
        self.joint_enter(node, level, fences, old_all, new_all, None)
    }

    /// Loads the values of a candidate and turns it into a change, or `None` if the
    /// bytes are the same after all.
    fn resolve(&mut self, candidate: Candidate) -> Result<Option<Change>> {
        let kind = match (candidate.old, candidate.new) {
            (None, None) => return Ok(None),
            (Some(old), None) => ChangeKind::Removed(self.reads.value(old)?),
            (None, Some(new)) => ChangeKind::Added(self.reads.value(new)?),
            (Some(old), Some(new)) => {
                // Different references may still hold the same bytes (a value written
                // again); equal lengths are the only case that needs both loaded to tell.
                let same_length = stored_len(&old) == stored_len(&new);
                let old = self.reads.value(old)?;
                let new = self.reads.value(new)?;
                if same_length && old[..] == new[..] {
                    return Ok(None);
                }
                ChangeKind::Updated { old, new }
            }
        };
        Ok(Some(Change {
            key: candidate.key,
            kind,
        }))
    }
}

impl<S: PageStore> Iterator for Diff<S> {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.failure.take() {
            self.finished = true;
            return Some(Err(error));
        }
        while !self.finished {
            let step = match self.queue.pop_front() {
                Some(candidate) => match self.resolve(candidate) {
                    Ok(Some(change)) => return Some(Ok(change)),
                    Ok(None) => Ok(true),
                    Err(error) => Err(error),
                },
                None => self.advance(),
            };
            match step {
                Ok(true) => {}
                Ok(false) => self.finished = true,
                Err(error) => {
                    self.finished = true;
                    return Some(Err(error));
                }
            }
        }
        None
    }
}

impl<S: PageStore> std::iter::FusedIterator for Diff<S> {}

impl<S: PageStore> Snapshot<S> {
    /// The changes from this version (the old one) to `newer`, in key order. Both
    /// snapshots must read the same pager (versions of one tree, or trees of one store).
    pub fn diff(&self, newer: &Snapshot<S>) -> Diff<S> {
        let mut diff = Diff::new(self.pager.clone(), self.version, newer.version);
        if !Arc::ptr_eq(&self.pager, &newer.pager) {
            diff.failure = Some(Error::InvalidConfig(
                "a diff needs two snapshots of the same pager".into(),
            ));
        }
        diff
    }
}

// ---------------------------------------------------------------------------------------
// Reading pages, and counting what was read

/// The diff's access to the pager. It counts every load, and hands out a page that a
/// frame of either side still holds instead of loading it again: the two roots of
/// consecutive versions usually share most of their journal segments.
struct Reads<S> {
    pager: Arc<Pager<S>>,
    count: u64,
    /// Pages loaded and perhaps still held by a frame (or the cache), by page and
    /// checksum. Weak, so holding them here keeps nothing alive; dead entries are swept
    /// whenever the map has doubled since the last sweep, so it stays within twice the
    /// pages alive.
    held: HashMap<(PageId, u32), Held>,
    /// Entries after the last sweep.
    swept_len: usize,
}

enum Held {
    Leaf(Weak<LeafPage>),
    Branch(Weak<BranchPage>),
    Segment(Weak<SegmentPage>),
}

impl Held {
    fn is_alive(&self) -> bool {
        match self {
            Held::Leaf(page) => page.strong_count() > 0,
            Held::Branch(page) => page.strong_count() > 0,
            Held::Segment(page) => page.strong_count() > 0,
        }
    }
}

impl<S: PageStore> Reads<S> {
    fn find(&self, page: PageId, checksum: u32) -> Option<&Held> {
        self.held.get(&(page, checksum))
    }

    fn remember(&mut self, page: PageId, checksum: u32, held: Held) {
        if self.held.len() >= 2 * self.swept_len.max(32) {
            self.held.retain(|_, held| held.is_alive());
            self.swept_len = self.held.len();
        }
        self.held.insert((page, checksum), held);
    }

    fn node(&mut self, node: StoredRef) -> Result<LoadedNode> {
        match self.find(node.page, node.checksum) {
            Some(Held::Leaf(page)) => {
                if let Some(page) = page.upgrade() {
                    return Ok(LoadedNode::Leaf(page));
                }
            }
            Some(Held::Branch(page)) => {
                if let Some(page) = page.upgrade() {
                    return Ok(LoadedNode::Branch(page));
                }
            }
            Some(Held::Segment(_)) | None => {}
        }
        self.count += 1;
        let loaded = self.pager.load_node(node)?;
        let held = match &loaded {
            LoadedNode::Leaf(page) => Held::Leaf(Arc::downgrade(page)),
            LoadedNode::Branch(page) => Held::Branch(Arc::downgrade(page)),
        };
        self.remember(node.page, node.checksum, held);
        Ok(loaded)
    }

    fn segment(&mut self, slot: &SegmentSlot) -> Result<Arc<SegmentPage>> {
        let (page, checksum) = (PageId(slot.page.get()), slot.checksum.get());
        if let Some(Held::Segment(segment)) = self.find(page, checksum)
            && let Some(segment) = segment.upgrade()
        {
            return Ok(segment);
        }
        self.count += 1;
        let segment = self.pager.load_segment(slot)?;
        self.remember(page, checksum, Held::Segment(Arc::downgrade(&segment)));
        Ok(segment)
    }

    /// A value's bytes (an overflow extent is one load; inline values cost nothing).
    fn value(&mut self, value: ValueStored) -> Result<ValueBytes> {
        match value {
            ValueStored::Inline(bytes) => Ok(bytes),
            ValueStored::Overflow(reference) => {
                self.count += 1;
                Ok(self.pager.get_value(&reference)?)
            }
        }
    }
}

fn loaded_level(loaded: &LoadedNode) -> u8 {
    match loaded {
        LoadedNode::Leaf(_) => 0,
        LoadedNode::Branch(page) => page.level(),
    }
}

/// Loads a node its parent expects at `level` (unless the caller already has it), and
/// checks that it is there: levels strictly decrease on every descent, so a corrupt file
/// cannot make the walk loop (as `BranchView::child` checks for reads).
fn load_node<S: PageStore>(
    reads: &mut Reads<S>,
    node: StoredRef,
    level: u8,
    loaded: Option<LoadedNode>,
) -> Result<LoadedNode> {
    let loaded = match loaded {
        Some(loaded) => loaded,
        None => reads.node(node)?,
    };
    if loaded_level(&loaded) != level {
        return Err(Error::corrupted(
            node.page,
            format!(
                "node at level {} where level {level} was expected",
                loaded_level(&loaded)
            ),
        ));
    }
    Ok(loaded)
}

/// A stored branch seen under `fences`, checked to fit them: its implied prefix is the
/// one the fences imply and its pivots lie strictly inside, so that its children's
/// ranges nest in its own and the two walks stay aligned whatever the file says.
fn open_branch(page: Arc<BranchPage>, fences: &Fences) -> Result<BranchView<'static>> {
    let id = page.id;
    if page.implied_len() != fences.implied_len() {
        return Err(Error::corrupted(
            id,
            "implied prefix differs from the fences",
        ));
    }
    let branch = BranchView::Stored(StoredBranch::Held(page));
    let pivots = branch.len() - 1;
    if pivots > 0 {
        let first = branch.pivot(0, fences);
        let last = branch.pivot(pivots - 1, fences);
        if fences.low().is_some_and(|low| first.as_slice() <= low)
            || fences.high().is_some_and(|high| last.as_slice() >= high)
        {
            return Err(Error::corrupted(id, "pivots outside the branch's fences"));
        }
    }
    Ok(branch)
}

/// A stored leaf's entries under `fences`, checked to lie inside them.
/// A leaf's stored implied prefix must be the one its fences imply: keys are searched
/// in it by what follows that prefix.
fn check_implied(page: &LeafPage, fences: &Fences) -> Result<()> {
    if page.implied_len() != fences.implied_len() {
        return Err(Error::corrupted(
            page.id,
            "implied prefix differs from the fences",
        ));
    }
    Ok(())
}

fn leaf_entries(page: Arc<LeafPage>, fences: &Fences) -> Result<Vec<Entry>> {
    let id = page.id;
    check_implied(&page, fences)?;
    let entries = LeafView::Stored(page).entries(fences);
    let outside = |entry: &Entry| !fences.contains(&entry.key);
    if entries.first().is_some_and(outside) || entries.last().is_some_and(outside) {
        return Err(Error::corrupted(id, "entries outside the leaf's fences"));
    }
    Ok(entries)
}

// ---------------------------------------------------------------------------------------
// One side's walk

/// A branch being walked child by child, with its journal segments (loaded on first use).
struct Expanded {
    branch: BranchView<'static>,
    fences: Fences,
    segments: Vec<Option<Arc<SegmentPage>>>,
    next: usize,
}

impl Expanded {
    fn new(branch: BranchView<'static>, fences: Fences) -> Self {
        let segments = vec![None; branch.segment_count()];
        Self {
            branch,
            fences,
            segments,
            next: 0,
        }
    }

    /// The next child's index and fences, if any child is left.
    fn next_child(&mut self) -> Option<(usize, Fences)> {
        if self.next == self.branch.len() {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some((index, self.branch.child_fences(index, &self.fences)))
    }

    /// Child `index`'s page and the level it must have.
    fn child(&self, index: usize) -> Result<(StoredRef, u8)> {
        let node = self.branch.stored_child(index).ok_or_else(|| {
            Error::corrupted(PageId::NONE, "a stored branch with a transient child")
        })?;
        // A stored branch is at level 1 or more (its page was validated).
        Ok((node, self.branch.level() - 1))
    }

    /// Adds this branch's live journal messages for child `index` (those above its
    /// watermark) to `into`.
    fn collect<S: PageStore>(
        &mut self,
        reads: &mut Reads<S>,
        index: usize,
        fences: &Fences,
        into: &mut Buffer,
    ) -> Result<()> {
        let watermark = self.branch.watermark(index);
        for (position, loaded) in self.segments.iter_mut().enumerate() {
            let slot = self.branch.segment(position);
            if slot.seq_max.get() <= watermark {
                continue;
            }
            let segment = match loaded {
                Some(segment) => segment,
                None => loaded.insert(reads.segment(&slot)?),
            };
            segment_collect(segment, watermark, fences.low(), fences.high(), into);
        }
        Ok(())
    }

    /// The live journal segments for child `index` (those with messages above its
    /// watermark), by position.
    fn live_segments(&self, index: usize) -> Vec<(usize, SegmentSlot)> {
        let watermark = self.branch.watermark(index);
        (0..self.segments.len())
            .map(|position| (position, self.branch.segment(position)))
            .filter(|(_, slot)| slot.seq_max.get() > watermark)
            .collect()
    }

    /// Journal segment `position`, loaded on first use.
    fn segment<S: PageStore>(
        &mut self,
        reads: &mut Reads<S>,
        position: usize,
    ) -> Result<&Arc<SegmentPage>> {
        let slot = self.branch.segment(position);
        Ok(match &mut self.segments[position] {
            Some(segment) => segment,
            loaded => loaded.insert(reads.segment(&slot)?),
        })
    }

    /// Whether segment `position` holds no message above `watermark` within `fences`.
    fn silent<S: PageStore>(
        &mut self,
        reads: &mut Reads<S>,
        position: usize,
        watermark: u64,
        fences: &Fences,
    ) -> Result<bool> {
        let segment = self.segment(reads, position)?;
        let mut found = Buffer::default();
        segment_collect(segment, watermark, fences.low(), fences.high(), &mut found);
        Ok(found.is_empty())
    }
}

/// Whether child `old.1` of branch `old.0` and child `new.1` of `new.0`, the same page
/// over the same `fences`, see the same messages from above, told without gathering
/// them: the same watermark, the same live journal segments but for ones with nothing
/// for the range, and the same messages from the branches' ancestors for the range.
/// `false` means "not shown the same" (the caller gathers and compares).
fn same_from_above<S: PageStore>(
    reads: &mut Reads<S>,
    old: (&mut Frame, usize),
    new: (&mut Frame, usize),
    fences: &Fences,
) -> Result<bool> {
    let ((old, old_index), (new, new_index)) = (old, new);
    let watermark = old.node.branch.watermark(old_index);
    if new.node.branch.watermark(new_index) != watermark
        || !same_in_range(&old.pending, &new.pending, fences)
    {
        return Ok(false);
    }
    let [old_live, new_live] = live_on_both((old, old_index), (new, new_index));
    for (frame, live) in [(old, old_live), (new, new_live)] {
        for (position, shared) in live {
            if !shared && !frame.node.silent(reads, position, watermark, fences)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The live journal segments for child `old.1` of `old.0` and for child `new.1` of
/// `new.0`, by position, each with whether the other side has it too (the same page with
/// the same checksum).
fn live_on_both(old: (&Frame, usize), new: (&Frame, usize)) -> [Vec<(usize, bool)>; 2] {
    let old_live = old.0.node.live_segments(old.1);
    let new_live = new.0.node.live_segments(new.1);
    let flag = |live: &[(usize, SegmentSlot)], other: &[(usize, SegmentSlot)]| {
        live.iter()
            .map(|(position, slot)| {
                let shared = other.iter().any(|(_, theirs)| {
                    theirs.page == slot.page && theirs.checksum == slot.checksum
                });
                (*position, shared)
            })
            .collect()
    };
    [flag(&old_live, &new_live), flag(&new_live, &old_live)]
}

/// The messages above child `old.1` of branch `old.0` and child `new.1` of `new.0` (the
/// same page over the same `fences`) about only the keys the two sides may decide
/// differently, when that can be told without gathering them all: the same watermark in
/// both parents and no range message anywhere in play. Those keys are the ones of the
/// point messages in the live segments one side has and the other has not, and those the
/// parents' own ancestors hold differently for the range; for each, every message above
/// the child on each side is taken, so the two buffers decide those keys as everything
/// above would, and leave every other key to the page, as everything above does the same
/// on both sides. After 1,000 updates to a large tree, nearly every child the walk enters
/// is in this case, and gathering all its messages twice was most of the diff. `None`:
/// gather them all.
fn narrowed_messages<S: PageStore>(
    reads: &mut Reads<S>,
    old: (&mut Frame, usize),
    new: (&mut Frame, usize),
    fences: &Fences,
) -> Result<Option<(Buffer, Buffer)>> {
    let ((old, old_index), (new, new_index)) = (old, new);
    let watermark = old.node.branch.watermark(old_index);
    if new.node.branch.watermark(new_index) != watermark
        || !old.pending.ranges.is_empty()
        || !new.pending.ranges.is_empty()
    {
        return Ok(None);
    }
    let mut keys = points_differing_within(&old.pending, &new.pending, fences);
    let [old_live, new_live] = live_on_both((old, old_index), (new, new_index));
    for (frame, live) in [(&mut *old, &old_live), (&mut *new, &new_live)] {
        for &(position, shared) in live {
            let segment = frame.node.segment(reads, position)?;
            if segment.range_count() > 0 {
                return Ok(None);
            }
            if !shared {
                let first = fences.low().map_or(0, |low| segment.lower_bound(low));
                let stop = fences.high().map_or(segment.point_count(), |high| {
                    segment.lower_bound_from(first, high)
                });
                keys.extend(
                    (first..stop)
                        .filter(|&index| segment.point_seq(index) > watermark)
                        .map(|index| segment.point_key(index)),
                );
            }
        }
    }
    let keys: Vec<Key> = keys.into_iter().collect();
    let hashes: Vec<KeyHash> = keys.iter().map(|key| KeyHash::of(key)).collect();
    let (mut old_messages, mut new_messages) = (Buffer::default(), Buffer::default());
    copy_keys_into(&old.pending, &keys, fences, &mut old_messages);
    copy_keys_into(&new.pending, &keys, fences, &mut new_messages);
    // A segment both sides have holds the same messages for both: searched once.
    for (frame, live, old_side) in [(old, &old_live, true), (new, &new_live, false)] {
        for &(position, shared) in live {
            if shared && !old_side {
                continue;
            }
            let segment = frame.node.segment(reads, position)?;
            for (key, &hash) in keys.iter().zip(&hashes) {
                if segment.may_hold(hash)
                    && let Ok(index) = segment.search(key)
                    && segment.point_seq(index) > watermark
                {
                    let message = segment.point_message(index);
                    if shared {
                        new_messages.insert_point(key.clone(), message.clone());
                    }
                    let side = if old_side {
                        &mut old_messages
                    } else {
                        &mut new_messages
                    };
                    side.insert_point(key.clone(), message);
                }
            }
        }
    }
    Ok(Some((old_messages, new_messages)))
}

/// The keys within `fences` whose point messages in `a` and `b` differ (or that only one
/// of them has a message for).
fn points_differing_within(a: &Buffer, b: &Buffer, fences: &Fences) -> BTreeSet<Key> {
    let bounds = || {
        (
            fences.low().map_or(Bound::Unbounded, Bound::Included),
            fences.high().map_or(Bound::Unbounded, Bound::Excluded),
        )
    };
    let mut a_points = a.points.range::<[u8], _>(bounds()).peekable();
    let mut b_points = b.points.range::<[u8], _>(bounds()).peekable();
    let mut keys = BTreeSet::new();
    loop {
        let order = match (a_points.peek(), b_points.peek()) {
            (None, None) => return keys,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((key_a, _)), Some((key_b, _))) => key_a.cmp(key_b),
        };
        match order {
            std::cmp::Ordering::Less => {
                keys.insert(a_points.next().expect("peeked").0.clone());
            }
            std::cmp::Ordering::Greater => {
                keys.insert(b_points.next().expect("peeked").0.clone());
            }
            std::cmp::Ordering::Equal => {
                let ((key, a), (_, b)) = (
                    a_points.next().expect("peeked"),
                    b_points.next().expect("peeked"),
                );
                if !same_point(a, b) {
                    keys.insert(key.clone());
                }
            }
        }
    }
}

/// Copies into `into` the point messages of `from` about `keys` and its range messages
/// within `fences`.
fn copy_keys_into(from: &Buffer, keys: &[Key], fences: &Fences, into: &mut Buffer) {
    for key in keys {
        if let Some(message) = from.points.get(key) {
            into.insert_point(key.clone(), message.clone());
        }
    }
    from.copy_ranges_into(fences.low(), fences.high(), into);
}

/// Whether `a` and `b` hold the same messages within `fences` (point messages compared
/// in place; range messages, rare, by copying the part inside).
fn same_in_range(a: &Buffer, b: &Buffer, fences: &Fences) -> bool {
    let (low, high) = (fences.low(), fences.high());
    if !a.ranges.is_empty() || !b.ranges.is_empty() {
        let (mut a_inside, mut b_inside) = (Buffer::default(), Buffer::default());
        a.copy_range_into(low, high, &mut a_inside);
        b.copy_range_into(low, high, &mut b_inside);
        return same_messages(&a_inside, &b_inside);
    }
    let bounds = || {
        (
            low.map_or(Bound::Unbounded, Bound::Included),
            high.map_or(Bound::Unbounded, Bound::Excluded),
        )
    };
    let mut a_points = a.points.range::<[u8], _>(bounds());
    let mut b_points = b.points.range::<[u8], _>(bounds());
    loop {
        match (a_points.next(), b_points.next()) {
            (None, None) => return true,
            (Some((key_a, a)), Some((key_b, b))) if key_a == key_b && same_point(a, b) => {}
            _ => return false,
        }
    }
}

#[derive(Default)]
struct Side {
    stack: Vec<Frame>,
    /// The next part of this version not yet compared; `None` with an empty stack once
    /// the version is exhausted.
    item: Option<Item>,
}

/// A branch one side has opened, with the messages its ancestors hold for its range.
struct Frame {
    node: Expanded,
    pending: Buffer,
}

enum Item {
    Subtree(Subtree),
    Entries(Entries),
}

/// A stored subtree seen from above: its page, its range, and every live message its
/// ancestors hold for that range (all newer than anything inside, by Invariant M).
struct Subtree {
    node: StoredRef,
    level: u8,
    fences: Fences,
    /// `None` until gathered ([`Side::gather`]): the subtree is then child `index` of
    /// the side's deepest open branch. Most children the walk meets are skipped, the
    /// same page under the same messages on both sides, which can be told without
    /// gathering the messages (`same_from_above`); gathering them was most of a diff.
    pending: Option<Buffer>,
    index: usize,
    /// The page, when it was already loaded (the roots).
    loaded: Option<LoadedNode>,
}

/// A leaf's logical entries (its ancestors' messages applied), compared up to `at`.
struct Entries {
    entries: Vec<Entry>,
    at: usize,
    high: Option<Key>,
}

impl Side {
    /// Makes the next child of the deepest open branch the current item, if there is
    /// no current item.
    fn fill(&mut self) -> Result<()> {
        while self.item.is_none() {
            let Some(frame) = self.stack.last_mut() else {
                return Ok(());
            };
            let Some((index, fences)) = frame.node.next_child() else {
                self.stack.pop();
                continue;
            };
            let (node, level) = frame.node.child(index)?;
            self.item = Some(Item::Subtree(Subtree {
                node,
                level,
                fences,
                pending: None,
                index,
                loaded: None,
            }));
        }
        Ok(())
    }

    /// Gathers the messages above `subtree`, a child of the deepest open branch, unless
    /// they are already: that branch's live journal messages for its range, then what
    /// the branch's ancestors hold for it (newer).
    fn gather<S: PageStore>(&mut self, reads: &mut Reads<S>, subtree: &mut Subtree) -> Result<()> {
        if subtree.pending.is_some() {
            return Ok(());
        }
        let frame = self
            .stack
            .last_mut()
            .expect("an ungathered subtree is a child of the deepest open branch");
        let fences = &subtree.fences;
        let mut pending = Buffer::default();
        frame
            .node
            .collect(reads, subtree.index, fences, &mut pending)?;
        frame
            .pending
            .copy_range_into(fences.low(), fences.high(), &mut pending);
        subtree.pending = Some(pending);
        Ok(())
    }

    /// Opens `subtree`: a branch becomes a frame (its children come next), a leaf
    /// becomes its logical entries.
    fn descend<S: PageStore>(&mut self, reads: &mut Reads<S>, mut subtree: Subtree) -> Result<()> {
        self.gather(reads, &mut subtree)?;
        let pending = subtree.pending.unwrap_or_default();
        match load_node(reads, subtree.node, subtree.level, subtree.loaded)? {
            LoadedNode::Branch(page) => {
                let branch = open_branch(page, &subtree.fences)?;
                self.stack.push(Frame {
                    node: Expanded::new(branch, subtree.fences),
                    pending,
                });
            }
            LoadedNode::Leaf(page) => {
                let mut leaf = Leaf {
                    entries: leaf_entries(page, &subtree.fences)?,
                };
                if !pending.is_empty() {
                    // Exactly what a flush into this leaf would produce.
                    leaf.apply(pending);
                }
                self.item = Some(Item::Entries(Entries {
                    entries: leaf.entries,
                    at: 0,
                    high: subtree.fences.high,
                }));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The joint descent

/// A page both versions share at the same place, opened once, with each side's messages
/// from above it for its range (the page's own journal is added per child, once).
struct JointFrame {
    node: Expanded,
    old: Buffer,
    new: Buffer,
    /// The keys whose point messages differ between `old` and `new`, in order, when
    /// their range messages are the same: only the children holding one can differ, so
    /// the descent goes straight to them (a wide branch has hundreds of children, a
    /// small change touches a few). `None`: ranges differ, every child is looked at.
    differing: Option<VecDeque<Key>>,
}

/// A key whose value may differ: the stored value on each side (`None`: absent).
struct Candidate {
    key: Vec<u8>,
    old: Option<ValueStored>,
    new: Option<ValueStored>,
}

/// A candidate, unless the two sides certainly hold the same value.
fn candidate(key: &[u8], old: Option<ValueStored>, new: Option<ValueStored>) -> Option<Candidate> {
    let same = match (&old, &new) {
        (None, None) => true,
        (Some(old), Some(new)) => same_stored(old, new),
        _ => false,
    };
    (!same).then(|| Candidate {
        key: key.to_vec(),
        old,
        new,
    })
}

/// What one side's messages say about a key.
enum Verdict {
    Put(ValueStored),
    Deleted,
    /// Nothing: the subtree below decides.
    Below,
}

/// The verdict of `point` (the side's point message about the key, if any) given
/// `covering`, the newest range message over the key (0: none); as a leaf applies them.
fn verdict(point: Option<&PointMessage>, covering: u64) -> Verdict {
    match point {
        Some(point) if point.seq > covering => match &point.op {
            PointOp::Put(value) => Verdict::Put(value.clone()),
            PointOp::Delete => Verdict::Deleted,
        },
        Some(_) => Verdict::Deleted,
        None if covering > 0 => Verdict::Deleted,
        None => Verdict::Below,
    }
}

/// Compares one subtree seen under two sets of messages (`old` and `new`, each the
/// newest of everything above the subtree for its range). Only keys the two sets treat
/// differently can differ: those with a point message on either side (unless the same
/// message is on both), and, where the range messages differ, the keys one side's ranges
/// delete and the other's do not. Messages above a subtree are newer than anything in it
/// (Invariant M, which point reads rely on too), so a key they decide on both sides
/// needs nothing from below.
///
/// `base` is the subtree's entries when it is a leaf that was read. Without it, returns
/// the candidates if the messages decide every such key on both sides, and `None` if
/// some key needs the subtree (then it must be read). With it, always the candidates, in
/// key order.
fn compare_overlays(old: &Buffer, new: &Buffer, base: Option<&[Entry]>) -> Option<Vec<Candidate>> {
    let entries = base.map(Base::Entries);
    compare_over(old, new, entries.as_ref()).expect("looking up copied entries cannot fail")
}

/// A leaf read to settle the keys the messages leave to it: its entries copied out
/// (needed to find what differing range deletes remove), or the page itself, searched
/// key by key, when the ranges are the same and only point keys matter (a leaf holds a
/// hundred entries or more; a diff asks it about a few).
enum Base<'a> {
    Entries(&'a [Entry]),
    Page(&'a LeafView<'static>),
}

impl Base<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<ValueStored>> {
        match self {
            Base::Entries(entries) => Ok(entries
                .binary_search_by(|entry| entry.key.as_slice().cmp(key))
                .ok()
                .map(|index| entries[index].value.clone())),
            Base::Page(page) => page.get(key),
        }
    }
}

/// [`compare_overlays`] over a leaf given either way; a page that fails a lookup is an
/// error.
fn compare_over(
    old: &Buffer,
    new: &Buffer,
    base: Option<&Base<'_>>,
) -> Result<Option<Vec<Candidate>>> {
    let ranges_differ = !same_ranges(&old.ranges, &new.ranges);
    if ranges_differ && !matches!(base, Some(Base::Entries(_))) {
        // Some key below may be deleted on one side only; only the subtree's entries
        // say which keys it has. (Conservative: differently cut ranges that cover the
        // same keys also land here, and cost a read, never a wrong answer.)
        return Ok(None);
    }
    let failure = std::cell::RefCell::new(None);
    let lookup = |key: &[u8]| -> Option<ValueStored> {
        match base?.get(key) {
            Ok(value) => value,
            Err(error) => {
                failure.borrow_mut().get_or_insert(error);
                None
            }
        }
    };
    let found = compare_points(old, new, base.is_some(), lookup);
    if let Some(error) = failure.into_inner() {
        return Err(error);
    }
    let Some(mut found) = found else {
        return Ok(None);
    };
    let entries = match base {
        Some(Base::Entries(entries)) => Some(*entries),
        _ => None,
    };
    compare_ranges(old, new, entries.filter(|_| ranges_differ), &mut found);
    Ok(Some(found))
}

/// The candidates among keys with point messages; `None` if one needs the subtree and
/// none was read (`has_base` false).
fn compare_points(
    old: &Buffer,
    new: &Buffer,
    has_base: bool,
    lookup: impl Fn(&[u8]) -> Option<ValueStored>,
) -> Option<Vec<Candidate>> {
    let mut found = Vec::new();
    // Keys with point messages: the two maps merged in key order.
    let mut old_sweep = RangeSweep::new(&old.ranges);
    let mut new_sweep = RangeSweep::new(&new.ranges);
    let mut old_points = old.points.iter().peekable();
    let mut new_points = new.points.iter().peekable();
    loop {
        let (key, old_point, new_point) = match (old_points.peek(), new_points.peek()) {
            (None, None) => break,
            (Some((a, _)), Some((b, _))) if a == b => {
                let (key, a) = old_points.next().expect("peeked");
                let (_, b) = new_points.next().expect("peeked");
                (key, Some(a), Some(b))
            }
            (Some((a, _)), Some((b, _))) if a < b => {
                let (key, a) = old_points.next().expect("peeked");
                (key, Some(a), None)
            }
            (Some(_), None) => {
                let (key, a) = old_points.next().expect("peeked");
                (key, Some(a), None)
            }
            (_, Some(_)) => {
                let (key, b) = new_points.next().expect("peeked");
                (key, None, Some(b))
            }
        };
        if let (Some(a), Some(b)) = (old_point, new_point)
            && same_point(a, b)
        {
            // The same message on both sides: the same verdict (a buffer never keeps a
            // point under a newer range).
            continue;
        }
        let old_verdict = verdict(old_point, old_sweep.covering_seq(key));
        let new_verdict = verdict(new_point, new_sweep.covering_seq(key));
        let resolve = |verdict: Verdict| -> Option<Option<ValueStored>> {
            match verdict {
                Verdict::Put(value) => Some(Some(value)),
                Verdict::Deleted => Some(None),
                Verdict::Below => has_base.then(|| lookup(key)),
            }
        };
        if matches!(
            (&old_verdict, &new_verdict),
            (Verdict::Below, Verdict::Below)
        ) {
            continue; // both sides read the same subtree
        }
        let old_value = resolve(old_verdict)?;
        let new_value = resolve(new_verdict)?;
        found.extend(candidate(key, old_value, new_value));
    }
    Some(found)
}

/// Adds the candidates among keys without point messages that one side's ranges
/// delete and the other's do not (`entries`: the leaf's, when the ranges differ).
fn compare_ranges(
    old: &Buffer,
    new: &Buffer,
    entries: Option<&[Entry]>,
    found: &mut Vec<Candidate>,
) {
    if let Some(entries) = entries {
        let mut old_sweep = RangeSweep::new(&old.ranges);
        let mut new_sweep = RangeSweep::new(&new.ranges);
        for entry in entries {
            if old.points.contains_key(&entry.key) || new.points.contains_key(&entry.key) {
                continue;
            }
            let old_deleted = old_sweep.covering_seq(&entry.key) > 0;
            let new_deleted = new_sweep.covering_seq(&entry.key) > 0;
            if old_deleted != new_deleted {
                let value = Some(entry.value.clone());
                let (old_value, new_value) = if old_deleted {
                    (None, value)
                } else {
                    (value, None)
                };
                found.extend(candidate(&entry.key, old_value, new_value));
            }
        }
        // The two passes each ran in key order over disjoint keys.
        found.sort_by(|a, b| a.key.cmp(&b.key));
    }
}

// ---------------------------------------------------------------------------------------
// Equality of pages, messages and stored values, without loading anything

fn same_page(a: StoredRef, b: StoredRef) -> bool {
    a.page == b.page && a.checksum == b.checksum
}

/// Whether two stored values are certainly the same bytes (same inline bytes, or the
/// same overflow extent). `false` means they may differ.
fn same_stored(a: &ValueStored, b: &ValueStored) -> bool {
    match (a, b) {
        (ValueStored::Inline(a), ValueStored::Inline(b)) => a[..] == b[..],
        (ValueStored::Overflow(a), ValueStored::Overflow(b)) => a == b,
        _ => false,
    }
}

fn stored_len(value: &ValueStored) -> u64 {
    match value {
        ValueStored::Inline(bytes) => bytes.len() as u64,
        ValueStored::Overflow(reference) => reference.value_len(),
    }
}

fn same_point(a: &PointMessage, b: &PointMessage) -> bool {
    a.seq == b.seq
        && match (&a.op, &b.op) {
            (PointOp::Put(a), PointOp::Put(b)) => same_stored(a, b),
            (PointOp::Delete, PointOp::Delete) => true,
            _ => false,
        }
}

/// Whether two lists of range messages are the same set (order among equal starts
/// depends on the order they were gathered in).
fn same_ranges(a: &[RangeMessage], b: &[RangeMessage]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a == b {
        return true;
    }
    fn canonical(ranges: &[RangeMessage]) -> Vec<&RangeMessage> {
        let mut sorted: Vec<&RangeMessage> = ranges.iter().collect();
        sorted.sort_by(|x, y| {
            (&x.range.start, &x.range.end, x.seq).cmp(&(&y.range.start, &y.range.end, y.seq))
        });
        sorted
    }
    canonical(a) == canonical(b)
}

/// Whether two sets of messages are the same (so a subtree under either reads the same).
/// The keys whose point messages differ between `old` and `new` (present on one side
/// only, or not the same message), if their range messages are the same.
fn differing_points(old: &Buffer, new: &Buffer) -> Option<VecDeque<Key>> {
    if !same_ranges(&old.ranges, &new.ranges) {
        return None;
    }
    let mut differing = VecDeque::new();
    let mut old_points = old.points.iter().peekable();
    let mut new_points = new.points.iter().peekable();
    loop {
        match (old_points.peek(), new_points.peek()) {
            (None, None) => return Some(differing),
            (Some((a, message_a)), Some((b, message_b))) if a == b => {
                if !same_point(message_a, message_b) {
                    differing.push_back(Key::from_slice(a));
                }
                old_points.next();
                new_points.next();
            }
            (Some((a, _)), Some((b, _))) if a < b => {
                differing.push_back(Key::from_slice(a));
                old_points.next();
            }
            (Some((a, _)), None) => {
                differing.push_back(Key::from_slice(a));
                old_points.next();
            }
            (_, Some((b, _))) => {
                differing.push_back(Key::from_slice(b));
                new_points.next();
            }
        }
    }
}

fn same_messages(a: &Buffer, b: &Buffer) -> bool {
    a.points.len() == b.points.len()
        && a.points
            .iter()
            .zip(&b.points)
            .all(|((key_a, a), (key_b, b))| key_a == key_b && same_point(a, b))
        && same_ranges(&a.ranges, &b.ranges)
}
