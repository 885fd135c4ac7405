//! What changed between two versions of a database: a lazy iterator over the trees of
//! both, in name order, and within each tree over the keys whose values differ, in key
//! order.
//!
//! A tree in both versions is compared structurally (the core's `Diff`): subtrees the
//! two share are skipped unread, and pages a journal flush rewrote without changing
//! anything yield nothing, so the cost follows the change, not the database. A tree in
//! one version only is all added or all removed.

use std::collections::VecDeque;
use std::ops::Bound;

use thunderhead_core::{ChangeKind, Snapshot, ValueBytes};
use thunderhead_disk::PageStore;

use crate::database::{Database, check_tree_name};
use crate::error::Result;
use crate::read::ReadTransaction;
use crate::store::Store;
use crate::versions::Version;

/// One key whose value differs between the two versions of a [`Diff`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The tree.
    pub tree: Vec<u8>,
    /// The key.
    pub key: Vec<u8>,
    /// How it changed: added, removed, or updated (with the old and new values).
    pub kind: ChangeKind,
}

/// The changes from one version of a database to another ([`Database::diff`],
/// [`ReadTransaction::diff`]): items are `Result`s, in tree-name order and key order
/// within a tree. It reads lazily and holds both versions readable while it lives.
pub struct Diff<S: PageStore + 'static = Store> {
    old: ReadTransaction<S>,
    new: ReadTransaction<S>,
    /// The trees still to compare (learnt on the first call, so making a diff is free).
    trees: Option<VecDeque<Vec<u8>>>,
    only: Option<Vec<u8>>,
    current: Option<(Vec<u8>, Source<S>)>,
    /// Pages read by the tree comparisons already finished.
    pages_read: u64,
    failed: bool,
}

/// Where the current tree's changes come from.
enum Source<S: PageStore> {
    Compared(Box<thunderhead_core::Diff<S>>),
    Added(Scan<S>),
    Removed(Scan<S>),
}

/// Every entry of a tree, read a batch at a time (so the scan owns its snapshot).
struct Scan<S: PageStore> {
    snapshot: Snapshot<S>,
    after: Option<Vec<u8>>,
    batch: VecDeque<(Vec<u8>, ValueBytes)>,
    done: bool,
}

const SCAN_BATCH_ENTRIES: usize = 256;

impl<S: PageStore> Scan<S> {
    fn new(snapshot: Snapshot<S>) -> Self {
        Self {
            snapshot,
            after: None,
            batch: VecDeque::new(),
            done: false,
        }
    }

    fn next(&mut self) -> Option<Result<(Vec<u8>, ValueBytes)>> {
        if self.batch.is_empty() && !self.done {
            let start = match &self.after {
                Some(after) => Bound::Excluded(after.as_slice()),
                None => Bound::Unbounded,
            };
            let range = self
                .snapshot
                .range::<[u8], _>((start, Bound::Unbounded))
                .take(SCAN_BATCH_ENTRIES);
            for entry in range {
                match entry {
                    Ok(entry) => self.batch.push_back(entry),
                    Err(error) => {
                        self.done = true;
                        return Some(Err(error.into()));
                    }
                }
            }
            self.done = self.batch.len() < SCAN_BATCH_ENTRIES;
            self.after = self.batch.back().map(|(key, _)| key.clone());
        }
        self.batch.pop_front().map(Ok)
    }
}

impl<S: PageStore + 'static> Diff<S> {
    /// The changes from `old` to `new`, of one tree if `only` names it.
    pub(crate) fn new(
        old: ReadTransaction<S>,
        new: ReadTransaction<S>,
        only: Option<Vec<u8>>,
    ) -> Self {
        Self {
            old,
            new,
            trees: None,
            only,
            current: None,
            pages_read: 0,
            failed: false,
        }
    }

    /// The revision compared from.
    pub fn from_revision(&self) -> u64 {
        self.old.revision()
    }

    /// The revision compared to.
    pub fn to_revision(&self) -> u64 {
        self.new.revision()
    }

    /// Pages (nodes, journal segments, large values) the comparison has read so far:
    /// what the diff costs, next to the pages a full scan of either version reads.
    pub fn pages_read(&self) -> u64 {
        let current = match &self.current {
            Some((_, Source::Compared(diff))) => diff.pages_read(),
            _ => 0,
        };
        self.pages_read + current
    }

    fn trees(&self) -> Result<VecDeque<Vec<u8>>> {
        if let Some(name) = &self.only {
            return Ok(VecDeque::from([name.clone()]));
        }
        let mut names = self.old.reader.tree_names()?;
        names.extend(self.new.reader.tree_names()?);
        names.sort();
        names.dedup();
        // The empty name is the engine's default tree, not one of the database's.
        Ok(names.into_iter().filter(|name| !name.is_empty()).collect())
    }

    /// The source of the next tree's changes, if any tree is left.
    fn next_tree(&mut self) -> Result<Option<(Vec<u8>, Source<S>)>> {
        loop {
            let trees = match &mut self.trees {
                Some(trees) => trees,
                None => self.trees.insert(self.trees()?),
            };
            let Some(name) = trees.pop_front() else {
                return Ok(None);
            };
            let old = self.old.reader.tree(&name)?;
            let new = self.new.reader.tree(&name)?;
            let source = match (old, new) {
                (Some(old), Some(new)) => {
                    let (old, new) = (old.version(), new.version());
                    if (old.root, old.root_checksum) == (new.root, new.root_checksum) {
                        continue;
                    }
                    let pager = self.new.reader.pager().clone();
                    Source::Compared(Box::new(thunderhead_core::Diff::new(pager, old, new)))
                }
                (None, Some(new)) => Source::Added(Scan::new(new)),
                (Some(old), None) => Source::Removed(Scan::new(old)),
                (None, None) => continue,
            };
            return Ok(Some((name, source)));
        }
    }
}

