//! The tree: a writer ([`Tree`]) that changes a private, transient copy of a version
//! and commits it as a new version, and a reader ([`Snapshot`]) of any committed version.

mod bulk;
mod check;
mod cow;
mod diff;
mod flush;
mod iter;
mod journal;
mod persist;
mod reach;
mod read;
#[cfg(test)]
mod tests;
mod view;

use std::ops::RangeBounds;
use std::sync::{Arc, OnceLock};

use thunderhead_disk::{PageId, PageSlice, PageStore};

pub use bulk::BulkLoad;
pub use check::CheckReport;
pub use diff::{Change, ChangeKind, Diff};
pub use iter::Range;
pub(crate) use reach::{commit_diff, reference_counts, shared_diff, unseen_extents, verify_recent};

use crate::config::VALUE_BYTES_MAX;
use crate::error::{Error, Result};
use crate::key::{Key, KeyRange};
use crate::node::{
    Branch, Child, Fences, Leaf, Node, NodeRef, PointMessage, PointOp, RangeMessage, StoredRef,
};
use crate::pager::{LoadedNode, Pager};
use crate::value::{ValueBytes, ValueStore, ValueStored};

use cow::{make_transient, transient_mut};
use flush::{drain, fix_children, overflows, split_node};
use journal::take_for_child;
use view::{borrowed_view, view};

/// A committed version of a tree: its root page and the last sequence number used.
/// Holding a version (and not freeing its pages) keeps it readable; versions are
/// immutable, so reading one always gives the same answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// The root node's page.
    pub root: PageId,
    /// The root page's checksum, verified when the root is read.
    pub root_checksum: u32,
    /// Sequence number of the last message in this version.
    pub seq: u64,
    /// The revision (for a bare tree, the sequence number) whose commit wrote the root
    /// page; 0 when unknown.
    pub birth: u64,
}

/// A writer's working copy of a tree. Changes go into the root's journal and reach the
/// leaves in batches; [`Tree::commit`] writes the changed nodes and returns the new
/// [`Version`]. Reads through the writer see its own uncommitted writes.
///
/// ```
/// use std::sync::Arc;
/// use thunderhead_core::{Pager, Snapshot, Tree, TreeConfig};
/// use thunderhead_disk::MemStore;
///
/// let pager = Arc::new(Pager::new(MemStore::new(4096)?, &TreeConfig::default())?);
/// let mut tree = Tree::new(pager.clone());
/// tree.put(b"apple", b"red")?;
/// let first = tree.commit()?;
/// tree.put(b"apple", b"green")?;
/// tree.commit()?;
/// let old = Snapshot::new(pager, first);
/// assert_eq!(old.get(b"apple")?.as_deref(), Some(&b"red"[..]));
/// # Ok::<(), thunderhead_core::Error>(())
/// ```
pub struct Tree<S: PageStore> {
    pager: Arc<Pager<S>>,
    root: NodeRef,
    seq: u64,
    /// Set when an operation failed part-way: the transient nodes may then be
    /// inconsistent, so the writer refuses further work (committed versions are intact).
    poisoned: bool,
    /// The revision a store's writer writes this tree's nodes as (`None`: a bare tree,
    /// whose commits are marked with their sequence number).
    birth: Option<u64>,
}

impl<S: PageStore> Tree<S> {
    /// An empty tree.
    pub fn new(pager: Arc<Pager<S>>) -> Self {
        Self {
            pager,
            root: NodeRef::Transient(Box::new(Node::Leaf(Leaf::default()))),
            seq: 0,
            poisoned: false,
            birth: None,
        }
    }

    /// A writer continuing from `version`.
    pub fn open(pager: Arc<Pager<S>>, version: Version) -> Self {
        let root = NodeRef::Stored(version.root_ref());
        Self {
            pager,
            root,
            seq: version.seq,
            poisoned: false,
            birth: None,
        }
    }

    /// Marks this tree as written by a store's writer of revision `birth`.
    pub(crate) fn with_birth(mut self, birth: u64) -> Self {
        self.birth = Some(birth);
        self
    }

    /// The birth of what this writer writes: its store revision, or for a bare tree the
    /// sequence number.
    fn write_birth(&self) -> u64 {
        self.birth.unwrap_or(self.seq)
    }

    /// Writes every changed node out now (part of the commit to come), so a large
    /// change's memory stays bounded; the tree goes on from what was written. In a
    /// store's writer, nodes written out and changed again are freed as they are
    /// superseded.
    pub fn write_out(&mut self) -> Result<()> {
        self.commit_as(self.birth.unwrap_or(self.seq)).map(|_| ())
    }

    /// The pager this tree reads and writes through.
    pub fn pager(&self) -> &Arc<Pager<S>> {
        &self.pager
    }

