//! Structural diff of two committed versions (`Snapshot::diff`): against the difference
//! of two full scans for random histories, on rewrites that change nothing logically,
//! for its cost on a large tree, and on damaged pages.
//!
//! `THUNDERHEAD_DIFF_CASES` sets the number of random histories (default 128).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::{Ready, ready};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use thunderhead_core::{
    Change, ChangeKind, JOURNAL_BYTES_MAX_DEFAULT, Pager, Snapshot, Tree, TreeConfig, Version,
};
use thunderhead_disk::{
    MemStore, PageBytes, PageId, PageStore, Result as DiskResult, SplitMix64, StoreStats, resolve,
    seal_checksum,
};

const PAGE_SIZE: usize = 4096;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;
/// A change as plain bytes: key, old value, new value.
type Plain = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

fn cases() -> u32 {
    std::env::var("THUNDERHEAD_DIFF_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(128)
}

fn scan<S: PageStore>(pager: &Arc<Pager<S>>, version: Version) -> Map {
    Snapshot::new(pager.clone(), version)
        .iter()
        .map(|item| item.map(|(key, value)| (key, value.to_vec())))
        .collect::<Result<_, _>>()
        .expect("scan")
}

/// The changes from `old` to `new` computed from two full scans.
fn expected(old: &Map, new: &Map) -> Vec<Plain> {
    let mut changes = Vec::new();
    let mut a = old.iter().peekable();
    let mut b = new.iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((ka, _)), Some((kb, _))) if ka == kb => {
                let ((key, va), (_, vb)) = (a.next().unwrap(), b.next().unwrap());
                if va != vb {
                    changes.push((key.clone(), Some(va.clone()), Some(vb.clone())));
                }
            }
            (Some((ka, _)), Some((kb, _))) if ka < kb => {
                let (key, va) = a.next().unwrap();
                changes.push((key.clone(), Some(va.clone()), None));
            }
            (Some(_), None) => {
                let (key, va) = a.next().unwrap();
                changes.push((key.clone(), Some(va.clone()), None));
            }
            _ => {
                let (key, vb) = b.next().unwrap();
                changes.push((key.clone(), None, Some(vb.clone())));
            }
        }
    }
    changes
}

fn plain(change: &Change) -> Plain {
    let old = change.kind.old_value().map(|value| value.to_vec());
    let new = change.kind.new_value().map(|value| value.to_vec());
    (change.key.clone(), old, new)
}

/// Runs a diff to the end: its changes (checked to be in strictly ascending key order,
/// and `Updated` only for different bytes) and the pages it read.
fn run_diff<S: PageStore>(
    pager: &Arc<Pager<S>>,
    old: Version,
    new: Version,
) -> thunderhead_core::Result<(Vec<Plain>, u64)> {
    let old = Snapshot::new(pager.clone(), old);
    let new = Snapshot::new(pager.clone(), new);
    let mut diff = old.diff(&new);
    let mut changes: Vec<Plain> = Vec::new();
    for change in diff.by_ref() {
        let change = change?;
        if let ChangeKind::Updated { old, new } = &change.kind {
            assert_ne!(old[..], new[..], "Updated with equal bytes");
        }
        if let Some(last) = changes.last() {
            assert!(last.0 < change.key, "keys out of order");
        }
        changes.push(plain(&change));
    }
    Ok((changes, diff.pages_read()))
}

