//! A page store held in memory. Extents are kept as written and handed back by reference
//! count, so reading an extent as it was written never copies; other reads are assembled
//! page by page, as a disk would answer them.

use std::collections::BTreeMap;
use std::future::{Ready, ready};
use std::sync::Mutex;

use super::check_page_size;
use crate::{CrashImage, Error, PageBytes, PageId, PageStore, Result, StoreStats};

/// A page store held in memory. Used by tests, benchmarks and in-memory databases.
pub struct MemStore {
    page_size: usize,
    state: Mutex<MemState>,
}

struct MemState {
    /// Written extents by first page; no two overlap.
    extents: BTreeMap<u64, PageBytes>,
    /// Pages the store holds.
    page_count: u64,
    stats: StoreStats,
}

impl MemStore {
    /// An empty store with pages of `page_size` bytes.
    pub fn new(page_size: usize) -> Result<Self> {
        check_page_size(page_size)?;
        Ok(Self {
            page_size,
            state: Mutex::new(MemState {
                extents: BTreeMap::new(),
                page_count: 0,
                stats: StoreStats::default(),
            }),
        })
    }

    /// A store holding what a simulated power loss left on disk.
    pub fn from_image(page_size: usize, image: &CrashImage) -> Result<Self> {
        let store = Self::new(page_size)?;
        {
            let mut state = store.lock();
            for (&page, bytes) in &image.pages {
                if bytes.len() != page_size {
                    return Err(Error::UnalignedWrite {
                        len: bytes.len(),
                        page_size,
                    });
                }
                state.extents.insert(page, PageBytes::new(bytes.clone()));
                state.page_count = state.page_count.max(page + 1);
            }
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        // Every update under the lock leaves the map consistent before it can panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MemState {
    /// Removes what `[start, end)` overwrites, keeping the parts of extents outside it.
    fn clear(&mut self, start: u64, end: u64, page_size: usize) {
        let overlapping: Vec<u64> = self
            .extents
            .range(..end)
            .rev()
            .take_while(|&(&first, bytes)| first + (bytes.len() / page_size) as u64 > start)
            .map(|(&first, _)| first)
            .collect();
        for first in overlapping {
            let bytes = self.extents.remove(&first).expect("listed above");
            let last = first + (bytes.len() / page_size) as u64;
            if first < start {
                let keep = (start - first) as usize * page_size;
                self.extents
                    .insert(first, PageBytes::copy_from_slice(&bytes[..keep]));
            }
            if last > end {
                let skip = (end - first) as usize * page_size;
                self.extents
                    .insert(end, PageBytes::copy_from_slice(&bytes[skip..]));
            }
        }
    }

    /// The bytes of `[start, start + page_count)`, zeros where nothing was written.
    fn assemble(&self, start: u64, page_count: u64, page_size: usize) -> PageBytes {
        let end = start + page_count;
        let mut out = vec![0u8; page_count as usize * page_size];
        let overlapping = self
            .extents
            .range(..end)
            .rev()
            .take_while(|&(&first, bytes)| first + (bytes.len() / page_size) as u64 > start);
        for (&first, bytes) in overlapping {
            let last = first + (bytes.len() / page_size) as u64;
            let (from, to) = (first.max(start), last.min(end));
            let source = (from - first) as usize * page_size..(to - first) as usize * page_size;
            let target = (from - start) as usize * page_size;
            out[target..target + source.len()].copy_from_slice(&bytes[source]);
        }
        PageBytes::new(out)
    }
}

// Refining to `Ready` documents that memory reads complete on first poll.
#[allow(refining_impl_trait)]
impl PageStore for MemStore {
    fn page_size(&self) -> usize {
        self.page_size
    }

    fn page_count(&self) -> u64 {
        self.lock().page_count
    }

    fn read(&self, start: PageId, page_count: u32) -> Ready<Result<PageBytes>> {
        let mut state = self.lock();
        let expected_len = page_count as usize * self.page_size;
        let end = start.0.checked_add(u64::from(page_count));
        let result = if page_count == 0 || end.is_none_or(|end| end > state.page_count) {
            Err(Error::OutOfBounds {
                page: start,
                page_count: u64::from(page_count),
                store_pages: state.page_count,
            })
        } else {
            match state.extents.get(&start.0) {
                Some(bytes) if bytes.len() == expected_len => Ok(bytes.clone()),
                _ => Ok(state.assemble(start.0, u64::from(page_count), self.page_size)),
            }
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
        let Some(end) = start.0.checked_add(pages) else {
            return ready(Err(Error::OutOfBounds {
                page: start,
                page_count: pages,
                store_pages: state.page_count,
            }));
        };
        state.clear(start.0, end, self.page_size);
        state.stats.writes += 1;
        state.stats.written_bytes += bytes.len() as u64;
        state.extents.insert(start.0, bytes);
        state.page_count = state.page_count.max(end);
        ready(Ok(()))
    }

    fn sync(&self) -> Ready<Result<()>> {
        self.lock().stats.syncs += 1;
        ready(Ok(()))
    }

    fn truncate(&self, page_count: u64) -> Ready<Result<()>> {
        let mut state = self.lock();
        let old = state.page_count;
        if page_count < old {
            state.clear(page_count, old, self.page_size);
        }
        state.page_count = page_count;
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

    /// An extent read as written comes back without a copy; overlapping rewrites and
    /// partial reads see exactly the newest bytes of each page; bad requests are typed
    /// errors.
    #[test]
    fn write_read_overwrite_truncate() {
        assert!(matches!(
            MemStore::new(1000),
            Err(Error::InvalidPageSize(1000))
        ));
        let store = MemStore::new(4096).unwrap();
        let bytes = PageBytes::new(vec![3; 3 * 4096]);
        resolve(store.write(PageId(1), bytes.clone())).unwrap();
        assert_eq!(store.page_count(), 4);
        assert!(resolve(store.read(PageId(1), 3)).unwrap().ptr_eq(&bytes));
        resolve(store.write(PageId(2), PageBytes::new(vec![9; 4096]))).unwrap();
        let pages: Vec<u8> = resolve(store.read(PageId(0), 4))
            .unwrap()
            .chunks(4096)
            .map(|page| page[0])
            .collect();
        assert_eq!(pages, vec![0, 3, 9, 3]);
        assert!(resolve(store.read(PageId(3), 2)).is_err());
        assert!(resolve(store.write(PageId(1), PageBytes::new(vec![0; 100]))).is_err());
        resolve(store.truncate(2)).unwrap();
        assert_eq!(store.page_count(), 2);
        assert!(resolve(store.read(PageId(2), 1)).is_err());
        resolve(store.write(PageId(3), PageBytes::new(vec![1; 4096]))).unwrap();
        assert_eq!(
            resolve(store.read(PageId(2), 1)).unwrap()[0],
            0,
            "truncated"
        );
    }
}
