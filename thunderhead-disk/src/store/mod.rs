//! The page-store abstraction. Reads and writes return futures so that a store may be
//! backed by anything (a file, memory, a network block device); stores that answer at
//! once return ready futures, which [`resolve`] completes without parking a thread.

mod fault;
mod file;
mod mem;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::{PageBytes, PageId, Result};

pub use fault::{CrashImage, FaultCounts, FaultPlan, FaultStore, SECTOR_BYTES};
pub use file::FileStore;
pub use mem::MemStore;

/// Counters a store keeps about its traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Extents read.
    pub reads: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Extents written.
    pub writes: u64,
    /// Bytes written.
    pub written_bytes: u64,
    /// Syncs performed.
    pub syncs: u64,
}

/// A device of fixed-size pages, addressed by [`PageId`], read and written in extents
/// (runs of consecutive pages). It knows nothing of allocation: which pages are in use
/// is part of each committed version ([`crate::FreeSpace`]), decided above it. Writes
/// past the end grow the store.
pub trait PageStore: Send + Sync {
    /// Size of one page in bytes (a power of two).
    fn page_size(&self) -> usize;

    /// Pages the store holds (written or grown to).
    fn page_count(&self) -> u64;

    /// Reads `page_count` pages starting at `start`. The bytes are not validated: callers
    /// check the checksum and structure before trusting them.
    fn read(
        &self,
        start: PageId,
        page_count: u32,
    ) -> impl Future<Output = Result<PageBytes>> + Send;

    /// Writes `bytes` (a whole number of pages) at `start`.
    fn write(&self, start: PageId, bytes: PageBytes) -> impl Future<Output = Result<()>> + Send;

    /// Makes every completed write durable.
    fn sync(&self) -> impl Future<Output = Result<()>> + Send;

    /// Drops every page from `page_count` on, giving the space back.
    fn truncate(&self, page_count: u64) -> impl Future<Output = Result<()>> + Send;

    /// Traffic counters since the store was created.
    fn stats(&self) -> StoreStats;
}

/// A shared store is a store: tests keep a handle on a store an engine owns.
impl<S: PageStore + ?Sized> PageStore for std::sync::Arc<S> {
    fn page_size(&self) -> usize {
        (**self).page_size()
    }

    fn page_count(&self) -> u64 {
        (**self).page_count()
    }

    fn read(
        &self,
        start: PageId,
        page_count: u32,
    ) -> impl Future<Output = Result<PageBytes>> + Send {
        (**self).read(start, page_count)
    }

    fn write(&self, start: PageId, bytes: PageBytes) -> impl Future<Output = Result<()>> + Send {
        (**self).write(start, bytes)
    }

    fn sync(&self) -> impl Future<Output = Result<()>> + Send {
        (**self).sync()
    }

    fn truncate(&self, page_count: u64) -> impl Future<Output = Result<()>> + Send {
        (**self).truncate(page_count)
    }

    fn stats(&self) -> StoreStats {
        (**self).stats()
    }
}

/// The page sizes every store accepts: a power of two within the supported range.
pub(crate) fn check_page_size(page_size: usize) -> Result<()> {
    if !page_size.is_power_of_two()
        || !(crate::PAGE_SIZE_MIN_BYTES..=crate::PAGE_SIZE_MAX_BYTES).contains(&page_size)
    {
        return Err(crate::Error::InvalidPageSize(page_size));
    }
    Ok(())
}

/// Runs a store future to completion on the calling thread. A future that is ready on
/// first poll (a memory store, a cache hit) completes without allocating or parking.
pub fn resolve<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => futures::executor::block_on(future),
    }
}
