//! The on-disk page formats: node pages (leaf and branch), journal segments and overflow
//! extents. Each module encodes its kind and builds a validated, zero-copy view of it.
//! Decoding treats the bytes as hostile: every count, length and offset is checked before
//! a view exists, so the accessors on a view can not run out of bounds.

mod branch;
mod header;
mod heads;
mod leaf;
mod overflow;
mod reader;
mod segment;

pub(crate) use branch::{
    BranchContents, BranchPage, ChildLink, ChildSlot, SegmentSlot, branch_layout_bytes,
    encode_branch,
};
pub(crate) use header::verify_checksum;
pub(crate) use leaf::{LeafPage, encode_leaf, leaf_entry_bytes, leaf_layout_bytes};
pub use overflow::OverflowRef;
pub(crate) use overflow::{encode_overflow, overflow_page_count, validate_overflow};
pub(crate) use reader::{PageWriter, Reader};
pub(crate) use segment::{
    KeyHash, SegmentKeys, SegmentPage, encode_segment, point_message_bytes, range_message_bytes,
    range_message_weight,
};

/// Value tag bytes.
pub(crate) const VALUE_INLINE: u8 = 0;
pub(crate) const VALUE_OVERFLOW: u8 = 1;

#[cfg(test)]
mod tests;
