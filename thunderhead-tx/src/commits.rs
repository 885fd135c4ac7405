//! The latest published revision and who waits for a newer one: the wake-up behind
//! [`Database::wait_for_commit`](crate::Database::wait_for_commit) (threads, on a
//! condition variable) and [`Database::commit_after`](crate::Database::commit_after)
//! (tasks, by their wakers). The loom model `tests/loom_feed.rs` checks that no waiter
//! of either kind sleeps through a commit.

use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, MutexGuard, lock};

pub struct Commits {
    state: Mutex<Waiting>,
    changed: Condvar,
}

struct Waiting {
    latest: u64,
    wakers: Vec<Waker>,
}

impl Commits {
    pub fn new(latest: u64) -> Self {
        Self {
            state: Mutex::new(Waiting {
                latest,
                wakers: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // Updates are single assignments: a panic cannot leave them torn.
        lock(&self.state)
    }

    /// Revision `latest` is committed: wakes everyone waiting for less. The wakers are
    /// taken under the lock and woken after it, so a woken task polling at once does not
    /// wait for the lock the publisher still holds.
    pub fn published(&self, latest: u64) {
        let wakers = {
            let mut state = self.lock();
            if latest <= state.latest {
                return;
            }
            state.latest = latest;
            std::mem::take(&mut state.wakers)
        };
        self.changed.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Blocks until a revision after `after` is committed, or `timeout` passes.
    pub fn wait(&self, after: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        loop {
            if state.latest > after {
                return Some(state.latest);
            }
            let left = match deadline {
                Some(deadline) => deadline.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Ready with the latest revision once one after `after` is committed; until then
    /// the task's waker is kept, to be woken by the commit that passes `after`.
    pub fn poll(&self, after: u64, context: &Context<'_>) -> Poll<u64> {
        let mut state = self.lock();
        if state.latest > after {
            return Poll::Ready(state.latest);
        }
        // One waker per task: a future polled again replaces its own.
        state
            .wakers
            .retain(|waker| !waker.will_wake(context.waker()));
        state.wakers.push(context.waker().clone());
        Poll::Pending
    }
}
