use bytemuck::{Pod, Zeroable};
use thunderhead_disk::{CHECKSUM_OFFSET, Error, Le16, Le32, Le64, PageId, Result, page_checksum};

/// Version of the page formats written by this build.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// The first byte of every page says what it holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum PageKind {
    Leaf = 1,
    Branch = 2,
    Segment = 3,
    Overflow = 4,
}

impl PageKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Leaf),
            2 => Some(Self::Branch),
            3 => Some(Self::Segment),
            4 => Some(Self::Overflow),
            _ => None,
        }
    }
}

/// The 32-byte header at the start of every node page (leaf or branch).
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
#[repr(C)]
pub(crate) struct NodeHeader {
    pub kind: u8,
    pub format: u8,
    /// 0 for leaves; a branch's children are one level lower.
    pub level: u8,
    pub flags: u8,
    pub checksum: Le32,
    /// Entries (leaf) or children (branch).
    pub count: Le16,
    /// Length of the key prefix implied by the node's fences; those bytes are not stored.
    pub implied_prefix_len: Le16,
    /// Length of the further prefix shared by every key, stored once after the header.
    pub local_prefix_len: Le16,
    /// Journal segments (branch only).
    pub segment_count: Le16,
    /// Bytes of the page in use.
    pub used_bytes: Le32,
    /// Highest sequence number ever journaled in this node (branch only).
    pub seq_high: Le64,
    pub reserved: Le32,
}

/// The 32-byte header of a journal segment extent.
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
#[repr(C)]
pub(crate) struct SegmentHeader {
    pub kind: u8,
    pub format: u8,
    pub reserved0: Le16,
    pub checksum: Le32,
    pub point_count: Le32,
    pub range_count: Le32,
    pub used_bytes: Le32,
    pub prefix_len: Le16,
    pub reserved1: Le16,
    pub seq_max: Le64,
}

/// The 24-byte header of an overflow (off-tree value) extent.
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
#[repr(C)]
pub(crate) struct OverflowHeader {
    pub kind: u8,
    pub format: u8,
    pub reserved0: Le16,
    pub checksum: Le32,
    pub value_len: Le64,
    pub reserved1: Le64,
}

const _: () = assert!(std::mem::size_of::<NodeHeader>() == 32);
const _: () = assert!(std::mem::size_of::<SegmentHeader>() == 32);
const _: () = assert!(std::mem::size_of::<OverflowHeader>() == 24);
const _: () = assert!(CHECKSUM_OFFSET == 4);

/// Checks the stored checksum of `bytes` against their contents.
pub(crate) fn verify_checksum(page: PageId, bytes: &[u8]) -> Result<u32> {
    if bytes.len() < 8 {
        return Err(Error::corrupted(page, "page shorter than its header"));
    }
    let expected = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let actual = page_checksum(bytes);
    if expected != actual {
        return Err(Error::ChecksumMismatch {
            page,
            expected,
            actual,
        });
    }
    Ok(actual)
}

/// Views the header `H` at the start of `bytes` after checking kind and format.
pub(crate) fn checked_header<H: Pod>(page: PageId, bytes: &[u8], kind: PageKind) -> Result<H> {
    let size = std::mem::size_of::<H>();
    let head = bytes.get(..size).ok_or_else(|| {
        Error::corrupted(page, format!("page of {} bytes has no header", bytes.len()))
    })?;
    let found = PageKind::from_byte(head[0]);
    if found != Some(kind) {
        return Err(Error::corrupted(
            page,
            format!("expected a {kind:?} page, found kind byte {}", head[0]),
        ));
    }
    if head[1] != FORMAT_VERSION {
        return Err(Error::corrupted(
            page,
            format!("unknown page format version {}", head[1]),
        ));
    }
    Ok(bytemuck::pod_read_unaligned(head))
}
