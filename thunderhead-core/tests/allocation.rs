//! A point lookup served from the cache allocates nothing: no boxed future, no key copy,
//! no value copy. Proven with a counting global allocator (this file is its own test
//! binary, so no other test's allocations interfere).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use thunderhead_core::{Pager, Snapshot, Tree, TreeConfig};
use thunderhead_disk::MemStore;

struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn count_allocations(work: impl FnOnce()) -> u64 {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    work();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

#[test]
fn cached_gets_do_not_allocate() {
    let config = TreeConfig {
        journal_bytes_max: 8192,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(MemStore::new(4096).unwrap(), &config).unwrap());
    let mut tree = Tree::new(pager.clone());
    let keys: Vec<Vec<u8>> = (0..5000u32)
        .map(|index| format!("user/{:08}", index.wrapping_mul(2654435761)).into_bytes())
        .collect();
    for key in &keys {
        tree.put(key, b"value").unwrap();
    }
    // Leave messages in the journals (a recent batch and a range delete) so lookups go
    // through journal segments as well as leaves.
    tree.commit().unwrap();
    for key in keys.iter().step_by(3) {
        tree.put(key, b"newer").unwrap();
    }
    tree.delete_range(b"user/1".as_slice()..b"user/2".as_slice())
        .unwrap();
    let version = tree.commit().unwrap();
    let snapshot = Snapshot::new(pager.clone(), version);
    let report = snapshot.check().unwrap();
    assert!(report.height >= 2 && report.segment_count > 0, "{report:?}");

    // The counter itself works.
    assert_eq!(
        count_allocations(|| drop(std::hint::black_box(vec![1u8; 8]))),
        1
    );

    // Warm the cache, then count.
    let mut found = 0;
    for key in &keys {
        found += usize::from(snapshot.get(key).unwrap().is_some());
    }
    assert!(found > 0);
    let misses_before = pager.cache_stats().misses;
    let allocations = count_allocations(|| {
        for key in &keys {
            let value = snapshot.get(key).unwrap();
            std::hint::black_box(value);
        }
    });
    assert_eq!(
        pager.cache_stats().misses,
        misses_before,
        "the lookups were not all cache hits"
    );
    assert_eq!(allocations, 0, "cached gets allocated {allocations} times");
}
