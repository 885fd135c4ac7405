//! Leaf pages: the key/value entries of one node, sorted, with their shared prefix
//! stored once.
//!
//! ```text
//! 0   NodeHeader (32 bytes; kind = Leaf, level = 0, count = entries)
//! 32  local prefix (local_prefix_len bytes)
//!     offsets: count x u16, the page offset of each entry, in key order
//!     entries: LeafEntryHeader (5 bytes), key suffix, value bytes or OverflowRef
//! ```
//! A key is `implied prefix (from the fences) ++ local prefix ++ suffix`.

use bytemuck::{Pod, Zeroable};
use thunderhead_disk::{Le16, Le32, Le64, PageBytes, PageId, Result, seal_checksum};

use super::header::{FORMAT_VERSION, NodeHeader, PageKind, checked_header};
use super::heads::{key_head, search_split};
use super::{OverflowRef, Reader, VALUE_INLINE, VALUE_OVERFLOW};
use crate::node::Entry;
use crate::value::ValueStored;

const HEADER_BYTES: usize = std::mem::size_of::<NodeHeader>();

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct LeafEntryHeader {
    suffix_len: Le16,
    value_tag: u8,
    value_len: Le16,
}

const ENTRY_HEADER_BYTES: usize = std::mem::size_of::<LeafEntryHeader>();
const OFFSET_BYTES: usize = 2;

/// Bytes one entry costs in a leaf page given its stored key length.
pub(crate) fn leaf_entry_bytes(key_suffix_len: usize, value: &ValueStored) -> usize {
    OFFSET_BYTES + ENTRY_HEADER_BYTES + key_suffix_len + value.stored_bytes()
}

/// Exact encoded size and local prefix length of a leaf holding `entries`.
pub(crate) fn leaf_layout(entries: &[Entry], implied_len: usize) -> (usize, usize) {
    let local_len = match (entries.first(), entries.last()) {
        (Some(first), Some(last)) => {
            crate::key::common_prefix_len(&first.key, &last.key) - implied_len
        }
        _ => 0,
    };
    let body: usize = entries
        .iter()
        .map(|entry| leaf_entry_bytes(entry.key.len() - implied_len - local_len, &entry.value))
        .sum();
    (HEADER_BYTES + local_len + body, local_len)
}

/// Encodes a leaf page of exactly `page_size` bytes. The caller has checked that the
/// entries fit (`leaf_layout`), that they are sorted, and that every key starts with the
/// implied prefix.
pub(crate) fn encode_leaf(entries: &[Entry], implied_len: usize, page_size: usize) -> PageBytes {
    let (used, local_len) = leaf_layout(entries, implied_len);
    assert!(
        used <= page_size,
        "leaf of {used} bytes does not fit a {page_size}-byte page"
    );
    // Encoded in its final shared buffer: turning a `Vec` into `PageBytes` would copy it.
    let mut bytes = PageBytes::zeroed(page_size);
    let page = bytes.get_mut().expect("a new buffer has one handle");
    let header = NodeHeader {
        kind: PageKind::Leaf as u8,
        format: FORMAT_VERSION,
        level: 0,
        flags: 0,
        checksum: Le32::new(0),
        count: Le16::new(entries.len() as u16),
        implied_prefix_len: Le16::new(implied_len as u16),
        local_prefix_len: Le16::new(local_len as u16),
        segment_count: Le16::new(0),
        used_bytes: Le32::new(used as u32),
        seq_high: Le64::new(0),
        reserved: Le32::new(0),
    };
    page[..HEADER_BYTES].copy_from_slice(bytemuck::bytes_of(&header));
    let mut at = HEADER_BYTES;
    if let Some(first) = entries.first() {
        page[at..at + local_len].copy_from_slice(&first.key[implied_len..implied_len + local_len]);
    }
    at += local_len;
    let mut offset_at = at;
    at += entries.len() * OFFSET_BYTES;
    for entry in entries {
        page[offset_at..offset_at + 2].copy_from_slice(&(at as u16).to_le_bytes());
        offset_at += 2;
        let suffix = &entry.key[implied_len + local_len..];
        let value_bytes = entry.value.stored_bytes();
        let (tag, value_len) = match &entry.value {
            ValueStored::Inline(bytes) => (VALUE_INLINE, bytes.len()),
            ValueStored::Overflow(_) => (VALUE_OVERFLOW, OverflowRef::ENCODED_BYTES),
        };
        let entry_header = LeafEntryHeader {
            suffix_len: Le16::new(suffix.len() as u16),
            value_tag: tag,
            value_len: Le16::new(value_len as u16),
        };
        page[at..at + ENTRY_HEADER_BYTES].copy_from_slice(bytemuck::bytes_of(&entry_header));
        at += ENTRY_HEADER_BYTES;
        page[at..at + suffix.len()].copy_from_slice(suffix);
        at += suffix.len();
        match &entry.value {
            ValueStored::Inline(bytes) => page[at..at + value_bytes].copy_from_slice(bytes),
            ValueStored::Overflow(reference) => {
                page[at..at + value_bytes].copy_from_slice(bytemuck::bytes_of(reference))
            }
        }
        at += value_bytes;
    }
    debug_assert_eq!(at, used);
    seal_checksum(page);
    bytes
}

