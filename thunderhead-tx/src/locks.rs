//! Range locks: `WriteTransaction::lock_range` makes a transaction the only one that
//! may touch a range of a tree until it ends. Others that read or write into the range
//! wait (up to the lock timeout) instead of running into a conflict at commit; when
//! they go on, they continue from the latest commit (see `WriteTransaction`).
//!
//! The table is small and rarely used, so it is a list behind one mutex; an atomic count
//! lets every operation skip it when no lock is held, which is the common case.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::keys::KeyRange;

struct Held {
    owner: u64,
    tree: Vec<u8>,
    range: KeyRange,
}

#[derive(Default)]
pub(crate) struct Locks {
    held: Mutex<Vec<Held>>,
    released: Condvar,
    count: AtomicUsize,
}

impl Locks {
    fn lock(&self) -> MutexGuard<'_, Vec<Held>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits while another owner holds a lock on `tree` whose range `touches`. Returns
    /// whether it waited, and the table, still locked.
    fn wait_clear(
        &self,
        owner: u64,
        tree: &[u8],
        touches: impl Fn(&KeyRange) -> bool,
        timeout: Duration,
    ) -> Result<(bool, MutexGuard<'_, Vec<Held>>)> {
        let deadline = Instant::now() + timeout;
        let mut held = self.lock();
        let mut waited = false;
        loop {
            let blocked = held
                .iter()
                .any(|lock| lock.owner != owner && lock.tree == tree && touches(&lock.range));
            if !blocked {
                return Ok((waited, held));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::LockTimeout {
                    tree: tree.to_vec(),
                });
            }
            waited = true;
            held = self
                .released
                .wait_timeout(held, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Waits until no other owner's lock on `tree` overlaps `range`; whether it waited.
    pub fn wait_for(
        &self,
        owner: u64,
        tree: &[u8],
        range: &KeyRange,
        timeout: Duration,
    ) -> Result<bool> {
        if self.is_idle() {
            return Ok(false);
        }
        Ok(self
            .wait_clear(owner, tree, |locked| locked.overlaps(range), timeout)?
            .0)
    }

    /// Whether no lock is held at all (the common case, checked without the mutex).
    pub fn is_idle(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// Waits until no other owner's lock on `tree` overlaps `keys`.
    pub fn wait_for_set(
        &self,
        owner: u64,
        tree: &[u8],
        keys: &crate::footprint::KeySet,
        timeout: Duration,
    ) -> Result<()> {
        if self.is_idle() {
            return Ok(());
        }
        let (_, _held) =
            self.wait_clear(owner, tree, |locked| keys.overlaps_range(locked), timeout)?;
        Ok(())
    }

    /// Takes a lock on `range` of `tree` for `owner`, waiting for others' overlapping
    /// locks to go; whether it waited.
    pub fn acquire(
        &self,
        owner: u64,
        tree: &[u8],
        range: KeyRange,
        timeout: Duration,
    ) -> Result<bool> {
        let (waited, mut held) =
            self.wait_clear(owner, tree, |locked| locked.overlaps(&range), timeout)?;
        held.push(Held {
            owner,
            tree: tree.to_vec(),
            range,
        });
        self.count.fetch_add(1, Ordering::Release);
        Ok(waited)
    }

    /// Releases every lock `owner` holds.
    pub fn release(&self, owner: u64) {
        if self.is_idle() {
            return;
        }
        let mut held = self.lock();
        let before = held.len();
        held.retain(|lock| lock.owner != owner);
        let released = before - held.len();
        if released > 0 {
            self.count.fetch_sub(released, Ordering::Release);
            drop(held);
            self.released.notify_all();
        }
    }
}
