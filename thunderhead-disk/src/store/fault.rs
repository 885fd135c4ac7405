//! A store wrapper for tests that injects faults: an I/O error at the Nth write or sync
//! (once), every operation failing after the Nth, and power loss. For power loss it keeps
//! what was written apart from what a sync made durable; [`FaultStore::crash_image`]
//! then decides, from a seed, the fate of every write not yet synced: lost, kept, or
//! torn (each 512-byte sector independently old or new), as a disk losing power would.

use std::collections::BTreeMap;
use std::future::{Ready, ready};
use std::sync::Mutex;

use crate::{Error, PageBytes, PageId, PageStore, Result, SplitMix64, StoreStats};

/// Sector size of the simulated disk: a torn write is torn at sector boundaries.
pub const SECTOR_BYTES: usize = 512;

/// Which faults to inject. Counts start at 1: `fail_write_once: Some(3)` fails the third
/// write. `fail_after: Some(n)` fails every operation (read, write or sync) after the
/// first `n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub fail_write_once: Option<u64>,
    pub fail_sync_once: Option<u64>,
    pub fail_after: Option<u64>,
}

/// A [`PageStore`] wrapper that injects faults and simulates power loss.
pub struct FaultStore<S> {
    inner: S,
    state: Mutex<FaultState>,
}

#[derive(Default)]
struct FaultState {
    plan: FaultPlan,
    operations: u64,
    writes: u64,
    syncs: u64,
    injected: u64,
    /// Page contents a sync made durable.
    durable: BTreeMap<u64, Vec<u8>>,
    /// Writes since the last successful sync, in order.
    pending: Vec<(PageId, PageBytes)>,
}

/// What the disk holds after a simulated power loss: page number to bytes. Pages never
/// written are absent (they read as zeros in [`CrashImage::to_bytes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashImage {
    pub pages: BTreeMap<u64, Vec<u8>>,
}

impl CrashImage {
    /// The image as the bytes of a file of whole pages.
    pub fn to_bytes(&self, page_size: usize) -> Vec<u8> {
        let pages = self.pages.keys().next_back().map_or(0, |last| last + 1);
        let mut bytes = vec![0u8; pages as usize * page_size];
        for (page, content) in &self.pages {
            let at = *page as usize * page_size;
            bytes[at..at + page_size].copy_from_slice(content);
        }
        bytes
    }
}

