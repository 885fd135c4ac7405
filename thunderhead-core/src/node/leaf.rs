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
        self.entries = if batch.ranges.is_empty() {
            apply_points(entries, batch)
        } else {
            merge_entries(entries.into_iter(), batch)
        };
    }
}

/// Applies a batch of point messages: each finds its place by galloping search in what is
/// left of the leaf, and the entries in between move over in bulk. `k` messages into `n`
/// entries compare about `k log(n / k)` keys, never more than a step-by-step merge.
fn apply_points(entries: Vec<Entry>, batch: Buffer) -> Vec<Entry> {
    let mut merged = Vec::with_capacity(entries.len() + batch.points.len());
    let mut rest = entries.into_iter();
    for (key, message) in batch.points {
        let below = gallop(rest.as_slice(), &key);
        merged.extend(rest.by_ref().take(below));
        if rest
            .as_slice()
            .first()
            .is_some_and(|entry| entry.key == key)
        {
            rest.next();
        }
        if let PointOp::Put(value) = message.op {
            merged.push(Entry { key, value });
        }
    }
    merged.extend(rest);
    merged
}

/// Number of entries with keys below `key`, probing 1, 2, 4, ... entries ahead first.
fn gallop(entries: &[Entry], key: &[u8]) -> usize {
    let mut high = 1;
    while high <= entries.len() && entries[high - 1].key.as_slice() < key {
        high *= 2;
    }
    let low = high / 2;
    let high = high.min(entries.len());
    low + entries[low..high].partition_point(|entry| entry.key.as_slice() < key)
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
            key: key.into(),
            value: ValueStored::Inline(PageSlice::copy_from_slice(b"old")),
        }
    }

    fn keys(entries: &[Entry]) -> Vec<&[u8]> {
        entries.iter().map(|entry| entry.key.as_slice()).collect()
    }

    proptest::proptest! {
        /// The bulk path for batches without ranges agrees with the general merge.
        #[test]
        fn apply_points_agrees_with_merge(
            leaf_keys in proptest::collection::btree_set(proptest::collection::vec(0u8..4, 0..4), 0..40),
            points in proptest::collection::btree_map(
                proptest::collection::vec(0u8..4, 0..4),
                proptest::bool::ANY,
                0..20,
            ),
        ) {
            let entries: Vec<Entry> = leaf_keys.iter().map(|key| entry(key)).collect();
            let mut batch = Buffer::default();
            for (seq, (key, put)) in points.into_iter().enumerate() {
                let op = if put {
                    PointOp::Put(ValueStored::Inline(PageSlice::copy_from_slice(b"newer")))
                } else {
                    PointOp::Delete
                };
                batch.insert_point(key[..].into(), PointMessage { seq: seq as u64 + 1, op });
            }
            let expected = merge_entries(entries.clone().into_iter(), batch.clone());
            let actual = apply_points(entries, batch);
            proptest::prop_assert_eq!(keys(&actual), keys(&expected));
            for (actual, expected) in actual.iter().zip(&expected) {
                proptest::prop_assert_eq!(
                    actual.value.stored_bytes(),
                    expected.value.stored_bytes()
                );
            }
        }
    }

    /// Ranges delete old entries but not newer puts; deletes remove; puts insert.
    #[test]
    fn merge_applies_points_and_ranges_by_sequence() {
        let mut batch = Buffer::default();
        batch.insert_range(range_message(5, b"b", Some(b"d")));
        batch.insert_point(
            b"bb"[..].into(),
            PointMessage {
                seq: 6,
                op: PointOp::Put(ValueStored::Inline(PageSlice::copy_from_slice(b"new"))),
            },
        );
        batch.insert_point(
            b"e"[..].into(),
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
