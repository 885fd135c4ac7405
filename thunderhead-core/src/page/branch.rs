//! Branch pages: pivots, child pointers and the descriptor of the node's journal.
//!
//! ```text
//! 0   NodeHeader (32 bytes; kind = Branch, level >= 1, count = children)
//! 32  local prefix (local_prefix_len bytes)
//!     child slots: count x ChildSlot (32 bytes)
//!     segment slots: segment_count x SegmentSlot (40 bytes), newest first
//!     pivot offsets: (count - 1) x u16
//!     pivots: u16 suffix length, suffix bytes
//! ```
//! Child `i` holds the keys in `[pivot[i-1], pivot[i])`. The journal itself lives in the
//! segments; the page only says where they are and, per child, how far it has been
//! flushed (the watermark) and how many journal bytes still wait for it.

use std::sync::{OnceLock, Weak};

use bytemuck::{Pod, Zeroable};
use thunderhead_disk::{Le16, Le32, Le64, PageBytes, PageId, Result, seal_checksum};

use super::header::{FORMAT_VERSION, NodeHeader, PageKind, checked_header};
use super::heads::{key_head, search_split};
use super::{KeyHash, LeafPage, SegmentKeys, SegmentPage};
use super::{PageWriter, Reader};
use crate::key::{Key, joined};

const HEADER_BYTES: usize = std::mem::size_of::<NodeHeader>();

/// A branch's pointer to one child.
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct ChildSlot {
    pub page: Le64,
    /// The child page's checksum: a stale or misdirected page is caught on descent.
    pub checksum: Le32,
    /// Journal bytes in this node still bound for the child.
    pub pending_bytes: Le32,
    /// Journal messages for this child with a sequence number at or below this have been
    /// flushed into it: they are dead here.
    pub watermark: Le64,
    /// Sequence number of the commit that wrote the child (for pruning diffs).
    pub birth: Le64,
}

/// A branch's pointer to one segment of its journal.
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct SegmentSlot {
    pub page: Le64,
    pub page_count: Le32,
    pub checksum: Le32,
    /// Encoded bytes of the segment.
    pub used_bytes: Le32,
    pub reserved: Le32,
    /// Highest sequence number in the segment: once every child's watermark reaches it the
    /// segment is dead.
    pub seq_max: Le64,
    /// The revision that wrote the segment (segments outlive the node versions that
    /// carry them, so the node's own birth does not tell).
    pub birth: Le64,
}

pub(crate) const SLOT_BYTES: usize = 32;
pub(crate) const SEGMENT_SLOT_BYTES: usize = 40;
const _: () = assert!(std::mem::size_of::<ChildSlot>() == SLOT_BYTES);
const _: () = assert!(std::mem::size_of::<SegmentSlot>() == SEGMENT_SLOT_BYTES);
const PIVOT_OVERHEAD_BYTES: usize = 4;

/// Exact encoded size and local prefix length of a branch with these pivots.
pub(crate) fn branch_layout(
    pivots: &[Key],
    implied_len: usize,
    segment_count: usize,
) -> (usize, usize) {
    let local_len = match (pivots.first(), pivots.last()) {
        (Some(first), Some(last)) => crate::key::common_prefix_len(first, last) - implied_len,
        _ => 0,
    };
    let pivot_bytes: usize = pivots
        .iter()
        .map(|pivot| PIVOT_OVERHEAD_BYTES + pivot.len() - implied_len - local_len)
        .sum();
    let used = HEADER_BYTES
        + local_len
        + (pivots.len() + 1) * SLOT_BYTES
        + segment_count * SEGMENT_SLOT_BYTES
        + pivot_bytes;
    (used, local_len)
}

/// What a branch page says, in the order it is written.
pub(crate) struct BranchContents<'a> {
    pub level: u8,
    pub implied_len: usize,
    pub seq_high: u64,
    pub pivots: &'a [Key],
    pub children: &'a [ChildSlot],
    pub segments: &'a [SegmentSlot],
}

