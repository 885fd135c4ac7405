//! Journal segments: an immutable, sorted run of messages that a branch's journal
//! points to. A commit that adds messages to a branch writes one new segment instead of
//! rewriting the ones before it, which is what lets a journal grow far past a page.
//!
//! ```text
//! 0   SegmentHeader (32 bytes)
//! 32  prefix shared by every key in the segment (prefix_len bytes)
//!     point offsets: point_count x u32, in key order (one message per key)
//!     range offsets: range_count x u32, in start-key order
//!     point message: PointHeader (16 bytes), key suffix, value bytes or OverflowRef
//!     range message: RangeHeader (13 bytes), start suffix, end suffix
//! ```
//! The extent is a whole number of pages; the checksum covers all of it.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use thunderhead_disk::{Le16, Le32, Le64, PageBytes, PageId, Result, seal_checksum};

use super::header::{FORMAT_VERSION, PageKind, SegmentHeader, checked_header};
use super::heads::{key_head, lower_bound_split_from, search_split};
use super::{OverflowRef, PageWriter, Reader, VALUE_INLINE, VALUE_OVERFLOW};
use crate::key::{Key, KeyRange, common_prefix_len, joined};
use crate::node::{PointMessage, PointOp, RangeMessage};
use crate::value::ValueStored;

const HEADER_BYTES: usize = std::mem::size_of::<SegmentHeader>();

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct PointHeader {
    seq: Le64,
    op: u8,
    suffix_len: Le16,
    value_tag: u8,
    value_len: Le32,
}

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct RangeHeader {
    seq: Le64,
    start_len: Le16,
    end_bounded: u8,
    end_len: Le16,
}

const POINT_HEADER_BYTES: usize = std::mem::size_of::<PointHeader>();
const RANGE_HEADER_BYTES: usize = std::mem::size_of::<RangeHeader>();
const OFFSET_BYTES: usize = 4;
const _: () = assert!(POINT_HEADER_BYTES == 16 && RANGE_HEADER_BYTES == 13);

/// Journal bytes one point message accounts for (its encoded size without prefix
/// compression, so the figure does not depend on which segment holds it).
pub(crate) fn point_message_bytes(key: &[u8], message: &PointMessage) -> usize {
    let value = match &message.op {
        PointOp::Put(value) => value.stored_bytes(),
        PointOp::Delete => 0,
    };
    OFFSET_BYTES + POINT_HEADER_BYTES + key.len() + value
}

/// Journal bytes one range message accounts for.
pub(crate) fn range_message_bytes(range: &KeyRange) -> usize {
    OFFSET_BYTES + RANGE_HEADER_BYTES + range.start.len() + range.end.as_ref().map_or(0, Vec::len)
}

/// What a range delete weighs in a journal's budget beyond its own bytes: it stands for
/// the entries it will remove, which stay live until it reaches them. Counting it as a
/// small page makes a journal carry range deletes down after a bounded number of them
/// (64 with the default budget), so the space they free is reclaimed even where nothing
/// else is written.
pub(crate) const RANGE_MESSAGE_FLUSH_WEIGHT_BYTES: usize = 4096;

/// Journal budget one range message takes from each child it overlaps.
pub(crate) fn range_message_weight(range: &KeyRange) -> usize {
    range_message_bytes(range) + RANGE_MESSAGE_FLUSH_WEIGHT_BYTES
}

