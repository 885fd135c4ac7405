//! The free-space state as stored: whole (format 1), or as the changes since the last
//! whole state (format 2, a *delta*), which a commit writes instead while they are few.
//!
//! A whole state is written as an extent of its own (or inside the meta slot when it
//! fits there); it becomes the **base**. The commits after it store only the records
//! their state adds to the base's and removes from it, inside the meta slot page they
//! write anyway, until those no longer fit there; then a new base is written. A small
//! commit on a fragmented store (tens of thousands of free runs) so writes no free-space
//! pages at all, and encodes a few hundred records at most, instead of rewriting the
//! whole list every time.
//!
//! Whole (kind 5, format 1):
//! ```text
//! 0   kind 5 | format 1 | reserved u16 | crc32
//! 8   end u64
//! 16  free_count u32 | recent_count u32
//! 24  pending_count u64
//! 32  free_count    × (start u64, page_count u64)     free now, sorted, apart
//! ..  recent_count  × (start u64, page_count u64)     written since the last durable commit
//! ..  pending_count × (freed u64, born u64, start u64, page_count u64)
//! ```
//! Delta (kind 5, format 2), always inside a meta slot:
//! ```text
//! 0   kind 5 | format 2 | flags u8 | reserved u8 | crc32
//! 8   end u64
//! 16  base page u64 | 24 base page_count u32 | 28 base crc32 u32 | 32 base born u64
//! 40  free added u32 | free removed u32 | recent added u32 | recent removed u32
//! 56  pending added u32 | pending removed u32
//! 64  the six lists in that order, each strictly increasing: runs of 16 bytes as above,
//!     pending runs of 32
//! ```
//! Flag bit 0: the base's recently written runs are all gone (recent removed is then
//! empty, and recent added lists the runs written since). Other bits are damage.

use std::collections::BTreeSet;

use super::changes::{Changes, PendingRun, Run, SetChanges};
use super::{Base, Extent, FIRST_DATA_PAGE, FREE_SPACE_PAGE_KIND, FreeSpace};
use crate::{Error, PageId, Result, page_checksum, seal_checksum};

const WHOLE_FORMAT: u8 = 1;
const DELTA_FORMAT: u8 = 2;
const WHOLE_HEADER_BYTES: usize = 32;
const DELTA_HEADER_BYTES: usize = 64;
const RUN_BYTES: usize = 16;
const PENDING_BYTES: usize = 32;
/// Delta flag: the base's recently written runs are all gone.
const RECENT_CLEARED: u8 = 1;

/// A stored state, decoded.
#[derive(Debug)]
pub enum Stored {
    /// The whole state.
    Whole(Box<FreeSpace>),
    /// Changes against a whole state stored elsewhere, which the caller reads.
    Delta(Delta),
}

impl Stored {
    /// The whole state; a delta where one is required (a base) is damage.
    pub fn into_whole(self, page: PageId) -> Result<FreeSpace> {
        match self {
            Stored::Whole(space) => Ok(*space),
            Stored::Delta(_) => Err(Error::corrupted(
                page,
                "free space: a base that is itself a delta",
            )),
        }
    }
}

/// The changes a version's free space makes to a base.
#[derive(Debug, PartialEq, Eq)]
pub struct Delta {
    base: Base,
    end: u64,
    changes: Changes,
}

impl FreeSpace {
    /// Bytes the whole encoded state takes.
    pub fn encoded_len(&self) -> usize {
        let pending = self.pending.len()
            + self.held.values().map(Vec::len).sum::<usize>()
            + self.releasable.iter().map(BTreeSet::len).sum::<usize>();
        WHOLE_HEADER_BYTES
            + (self.free.len() + self.recent.len()) * RUN_BYTES
            + pending * PENDING_BYTES
    }

    /// Pages the whole encoded state takes.
    pub fn encoded_page_count(&self, page_size: usize) -> u64 {
        self.encoded_len().div_ceil(page_size) as u64
    }

    /// Bytes the delta against the base takes; `usize::MAX` when there is no base or the
    /// changes since it are too many to store as one.
    pub fn delta_len(&self) -> usize {
        self.since_base.as_ref().map_or(usize::MAX, delta_bytes)
    }

    /// The whole state as an extent of `page_count` pages (at least
    /// [`FreeSpace::encoded_page_count`]), checksummed; returns the bytes and checksum.
    pub fn encode(&self, page_size: usize, page_count: u64) -> (Vec<u8>, u32) {
        let mut bytes = self.encode_whole();
        assert!(
            bytes.len() <= page_count as usize * page_size,
            "extent too small"
        );
        bytes.resize(page_count as usize * page_size, 0);
        let checksum = seal_checksum(&mut bytes);
        (bytes, checksum)
    }

