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
