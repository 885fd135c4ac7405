use crate::PageId;

/// Errors of the storage layer. Data read from a store is untrusted: anything that does
/// not validate is reported here, never trusted and never a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system reported an I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A page's stored checksum does not match its contents.
    #[error("checksum mismatch on page {page}: stored {expected:#010x}, computed {actual:#010x}")]
    ChecksumMismatch {
        /// First page of the damaged extent.
        page: PageId,
        /// The checksum recorded in the page.
        expected: u32,
        /// The checksum of the bytes actually read.
        actual: u32,
    },
    /// A page passed its checksum but its structure is invalid (bad kind, length, offset,
    /// ordering, or a descent that is too deep).
    #[error("corrupted page {page}: {reason}")]
    Corrupted {
        /// The page that failed validation.
        page: PageId,
        /// What was wrong with it.
        reason: String,
    },
    /// A read or write addressed pages outside the store.
    #[error("page {page} (+{page_count}) is outside the store of {store_pages} pages")]
    OutOfBounds {
        /// First page of the request.
        page: PageId,
        /// Pages requested.
        page_count: u64,
        /// Pages the store holds.
        store_pages: u64,
    },
    /// A store was configured with a page size it cannot use.
    #[error("invalid page size {0}: must be a power of two between 4096 and 65536")]
    InvalidPageSize(usize),
    /// A write's length is not a whole number of pages.
    #[error("write of {len} bytes is not a multiple of the page size {page_size}")]
    UnalignedWrite {
        /// Bytes offered.
        len: usize,
        /// The store's page size.
        page_size: usize,
    },
    /// Another handle (in this process or another) holds the file open for writing.
    #[error("{path} is locked by another handle")]
    Locked {
        /// The file that could not be locked.
        path: std::path::PathBuf,
    },
    /// The store does not start with a Thunderhead header: empty, truncated, foreign or
    /// garbage.
    #[error("not a Thunderhead store: {reason}")]
    NotAStore {
        /// What was wrong with the header.
        reason: String,
    },
    /// The store was written by a format version this build does not read.
    #[error("unsupported file format version {version}")]
    UnsupportedVersion {
        /// The version the header records.
        version: u32,
    },
    /// Neither meta slot holds a valid committed version.
    #[error("no valid committed version: {reason}")]
    NoValidVersion {
        /// Why each slot was rejected.
        reason: String,
    },
    /// An earlier sync failed, so what the operating system holds for the file can no
    /// longer be trusted; the store refuses writes until it is reopened.
    #[error("the store failed to sync earlier and refuses writes until reopened")]
    SyncFailed,
}

/// Result alias for the storage layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds a [`Error::Corrupted`] for `page`.
    pub fn corrupted(page: PageId, reason: impl Into<String>) -> Self {
        Error::Corrupted {
            page,
            reason: reason.into(),
        }
    }
}
