//! What a transaction read and what a commit wrote, for optimistic validation: a
//! transaction may commit only if nothing it read was written by a commit since it
//! began. Keys are remembered exactly up to a budget; past it a set keeps only the span
//! its keys cover, which can only add conflicts, never miss one.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use smallvec::SmallVec;

use crate::keys::KeyRange;

/// Bytes of keys a set remembers exactly before it coarsens to the span they cover.
const EXACT_BYTES_MAX: usize = 4 << 20;

/// Keys and ranges of one key space.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeySet {
    /// Inline up to 32 bytes, like the engine's keys: a large transaction's footprint
    /// then costs no allocation per key, nor leaves that many small blocks to free.
    keys: BTreeSet<SmallVec<[u8; 32]>>,
    ranges: Vec<KeyRange>,
    bytes: usize,
}

impl KeySet {
    pub fn insert_key(&mut self, key: &[u8]) {
        // A key inside a range the set holds adds nothing. Once the set has coarsened,
        // its first range is the span of every key so far, so checking that one alone
        // catches nearly every later key; without it a bulk load kept refilling the
        // exact set and collapsing it again every few megabytes.
        if self.ranges.first().is_some_and(|span| span.contains(key)) {
            return;
        }
        if self.keys.insert(SmallVec::from_slice(key)) {
            self.bytes += key.len() + 32;
            self.coarsen_if_large();
        }
    }

    pub fn insert_range(&mut self, range: KeyRange) {
        if range.is_empty() {
            return;
        }
        self.bytes += bound_len(&range.start) + bound_len(&range.end) + 48;
        self.ranges.push(range);
        self.coarsen_if_large();
    }

    pub fn insert_all(&mut self) {
        self.keys.clear();
        self.ranges = vec![KeyRange::all()];
        self.bytes = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ranges.is_empty()
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains(key) || self.ranges.iter().any(|range| range.contains(key))
    }

    pub fn overlaps_range(&self, range: &KeyRange) -> bool {
        self.keys.range::<[u8], _>(range.as_refs()).next().is_some()
            || self.ranges.iter().any(|mine| mine.overlaps(range))
    }

    pub fn intersects(&self, other: &KeySet) -> bool {
        let (small, large) = if self.keys.len() <= other.keys.len() {
            (self, other)
        } else {
            (other, self)
        };
        small.keys.iter().any(|key| large.contains(key))
            || self.ranges.iter().any(|range| other.overlaps_range(range))
            || other.ranges.iter().any(|range| self.overlaps_range(range))
    }

    /// Replaces everything by the one range that covers it, once exact keys cost too much.
    fn coarsen_if_large(&mut self) {
        if self.bytes <= EXACT_BYTES_MAX {
            return;
        }
        let mut start: Option<Bound<Vec<u8>>> = None;
        let mut end: Option<Bound<Vec<u8>>> = None;
        let keys = std::mem::take(&mut self.keys);
        let points = keys.into_iter().map(|key| KeyRange {
            start: Bound::Included(key.to_vec()),
            end: Bound::Included(key.into_vec()),
        });
        for range in std::mem::take(&mut self.ranges).into_iter().chain(points) {
            start = Some(match start {
                None => range.start,
                Some(current) => lower_start(current, range.start),
            });
            end = Some(match end {
                None => range.end,
                Some(current) => higher_end(current, range.end),
            });
        }
        if let (Some(start), Some(end)) = (start, end) {
            self.ranges.push(KeyRange { start, end });
        }
        self.bytes = 0;
    }
}

fn bound_len(bound: &Bound<Vec<u8>>) -> usize {
    match bound {
        Bound::Included(key) | Bound::Excluded(key) => key.len(),
        Bound::Unbounded => 0,
    }
}

/// The wider of two bounds on the same side: unbounded if either is, else the outer
/// key, inclusive (a superset either way). `pick` chooses the outer of two keys.
fn outer(
    a: Bound<Vec<u8>>,
    b: Bound<Vec<u8>>,
    pick: fn(Vec<u8>, Vec<u8>) -> Vec<u8>,
) -> Bound<Vec<u8>> {
    match (a, b) {
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            Bound::Included(pick(a, b))
        }
        _ => Bound::Unbounded,
    }
}

fn lower_start(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    outer(a, b, std::cmp::min)
}

fn higher_end(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    outer(a, b, std::cmp::max)
}

/// The keys of every tree, by name, and the tree names themselves.
#[derive(Clone, Debug, Default)]
pub(crate) struct Footprint {
    /// Tree names whose existence was read (or, in a write footprint, changed).
    pub catalog: KeySet,
    pub trees: BTreeMap<Vec<u8>, KeySet>,
}

impl Footprint {
    pub fn tree(&mut self, name: &[u8]) -> &mut KeySet {
        if !self.trees.contains_key(name) {
            self.trees.insert(name.to_vec(), KeySet::default());
        }
        self.trees.get_mut(name).expect("inserted above")
    }

    /// What `self` (a read footprint) and `written` share, described, if anything.
    pub fn conflict_with(&self, written: &Footprint) -> Option<String> {
        if self.catalog.intersects(&written.catalog) {
            return Some("a tree this transaction used was created, deleted or renamed".into());
        }
        for (name, read) in &self.trees {
            if let Some(changed) = written.trees.get(name)
                && read.intersects(changed)
            {
                return Some(format!(
                    "keys this transaction read in tree \"{}\" were written",
                    name.escape_ascii()
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: &[u8], end: &[u8]) -> KeyRange {
        KeyRange::from_bounds(&(start..end))
    }

    #[test]
    fn keys_and_ranges_intersect() {
        let mut read = KeySet::default();
        read.insert_key(b"apple");
        read.insert_range(range(b"m", b"p"));
        let mut written = KeySet::default();
        written.insert_key(b"banana");
        assert!(!read.intersects(&written));
        written.insert_key(b"n");
        assert!(read.intersects(&written));
        let mut written = KeySet::default();
        written.insert_range(range(b"a", b"b"));
        assert!(read.intersects(&written));
        let mut written = KeySet::default();
        written.insert_range(range(b"p", b"q"));
        assert!(!read.intersects(&written));
    }

    #[test]
    fn a_coarsened_set_still_meets_every_key_it_held() {
        let mut set = KeySet::default();
        let keys: Vec<Vec<u8>> = (0..200_000u32)
            .map(|i| format!("{i:010}").into_bytes())
            .collect();
        for key in &keys {
            set.insert_key(key);
        }
        assert!(set.keys.len() < keys.len(), "the set coarsened");
        for key in keys.iter().step_by(997) {
            let mut probe = KeySet::default();
            probe.insert_key(key);
            assert!(set.intersects(&probe));
        }
        let mut outside = KeySet::default();
        outside.insert_key(b"zzz");
        assert!(!set.intersects(&outside));
    }
}
