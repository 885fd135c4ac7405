//! Overflow extents hold values too large for a node (TOAST). The node keeps an
//! [`OverflowRef`]: where the extent starts, how long the value is, and the extent's
//! checksum, so a misplaced or stale extent is caught as well as a damaged one.

use bytemuck::{Pod, Zeroable};
use thunderhead_disk::{Error, Le32, Le64, PageBytes, PageId, PageSlice, Result, seal_checksum};

use super::header::{FORMAT_VERSION, OverflowHeader, PageKind, checked_header, verify_checksum};

/// A node's reference to a value stored off-tree: where its extent starts, the value's
/// length, the extent's checksum, and the revision that wrote it (so freeing it knows
/// which kept versions may still read it, as ZFS's block pointers carry their birth).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct OverflowRef {
    pub(crate) page: Le64,
    pub(crate) value_len: Le64,
    pub(crate) checksum: Le32,
    pub(crate) birth: Le64,
}

impl OverflowRef {
    /// Bytes a reference takes in a node.
    pub const ENCODED_BYTES: usize = 28;

    /// A reference to a `value_len`-byte value whose extent starts at `page`, written
    /// by the commit of revision `birth`.
    pub fn new(page: PageId, value_len: u64, checksum: u32, birth: u64) -> Self {
        Self {
            page: Le64::new(page.0),
            value_len: Le64::new(value_len),
            checksum: Le32::new(checksum),
            birth: Le64::new(birth),
        }
    }

    /// The revision whose commit wrote the extent.
    pub fn birth(&self) -> u64 {
        self.birth.get()
    }

    /// First page of the extent.
    pub fn page(&self) -> PageId {
        PageId(self.page.get())
    }

    /// Length of the value in bytes.
    pub fn value_len(&self) -> u64 {
        self.value_len.get()
    }

    /// Checksum of the extent.
    pub fn checksum(&self) -> u32 {
        self.checksum.get()
    }
}

const _: () = assert!(std::mem::size_of::<OverflowRef>() == OverflowRef::ENCODED_BYTES);

const HEADER_BYTES: usize = std::mem::size_of::<OverflowHeader>();

/// Pages an overflow extent of a `value_len`-byte value occupies. The length may come
/// from a damaged page, so the sum saturates; callers reject counts past `u32::MAX`.
pub(crate) fn overflow_page_count(value_len: u64, page_size: usize) -> u64 {
    value_len
        .saturating_add(HEADER_BYTES as u64)
        .div_ceil(page_size as u64)
}

/// Encodes `value` as an overflow extent; returns the sealed bytes and their checksum.
/// The value is copied once, into the extent's final buffer.
pub(crate) fn encode_overflow(value: &[u8], page_size: usize) -> (PageBytes, u32) {
    let pages = overflow_page_count(value.len() as u64, page_size) as usize;
    let mut extent = PageBytes::zeroed(pages * page_size);
    let bytes = extent.get_mut().expect("a new buffer has one handle");
    let header = OverflowHeader {
        kind: PageKind::Overflow as u8,
        format: FORMAT_VERSION,
        reserved0: Default::default(),
        checksum: Le32::new(0),
        value_len: Le64::new(value.len() as u64),
        reserved1: Le64::new(0),
    };
    bytes[..HEADER_BYTES].copy_from_slice(bytemuck::bytes_of(&header));
    bytes[HEADER_BYTES..HEADER_BYTES + value.len()].copy_from_slice(value);
    let checksum = seal_checksum(bytes);
    (extent, checksum)
}

/// Validates an overflow extent against the reference that led to it and returns the
/// value as a zero-copy slice.
pub(crate) fn validate_overflow(reference: &OverflowRef, bytes: &PageBytes) -> Result<PageSlice> {
    let page = reference.page();
    let checksum = verify_checksum(page, bytes)?;
    if checksum != reference.checksum.get() {
        return Err(Error::ChecksumMismatch {
            page,
            expected: reference.checksum.get(),
            actual: checksum,
        });
    }
    let header: OverflowHeader = checked_header(page, bytes, PageKind::Overflow)?;
    let value_len = header.value_len.get();
    if value_len != reference.value_len.get() || value_len > (bytes.len() - HEADER_BYTES) as u64 {
        return Err(Error::corrupted(
            page,
            format!("overflow value length {value_len} does not fit its reference"),
        ));
    }
    Ok(bytes.slice(HEADER_BYTES..HEADER_BYTES + value_len as usize))
}
