//! The change feed: every commit after a revision, in order, with what it changed, and
//! waiting for the next commit (blocking, or as a future).
//!
//! The feed is computed from versions, not kept in a log of its own: the changes of
//! revision R are the structural diff of R − 1 and R, so its reach is the retained
//! history ([`Options::retain_revisions`](crate::Options::retain_revisions)). A
//! subscriber that falls behind it gets [`Error::RevisionPruned`](crate::Error), never a
//! silent gap.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use thunderhead_disk::PageStore;

use crate::database::Database;
use crate::diff::Diff;
use crate::error::Result;
use crate::read::ReadTransaction;
use crate::store::Store;

/// A future that resolves to the latest revision once one after a given revision is
/// committed ([`Database::commit_after`]).
pub struct CommitAfter<S: PageStore + 'static = Store> {
    db: Database<S>,
    after: u64,
}

impl<S: PageStore + 'static> Future for CommitAfter<S> {
    type Output = u64;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<u64> {
        self.db.inner.commits.poll(self.after, context)
    }
}

/// One commit of the change feed: its revision, when it was made, and what it changed
/// (a lazy [`Diff`] of the revision before and this one).
pub struct CommitChanges<S: PageStore + 'static = Store> {
    /// The commit's revision.
    pub revision: u64,
    /// When it was committed.
    pub time: SystemTime,
    /// What it changed, tree by tree, in key order.
    pub changes: Diff<S>,
}

/// The commits after a revision, in order, each with its changes
/// ([`Database::changes_since`]). It ends at the latest commit; calling `next` again
/// later goes on with the commits made since (wait for them with
/// [`Database::wait_for_commit`] or [`Database::commit_after`]).
pub struct ChangeFeed<S: PageStore + 'static = Store> {
    db: Database<S>,
    /// The last revision yielded (or the starting point), still pinned.
    position: ReadTransaction<S>,
    failed: bool,
}

impl<S: PageStore + 'static> ChangeFeed<S> {
    /// The last revision yielded (at first, the one the feed started after).
    pub fn position(&self) -> u64 {
        self.position.revision()
    }
}

impl<S: PageStore + 'static> Iterator for ChangeFeed<S> {
    type Item = Result<CommitChanges<S>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let revision = self.position.revision() + 1;
        if revision > self.db.revision() {
            return None;
        }
        let next = match self.db.begin_read_at(revision) {
            Ok(next) => next,
            Err(error) => {
                self.failed = true;
                return Some(Err(error));
            }
        };
        let previous = std::mem::replace(&mut self.position, next.clone());
        let time = next.time();
        Some(Ok(CommitChanges {
            revision,
            time,
            changes: Diff::new(previous, next, None),
        }))
    }
}

impl<S: PageStore + 'static> Database<S> {
    /// Every commit after `revision`, in order, with what each changed. `revision` must
    /// be readable (retained, or kept by a snapshot): replaying the feed from it onto
    /// its contents gives every later revision.
    ///
    /// ```
    /// use thunderhead_tx::{ChangeKind, Database, Options, Retention};
    ///
    /// let options = Options { retain_revisions: Retention::revisions(100), ..Options::default() };
    /// let db = Database::in_memory(options)?;
    /// for (key, value) in [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")] {
    ///     let txn = db.begin_write()?;
    ///     txn.open_tree(b"t")?.insert(key, value)?;
    ///     txn.commit()?;
    /// }
    /// let mut seen = Vec::new();
    /// for commit in db.changes_since(1)? {
    ///     let commit = commit?;
    ///     for change in commit.changes {
    ///         let change = change?;
    ///         let new = match change.kind {
    ///             ChangeKind::Added(new) | ChangeKind::Updated { new, .. } => new.to_vec(),
    ///             ChangeKind::Removed(_) => Vec::new(),
    ///         };
    ///         seen.push((commit.revision, change.key, new));
    ///     }
    /// }
    /// assert_eq!(seen, vec![(2, b"b".to_vec(), b"2".to_vec()), (3, b"a".to_vec(), b"3".to_vec())]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn changes_since(&self, revision: u64) -> Result<ChangeFeed<S>> {
        Ok(ChangeFeed {
            db: self.clone(),
            position: self.begin_read_at(revision)?,
            failed: false,
        })
    }

    /// Blocks until a revision after `after` is committed and returns the latest one,
    /// or `None` if `timeout` passes first.
    ///
    /// ```
    /// use std::time::Duration;
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// assert_eq!(db.wait_for_commit(0, Duration::from_millis(10)), None);
    /// let writer = {
    ///     let db = db.clone();
    ///     std::thread::spawn(move || {
    ///         let txn = db.begin_write().unwrap();
    ///         txn.open_tree(b"t").unwrap().insert(b"k", b"v").unwrap();
    ///         txn.commit().unwrap()
    ///     })
    /// };
    /// assert_eq!(db.wait_for_commit(0, Duration::from_secs(60)), Some(1));
    /// writer.join().unwrap();
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn wait_for_commit(&self, after: u64, timeout: Duration) -> Option<u64> {
        self.inner.commits.wait(after, timeout)
    }

    /// A future resolving to the latest revision once one after `after` is committed:
    /// [`Database::wait_for_commit`] for async code (any executor).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let next = db.commit_after(db.revision());
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// assert_eq!(futures::executor::block_on(next), 1);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn commit_after(&self, after: u64) -> CommitAfter<S> {
        CommitAfter {
            db: self.clone(),
            after,
        }
    }
}