/// Encodes points (sorted, one per key) and ranges (sorted by start) as a segment
/// extent of whole pages. Returns the bytes, their checksum and the used length.
pub(crate) fn encode_segment<'a>(
    points: impl Iterator<Item = (&'a [u8], &'a PointMessage)> + Clone,
    ranges: &[RangeMessage],
    page_size: usize,
) -> (PageBytes, u32, usize) {
    let mut prefix: Option<&[u8]> = None;
    let mut narrow = |key: &'a [u8]| {
        prefix = Some(match prefix {
            None => key,
            Some(prefix) => &prefix[..common_prefix_len(prefix, key)],
        });
    };
    let (mut point_count, mut body, mut seq_max) = (0usize, 0usize, 0u64);
    for (key, message) in points.clone() {
        narrow(key);
        point_count += 1;
        body += point_message_bytes(key, message);
        seq_max = seq_max.max(message.seq);
    }
    let mut prefix = prefix.map(<[u8]>::to_vec);
    for range in ranges {
        for key in std::iter::once(&range.range.start).chain(range.range.end.as_ref()) {
            let shared = prefix
                .as_deref()
                .map_or(key.len(), |prefix| common_prefix_len(prefix, key));
            prefix = Some(prefix.unwrap_or_else(|| key.clone())[..shared].to_vec());
        }
        body += range_message_bytes(&range.range);
        seq_max = seq_max.max(range.seq);
    }
    let prefix = prefix.unwrap_or_default();
    let message_count = point_count + ranges.len();
    // Every key is stored as a suffix after the shared prefix: point keys, range starts
    // and bounded range ends each save `prefix.len()` bytes.
    let bounded_ends = ranges
        .iter()
        .filter(|range| range.range.end.is_some())
        .count();
    let used = HEADER_BYTES + prefix.len() + body - (message_count + bounded_ends) * prefix.len();
    let size = used.div_ceil(page_size).max(1) * page_size;
    let mut bytes = PageBytes::zeroed(size);
    let page = bytes.get_mut().expect("a new buffer has one handle");
    let header = SegmentHeader {
        kind: PageKind::Segment as u8,
        format: FORMAT_VERSION,
        reserved0: Le16::new(0),
        checksum: Le32::new(0),
        point_count: Le32::new(point_count as u32),
        range_count: Le32::new(ranges.len() as u32),
        used_bytes: Le32::new(used as u32),
        prefix_len: Le16::new(prefix.len() as u16),
        reserved1: Le16::new(0),
        seq_max: Le64::new(seq_max),
    };
    let mut writer = PageWriter { page, at: 0 };
    writer.put(bytemuck::bytes_of(&header));
    writer.put(&prefix);
    let cut = prefix.len();
    let mut message_at = writer.at + message_count * OFFSET_BYTES;
    for (key, message) in points.clone() {
        writer.put(&(message_at as u32).to_le_bytes());
        message_at += point_message_bytes(key, message) - OFFSET_BYTES - cut;
    }
    for range in ranges {
        writer.put(&(message_at as u32).to_le_bytes());
        message_at += range_message_bytes(&range.range)
            - OFFSET_BYTES
            - cut
            - range.range.end.as_ref().map_or(0, |_| cut);
    }
    for (key, message) in points {
        let suffix = &key[cut..];
        let (op, tag, value): (u8, u8, &[u8]) = match &message.op {
            PointOp::Put(ValueStored::Inline(bytes)) => (OP_PUT, VALUE_INLINE, bytes),
            PointOp::Put(ValueStored::Overflow(reference)) => {
                (OP_PUT, VALUE_OVERFLOW, bytemuck::bytes_of(reference))
            }
            PointOp::Delete => (OP_DELETE, VALUE_INLINE, &[]),
        };
        let head = PointHeader {
            seq: Le64::new(message.seq),
            op,
            suffix_len: Le16::new(suffix.len() as u16),
            value_tag: tag,
            value_len: Le32::new(value.len() as u32),
        };
        writer.put(bytemuck::bytes_of(&head));
        writer.put(suffix);
        writer.put(value);
    }
    for range in ranges {
        let start = &range.range.start[cut..];
        let end = range.range.end.as_ref().map_or(&[][..], |end| &end[cut..]);
        let head = RangeHeader {
            seq: Le64::new(range.seq),
            start_len: Le16::new(start.len() as u16),
            end_bounded: u8::from(range.range.end.is_some()),
            end_len: Le16::new(end.len() as u16),
        };
        writer.put(bytemuck::bytes_of(&head));
        writer.put(start);
        writer.put(end);
    }
    debug_assert_eq!(writer.at, used);
    let checksum = seal_checksum(writer.page);
    (bytes, checksum, used)
}