impl<S: PageStore> FaultStore<S> {
    /// Wraps `inner`, injecting the faults of `plan`. What `inner` already holds is
    /// taken as durable.
    pub fn new(inner: S, plan: FaultPlan) -> Self {
        let mut durable = BTreeMap::new();
        for page in 0..inner.page_count() {
            if let Ok(bytes) = crate::resolve(inner.read(PageId(page), 1)) {
                durable.insert(page, bytes.to_vec());
            }
        }
        Self {
            inner,
            state: Mutex::new(FaultState {
                plan,
                durable,
                ..FaultState::default()
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Replaces the fault plan; the operation counters keep running.
    pub fn set_plan(&self, plan: FaultPlan) {
        self.lock().plan = plan;
    }

    /// Operations (reads, writes, syncs, truncations) attempted so far.
    pub fn operations(&self) -> u64 {
        self.lock().operations
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    /// Writes not yet made durable by a sync.
    pub fn pending_writes(&self) -> usize {
        self.lock().pending.len()
    }

    /// What the disk would hold if power failed now. Each write since the last sync is,
    /// by the seed, lost, kept, or torn sector by sector.
    pub fn crash_image(&self, seed: u64) -> CrashImage {
        let state = self.lock();
        let page_size = self.inner.page_size();
        let mut pages = state.durable.clone();
        let mut rng = SplitMix64::new(seed);
        for (start, bytes) in &state.pending {
            let fate = rng.next_u64() % 3;
            if fate == 0 {
                continue;
            }
            for (index, new) in bytes.chunks(page_size).enumerate() {
                let page = pages
                    .entry(start.0 + index as u64)
                    .or_insert_with(|| vec![0; page_size]);
                if fate == 1 {
                    page.copy_from_slice(new);
                    continue;
                }
                for (old, new) in page.chunks_mut(SECTOR_BYTES).zip(new.chunks(SECTOR_BYTES)) {
                    if rng.next_u64() & 1 == 1 {
                        old.copy_from_slice(new);
                    }
                }
            }
        }
        CrashImage { pages }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts an operation; an error if the plan says it fails.
    fn operation(&self, kind: Kind) -> Result<()> {
        let mut state = self.lock();
        state.operations += 1;
        let plan = state.plan;
        let fails = plan
            .fail_after
            .is_some_and(|after| state.operations > after)
            || match kind {
                Kind::Read => false,
                Kind::Write => {
                    state.writes += 1;
                    plan.fail_write_once == Some(state.writes)
                }
                Kind::Sync => {
                    state.syncs += 1;
                    plan.fail_sync_once == Some(state.syncs)
                }
            };
        if fails {
            state.injected += 1;
            return Err(Error::Io(std::io::Error::other(format!(
                "injected fault at operation {}",
                state.operations
            ))));
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
    Sync,
}

// Faults are decided synchronously; the futures of the wrapped store are awaited here.
#[allow(refining_impl_trait)]
impl<S: PageStore> PageStore for FaultStore<S> {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    fn page_count(&self) -> u64 {
        self.inner.page_count()
    }

    fn read(&self, start: PageId, page_count: u32) -> Ready<Result<PageBytes>> {
        ready(
            self.operation(Kind::Read)
                .and_then(|()| crate::resolve(self.inner.read(start, page_count))),
        )
    }

    fn write(&self, start: PageId, bytes: PageBytes) -> Ready<Result<()>> {
        let result = self
            .operation(Kind::Write)
            .and_then(|()| crate::resolve(self.inner.write(start, bytes.clone())));
        if result.is_ok() {
            self.lock().pending.push((start, bytes));
        }
        ready(result)
    }

    fn sync(&self) -> Ready<Result<()>> {
        let result = self
            .operation(Kind::Sync)
            .and_then(|()| crate::resolve(self.inner.sync()));
        if result.is_ok() {
            let page_size = self.inner.page_size();
            let mut state = self.lock();
            for (start, bytes) in std::mem::take(&mut state.pending) {
                for (index, page) in bytes.chunks(page_size).enumerate() {
                    state.durable.insert(start.0 + index as u64, page.to_vec());
                }
            }
        }
        ready(result)
    }

    /// Truncation is a metadata change made durable at once: pages past the new end
    /// are gone from what a crash would leave.
    fn truncate(&self, page_count: u64) -> Ready<Result<()>> {
        let result = self
            .operation(Kind::Write)
            .and_then(|()| crate::resolve(self.inner.truncate(page_count)));
        if result.is_ok() {
            let mut state = self.lock();
            state.durable.split_off(&page_count);
            let page_size = self.inner.page_size() as u64;
            state.pending.retain(|(start, _)| start.0 < page_count);
            for (start, bytes) in &mut state.pending {
                let pages = bytes.len() as u64 / page_size;
                if start.0 + pages > page_count {
                    let keep = ((page_count - start.0) * page_size) as usize;
                    *bytes = PageBytes::copy_from_slice(&bytes[..keep]);
                }
            }
        }
        ready(result)
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemStore, resolve};

    fn page(fill: u8) -> PageBytes {
        PageBytes::new(vec![fill; 4096])
    }

    /// The Nth write and sync fail once; after `fail_after` everything fails.
    #[test]
    fn injects_planned_errors() {
        let plan = FaultPlan {
            fail_write_once: Some(2),
            fail_sync_once: Some(1),
            fail_after: Some(6),
        };
        let store = FaultStore::new(MemStore::new(4096).unwrap(), plan);
        let (a, b) = (PageId(1), PageId(2));
        assert!(resolve(store.write(a, page(1))).is_ok()); // op 1, write 1
        assert!(resolve(store.write(b, page(2))).is_err()); // op 2, write 2: fails once
        assert!(resolve(store.write(b, page(2))).is_ok()); // op 3, write 3
        assert!(resolve(store.sync()).is_err()); // op 4, sync 1: fails once
        assert!(resolve(store.sync()).is_ok()); // op 5
        assert!(resolve(store.read(a, 1)).is_ok()); // op 6
        assert!(resolve(store.read(a, 1)).is_err()); // op 7: past fail_after
        assert!(resolve(store.sync()).is_err());
        assert_eq!(store.injected(), 4);
    }

    /// Synced writes always survive a crash; unsynced ones are lost, kept or torn at
    /// sector boundaries, and different seeds reach all three fates.
    #[test]
    fn crash_keeps_durable_and_decides_pending() {
        let store = FaultStore::new(MemStore::new(4096).unwrap(), FaultPlan::default());
        let (a, b) = (PageId(1), PageId(2));
        resolve(store.write(a, page(1))).unwrap();
        resolve(store.sync()).unwrap();
        resolve(store.write(b, page(2))).unwrap();
        assert_eq!(store.pending_writes(), 1);
        let (mut lost, mut kept, mut torn) = (0, 0, 0);
        for seed in 0..200 {
            let image = store.crash_image(seed);
            assert_eq!(image.pages[&a.0], vec![1; 4096], "durable page survives");
            match image.pages.get(&b.0) {
                None => lost += 1,
                Some(bytes) if bytes.iter().all(|&byte| byte == 2) => kept += 1,
                Some(bytes) => {
                    for sector in bytes.chunks(SECTOR_BYTES) {
                        assert!(sector.iter().all(|&byte| byte == sector[0]));
                    }
                    torn += 1;
                }
            }
            assert_eq!(store.crash_image(seed), image, "a seed decides one image");
        }
        assert!(lost > 0 && kept > 0 && torn > 0, "{lost} {kept} {torn}");
        let bytes = store.crash_image(0).to_bytes(4096);
        assert_eq!(bytes.len(), 3 * 4096);
    }
}
