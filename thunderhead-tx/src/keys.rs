//! Key ranges as owned bounds, and the prefix arithmetic of subtree views.

use std::ops::{Bound, RangeBounds};

/// An owned key range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// One key.
    pub fn point(key: &[u8]) -> Self {
        Self {
            start: Bound::Included(key.to_vec()),
            end: Bound::Included(key.to_vec()),
        }
    }

    pub fn from_bounds<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(range: &R) -> Self {
        Self {
            start: range.start_bound().map(|key| key.as_ref().to_vec()),
            end: range.end_bound().map(|key| key.as_ref().to_vec()),
        }
    }

    /// The same range with every key prefixed by `prefix` (unbounded ends stop at the
    /// prefix's edges).
    pub fn under(&self, prefix: &[u8]) -> Self {
        if prefix.is_empty() {
            return self.clone();
        }
        let join = |key: &Vec<u8>| [prefix, key].concat();
        Self {
            start: match &self.start {
                Bound::Unbounded => Bound::Included(prefix.to_vec()),
                Bound::Included(key) => Bound::Included(join(key)),
                Bound::Excluded(key) => Bound::Excluded(join(key)),
            },
            end: match &self.end {
                Bound::Unbounded => match successor(prefix) {
                    Some(next) => Bound::Excluded(next),
                    None => Bound::Unbounded,
                },
                Bound::Included(key) => Bound::Included(join(key)),
                Bound::Excluded(key) => Bound::Excluded(join(key)),
            },
        }
    }

    pub fn as_refs(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (
            self.start.as_ref().map(Vec::as_slice),
            self.end.as_ref().map(Vec::as_slice),
        )
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.as_refs().contains(key)
    }

    /// Whether no key lies in the range.
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(start), Bound::Included(end)) => start > end,
            (Bound::Included(start), Bound::Excluded(end))
            | (Bound::Excluded(start), Bound::Included(end)) => start >= end,
            // (a, b) is empty when b is a or a's immediate successor a ++ 0x00.
            (Bound::Excluded(start), Bound::Excluded(end)) => {
                start >= end
                    || (end.len() == start.len() + 1
                        && end.starts_with(start)
                        && end[start.len()] == 0)
            }
            _ => false,
        }
    }

    /// Whether the two ranges share a key.
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        !self.is_empty()
            && !other.is_empty()
            && below_end(&self.start, &other.end)
            && below_end(&other.start, &self.end)
    }
}

/// Whether some key at or after `start` lies before `end`.
fn below_end(start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> bool {
    match (start, end) {
        (_, Bound::Unbounded) | (Bound::Unbounded, _) => true,
        (Bound::Included(start), Bound::Included(end)) => start <= end,
        (Bound::Included(start), Bound::Excluded(end)) => start < end,
        (Bound::Excluded(start), Bound::Included(end)) => start < end,
        (Bound::Excluded(start), Bound::Excluded(end)) => !KeyRange {
            start: Bound::Excluded(start.clone()),
            end: Bound::Excluded(end.clone()),
        }
        .is_empty(),
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub(crate) fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_ranges_stay_inside_the_prefix() {
        let range = KeyRange::all().under(b"user/");
        assert!(range.contains(b"user/"));
        assert!(range.contains(b"user/\xff\xff"));
        assert!(!range.contains(b"user0"));
        assert!(!range.contains(b"user"));
        assert_eq!(KeyRange::all().under(b"\xff\xff").end, Bound::Unbounded);
        let bounded = KeyRange::from_bounds(&(&b"a"[..]..&b"c"[..])).under(b"p/");
        assert!(bounded.contains(b"p/b"));
        assert!(!bounded.contains(b"p/c"));
    }

    #[test]
    fn overlap_and_emptiness() {
        let a = KeyRange::from_bounds(&(&b"a"[..]..&b"c"[..]));
        let b = KeyRange::from_bounds(&(&b"c"[..]..));
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&KeyRange::point(b"b")));
        assert!(KeyRange::point(b"b").overlaps(&KeyRange::point(b"b")));
        let open = KeyRange {
            start: Bound::Excluded(b"a".to_vec()),
            end: Bound::Excluded(b"a\0".to_vec()),
        };
        assert!(open.is_empty());
        assert!(!open.overlaps(&KeyRange::all()));
    }
}
