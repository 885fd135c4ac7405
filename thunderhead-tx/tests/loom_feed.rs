//! Loom model of the commit wake-up behind `wait_for_commit` and `commit_after`: in every
//! interleaving (`LOOM_MAX_PREEMPTIONS=2`) of a committer publishing revisions with
//! threads blocked on the condition variable and tasks parked on their wakers, every
//! waiter returns, and with a revision after the one it waited past. A lost wake-up is
//! a waiter that sleeps forever, which loom reports as a deadlock.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p thunderhead-tx --test loom_feed`
#![cfg(loom)]

use std::future::poll_fn;
use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use thunderhead_tx::testing::Commits;

/// Long enough never to pass in the model (loom's timed waits never time out anyway).
const FOREVER: Duration = Duration::from_secs(3600);

#[test]
fn a_blocked_reader_wakes_for_the_next_commit() {
    loom::model(|| {
        let commits = Arc::new(Commits::new(0));
        let waiters: Vec<_> = [0, 1]
            .into_iter()
            .map(|after| {
                let commits = commits.clone();
                thread::spawn(move || {
                    let latest = commits.wait(after, FOREVER).expect("timed out");
                    assert!(latest > after, "woke at {latest}, waiting past {after}");
                })
            })
            .collect();
        commits.published(1);
        commits.published(2);
        for waiter in waiters {
            waiter.join().unwrap();
        }
    });
}

#[test]
fn a_parked_task_wakes_for_the_next_commit() {
    loom::model(|| {
        let commits = Arc::new(Commits::new(0));
        let committer = {
            let commits = commits.clone();
            thread::spawn(move || {
                commits.published(1);
                commits.published(2);
            })
        };
        // A second task on another thread waits past a later revision, so that one task
        // replacing its own waker never drops the other's.
        let other = {
            let commits = commits.clone();
            thread::spawn(move || {
                let latest = loom::future::block_on(poll_fn(|context| commits.poll(1, context)));
                assert_eq!(latest, 2);
            })
        };
        let latest = loom::future::block_on(poll_fn(|context| commits.poll(0, context)));
        assert!(latest >= 1);
        committer.join().unwrap();
        other.join().unwrap();
    });
}