/// A validated journal segment.
pub(crate) struct SegmentPage {
    bytes: PageBytes,
    point_count: usize,
    range_count: usize,
    prefix_end: usize,
    offsets_at: usize,
    seq_max: u64,
    /// Indices of the puts whose value lives off-tree, found while validating: the
    /// commit's reachability walk asks for them every time a journal's node changes, and
    /// most segments have none.
    overflow_points: Vec<u32>,
    /// Which point keys the segment may hold, built while validating: a lookup on the
    /// read path asks every segment of every journal on its way down, and most of them
    /// do not hold the key. Shared, so that a branch's view can keep it (`SegmentKeys`).
    keys: SegmentKeys,
    /// The point keys' heads, for searches.
    heads: Box<[u64]>,
}

impl SegmentPage {
    /// Validates `bytes` (whose checksum the caller verified) as a segment.
    pub fn parse(id: PageId, bytes: PageBytes) -> Result<Self> {
        let header: SegmentHeader = checked_header(id, &bytes, PageKind::Segment)?;
        let used = header.used_bytes.get() as usize;
        let reader = Reader::new(id, &bytes);
        if used > bytes.len() || used < HEADER_BYTES {
            return Err(reader.corrupted(format!("used bytes {used} outside the segment")));
        }
        let reader = Reader::new(id, &bytes[..used]);
        let point_count = header.point_count.get() as usize;
        let range_count = header.range_count.get() as usize;
        let prefix_len = header.prefix_len.get() as usize;
        reader.bytes(HEADER_BYTES, prefix_len, "segment prefix")?;
        let offsets_at = HEADER_BYTES + prefix_len;
        let offsets_len = point_count
            .checked_add(range_count)
            .and_then(|count| count.checked_mul(OFFSET_BYTES))
            .ok_or_else(|| reader.corrupted("message counts overflow"))?;
        reader.bytes(offsets_at, offsets_len, "message offsets")?;
        let seq_max = header.seq_max.get();
        let mut segment = Self {
            bytes: bytes.clone(),
            point_count,
            range_count,
            prefix_end: offsets_at,
            offsets_at,
            seq_max,
            overflow_points: Vec::new(),
            // Replaced by the filter built below once every key has validated.
            keys: SegmentKeys {
                filter: KeyFilter::empty(),
                ranges: false,
            },
            heads: Box::default(),
        };
        let mut heads = Vec::with_capacity(point_count);
        let mut overflow_points = Vec::new();
        let mut filter = KeyFilter::with_capacity(point_count);
        let prefix = &bytes[HEADER_BYTES..offsets_at];
        let mut key = prefix.to_vec();
        let mut previous: Option<&[u8]> = None;
        for index in 0..point_count {
            let at = segment.offset(&reader, index)?;
            let head: PointHeader = reader.pod(at, "point message header")?;
            let suffix = reader.bytes(
                at + POINT_HEADER_BYTES,
                head.suffix_len.get() as usize,
                "point key",
            )?;
            let value_len = head.value_len.get() as usize;
            reader.bytes(
                at + POINT_HEADER_BYTES + suffix.len(),
                value_len,
                "point value",
            )?;
            let valid_op = match (head.op, head.value_tag) {
                (OP_PUT, VALUE_INLINE) | (OP_DELETE, VALUE_INLINE) => true,
                (OP_PUT, VALUE_OVERFLOW) => value_len == OverflowRef::ENCODED_BYTES,
                _ => false,
            };
            if !valid_op || (head.op == OP_DELETE && value_len != 0) {
                return Err(reader.corrupted(format!(
                    "point message {index} has op {} tag {}",
                    head.op, head.value_tag
                )));
            }
            if head.seq.get() == 0 || head.seq.get() > seq_max {
                return Err(reader.corrupted(format!(
                    "point message {index} has sequence {}",
                    head.seq.get()
                )));
            }
            if previous.is_some_and(|previous| previous >= suffix) {
                return Err(reader.corrupted(format!(
                    "point message {index} is not above its predecessor"
                )));
            }
            previous = Some(suffix);
            heads.push(key_head(suffix));
            key.truncate(prefix.len());
            key.extend_from_slice(suffix);
            filter.insert(KeyHash::of(&key));
            if head.op == OP_PUT && head.value_tag == VALUE_OVERFLOW {
                overflow_points.push(index as u32);
            }
        }
        segment.overflow_points = overflow_points;
        segment.keys = SegmentKeys {
            filter: filter.freeze(),
            ranges: range_count > 0,
        };
        segment.heads = heads.into();
        let mut previous_start: Option<&[u8]> = None;
        for index in 0..range_count {
            let at = segment.offset(&reader, point_count + index)?;
            let head: RangeHeader = reader.pod(at, "range message header")?;
            let start = reader.bytes(
                at + RANGE_HEADER_BYTES,
                head.start_len.get() as usize,
                "range start",
            )?;
            let end = reader.bytes(
                at + RANGE_HEADER_BYTES + start.len(),
                head.end_len.get() as usize,
                "range end",
            )?;
            let ordered = match head.end_bounded {
                0 => end.is_empty(),
                1 => start < end,
                _ => false,
            };
            if !ordered || head.seq.get() == 0 || head.seq.get() > seq_max {
                return Err(reader.corrupted(format!("range message {index} is malformed")));
            }
            if previous_start.is_some_and(|previous| previous > start) {
                return Err(reader.corrupted(format!("range message {index} is out of order")));
            }
            previous_start = Some(start);
        }
        Ok(segment)
    }

