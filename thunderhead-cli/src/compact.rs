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
    let Some(from) = from else {
        // The first version: all of it, read straight from its tree.
        let read = match to {
            Version::Snapshot(name) => source.begin_read_at_snapshot(&name)?,
            _ => source.begin_read(),
        };
        return match read.open_tree(TREE) {
            Ok(tree) => apply_batched(
                copy,
                tree.iter()
                    .map(|entry| entry.map(|(key, value)| (key, Some(value.to_vec())))),
            ),
            Err(thunderhead_tx::Error::TreeNotFound { .. }) => {
                apply_batched(copy, std::iter::empty())
            }
            Err(error) => Err(error.into()),
        };
    };
    let diff: Diff = source.diff_tree(from, to, TREE)?;
    apply_batched(
        copy,
        diff.map(|change| {
            change.map(|change| {
                let value = match change.kind {
                    ChangeKind::Added(new) | ChangeKind::Updated { new, .. } => Some(new.to_vec()),
                    ChangeKind::Removed(_) => None,
                };
                (change.key, value)
            })
        }),
    )
}

/// Writes `changes` into `copy`'s tree, committing every [`BATCH_CHANGES`].
fn apply_batched(
    copy: &Database,
    changes: impl Iterator<Item = thunderhead_tx::Result<KeyChange>>,
) -> Result<(), Failure> {
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