fn show(changes: &[Plain]) -> Vec<String> {
    changes
        .iter()
        .take(8)
        .map(|(key, old, new)| {
            format!(
                "{:?}: {:?} -> {:?}",
                key.escape_ascii().to_string(),
                old.as_ref().map(Vec::len),
                new.as_ref().map(Vec::len)
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The model test: random histories, every pair of committed versions

#[derive(Clone, Debug)]
enum Val {
    Small(Vec<u8>),
    /// Past the inline limit by `extra - 16` bytes (inline for `extra < 16`), filled from
    /// `seed`: few seeds, so that equal large values are written to different extents.
    Large {
        extra: usize,
        seed: u8,
    },
}

impl Val {
    fn bytes(&self, inline_max: usize) -> Vec<u8> {
        match self {
            Val::Small(bytes) => bytes.clone(),
            Val::Large { extra, seed } => (0..inline_max + extra - 16)
                .map(|i| seed.wrapping_mul(31).wrapping_add((i % 253) as u8))
                .collect(),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>, Val),
    Delete(Vec<u8>),
    DeleteRange(Bound<Vec<u8>>, Bound<Vec<u8>>),
    /// `count` puts of `base ++ be16(i)`: grows the tree (splits, new levels).
    BulkPut {
        base: Vec<u8>,
        count: u16,
        len: u8,
    },
    /// Puts the key's current value again (a new message, no logical change).
    Rewrite(Vec<u8>),
    /// Rewrites the current values of a run of existing keys.
    RewriteRun(Index, u16),
    /// Gives a run of existing keys new values (keys whose older messages may still sit
    /// in journals below the root).
    UpdateRun(Index, u16, u8),
    Commit,
}

fn key() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        (0u8..24).prop_map(|b| vec![b'k', b]),
        (0u32..3000).prop_map(|i| format!("{i:05}").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..6),
    ]
    .boxed()
}

/// Mostly small batches; sometimes thousands of keys, so that trees reach three levels
/// and more (where ancestors' messages cross two journals on the way down).
fn bulk_count() -> impl Strategy<Value = u16> {
    prop_oneof![4 => 1u16..250, 1 => 1000u16..5000]
}

fn value() -> impl Strategy<Value = Val> {
    prop_oneof![
        12 => prop::collection::vec(0u8..3, 0..8).prop_map(Val::Small),
        3 => prop::collection::vec(any::<u8>(), 8..200).prop_map(Val::Small),
        2 => (0usize..40, 0u8..3).prop_map(|(extra, seed)| Val::Large { extra, seed }),
        1 => (0usize..9000, 0u8..3).prop_map(|(extra, seed)| Val::Large { extra, seed }),
    ]
}

fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        3 => key().prop_map(Bound::Included),
        2 => key().prop_map(Bound::Excluded),
        1 => Just(Bound::Unbounded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        8 => key().prop_map(Op::Delete),
        5 => (bound(), bound()).prop_map(|(s, e)| Op::DeleteRange(s, e)),
        4 => (key(), bulk_count(), 0u8..200)
            .prop_map(|(base, count, len)| Op::BulkPut { base, count, len }),
        6 => key().prop_map(Op::Rewrite),
        2 => (any::<Index>(), 1u16..400).prop_map(|(at, count)| Op::RewriteRun(at, count)),
        4 => (any::<Index>(), 1u16..300, any::<u8>())
            .prop_map(|(at, count, seed)| Op::UpdateRun(at, count, seed)),
        6 => Just(Op::Commit),
    ]
}

fn history() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (
        // Small budgets flush all the time; a range delete weighs 4 KiB per child it
        // covers, so only the larger ones keep range deletes in journals over shared pages.
        prop_oneof![Just(512usize), Just(2048), Just(16 * 1024), Just(64 * 1024)],
        prop::collection::vec(op(), 1..70),
    )
}

fn apply(tree: &mut Tree<MemStore>, op: &Op, inline_max: usize) -> thunderhead_core::Result<()> {
    match op {
        Op::Put(key, value) => tree.put(key, &value.bytes(inline_max)),
        Op::Delete(key) => tree.delete(key),
        Op::DeleteRange(start, end) => tree.delete_range::<[u8], _>((
            start.as_ref().map(Vec::as_slice),
            end.as_ref().map(Vec::as_slice),
        )),
        Op::BulkPut { base, count, len } => {
            for i in 0..*count {
                let mut key = base.clone();
                key.extend_from_slice(&i.to_be_bytes());
                let value = vec![(i % 7) as u8; usize::from(*len)];
                tree.put(&key, &value)?;
            }
            Ok(())
        }
        Op::Rewrite(key) => match tree.get(key)? {
            Some(value) => tree.put(key, &value),
            None => Ok(()),
        },
        Op::RewriteRun(at, count) | Op::UpdateRun(at, count, _) => {
            let entries: Vec<(Vec<u8>, Vec<u8>)> = tree
                .iter()
                .map(|item| item.map(|(key, value)| (key, value.to_vec())))
                .collect::<Result<_, _>>()?;
            if entries.is_empty() {
                return Ok(());
            }
            let start = at.index(entries.len());
            for (n, (key, value)) in entries
                .iter()
                .skip(start)
                .take(usize::from(*count))
                .enumerate()
            {
                match op {
                    Op::UpdateRun(_, _, seed) => {
                        let len = (usize::from(*seed) + n) % 90;
                        tree.put(key, &vec![seed.wrapping_add(n as u8); len])?
                    }
                    _ => tree.put(key, value)?,
                }
            }
            Ok(())
        }
        Op::Commit => tree.commit().map(|_| ()),
    }
}

fn check_history(journal_bytes_max: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let config = TreeConfig {
        journal_bytes_max,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(MemStore::new(PAGE_SIZE).unwrap(), &config).unwrap());
    let inline_max = pager.limits().entry_inline_bytes_max;
    let mut tree = Tree::new(pager.clone());
    let mut versions = vec![tree.commit().unwrap()];
    for op in ops {
        apply(&mut tree, op, inline_max).unwrap();
        if matches!(op, Op::Commit) {
            versions.push(tree.commit().unwrap());
        }
    }
    versions.push(tree.commit().unwrap());
    check_versions(&pager, &versions)
}

/// Diffs every ordered pair of (at most 9 of) `versions`, each against the difference of
/// the two full scans; a version against itself must read nothing.
fn check_versions<S: PageStore>(
    pager: &Arc<Pager<S>>,
    versions: &[Version],
) -> Result<(), TestCaseError> {
    // Keep at most 9 versions (81 ordered pairs), spread over the history.
    let step = versions.len().div_ceil(9);
    let mut kept: Vec<Version> = versions.iter().copied().step_by(step).collect();
    kept.push(*versions.last().unwrap());
    kept.dedup();
    let scans: Vec<Map> = kept.iter().map(|&version| scan(pager, version)).collect();
    for (i, &old) in kept.iter().enumerate() {
        for (j, &new) in kept.iter().enumerate() {
            let want = expected(&scans[i], &scans[j]);
            let (got, pages) = run_diff(pager, old, new)
                .map_err(|error| TestCaseError::fail(format!("diff {i} -> {j} failed: {error}")))?;
            prop_assert!(
                got == want,
                "diff {i} -> {j}: got {} changes {:?}, want {} {:?}",
                got.len(),
                show(&got),
                want.len(),
                show(&want)
            );
            if old == new {
                prop_assert_eq!(pages, 0, "a version against itself reads nothing");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every diff between committed versions of a random history (both directions, and
    /// each version against itself) equals the difference of the two full scans.
    #[test]
    fn diff_equals_difference_of_scans((journal_bytes_max, ops) in history()) {
        check_history(journal_bytes_max, &ops)?;
    }
}

/// A fixed history that exercises range deletes over several leaves, overflow values
/// written again with equal bytes, and a change of height, in both directions.
#[test]
fn diff_across_heights_and_range_deletes() {
    let mut ops = vec![Op::BulkPut {
        base: b"a".to_vec(),
        count: 30,
        len: 10,
    }];
    ops.push(Op::Commit);
    ops.push(Op::BulkPut {
        base: b"b".to_vec(),
        count: 2000,
        len: 40,
    });
    ops.push(Op::Put(
        b"big".to_vec(),
        Val::Large {
            extra: 5000,
            seed: 1,
        },
    ));
    ops.push(Op::Commit);
    ops.push(Op::Rewrite(b"big".to_vec()));
    ops.push(Op::DeleteRange(
        Bound::Included(b"b\x01".to_vec()),
        Bound::Excluded(b"b\x04".to_vec()),
    ));
    ops.push(Op::Commit);
    ops.push(Op::DeleteRange(
        Bound::Included(b"a".to_vec()),
        Bound::Excluded(b"b\x07".to_vec()),
    ));
    for journal_bytes_max in [512, 4096, JOURNAL_BYTES_MAX_DEFAULT] {
        check_history(journal_bytes_max, &ops).unwrap();
    }
}

/// Keys updated again and again in a tree of three levels: their older messages sit in
/// the journals of level-1 branches that the next commit leaves alone (same page on both
/// sides), while the newer ones sit in the root's journal. The diff must take the old
/// value from the shared branch's journal, not from the leaf below it.
#[test]
fn diff_of_keys_updated_under_shared_journals() {
    for journal_bytes_max in [16 * 1024, 64 * 1024] {
        let config = TreeConfig {
            journal_bytes_max,
            ..TreeConfig::default()
        };
        let pager = Arc::new(Pager::new(MemStore::new(PAGE_SIZE).unwrap(), &config).unwrap());
        let mut tree = Tree::new(pager.clone());
        let key = |i: u16| [b"b".as_slice(), &i.to_be_bytes()].concat();
        for i in 0..6000u16 {
            tree.put(&key(i), &[(i % 7) as u8; 150]).unwrap();
        }
        let mut versions = vec![tree.commit().unwrap()];
        for round in 0..8u16 {
            for i in (1000..1600u16).step_by(usize::from(round % 3 + 1)) {
                let value = vec![round as u8; 20 + usize::from(round)];
                tree.put(&key(i + round * 7), &value).unwrap();
            }
            if round == 5 {
                tree.delete_range(key(1100).as_slice()..key(1150).as_slice())
                    .unwrap();
            }
            versions.push(tree.commit().unwrap());
        }
        let report = Snapshot::new(pager.clone(), *versions.last().unwrap())
            .check()
            .unwrap();
        assert!(report.height >= 3, "height {}", report.height);
        check_versions(&pager, &versions).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Rewrites without logical change

/// Pages of a version: (first page, page count) of every reachable extent.
fn extents<S: PageStore>(pager: &Arc<Pager<S>>, version: Version) -> HashSet<(PageId, u64)> {
    let report = Snapshot::new(pager.clone(), version).check().unwrap();
    report.extents.into_iter().collect()
}

/// A version whose journals hold many messages is flushed through a pager with a small
/// journal budget: the only new message deletes a key that does not exist, and the
/// flushes move every other message down into child journals and leaves. Most of the
/// tree is rewritten, yet the diff is empty both ways. Then the same values are written
/// again (a range delete and puts of what it removed, in one commit): empty again.
#[test]
fn pure_flush_yields_an_empty_diff() {
    let store = Arc::new(MemStore::new(PAGE_SIZE).unwrap());
    let roomy = TreeConfig {
        journal_bytes_max: 64 * 1024,
        ..TreeConfig::default()
    };
    let roomy_pager = Arc::new(Pager::new(store.clone(), &roomy).unwrap());
    let mut tree = Tree::new(roomy_pager.clone());
    let mut rng = SplitMix64::new(7);
    let key = |i: u64| format!("key{i:06}").into_bytes();
    for i in 0..6000 {
        tree.put(&key(i * 7 % 6000), &i.to_le_bytes()).unwrap();
        if i % 1000 == 999 {
            tree.commit().unwrap();
        }
    }
    for _ in 0..400 {
        let i = rng.below(6000);
        tree.put(&key(i), format!("update {i}").as_bytes()).unwrap();
    }
    tree.put(b"key-large", &vec![9u8; 6000]).unwrap();
    let heavy = tree.commit().unwrap();
    let heavy_report = Snapshot::new(roomy_pager.clone(), heavy).check().unwrap();

    // A second pager over the same store, with a small budget: the next commit flushes.
    let tight = TreeConfig {
        journal_bytes_max: 1024,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(store.clone(), &tight).unwrap());
    let mut tree = Tree::open(pager.clone(), heavy);
    tree.delete(b"no such key").unwrap();
    let flushed = tree.commit().unwrap();
    let flushed_report = Snapshot::new(pager.clone(), flushed).check().unwrap();

    // (Checked under the budget it was written with.)
    let before = extents(&roomy_pager, heavy);
    let after = extents(&pager, flushed);
    let rewritten = after.difference(&before).count();
    assert_ne!(heavy.root, flushed.root);
    assert!(
        flushed_report.journal_pending_bytes * 4 < heavy_report.journal_pending_bytes,
        "the flush moved messages down: {} -> {} pending bytes",
        heavy_report.journal_pending_bytes,
        flushed_report.journal_pending_bytes
    );
    assert!(rewritten >= 20, "only {rewritten} extents rewritten");
    let (forward, forward_pages) = run_diff(&pager, heavy, flushed).unwrap();
    let (backward, backward_pages) = run_diff(&pager, flushed, heavy).unwrap();
    eprintln!(
        "pure flush: {} of {} extents rewritten, pending journal bytes {} -> {}; diff reads {} \
         pages (backwards {}), changes {} and {}",
        rewritten,
        after.len(),
        heavy_report.journal_pending_bytes,
        flushed_report.journal_pending_bytes,
        forward_pages,
        backward_pages,
        forward.len(),
        backward.len()
    );
    assert!(forward.is_empty(), "{:?}", show(&forward));
    assert!(backward.is_empty(), "{:?}", show(&backward));
    // The diff had to look at the rewritten pages: nothing could be skipped blindly.
    assert!(forward_pages > 2);

    // Write values again without changing any: a range delete and puts of what it took.
    let removed: Vec<(Vec<u8>, Vec<u8>)> = Snapshot::new(pager.clone(), flushed)
        .range(b"key001000".as_slice()..b"key003000".as_slice())
        .map(|item| item.map(|(key, value)| (key, value.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    tree.delete_range(b"key001000".as_slice()..b"key003000".as_slice())
        .unwrap();
    for (key, value) in &removed {
        tree.put(key, value).unwrap();
    }
    tree.put(b"key-large", &vec![9u8; 6000]).unwrap();
    let rewritten_values = tree.commit().unwrap();
    assert_ne!(rewritten_values.root, flushed.root);
    let (changes, pages) = run_diff(&pager, flushed, rewritten_values).unwrap();
    eprintln!(
        "same values written again ({} puts after a range delete): diff reads {pages} pages, \
         {} changes",
        removed.len(),
        changes.len()
    );
    assert!(changes.is_empty(), "{:?}", show(&changes));
    let (changes, _) = run_diff(&pager, rewritten_values, heavy).unwrap();
    assert!(changes.is_empty(), "{:?}", show(&changes));
}

// ---------------------------------------------------------------------------------------
// Cost

struct Large {
    store: Arc<MemStore>,
    pager: Arc<Pager<Arc<MemStore>>>,
    tree: Tree<Arc<MemStore>>,
    keys: Vec<Vec<u8>>,
    base: Version,
    rng: SplitMix64,
}

const LARGE_KEYS: u64 = 100_000;

fn large_key(i: u64) -> Vec<u8> {
    format!("user{:09}", i * 7919 % 1_000_003).into_bytes()
}

fn large_value(rng: &mut SplitMix64) -> Vec<u8> {
    let mut value = vec![0u8; 8 + rng.below(32) as usize];
    rng.fill(&mut value);
    value
}

/// 100,000 keys in random order, committed every 10,000, 4 KiB pages, default journals.
fn large_tree() -> Large {
    let store = Arc::new(MemStore::new(PAGE_SIZE).unwrap());
    let pager = Arc::new(Pager::new(store.clone(), &TreeConfig::default()).unwrap());
    let mut tree = Tree::new(pager.clone());
    let mut rng = SplitMix64::new(2024);
    let mut order: Vec<u64> = (0..LARGE_KEYS).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for (n, &i) in order.iter().enumerate() {
        tree.put(&large_key(i), &large_value(&mut rng)).unwrap();
        if n % 10_000 == 9_999 {
            tree.commit().unwrap();
        }
    }
    let base = tree.commit().unwrap();
    let mut keys: Vec<Vec<u8>> = (0..LARGE_KEYS).map(large_key).collect();
    keys.sort();
    Large {
        store,
        pager,
        tree,
        keys,
        base,
        rng,
    }
}

/// Loads a full scan of `version` asks a pager of its own for (cache hits and misses):
/// a fresh one, because views a read has been through reach their children by links,
/// past the cache and its counters.
fn full_scan_loads(store: &Arc<MemStore>, version: Version) -> u64 {
    let pager = Arc::new(Pager::new(store.clone(), &TreeConfig::default()).unwrap());
    let count = Snapshot::new(pager.clone(), version).iter().count();
    assert!(count as u64 >= LARGE_KEYS - 20);
    let stats = pager.cache_stats();
    stats.hits + stats.misses
}

/// A store that notes every extent read from it.
struct LoggingStore {
    inner: Arc<MemStore>,
    reads: Mutex<Vec<u64>>,
}

#[allow(refining_impl_trait)]
impl PageStore for LoggingStore {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    fn page_count(&self) -> u64 {
        self.inner.page_count()
    }

    fn read(&self, start: PageId, page_count: u32) -> Ready<DiskResult<PageBytes>> {
        self.reads.lock().unwrap().push(start.0);
        ready(resolve(self.inner.read(start, page_count)))
    }

    fn write(&self, start: PageId, bytes: PageBytes) -> Ready<DiskResult<()>> {
        ready(resolve(self.inner.write(start, bytes)))
    }

    fn sync(&self) -> Ready<DiskResult<()>> {
        ready(Ok(()))
    }

    fn truncate(&self, page_count: u64) -> Ready<DiskResult<()>> {
        ready(resolve(self.inner.truncate(page_count)))
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}

/// Applies `changes` (key, new value or `None` to delete) in one commit and checks that
/// the diff returns exactly them, both ways. The forward diff runs again on a pager with
/// no cache over a store that logs reads: every load it counts reaches the store, and no
/// page is read twice. Returns the pages that diff read.
fn commit_and_diff(large: &mut Large, changes: &[(Vec<u8>, Option<Vec<u8>>)]) -> u64 {
    let old = large.tree.commit().unwrap();
    let mut want = Vec::new();
    for (key, value) in changes {
        let before = large.tree.get(key).unwrap().map(|value| value.to_vec());
        match value {
            Some(value) => large.tree.put(key, value).unwrap(),
            None => large.tree.delete(key).unwrap(),
        }
        want.push((key.clone(), before, value.clone()));
    }
    want.sort();
    let new = large.tree.commit().unwrap();
    let (got, _) = run_diff(&large.pager, old, new).unwrap();
    assert_eq!(got, want);
    let (back, _) = run_diff(&large.pager, new, old).unwrap();
    let inverse: Vec<Plain> = want
        .iter()
        .cloned()
        .map(|(key, old, new)| (key, new, old))
        .collect();
    assert_eq!(back, inverse);

    let cold = TreeConfig {
        cache_bytes_max: 0,
        ..TreeConfig::default()
    };
    let store = LoggingStore {
        inner: large.store.clone(),
        reads: Mutex::new(Vec::new()),
    };
    let pager = Arc::new(Pager::new(store, &cold).unwrap());
    let (got, pages) = run_diff(&pager, old, new).unwrap();
    assert_eq!(got, want);
    let reads = pager.store().reads.lock().unwrap().clone();
    let distinct: HashSet<u64> = reads.iter().copied().collect();
    // With no cache, every load the diff asks for reaches the store: the two figures
    // agree exactly when `pages_read` counts every load.
    assert_eq!(reads.len() as u64, pages, "store reads vs loads counted");
    assert_eq!(distinct.len(), reads.len(), "a page read twice: {reads:?}");
    pages
}

/// Ten changed keys out of 100,000 read a couple of dozen pages, not the tree: under 4%
/// of its extents, which is also what a full scan of one version asks the pager for
/// (the scan loads each page and segment once; `pages_read` counts loads asked for the
/// same way). Why it is that small: the two roots
/// differ, and their journals are read (segments both share, once); below the root, a
/// changed key costs one page per level (the shared branch is read once for both
/// sides, in the joint descent) plus whatever journal segments of those branches hold
/// messages for it. Each page is read at most once (`commit_and_diff` checks it).
#[test]
fn cost_follows_the_change() {
    let mut large = large_tree();
    let report = Snapshot::new(large.pager.clone(), large.base)
        .check()
        .unwrap();
    let scan_loads = full_scan_loads(&large.store, large.base);
    let distinct = report.extents.len() as u64;
    // The scan keeps its path from leaf to leaf, so it asks for each extent once.
    assert_eq!(scan_loads, distinct, "a full scan loads every extent once");
    let bound = distinct / 25;
    eprintln!(
        "large tree: {} keys, height {}, {} leaves, {} branches, {} segments, {} extents; a \
         full scan asks for {} loads",
        LARGE_KEYS,
        report.height,
        report.leaf_count,
        report.branch_count,
        report.segment_count,
        distinct,
        scan_loads
    );

    // Ten keys anywhere: updates, deletes and an insertion.
    let mut scattered = Vec::new();
    let mut chosen = HashSet::new();
    while scattered.len() < 9 {
        let key = large.keys[large.rng.below(LARGE_KEYS) as usize].clone();
        if chosen.insert(key.clone()) {
            let value = (scattered.len() % 4 != 3).then(|| large_value(&mut large.rng));
            scattered.push((key, value));
        }
    }
    scattered.push((b"user-new".to_vec(), Some(b"fresh".to_vec())));
    let scattered_pages = commit_and_diff(&mut large, &scattered);

    // Ten neighbouring keys.
    let start = large.rng.below(LARGE_KEYS - 10) as usize;
    let clustered: Vec<(Vec<u8>, Option<Vec<u8>>)> = large.keys[start..start + 10]
        .iter()
        .map(|key| (key.clone(), Some(b"clustered".to_vec())))
        .collect();
    let clustered_pages = commit_and_diff(&mut large, &clustered);

    eprintln!(
        "10 scattered changes: diff read {scattered_pages} pages; 10 clustered: \
         {clustered_pages}; a full scan asks for {scan_loads} loads of {distinct} distinct \
         extents; bound {bound} (4% of the extents)"
    );
    assert!(
        scattered_pages <= bound,
        "{scattered_pages} pages read, bound {bound}"
    );
    assert!(
        clustered_pages <= bound,
        "{clustered_pages} pages read, bound {bound}"
    );
    assert!(clustered_pages < scattered_pages);
}

/// A version against itself reads at most the two roots (in fact nothing: the roots are
/// the same page), and so does a commit that changed nothing.
#[test]
fn empty_diff_reads_at_most_the_roots() {
    let pager =
        Arc::new(Pager::new(MemStore::new(PAGE_SIZE).unwrap(), &TreeConfig::default()).unwrap());
    let mut tree = Tree::new(pager.clone());
    for i in 0..20_000u32 {
        tree.put(format!("{i:08}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    let version = tree.commit().unwrap();
    let same = tree.commit().unwrap();
    let snapshot = Snapshot::new(pager.clone(), version);
    let mut diff = snapshot.diff(&snapshot);
    assert!(diff.next().is_none());
    assert!(diff.pages_read() <= 2, "{} pages read", diff.pages_read());
    let (changes, pages) = run_diff(&pager, version, same).unwrap();
    assert!(changes.is_empty());
    assert!(pages <= 2, "{pages} pages read");
    eprintln!(
        "empty diff of a version with itself: {} pages read",
        diff.pages_read()
    );
}

// ---------------------------------------------------------------------------------------
// Damaged pages: an error, never a panic

/// Wraps a shared `MemStore`; reads of an overridden extent return the override.
struct DamagingStore {
    inner: Arc<MemStore>,
    overrides: HashMap<u64, PageBytes>,
}

#[allow(refining_impl_trait)]
impl PageStore for DamagingStore {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    fn page_count(&self) -> u64 {
        self.inner.page_count()
    }

    fn read(&self, start: PageId, page_count: u32) -> Ready<DiskResult<PageBytes>> {
        match self.overrides.get(&start.0) {
            Some(bytes) => ready(Ok(bytes.clone())),
            None => ready(resolve(self.inner.read(start, page_count))),
        }
    }

    fn write(&self, start: PageId, bytes: PageBytes) -> Ready<DiskResult<()>> {
        ready(resolve(self.inner.write(start, bytes)))
    }

    fn sync(&self) -> Ready<DiskResult<()>> {
        ready(Ok(()))
    }

    fn truncate(&self, page_count: u64) -> Ready<DiskResult<()>> {
        ready(resolve(self.inner.truncate(page_count)))
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}

/// Every extent either version uses, damaged in turn (a flipped byte: a checksum
/// mismatch), and every byte of the new root changed and resealed (so that its
/// structure is what gets checked): the diff ends with an error or still gives the right
/// answer, and never panics.
#[test]
fn damaged_pages_give_errors_not_panics() {
    let store = Arc::new(MemStore::new(PAGE_SIZE).unwrap());
    let config = TreeConfig {
        journal_bytes_max: 2048,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(store.clone(), &config).unwrap());
    let mut tree = Tree::new(pager.clone());
    for i in 0..3000u32 {
        tree.put(format!("{:05}", i * 13 % 3000).as_bytes(), &[i as u8; 12])
            .unwrap();
    }
    tree.put(b"large", &[5u8; 3000]).unwrap();
    let old = tree.commit().unwrap();
    for i in (0..3000u32).step_by(97) {
        tree.put(format!("{i:05}").as_bytes(), b"changed").unwrap();
    }
    tree.delete_range(b"01000".as_slice()..b"01100".as_slice())
        .unwrap();
    tree.put(b"large", &[6u8; 3000]).unwrap();
    let new = tree.commit().unwrap();
    let (want, _) = run_diff(&pager, old, new).unwrap();
    assert!(!want.is_empty());

    let damaged_run = |overrides: HashMap<u64, PageBytes>, new: Version| {
        let store = DamagingStore {
            inner: store.clone(),
            overrides,
        };
        let pager = Arc::new(Pager::new(store, &config).unwrap());
        match run_diff(&pager, old, new) {
            Ok((got, _)) => got == want,
            Err(error) => {
                assert!(
                    matches!(error, thunderhead_core::Error::Storage(_)),
                    "{error}"
                );
                false
            }
        }
    };
    let read = |page: PageId, count: u64| resolve(store.read(page, count as u32)).unwrap();
    let mut all: Vec<(PageId, u64)> = extents(&pager, old)
        .union(&extents(&pager, new))
        .copied()
        .collect();
    all.sort();
    let mut errors = 0;
    for &(page, count) in &all {
        let mut bytes = read(page, count).to_vec();
        bytes[40] ^= 0x24;
        if !damaged_run(HashMap::from([(page.0, PageBytes::new(bytes))]), new) {
            errors += 1;
        }
    }
    let root = read(new.root, 1).to_vec();
    let mut root_errors = 0;
    for at in (0..PAGE_SIZE).filter(|at| !(4..8).contains(at)) {
        let mut bytes = root.clone();
        bytes[at] ^= 0x5a;
        let checksum = seal_checksum(&mut bytes);
        let resealed = Version {
            root_checksum: checksum,
            ..new
        };
        if !damaged_run(
            HashMap::from([(new.root.0, PageBytes::new(bytes))]),
            resealed,
        ) {
            root_errors += 1;
        }
    }
    eprintln!(
        "damage: {errors} of {} extents changed the outcome (an error or another answer); {} \
         of {} resealed root bytes",
        all.len(),
        root_errors,
        PAGE_SIZE - 4
    );
    assert!(errors > 0 && root_errors > 0);
}

/// Snapshots of two different pagers cannot be diffed: the diff says so, once.
#[test]
fn snapshots_of_different_pagers_are_an_error() {
    let version_of = |pager: &Arc<Pager<MemStore>>| {
        let mut tree = Tree::new(pager.clone());
        tree.put(b"key", b"value").unwrap();
        tree.commit().unwrap()
    };
    let one =
        Arc::new(Pager::new(MemStore::new(PAGE_SIZE).unwrap(), &TreeConfig::default()).unwrap());
    let two =
        Arc::new(Pager::new(MemStore::new(PAGE_SIZE).unwrap(), &TreeConfig::default()).unwrap());
    let old = Snapshot::new(one.clone(), version_of(&one));
    let new = Snapshot::new(two.clone(), version_of(&two));
    let results: Vec<_> = old.diff(&new).collect();
    assert_eq!(results.len(), 1);
    assert!(matches!(
        results[0],
        Err(thunderhead_core::Error::InvalidConfig(_))
    ));
}