    /// The whole state in exactly [`FreeSpace::encoded_len`] bytes, checksummed, to be
    /// kept inside a meta slot when it fits there.
    pub fn encode_inline(&self) -> (Vec<u8>, u32) {
        let mut bytes = self.encode_whole();
        let checksum = seal_checksum(&mut bytes);
        (bytes, checksum)
    }

    /// The changes against the base in exactly [`FreeSpace::delta_len`] bytes,
    /// checksummed, to be kept inside a meta slot. There must be a base and tracked
    /// changes ([`FreeSpace::delta_len`] below `usize::MAX`).
    pub fn encode_delta(&self) -> (Vec<u8>, u32) {
        let base = self.base.expect("a delta needs a base");
        let changes = self.since_base.as_ref().expect("changes tracked");
        encode_delta(base, self.end, changes)
    }

    fn encode_whole(&self) -> Vec<u8> {
        let pending: Vec<(u64, u64, Extent)> = self.pending_extents().collect();
        let mut bytes = Vec::with_capacity(self.encoded_len());
        bytes.extend_from_slice(&[FREE_SPACE_PAGE_KIND, WHOLE_FORMAT, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&self.end.to_le_bytes());
        bytes.extend_from_slice(&(self.free.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(self.recent.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(pending.len() as u64).to_le_bytes());
        for (&start, &len) in &self.free {
            put_run(&mut bytes, (start, len));
        }
        for &run in &self.recent {
            put_run(&mut bytes, run);
        }
        for (freed, born, extent) in pending {
            put_pending(
                &mut bytes,
                PendingRun {
                    freed,
                    born,
                    start: extent.start.0,
                    page_count: extent.page_count,
                },
            );
        }
        bytes
    }

    /// Decodes a stored state read from `page`. Nothing in `bytes` is trusted: counts,
    /// order and bounds are all checked.
    pub fn decode(page: PageId, bytes: &[u8], expected_checksum: u32) -> Result<Stored> {
        let corrupted = |reason: &str| Error::corrupted(page, format!("free space: {reason}"));
        if bytes.len() < WHOLE_HEADER_BYTES {
            return Err(corrupted("shorter than its header"));
        }
        let actual = page_checksum(bytes);
        let stored = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if actual != stored || actual != expected_checksum {
            return Err(Error::ChecksumMismatch {
                page,
                expected: expected_checksum,
                actual,
            });
        }
        let mut reader = Reader { page, bytes, at: 8 };
        match (bytes[0], bytes[1]) {
            (FREE_SPACE_PAGE_KIND, WHOLE_FORMAT) => {
                decode_whole(reader).map(|space| Stored::Whole(Box::new(space)))
            }
            (FREE_SPACE_PAGE_KIND, DELTA_FORMAT) => {
                if bytes.len() < DELTA_HEADER_BYTES {
                    return Err(corrupted("shorter than its header"));
                }
                let flags = bytes[2];
                if flags & !RECENT_CLEARED != 0 {
                    return Err(corrupted("unknown delta flags"));
                }
                let recent_cleared = flags & RECENT_CLEARED != 0;
                let end = reader.word()?;
                let base = Base {
                    extent: Extent::new(PageId(reader.word()?), u64::from(reader.half()?)),
                    checksum: reader.half()?,
                    born: reader.word()?,
                };
                if base.extent.page_count == 0
                    || base.extent.start.0 < FIRST_DATA_PAGE
                    || base
                        .extent
                        .start
                        .0
                        .checked_add(base.extent.page_count)
                        .is_none_or(|stop| stop > end)
                {
                    return Err(corrupted("base extent empty or outside the store"));
                }
                let counts: Vec<usize> = (0..6)
                    .map(|_| reader.half().map(|count| count as usize))
                    .collect::<Result<_>>()?;
                let runs = counts[..4].iter().sum::<usize>().checked_mul(RUN_BYTES);
                let pendings = counts[4..].iter().sum::<usize>().checked_mul(PENDING_BYTES);
                let needed = runs.zip(pendings).and_then(|(r, p)| r.checked_add(p));
                if needed.is_none_or(|needed| needed > bytes.len() - DELTA_HEADER_BYTES) {
                    return Err(corrupted("entry counts exceed the extent"));
                }
                reader.at = DELTA_HEADER_BYTES;
                let free_added = reader.sorted(counts[0], Reader::run)?;
                let free_removed = reader.sorted(counts[1], Reader::run)?;
                let recent_added = reader.sorted(counts[2], Reader::run)?;
                let recent_removed = reader.sorted(counts[3], Reader::run)?;
                if recent_cleared && !recent_removed.is_empty() {
                    return Err(corrupted(
                        "a delta removes written runs from a cleared list",
                    ));
                }
                let pending_added = reader.sorted(counts[4], Reader::pending)?;
                let pending_removed = reader.sorted(counts[5], Reader::pending)?;
                let changes = Changes {
                    free: changes(free_added, free_removed, &corrupted)?,
                    recent: changes(recent_added, recent_removed, &corrupted)?,
                    recent_cleared,
                    pending: changes(pending_added, pending_removed, &corrupted)?,
                };
                Ok(Stored::Delta(Delta { base, end, changes }))
            }
            _ => Err(corrupted("not a free-space state of a known format")),
        }
    }

    /// Checks what decoding cannot see record by record: every run non-empty and inside
    /// `[FIRST_DATA_PAGE, end)`, free runs apart, no run freed before it was written,
    /// no free or pending run overlapping another.
    fn validate(&self, page: PageId) -> Result<()> {
        let corrupted = |reason: &str| Err(Error::corrupted(page, format!("free space: {reason}")));
        let inside = |start: u64, len: u64| {
            len > 0
                && start >= FIRST_DATA_PAGE
                && start.checked_add(len).is_some_and(|stop| stop <= self.end)
        };
        if self.end < FIRST_DATA_PAGE {
            return corrupted("end below the first data page");
        }
        let mut previous_end = FIRST_DATA_PAGE;
        for (&start, &len) in &self.free {
            if !inside(start, len) || start < previous_end {
                return corrupted("free runs out of order, empty or past the end");
            }
            previous_end = start + len;
        }
        if self.recent.iter().any(|&(start, len)| !inside(start, len)) {
            return corrupted("recently written run empty or outside the store");
        }
        let mut claimed: Vec<(u64, u64)> = self.free.iter().map(|(&s, &l)| (s, l)).collect();
        for run in &self.pending {
            if !inside(run.start, run.page_count) || run.born >= run.freed {
                return corrupted(
                    "pending run empty, outside the store, or freed before it was written",
                );
            }
            claimed.push((run.start, run.page_count));
        }
        claimed.sort_unstable();
        if claimed
            .windows(2)
            .any(|pair| pair[0].0 + pair[0].1 > pair[1].0)
        {
            return corrupted("runs overlap");
        }
        Ok(())
    }
}

impl Delta {
    /// The whole state these changes are against.
    pub fn base(&self) -> Base {
        self.base
    }

    /// The version's state: `base`, the whole state decoded from [`Delta::base`], with
    /// these changes made. Every removed record must be in the base and no added one;
    /// the result is validated as a decoded whole state is.
    pub fn apply(self, page: PageId, mut space: FreeSpace) -> Result<FreeSpace> {
        let corrupted = |reason: &str| Err(Error::corrupted(page, format!("free space: {reason}")));
        space.set_base(Some(self.base));
        space.end = self.end;
        let Changes {
            free,
            recent,
            recent_cleared,
            pending,
        } = self.changes;
        for (start, len) in free.removed {
            if space.free.get(&start) != Some(&len) {
                return corrupted("a delta removes a free run its base lacks");
            }
            space.remove_free(start, len);
        }
        for (start, len) in free.added {
            if space.free.contains_key(&start) {
                return corrupted("a delta adds a free run its base has");
            }
            space.insert_free(start, len);
        }
        if recent_cleared {
            space.clear_recent();
        }
        for run in recent.removed {
            if !space.recent.contains(&run) {
                return corrupted("a delta removes a written run its base lacks");
            }
            space.remove_recent(run);
        }
        for run in recent.added {
            if space.recent.contains(&run) {
                return corrupted("a delta adds a written run its base has");
            }
            space.insert_recent(run);
        }
        for run in pending.removed {
            if !space.pending.remove(&run) {
                return corrupted("a delta removes a pending run its base lacks");
            }
            space.pending_gone(run);
        }
        for run in pending.added {
            if space.pending.contains(&run) {
                return corrupted("a delta adds a pending run its base has");
            }
            space.insert_pending(run);
        }
        space.validate(page)?;
        Ok(space)
    }

    /// The delta as stored, checksummed.
    pub fn encode(&self) -> (Vec<u8>, u32) {
        encode_delta(self.base, self.end, &self.changes)
    }
}

/// Bytes a delta of `changes` takes.
fn delta_bytes(changes: &Changes) -> usize {
    DELTA_HEADER_BYTES
        + (changes.free.len() + changes.recent.len()) * RUN_BYTES
        + changes.pending.len() * PENDING_BYTES
}

fn encode_delta(base: Base, end: u64, changes: &Changes) -> (Vec<u8>, u32) {
    let mut bytes = Vec::with_capacity(delta_bytes(changes));
    let flags = if changes.recent_cleared {
        RECENT_CLEARED
    } else {
        0
    };
    bytes.extend_from_slice(&[FREE_SPACE_PAGE_KIND, DELTA_FORMAT, flags, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&end.to_le_bytes());
    bytes.extend_from_slice(&base.extent.start.0.to_le_bytes());
    bytes.extend_from_slice(&(base.extent.page_count as u32).to_le_bytes());
    bytes.extend_from_slice(&base.checksum.to_le_bytes());
    bytes.extend_from_slice(&base.born.to_le_bytes());
    let Changes {
        free,
        recent,
        pending,
        ..
    } = changes;
    for count in [
        free.added.len(),
        free.removed.len(),
        recent.added.len(),
        recent.removed.len(),
        pending.added.len(),
        pending.removed.len(),
    ] {
        bytes.extend_from_slice(&(count as u32).to_le_bytes());
    }
    for set in [&free.added, &free.removed, &recent.added, &recent.removed] {
        for &run in set {
            put_run(&mut bytes, run);
        }
    }
    for set in [&pending.added, &pending.removed] {
        for &run in set {
            put_pending(&mut bytes, run);
        }
    }
    let checksum = seal_checksum(&mut bytes);
    (bytes, checksum)
}

fn decode_whole(mut reader: Reader<'_>) -> Result<FreeSpace> {
    let end = reader.word()?;
    let (free_count, recent_count) = (u64::from(reader.half()?), u64::from(reader.half()?));
    let pending_count = reader.word()?;
    let room = (reader.bytes.len() - WHOLE_HEADER_BYTES) as u64;
    let needed = (free_count + recent_count)
        .checked_mul(RUN_BYTES as u64)
        .zip(pending_count.checked_mul(PENDING_BYTES as u64))
        .and_then(|(free, pending)| free.checked_add(pending));
    if needed.is_none_or(|needed| needed > room) {
        return Err(reader.corrupted("entry counts exceed the extent"));
    }
    let mut space = FreeSpace::new(end);
    space.end = end;
    for _ in 0..free_count {
        let (start, len) = reader.run()?;
        // A start listed twice would be lost in the map: order is checked here.
        if len == 0
            || space
                .free
                .last_key_value()
                .is_some_and(|(&before, &before_len)| start < before.saturating_add(before_len))
        {
            return Err(reader.corrupted("free runs out of order, empty or past the end"));
        }
        space.insert_free(start, len);
    }
    for _ in 0..recent_count {
        let run = reader.run()?;
        space.insert_recent(run);
    }
    for _ in 0..pending_count {
        let run = reader.pending()?;
        space.insert_pending(run);
    }
    space.validate(reader.page)?;
    Ok(space)
}

fn changes<T: Ord + Copy>(
    added: BTreeSet<T>,
    removed: BTreeSet<T>,
    corrupted: &dyn Fn(&str) -> Error,
) -> Result<SetChanges<T>> {
    if added.iter().any(|record| removed.contains(record)) {
        return Err(corrupted("a delta both adds and removes a record"));
    }
    Ok(SetChanges { added, removed })
}

fn put_run(bytes: &mut Vec<u8>, (start, len): Run) {
    bytes.extend_from_slice(&start.to_le_bytes());
    bytes.extend_from_slice(&len.to_le_bytes());
}

fn put_pending(bytes: &mut Vec<u8>, run: PendingRun) {
    for word in [run.freed, run.born, run.start, run.page_count] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
}

/// Reads little-endian fields in order, every read bounds-checked.
struct Reader<'a> {
    page: PageId,
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn corrupted(&self, reason: &str) -> Error {
        Error::corrupted(self.page, format!("free space: {reason}"))
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let field = self
            .bytes
            .get(self.at..self.at + N)
            .ok_or_else(|| self.corrupted("entries run past the extent"))?;
        self.at += N;
        Ok(field.try_into().expect("N bytes"))
    }

    fn word(&mut self) -> Result<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn half(&mut self) -> Result<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn run(&mut self) -> Result<Run> {
        Ok((self.word()?, self.word()?))
    }

    fn pending(&mut self) -> Result<PendingRun> {
        Ok(PendingRun {
            freed: self.word()?,
            born: self.word()?,
            start: self.word()?,
            page_count: self.word()?,
        })
    }

    /// `count` records, each greater than the one before.
    fn sorted<T: Ord + Copy>(
        &mut self,
        count: usize,
        read: fn(&mut Self) -> Result<T>,
    ) -> Result<BTreeSet<T>> {
        let mut records = BTreeSet::new();
        for _ in 0..count {
            let record = read(self)?;
            if records.last().is_some_and(|last| *last >= record) {
                return Err(self.corrupted("a delta's records out of order"));
            }
            records.insert(record);
        }
        Ok(records)
    }
}

impl PartialEq for FreeSpace {
    /// Equal allocation states (what is tracked as fresh, the base and the changes since
    /// it are not part of the state).
    fn eq(&self, other: &Self) -> bool {
        self.end == other.end
            && self.free == other.free
            && self.pending_extents().eq(other.pending_extents())
            && self.recent == other.recent
    }
}
