use bytemuck::Pod;
use thunderhead_disk::{Error, PageId, Result};

/// A bounds-checked cursor over untrusted page bytes. Every read either stays inside the
/// page or returns [`Error::Corrupted`] naming the page and what was being read.
pub(crate) struct Reader<'a> {
    page: PageId,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(page: PageId, bytes: &'a [u8]) -> Self {
        Self { page, bytes }
    }

    pub fn corrupted(&self, reason: impl Into<String>) -> Error {
        Error::corrupted(self.page, reason)
    }

    /// `len` bytes at `offset`.
    pub fn bytes(&self, offset: usize, len: usize, what: &str) -> Result<&'a [u8]> {
        offset
            .checked_add(len)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or_else(|| {
                self.corrupted(format!(
                    "{what} at {offset}+{len} runs past the page ({})",
                    self.bytes.len()
                ))
            })
    }

    /// A plain-old-data value at `offset`.
    pub fn pod<T: Pod>(&self, offset: usize, what: &str) -> Result<T> {
        Ok(bytemuck::pod_read_unaligned(self.bytes(
            offset,
            std::mem::size_of::<T>(),
            what,
        )?))
    }
}

/// Appends bytes to a page being encoded; the encoder sized the page beforehand.
pub(crate) struct PageWriter<'a> {
    pub page: &'a mut [u8],
    pub at: usize,
}

impl PageWriter<'_> {
    pub fn put(&mut self, bytes: &[u8]) {
        self.page[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}