/// A validated leaf page. Every offset was checked when the view was built.
pub(crate) struct LeafPage {
    pub id: PageId,
    bytes: PageBytes,
    count: usize,
    implied_len: usize,
    local_prefix_end: usize,
    offsets_at: usize,
    /// The suffixes' heads, for searches.
    heads: Box<[u64]>,
    /// Entries whose value is an overflow reference: when none, freeing the page need
    /// not look at its values.
    overflow_count: usize,
}

impl LeafPage {
    /// Validates `bytes` (whose checksum the caller verified) as a leaf page.
    pub fn parse(id: PageId, bytes: PageBytes) -> Result<Self> {
        let header: NodeHeader = checked_header(id, &bytes, PageKind::Leaf)?;
        let reader = Reader::new(id, &bytes);
        if header.level != 0 {
            return Err(reader.corrupted(format!("leaf page at level {}", header.level)));
        }
        let used = header.used_bytes.get() as usize;
        if used > bytes.len() || used < HEADER_BYTES {
            return Err(reader.corrupted(format!("used bytes {used} outside the page")));
        }
        let reader = Reader::new(id, &bytes[..used]);
        let count = header.count.get() as usize;
        let local_len = header.local_prefix_len.get() as usize;
        let local_prefix_end = HEADER_BYTES + local_len;
        reader.bytes(HEADER_BYTES, local_len, "local prefix")?;
        let offsets_at = local_prefix_end;
        reader.bytes(offsets_at, count * OFFSET_BYTES, "entry offsets")?;
        let page = Self {
            id,
            bytes: bytes.clone(),
            count,
            implied_len: header.implied_prefix_len.get() as usize,
            local_prefix_end,
            offsets_at,
            heads: Box::default(),
            overflow_count: 0,
        };
        let mut heads = Vec::with_capacity(count);
        let mut overflow_count = 0;
        let mut previous: Option<&[u8]> = None;
        for index in 0..count {
            let (suffix, value_at, tag, value_len) = page.entry_parts(&reader, index)?;
            reader.bytes(value_at, value_len, "value")?;
            match tag {
                VALUE_INLINE => {}
                VALUE_OVERFLOW if value_len == OverflowRef::ENCODED_BYTES => {
                    let reference: OverflowRef = reader.pod(value_at, "overflow reference")?;
                    if reference.page().is_none() {
                        return Err(
                            reader.corrupted(format!("entry {index} refers to overflow page 0"))
                        );
                    }
                    overflow_count += 1;
                }
                _ => {
                    return Err(reader.corrupted(format!(
                        "entry {index} has value tag {tag} of {value_len} bytes"
                    )));
                }
            }
            if previous.is_some_and(|previous| previous >= suffix) {
                return Err(reader.corrupted(format!("entry {index} is not above its predecessor")));
            }
            previous = Some(suffix);
            heads.push(key_head(suffix));
        }
        Ok(Self {
            heads: heads.into(),
            overflow_count,
            ..page
        })
    }

