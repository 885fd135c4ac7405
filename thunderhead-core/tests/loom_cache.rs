//! Model check of the page cache's pinning and eviction (DESIGN.md §2) with loom: in
//! every interleaving of a reader holding a page and a writer filling the cache past its
//! budget, a page is never evicted while someone holds it, the budget holds whenever
//! something unpinned could go, and the shard's bookkeeping stays whole, also when two
//! readers miss the same page and both insert it.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p thunderhead-core --test loom_cache
//! ```
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use thunderhead_core::testing::{CacheShard, Pinnable};
use thunderhead_disk::PageId;

/// A cached page: its number, behind a reference count loom sees.
#[derive(Clone)]
struct Handle(Arc<u64>);

impl Pinnable for Handle {
    fn is_pinned(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

/// Every page costs one byte; the shard holds two.
const BUDGET: usize = 2;
const CHECKSUM: u32 = 7;

fn insert(shard: &CacheShard<Handle>, page: u64) {
    shard.insert(PageId(page), CHECKSUM, Handle(Arc::new(page)), 1);
}

#[test]
fn a_held_page_is_never_evicted() {
    loom::model(|| {
        let shard = Arc::new(CacheShard::new(BUDGET));
        insert(&shard, 1);
        let reader = {
            let shard = shard.clone();
            thread::spawn(move || {
                // The writer may evict page 1 before the reader pins it: a miss is fine.
                let Some(held) = shard.get(PageId(1), CHECKSUM) else {
                    return;
                };
                assert_eq!(*held.0, 1);
                thread::yield_now();
                let again = shard
                    .get(PageId(1), CHECKSUM)
                    .expect("a pinned page was evicted");
                assert!(Arc::ptr_eq(&held.0, &again.0), "a pinned page was replaced");
            })
        };
        for page in 2..=4 {
            insert(&shard, page);
            // One page at most is pinned, so the others can always make room.
            let bytes = shard.stats().bytes;
            assert!(bytes <= BUDGET, "{bytes} bytes held, budget {BUDGET}");
        }
        reader.join().unwrap();
        shard.check().unwrap();
        insert(&shard, 5);
        assert!(shard.stats().bytes <= BUDGET);
        assert!(shard.get(PageId(5), CHECKSUM).is_some());
    });
}

#[test]
fn racing_inserts_of_one_page_keep_the_index_whole() {
    loom::model(|| {
        let shard = Arc::new(CacheShard::new(BUDGET));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let shard = shard.clone();
                thread::spawn(move || {
                    if shard.get(PageId(9), CHECKSUM).is_none() {
                        insert(&shard, 9);
                    }
                    let found = shard.get(PageId(9), CHECKSUM).expect("page 9 lost");
                    assert_eq!(*found.0, 9);
                })
            })
            .collect();
        for reader in readers {
            reader.join().unwrap();
        }
        shard.check().unwrap();
        assert_eq!(shard.stats().pages, 1);
    });
}
