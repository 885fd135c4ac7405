//! `thunderhead compact`: rewrites a database into a new file holding only what is live
//! (like `mdb_copy -c`): the latest contents and every named snapshot, sharing pages as
//! the originals did (each snapshot, oldest first, is written as its difference from the
//! one before, then named). Past revisions kept only by the retention rules are not
//! copied, and revision numbers start again. The new file replaces the old one only once
//! it is complete and durable, so an interruption leaves the original untouched.

use std::path::Path;

use thunderhead_tx::{ChangeKind, Database, Diff, Version};

use crate::{Failure, TREE};

/// A key and its new value (`None`: removed).
type KeyChange = (Vec<u8>, Option<Vec<u8>>);

/// Changes applied per transaction, so memory stays bounded whatever the size.
const BATCH_CHANGES: usize = 100_000;

/// Compacts the database at `path`; returns (bytes before, bytes after).
pub fn compact(path: &Path) -> Result<(u64, u64), Failure> {
    let before = std::fs::metadata(path)?.len();
    let target = path.with_extension("compacting");
    let _ = std::fs::remove_file(&target);
    {
        let source = crate::open(path)?;
        let copy = Database::create(&target, crate::options())?;
        let mut snapshots = source.snapshots();
        snapshots.sort_by_key(|snapshot| snapshot.revision);
        let mut previous: Option<Version> = None;
        for snapshot in &snapshots {
            let version = Version::Snapshot(snapshot.name.clone());
            copy_changes(&source, &copy, previous.clone(), version.clone())?;
            copy.snapshot(&snapshot.name)?;
            previous = Some(version);
        }
        copy_changes(&source, &copy, previous, Version::Latest)?;
        copy.check()?;
        copy.sync()?;
    }
    std::fs::rename(&target, path)?;
    let after = std::fs::metadata(path)?.len();
    Ok((before, after))
}

/// Applies to `copy` the changes of `source` from `from` (nothing: empty) to `to`.
fn copy_changes(
    source: &Database,
    copy: &Database,
    from: Option<Version>,
    to: Version,
) -> Result<(), Failure> {
    let changes: Box<dyn Iterator<Item = thunderhead_tx::Result<KeyChange>>> = match from {
        Some(from) => {
            let diff: Diff = source.diff_tree(from, to, TREE)?;
            Box::new(diff.map(|change| {
                change.map(|change| {
                    let value = match change.kind {
                        ChangeKind::Added(new) | ChangeKind::Updated { new, .. } => {
                            Some(new.to_vec())
                        }
                        ChangeKind::Removed(_) => None,
                    };
                    (change.key, value)
                })
            }))
        }
        None => {
            let read = match to {
                Version::Snapshot(name) => source.begin_read_at_snapshot(&name)?,
                _ => source.begin_read(),
            };
            Box::new(Entries::new(read))
        }
    };
    let mut txn = copy.begin_write()?;
    txn.open_tree(TREE)?;
    let mut in_batch = 0;
    let progress = crate::progress::counter("changes copied");
    for change in changes {
        progress.inc(1);
        let (key, value) = change?;
        {
            let tree = txn.open_tree(TREE)?;
            match value {
                Some(value) => tree.insert(&key, &value)?,
                None => {
                    tree.remove(&key)?;
                }
            }
        }
        in_batch += 1;
        if in_batch == BATCH_CHANGES {
            txn.commit()?;
            txn = copy.begin_write()?;
            in_batch = 0;
        }
    }
    txn.commit()?;
    progress.finish_and_clear();
    Ok(())
}

/// Every entry of the tool's tree in one version, read in batches (so the iterator owns
/// its transaction).
struct Entries {
    read: thunderhead_tx::ReadTransaction,
    after: Option<Vec<u8>>,
    batch: std::collections::VecDeque<KeyChange>,
    done: bool,
}

impl Entries {
    fn new(read: thunderhead_tx::ReadTransaction) -> Self {
        Self {
            read,
            after: None,
            batch: Default::default(),
            done: false,
        }
    }

    fn refill(&mut self) -> thunderhead_tx::Result<()> {
        let tree = match self.read.open_tree(TREE) {
            Ok(tree) => tree,
            Err(thunderhead_tx::Error::TreeNotFound { .. }) => {
                self.done = true;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        use std::ops::Bound;
        let start = match &self.after {
            Some(after) => Bound::Excluded(after.as_slice()),
            None => Bound::Unbounded,
        };
        for entry in tree.range::<[u8], _>((start, Bound::Unbounded)).take(1024) {
            let (key, value) = entry?;
            self.batch.push_back((key, Some(value.to_vec())));
        }
        self.done = self.batch.len() < 1024;
        self.after = self.batch.back().map(|(key, _)| key.clone());
        Ok(())
    }
}

impl Iterator for Entries {
    type Item = thunderhead_tx::Result<KeyChange>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.batch.is_empty()
            && !self.done
            && let Err(error) = self.refill()
        {
            self.done = true;
            return Some(Err(error));
        }
        self.batch.pop_front().map(Ok)
    }
}
