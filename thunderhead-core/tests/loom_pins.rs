//! Model check of readers' pins and page reclamation (DESIGN.md §5.3) with loom: in every
//! interleaving of a committer and readers, no page a reader's revision uses is reused
//! while the reader pins that revision, and once every reader is gone every freed page
//! is reused.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p thunderhead-core --test loom_pins
//! ```
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;
use thunderhead_core::testing::Pins;

/// The committer publishes revisions 1 to this.
const LAST: u64 = 2;

/// What a page holds once it is reused: no revision's data any more.
const REUSED: u64 = u64::MAX;

/// The store: one page per revision, holding that revision's number until it is reused.
/// Revision `r` reads page `r`; it is freed at `r + 1`, when revision `r + 1` replaces it.
struct Store {
    pins: Pins,
    pages: Vec<AtomicU64>,
}

impl Store {
    fn new() -> Self {
        Self {
            pins: Pins::new(0),
            pages: (0..=LAST).map(AtomicU64::new).collect(),
        }
    }

    /// Reuses each freed page whose freeing revision no reader can still read: what
    /// `FreeSpace::release` does with `Pins::oldest_readable`.
    fn release(&self, pending: &mut Vec<(u64, usize)>) {
        let oldest = self.pins.oldest_readable();
        pending.retain(|&(freed_at, page)| {
            let reusable = freed_at <= oldest;
            if reusable {
                // Relaxed: the pages' contents synchronise nothing; only the pins' lock
                // may order a reuse after the reads of the revision's readers.
                self.pages[page].store(REUSED, Ordering::Relaxed);
            }
            !reusable
        });
    }
}

/// Commits revisions 1 to `LAST`, each freeing the page of the one before and reusing
/// what it may at once. Returns the pages still pending.
fn commit(store: &Store) -> Vec<(u64, usize)> {
    let mut pending = Vec::new();
    for revision in 1..=LAST {
        store.pins.publish(revision);
        pending.push((revision, (revision - 1) as usize));
        store.release(&mut pending);
    }
    pending
}

/// Checks that the page of the pinned `revision` still holds that revision's data.
fn check(store: &Store, revision: u64) {
    let page = store.pages[revision as usize].load(Ordering::Relaxed);
    assert_eq!(
        page, revision,
        "revision {revision}'s page reused while pinned"
    );
}

/// Two overlapping readers: each pins the latest revision, reads its page, and unpins;
/// the first ends while the second (maybe of the same revision) lives. On one thread, so
/// that two preemptions reach a revision's count dropping from two to one.
fn read(store: &Store) {
    let first = store.pins.pin_latest();
    let second = store.pins.pin_latest();
    check(store, first);
    store.pins.unpin(first);
    check(store, second);
    store.pins.unpin(second);
}

#[test]
fn pinned_pages_are_not_reused() {
    loom::model(|| {
        let store = Arc::new(Store::new());
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                thread::spawn(move || read(&store))
            })
            .collect();
        // This thread commits while the two read.
        let mut pending = commit(&store);
        for reader in readers {
            reader.join().unwrap();
        }
        // No reader left: everything freed is reusable now.
        assert_eq!(store.pins.oldest_readable(), LAST);
        store.release(&mut pending);
        assert!(pending.is_empty());
        for page in &store.pages[..LAST as usize] {
            assert_eq!(page.load(Ordering::Relaxed), REUSED);
        }
    });
}

/// Past revisions (DESIGN.md §5.6): a reader pins a retained revision while a commit
/// raises the retention floor past it and releases what no pin holds. Either the pin
/// comes first and the revision's page stays, or the reader learns the revision is gone;
/// never a pinned revision whose page was reused. Fails if `pin_retained` checks the
/// floor outside the lock, or if `kept` reads the pins apart from raising the floor.
#[test]
fn retained_revisions_are_not_released_while_pinned() {
    loom::model(|| {
        let store = Arc::new(Store::new());
        // Revisions 0 to LAST are committed, all retained (the floor is 0).
        store.pins.publish(LAST);
        let reader = {
            let store = store.clone();
            thread::spawn(move || {
                if store.pins.pin_retained(1) {
                    check(&store, 1);
                    store.pins.unpin(1);
                }
            })
        };
        // The committer keeps only the latest from now on.
        let (floor, pinned) = store.pins.kept(LAST);
        assert_eq!(floor, LAST);
        for revision in 0..floor {
            if !pinned.contains(&revision) {
                store.pages[revision as usize].store(REUSED, Ordering::Relaxed);
            }
        }
        reader.join().unwrap();
        assert!(!store.pins.pin_retained(1), "a released revision pinned");
        assert!(store.pins.pin_retained(LAST));
    });
}
