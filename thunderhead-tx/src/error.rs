//! The one error type of the `Database` API.

/// Everything that can go wrong. Bad input is a typed error, never a panic; damaged
/// data is [`Error::Corrupted`], never wrong data.
///
/// ```
/// use thunderhead_tx::{Database, Error, Options};
///
/// let db = Database::in_memory(Options::default())?;
/// let error = db.begin_read().open_tree(b"nope").err().expect("no such tree");
/// assert!(matches!(&error, Error::TreeNotFound { name } if name == b"nope"));
/// assert_eq!(error.to_string(), "no tree named \"nope\"");
/// # Ok::<(), thunderhead_tx::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key or range this transaction read was written by a transaction that
    /// committed after this one began, or a tree it used was created, deleted or renamed
    /// meanwhile. Nothing was applied; run the transaction again.
    ///
    /// A range read conflicts with a key inserted into it since:
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let setup = db.begin_write()?;
    /// # setup.open_tree(b"jobs")?.insert(b"1", b"")?;
    /// # setup.commit()?;
    /// let counter = db.begin_write()?;
    /// let jobs = counter.open_tree(b"jobs")?;
    /// let count = jobs.iter()?.count();
    /// let adder = db.begin_write()?;
    /// adder.open_tree(b"jobs")?.insert(b"2", b"")?;
    /// adder.commit()?;
    /// counter.open_tree(b"stats")?.insert(b"jobs", &[count as u8])?;
    /// assert!(matches!(counter.commit(), Err(Error::Conflict { .. })));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("conflict: {reason}")]
    Conflict {
        /// What was read and changed under the transaction.
        reason: String,
    },
    /// Waiting for another transaction's [`lock_range`](crate::WriteTransaction::lock_range)
    /// took longer than [`Options::lock_timeout`](crate::Options::lock_timeout).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use thunderhead_tx::{Database, Error, Options};
    /// let options = Options { lock_timeout: Duration::from_millis(10), ..Options::default() };
    /// let db = Database::in_memory(options)?;
    /// # let setup = db.begin_write()?;
    /// # setup.open_tree(b"t")?;
    /// # setup.commit()?;
    /// let holder = db.begin_write()?;
    /// holder.lock_range(b"t", &b"a"[..]..&b"m"[..])?;
    /// let other = db.begin_write()?;
    /// let tree = other.open_tree(b"t")?;
    /// assert!(matches!(tree.insert(b"b", b""), Err(Error::LockTimeout { .. })));
    /// tree.insert(b"x", b"")?; // outside the locked range
    /// other.commit()?;
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("timed out waiting for a range of tree \"{}\" locked by another transaction", .tree.escape_ascii())]
    LockTimeout {
        /// The tree whose range was locked.
        tree: Vec<u8>,
    },
    /// No tree of this name exists.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// let result = txn.rename_tree(b"missing", b"new");
    /// assert!(matches!(result, Err(Error::TreeNotFound { name }) if name == b"missing"));
    /// let tree = txn.open_tree(b"t")?;
    /// txn.delete_tree(b"t")?;
    /// assert!(matches!(tree.get(b"k"), Err(Error::TreeNotFound { .. }))); // a stale handle
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("no tree named \"{}\"", .name.escape_ascii())]
    TreeNotFound {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// A tree of this name already exists.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"a")?;
    /// txn.open_tree(b"b")?;
    /// assert!(matches!(txn.fork_tree(b"a", b"b"), Err(Error::TreeExists { .. })));
    /// assert!(matches!(txn.rename_tree(b"a", b"b"), Err(Error::TreeExists { .. })));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("a tree named \"{}\" already exists", .name.escape_ascii())]
    TreeExists {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// A tree name that cannot be used: empty, or longer than 255 bytes.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// assert!(matches!(txn.open_tree(&[b'x'; 256]), Err(Error::InvalidTreeName { .. })));
    /// assert!(txn.open_tree(&[b'x'; 255]).is_ok());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("invalid tree name: {reason}")]
    InvalidTreeName {
        /// Why.
        reason: String,
    },
    /// The revision is no longer readable: older than the retained history
    /// ([`Options::retain_revisions`](crate::Options::retain_revisions)) and kept by no
    /// snapshot. A change-feed subscriber that fell this far behind gets it too, never
    /// a silent gap.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// let db = Database::in_memory(Options::default())?; // keeps the latest revision only
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// assert!(matches!(
    ///     db.begin_read_at(0),
    ///     Err(Error::RevisionPruned { revision: 0, oldest_retained: 1 })
    /// ));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("revision {revision} is no longer retained (the oldest retained is {oldest_retained})")]
    RevisionPruned {
        /// The revision asked for.
        revision: u64,
        /// The oldest revision still readable (snapshots aside).
        oldest_retained: u64,
    },
    /// The revision has not been committed yet.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// assert!(matches!(db.begin_read_at(5), Err(Error::RevisionNotFound { revision: 5, latest: 0 })));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("revision {revision} does not exist yet (the latest is {latest})")]
    RevisionNotFound {
        /// The revision asked for.
        revision: u64,
        /// The latest committed revision.
        latest: u64,
    },
    /// No snapshot has this name.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// assert!(matches!(db.drop_snapshot(b"nightly"), Err(Error::SnapshotNotFound { .. })));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("no snapshot named \"{}\"", .name.escape_ascii())]
    SnapshotNotFound {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// A snapshot of this name exists already.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// db.snapshot(b"nightly")?;
    /// assert!(matches!(db.snapshot(b"nightly"), Err(Error::SnapshotExists { .. })));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("a snapshot named \"{}\" already exists", .name.escape_ascii())]
    SnapshotExists {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// A snapshot name that cannot be used: empty, or longer than 255 bytes.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// assert!(matches!(db.snapshot(b""), Err(Error::InvalidSnapshotName { .. })));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("invalid snapshot name: {reason}")]
    InvalidSnapshotName {
        /// Why.
        reason: String,
    },
    /// A key (with its view's prefix) is longer than the page size allows.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// let result = tree.insert(&[0; 100_000], b"v");
    /// assert!(matches!(result, Err(Error::KeyTooLarge { len: 100_000, max }) if max < 100_000));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("key of {len} bytes exceeds the maximum of {max}")]
    KeyTooLarge {
        /// Length of the key offered.
        len: usize,
        /// Longest key accepted.
        max: usize,
    },
    /// A value is larger than a tree can hold (4 GiB).
    #[error("value of {len} bytes exceeds the maximum of {max}")]
    ValueTooLarge {
        /// Length of the value offered.
        len: usize,
        /// Largest value accepted.
        max: usize,
    },
    /// Stored data failed its checksum or did not validate.
    #[error("corrupted data at page {page}: {reason}")]
    Corrupted {
        /// The first page of the damaged extent.
        page: u64,
        /// What was wrong.
        reason: String,
    },
    /// The file is open in another process (or another `Database` in this one).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// let name = format!("thunderhead-doc-locked-{}.th", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let db = Database::create(&path, Options::default())?;
    /// assert!(matches!(Database::open(&path, Options::default()), Err(Error::Locked { .. })));
    /// drop(db);
    /// let db = Database::open(&path, Options::default())?; // the lock went with `db`
    /// # drop(db); std::fs::remove_file(&path)?;
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("the database file is locked by another handle: {path}")]
    Locked {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The file is not a Thunderhead database (empty, foreign, or damaged beyond both
    /// of its commit slots).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// let name = format!("thunderhead-doc-foreign-{}.th", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// std::fs::write(&path, b"not a database")?;
    /// let result = Database::open(&path, Options::default());
    /// assert!(matches!(result, Err(Error::NotADatabase { .. })));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    #[error("not a Thunderhead database: {reason}")]
    NotADatabase {
        /// Why.
        reason: String,
    },
    /// The operating system reported an I/O error. A commit that fails this way may or
    /// may not be on disk; reopening shows which.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// let path = std::env::temp_dir().join("thunderhead-doc-no-such-dir").join("db.th");
    /// let result = Database::open(&path, Options::default());
    /// assert!(matches!(result, Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound));
    /// ```
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An earlier sync failed; the database refuses writes until it is reopened.
    #[error("an earlier sync failed; reopen the database")]
    SyncFailed,
    /// Options that cannot be used.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Error, Options};
    /// let options = Options { spill_bytes: 0, ..Options::default() };
    /// assert!(matches!(Database::in_memory(options), Err(Error::InvalidOptions(_))));
    /// let options = Options { page_size: 1000, ..Options::default() }; // not a power of two
    /// assert!(matches!(Database::in_memory(options), Err(Error::InvalidOptions(_))));
    /// ```
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// A structural invariant is broken (reported by [`Database::check`](crate::Database::check)).
    #[error("invariant broken at {location}: {reason}")]
    Invariant {
        /// Where.
        location: String,
        /// What.
        reason: String,
    },
    /// An earlier failure inside the commit machinery left its writer unusable; the
    /// database is intact, and later commits work again.
    #[error("an earlier storage failure interrupted this transaction's commit")]
    Interrupted,
}

/// Result alias of the `Database` API.
///
/// ```
/// use thunderhead_tx::{Database, Options, Result};
///
/// fn tree_count(db: &Database) -> Result<usize> {
///     Ok(db.begin_read().list_trees()?.len())
/// }
/// assert_eq!(tree_count(&Database::in_memory(Options::default())?)?, 0);
/// # Ok::<(), thunderhead_tx::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<thunderhead_core::Error> for Error {
    fn from(error: thunderhead_core::Error) -> Self {
        use thunderhead_core::Error as Core;
        use thunderhead_disk::Error as Disk;
        match error {
            Core::KeyTooLarge { len, max } => Error::KeyTooLarge { len, max },
            Core::ValueTooLarge { len, max } => Error::ValueTooLarge { len, max },
            Core::InvalidConfig(reason) => Error::InvalidOptions(reason),
            Core::TreeNotFound { name } => Error::TreeNotFound { name },
            Core::TreeExists { name } => Error::TreeExists { name },
            Core::InvalidTreeName { reason } => Error::InvalidTreeName { reason },
            Core::RevisionPruned {
                revision,
                oldest_retained,
            } => Error::RevisionPruned {
                revision,
                oldest_retained,
            },
            Core::RevisionNotFound { revision, latest } => {
                Error::RevisionNotFound { revision, latest }
            }
            Core::SnapshotNotFound { name } => Error::SnapshotNotFound { name },
            Core::SnapshotExists { name } => Error::SnapshotExists { name },
            Core::InvalidSnapshotName { reason } => Error::InvalidSnapshotName { reason },
            Core::WriterPoisoned => Error::Interrupted,
            Core::Invariant { location, reason } => Error::Invariant { location, reason },
            Core::Storage(disk) => match disk {
                Disk::Io(error) => Error::Io(error),
                Disk::ChecksumMismatch {
                    page,
                    expected,
                    actual,
                } => Error::Corrupted {
                    page: page.0,
                    reason: format!(
                        "checksum mismatch: stored {expected:#010x}, computed {actual:#010x}"
                    ),
                },
                Disk::Corrupted { page, reason } => Error::Corrupted {
                    page: page.0,
                    reason,
                },
                Disk::OutOfBounds {
                    page,
                    page_count,
                    store_pages,
                } => Error::Corrupted {
                    page: page.0,
                    reason: format!(
                        "{page_count} pages from here lie outside the file of {store_pages}"
                    ),
                },
                Disk::Locked { path } => Error::Locked { path },
                Disk::NotAStore { reason } => Error::NotADatabase { reason },
                Disk::NoValidVersion { reason } => Error::NotADatabase { reason },
                Disk::UnsupportedVersion { version } => Error::NotADatabase {
                    reason: format!("unsupported file format version {version}"),
                },
                Disk::SyncFailed => Error::SyncFailed,
                other => Error::InvalidOptions(other.to_string()),
            },
            other => Error::Invariant {
                location: "engine".into(),
                reason: other.to_string(),
            },
        }
    }
}

impl From<thunderhead_disk::Error> for Error {
    fn from(error: thunderhead_disk::Error) -> Self {
        thunderhead_core::Error::Storage(error).into()
    }
}
