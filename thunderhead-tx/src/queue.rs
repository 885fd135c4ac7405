//! Group commit: the one place where committing transactions meet (the single
//! committer of the seed notes). A transaction that commits joins the queue; if no
//! one is committing, it becomes the leader and commits everything queued so far as
//! one batch (one sync for the batch), then hands each member its result. Members that
//! arrive while a batch is in progress wait and form the next batch, so under load every
//! sync is shared by every transaction that reached commit during the one before.

use std::collections::HashMap;

use crate::sync::{Condvar, Mutex, lock, wait};

/// A queue of items that are processed in batches by whichever submitter is free.
pub struct GroupCommit<T, R> {
    state: Mutex<State<T, R>>,
    done: Condvar,
}

struct State<T, R> {
    next_ticket: u64,
    waiting: Vec<(u64, T)>,
    /// Results not yet collected; `None` when the batch's processing panicked.
    results: HashMap<u64, Option<R>>,
    leading: bool,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                next_ticket: 0,
                waiting: Vec::new(),
                results: HashMap::new(),
                leading: false,
            }),
            done: Condvar::new(),
        }
    }
}

/// Settles a batch even if processing it panics: the leader steps down and the members
/// learn that their outcome is unknown instead of waiting for ever.
struct Leading<'q, T, R> {
    queue: &'q GroupCommit<T, R>,
    tickets: Vec<u64>,
    results: Option<Vec<R>>,
}

impl<T, R> Drop for Leading<'_, T, R> {
    fn drop(&mut self) {
        let mut state = lock(&self.queue.state);
        let mut results = self.results.take().map(Vec::into_iter);
        for ticket in self.tickets.drain(..) {
            let result = results.as_mut().and_then(Iterator::next);
            state.results.insert(ticket, result);
        }
        state.leading = false;
        drop(state);
        self.queue.done.notify_all();
    }
}

impl<T, R> GroupCommit<T, R> {
    /// Submits `item` and returns its result, once a batch holding it has been
    /// processed by `process` (which returns one result per item, in order) — by this
    /// caller or by another. `None` when processing panicked.
    pub fn submit(&self, item: T, mut process: impl FnMut(Vec<T>) -> Vec<R>) -> Option<R> {
        let mut state = lock(&self.state);
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push((ticket, item));
        loop {
            if let Some(result) = state.results.remove(&ticket) {
                return result;
            }
            if state.leading {
                state = wait(&self.done, state);
                continue;
            }
            state.leading = true;
            let (tickets, batch): (Vec<u64>, Vec<T>) =
                std::mem::take(&mut state.waiting).into_iter().unzip();
            drop(state);
            let mut leading = Leading {
                queue: self,
                tickets,
                results: None,
            };
            leading.results = Some(process(batch));
            drop(leading);
            state = lock(&self.state);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_submitter_gets_its_own_result() {
        let queue = Arc::new(GroupCommit::<u32, u32>::default());
        let threads: Vec<_> = (0..8)
            .map(|index| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .map(|round| {
                            let item = index * 1000 + round;
                            let result = queue.submit(item, |batch| {
                                batch.into_iter().map(|item| item * 2).collect()
                            });
                            assert_eq!(result, Some(item * 2));
                        })
                        .count()
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 100);
        }
    }
}
