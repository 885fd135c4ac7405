//! Round trips and robustness of the page formats.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use thunderhead_disk::{PageId, PageSlice, seal_checksum};

use super::*;
use crate::key::KeyRange;
use crate::node::{Entry, PointMessage, PointOp, RangeMessage};
use crate::testing::decode_page_all_kinds;
use crate::value::ValueStored;

/// Bytes drawn mostly from the awkward ones: 0x00, 0xFF and a few letters.
fn awkward_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(0x00u8),
            Just(0xFF),
            Just(b'a'),
            Just(b'b'),
            any::<u8>()
        ],
        0..max_len,
    )
}

fn inline(bytes: &[u8]) -> ValueStored {
    ValueStored::Inline(PageSlice::copy_from_slice(bytes))
}

fn value_bytes(value: &ValueStored) -> Vec<u8> {
    match value {
        ValueStored::Inline(bytes) => bytes.to_vec(),
        ValueStored::Overflow(reference) => bytemuck::bytes_of(reference).to_vec(),
    }
}

proptest! {
    /// Leaf pages round-trip any sorted binary keys under any implied prefix, and search
    /// finds every key and the right insertion point for others.
    #[test]
    fn leaf_round_trip(
        implied in awkward_bytes(6),
        suffixes in prop::collection::btree_set(awkward_bytes(12), 0..60),
        probes in prop::collection::vec(awkward_bytes(12), 0..20),
    ) {
        let entries: Vec<Entry> = suffixes
            .iter()
            .enumerate()
            .map(|(index, suffix)| Entry {
                key: crate::key::joined(&[implied.as_slice(), suffix]),
                value: if index % 7 == 3 {
                    ValueStored::Overflow(OverflowRef::new(PageId(9 + index as u64), 5000, 77, 4))
                } else {
                    inline(&suffix.repeat(index % 3))
                },
            })
            .collect();
        let bytes = encode_leaf(&entries, implied.len(), 4096);
        prop_assert_eq!(crate::testing::check_leaf_bytes(&bytes).unwrap(), entries.len());
        let page = LeafPage::parse(PageId(1), bytes).unwrap();
        prop_assert_eq!(page.implied_len(), implied.len());
        let mut key = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            page.key_into(&implied, index, &mut key);
            prop_assert_eq!(&key[..], &entry.key[..]);
            prop_assert_eq!(value_bytes(&page.value(index)), value_bytes(&entry.value));
            prop_assert_eq!(page.search(&entry.key[implied.len()..]), Ok(index));
        }
        let overflows: Vec<Vec<u8>> = entries
            .iter()
            .filter(|entry| matches!(entry.value, ValueStored::Overflow(_)))
            .map(|entry| value_bytes(&entry.value))
            .collect();
        let found: Vec<Vec<u8>> = page
            .overflows()
            .map(|reference| bytemuck::bytes_of(&reference).to_vec())
            .collect();
        prop_assert_eq!(found, overflows);
        for probe in probes {
            let expected = suffixes.iter().position(|suffix| *suffix == probe)
                .ok_or_else(|| suffixes.iter().filter(|suffix| **suffix < probe).count());
            prop_assert_eq!(page.search(&probe), expected);
        }
    }

    /// Branch pages round-trip pivots, child slots and segment slots, and route every key
    /// to the child whose range holds it.
    #[test]
    fn branch_round_trip(
        implied in awkward_bytes(4),
        suffixes in prop::collection::btree_set(awkward_bytes(10), 1..40),
        probes in prop::collection::vec(awkward_bytes(10), 0..20),
    ) {
        let pivots: Vec<crate::key::Key> = suffixes.iter().map(|suffix| crate::key::joined(&[implied.as_slice(), suffix])).collect();
        let children: Vec<ChildSlot> = (0..=pivots.len() as u64)
            .map(|index| ChildSlot {
                page: (index + 2).into(),
                checksum: (index as u32 * 3).into(),
                pending_bytes: (index as u32).into(),
                watermark: index.into(),
                birth: (index * 5).into(),
            })
            .collect();
        let segments = vec![SegmentSlot {
            page: 99.into(), page_count: 3.into(), checksum: 5.into(), used_bytes: 100.into(), reserved: 0.into(), seq_max: 40.into(), birth: 7.into(),
        }];
        let contents = BranchContents { level: 2, implied_len: implied.len(), seq_high: 1000, pivots: &pivots, children: &children, segments: &segments };
        let bytes = encode_branch(&contents, 4096);
        let page = BranchPage::parse(PageId(1), bytes).unwrap();
        prop_assert_eq!(page.len(), children.len());
        prop_assert_eq!(page.level(), 2);
        prop_assert_eq!(page.seq_high(), 1000);
        prop_assert_eq!(page.segment(0), segments[0]);
        // The budget covers what dead links to every child and segment would keep.
        let kept = children.len() * std::mem::size_of::<BranchPage>()
            + segments.len() * std::mem::size_of::<super::SegmentPage>();
        prop_assert!(page.memory_bytes() >= 4096 + kept);
        for (index, child) in children.iter().enumerate() {
            prop_assert_eq!(page.child(index), *child);
        }
        for (index, pivot) in pivots.iter().enumerate() {
            prop_assert_eq!(&page.pivot(&implied, index), pivot);
        }
        for probe in probes {
            let key = [implied.as_slice(), &probe].concat();
            let expected = pivots.partition_point(|pivot| pivot[..] <= key[..]);
            prop_assert_eq!(page.route(&probe), expected);
            prop_assert_eq!(page.route_below(&probe), pivots.partition_point(|pivot| pivot[..] < key[..]));
        }
    }

    /// Segments round-trip point and range messages over binary keys, unbounded ends
    /// included.
    #[test]
    fn segment_round_trip(
        points in prop::collection::btree_map(awkward_bytes(10), (1u64..1000, any::<bool>(), awkward_bytes(20)), 0..50),
        ranges in prop::collection::vec((awkward_bytes(6), prop::option::of(awkward_bytes(6)), 1u64..1000), 0..6),
    ) {
        let points: BTreeMap<Vec<u8>, PointMessage> = points
            .into_iter()
            .map(|(key, (seq, put, value))| {
                let op = if put { PointOp::Put(inline(&value)) } else { PointOp::Delete };
                (key, PointMessage { seq, op })
            })
            .collect();
        let mut ranges: Vec<RangeMessage> = ranges
            .into_iter()
            .filter_map(|(start, end, seq)| {
                let range = KeyRange { start, end };
                (!range.is_empty()).then_some(RangeMessage { seq, range })
            })
            .collect();
        ranges.sort_by(|a, b| a.range.start.cmp(&b.range.start));
        let (bytes, checksum, used) = encode_segment(points.iter().map(|(key, message)| (key.as_slice(), message)), &ranges, 4096);
        prop_assert_eq!(bytes.len() % 4096, 0);
        prop_assert!(used <= bytes.len());
        prop_assert_eq!(verify_checksum(PageId(1), &bytes).unwrap(), checksum);
        let segment = SegmentPage::parse(PageId(1), bytes).unwrap();
        prop_assert_eq!(segment.point_count(), points.len());
        for (index, (key, message)) in points.iter().enumerate() {
            prop_assert_eq!(&segment.point_key(index)[..], &key[..]);
            prop_assert_eq!(segment.search(key), Ok(index));
            prop_assert!(segment.may_hold(KeyHash::of(key)), "the filter must pass every key held");
            let decoded = segment.point_message(index);
            prop_assert_eq!(decoded.seq, message.seq);
            match (&decoded.op, &message.op) {
                (PointOp::Put(got), PointOp::Put(want)) => prop_assert_eq!(value_bytes(got), value_bytes(want)),
                (PointOp::Delete, PointOp::Delete) => {}
                _ => prop_assert!(false, "op changed"),
            }
        }
        for (index, range) in ranges.iter().enumerate() {
            prop_assert_eq!(&segment.range_message(index), range);
        }
    }

    /// Arbitrary bytes never make a decoder or an accessor panic.
    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_page_all_kinds(&bytes);
    }
}

