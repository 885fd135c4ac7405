//! The disk layer of Thunderhead: what a page is, how it is checksummed, and the
//! futures-based [`PageStore`] trait that every store (memory, file, fault-injecting)
//! implements. The tree in `thunderhead-core` only ever talks to storage through it.
// Safe Rust only: no measurement has yet shown a gain worth an unsafe block (page
// views validate once, then index with bounds checks), and the forbid keeps it so.
#![forbid(unsafe_code)]

mod checksum;
mod error;
mod format;
mod le;
mod page_bytes;
mod page_id;
mod rng;
mod space;
mod store;

pub use checksum::{CHECKSUM_OFFSET, page_checksum, seal_checksum};
pub use error::{Error, Result};
pub use format::{
    ExtentRoot, FILE_FORMAT_VERSION, HEADER_PAGE, Header, META_PAGES, Meta, TreeRoot,
};
pub use le::{Le16, Le32, Le64};
pub use page_bytes::{PageBytes, PageSlice};
pub use page_id::PageId;
pub use rng::SplitMix64;
pub use space::{
    Base, Delta, Extent, FIRST_DATA_PAGE, FREE_SPACE_PAGE_KIND, FreeSpace, Kept, Stored,
};
pub use store::{
    CrashImage, FaultCounts, FaultPlan, FaultStore, FileStore, MemStore, PageStore, SECTOR_BYTES,
    StoreStats, resolve,
};

/// Smallest page size a store accepts. Below it a node cannot hold the largest key twice.
pub const PAGE_SIZE_MIN_BYTES: usize = 4096;
/// Largest page size a store accepts: in-page offsets are 16-bit.
pub const PAGE_SIZE_MAX_BYTES: usize = 65536;
/// Page size used when none is configured.
pub const PAGE_SIZE_DEFAULT_BYTES: usize = 16384;