    fn offset(&self, reader: &Reader<'_>, index: usize) -> Result<usize> {
        let offset: Le32 = reader.pod(self.offsets_at + index * OFFSET_BYTES, "message offset")?;
        Ok(offset.get() as usize)
    }

    fn offset_unchecked(&self, index: usize) -> usize {
        let at = self.offsets_at + index * OFFSET_BYTES;
        u32::from_le_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ]) as usize
    }

    pub fn seq_max(&self) -> u64 {
        self.seq_max
    }

    /// Bytes the view holds in memory: the extent, the key filter and the heads.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.len() + self.keys.filter_bytes() + self.heads.len() * 8
    }

    pub fn point_count(&self) -> usize {
        self.point_count
    }

    pub fn range_count(&self) -> usize {
        self.range_count
    }

    pub fn prefix(&self) -> &[u8] {
        &self.bytes[HEADER_BYTES..self.prefix_end]
    }

    fn point_header(&self, index: usize) -> (usize, PointHeader) {
        let at = self.offset_unchecked(index);
        (
            at,
            bytemuck::pod_read_unaligned(&self.bytes[at..at + POINT_HEADER_BYTES]),
        )
    }

    pub fn point_suffix(&self, index: usize) -> &[u8] {
        let (at, head) = self.point_header(index);
        let start = at + POINT_HEADER_BYTES;
        &self.bytes[start..start + head.suffix_len.get() as usize]
    }

    pub fn point_seq(&self, index: usize) -> u64 {
        self.point_header(index).1.seq.get()
    }

    pub fn point_key(&self, index: usize) -> Key {
        joined(&[self.prefix(), self.point_suffix(index)])
    }

    pub fn point_message(&self, index: usize) -> PointMessage {
        let (at, head) = self.point_header(index);
        let start = at + POINT_HEADER_BYTES + head.suffix_len.get() as usize;
        let end = start + head.value_len.get() as usize;
        let op = match (head.op, head.value_tag) {
            (OP_DELETE, _) => PointOp::Delete,
            (_, VALUE_OVERFLOW) => PointOp::Put(ValueStored::Overflow(
                bytemuck::pod_read_unaligned(&self.bytes[start..end]),
            )),
            _ => PointOp::Put(ValueStored::Inline(self.bytes.slice(start..end))),
        };
        PointMessage {
            seq: head.seq.get(),
            op,
        }
    }

    /// The puts whose value lives off-tree: (index, sequence number, reference). Reads
    /// message headers only; nothing is allocated.
    pub fn overflow_puts(&self) -> impl Iterator<Item = (usize, u64, OverflowRef)> + '_ {
        self.overflow_points.iter().map(|&index| {
            let index = index as usize;
            let (at, head) = self.point_header(index);
            let start = at + POINT_HEADER_BYTES + head.suffix_len.get() as usize;
            let end = start + head.value_len.get() as usize;
            let reference = bytemuck::pod_read_unaligned(&self.bytes[start..end]);
            (index, head.seq.get(), reference)
        })
    }

    /// Whether a point message for the key of `hash` may be here: `false` means it
    /// certainly is not.
    pub fn may_hold(&self, hash: KeyHash) -> bool {
        self.keys.filter.may_hold(hash)
    }

    /// What a lookup needs to pass this segment by without loading it.
    pub fn keys(&self) -> &SegmentKeys {
        &self.keys
    }

    /// Binary search over point keys: `Ok(index)` if `key` has a message here.
    pub fn search(&self, key: &[u8]) -> Result<usize, usize> {
        search_split(self.prefix(), key, &self.heads, |index| {
            self.point_suffix(index)
        })
    }

    /// Index of the first point message whose key is at or above `key`.
    pub fn lower_bound(&self, key: &[u8]) -> usize {
        self.search(key).unwrap_or_else(|index| index)
    }

    /// [`SegmentPage::lower_bound`] for a key no point before `from` reaches: it
    /// gallops from `from`, as the end of the next range in a walk forward is near the
    /// last one's.
    pub fn lower_bound_from(&self, from: usize, key: &[u8]) -> usize {
        lower_bound_split_from(self.prefix(), key, &self.heads, from, |index| {
            self.point_suffix(index)
        })
    }

    /// Sequence number, start suffix and end suffix (`None`: unbounded) of range `index`,
    /// without copying.
    pub fn range_parts(&self, index: usize) -> (u64, &[u8], Option<&[u8]>) {
        let at = self.offset_unchecked(self.point_count + index);
        let head: RangeHeader =
            bytemuck::pod_read_unaligned(&self.bytes[at..at + RANGE_HEADER_BYTES]);
        let start_at = at + RANGE_HEADER_BYTES;
        let start = &self.bytes[start_at..start_at + head.start_len.get() as usize];
        let end_at = start_at + start.len();
        let end = &self.bytes[end_at..end_at + head.end_len.get() as usize];
        (
            head.seq.get(),
            start,
            (head.end_bounded == 1).then_some(end),
        )
    }

    pub fn range_message(&self, index: usize) -> RangeMessage {
        let at = self.offset_unchecked(self.point_count + index);
        let head: RangeHeader =
            bytemuck::pod_read_unaligned(&self.bytes[at..at + RANGE_HEADER_BYTES]);
        let start_at = at + RANGE_HEADER_BYTES;
        let start = &self.bytes[start_at..start_at + head.start_len.get() as usize];
        let end_at = start_at + start.len();
        let end = &self.bytes[end_at..end_at + head.end_len.get() as usize];
        RangeMessage {
            seq: head.seq.get(),
            range: KeyRange {
                start: [self.prefix(), start].concat(),
                end: (head.end_bounded == 1).then(|| [self.prefix(), end].concat()),
            },
        }
    }
}