/// Every single-byte change of valid pages (checksum resealed, so structure validation
/// must stand on its own) is either rejected or yields a view whose accessors stay in
/// bounds.
#[test]
fn mutated_valid_pages_never_panic() {
    let keys: BTreeSet<Vec<u8>> = (0..40u8)
        .map(|index| vec![b'k', index, 0xFF, index % 3])
        .collect();
    let entries: Vec<Entry> = keys
        .iter()
        .map(|key| Entry {
            key: key[..].into(),
            value: inline(&key[1..]),
        })
        .collect();
    let leaf = encode_leaf(&entries, 0, 4096);
    let pivots: Vec<crate::key::Key> = keys.iter().take(10).map(|key| key[..].into()).collect();
    let children: Vec<ChildSlot> = (0..11u64)
        .map(|index| ChildSlot {
            page: (index + 1).into(),
            ..bytemuck::Zeroable::zeroed()
        })
        .collect();
    let branch = encode_branch(
        &BranchContents {
            level: 1,
            implied_len: 0,
            seq_high: 9,
            pivots: &pivots,
            children: &children,
            segments: &[],
        },
        4096,
    );
    let messages: BTreeMap<Vec<u8>, PointMessage> = keys
        .iter()
        .map(|key| {
            (
                key.clone(),
                PointMessage {
                    seq: 3,
                    op: PointOp::Put(inline(b"v")),
                },
            )
        })
        .collect();
    let ranges = vec![RangeMessage {
        seq: 4,
        range: KeyRange {
            start: b"k".to_vec(),
            end: None,
        },
    }];
    let (segment, _, _) = encode_segment(
        messages
            .iter()
            .map(|(key, message)| (key.as_slice(), message)),
        &ranges,
        4096,
    );
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for page in [leaf.to_vec(), branch.to_vec(), segment.to_vec()] {
        let used = 1200.min(page.len());
        for offset in 0..used {
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let mut damaged = page.clone();
                damaged[offset] ^= (state as u8) | 1;
                seal_checksum(&mut damaged);
                decode_page_all_kinds(&damaged);
            }
        }
    }
}

/// An entry sized to the inline limit fits a quarter page, so every split leaves pieces
/// that fit (the sizing argument of the split rule).
#[test]
fn largest_entries_fit_a_quarter_page() {
    for page_size in [4096usize, 16384, 65536] {
        let limits =
            crate::config::Limits::new(page_size, &crate::config::TreeConfig::default()).unwrap();
        let key = vec![7u8; limits.key_bytes_max];
        let inline_value = vec![1u8; limits.entry_inline_bytes_max - key.len()];
        assert!(leaf_entry_bytes(key.len(), &inline(&inline_value)) <= page_size / 4);
        let reference = ValueStored::Overflow(OverflowRef::new(PageId(3), 1 << 20, 0, 1));
        assert!(leaf_entry_bytes(key.len(), &reference) <= page_size / 4);
    }
}
