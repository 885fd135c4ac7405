//! Thunderhead in memory (`MemStore`, 16 KiB pages, default `TreeConfig`) against
//! `std::collections::BTreeMap<Vec<u8>, Vec<u8>>`: random inserts, random gets, full
//! scans in both directions, and short range scans. The workload is redb's shape:
//! 100,000 random 24-byte keys with 150-byte values.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::ops::Bound::{Excluded, Included};
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use thunderhead_benches::{SplitMix64, keys_values};
use thunderhead_core::{Pager, Snapshot, Tree, TreeConfig, Version};
use thunderhead_disk::MemStore;

const N: usize = 100_000;
const KEY_LEN: usize = 24;
const VALUE_LEN: usize = 150;
const PAGE_SIZE: usize = 16 * 1024;
const SEED: u64 = 0x5448_554E_4445_5248;
const GETS: usize = 10_000;
const RANGES: usize = 1_000;
const RANGE_LEN: usize = 100;

type Data = Vec<(Vec<u8>, Vec<u8>)>;

fn data() -> Data {
    keys_values(SEED, N, KEY_LEN, VALUE_LEN)
}

fn new_pager() -> Arc<Pager<MemStore>> {
    let store = MemStore::new(PAGE_SIZE).expect("page size");
    Arc::new(Pager::new(store, &TreeConfig::default()).expect("pager"))
}

/// A writer holding every entry of `data`, nothing committed.
fn fill(data: &Data) -> Tree<MemStore> {
    let mut tree = Tree::new(new_pager());
    for (key, value) in data {
        tree.put(key, value).expect("put");
    }
    tree
}

/// A committed version holding every entry of `data`.
fn committed(data: &Data) -> (Arc<Pager<MemStore>>, Version) {
    let mut tree = fill(data);
    let version = tree.commit().expect("commit");
    (tree.pager().clone(), version)
}

fn btreemap(data: &Data) -> BTreeMap<Vec<u8>, Vec<u8>> {
    data.iter().cloned().collect()
}

fn insert(c: &mut Criterion) {
    let data = data();
    let mut group = c.benchmark_group("insert_random");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("thunderhead", |b| {
        b.iter_with_large_drop(|| {
            let mut tree = fill(&data);
            let version = tree.commit().expect("commit");
            black_box(version);
            tree
        })
    });
    group.bench_function("btreemap", |b| {
        b.iter_with_large_drop(|| {
            let mut map = BTreeMap::new();
            for (key, value) in &data {
                map.insert(key.clone(), value.clone());
            }
            map
        })
    });
    group.finish();
}

fn get(c: &mut Criterion) {
    let data = data();
    let mut rng = SplitMix64::new(SEED ^ 1);
    let probes: Vec<&[u8]> = (0..GETS)
        .map(|_| data[rng.below(N as u64) as usize].0.as_slice())
        .collect();
    let (pager, version) = committed(&data);
    let snapshot = Snapshot::new(pager, version);
    let writer = fill(&data);
    let map = btreemap(&data);
    let expected = GETS * VALUE_LEN;

    let mut group = c.benchmark_group("get_random");
    group.sample_size(10);
    group.throughput(Throughput::Elements(GETS as u64));
    group.bench_function("thunderhead_snapshot", |b| {
        b.iter(|| {
            let mut total = 0;
            for key in &probes {
                total += snapshot.get(key).expect("get").expect("present").len();
            }
            assert_eq!(total, expected);
            total
        })
    });
    group.bench_function("thunderhead_writer_uncommitted", |b| {
        b.iter(|| {
            let mut total = 0;
            for key in &probes {
                total += writer.get(key).expect("get").expect("present").len();
            }
            assert_eq!(total, expected);
            total
        })
    });
    group.bench_function("btreemap", |b| {
        b.iter(|| {
            let mut total = 0;
            for key in &probes {
                total += map.get(*key).expect("present").len();
            }
            assert_eq!(total, expected);
            total
        })
    });
    group.finish();
}