    /// Sequence number of the last change.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether there are changes not yet committed.
    pub fn is_dirty(&self) -> bool {
        matches!(self.root, NodeRef::Transient(_))
    }

    /// The value of `key`, seeing this writer's uncommitted changes.
    pub fn get(&self, key: &[u8]) -> Result<Option<ValueBytes>> {
        read::get(&self.pager, view(&self.pager, &self.root)?, key)
    }

    /// The entries with keys in `range`, in key order (`.rev()` for reverse order).
    pub fn range<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(&self, range: R) -> Range<'_, S> {
        Range::new(&self.pager, &self.root, key_range(&range))
    }

    /// All entries in key order.
    pub fn iter(&self) -> Range<'_, S> {
        Range::new(
            &self.pager,
            &self.root,
            KeyRange {
                start: Vec::new(),
                end: None,
            },
        )
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_key(key)?;
        let stored = self.stored_value(key, value)?;
        self.write_point(key, PointOp::Put(stored))
    }

    /// `value` as `key`'s entry holds it: inline, or written off-tree when the two
    /// together are too big for a leaf to hold many of.
    fn stored_value(&self, key: &[u8], value: &[u8]) -> Result<ValueStored> {
        if value.len() > VALUE_BYTES_MAX {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: VALUE_BYTES_MAX,
            });
        }
        Ok(
            if key.len() + value.len() > self.pager.limits().entry_inline_bytes_max {
                ValueStored::Overflow(self.pager.put_value(value, self.write_birth())?)
            } else {
                ValueStored::Inline(PageSlice::copy_from_slice(value))
            },
        )
    }

    /// Removes `key` (nothing happens if it is absent).
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.check_key(key)?;
        self.write_point(key, PointOp::Delete)
    }

    /// Removes every key in `range` with one message, whatever the number of keys.
    pub fn delete_range<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(
        &mut self,
        range: R,
    ) -> Result<()> {
        let range = key_range(&range);
        for bound in std::iter::once(&range.start).chain(range.end.as_ref()) {
            // A bound may be one byte past a maximal key (the successor of an inclusive end).
            if bound.len() > self.pager.limits().key_bytes_max + 1 {
                return Err(Error::KeyTooLarge {
                    len: bound.len(),
                    max: self.pager.limits().key_bytes_max,
                });
            }
        }
        if range.is_empty() {
            return Ok(());
        }
        self.guarded(|tree| {
            tree.seq += 1;
            let message = RangeMessage {
                seq: tree.seq,
                range,
            };
            let pager = tree.pager.clone();
            match make_transient(&pager, &mut tree.root, &Fences::default(), None)? {
                Node::Leaf(leaf) => {
                    let mut batch = crate::node::Buffer::default();
                    batch.insert_range(message);
                    leaf.apply(batch);
                }
                Node::Branch(branch) => {
                    branch.add_range(message);
                    drain(&pager, branch, &Fences::default())?;
                }
            }
            tree.fix_root()
        })
    }

    /// Writes every transient node and returns the new version. The writer continues
    /// from it; unchanged subtrees are shared with earlier versions, not copied.
    pub fn commit(&mut self) -> Result<Version> {
        self.commit_as(self.seq)
    }

    /// [`Tree::commit`], marking every node written with `birth` (a store's revision).
    pub(crate) fn commit_as(&mut self, birth: u64) -> Result<Version> {
        self.guarded(|tree| {
            let pager = tree.pager.clone();
            if matches!(tree.root, NodeRef::Transient(_)) {
                persist::settle(&pager, &mut tree.root, &Fences::default())?;
                tree.fix_root()?;
            }
            let stored = persist::persist(&pager, &mut tree.root, &Fences::default(), birth)?;
            Ok(Version {
                root: stored.page,
                root_checksum: stored.checksum,
                seq: tree.seq,
                birth: stored.birth,
            })
        })
    }

    /// Verifies every structural invariant of the tree, uncommitted nodes included.
    pub fn check(&self) -> Result<CheckReport> {
        check::check_tree(&self.pager, &self.root, self.seq)
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        let max = self.pager.limits().key_bytes_max;
        if key.len() > max {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max,
            });
        }
        Ok(())
    }

    fn guarded<T>(&mut self, operation: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.poisoned {
            return Err(Error::WriterPoisoned);
        }
        let result = operation(self);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn write_point(&mut self, key: &[u8], op: PointOp) -> Result<()> {
        self.guarded(|tree| {
            tree.seq += 1;
            let message = PointMessage { seq: tree.seq, op };
            let pager = tree.pager.clone();
            match make_transient(&pager, &mut tree.root, &Fences::default(), None)? {
                Node::Leaf(leaf) => {
                    let mut batch = crate::node::Buffer::default();
                    batch.points.insert(Key::from_slice(key), message);
                    leaf.apply(batch);
                }
                Node::Branch(branch) => {
                    branch.add_point(Key::from_slice(key), message);
                    drain(&pager, branch, &Fences::default())?;
                }
            }
            tree.fix_root()
        })
    }

    /// Restores the root's invariants: an overflowing root splits under a new root; a
    /// branch root left with one child hands it its journal and steps aside.
    fn fix_root(&mut self) -> Result<()> {
        let pager = self.pager.clone();
        let limits = *pager.limits();
        let unbounded = Fences::default();
        loop {
            let root = transient_mut(&mut self.root);
            if overflows(&limits, root, &unbounded) {
                let level = root.level() + 1;
                let old = std::mem::replace(root, Node::Leaf(Leaf::default()));
                let (pieces, pivots) = split_node(&pager, &limits, old)?;
                let watermark = self.seq;
                let children = pieces
                    .into_iter()
                    .map(|piece| Child {
                        node: NodeRef::Transient(Box::new(piece)),
                        watermark,
                        pending_bytes: 0,
                    })
                    .collect();
                let mut branch = Branch {
                    level,
                    pivots,
                    children,
                    buffer: Default::default(),
                    segments: Vec::new(),
                    seq_high: self.seq,
                };
                fix_children(&pager, &mut branch, &unbounded)?;
                *root = Node::Branch(branch);
                continue;
            }
            let Node::Branch(branch) = root else {
                return Ok(());
            };
            if branch.children.len() > 1 {
                return Ok(());
            }
            let batch = take_for_child(&pager, branch, 0)?;
            let mut child = std::mem::replace(
                &mut branch.children[0].node,
                NodeRef::Transient(Box::default()),
            );
            let child_node =
                make_transient(&pager, &mut child, &unbounded, Some(branch.level - 1))?;
            match child_node {
                Node::Leaf(leaf) => leaf.apply(batch),
                Node::Branch(child_branch) => {
                    child_branch.absorb(batch);
                    drain(&pager, child_branch, &unbounded)?;
                }
            }
            self.root = child;
        }
    }
}

