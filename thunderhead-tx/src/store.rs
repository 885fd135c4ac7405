//! The store a [`Database`](crate::Database) keeps its pages in by default: a file, or
//! memory.

use std::future::Future;

use futures::future::Either;
use thunderhead_disk::{FileStore, MemStore, PageBytes, PageId, PageStore, Result, StoreStats};

/// A file or memory page store: what [`Database::create`](crate::Database::create) and
/// [`Database::in_memory`](crate::Database::in_memory) keep pages in, and the default
/// store type of [`Database`](crate::Database).
///
/// ```
/// use thunderhead_disk::{MemStore, PageStore};
/// use thunderhead_tx::{Database, Options, Store};
///
/// let store = Store::Memory(MemStore::new(8192)?);
/// assert_eq!(store.page_size(), 8192);
/// let db: Database = Database::create_in(store, Options::default())?;
/// assert_eq!(db.revision(), 0);
/// # Ok::<(), thunderhead_tx::Error>(())
/// ```
pub enum Store {
    /// Pages in one file.
    File(FileStore),
    /// Pages in memory (gone when the database is dropped).
    Memory(MemStore),
}

impl PageStore for Store {
    fn page_size(&self) -> usize {
        match self {
            Store::File(store) => store.page_size(),
            Store::Memory(store) => store.page_size(),
        }
    }

    fn page_count(&self) -> u64 {
        match self {
            Store::File(store) => store.page_count(),
            Store::Memory(store) => store.page_count(),
        }
    }

    fn read(
        &self,
        start: PageId,
        page_count: u32,
    ) -> impl Future<Output = Result<PageBytes>> + Send {
        match self {
            Store::File(store) => Either::Left(store.read(start, page_count)),
            Store::Memory(store) => Either::Right(store.read(start, page_count)),
        }
    }

    fn write(&self, start: PageId, bytes: PageBytes) -> impl Future<Output = Result<()>> + Send {
        match self {
            Store::File(store) => Either::Left(store.write(start, bytes)),
            Store::Memory(store) => Either::Right(store.write(start, bytes)),
        }
    }

    fn sync(&self) -> impl Future<Output = Result<()>> + Send {
        match self {
            Store::File(store) => Either::Left(store.sync()),
            Store::Memory(store) => Either::Right(store.sync()),
        }
    }

    fn truncate(&self, page_count: u64) -> impl Future<Output = Result<()>> + Send {
        match self {
            Store::File(store) => Either::Left(store.truncate(page_count)),
            Store::Memory(store) => Either::Right(store.truncate(page_count)),
        }
    }

    fn stats(&self) -> StoreStats {
        match self {
            Store::File(store) => store.stats(),
            Store::Memory(store) => store.stats(),
        }
    }
}
