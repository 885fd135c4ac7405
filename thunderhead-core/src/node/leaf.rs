use super::{Buffer, Entry, PointOp, RangeSweep, entry_weight};

/// A transient leaf: entries sorted by key, keys unique.
#[derive(Default, Debug)]
pub(crate) struct Leaf {
    pub entries: Vec<Entry>,
}

impl Leaf {
    pub fn weight(&self) -> usize {
        self.entries
            .iter()
            .map(|entry| entry_weight(&entry.key, &entry.value))
            .sum()
    }

    /// Applies a batch of messages (all newer than the leaf) to the entries.
    pub fn apply(&mut self, batch: Buffer) {
        if batch.ranges.is_empty() && batch.points.len() == 1 {
            // The common case of a small tree whose root is a leaf: one binary search.
            let (key, message) = batch.points.into_iter().next().expect("one point");
            let found = self
                .entries
                .binary_search_by(|entry| entry.key.as_slice().cmp(&key));
            match (found, message.op) {
                (Ok(index), PointOp::Put(value)) => self.entries[index].value = value,
                (Err(index), PointOp::Put(value)) => {
                    self.entries.insert(index, Entry { key, value })
                }
                (Ok(index), PointOp::Delete) => {
                    self.entries.remove(index);
                }
                (Err(_), PointOp::Delete) => {}
            }
            return;
        }
        let entries = std::mem::take(&mut self.entries);
        self.entries = merge_entries(entries.into_iter(), batch);
    }
}

/// Merges entries (older) with a batch of messages (newer), in key order: a point message
/// replaces or deletes its key unless a newer range covers it; a range deletes the
/// entries it covers.
pub(crate) fn merge_entries(entries: impl Iterator<Item = Entry>, batch: Buffer) -> Vec<Entry> {
    let mut sweep = RangeSweep::new(&batch.ranges);
    let mut points = batch.points.into_iter().peekable();
    let mut entries = entries.peekable();
    let mut merged = Vec::with_capacity(entries.size_hint().0 + points.len());
    loop {
        let take_point = match (entries.peek(), points.peek()) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(entry), Some((key, _))) => key.as_slice() <= entry.key.as_slice(),
        };
        if take_point {
            let (key, message) = points.next().expect("peeked");
            if entries.peek().is_some_and(|entry| entry.key == key) {
                entries.next();
            }
            if message.seq > sweep.covering_seq(&key)
                && let PointOp::Put(value) = message.op
            {
                merged.push(Entry { key, value });
            }
        } else {
            let entry = entries.next().expect("peeked");
            if sweep.covering_seq(&entry.key) == 0 {
                merged.push(entry);
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{PointMessage, range_message};
    use crate::value::ValueStored;
    use thunderhead_disk::PageSlice;

    fn entry(key: &[u8]) -> Entry {
        Entry {
            key: key.to_vec(),
            value: ValueStored::Inline(PageSlice::copy_from_slice(b"old")),
        }
    }

    fn keys(entries: &[Entry]) -> Vec<&[u8]> {
        entries.iter().map(|entry| entry.key.as_slice()).collect()
    }

    /// Ranges delete old entries but not newer puts; deletes remove; puts insert.
    #[test]
    fn merge_applies_points_and_ranges_by_sequence() {
        let mut batch = Buffer::default();
        batch.insert_range(range_message(5, b"b", Some(b"d")));
        batch.insert_point(
            b"bb".to_vec(),
            PointMessage {
                seq: 6,
                op: PointOp::Put(ValueStored::Inline(PageSlice::copy_from_slice(b"new"))),
            },
        );
        batch.insert_point(
            b"e".to_vec(),
            PointMessage {
                seq: 7,
                op: PointOp::Delete,
            },
        );
        let entries = vec![
            entry(b"a"),
            entry(b"b"),
            entry(b"c"),
            entry(b"d"),
            entry(b"e"),
        ];
        let merged = merge_entries(entries.into_iter(), batch);
        assert_eq!(keys(&merged), vec![&b"a"[..], b"bb", b"d"]);
    }
}
