//! The one error type of the `Database` API.

/// Everything that can go wrong. Bad input is a typed error, never a panic; damaged
/// data is [`Error::Corrupted`], never wrong data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key or range this transaction read was written by a transaction that
    /// committed after this one began, or a tree it used was created, deleted or renamed
    /// meanwhile. Nothing was applied; run the transaction again.
    #[error("conflict: {reason}")]
    Conflict {
        /// What was read and changed under the transaction.
        reason: String,
    },
    /// Waiting for another transaction's [`lock_range`](crate::WriteTransaction::lock_range)
    /// took longer than [`Options::lock_timeout`](crate::Options::lock_timeout).
    #[error("timed out waiting for a range of tree \"{}\" locked by another transaction", .tree.escape_ascii())]
    LockTimeout {
        /// The tree whose range was locked.
        tree: Vec<u8>,
    },
    /// No tree of this name exists.
    #[error("no tree named \"{}\"", .name.escape_ascii())]
    TreeNotFound {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// A tree of this name already exists.
    #[error("a tree named \"{}\" already exists", .name.escape_ascii())]
    TreeExists {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// A tree name that cannot be used: empty, or longer than 255 bytes.
    #[error("invalid tree name: {reason}")]
    InvalidTreeName {
        /// Why.
        reason: String,
    },
    /// A key (with its view's prefix) is longer than the page size allows.
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
    #[error("the database file is locked by another handle: {path}")]
    Locked {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The file is not a Thunderhead database (empty, foreign, or damaged beyond both
    /// of its commit slots).
    #[error("not a Thunderhead database: {reason}")]
    NotADatabase {
        /// Why.
        reason: String,
    },
    /// The operating system reported an I/O error. A commit that fails this way may or
    /// may not be on disk; reopening shows which.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An earlier sync failed; the database refuses writes until it is reopened.
    #[error("an earlier sync failed; reopen the database")]
    SyncFailed,
    /// Options that cannot be used.
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
