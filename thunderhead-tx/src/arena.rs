//! A write transaction's pending writes, in its own arena. Keys and values are copied
//! once into a bump arena (one allocation per chunk, not per write) and indexed in key
//! order; the arena is freed whole when the transaction ends or spills. Keys carry
//! the id of the transaction's tree they belong to (4 bytes, big-endian) in front, so
//! each tree's writes are one contiguous run of the index.

use std::collections::BTreeMap;
use std::ops::Bound;

use bumpalo::Bump;

use crate::keys::KeyRange;

type Index<'a> = BTreeMap<Key<'a>, Option<&'a [u8]>>;

/// An arena key as the index orders it: by its first eight bytes as one big-endian
/// word (zero-padded), then by all its bytes, which is the order of the bytes alone. A
/// million random keys into the index cost a `memcmp` call per comparison, about 20
/// per insert; the word settles nearly all of them inline, since after the 4-byte tree
/// id it holds the key's first four bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key<'a> {
    head: u64,
    bytes: &'a [u8],
}

impl<'a> Key<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let mut head = [0u8; 8];
        let len = bytes.len().min(8);
        head[..len].copy_from_slice(&bytes[..len]);
        Self {
            head: u64::from_be_bytes(head),
            bytes,
        }
    }
}

/// `range` of arena keys as bounds on the index.
fn index_bounds(range: &KeyRange) -> (Bound<Key<'_>>, Bound<Key<'_>>) {
    let (start, end) = range.as_refs();
    (start.map(Key::new), end.map(Key::new))
}

self_cell::self_cell!(
    /// The arena and the index of slices into it.
    struct Cell {
        owner: Bump,
        #[covariant]
        dependent: Index,
    }
);

/// Pending writes: key → `Some(value)` for a put, `None` for a delete.
pub(crate) struct Arena {
    cell: Cell,
}

/// The arena key of `key` in tree `tree`.
pub(crate) fn arena_key(tree: u32, key: &[u8]) -> Vec<u8> {
    [&tree.to_be_bytes()[..], key].concat()
}

/// Every arena key of tree `tree` within `range` (of the tree's own keys).
pub(crate) fn arena_range(tree: u32, range: &KeyRange) -> KeyRange {
    let prefix = tree.to_be_bytes();
    range.under(&prefix)
}

impl Default for Arena {
    fn default() -> Self {
        Self {
            cell: Cell::new(Bump::new(), |_| BTreeMap::new()),
        }
    }
}

impl Arena {
    /// Bytes the arena holds (superseded writes included, until it is cleared).
    pub fn bytes(&self) -> usize {
        self.cell.borrow_owner().allocated_bytes()
    }

    pub fn len(&self) -> usize {
        self.cell.borrow_dependent().len()
    }

    pub fn put(&mut self, tree: u32, key: &[u8], value: Option<&[u8]>) {
        self.cell.with_dependent_mut(|bump, index| {
            let full = bump.alloc_slice_fill_copy(4 + key.len(), 0u8);
            full[..4].copy_from_slice(&tree.to_be_bytes());
            full[4..].copy_from_slice(key);
            let value = value.map(|value| &*bump.alloc_slice_copy(value));
            index.insert(Key::new(full), value);
        });
    }

    /// The pending write of `key` in `tree`, if any: `Some(None)` is a delete.
    pub fn get(&self, tree: u32, key: &[u8]) -> Option<Option<&[u8]>> {
        let full = arena_key(tree, key);
        self.cell.borrow_dependent().get(&Key::new(&full)).copied()
    }

    /// Forgets the pending writes of `tree` within `range` (a range delete supersedes
    /// them; their bytes stay in the arena until it is cleared).
    pub fn remove_range(&mut self, tree: u32, range: &KeyRange) {
        let full = arena_range(tree, range);
        // `BTreeMap::range` panics on a start past the end; such a range holds nothing.
        if full.is_empty() {
            return;
        }
        self.cell.with_dependent_mut(|bump, index| {
            // The index's keys live as long as the arena, and so must the bounds that
            // search it for keys to remove: two small copies into it.
            let (start, end) = full.as_refs();
            let bound = |bound: Bound<&[u8]>| bound.map(|key| Key::new(bump.alloc_slice_copy(key)));
            let doomed: Vec<Key<'_>> = index
                .range((bound(start), bound(end)))
                .map(|(key, _)| *key)
                .collect();
            for key in doomed {
                index.remove(&key);
            }
        });
    }

    /// Copies of the pending writes of `tree` within `range`, keys without the tree id.
    pub fn entries(&self, tree: u32, range: &KeyRange) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let full = arena_range(tree, range);
        // `BTreeMap::range` panics on a start past the end; such a range holds nothing.
        if full.is_empty() {
            return Vec::new();
        }
        self.cell
            .borrow_dependent()
            .range(index_bounds(&full))
            .map(|(key, value)| (key.bytes[4..].to_vec(), value.map(<[u8]>::to_vec)))
            .collect()
    }

    /// Visits every pending write in arena-key order.
    pub fn for_each(&self, mut visit: impl FnMut(&[u8], Option<&[u8]>)) {
        for (key, value) in self.cell.borrow_dependent() {
            visit(key.bytes, *value);
        }
    }

    /// Visits the pending writes of `tree`, keys without the tree id.
    pub fn for_each_in(&self, tree: u32, mut visit: impl FnMut(&[u8], Option<&[u8]>)) {
        let full = arena_range(tree, &KeyRange::all());
        for (key, value) in self.cell.borrow_dependent().range(index_bounds(&full)) {
            visit(&key.bytes[4..], *value);
        }
    }

    /// Drops everything and gives the memory back.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The index orders keys exactly as their bytes, for keys shorter than the
        /// head word, keys that are prefixes of each other, and keys equal in it.
        #[test]
        fn keys_order_as_their_bytes(
            a in prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(255), any::<u8>()], 0..12),
            b in prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(255), any::<u8>()], 0..12),
        ) {
            prop_assert_eq!(Key::new(&a).cmp(&Key::new(&b)), a.cmp(&b));
            prop_assert_eq!(Key::new(&a) == Key::new(&b), a == b);
        }
    }

    #[test]
    fn writes_are_kept_per_tree_in_key_order() {
        let mut arena = Arena::default();
        arena.put(1, b"b", Some(b"2"));
        arena.put(0, b"z", Some(b"0"));
        arena.put(1, b"a", Some(b"1"));
        arena.put(1, b"c", None);
        assert_eq!(arena.get(1, b"a"), Some(Some(&b"1"[..])));
        assert_eq!(arena.get(1, b"c"), Some(None));
        assert_eq!(arena.get(0, b"a"), None);
        let all = arena.entries(1, &KeyRange::all());
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), Some(b"1".to_vec())),
                (b"b".to_vec(), Some(b"2".to_vec())),
                (b"c".to_vec(), None)
            ]
        );
        arena.remove_range(1, &KeyRange::from_bounds(&(&b"a"[..]..&b"c"[..])));
        assert_eq!(arena.entries(1, &KeyRange::all()).len(), 1);
        assert_eq!(arena.entries(0, &KeyRange::all()).len(), 1);
        assert!(arena.bytes() > 0);
        arena.clear();
        assert_eq!(arena.len(), 0);
    }
}