    /// Bytes the view holds in memory: the page and its heads.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.len() + self.heads.len() * 8
    }

    fn entry_parts<'a>(
        &self,
        reader: &Reader<'a>,
        index: usize,
    ) -> Result<(&'a [u8], usize, u8, usize)> {
        let offset: Le16 = reader.pod(self.offsets_at + index * OFFSET_BYTES, "entry offset")?;
        let at = offset.get() as usize;
        let header: LeafEntryHeader = reader.pod(at, "entry header")?;
        let suffix_at = at + ENTRY_HEADER_BYTES;
        let suffix = reader.bytes(suffix_at, header.suffix_len.get() as usize, "key suffix")?;
        Ok((
            suffix,
            suffix_at + suffix.len(),
            header.value_tag,
            header.value_len.get() as usize,
        ))
    }

    fn entry_at(&self, index: usize) -> (usize, LeafEntryHeader) {
        let at = self.offsets_at + index * OFFSET_BYTES;
        let offset = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize;
        (
            offset,
            bytemuck::pod_read_unaligned(&self.bytes[offset..offset + ENTRY_HEADER_BYTES]),
        )
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn implied_len(&self) -> usize {
        self.implied_len
    }

    pub fn local_prefix(&self) -> &[u8] {
        &self.bytes[HEADER_BYTES..self.local_prefix_end]
    }

    /// The stored part of entry `index`'s key (after implied and local prefixes).
    pub fn suffix(&self, index: usize) -> &[u8] {
        let (offset, header) = self.entry_at(index);
        let start = offset + ENTRY_HEADER_BYTES;
        &self.bytes[start..start + header.suffix_len.get() as usize]
    }

    pub fn value(&self, index: usize) -> ValueStored {
        let (offset, header) = self.entry_at(index);
        let start = offset + ENTRY_HEADER_BYTES + header.suffix_len.get() as usize;
        let end = start + header.value_len.get() as usize;
        if header.value_tag == VALUE_OVERFLOW {
            ValueStored::Overflow(bytemuck::pod_read_unaligned(&self.bytes[start..end]))
        } else {
            ValueStored::Inline(self.bytes.slice(start..end))
        }
    }

    /// The overflow references among the values, in entry order.
    pub fn overflows(&self) -> impl Iterator<Item = OverflowRef> + '_ {
        let scanned = if self.overflow_count == 0 {
            0
        } else {
            self.count
        };
        (0..scanned).filter_map(|index| match self.value(index) {
            ValueStored::Overflow(reference) => Some(reference),
            ValueStored::Inline(_) => None,
        })
    }

    /// Writes the full key of entry `index` into `out`, given the implied prefix bytes.
    pub fn key_into(&self, implied_prefix: &[u8], index: usize, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(implied_prefix);
        out.extend_from_slice(self.local_prefix());
        out.extend_from_slice(self.suffix(index));
    }

    /// Binary search for `key_after_implied` (the search key without the implied prefix):
    /// `Ok(index)` if present, `Err(insertion point)` otherwise.
    pub fn search(&self, key_after_implied: &[u8]) -> Result<usize, usize> {
        search_split(
            self.local_prefix(),
            key_after_implied,
            &self.heads,
            |index| self.suffix(index),
        )
    }
}

/// Exact encoded size of a leaf holding `entries` under fences implying `implied_len`.
pub(crate) fn leaf_layout_bytes(entries: &[Entry], implied_len: usize) -> usize {
    leaf_layout(entries, implied_len).0
}
