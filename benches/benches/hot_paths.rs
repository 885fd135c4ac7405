//! Micro-benchmarks of Thunderhead's hot paths, each isolated from the rest of a lookup:
//!
//! - `node_search`: the binary search for a key in a full 16 KiB leaf page, and routing a
//!   key through a full branch page;
//! - `journal_merge`: point lookups that consult a branch's journal (stored segments of a
//!   committed version, or the in-memory buffer of a writer) before descending, against
//!   the same lookups in a tree whose journals are empty;
//! - `prefix_decode`: rebuilding every full key of a prefix-compressed leaf page
//!   (implied prefix from the fences, local prefix, suffix);
//! - `page_checksum`: the crc32 of a 16 KiB page, verified as the pager verifies every
//!   page it reads, and sealed as a commit seals every page it writes.
//!
//! Pages hold redb-shaped entries (24-byte random keys, 150-byte values), and a variant
//! whose keys share a 16-byte prefix (16 fixed bytes then 8 random ones), so that most of
//! every key is implied by the fences or stored once as the page's local prefix.
//!
//! Page-level paths go through `thunderhead_core::bench_support` (thin wrappers over the
//! tree's own page code, not a stable API); the journal paths go through the public
//! `Tree`/`Snapshot` API. Every benchmark checks its answers once before timing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use thunderhead_benches::{SplitMix64, keys_values};
use thunderhead_core::bench_support::{
    BenchBranchPage, BenchLeafPage, encode_branch_page, encode_leaf_page,
};
use thunderhead_core::{Pager, Snapshot, Tree, TreeConfig, Version};
use thunderhead_disk::{CHECKSUM_OFFSET, MemStore, page_checksum, seal_checksum};

const N: usize = 100_000;
const KEY_LEN: usize = 24;
const VALUE_LEN: usize = 150;
const PAGE_SIZE: usize = 16 * 1024;
const SEED: u64 = 0x5448_554E_4445_5248;
/// The 16 bytes every key of the shared-prefix variant starts with.
const SHARED_PREFIX: &[u8; 16] = b"tenant-0042/usr/";
/// Entries per leaf when cutting the sorted keys into leaves for a branch's pivots:
/// about what a 16 KiB leaf holds between its fill minimum and a split.
const LEAF_ENTRIES: usize = 64;
/// Lookups per iteration of the routing and journal benchmarks.
const PROBES: usize = 1_000;
/// Journal messages (updates of existing keys) per commit over the base tree, oldest
/// first; each commit writes one segment of the root's journal. A commit merges the
/// newer segments that are not much larger than what it writes (segment sizes grow
/// geometrically down the journal, like a binary counter), so each commit here writes
/// well under half of the one before to keep them apart: four segments, the oldest
/// largest, as a journal that grew over several commits has them.
const SEGMENT_MESSAGES: [usize; 4] = [2_048, 768, 256, 96];
const SEGMENTS: usize = SEGMENT_MESSAGES.len();
const JOURNAL_MESSAGES: usize = {
    let (mut total, mut index) = (0, 0);
    while index < SEGMENTS {
        total += SEGMENT_MESSAGES[index];
        index += 1;
    }
    total
};

type Data = Vec<(Vec<u8>, Vec<u8>)>;

/// The shapes of key the page benchmarks run on.
#[derive(Clone, Copy)]
enum Keys {
    /// 24 random bytes.
    Random,
    /// `SHARED_PREFIX` then 8 random bytes.
    Prefix16,
}

impl Keys {
    fn name(self) -> &'static str {
        match self {
            Keys::Random => "random",
            Keys::Prefix16 => "prefix16",
        }
    }

    /// `N` entries of this shape, sorted by key, keys distinct.
    fn sorted(self) -> Data {
        let mut data = keys_values(SEED, N, KEY_LEN, VALUE_LEN);
        if let Keys::Prefix16 = self {
            for (key, _) in &mut data {
                key[..SHARED_PREFIX.len()].copy_from_slice(SHARED_PREFIX);
            }
        }
        data.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        data.dedup_by(|a, b| a.0 == b.0);
        data
    }
}

