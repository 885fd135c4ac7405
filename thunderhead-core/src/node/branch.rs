use super::{Buffer, Fences, NodeRef, PointMessage, RangeMessage};
use crate::key::{Key, KeyRange};
use crate::page::{SegmentSlot, point_message_bytes, range_message_weight};

/// A transient branch: pivots, children, and a journal made of an in-memory buffer in
/// front of the stored segments it had when it was read.
#[derive(Debug)]
pub(crate) struct Branch {
    pub level: u8,
    /// `pivots[i]` separates child `i` (below) from child `i + 1` (at and above).
    pub pivots: Vec<Key>,
    pub children: Vec<Child>,
    pub buffer: Buffer,
    /// Stored journal segments, newest first.
    pub segments: Vec<SegmentSlot>,
    /// Highest sequence number ever journaled here.
    pub seq_high: u64,
}

/// One child of a branch with the journal bookkeeping that concerns it.
#[derive(Debug)]
pub(crate) struct Child {
    pub node: NodeRef,
    /// Segment messages for this child at or below this sequence number were flushed.
    pub watermark: u64,
    /// Journal bytes (buffer and live segment messages) bound for this child.
    pub pending_bytes: u64,
}

/// Bytes one child costs in a branch beyond its pivot: the child slot and pivot framing.
pub(crate) const BRANCH_ENTRY_OVERHEAD_BYTES: usize = 32 + 4;

impl Branch {
    /// Index of the child whose range holds `key`.
    pub fn route(&self, key: &[u8]) -> usize {
        self.pivots.partition_point(|pivot| pivot.as_slice() <= key)
    }

    /// [`Branch::route`] for a key that routes to child `from` or beyond, as the next of
    /// a sorted run of keys does: it gallops forward from `from`, so a run of `k` keys
    /// over `n` children compares about `k log(n / k)` pivots instead of `k log n`.
    pub fn route_from(&self, from: usize, key: &[u8]) -> usize {
        let rest = &self.pivots[from.min(self.pivots.len())..];
        let mut high = 1;
        while high <= rest.len() && rest[high - 1].as_slice() <= key {
            high *= 2;
        }
        let low = high / 2;
        let high = high.min(rest.len());
        let index = from + low + rest[low..high].partition_point(|pivot| pivot.as_slice() <= key);
        debug_assert_eq!(index, self.route(key));
        index
    }

    /// Index of the child whose range holds the keys just below `key`.
    pub fn route_below(&self, key: &[u8]) -> usize {
        self.pivots.partition_point(|pivot| pivot.as_slice() < key)
    }

    /// The children whose ranges overlap `range`.
    pub fn overlapping(&self, range: &KeyRange) -> std::ops::RangeInclusive<usize> {
        let first = self.route(&range.start);
        let last = match &range.end {
            Some(end) => self.route_below(end),
            None => self.children.len() - 1,
        };
        first..=last.max(first)
    }

    /// Child `index`'s bounds among its siblings (`None` where the branch's own fence
    /// applies).
    pub fn child_bounds(&self, index: usize) -> (Option<&[u8]>, Option<&[u8]>) {
        let low = index
            .checked_sub(1)
            .map(|before| self.pivots[before].as_slice());
        let high = self.pivots.get(index).map(Key::as_slice);
        (low, high)
    }

    /// Child `index`'s fences given the branch's own.
    pub fn child_fences(&self, index: usize, own: &Fences) -> Fences {
        let (low, high) = self.child_bounds(index);
        Fences {
            low: low.map(Key::from_slice).or_else(|| own.low.clone()),
            high: high.map(Key::from_slice).or_else(|| own.high.clone()),
        }
    }

    pub fn pending_total(&self) -> u64 {
        self.children.iter().map(|child| child.pending_bytes).sum()
    }

    /// The child with the most journal bytes waiting: the next to flush.
    pub fn heaviest_child(&self) -> usize {
        let mut heaviest = 0;
        for (index, child) in self.children.iter().enumerate() {
            if child.pending_bytes > self.children[heaviest].pending_bytes {
                heaviest = index;
            }
        }
        heaviest
    }

