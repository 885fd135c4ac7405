//! Unit tests of flush selection, splitting and merging at page boundaries.

use std::sync::Arc;

use thunderhead_disk::MemStore;

use super::*;
use crate::node::{Entry, entry_weight};
use crate::page::leaf_layout_bytes;
use crate::tree::flush::{branch_cut_points, cut_points};

fn tree(page_size: usize, journal_bytes_max: usize) -> Tree<MemStore> {
    let config = TreeConfig {
        journal_bytes_max,
        ..TreeConfig::default()
    };
    Tree::new(Arc::new(
        Pager::new(MemStore::new(page_size).unwrap(), &config).unwrap(),
    ))
}

use crate::config::TreeConfig;

fn root_branch(tree: &Tree<MemStore>) -> &Branch {
    match &tree.root {
        NodeRef::Transient(node) => match node.as_ref() {
            Node::Branch(branch) => branch,
            Node::Leaf(_) => panic!("root is a leaf"),
        },
        NodeRef::Stored(_) => panic!("root is stored"),
    }
}

fn key(index: u32) -> Vec<u8> {
    format!("key-{index:06}").into_bytes()
}

/// When the root journal passes its budget, exactly one child is flushed, and it is the
/// one with the most pending bytes; the others keep their messages.
#[test]
fn flush_takes_the_heaviest_child_only() {
    let mut tree = tree(4096, 3000);
    for index in 0..2000 {
        tree.put(&key(index), b"initial").unwrap();
    }
    tree.commit().unwrap();
    // Make the root transient with a fresh journal, then load it unevenly.
    tree.put(&key(10), b"x").unwrap();
    let children = root_branch(&tree).children.len();
    assert!(children >= 3, "need a few children, got {children}");
    let heavy = children - 1;
    let mut flushed_seen = false;
    for round in 0..400u32 {
        let before: Vec<u64> = root_branch(&tree)
            .children
            .iter()
            .map(|child| child.pending_bytes)
            .collect();
        // Mostly the last child, sometimes the first.
        let target = if round % 4 == 0 {
            5 + round % 50
        } else {
            1999 - round % 50
        };
        tree.put(&key(target), &round.to_le_bytes()).unwrap();
        let branch = root_branch(&tree);
        let after: Vec<u64> = branch
            .children
            .iter()
            .map(|child| child.pending_bytes)
            .collect();
        if before.len() == after.len() && after.iter().sum::<u64>() < before.iter().sum::<u64>() {
            let emptied: Vec<usize> = (0..after.len())
                .filter(|&index| after[index] == 0 && before[index] > 0)
                .collect();
            let heaviest = (0..before.len())
                .max_by_key(|&index| (before[index], std::cmp::Reverse(index)))
                .unwrap();
            assert_eq!(
                emptied,
                vec![heaviest],
                "flush must empty the heaviest child alone: {before:?} -> {after:?}"
            );
            assert_eq!(heaviest, heavy);
            flushed_seen = true;
        }
        assert!(branch.pending_total() <= 3000);
    }
    assert!(flushed_seen, "no flush happened");
    tree.check().unwrap();
}

/// A leaf that fills its page exactly stays one leaf; one more byte splits it into
/// pieces that each fit and meet the fill minimum.
#[test]
fn leaf_splits_exactly_past_the_page() {
    let mut tree = tree(4096, 1 << 20);
    let mut entries = Vec::new();
    let mut index = 0;
    loop {
        let candidate = Entry {
            key: key(index).into(),
            value: ValueStored::Inline(PageSlice::copy_from_slice(&[1; 40])),
        };
        entries.push(candidate);
        if leaf_layout_bytes(&entries, 0) > 4096 {
            entries.pop();
            break;
        }
        index += 1;
    }
    // Pad the last value so the leaf is exactly one page.
    let used = leaf_layout_bytes(&entries, 0);
    let last = entries.len() - 1;
    let padded = 40 + (4096 - used);
    for (position, entry) in entries.iter().enumerate() {
        let value = if position == last {
            vec![2; padded]
        } else {
            vec![1; 40]
        };
        tree.put(&entry.key, &value).unwrap();
    }
    match &tree.root {
        NodeRef::Transient(node) => match node.as_ref() {
            Node::Leaf(leaf) => assert_eq!(leaf_layout_bytes(&leaf.entries, 0), 4096),
            Node::Branch(_) => panic!("a leaf of exactly one page was split"),
        },
        NodeRef::Stored(_) => unreachable!(),
    }
    tree.check().unwrap();
    tree.put(&entries[last].key, &vec![2; padded + 1]).unwrap();
    let branch = root_branch(&tree);
    assert_eq!(branch.children.len(), 2);
    let limits = *tree.pager.limits();
    for child in &branch.children {
        let weight = crate::tree::cow::transient(&child.node).weight();
        assert!(weight >= limits.node_fill_min_bytes && weight <= limits.page_size_bytes);
    }
    tree.check().unwrap();
    let version = tree.commit().unwrap();
    Snapshot::new(tree.pager.clone(), version).check().unwrap();
}

