//! Journal bookkeeping of a transient branch: handing a child its messages, folding
//! stored segments back into the buffer, exact per-child byte tallies, and writing the
//! buffer out as a new segment at commit.

use thunderhead_disk::PageStore;

use crate::config::JOURNAL_SEGMENTS_MAX;
use crate::error::Result;
use crate::key::Key;
use crate::node::{Branch, Buffer, PointMessage, RangeMessage};
use crate::page::{SegmentSlot, encode_segment, point_message_bytes, range_message_weight};
use crate::pager::Pager;
use crate::tree::view::segment_collect;

/// Removes every message bound for child `index` and returns them as one batch. The
/// child's watermark moves to the branch's newest sequence number, which kills its
/// messages in the stored segments without rewriting them.
pub(crate) fn take_for_child<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    index: usize,
) -> Result<Buffer> {
    let (low, high) = branch.child_bounds(index);
    let (low, high) = (low.map(<[u8]>::to_vec), high.map(<[u8]>::to_vec));
    let watermark = branch.children[index].watermark;
    let mut batch = Buffer::default();
    for slot in &branch.segments {
        if slot.seq_max.get() > watermark {
            let segment = pager.load_segment(slot)?;
            segment_collect(
                &segment,
                watermark,
                low.as_deref(),
                high.as_deref(),
                &mut batch,
            );
        }
    }
    // Ranges straddling the child are cut, which changes what they weigh for the others:
    // take all range bytes out of the tallies and put back those of what remains.
    adjust_range_tallies(branch, false);
    let from_buffer = branch.buffer.split_out(low.as_deref(), high.as_deref());
    adjust_range_tallies(branch, true);
    batch.absorb(from_buffer);
    let child = &mut branch.children[index];
    child.watermark = branch.seq_high;
    child.pending_bytes = 0;
    Ok(batch)
}

fn adjust_range_tallies(branch: &mut Branch, add: bool) {
    for position in 0..branch.buffer.ranges.len() {
        let range = &branch.buffer.ranges[position].range;
        let bytes = range_message_weight(range) as u64;
        for index in branch.overlapping(range) {
            let tally = &mut branch.children[index].pending_bytes;
            *tally = if add {
                *tally + bytes
            } else {
                tally.saturating_sub(bytes)
            };
        }
    }
}

/// Moves the live messages of the newest `count` segments into the buffer and drops the
/// segments. Used before a branch's fences change (split, merge) and to merge segments.
/// The tallies are kept exact incrementally: a message leaving a segment stops counting
/// there and counts again as it enters the buffer (or not at all if something newer is
/// already there), so a commit that merges a small segment does not recount the journal.
pub(crate) fn materialize<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    count: usize,
) -> Result<()> {
    let slots: Vec<SegmentSlot> = branch
        .segments
        .drain(..count.min(branch.segments.len()))
        .collect();
    for slot in &slots {
        let segment = pager.load_segment(slot)?;
        // Its messages move to the buffer: a segment this writer wrote is garbage now.
        pager.discard(segment_extent(slot), None);
        let mut child = 0;
        for index in 0..segment.point_count() {
            let key = segment.point_key(index);
            child = branch.route_from(child, &key);
            if segment.point_seq(index) <= branch.children[child].watermark {
                continue;
            }
            let message = segment.point_message(index);
            let bytes = point_message_bytes(&key, &message) as u64;
            uncount(branch, child, bytes);
            branch.add_routed_point(child, key, message);
        }
        for index in 0..segment.range_count() {
            let message = segment.range_message(index);
            let bytes = range_message_weight(&message.range) as u64;
            for child in branch.overlapping(&message.range) {
                if message.seq > branch.children[child].watermark {
                    uncount(branch, child, bytes);
                }
            }
            for piece in live_range_pieces(branch, &message) {
                branch.add_range(piece);
            }
        }
    }
    Ok(())
}

/// A stored tally is read from disk and may be short; it saturates rather than trusts it,
/// and `check()` reports the mismatch.
fn uncount(branch: &mut Branch, child: usize, bytes: u64) {
    let tally = &mut branch.children[child].pending_bytes;
    *tally = tally.saturating_sub(bytes);
}

/// The parts of a stored range message still live: those over children whose watermark
/// is below it, joined where adjacent.
fn live_range_pieces(branch: &Branch, message: &RangeMessage) -> Vec<RangeMessage> {
    let mut pieces: Vec<RangeMessage> = Vec::new();
    let mut joinable = false;
    for index in branch.overlapping(&message.range) {
        if message.seq <= branch.children[index].watermark {
            joinable = false;
            continue;
        }
        let (low, high) = branch.child_bounds(index);
        let Some(piece) = message.range.clip(low, high) else {
            continue;
        };
        match pieces.last_mut() {
            Some(last) if joinable => last.range.end = piece.end,
            _ => pieces.push(RangeMessage {
                seq: message.seq,
                range: piece,
            }),
        }
        joinable = true;
    }
    pieces
}