/// Encodes a branch page of exactly `page_size` bytes.
pub(crate) fn encode_branch(contents: &BranchContents<'_>, page_size: usize) -> PageBytes {
    let BranchContents {
        level,
        implied_len,
        seq_high,
        pivots,
        children,
        segments,
    } = *contents;
    assert_eq!(pivots.len() + 1, children.len());
    let (used, local_len) = branch_layout(pivots, implied_len, segments.len());
    assert!(
        used <= page_size,
        "branch of {used} bytes does not fit a {page_size}-byte page"
    );
    let mut bytes = PageBytes::zeroed(page_size);
    let page = bytes.get_mut().expect("a new buffer has one handle");
    let header = NodeHeader {
        kind: PageKind::Branch as u8,
        format: FORMAT_VERSION,
        level,
        flags: 0,
        checksum: Le32::new(0),
        count: Le16::new(children.len() as u16),
        implied_prefix_len: Le16::new(implied_len as u16),
        local_prefix_len: Le16::new(local_len as u16),
        segment_count: Le16::new(segments.len() as u16),
        used_bytes: Le32::new(used as u32),
        seq_high: Le64::new(seq_high),
        reserved: Le32::new(0),
    };
    let mut writer = PageWriter { page, at: 0 };
    writer.put(bytemuck::bytes_of(&header));
    if let Some(first) = pivots.first() {
        writer.put(&first[implied_len..implied_len + local_len]);
    }
    writer.put(bytemuck::cast_slice(children));
    writer.put(bytemuck::cast_slice(segments));
    let mut pivot_at = writer.at + pivots.len() * 2;
    for pivot in pivots {
        writer.put(&(pivot_at as u16).to_le_bytes());
        pivot_at += 2 + pivot.len() - implied_len - local_len;
    }
    for pivot in pivots {
        let suffix = &pivot[implied_len + local_len..];
        writer.put(&(suffix.len() as u16).to_le_bytes());
        writer.put(suffix);
    }
    debug_assert_eq!(writer.at, used);
    seal_checksum(writer.page);
    bytes
}

/// A validated branch page.
pub(crate) struct BranchPage {
    pub id: PageId,
    bytes: PageBytes,
    level: u8,
    count: usize,
    segment_count: usize,
    implied_len: usize,
    seq_high: u64,
    local_prefix_end: usize,
    pivot_offsets_at: usize,
    /// The pivot suffixes' heads, for routing.
    heads: Box<[u64]>,
    /// What each journal segment may concern, kept once a lookup has loaded it: the
    /// slot names the segment's checksum, so what it holds can never change under this
    /// view. About a hundredth of the segments' bytes; not counted in the cache's budget.
    segment_keys: Box<[OnceLock<SegmentKeys>]>,
    /// Links to the views of the children and segments this view led to, set by the first
    /// load through it and allocated then (a writer's fresh views are rarely followed).
    /// See [`ChildLink`].
    child_links: OnceLock<Box<[OnceLock<ChildLink>]>>,
    segment_links: OnceLock<Box<[OnceLock<Weak<SegmentPage>>]>>,
}

/// A branch view's link to the view of one of its children, found by an earlier load: a
/// weak reference, so it keeps nothing in memory that the cache has let go (beyond the
/// view's small header). While anyone holds the child's view, following the link costs
/// one touch of that view instead of a cache lookup, which is a hash probe, a slot and a
/// shared lock: three cache misses on a large cache, and lines every reader thread
/// writes. The slot the link stands for names the child's checksum, and a view never
/// changes, so a live link is always the right page. A dead one stays dead (the lock is
/// set once) and the cache answers for that child from then on.
pub(crate) enum ChildLink {
    Leaf(Weak<LeafPage>),
    Branch(Weak<BranchPage>),
}