/// A committed version of `data` written with a one-byte journal budget: every message
/// goes straight down to its leaf, so the journals are empty, as in a plain B+ tree.
fn committed_drained(data: &Data) -> (Arc<Pager<MemStore>>, Version) {
    let config = TreeConfig {
        journal_bytes_max: 1,
        ..TreeConfig::default()
    };
    let store = MemStore::new(PAGE_SIZE).expect("page size");
    let pager = Arc::new(Pager::new(store, &config).expect("pager"));
    let mut tree = Tree::new(pager.clone());
    for (key, value) in data {
        tree.put(key, value).expect("put");
    }
    let version = tree.commit().expect("commit");
    let report = Snapshot::new(pager.clone(), version)
        .check()
        .expect("check");
    assert_eq!(report.journal_pending_bytes, 0, "journals drained");
    (pager, version)
}

fn scan(c: &mut Criterion) {
    let data = data();
    let (pager, version) = committed(&data);
    let snapshot = Snapshot::new(pager, version);
    let (pager, version) = committed_drained(&data);
    let drained = Snapshot::new(pager, version);
    let map = btreemap(&data);
    let expected = N * VALUE_LEN;

    let mut group = c.benchmark_group("scan_full");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    for reverse in [false, true] {
        let direction = if reverse { "reverse" } else { "forward" };
        for (name, version) in [
            ("thunderhead_drained", &drained),
            ("thunderhead", &snapshot),
        ] {
            group.bench_function(BenchmarkId::new(name, direction), |b| {
                b.iter(|| {
                    let lengths = |entry: thunderhead_core::Result<_>| {
                        let (_key, value): (Vec<u8>, thunderhead_core::ValueBytes) =
                            entry.expect("entry");
                        value.len()
                    };
                    let total: usize = if reverse {
                        version.iter().rev().map(lengths).sum()
                    } else {
                        version.iter().map(lengths).sum()
                    };
                    assert_eq!(total, expected);
                    total
                })
            });
        }
        group.bench_function(BenchmarkId::new("btreemap", direction), |b| {
            b.iter(|| {
                let total: usize = if reverse {
                    map.values().rev().map(Vec::len).sum()
                } else {
                    map.values().map(Vec::len).sum()
                };
                assert_eq!(total, expected);
                total
            })
        });
    }
    group.finish();
}

fn range(c: &mut Criterion) {
    let data = data();
    let mut sorted: Vec<&[u8]> = data.iter().map(|(key, _)| key.as_slice()).collect();
    sorted.sort_unstable();
    let mut rng = SplitMix64::new(SEED ^ 2);
    // Each range covers exactly RANGE_LEN keys: [sorted[i], sorted[i + RANGE_LEN]).
    let bounds: Vec<(&[u8], &[u8])> = (0..RANGES)
        .map(|_| {
            let start = rng.below((N - RANGE_LEN) as u64) as usize;
            (sorted[start], sorted[start + RANGE_LEN])
        })
        .collect();
    let (pager, version) = committed(&data);
    let snapshot = Snapshot::new(pager, version);
    let map = btreemap(&data);
    let expected = RANGES * RANGE_LEN * VALUE_LEN;

    let mut group = c.benchmark_group("range_100");
    group.sample_size(10);
    group.throughput(Throughput::Elements((RANGES * RANGE_LEN) as u64));
    group.bench_function("thunderhead", |b| {
        b.iter(|| {
            let mut total = 0;
            for &(start, end) in &bounds {
                for entry in snapshot.range(start..end) {
                    total += entry.expect("entry").1.len();
                }
            }
            assert_eq!(total, expected);
            total
        })
    });
    group.bench_function("btreemap", |b| {
        b.iter(|| {
            let mut total = 0;
            for &(start, end) in &bounds {
                for (_, value) in map.range::<[u8], _>((Included(start), Excluded(end))) {
                    total += value.len();
                }
            }
            assert_eq!(total, expected);
            total
        })
    });
    group.finish();
}

criterion_group!(benches, insert, get, scan, range);
criterion_main!(benches);