/// Per-child bytes of live messages in the stored segments.
pub(crate) fn segment_tallies<S: PageStore>(pager: &Pager<S>, branch: &Branch) -> Result<Vec<u64>> {
    let mut tallies = vec![0u64; branch.children.len()];
    for slot in &branch.segments {
        let segment = pager.load_segment(slot)?;
        let mut child = 0;
        for index in 0..segment.point_count() {
            let key = segment.point_key(index);
            child = branch.route_from(child, &key);
            if segment.point_seq(index) > branch.children[child].watermark {
                tallies[child] += point_message_bytes(&key, &segment.point_message(index)) as u64;
            }
        }
        for index in 0..segment.range_count() {
            let message = segment.range_message(index);
            let bytes = range_message_weight(&message.range) as u64;
            for child in branch.overlapping(&message.range) {
                if message.seq > branch.children[child].watermark {
                    tallies[child] += bytes;
                }
            }
        }
    }
    Ok(tallies)
}

/// Readies a journal for commit: drops dead segments and merges small or surplus ones
/// into the buffer, so that a journal keeps few segments and little dead weight. The
/// merged messages may be cut into per-child pieces that weigh more than before, so the
/// caller drains the journal afterwards.
pub(crate) fn compact_journal<S: PageStore>(pager: &Pager<S>, branch: &mut Branch) -> Result<()> {
    let watermark_min = branch
        .children
        .iter()
        .map(|child| child.watermark)
        .min()
        .unwrap_or(0);
    branch.segments.retain(|slot| {
        let live = slot.seq_max.get() > watermark_min;
        if !live {
            pager.discard(segment_extent(slot), None);
        }
        live
    });
    let limits = pager.limits();
    let stored_bytes: usize = branch
        .segments
        .iter()
        .map(|slot| slot.used_bytes.get() as usize)
        .sum();
    if branch.segments.len() >= JOURNAL_SEGMENTS_MAX
        || stored_bytes > 2 * limits.journal_bytes_max + limits.page_size_bytes
    {
        materialize(pager, branch, usize::MAX)?;
    } else if !branch.buffer.is_empty() {
        // Merge newer segments no larger than what is being written: sizes then double
        // down the chain, like a binary counter. Merging those up to twice its size
        // rewrote most of a journal every other commit (a third more segment bytes
        // written in the batch benchmark).
        let mut merged_bytes = branch.buffer.bytes();
        let mut count = 0;
        while let Some(slot) = branch.segments.get(count) {
            let used = slot.used_bytes.get() as usize;
            if used > merged_bytes.max(limits.page_size_bytes) {
                break;
            }
            merged_bytes += used;
            count += 1;
        }
        if count > 0 {
            materialize(pager, branch, count)?;
        }
    }
    Ok(())
}

/// Writes the buffer out as the journal's newest segment (after `compact_journal`).
pub(crate) fn write_journal<S: PageStore>(
    pager: &Pager<S>,
    branch: &mut Branch,
    birth: u64,
) -> Result<()> {
    let limits = pager.limits();
    debug_assert!(branch.segments.len() < JOURNAL_SEGMENTS_MAX);
    if branch.buffer.is_empty() {
        return Ok(());
    }
    let buffer = std::mem::take(&mut branch.buffer);
    let points = buffer
        .points
        .iter()
        .map(|(key, message): (&Key, &PointMessage)| (key.as_slice(), message));
    let (bytes, checksum, used) = encode_segment(points, &buffer.ranges, limits.page_size_bytes);
    let page_count = (bytes.len() / limits.page_size_bytes) as u32;
    let page = pager.write_cached(bytes, checksum)?;
    branch.segments.insert(
        0,
        SegmentSlot {
            page: page.0.into(),
            page_count: page_count.into(),
            checksum: checksum.into(),
            used_bytes: (used as u32).into(),
            reserved: 0.into(),
            seq_max: buffer.seq_max().into(),
            birth: birth.into(),
        },
    );
    Ok(())
}

fn segment_extent(slot: &SegmentSlot) -> thunderhead_disk::Extent {
    thunderhead_disk::Extent::new(
        thunderhead_disk::PageId(slot.page.get()),
        u64::from(slot.page_count.get()),
    )
}
