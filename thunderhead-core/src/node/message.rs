//! Journal messages. Every message carries a sequence number; for any key the message
//! with the highest number wins, and messages only ever move down the tree, so a
//! message in a node is always newer than anything below it for the same key.

use crate::key::KeyRange;
use crate::value::ValueStored;

/// What a point message does to its key.
#[derive(Clone, Debug)]
pub(crate) enum PointOp {
    Put(ValueStored),
    Delete,
}

/// A message about one key (the key is held by the container).
#[derive(Clone, Debug)]
pub(crate) struct PointMessage {
    pub seq: u64,
    pub op: PointOp,
}

/// A range tombstone: deletes every older version of every key in the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RangeMessage {
    pub seq: u64,
    pub range: KeyRange,
}

/// The newest thing a journal knows about a key.
#[derive(Clone, Debug)]
pub(crate) enum Verdict {
    Put(ValueStored),
    Deleted,
}

/// Keeps the newest of several candidate messages for one key.
#[derive(Default)]
pub(crate) struct Newest {
    best: Option<(u64, Verdict)>,
}

impl Newest {
    pub fn offer_point(&mut self, message: &PointMessage) {
        if self.best.as_ref().is_none_or(|(seq, _)| message.seq > *seq) {
            let verdict = match &message.op {
                PointOp::Put(value) => Verdict::Put(value.clone()),
                PointOp::Delete => Verdict::Deleted,
            };
            self.best = Some((message.seq, verdict));
        }
    }

    pub fn offer_range(&mut self, seq: u64) {
        if self.best.as_ref().is_none_or(|(best, _)| seq > *best) {
            self.best = Some((seq, Verdict::Deleted));
        }
    }

    pub fn seq(&self) -> u64 {
        self.best.as_ref().map_or(0, |(seq, _)| *seq)
    }

    pub fn into_verdict(self) -> Option<Verdict> {
        self.best.map(|(_, verdict)| verdict)
    }
}

/// Answers "what is the newest range tombstone covering this key?" for keys asked in
/// ascending order, in time linear in keys plus ranges.
pub(crate) struct RangeSweep<'a> {
    ranges: &'a [RangeMessage],
    next: usize,
    active: Vec<&'a RangeMessage>,
}

impl<'a> RangeSweep<'a> {
    /// `ranges` must be sorted by start key.
    pub fn new(ranges: &'a [RangeMessage]) -> Self {
        debug_assert!(ranges.is_sorted_by(|a, b| a.range.start <= b.range.start));
        Self {
            ranges,
            next: 0,
            active: Vec::new(),
        }
    }

    /// Highest sequence number of a range covering `key` (0 if none). Keys must not
    /// decrease between calls.
    pub fn covering_seq(&mut self, key: &[u8]) -> u64 {
        while let Some(range) = self.ranges.get(self.next) {
            if range.range.start.as_slice() > key {
                break;
            }
            self.active.push(range);
            self.next += 1;
        }
        self.active
            .retain(|range| range.range.end.as_deref().is_none_or(|end| key < end));
        self.active.iter().map(|range| range.seq).max().unwrap_or(0)
    }
}