/// A group with short warm-up and measurement, so the whole file runs in about a minute.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The pivot the tree puts between two neighbouring nodes: the shortest key `s` with
/// `left < s <= right` (as `thunderhead_core`'s suffix truncation chooses it).
fn separator(left: &[u8], right: &[u8]) -> Vec<u8> {
    let shared = common_prefix_len(left, right);
    right[..(shared + 1).min(right.len())].to_vec()
}

/// A full leaf page cut from the middle of `sorted`, as the tree would store it.
struct LeafCase {
    bytes: Vec<u8>,
    page: BenchLeafPage,
    /// The entries the page holds, in order.
    entries: Data,
    /// The prefix the page's fences imply (its keys' first bytes, not stored).
    implied: Vec<u8>,
}

/// The leaf holding as many of `sorted[start..]` as fit a page. With `fenced`, it sits
/// between neighbours (fences are the separators from the entries around it, and
/// their common prefix is implied); otherwise it is the leftmost leaf, which has no
/// low fence and so implies nothing: the shared prefix is then stored as its local
/// prefix.
fn leaf_case(sorted: &Data, start: usize, fenced: bool) -> LeafCase {
    let implied_len = |end: usize| {
        if fenced {
            let low = separator(&sorted[start - 1].0, &sorted[start].0);
            let high = separator(&sorted[end - 1].0, &sorted[end].0);
            common_prefix_len(&low, &high)
        } else {
            0
        }
    };
    let mut best = None;
    for end in start + 1..sorted.len() {
        let implied = implied_len(end);
        match encode_leaf_page(&sorted[start..end], implied, PAGE_SIZE) {
            Some(bytes) => best = Some((end, implied, bytes)),
            None => break,
        }
    }
    let (end, implied_len, bytes) = best.expect("one entry fits a page");
    let entries = sorted[start..end].to_vec();
    let implied = entries[0].0[..implied_len].to_vec();
    let page = BenchLeafPage::parse(&bytes).expect("a page just encoded parses");
    assert_eq!(page.len(), entries.len());
    assert_eq!(page.implied_len(), implied_len);
    LeafCase {
        bytes,
        page,
        entries,
        implied,
    }
}

