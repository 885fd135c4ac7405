//! The in-memory head of a journal: messages a writer has added to a node since it was
//! last written. At commit it becomes a new segment. The same type carries a batch of
//! messages on its way from a node to one of its children.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;

use super::message::{Newest, PointMessage, RangeMessage};
use crate::key::Key;
use crate::page::{point_message_bytes, range_message_bytes};

/// Point messages (one per key, the newest) and range tombstones (kept sorted by start).
/// A range never shares the buffer with an older point message it covers.
#[derive(Default, Clone, Debug)]
pub(crate) struct Buffer {
    pub points: BTreeMap<Key, PointMessage>,
    pub ranges: Vec<RangeMessage>,
}

/// What a point insertion did to the buffer's accounted bytes. A point displaces at most
/// the older message of its own key, so its caller already knows where that one was.
pub(crate) struct PointDisplaced {
    /// Bytes of the message that went in (0 if it was older than what was there).
    pub added_bytes: usize,
    /// Bytes of the older message it replaced (0 if none).
    pub removed_bytes: usize,
}

impl Buffer {
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.ranges.is_empty()
    }

    /// Journal bytes of everything in the buffer.
    pub fn bytes(&self) -> usize {
        self.points
            .iter()
            .map(|(key, message)| point_message_bytes(key, message))
            .sum::<usize>()
            + self
                .ranges
                .iter()
                .map(|range| range_message_bytes(&range.range))
                .sum::<usize>()
    }

    /// Adds a point message unless something newer already decides its key.
    pub fn insert_point(&mut self, key: Key, message: PointMessage) -> PointDisplaced {
        const NOTHING: PointDisplaced = PointDisplaced {
            added_bytes: 0,
            removed_bytes: 0,
        };
        let covered = self
            .ranges
            .iter()
            .any(|range| range.seq > message.seq && range.range.contains(&key));
        if covered {
            return NOTHING;
        }
        let added_bytes = point_message_bytes(&key, &message);
        // One search, not a lookup and then an insert: this is the journal's hot path.
        match self.points.entry(key) {
            Entry::Occupied(existing) if existing.get().seq > message.seq => NOTHING,
            Entry::Occupied(mut existing) => {
                let removed_bytes = point_message_bytes(existing.key(), existing.get());
                existing.insert(message);
                PointDisplaced {
                    added_bytes,
                    removed_bytes,
                }
            }
            Entry::Vacant(vacant) => {
                vacant.insert(message);
                PointDisplaced {
                    added_bytes,
                    removed_bytes: 0,
                }
            }
        }
    }

    /// Adds a range tombstone, dropping the older point messages it covers. Returns those,
    /// with their keys and bytes, for per-child accounting.
    pub fn insert_range(&mut self, message: RangeMessage) -> Vec<(Key, usize)> {
        let lower = Bound::Included(Key::from_slice(&message.range.start));
        let upper = message
            .range
            .end
            .as_deref()
            .map_or(Bound::Unbounded, |end| {
                Bound::Excluded(Key::from_slice(end))
            });
        let removed = self
            .points
            .extract_if((lower, upper), |_, point| point.seq < message.seq)
            .map(|(key, point)| {
                let bytes = point_message_bytes(&key, &point);
                (key, bytes)
            })
            .collect();
        let at = self
            .ranges
            .partition_point(|range| range.range.start <= message.range.start);
        self.ranges.insert(at, message);
        removed
    }

    /// Moves every message of `other` in, newest winning. Points go first so that the
    /// ranges can then drop the points they cover.
    pub fn absorb(&mut self, other: Buffer) {
        for (key, message) in other.points {
            self.insert_point(key, message);
        }
        for range in other.ranges {
            self.insert_range(range);
        }
    }

    /// The newest message in the buffer about `key`, offered to `newest`.
    pub fn lookup(&self, key: &[u8], newest: &mut Newest) {
        if let Some(message) = self.points.get(key) {
            newest.offer_point(message);
        }
        for range in &self.ranges {
            if range.range.contains(key) {
                newest.offer_range(range.seq);
            }
        }
    }

    /// Removes and returns the messages for keys in `[low, high)`; ranges straddling the
    /// edges are cut, their outer parts staying here.
    pub fn split_out(&mut self, low: Option<&[u8]>, high: Option<&[u8]>) -> Buffer {
        // Extracting is O(k log n) for k taken messages; `split_off` + `append` would
        // rebuild the whole map on every flush of a middle child.
        let lower = low.map_or(Bound::Unbounded, |low| {
            Bound::Included(Key::from_slice(low))
        });
        let upper = high.map_or(Bound::Unbounded, |high| {
            Bound::Excluded(Key::from_slice(high))
        });
        let taken: BTreeMap<Key, PointMessage> = self
            .points
            .extract_if((lower, upper), |_, _| true)
            .collect();
        let mut kept = Vec::with_capacity(self.ranges.len());
        let mut taken_ranges = Vec::new();
        for range in self.ranges.drain(..) {
            let inside = range.range.clip(low, high);
            if inside.is_none() {
                kept.push(range);
                continue;
            }
            let below = low.and_then(|low| range.range.clip(None, Some(low)));
            let above = high.and_then(|high| range.range.clip(Some(high), None));
            for part in [below, above].into_iter().flatten() {
                kept.push(RangeMessage {
                    seq: range.seq,
                    range: part,
                });
            }
            taken_ranges.extend(inside.map(|range_inside| RangeMessage {
                seq: range.seq,
                range: range_inside,
            }));
        }
        kept.sort_by(|a, b| a.range.start.cmp(&b.range.start));
        self.ranges = kept;
        Buffer {
            points: taken,
            ranges: taken_ranges,
        }
    }

    /// Copies (without removing) the messages for keys in `[low, high)` into `into`.
    pub fn copy_range_into(&self, low: Option<&[u8]>, high: Option<&[u8]>, into: &mut Buffer) {
        let lower = low.map_or(Bound::Unbounded, Bound::Included);
        let upper = high.map_or(Bound::Unbounded, Bound::Excluded);
        for (key, message) in self.points.range::<[u8], _>((lower, upper)) {
            into.insert_point(key.clone(), message.clone());
        }
        self.copy_ranges_into(low, high, into);
    }

    /// Copies the range messages, clipped to `[low, high)`, into `into`.
    pub fn copy_ranges_into(&self, low: Option<&[u8]>, high: Option<&[u8]>, into: &mut Buffer) {
        for range in &self.ranges {
            if let Some(inside) = range.range.clip(low, high) {
                into.insert_range(RangeMessage {
                    seq: range.seq,
                    range: inside,
                });
            }
        }
    }

    /// Highest sequence number in the buffer (0 when empty).
    pub fn seq_max(&self) -> u64 {
        let points = self
            .points
            .values()
            .map(|message| message.seq)
            .max()
            .unwrap_or(0);
        let ranges = self.ranges.iter().map(|range| range.seq).max().unwrap_or(0);
        points.max(ranges)
    }

    /// Whether `key` is deleted by a range here: used in tests of range bookkeeping.
    #[cfg(test)]
    pub fn range_covers(&self, key: &[u8]) -> bool {
        self.ranges.iter().any(|range| range.range.contains(key))
    }

    /// Point puts, for tests.
    #[cfg(test)]
    pub fn put_keys(&self) -> Vec<Vec<u8>> {
        self.points
            .iter()
            .filter(|(_, message)| matches!(message.op, super::PointOp::Put(_)))
            .map(|(key, _)| key.to_vec())
            .collect()
    }
}

