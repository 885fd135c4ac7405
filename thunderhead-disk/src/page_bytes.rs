use std::ops::{Deref, Range};
use std::sync::Arc;

/// The immutable contents of a page or an extent of pages, shared by reference count.
/// Cloning never copies the bytes, so a cache hit hands out a page without allocating.
#[derive(Clone)]
pub struct PageBytes(Arc<[u8]>);

impl PageBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
    }

    /// `len` zero bytes in one allocation, to be filled through [`PageBytes::get_mut`]
    /// before it is shared: a read or an encoding lands in its final buffer without a
    /// copy (turning a `Vec` into shared bytes would copy it).
    pub fn zeroed(len: usize) -> Self {
        // One `memset` (bytemuck's zeroed allocation): collecting a run of zeros
        // stored them a byte at a time, 9% of a batch commit's instructions.
        Self(bytemuck::allocation::zeroed_arc_slice(len))
    }

    /// The bytes, mutably, while this is their only handle.
    pub fn get_mut(&mut self) -> Option<&mut [u8]> {
        Arc::get_mut(&mut self.0)
    }

    /// Copies `bytes` into a new shared buffer (one allocation).
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        Self(Arc::from(bytes))
    }

    /// A zero-copy slice of these bytes. Panics if `range` is out of bounds: callers slice
    /// only ranges they have validated.
    pub fn slice(&self, range: Range<usize>) -> PageSlice {
        assert!(range.start <= range.end && range.end <= self.0.len());
        PageSlice {
            bytes: self.clone(),
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    /// Whether two handles share the same allocation.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for PageBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for PageBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PageBytes({} bytes)", self.0.len())
    }
}

/// A byte range inside shared page bytes: a value handed to a reader without copying it
/// out of the page it lives in.
#[derive(Clone)]
pub struct PageSlice {
    bytes: PageBytes,
    start: u32,
    end: u32,
}

impl PageSlice {
    /// A new slice holding a copy of `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        Self::whole(PageBytes::copy_from_slice(bytes))
    }

    /// The part of this slice from byte `start` on (an empty slice past the end).
    pub fn skip(&self, start: usize) -> PageSlice {
        let start = (self.start as usize)
            .saturating_add(start)
            .min(self.end as usize);
        Self {
            bytes: self.bytes.clone(),
            start: start as u32,
            end: self.end,
        }
    }

    /// A slice covering all of `bytes`.
    pub fn whole(bytes: PageBytes) -> Self {
        let end = bytes.len() as u32;
        Self {
            bytes,
            start: 0,
            end,
        }
    }
}

impl Deref for PageSlice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.start as usize..self.end as usize]
    }
}

impl std::fmt::Debug for PageSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