/// Deleting most keys of a region merges the emptied leaves with their neighbours, and
/// every remaining node still meets the fill minimum.
#[test]
fn underfull_leaves_merge() {
    let mut tree = tree(4096, 2048);
    for index in 0..3000 {
        tree.put(&key(index), &[3; 60]).unwrap();
    }
    let before = tree.check().unwrap();
    for index in 500..2500 {
        tree.delete(&key(index)).unwrap();
    }
    // Push everything down so the deletes reach the leaves.
    for index in 0..3000 {
        tree.put(&key(index % 500), &[4; 60]).unwrap();
    }
    let after = tree.check().unwrap();
    assert!(
        after.leaf_count < before.leaf_count / 2,
        "leaves {} -> {}",
        before.leaf_count,
        after.leaf_count
    );
    let remaining = tree.iter().count();
    assert_eq!(remaining, 1000);
    tree.commit().unwrap();
    tree.check().unwrap();
}

/// Deleting everything collapses the tree back to a single (root) leaf.
#[test]
fn deleting_everything_collapses_the_root() {
    let mut tree = tree(4096, 1024);
    for index in 0..2000 {
        tree.put(&key(index), &[5; 30]).unwrap();
    }
    assert!(tree.check().unwrap().height >= 2);
    tree.delete_range::<[u8], _>(..).unwrap();
    for round in 0..2000 {
        tree.delete(&key(round)).unwrap();
    }
    assert_eq!(tree.iter().count(), 0);
    let report = tree.check().unwrap();
    assert_eq!(
        (report.height, report.leaf_entry_count),
        (1, 0),
        "{report:?}"
    );
    tree.commit().unwrap();
    assert_eq!(tree.iter().count(), 0);
}

/// Cut points give non-empty pieces whose weights stay near the target.
/// A branch of long pivots that overflows its page splits into pieces that both keep the
/// fill minimum once the cut pivot has risen to the parent. The even cut of the weights
/// left the right piece light here (pivots of the failing proptest case, 4 KiB pages):
/// it merged back, overflowed and split again until the stack ran out.
#[test]
fn branch_pieces_keep_the_fill_minimum() {
    let overhead = crate::node::BRANCH_ENTRY_OVERHEAD_BYTES;
    let fill_min = 1024;
    let cases: Vec<Vec<usize>> = vec![
        vec![420, 453, 506, 506, 506, 506, 405],
        vec![506, 506, 506, 506, 506, 506, 506],
        vec![10, 10, 506, 506, 506, 506, 506, 20],
        vec![506, 506, 506, 506, 506, 506, 10, 10],
    ];
    for pivots in cases {
        let weights: Vec<usize> = std::iter::once(0)
            .chain(pivots.iter().copied())
            .map(|pivot| overhead + pivot)
            .collect();
        let cuts = branch_cut_points(&weights, 3072);
        let mut bounds = vec![0];
        bounds.extend(&cuts);
        bounds.push(weights.len());
        for window in bounds.windows(2) {
            assert!(window[0] < window[1], "empty piece in {cuts:?}");
            // As stored: the first entry of a piece after a cut has no pivot.
            let first = if window[0] == 0 { weights[0] } else { overhead };
            let piece = first + weights[window[0] + 1..window[1]].iter().sum::<usize>();
            assert!(
                piece >= fill_min,
                "piece of {piece} bytes from {pivots:?} cut at {cuts:?}"
            );
        }
    }
}