impl BranchPage {
    /// Validates `bytes` (whose checksum the caller verified) as a branch page.
    pub fn parse(id: PageId, bytes: PageBytes) -> Result<Self> {
        let header: NodeHeader = checked_header(id, &bytes, PageKind::Branch)?;
        let used = header.used_bytes.get() as usize;
        let reader = Reader::new(id, &bytes);
        if used > bytes.len() || used < HEADER_BYTES {
            return Err(reader.corrupted(format!("used bytes {used} outside the page")));
        }
        let reader = Reader::new(id, &bytes[..used]);
        let count = header.count.get() as usize;
        let segment_count = header.segment_count.get() as usize;
        if header.level == 0 || count == 0 {
            return Err(reader.corrupted(format!(
                "branch at level {} with {count} children",
                header.level
            )));
        }
        let local_len = header.local_prefix_len.get() as usize;
        let local_prefix_end = HEADER_BYTES + local_len;
        reader.bytes(HEADER_BYTES, local_len, "local prefix")?;
        let slots_len = count * SLOT_BYTES + segment_count * SEGMENT_SLOT_BYTES;
        reader.bytes(local_prefix_end, slots_len, "child and segment slots")?;
        let pivot_offsets_at = local_prefix_end + slots_len;
        reader.bytes(pivot_offsets_at, (count - 1) * 2, "pivot offsets")?;
        let page = Self {
            id,
            bytes: bytes.clone(),
            level: header.level,
            count,
            segment_count,
            implied_len: header.implied_prefix_len.get() as usize,
            seq_high: header.seq_high.get(),
            local_prefix_end,
            pivot_offsets_at,
            heads: Box::default(),
            segment_keys: (0..segment_count).map(|_| OnceLock::new()).collect(),
            child_links: OnceLock::new(),
            segment_links: OnceLock::new(),
        };
        let mut heads = Vec::with_capacity(count - 1);
        let mut previous: Option<&[u8]> = None;
        for index in 0..count - 1 {
            let offset: Le16 = reader.pod(pivot_offsets_at + index * 2, "pivot offset")?;
            let length: Le16 = reader.pod(offset.get() as usize, "pivot length")?;
            let pivot = reader.bytes(offset.get() as usize + 2, length.get() as usize, "pivot")?;
            if previous.is_some_and(|previous| previous >= pivot) {
                return Err(reader.corrupted(format!("pivot {index} is not above its predecessor")));
            }
            previous = Some(pivot);
            heads.push(key_head(pivot));
        }
        let page = Self {
            heads: heads.into(),
            ..page
        };
        for index in 0..count {
            let slot = page.child(index);
            if PageId(slot.page.get()).is_none() || slot.watermark.get() > page.seq_high {
                return Err(reader.corrupted(format!("child slot {index} is invalid: {slot:?}")));
            }
        }
        for index in 0..segment_count {
            let slot = page.segment(index);
            if PageId(slot.page.get()).is_none()
                || slot.page_count.get() == 0
                || slot.seq_max.get() > page.seq_high
            {
                return Err(reader.corrupted(format!("segment slot {index} is invalid: {slot:?}")));
            }
        }
        Ok(page)
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    /// Bytes the view holds in memory: the page, its heads and its links, counted whether
    /// or not they have been allocated yet. A dead link still keeps its target's view
    /// allocated (not the page bytes, only the view's own fields and reference counts), so
    /// each is counted at that worst: a branch's links cannot keep more than the budget
    /// says after the cache has let their children go.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        // What a weak reference keeps once its target is dropped: the counts and the view.
        let child_view = if self.level == 1 {
            size_of::<LeafPage>()
        } else {
            size_of::<Self>()
        };
        let child_kept = 2 * size_of::<usize>() + child_view;
        let segment_kept = 2 * size_of::<usize>() + size_of::<SegmentPage>();
        self.bytes.len()
            + self.heads.len() * 8
            + self.count * (size_of::<OnceLock<ChildLink>>() + child_kept)
            + self.segment_count * (size_of::<OnceLock<Weak<SegmentPage>>>() + segment_kept)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn implied_len(&self) -> usize {
        self.implied_len
    }

    pub fn seq_high(&self) -> u64 {
        self.seq_high
    }

    pub fn local_prefix(&self) -> &[u8] {
        &self.bytes[HEADER_BYTES..self.local_prefix_end]
    }

    pub fn child(&self, index: usize) -> ChildSlot {
        let at = self.local_prefix_end + index * SLOT_BYTES;
        bytemuck::pod_read_unaligned(&self.bytes[at..at + SLOT_BYTES])
    }

    pub fn segment_count(&self) -> usize {
        self.segment_count
    }

    pub fn segment(&self, index: usize) -> SegmentSlot {
        let at = self.local_prefix_end + self.count * SLOT_BYTES + index * SEGMENT_SLOT_BYTES;
        bytemuck::pod_read_unaligned(&self.bytes[at..at + SEGMENT_SLOT_BYTES])
    }

    /// Which of the first 64 segments may concern the key of `hash`, a bit each: those
    /// whose filter this view has kept and passes the key, and those whose filter it has
    /// not kept. The filters are separate allocations, so each probe is likely a cache
    /// miss; this loop only loads and combines, with no branch on what it loads, so the
    /// processor has every probe in flight at once instead of one after another.
    pub fn segments_concerning(&self, hash: KeyHash) -> u64 {
        let mut candidates = 0;
        for (index, keys) in self.segment_keys.iter().take(64).enumerate() {
            let concerns = keys.get().is_none_or(|keys| keys.may_concern(hash));
            candidates |= u64::from(concerns) << index;
        }
        candidates
    }

    /// The link to child `index`'s view ([`ChildLink`]).
    pub fn child_link(&self, index: usize) -> &OnceLock<ChildLink> {
        &self
            .child_links
            .get_or_init(|| (0..self.count).map(|_| OnceLock::new()).collect())[index]
    }

    /// The link to segment `index`'s view, as [`ChildLink`] is to a child's.
    pub fn segment_link(&self, index: usize) -> &OnceLock<Weak<SegmentPage>> {
        &self
            .segment_links
            .get_or_init(|| (0..self.segment_count).map(|_| OnceLock::new()).collect())[index]
    }

    /// Keeps what segment `index` (loaded for its slot) may concern.
    pub fn keep_segment_keys(&self, index: usize, keys: &SegmentKeys) {
        let _ = self.segment_keys[index].set(keys.clone());
    }

    /// Stored suffix of pivot `index` (between child `index` and `index + 1`).
    pub fn pivot_suffix(&self, index: usize) -> &[u8] {
        let at = self.pivot_offsets_at + index * 2;
        let offset = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize;
        let length = u16::from_le_bytes([self.bytes[offset], self.bytes[offset + 1]]) as usize;
        &self.bytes[offset + 2..offset + 2 + length]
    }

    /// Full pivot `index` given the implied prefix bytes.
    pub fn pivot(&self, implied_prefix: &[u8], index: usize) -> Key {
        joined(&[
            implied_prefix,
            self.local_prefix(),
            self.pivot_suffix(index),
        ])
    }

    /// The child whose range holds `key_after_implied`.
    pub fn route(&self, key_after_implied: &[u8]) -> usize {
        match search_split(
            self.local_prefix(),
            key_after_implied,
            &self.heads,
            |index| self.pivot_suffix(index),
        ) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }

    /// The child whose range holds the keys just below `key_after_implied`.
    pub fn route_below(&self, key_after_implied: &[u8]) -> usize {
        match search_split(
            self.local_prefix(),
            key_after_implied,
            &self.heads,
            |index| self.pivot_suffix(index),
        ) {
            Ok(index) | Err(index) => index,
        }
    }
}

/// Exact encoded size of a branch with these pivots and `segment_count` segment slots.
pub(crate) fn branch_layout_bytes(
    pivots: &[Key],
    implied_len: usize,
    segment_count: usize,
) -> usize {
    branch_layout(pivots, implied_len, segment_count).0
}