impl<S: PageStore + 'static> Iterator for Diff<S> {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Result<Change>> {
        while !self.failed {
            if self.current.is_none() {
                match self.next_tree() {
                    Ok(Some(current)) => self.current = Some(current),
                    Ok(None) => return None,
                    Err(error) => {
                        self.failed = true;
                        return Some(Err(error));
                    }
                }
            }
            let (tree, source) = self.current.as_mut().expect("set above");
            let item = match source {
                Source::Compared(diff) => diff.next().map(|change| {
                    change
                        .map(|change| (change.key, change.kind))
                        .map_err(Into::into)
                }),
                Source::Added(scan) => scan
                    .next()
                    .map(|entry| entry.map(|(key, value)| (key, ChangeKind::Added(value)))),
                Source::Removed(scan) => scan
                    .next()
                    .map(|entry| entry.map(|(key, value)| (key, ChangeKind::Removed(value)))),
            };
            match item {
                Some(Ok((key, kind))) => {
                    return Some(Ok(Change {
                        tree: tree.clone(),
                        key,
                        kind,
                    }));
                }
                Some(Err(error)) => {
                    self.failed = true;
                    return Some(Err(error));
                }
                None => {
                    if let Some((_, Source::Compared(diff))) = self.current.take() {
                        self.pages_read += diff.pages_read();
                    }
                }
            }
        }
        None
    }
}

impl<S: PageStore + 'static> Database<S> {
    /// What changed from version `from` to version `to` (revisions, snapshot names, or
    /// [`Version::Latest`]), over every tree. Both must be readable; the diff keeps them
    /// so while it lives.
    ///
    /// ```
    /// use thunderhead_tx::{ChangeKind, Database, Options, Retention, Version};
    ///
    /// let options = Options { retain_revisions: Retention::revisions(10), ..Options::default() };
    /// let db = Database::in_memory(options)?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// tree.insert(b"a", b"1")?;
    /// tree.insert(b"b", b"1")?;
    /// txn.commit()?;
    /// db.snapshot(b"before")?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// tree.insert(b"a", b"2")?;
    /// tree.remove(b"b")?;
    /// txn.commit()?;
    /// let changes: Vec<_> = db.diff("before", Version::Latest)?.collect::<Result<_, _>>()?;
    /// assert_eq!(changes.len(), 2);
    /// assert!(matches!(&changes[0].kind, ChangeKind::Updated { old, new } if &old[..] == b"1" && &new[..] == b"2"));
    /// assert!(matches!(&changes[1].kind, ChangeKind::Removed(old) if &old[..] == b"1"));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn diff(&self, from: impl Into<Version>, to: impl Into<Version>) -> Result<Diff<S>> {
        let old = self.begin_read_version(&from.into())?;
        let new = self.begin_read_version(&to.into())?;
        Ok(Diff::new(old, new, None))
    }

    /// [`Database::diff`] of one tree (a tree missing from a version is empty there).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options, Version};
    /// let db = Database::in_memory(Options::default())?;
    /// db.snapshot(b"empty")?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.open_tree(b"u")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// assert_eq!(db.diff_tree("empty", Version::Latest, b"u")?.count(), 1);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn diff_tree(
        &self,
        from: impl Into<Version>,
        to: impl Into<Version>,
        tree: &[u8],
    ) -> Result<Diff<S>> {
        check_tree_name(tree)?;
        let old = self.begin_read_version(&from.into())?;
        let new = self.begin_read_version(&to.into())?;
        Ok(Diff::new(old, new, Some(tree.to_vec())))
    }
}