#[test]
fn cut_points_are_even_and_non_empty() {
    let cases: Vec<Vec<usize>> = vec![
        vec![100; 50],
        (1..60).map(|weight| weight * 13 % 400 + 10).collect(),
        vec![1000, 1, 1, 1, 1000, 1, 1, 1000],
        vec![3000, 3000],
    ];
    for weights in cases {
        let target = 3072;
        let cuts = cut_points(&weights, target);
        let mut bounds = vec![0];
        bounds.extend(&cuts);
        bounds.push(weights.len());
        let largest = *weights.iter().max().unwrap();
        for window in bounds.windows(2) {
            assert!(window[0] < window[1], "empty piece in {cuts:?}");
            let piece: usize = weights[window[0]..window[1]].iter().sum();
            assert!(
                piece <= target + largest,
                "piece of {piece} for target {target}"
            );
        }
    }
    // Entry weights as the tree counts them.
    assert_eq!(
        entry_weight(
            b"abc",
            &ValueStored::Inline(PageSlice::copy_from_slice(b"xy"))
        ),
        2 + 5 + 3 + 2
    );
}

/// A bulk load fills its leaves to the page: the leaves number the fewest that can
/// hold the entries (plus at most one, for a light last leaf shared with the one
/// before), and the tree is one a `put` would read back the same.
#[test]
fn bulk_load_fills_leaves_to_the_page() {
    let mut loaded = tree(4096, 4096);
    let value = [7u8; 100];
    let mut load = loaded.bulk_load().unwrap().expect("empty tree");
    let count = 20_000u32;
    for index in 0..count {
        load.push(&key(index), &value).unwrap();
    }
    load.finish().unwrap();
    let report = loaded.check().unwrap();
    assert_eq!(report.leaf_entry_count, u64::from(count));
    let weight = entry_weight(
        &key(0),
        &ValueStored::Inline(PageSlice::copy_from_slice(&value)),
    );
    let per_leaf = (4096 - leaf_layout_bytes(&[], 0)) / weight;
    let fewest = u64::from(count).div_ceil(per_leaf as u64);
    assert!(
        (fewest..=fewest + 1).contains(&report.leaf_count),
        "{} leaves, {fewest} would do",
        report.leaf_count
    );
    assert!(report.height >= 3, "{report:?}");
    for index in (0..count).step_by(997) {
        assert_eq!(
            loaded.get(&key(index)).unwrap().as_deref(),
            Some(&value[..])
        );
    }
    // The loaded tree takes writes like any other.
    loaded.put(&key(5), b"changed").unwrap();
    loaded.delete(&key(6)).unwrap();
    let version = loaded.commit().unwrap();
    let snapshot = Snapshot::new(loaded.pager().clone(), version);
    snapshot.check().unwrap();
    assert_eq!(snapshot.iter().count(), count as usize - 1);
    assert_eq!(
        snapshot.get(&key(5)).unwrap().as_deref(),
        Some(&b"changed"[..])
    );
}

/// A load is for empty trees only, takes keys in strictly ascending order, and a load
/// that fails or is dropped unfinished poisons the writer (its leaves belong to no
/// version) rather than leave half a tree.
#[test]
fn bulk_load_refuses_misuse() {
    let mut full = tree(4096, 4096);
    full.put(b"a", b"1").unwrap();
    assert!(full.bulk_load().unwrap().is_none());
    full.commit().unwrap();
    assert!(full.bulk_load().unwrap().is_none());

    let mut unordered = tree(4096, 4096);
    let mut load = unordered.bulk_load().unwrap().unwrap();
    load.push(b"b", b"1").unwrap();
    assert!(matches!(load.push(b"b", b"2"), Err(Error::KeysOutOfOrder { key }) if key == b"b"));
    drop(load);
    assert!(matches!(
        unordered.put(b"c", b"3"),
        Err(Error::WriterPoisoned)
    ));

    let mut abandoned = tree(4096, 4096);
    let mut load = abandoned.bulk_load().unwrap().unwrap();
    load.push(b"a", b"1").unwrap();
    drop(load);
    assert!(matches!(abandoned.commit(), Err(Error::WriterPoisoned)));

    let mut empty = tree(4096, 4096);
    empty.bulk_load().unwrap().unwrap().finish().unwrap();
    assert_eq!(empty.iter().count(), 0);
    empty.check().unwrap();
}

