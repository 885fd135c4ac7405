//! Past versions of a database: reading at a revision or a named snapshot, the named
//! snapshots themselves, and the retained history.
//!
//! Every commit has a revision and a commit time. Which past revisions stay readable is
//! [`Options::retain_revisions`](crate::Options::retain_revisions); a named snapshot
//! keeps its revision until it is dropped, across reopens and crashes. Keeping a version
//! copies nothing: its pages are simply not reused while it is kept.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thunderhead_disk::PageStore;

use crate::database::{Database, Request};
use crate::error::Result;
use crate::read::ReadTransaction;

/// A version of the database to read or compare: a revision, a named snapshot, or the
/// latest commit. Revisions convert from `u64`, snapshot names from strings and bytes.
///
/// ```
/// use thunderhead_tx::Version;
///
/// assert_eq!(Version::from(7), Version::Revision(7));
/// assert_eq!(Version::from("nightly"), Version::Snapshot(b"nightly".to_vec()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// A committed revision.
    Revision(u64),
    /// The revision a named snapshot keeps.
    Snapshot(Vec<u8>),
    /// The latest commit.
    Latest,
}

impl From<u64> for Version {
    fn from(revision: u64) -> Self {
        Version::Revision(revision)
    }
}

impl From<&str> for Version {
    fn from(name: &str) -> Self {
        Version::Snapshot(name.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Version {
    fn from(name: &[u8]) -> Self {
        Version::Snapshot(name.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Version {
    fn from(name: &[u8; N]) -> Self {
        Version::Snapshot(name.to_vec())
    }
}

/// A named snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its name.
    pub name: Vec<u8>,
    /// The revision it keeps.
    pub revision: u64,
    /// When that revision was committed.
    pub time: SystemTime,
}

/// A readable revision and when it was committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The revision.
    pub revision: u64,
    /// When it was committed.
    pub time: SystemTime,
}

/// A commit time as the engine records it (microseconds since the epoch).
pub(crate) fn system_time(micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros)
}

impl<S: PageStore + 'static> Database<S> {
    /// A read transaction of a past (or the latest) revision. It keeps the revision
    /// readable while it lives, even once the retention rules let it go.
    /// [`Error::RevisionPruned`](crate::Error::RevisionPruned) if it is no longer
    /// retained, [`Error::RevisionNotFound`](crate::Error::RevisionNotFound) if it is yet
    /// to come.
    ///
    /// ```
    /// use thunderhead_tx::{Database, Options, Retention};
    ///
    /// let options = Options { retain_revisions: Retention::revisions(10), ..Options::default() };
    /// let db = Database::in_memory(options)?;
    /// for value in [&b"red"[..], b"blue"] {
    ///     let txn = db.begin_write()?;
    ///     txn.open_tree(b"sky")?.insert(b"color", value)?;
    ///     txn.commit()?;
    /// }
    /// let first = db.begin_read_at(1)?;
    /// assert_eq!(first.open_tree(b"sky")?.get(b"color")?.as_deref(), Some(&b"red"[..]));
    /// assert_eq!(db.begin_read_at(2)?.open_tree(b"sky")?.get(b"color")?.as_deref(), Some(&b"blue"[..]));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn begin_read_at(&self, revision: u64) -> Result<ReadTransaction<S>> {
        Ok(ReadTransaction {
            reader: self.inner.engine.begin_read_at(revision)?,
        })
    }

    /// A read transaction of the revision the named snapshot keeps.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"before")?;
    /// txn.commit()?;
    /// db.snapshot(b"release-1")?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"after")?;
    /// txn.commit()?;
    /// let then = db.begin_read_at_snapshot(b"release-1")?;
    /// assert_eq!(then.open_tree(b"t")?.get(b"k")?.as_deref(), Some(&b"before"[..]));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn begin_read_at_snapshot(&self, name: &[u8]) -> Result<ReadTransaction<S>> {
        Ok(ReadTransaction {
            reader: self.inner.engine.begin_read_snapshot(name)?,
        })
    }

    /// A read transaction of `version`.
    pub(crate) fn begin_read_version(&self, version: &Version) -> Result<ReadTransaction<S>> {
        match version {
            Version::Revision(revision) => self.begin_read_at(*revision),
            Version::Snapshot(name) => self.begin_read_at_snapshot(name),
            Version::Latest => Ok(self.begin_read()),
        }
    }

    /// Names the latest committed revision as a snapshot, durably: it stays readable,
    /// across reopens and crashes, until [`Database::drop_snapshot`]. Constant time
    /// whatever the size of the database: it copies no page (one small commit records
    /// the name). Returns the revision kept. Names are 1 to 255 bytes.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// let revision = txn.commit()?;
    /// assert_eq!(db.snapshot(b"v1")?, revision);
    /// assert_eq!(db.snapshots()[0].revision, revision);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn snapshot(&self, name: &[u8]) -> Result<u64> {
        self.submit(Request::Snapshot {
            name: name.to_vec(),
            create: true,
        })
    }

    /// Drops the named snapshot: the pages only it kept are reused by later commits.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// db.snapshot(b"v1")?;
    /// db.drop_snapshot(b"v1")?;
    /// assert!(db.snapshots().is_empty());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn drop_snapshot(&self, name: &[u8]) -> Result<()> {
        self.submit(Request::Snapshot {
            name: name.to_vec(),
            create: false,
        })
        .map(|_| ())
    }

    /// Every named snapshot, by name.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// db.snapshot(b"b")?;
    /// db.snapshot(b"a")?;
    /// let names: Vec<_> = db.snapshots().into_iter().map(|s| (s.name, s.revision)).collect();
    /// assert_eq!(names, vec![(b"a".to_vec(), 1), (b"b".to_vec(), 0)]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn snapshots(&self) -> Vec<SnapshotInfo> {
        self.inner
            .engine
            .snapshots()
            .into_iter()
            .map(|info| SnapshotInfo {
                name: info.name,
                revision: info.revision,
                time: system_time(info.time),
            })
            .collect()
    }

    /// The oldest revision [`Database::begin_read_at`] can read (snapshots aside).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options, Retention};
    /// let options = Options { retain_revisions: Retention::revisions(2), ..Options::default() };
    /// let db = Database::in_memory(options)?;
    /// for _ in 0..5 {
    ///     let txn = db.begin_write()?;
    ///     txn.open_tree(b"t")?.insert(b"k", b"v")?;
    ///     txn.commit()?;
    /// }
    /// assert_eq!((db.oldest_retained(), db.revision()), (4, 5));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn oldest_retained(&self) -> u64 {
        self.inner.engine.oldest_retained()
    }

    /// Every readable revision from [`Database::oldest_retained`] to the latest, with
    /// its commit time.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options, Retention};
    /// let options = Options { retain_revisions: Retention::all(), ..Options::default() };
    /// let db = Database::in_memory(options)?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// let history = db.history()?;
    /// assert_eq!(history.iter().map(|c| c.revision).collect::<Vec<_>>(), vec![0, 1]);
    /// assert!(history[0].time <= history[1].time);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn history(&self) -> Result<Vec<CommitInfo>> {
        Ok(self
            .inner
            .engine
            .history()?
            .into_iter()
            .map(|info| CommitInfo {
                revision: info.revision,
                time: system_time(info.time),
            })
            .collect())
    }
}
