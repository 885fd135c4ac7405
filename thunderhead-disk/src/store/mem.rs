use std::collections::HashMap;

use super::allocator::Allocator;
use super::check_page_size;
use std::future::{Ready, ready};
use std::sync::Mutex;

use crate::{Error, PageBytes, PageId, PageStore, Result, StoreStats};

/// A page store held in memory. Extents are kept as written and handed back by reference
/// count, so a read never copies. Used by tests and by in-memory databases.
pub struct MemStore {
    page_size: usize,
    state: Mutex<MemState>,
}

struct MemState {
    /// Written extents by first page.
    extents: HashMap<u64, PageBytes>,
    /// Page 0 is reserved.
    allocator: Allocator,
    stats: StoreStats,
}

impl MemStore {
    /// An empty store with pages of `page_size` bytes.
    pub fn new(page_size: usize) -> Result<Self> {
        check_page_size(page_size)?;
        Ok(Self {
            page_size,
            state: Mutex::new(MemState {
                extents: HashMap::new(),
                allocator: Allocator::new(1),
                stats: StoreStats::default(),
            }),
        })
    }

    /// Pages ever handed out (the high-water mark, page 0 included).
    pub fn page_count(&self) -> u64 {
        self.lock().allocator.end()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // breaks later reads (every update is a single insert/remove), so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// Refining to `Ready` documents that memory reads complete on first poll.
#[allow(refining_impl_trait)]
impl PageStore for MemStore {
    fn page_size(&self) -> usize {
        self.page_size
    }

    fn allocate(&self, page_count: u32) -> Result<PageId> {
        Ok(self.lock().allocator.allocate(page_count))
    }

    fn free(&self, start: PageId, page_count: u32) {
        let mut state = self.lock();
        state.extents.remove(&start.0);
        state.allocator.free(start, page_count);
    }

    fn read(&self, start: PageId, page_count: u32) -> Ready<Result<PageBytes>> {
        let mut state = self.lock();
        let expected_len = page_count as usize * self.page_size;
        let result = match state.extents.get(&start.0) {
            Some(bytes) if bytes.len() == expected_len => Ok(bytes.clone()),
            Some(bytes) => Err(Error::corrupted(
                start,
                format!(
                    "extent holds {} bytes, {} requested",
                    bytes.len(),
                    expected_len
                ),
            )),
            None => Err(Error::OutOfBounds {
                page: start,
                page_count: u64::from(page_count),
                store_pages: state.allocator.end(),
            }),
        };
        state.stats.reads += 1;
        state.stats.read_bytes += expected_len as u64;
        ready(result)
    }

    fn write(&self, start: PageId, bytes: PageBytes) -> Ready<Result<()>> {
        if !bytes.len().is_multiple_of(self.page_size) || bytes.is_empty() {
            return ready(Err(Error::UnalignedWrite {
                len: bytes.len(),
                page_size: self.page_size,
            }));
        }
        let mut state = self.lock();
        let pages = (bytes.len() / self.page_size) as u64;
        if start.is_none() || start.0 + pages > state.allocator.end() {
            return ready(Err(Error::OutOfBounds {
                page: start,
                page_count: pages,
                store_pages: state.allocator.end(),
            }));
        }
        state.stats.writes += 1;
        state.stats.written_bytes += bytes.len() as u64;
        state.extents.insert(start.0, bytes);
        ready(Ok(()))
    }

    fn sync(&self) -> Ready<Result<()>> {
        self.lock().stats.syncs += 1;
        ready(Ok(()))
    }

    fn stats(&self) -> StoreStats {
        self.lock().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve;

    /// What is written reads back as the same allocation; bad sizes and unknown pages are
    /// typed errors.
    #[test]
    fn write_read_round_trip_and_errors() {
        assert!(matches!(
            MemStore::new(1000),
            Err(Error::InvalidPageSize(1000))
        ));
        let store = MemStore::new(4096).unwrap();
        let start = store.allocate(2).unwrap();
        assert_eq!(start, PageId(1));
        let bytes = PageBytes::new(vec![3; 8192]);
        resolve(store.write(start, bytes.clone())).unwrap();
        let back = resolve(store.read(start, 2)).unwrap();
        assert!(back.ptr_eq(&bytes));
        assert!(resolve(store.read(start, 1)).is_err());
        assert!(resolve(store.read(PageId(40), 1)).is_err());
        assert!(resolve(store.write(PageId(40), PageBytes::new(vec![0; 4096]))).is_err());
        assert!(resolve(store.write(start, PageBytes::new(vec![0; 100]))).is_err());
        store.free(start, 2);
        assert_eq!(store.allocate(2).unwrap(), start);
    }
}