/// A tree of three levels or more whose branches hold journal segments: 20,000 keys on
/// 4 KiB pages with small journals, written in rounds of 2,000 and then partly
/// overwritten, a commit per round. Returns the last version and every key's value.
fn linked_tree(cache_bytes_max: usize) -> (Arc<Pager<MemStore>>, Version, Vec<Vec<u8>>) {
    let config = TreeConfig {
        cache_bytes_max,
        journal_bytes_max: 32 * 1024,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(MemStore::new(4096).unwrap(), &config).unwrap());
    let mut tree = Tree::new(pager.clone());
    let mut values = vec![Vec::new(); 20_000];
    for round in 0..15u32 {
        for step in 0..2_000u32 {
            let index = (round * 2_000 + step) * 7919 % 20_000;
            let value = format!("round {round}").into_bytes();
            tree.put(&key(index), &value).unwrap();
            values[index as usize] = value;
        }
        tree.commit().unwrap();
    }
    let version = tree.commit().unwrap();
    let report = Snapshot::new(pager.clone(), version).check().unwrap();
    assert!(report.height >= 3 && report.segment_count > 0, "{report:?}");
    (pager, version, values)
}

fn loads(pager: &Pager<MemStore>) -> u64 {
    let stats = pager.cache_stats();
    stats.hits + stats.misses
}

/// Once a read has gone through a branch's view, the next reads reach its children and
/// segments by the view's links, and the snapshot holds its root: nothing is looked up
/// in the cache.
#[test]
fn reads_follow_links_past_the_cache() {
    let (pager, version, values) = linked_tree(TreeConfig::default().cache_bytes_max);
    let snapshot = Snapshot::new(pager.clone(), version);
    let read_all = || {
        for (index, value) in values.iter().enumerate() {
            let got = snapshot.get(&key(index as u32)).unwrap();
            assert_eq!(got.as_deref(), Some(&value[..]), "key {index}");
        }
    };
    read_all();
    let before = loads(&pager);
    read_all();
    assert_eq!(loads(&pager) - before, 0, "lookups by gets");
    let before = loads(&pager);
    assert_eq!(snapshot.iter().count(), values.len());
    assert_eq!(snapshot.range(&key(5_000)[..]..).take(10).count(), 10);
    assert_eq!(loads(&pager) - before, 0, "lookups by ranges");
}

/// Links are weak: a cache too small for the tree still evicts what they point to (and
/// stays near its budget), and a read whose link has died asks the cache again and gets
/// the right answer.
#[test]
fn dead_links_fall_back_to_the_cache() {
    let budget = 64 * 1024;
    let (pager, version, values) = linked_tree(budget);
    let snapshot = Snapshot::new(pager.clone(), version);
    for _ in 0..2 {
        for (index, value) in values.iter().enumerate() {
            let got = snapshot.get(&key(index as u32)).unwrap();
            assert_eq!(got.as_deref(), Some(&value[..]), "key {index}");
        }
        let scanned: Vec<Vec<u8>> = snapshot
            .iter()
            .map(|entry| entry.unwrap().1.to_vec())
            .collect();
        assert_eq!(scanned.len(), values.len());
        let mut sorted: Vec<(Vec<u8>, &Vec<u8>)> = values
            .iter()
            .enumerate()
            .map(|(index, value)| (key(index as u32), value))
            .collect();
        sorted.sort();
        assert!(
            scanned
                .iter()
                .zip(&sorted)
                .all(|(got, (_, want))| got == *want)
        );
    }
    let stats = pager.cache_stats();
    assert!(stats.misses > 0);
    // What a read holds while it runs (a path and its journal segments, which may span
    // many pages) can keep the cache over its budget; strong links would keep the tree.
    let tree_bytes: u64 = snapshot
        .check()
        .unwrap()
        .extents
        .iter()
        .map(|extent| extent.1)
        .sum();
    let tree_bytes = tree_bytes as usize * 4096;
    assert!(tree_bytes > 10 * budget, "{tree_bytes}");
    assert!(pager.cache_stats().bytes <= 4 * budget, "{stats:?}");
}