/// Shuffles `keys` in place, deterministically (Fisher-Yates).
fn shuffle<T>(keys: &mut [T], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for i in (1..keys.len()).rev() {
        keys.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

fn node_search(c: &mut Criterion) {
    let mut group = group(c, "node_search");
    for keys in [Keys::Random, Keys::Prefix16] {
        let sorted = keys.sorted();

        // Leaf search: every key of the page (hits), and each of them with its last byte
        // changed (misses, which search down to an insertion point).
        let leaf = leaf_case(&sorted, sorted.len() / 2, true);
        let mut hits: Vec<(usize, &[u8])> = leaf
            .entries
            .iter()
            .enumerate()
            .map(|(index, (key, _))| (index, key.as_slice()))
            .collect();
        shuffle(&mut hits, SEED ^ 10);
        let misses: Vec<Vec<u8>> = hits
            .iter()
            .map(|(_, key)| {
                let mut miss = key.to_vec();
                *miss.last_mut().expect("keys are not empty") ^= 1;
                miss
            })
            .filter(|miss| {
                leaf.entries
                    .binary_search_by(|(key, _)| key.as_slice().cmp(miss))
                    .is_err()
            })
            .collect();
        for &(index, key) in &hits {
            assert_eq!(leaf.page.search(key), Ok(index), "hit");
            let value = leaf.page.inline_value(index).expect("inline");
            assert_eq!(&value[..], leaf.entries[index].1.as_slice(), "value");
        }
        for miss in &misses {
            let expected = leaf.entries.partition_point(|(key, _)| key < miss);
            assert_eq!(leaf.page.search(miss), Err(expected), "miss");
        }

        group.throughput(Throughput::Elements(hits.len() as u64));
        group.bench_function(BenchmarkId::new("leaf_hit", keys.name()), |b| {
            b.iter(|| {
                let mut sum = 0;
                for &(_, key) in &hits {
                    sum += leaf.page.search(black_box(key)).unwrap_or(usize::MAX);
                }
                sum
            })
        });
        group.throughput(Throughput::Elements(misses.len() as u64));
        group.bench_function(BenchmarkId::new("leaf_miss", keys.name()), |b| {
            b.iter(|| {
                let mut sum = 0;
                for miss in &misses {
                    sum += leaf.page.search(black_box(miss)).unwrap_or_else(|at| at);
                }
                sum
            })
        });

        // Branch routing: a full root branch over leaves of `LEAF_ENTRIES` entries (its
        // pivots are the leaves' separators), and keys spread over all its children.
        let all_pivots: Vec<Vec<u8>> = (1..sorted.len() / LEAF_ENTRIES)
            .map(|leaf| {
                let at = leaf * LEAF_ENTRIES;
                separator(&sorted[at - 1].0, &sorted[at].0)
            })
            .collect();
        let mut fitting = 1;
        let mut branch_bytes = encode_branch_page(&all_pivots[..1], 0, PAGE_SIZE).expect("fits");
        while let Some(bytes) = encode_branch_page(&all_pivots[..fitting + 1], 0, PAGE_SIZE) {
            fitting += 1;
            branch_bytes = bytes;
        }
        let pivots = &all_pivots[..fitting];
        let branch = BenchBranchPage::parse(&branch_bytes).expect("a page just encoded parses");
        assert_eq!(branch.len(), pivots.len() + 1);
        if let Keys::Prefix16 = keys {
            assert!(branch.local_prefix_len() >= SHARED_PREFIX.len());
        }
        let covered = (pivots.len() + 1) * LEAF_ENTRIES;
        let mut rng = SplitMix64::new(SEED ^ 11);
        // Copied out of `sorted`, so that the probes, not the data set, are in cache.
        let probes: Vec<(Vec<u8>, usize)> = (0..PROBES)
            .map(|_| {
                let key = sorted[rng.below(covered as u64) as usize].0.clone();
                let child = pivots.partition_point(|pivot| pivot.as_slice() <= key.as_slice());
                (key, child)
            })
            .collect();
        for (key, child) in &probes {
            assert_eq!(branch.route(key), *child, "route");
        }

        group.throughput(Throughput::Elements(PROBES as u64));
        group.bench_function(
            BenchmarkId::new(
                format!("branch_route_{}_children", branch.len()),
                keys.name(),
            ),
            |b| {
                b.iter(|| {
                    let mut sum = 0;
                    for (key, _) in &probes {
                        sum += branch.route(black_box(key));
                    }
                    sum
                })
            },
        );
    }
    group.finish();
}

/// Trees of `N` random entries in one store. `drained` is committed with every journal
/// empty; `journaled` is `drained` plus `JOURNAL_MESSAGES` updates of existing keys,
/// committed in `SEGMENTS` commits so that they sit in the root's journal as that many
/// stored segments; `writer` holds the same updates uncommitted over `drained`, in its
/// root's in-memory buffer.
struct Journals {
    drained: Snapshot<Arc<MemStore>>,
    journaled: Snapshot<Arc<MemStore>>,
    writer: Tree<Arc<MemStore>>,
    /// (key, new value) of every update.
    updates: Data,
    /// Entries no update touched: only in the leaves.
    untouched: Data,
}

fn journals() -> Journals {
    let data = keys_values(SEED, N, KEY_LEN, VALUE_LEN);
    let store = Arc::new(MemStore::new(PAGE_SIZE).expect("page size"));
    let drain_all = TreeConfig {
        journal_bytes_max: 1,
        ..TreeConfig::default()
    };
    let drained_pager = Arc::new(Pager::new(store.clone(), &drain_all).expect("pager"));
    let mut tree = Tree::new(drained_pager.clone());
    for (key, value) in &data {
        tree.put(key, value).expect("put");
    }
    let base: Version = tree.commit().expect("commit");
    let drained = Snapshot::new(drained_pager, base);
    let report = drained.check().expect("check");
    assert_eq!(report.journal_pending_bytes, 0, "journals drained");
    assert!(report.height >= 3, "the root is a branch over branches");

    // A second pager over the same store with a budget the updates stay within: no
    // journal flushes, so every update waits in the root's journal.
    let keep_all = TreeConfig {
        journal_bytes_max: 4 << 20,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(store, &keep_all).expect("pager"));
    let mut rng = SplitMix64::new(SEED ^ 20);
    let mut order: Vec<usize> = (0..N).collect();
    shuffle(&mut order, SEED ^ 21);
    let updates: Data = order[..JOURNAL_MESSAGES]
        .iter()
        .map(|&index| {
            let mut value = vec![0; VALUE_LEN];
            rng.fill(&mut value);
            (data[index].0.clone(), value)
        })
        .collect();
    let untouched: Data = order[JOURNAL_MESSAGES..]
        .iter()
        .map(|&index| data[index].clone())
        .collect();

    let mut tree = Tree::open(pager.clone(), base);
    let mut version = base;
    let mut rest = updates.as_slice();
    for count in SEGMENT_MESSAGES {
        let (chunk, after) = rest.split_at(count);
        for (key, value) in chunk {
            tree.put(key, value).expect("put");
        }
        version = tree.commit().expect("commit");
        rest = after;
    }
    assert!(rest.is_empty());
    let journaled = Snapshot::new(pager.clone(), version);
    let report = journaled.check().expect("check");
    assert_eq!(
        report.segment_count, SEGMENTS as u64,
        "one segment per commit"
    );
    assert!(
        report.journal_pending_bytes >= (JOURNAL_MESSAGES * (KEY_LEN + VALUE_LEN)) as u64,
        "the updates wait in the journal"
    );
    assert_eq!(
        report.leaf_count,
        drained.check().expect("check").leaf_count
    );

    let mut writer = Tree::open(pager, base);
    for (key, value) in &updates {
        writer.put(key, value).expect("put");
    }
    let report = writer.check().expect("check");
    assert_eq!(report.segment_count, 0, "the writer's journal is in memory");
    assert!(report.journal_pending_bytes >= (JOURNAL_MESSAGES * (KEY_LEN + VALUE_LEN)) as u64);
    Journals {
        drained,
        journaled,
        writer,
        updates,
        untouched,
    }
}

fn journal_merge(c: &mut Criterion) {
    let journals = journals();
    let mut rng = SplitMix64::new(SEED ^ 22);
    let mut sample = |data: &Data| -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..PROBES)
            .map(|_| data[rng.below(data.len() as u64) as usize].clone())
            .collect()
    };
    let in_journal = sample(&journals.updates);
    let in_leaves = sample(&journals.untouched);
    type Get<'a> = Box<dyn Fn(&[u8]) -> Option<thunderhead_core::ValueBytes> + 'a>;
    let cases: [(&str, &str, Get<'_>, &Data); 5] = [
        (
            "no_journal",
            "leaf_key",
            Box::new(|key| journals.drained.get(key).expect("get")),
            &in_leaves,
        ),
        (
            "segments",
            "leaf_key",
            Box::new(|key| journals.journaled.get(key).expect("get")),
            &in_leaves,
        ),
        (
            "segments",
            "journal_key",
            Box::new(|key| journals.journaled.get(key).expect("get")),
            &in_journal,
        ),
        (
            "buffer",
            "leaf_key",
            Box::new(|key| journals.writer.get(key).expect("get")),
            &in_leaves,
        ),
        (
            "buffer",
            "journal_key",
            Box::new(|key| journals.writer.get(key).expect("get")),
            &in_journal,
        ),
    ];
    // Journal keys must come back with their updated value: the journal was consulted,
    // and won over the leaf.
    for (journal, probe, get, probes) in &cases {
        for (key, value) in *probes {
            let found = get(key).unwrap_or_else(|| panic!("{journal}/{probe}: key missing"));
            assert_eq!(
                &found[..],
                value.as_slice(),
                "{journal}/{probe}: wrong value"
            );
        }
    }

    let mut group = group(c, "journal_merge");
    group.throughput(Throughput::Elements(PROBES as u64));
    for (journal, probe, get, probes) in &cases {
        group.bench_function(BenchmarkId::new(*journal, probe), |b| {
            b.iter(|| {
                let mut total = 0;
                for (key, _) in *probes {
                    total += get(black_box(key)).map_or(0, |value| value.len());
                }
                total
            })
        });
    }
    group.finish();
}

fn prefix_decode(c: &mut Criterion) {
    let mut group = group(c, "prefix_decode");
    let random = Keys::Random.sorted();
    let prefix16 = Keys::Prefix16.sorted();
    let cases = [
        // Between neighbours: little is shared, so keys are mostly suffix.
        ("random", leaf_case(&random, random.len() / 2, true)),
        // Between neighbours: the shared prefix and more is implied by the fences.
        (
            "prefix16_implied",
            leaf_case(&prefix16, prefix16.len() / 2, true),
        ),
        // The leftmost leaf implies nothing: the shared prefix is the local prefix.
        ("prefix16_local", leaf_case(&prefix16, 0, false)),
    ];
    let (_, leftmost) = &cases[2];
    assert!(leftmost.page.local_prefix_len() >= SHARED_PREFIX.len());
    let (_, fenced) = &cases[1];
    assert!(fenced.implied.len() >= SHARED_PREFIX.len());
    for (name, leaf) in &cases {
        let mut decoded = Vec::new();
        leaf.page
            .for_each_key(&leaf.implied, |_, key| decoded.push(key.to_vec()));
        let expected: Vec<Vec<u8>> = leaf.entries.iter().map(|(key, _)| key.clone()).collect();
        assert_eq!(decoded, expected, "{name}: decoded keys");

        group.throughput(Throughput::Elements(leaf.page.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let mut sum = 0usize;
                black_box(&leaf.page).for_each_key(black_box(&leaf.implied), |index, key| {
                    sum += index ^ usize::from(black_box(key)[KEY_LEN - 1]);
                });
                sum
            })
        });
    }
    group.finish();
}