/// What a lookup needs to know to pass a segment by: which point keys it may hold, and
/// whether it holds range messages at all. A branch's view keeps its segments' (see
/// `BranchPage::segment_keys`), so that a get asks the cache only for the segments that
/// may concern its key, not for every segment of every journal on its way down. Cloning
/// shares the filter.
#[derive(Clone, Debug)]
pub(crate) struct SegmentKeys {
    filter: KeyFilter,
    ranges: bool,
}

impl SegmentKeys {
    /// Whether the segment may hold a message about the key of `hash`: a point message
    /// for it, or any range message (those are few, and checked one by one once loaded).
    #[inline]
    pub fn may_concern(&self, hash: KeyHash) -> bool {
        // `|`, not `||`: no branch between the probe and its use (see
        // `BranchPage::segments_concerning`).
        self.ranges | self.filter.may_hold(hash)
    }

    /// Bytes the filter holds.
    fn filter_bytes(&self) -> usize {
        self.filter.blocks.len() * 8
    }
}

/// A key's hash for the segment filters. Filters hash whole keys, not the suffixes a
/// segment stores, so a lookup hashes its key once and probes every segment on its way
/// with that; hashing per segment cost more than the probes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHash(u64);

impl KeyHash {
    pub fn of(key: &[u8]) -> Self {
        Self(key_hash(key))
    }

