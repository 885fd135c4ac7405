//! Entry points for fuzzers and robustness tests: feed arbitrary bytes to every page
//! decoder and, when a page validates, walk every accessor of its view. Validation is
//! what makes the accessors' unchecked offsets safe, so this is where that claim is
//! tested. Not part of the stable API.

use thunderhead_disk::{
    FreeSpace, Header, Meta, PageBytes, PageId, Stored, page_checksum, seal_checksum,
};

use crate::error::Result;
use crate::page::{BranchPage, LeafPage, OverflowRef, SegmentPage, validate_overflow};

/// Readers' pins, for the loom model of page reclamation (`tests/loom_pins.rs`).
pub use crate::engine::pins::Pins;

/// One shard of the page cache and what it holds, for the loom model of pinning and
/// eviction (`tests/loom_cache.rs`).
pub use crate::cache::{Pinnable, Shard as CacheShard};

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
    // An overflow extent is only ever read through a reference that names its length
    // and checksum: take both from the bytes, so that the header checks are reached.
    let value_len = bytes.get(8..16).map_or(0, |len| {
        u64::from_le_bytes(len.try_into().expect("8 bytes"))
    });
    let checksum = if bytes.len() >= 8 {
        page_checksum(&bytes)
    } else {
        0
    };
    let reference = OverflowRef::new(page, value_len, checksum, 0);
    if let Ok(value) = validate_overflow(&reference, &bytes) {
        assert_eq!(value.len() as u64, value_len);
        accepted += 1;
    }
    accepted
}

/// Decodes `bytes` as everything the engine reads from a store: every page kind
/// ([`decode_page_all_kinds`]), the header, a meta slot and its inline free space, a
/// free-space extent, and each kind of catalog entry (with the first byte as the
/// entry's tag and the next as where the key ends). The checksums the meta slot, header
/// and free space carry are resealed first, so that their structure checks are what
/// the bytes reach. Returns how many decoders accepted the bytes.
pub fn decode_everything(bytes: &[u8]) -> usize {
    let mut accepted = decode_page_all_kinds(bytes);
    let page = PageId(1);
    let mut header = bytes.to_vec();
    if header.len() >= 20 {
        let checksum = crc32fast::hash(&header[0..16]);
        header[16..20].copy_from_slice(&checksum.to_le_bytes());
    }
    if let Ok(decoded) = Header::decode(&header) {
        assert_eq!(Header::decode(&decoded.encode()).ok(), Some(decoded));
        accepted += 1;
    }
    let mut sealed = bytes.to_vec();
    if sealed.len() >= 8 {
        seal_checksum(&mut sealed);
    }
    if let Ok(meta) = Meta::decode(page, &sealed) {
        accepted += 1;
        let inline = meta.inline_free_space(&sealed);
        let again = meta.encode(sealed.len(), inline);
        assert_eq!(
            Meta::decode(page, &again).ok(),
            Some(meta),
            "a meta slot re-encoded"
        );
        if let Some(inline) = inline {
            let checksum = meta.free_space.checksum;
            if FreeSpace::decode(page, inline, checksum).is_ok() {
                accepted += 1;
            }
        }
    }
    match FreeSpace::decode(page, &sealed, page_checksum(&sealed)) {
        // What decodes encodes to bytes that decode to the same state.
        Ok(Stored::Whole(space)) => {
            let (again, checksum) = space.encode_inline();
            let decoded = FreeSpace::decode(page, &again, checksum)
                .and_then(|stored| stored.into_whole(page))
                .expect("re-encoded state");
            assert_eq!(decoded.encode_inline().0, again);
            accepted += 1;
        }
        // A delta re-encodes to bytes that decode to the same delta.
        Ok(Stored::Delta(delta)) => {
            let (again, checksum) = delta.encode();
            match FreeSpace::decode(page, &again, checksum) {
                Ok(Stored::Delta(decoded)) => assert_eq!(decoded, delta, "a delta re-encoded"),
                other => panic!("a delta re-encoded as {other:?}"),
            }
            accepted += 1;
        }
        Err(_) => {}
    }
    accepted + decode_catalog_entry(bytes)
}

/// A catalog entry from `bytes`: `tag | key length | key | value`.
fn decode_catalog_entry(bytes: &[u8]) -> usize {
    use crate::engine::catalog::{decode_extra, decode_history, decode_snapshot, decode_version};
    let [tag, key_len, rest @ ..] = bytes else {
        return 0;
    };
    let (key, value) = rest.split_at((*key_len as usize).min(rest.len()));
    let mut full_key = vec![*tag];
    full_key.extend_from_slice(key);
    let location = PageId(3);
    let accepted = match tag % 4 {
        0 => decode_version(location, value).is_ok(),
        1 => decode_extra(location, value).is_ok(),
        2 => decode_history(location, &full_key, value).is_ok(),
        _ => decode_snapshot(location, value).is_ok(),
    };
    usize::from(accepted)
}

/// Decodes `bytes` as a leaf, checksum included, for tests that build pages.
pub fn check_leaf_bytes(bytes: &[u8]) -> Result<usize> {
    crate::page::verify_checksum(PageId(1), bytes)?;
    Ok(LeafPage::parse(PageId(1), PageBytes::copy_from_slice(bytes))?.len())
}
