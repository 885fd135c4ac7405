//! Interim in-memory allocation shared by the stores: a high-water mark plus freed
//! extents reused by exact length. It is not persisted; the crash-safe file format
//! replaces it with free space that is part of each committed version.

use std::collections::HashMap;

use crate::PageId;

#[derive(Debug)]
pub(crate) struct Allocator {
    /// Next never-used page.
    end: u64,
    /// Freed extents by length.
    free: HashMap<u32, Vec<u64>>,
}

impl Allocator {
    /// An allocator whose pages below `end` are all in use.
    pub fn new(end: u64) -> Self {
        Self {
            end,
            free: HashMap::new(),
        }
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn allocate(&mut self, page_count: u32) -> PageId {
        if let Some(start) = self.free.get_mut(&page_count).and_then(Vec::pop) {
            return PageId(start);
        }
        let start = self.end;
        self.end += u64::from(page_count.max(1));
        PageId(start)
    }

    pub fn free(&mut self, start: PageId, page_count: u32) {
        self.free.entry(page_count).or_default().push(start.0);
    }
}
