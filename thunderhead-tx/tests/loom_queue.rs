//! Loom model of the group-commit queue: every interleaving of three committing
//! threads (`LOOM_MAX_PREEMPTIONS=2`). Each submitter gets exactly its own result,
//! batches never run at the same time (one committer), nothing submitted is lost or
//! processed twice, and no submitter sleeps through the end of the batch that holds it.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p thunderhead-tx --test loom_queue`
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use thunderhead_tx::testing::GroupCommit;

#[test]
fn every_submitter_gets_its_result_from_one_committer_at_a_time() {
    loom::model(|| {
        let queue = Arc::new(GroupCommit::<usize, usize>::default());
        let committing = Arc::new(AtomicBool::new(false));
        let processed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|item| {
                let queue = queue.clone();
                let committing = committing.clone();
                let processed = processed.clone();
                loom::thread::spawn(move || {
                    let result = queue.submit(item, |batch| {
                        assert!(
                            !committing.swap(true, Ordering::SeqCst),
                            "two batches at once"
                        );
                        processed.fetch_add(batch.len(), Ordering::SeqCst);
                        let results = batch.into_iter().map(|item| item * 10 + 1).collect();
                        committing.store(false, Ordering::SeqCst);
                        results
                    });
                    assert_eq!(result, Some(item * 10 + 1));
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(
            processed.load(Ordering::SeqCst),
            3,
            "each item processed once"
        );
    });
}
