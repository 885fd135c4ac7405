use thunderhead_disk::PageId;

/// Errors of the tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key is longer than the store's page size allows.
    #[error("key of {len} bytes exceeds the maximum of {max}")]
    KeyTooLarge {
        /// Length of the key offered.
        len: usize,
        /// Longest key accepted.
        max: usize,
    },
    /// A value is larger than the tree can address.
    #[error("value of {len} bytes exceeds the maximum of {max}")]
    ValueTooLarge {
        /// Length of the value offered.
        len: usize,
        /// Largest value accepted.
        max: usize,
    },
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The storage layer failed, or a page read from it did not validate.
    #[error(transparent)]
    Storage(#[from] thunderhead_disk::Error),
    /// A bulk load was given a key at or below the one before it.
    #[error("bulk load keys out of order at {}", .key.escape_ascii())]
    KeysOutOfOrder {
        /// The key that came out of order.
        key: Vec<u8>,
    },
    /// An earlier operation of this writer failed part-way; its uncommitted changes are
    /// in an unknown state and it accepts no more work. Committed versions are intact.
    #[error("writer is poisoned by an earlier error; start a new one from the last version")]
    WriterPoisoned,
    /// No tree of this name exists.
    #[error("no tree named \"{}\"", .name.escape_ascii())]
    TreeNotFound {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// A tree of this name already exists (creating, renaming or forking onto it).
    #[error("a tree named \"{}\" already exists", .name.escape_ascii())]
    TreeExists {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// A tree name that cannot be used (too long, or reserved).
    #[error("invalid tree name: {reason}")]
    InvalidTreeName {
        /// Why.
        reason: String,
    },
    /// A snapshot name that cannot be used (empty or too long).
    #[error("invalid snapshot name: {reason}")]
    InvalidSnapshotName {
        /// Why.
        reason: String,
    },
    /// No snapshot has this name.
    #[error("no snapshot named {:?}", String::from_utf8_lossy(name))]
    SnapshotNotFound {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// A snapshot of this name exists already.
    #[error("a snapshot named {:?} exists already", String::from_utf8_lossy(name))]
    SnapshotExists {
        /// The name asked for.
        name: Vec<u8>,
    },
    /// The revision is older than the retained history and no snapshot pins it: its
    /// pages may have been reused.
    #[error("revision {revision} is no longer retained (the oldest retained is {oldest_retained})")]
    RevisionPruned {
        /// The revision asked for.
        revision: u64,
        /// The oldest revision that can still be read (snapshots aside).
        oldest_retained: u64,
    },
    /// The revision has not been committed yet.
    #[error("revision {revision} does not exist yet (the latest is {latest})")]
    RevisionNotFound {
        /// The revision asked for.
        revision: u64,
        /// The latest committed revision.
        latest: u64,
    },
    /// `check()` found a structural invariant broken.
    #[error("invariant broken at {location}: {reason}")]
    Invariant {
        /// The page (or "transient node") where it was found.
        location: String,
        /// Which invariant, and how.
        reason: String,
    },
}

/// Result alias for the tree.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupted(page: PageId, reason: impl Into<String>) -> Self {
        Error::Storage(thunderhead_disk::Error::corrupted(page, reason))
    }

    /// True when the error says stored data is damaged (checksum or structure).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Storage(
                thunderhead_disk::Error::Corrupted { .. }
                    | thunderhead_disk::Error::ChecksumMismatch { .. }
            )
        )
    }
}