fn page_checksum_bench(c: &mut Criterion) {
    let sorted = Keys::Random.sorted();
    let leaf = leaf_case(&sorted, sorted.len() / 2, true);
    let page = leaf.bytes;
    assert_eq!(page.len(), PAGE_SIZE);
    let stored = |page: &[u8]| {
        u32::from_le_bytes(
            page[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4]
                .try_into()
                .expect("4 bytes"),
        )
    };
    // The page as encoded verifies, and a flipped bit anywhere is caught.
    assert_eq!(page_checksum(&page), stored(&page));
    let mut damaged = page.clone();
    damaged[PAGE_SIZE - 1] ^= 0x10;
    assert_ne!(page_checksum(&damaged), stored(&damaged));
    let mut resealed = page.clone();
    resealed[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4].fill(0);
    assert_eq!(seal_checksum(&mut resealed), stored(&page));
    assert_eq!(resealed, page);

    let mut group = group(c, "page_checksum");
    group.throughput(Throughput::Elements(1));
    // What the pager does with every page it reads: recompute, compare with the slot.
    group.bench_function("verify_16k", |b| {
        b.iter(|| {
            let page = black_box(page.as_slice());
            page_checksum(page) == stored(page)
        })
    });
    // What a commit does with every page it writes.
    group.bench_function("seal_16k", |b| {
        b.iter(|| seal_checksum(black_box(resealed.as_mut_slice())))
    });
    group.finish();
}

criterion_group!(
    benches,
    node_search,
    journal_merge,
    prefix_decode,
    page_checksum_bench
);
criterion_main!(benches);