/// Builds the range `[start, end)` message.
#[cfg(test)]
pub(crate) fn range_message(seq: u64, start: &[u8], end: Option<&[u8]>) -> RangeMessage {
    RangeMessage {
        seq,
        range: crate::key::KeyRange {
            start: start.to_vec(),
            end: end.map(<[u8]>::to_vec),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::PointOp;
    use crate::value::ValueStored;
    use thunderhead_disk::PageSlice;

    fn put(seq: u64) -> PointMessage {
        PointMessage {
            seq,
            op: PointOp::Put(ValueStored::Inline(PageSlice::copy_from_slice(b"v"))),
        }
    }

    /// Newer messages win whatever the insertion order; ranges eat older points only.
    #[test]
    fn newest_wins_and_ranges_eat_older_points() {
        let mut buffer = Buffer::default();
        buffer.insert_point(b"b"[..].into(), put(5));
        buffer.insert_point(b"c"[..].into(), put(9));
        let replaced = buffer.insert_point(b"b"[..].into(), put(6));
        let one = point_message_bytes(b"b", &put(6));
        assert_eq!((replaced.added_bytes, replaced.removed_bytes), (one, one));
        let removed = buffer.insert_range(range_message(7, b"a", Some(b"z")));
        assert_eq!(removed, vec![(b"b"[..].into(), one)]);
        assert_eq!(buffer.put_keys(), vec![b"c".to_vec()]);
        // An older point under a newer range is not stored at all.
        assert_eq!(buffer.insert_point(b"d"[..].into(), put(6)).added_bytes, 0);
        assert_eq!(buffer.insert_point(b"c"[..].into(), put(8)).added_bytes, 0);
        let mut newest = Newest::default();
        buffer.lookup(b"d", &mut newest);
        assert_eq!(newest.seq(), 7);
    }

    /// Splitting out a key range cuts straddling ranges and keeps both sides whole.
    #[test]
    fn split_out_cuts_ranges() {
        let mut buffer = Buffer::default();
        buffer.insert_range(range_message(3, b"a", None));
        buffer.insert_point(b"m"[..].into(), put(4));
        buffer.insert_point(b"x"[..].into(), put(5));
        let middle = buffer.split_out(Some(b"k"), Some(b"p"));
        assert_eq!(middle.put_keys(), vec![b"m".to_vec()]);
        assert!(middle.range_covers(b"k") && !middle.range_covers(b"p"));
        assert!(
            buffer.range_covers(b"j") && buffer.range_covers(b"p") && !buffer.range_covers(b"k")
        );
        assert_eq!(buffer.put_keys(), vec![b"x".to_vec()]);
    }
}