impl Version {
    /// The root as a parent would point to it.
    pub(crate) fn root_ref(&self) -> StoredRef {
        StoredRef {
            page: self.root,
            checksum: self.root_checksum,
            birth: self.birth,
        }
    }
}

impl Default for Node {
    fn default() -> Self {
        Node::Leaf(Leaf::default())
    }
}

/// A reader of one committed version.
pub struct Snapshot<S: PageStore> {
    pager: Arc<Pager<S>>,
    root: NodeRef,
    version: Version,
    /// The root's view, loaded by the first read and held from then on (the version's
    /// pages stay put while the snapshot lives), so that reads start from it without a
    /// cache lookup and share it by borrowing.
    root_view: OnceLock<LoadedNode>,
}

impl<S: PageStore> Snapshot<S> {
    /// Opens `version` for reading.
    pub fn new(pager: Arc<Pager<S>>, version: Version) -> Self {
        let root = NodeRef::Stored(version.root_ref());
        Self {
            pager,
            root,
            version,
            root_view: OnceLock::new(),
        }
    }

    fn root_view(&self) -> Result<&LoadedNode> {
        if let Some(loaded) = self.root_view.get() {
            return Ok(loaded);
        }
        let loaded = self.pager.load_node(self.version.root_ref())?;
        Ok(self.root_view.get_or_init(|| loaded))
    }

    /// The version read.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The pager this snapshot reads through.
    pub fn pager(&self) -> &Arc<Pager<S>> {
        &self.pager
    }

    /// The value of `key` in this version.
    pub fn get(&self, key: &[u8]) -> Result<Option<ValueBytes>> {
        read::get(&self.pager, borrowed_view(self.root_view()?), key)
    }

    /// The entries with keys in `range`, in key order (`.rev()` for reverse order).
    pub fn range<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(&self, range: R) -> Range<'_, S> {
        Range::new(&self.pager, &self.root, key_range(&range)).with_root(self.root_view())
    }

    /// All entries in key order.
    pub fn iter(&self) -> Range<'_, S> {
        Range::new(
            &self.pager,
            &self.root,
            KeyRange {
                start: Vec::new(),
                end: None,
            },
        )
        .with_root(self.root_view())
    }

    /// Verifies every structural invariant of this version and every checksum in it.
    pub fn check(&self) -> Result<CheckReport> {
        check::check_tree(&self.pager, &self.root, self.version.seq)
    }
}

fn key_range<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(range: &R) -> KeyRange {
    fn as_bytes<K: AsRef<[u8]> + ?Sized>(bound: std::ops::Bound<&K>) -> std::ops::Bound<&[u8]> {
        bound.map(|key| key.as_ref())
    }
    KeyRange::from_bounds(as_bytes(range.start_bound()), as_bytes(range.end_bound()))
}
