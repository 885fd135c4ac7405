//! Entry points for fuzzers and robustness tests: feed arbitrary bytes to every page
//! decoder and, when a page validates, walk every accessor of its view. Validation is
//! what makes the accessors' unchecked offsets safe, so this is where that claim is
//! tested. Not part of the stable API.

use thunderhead_disk::{PageBytes, PageId};

use crate::error::Result;
use crate::page::{BranchPage, LeafPage, OverflowRef, SegmentPage, validate_overflow};

/// Readers' pins, for the loom model of page reclamation (`tests/loom_pins.rs`).
pub use crate::engine::pins::Pins;

/// Decodes `bytes` as each page kind (without checking the checksum, so that structure
/// validation is what gets exercised) and reads everything a valid view exposes. Returns
/// how many kinds accepted the bytes.
pub fn decode_page_all_kinds(bytes: &[u8]) -> usize {
    let bytes = PageBytes::copy_from_slice(bytes);
    let page = PageId(1);
    let mut accepted = 0;
    if let Ok(leaf) = LeafPage::parse(page, bytes.clone()) {
        accepted += 1;
        let mut key = Vec::new();
        for index in 0..leaf.len() {
            leaf.key_into(b"", index, &mut key);
            let _ = leaf.value(index);
            let _ = leaf.search(&key);
        }
        let _ = leaf.search(b"\xff\xff");
    }
    if let Ok(branch) = BranchPage::parse(page, bytes.clone()) {
        accepted += 1;
        for index in 0..branch.len() {
            let _ = branch.child(index);
        }
        for index in 0..branch.segment_count() {
            let _ = branch.segment(index);
        }
        for index in 0..branch.len() - 1 {
            let pivot = branch.pivot(b"", index);
            let _ = branch.route(&pivot);
            let _ = branch.route_below(&pivot);
        }
        let _ = branch.route(b"");
    }
    if let Ok(segment) = SegmentPage::parse(page, bytes.clone()) {
        accepted += 1;
        for index in 0..segment.point_count() {
            let key = segment.point_key(index);
            let _ = segment.point_message(index);
            let _ = segment.search(&key);
            let _ = segment.lower_bound(&key);
        }
        for index in 0..segment.range_count() {
            let _ = segment.range_message(index);
            let _ = segment.range_parts(index);
        }
    }
    let reference = OverflowRef::new(page, bytes.len().saturating_sub(24) as u64, 0, 0);
    if validate_overflow(&reference, &bytes).is_ok() {
        accepted += 1;
    }
    accepted
}

/// Decodes `bytes` as a leaf, checksum included, for tests that build pages.
pub fn check_leaf_bytes(bytes: &[u8]) -> Result<usize> {
    crate::page::verify_checksum(PageId(1), bytes)?;
    Ok(LeafPage::parse(PageId(1), PageBytes::copy_from_slice(bytes))?.len())
}