    /// The block a key falls in (of `blocks`, a power of two) and the bits it sets there.
    fn probe(self, blocks: usize) -> (usize, u64) {
        let block = (self.0 as usize) & (blocks - 1);
        let mut bits = 0u64;
        for probe in 0..KeyFilter::PROBES {
            bits |= 1 << ((self.0 >> (32 + 6 * probe)) & 63);
        }
        (block, bits)
    }
}

/// A blocked Bloom filter over a segment's point keys: about ten bits a key in 64-bit
/// blocks, four bits a key in one block, so a probe touches one word. Around 2% of
/// absent keys pass; they pay the binary search they paid before the filter existed. It
/// lives only in memory, rebuilt when a page is parsed, so the file format does not carry
/// it. The blocks sit behind one shared pointer, so a branch's view that keeps the filter
/// reaches a block in one step from its own slot.
#[derive(Clone, Debug)]
struct KeyFilter {
    blocks: Arc<[u64]>,
}

/// A filter being built.
struct KeyFilterBuilder {
    blocks: Vec<u64>,
}

impl KeyFilter {
    const BITS_PER_KEY: usize = 10;
    const PROBES: u32 = 4;

    /// A placeholder that allocates nothing; it must not be probed.
    fn empty() -> Self {
        Self {
            blocks: Arc::default(),
        }
    }

    fn with_capacity(keys: usize) -> KeyFilterBuilder {
        let blocks = (keys * Self::BITS_PER_KEY)
            .div_ceil(64)
            .max(1)
            .next_power_of_two();
        KeyFilterBuilder {
            blocks: vec![0; blocks],
        }
    }

    #[inline]
    fn may_hold(&self, hash: KeyHash) -> bool {
        let (block, bits) = hash.probe(self.blocks.len());
        self.blocks[block] & bits == bits
    }
}

impl KeyFilterBuilder {
    fn insert(&mut self, hash: KeyHash) {
        let (block, bits) = hash.probe(self.blocks.len());
        self.blocks[block] |= bits;
    }

    fn freeze(self) -> KeyFilter {
        KeyFilter {
            blocks: self.blocks.into(),
        }
    }
}

/// A fast 64-bit hash of key bytes: eight bytes a multiply, then MurmurHash3's
/// finaliser so every output bit depends on every input bit. Keys come from users but
/// a filter only ever costs a false positive, so no resistance to chosen keys is needed.
fn key_hash(bytes: &[u8]) -> u64 {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut hash = 0x243F_6A88_85A3_08D3 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        hash = (hash ^ word).wrapping_mul(MULTIPLIER).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        hash = (hash ^ u64::from_le_bytes(word))
            .wrapping_mul(MULTIPLIER)
            .rotate_left(29);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use thunderhead_disk::SplitMix64;

    /// Every key put in passes; absent keys pass about as rarely as the sizing promises.
    #[test]
    fn filter_holds_its_keys_and_rejects_most_others() {
        let mut rng = SplitMix64::new(5);
        for keys in [1usize, 7, 80, 300, 1000] {
            let mut filter = KeyFilter::with_capacity(keys);
            let held: Vec<[u8; 20]> = (0..keys)
                .map(|_| {
                    let mut key = [0u8; 20];
                    rng.fill(&mut key);
                    key
                })
                .collect();
            for key in &held {
                filter.insert(KeyHash::of(key));
            }
            let filter = filter.freeze();
            assert!(held.iter().all(|key| filter.may_hold(KeyHash::of(key))));
            let trials = 20_000;
            let passed = (0..trials)
                .filter(|_| {
                    let mut key = [0u8; 20];
                    rng.fill(&mut key);
                    filter.may_hold(KeyHash::of(&key))
                })
                .count();
            assert!(
                passed * 100 < trials * 5,
                "{passed} of {trials} absent keys passed a filter of {keys} keys"
            );
        }
    }
}
