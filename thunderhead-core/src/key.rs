//! Key comparison and prefix arithmetic. Keys are arbitrary byte strings ordered
//! lexicographically (as `[u8]` orders), the empty key first.

use std::cmp::Ordering;
use std::ops::Bound;

/// A key as nodes, journals and cursors hold it. Keys up to 32 bytes, the common case
/// (the benchmarks use 24), live inline: a decoded leaf's entries, a journal's
/// messages and a branch's pivots then cost no heap allocation each (allocations were a
/// quarter of a batch commit's time).
pub(crate) type Key = smallvec::SmallVec<[u8; KEY_INLINE]>;

/// Bytes of a key held inline.
const KEY_INLINE: usize = 32;

/// The key made of `parts` in order (a prefix and a suffix, usually).
pub(crate) fn joined(parts: &[&[u8]]) -> Key {
    let len = parts.iter().map(|part| part.len()).sum();
    if len > KEY_INLINE {
        return parts.concat().into();
    }
    // Copied into an array and moved in whole: `SmallVec::extend_from_slice` per part
    // was 3% of a batch commit (it decodes every leaf and segment key through here).
    let mut buffer = [0; KEY_INLINE];
    let mut at = 0;
    for part in parts {
        buffer[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Key::from_buf_and_len(buffer, len)
}

/// Length of the longest common prefix of `a` and `b`.
pub(crate) fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Compares `prefix ++ suffix` with `key` without building the concatenation.
pub(crate) fn compare_split(prefix: &[u8], suffix: &[u8], key: &[u8]) -> Ordering {
    let head = key.len().min(prefix.len());
    match prefix[..head].cmp(&key[..head]) {
        Ordering::Equal if prefix.len() > key.len() => Ordering::Greater,
        Ordering::Equal => suffix.cmp(&key[prefix.len()..]),
        other => other,
    }
}

/// The prefix every key in `[low, high)` shares: the common prefix of the two fences.
/// A side that is unbounded implies nothing.
pub(crate) fn implied_prefix_len(low: Option<&[u8]>, high: Option<&[u8]>) -> usize {
    match (low, high) {
        (Some(low), Some(high)) => common_prefix_len(low, high),
        _ => 0,
    }
}

/// The shortest key `s` with `left < s <= right`, used as the pivot between two nodes:
/// short pivots mean wide branches (suffix truncation).
pub(crate) fn shortest_separator(left: &[u8], right: &[u8]) -> Key {
    debug_assert!(left < right);
    let shared = common_prefix_len(left, right);
    // `right[..=shared]` exceeds `left`: it either extends past `left` or differs upward
    // at `shared`.
    Key::from_slice(&right[..(shared + 1).min(right.len())])
}

/// The smallest key greater than `key`.
pub(crate) fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// A half-open key range `[start, end)`; `end == None` runs to the end of the key space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Converts `RangeBounds` over keys into half-open form.
    pub fn from_bounds(start: Bound<&[u8]>, end: Bound<&[u8]>) -> Self {
        let start = match start {
            Bound::Included(key) => key.to_vec(),
            Bound::Excluded(key) => successor(key),
            Bound::Unbounded => Vec::new(),
        };
        let end = match end {
            Bound::Included(key) => Some(successor(key)),
            Bound::Excluded(key) => Some(key.to_vec()),
            Bound::Unbounded => None,
        };
        Self { start, end }
    }

    pub fn is_empty(&self) -> bool {
        self.end
            .as_deref()
            .is_some_and(|end| end <= self.start.as_slice())
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }

    /// The part of this range inside `[low, high)`, or `None` if they do not overlap.
    pub fn clip(&self, low: Option<&[u8]>, high: Option<&[u8]>) -> Option<KeyRange> {
        let start = match low {
            Some(low) if low > self.start.as_slice() => low.to_vec(),
            _ => self.start.clone(),
        };
        let end = match (self.end.as_deref(), high) {
            (Some(end), Some(high)) => Some(end.min(high).to_vec()),
            (Some(end), None) => Some(end.to_vec()),
            (None, Some(high)) => Some(high.to_vec()),
            (None, None) => None,
        };
        let clipped = KeyRange { start, end };
        (!clipped.is_empty()).then_some(clipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_is_the_concatenation_inline_or_not() {
        let bytes: Vec<u8> = (0..100).collect();
        for (a, b) in [(0, 0), (3, 5), (0, 32), (16, 16), (16, 17), (40, 60)] {
            let parts = [&bytes[..a], &bytes[a..a + b]];
            let key = joined(&parts);
            assert_eq!(key.as_slice(), &bytes[..a + b]);
            assert_eq!(key.spilled(), a + b > KEY_INLINE);
        }
    }

    /// Separators fall strictly above the left key and at or below the right one.
    #[test]
    fn separators_are_short_and_between() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"abc", b"abd", b"abd"),
            (b"abc", b"b", b"b"),
            (b"ab", b"abc", b"abc"),
            (b"", b"\x00", b"\x00"),
            (b"a\xff\xff", b"b", b"b"),
            (b"apple", b"banana", b"b"),
        ];
        for &(left, right, expected) in cases {
            let separator = shortest_separator(left, right);
            assert_eq!(separator.as_slice(), expected);
            assert!(left < separator.as_slice() && separator.as_slice() <= right);
        }
    }

    /// `compare_split` agrees with comparing the concatenation.
    #[test]
    fn compare_split_matches_concatenation() {
        let parts: &[&[u8]] = &[b"", b"a", b"ab", b"\x00", b"\xff", b"abc"];
        for prefix in parts {
            for suffix in parts {
                for key in parts {
                    let whole = [*prefix, *suffix].concat();
                    assert_eq!(
                        compare_split(prefix, suffix, key),
                        whole.as_slice().cmp(key)
                    );
                }
            }
        }
    }

    /// Clipping keeps exactly the keys in both ranges.
    #[test]
    fn clip_and_overlap() {
        let range = KeyRange {
            start: b"b".to_vec(),
            end: Some(b"m".to_vec()),
        };
        assert_eq!(
            range.clip(Some(b"d"), Some(b"z")),
            Some(KeyRange {
                start: b"d".to_vec(),
                end: Some(b"m".to_vec())
            })
        );
        assert_eq!(range.clip(Some(b"m"), None), None);
        assert_eq!(range.clip(None, Some(b"b")), None);
        let open = KeyRange::from_bounds(Bound::Excluded(b"a"), Bound::Unbounded);
        assert!(open.contains(b"a\x00") && !open.contains(b"a"));
    }
}