    /// Weight for fill and split decisions.
    pub fn weight(&self) -> usize {
        self.pivots
            .iter()
            .map(|pivot| BRANCH_ENTRY_OVERHEAD_BYTES + pivot.len())
            .sum::<usize>()
            + BRANCH_ENTRY_OVERHEAD_BYTES
    }

    /// Adds a point message to the journal.
    pub fn add_point(&mut self, key: Key, message: PointMessage) {
        let index = self.route(&key);
        self.add_routed_point(index, key, message);
    }

    /// [`Branch::add_point`] for a key the caller has routed to child `index`.
    pub fn add_routed_point(&mut self, index: usize, key: Key, message: PointMessage) {
        self.seq_high = self.seq_high.max(message.seq);
        let displaced = self.buffer.insert_point(key, message);
        let child = &mut self.children[index];
        child.pending_bytes += displaced.added_bytes as u64;
        // A point displaces only an older message of its own key: the same child's.
        child.pending_bytes = child
            .pending_bytes
            .saturating_sub(displaced.removed_bytes as u64);
    }

    /// Adds a range tombstone to the journal. Its bytes count against every child it
    /// overlaps, since a flush of any of them carries a piece of it.
    pub fn add_range(&mut self, message: RangeMessage) {
        self.seq_high = self.seq_high.max(message.seq);
        let overlapping = self.overlapping(&message.range);
        let bytes = range_message_weight(&message.range) as u64;
        let removed = self.buffer.insert_range(message);
        for index in overlapping {
            self.children[index].pending_bytes += bytes;
        }
        for (removed_key, bytes) in removed {
            let child = self.route(&removed_key);
            self.children[child].pending_bytes = self.children[child]
                .pending_bytes
                .saturating_sub(bytes as u64);
        }
    }

    /// Adds a batch that arrived from the parent.
    pub fn absorb(&mut self, batch: Buffer) {
        let mut index = 0;
        for (key, message) in batch.points {
            index = self.route_from(index, &key);
            self.add_routed_point(index, key, message);
        }
        for range in batch.ranges {
            self.add_range(range);
        }
    }

    /// Adds the bytes of the buffer's messages to the per-child tallies (after the tallies
    /// were reset and the segments counted).
    pub fn count_buffer(&mut self) {
        let mut tallies = vec![0u64; self.children.len()];
        let mut index = 0;
        for (key, message) in &self.buffer.points {
            index = self.route_from(index, key);
            tallies[index] += point_message_bytes(key, message) as u64;
        }
        for range in &self.buffer.ranges {
            let bytes = range_message_weight(&range.range) as u64;
            for index in self.overlapping(&range.range) {
                tallies[index] += bytes;
            }
        }
        for (child, tally) in self.children.iter_mut().zip(tallies) {
            child.pending_bytes += tally;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::StoredRef;
    use thunderhead_disk::PageId;

    fn branch(pivots: &[&[u8]]) -> Branch {
        let child = || Child {
            node: NodeRef::Stored(StoredRef {
                page: PageId(1),
                checksum: 0,
                birth: 0,
            }),
            watermark: 0,
            pending_bytes: 0,
        };
        Branch {
            level: 1,
            pivots: pivots.iter().map(|pivot| pivot[..].into()).collect(),
            children: (0..=pivots.len()).map(|_| child()).collect(),
            buffer: Buffer::default(),
            segments: Vec::new(),
            seq_high: 0,
        }
    }

    /// Galloping from any child at or before a key's own lands where a binary search
    /// over all pivots does, on pivots and between them, at both ends.
    #[test]
    fn route_from_agrees_with_route() {
        let pivots: Vec<Vec<u8>> = (1..40u8).map(|i| vec![i * 3]).collect();
        let refs: Vec<&[u8]> = pivots.iter().map(Vec::as_slice).collect();
        let many = branch(&refs);
        for key in 0..=130u8 {
            let key = [key];
            let expected = many.route(&key);
            for from in 0..=expected {
                assert_eq!(
                    many.route_from(from, &key),
                    expected,
                    "key {key:?} from {from}"
                );
            }
        }
        let single = branch(&[]);
        assert_eq!(single.route_from(0, b"anything"), 0);
    }
}
