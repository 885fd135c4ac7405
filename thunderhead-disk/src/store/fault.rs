//! A store wrapper for tests that injects faults, after the storage fault model of
//! TigerBeetle's simulator:
//!
//! * planned I/O errors: at the Nth read, write or sync (once), or every operation after
//!   the Nth;
//! * random I/O errors: each read, write (or truncation) and sync fails with a chance
//!   the plan gives in millionths, decided by a generator seeded from the plan, so a run
//!   that performs the same operations meets the same faults. A failed read returns no
//!   data (the page is intact; a retry may succeed); a failed sync makes nothing
//!   durable; a failed write is, by the generator, either not done at all or done in
//!   part (some 512-byte sectors new, the others old), as a disk that failed
//!   mid-request leaves it;
//! * power loss: it keeps what was written apart from what a sync made durable;
//!   [`FaultStore::crash_image`] then decides, from a seed, the fate of every write not
//!   yet synced: lost, kept, or torn (each 512-byte sector independently old or new);
//! * bit rot: [`FaultStore::rot`] flips a bit in pages of a crash image that no recent
//!   write touched (cold pages: data at rest decays; what was just written, and the
//!   latest commits' own verification reads, is rarely what rots).
//!
//! Every fault it injects is counted ([`FaultStore::counts`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::{Ready, ready};
use std::sync::Mutex;

use crate::{Error, PageBytes, PageId, PageStore, Result, SplitMix64, StoreStats};

/// Sector size of the simulated disk: a torn write is torn at sector boundaries.
pub const SECTOR_BYTES: usize = 512;

/// How many writes [`FaultStore::rot`] can look back over to tell cold pages from hot.
const WRITE_LOG_MAX: usize = 4096;

/// Which faults to inject. Counts start at 1: `fail_write_once: Some(3)` fails the third
/// write (`fail_read_once` and `fail_sync_once` likewise). `fail_after: Some(n)` fails
/// every operation (read, write or sync) after the first `n`. The random faults are off
/// by default (a chance of zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub fail_read_once: Option<u64>,
    pub fail_write_once: Option<u64>,
    pub fail_sync_once: Option<u64>,
    pub fail_after: Option<u64>,
    /// The write `fail_write_once` fails reaches the store whole all the same: reported
    /// failed but done, the worst a failed request can leave (a random failed write is
    /// done in part or not at all).
    pub failed_write_lands: bool,
    /// Chance, in millionths, that a read fails.
    pub read_error_per_million: u32,
    /// Chance, in millionths, that a write or a truncation fails. While it is set, any
    /// write that fails (randomly or as planned) may have been done in part.
    pub write_error_per_million: u32,
    /// Chance, in millionths, that a sync fails.
    pub sync_error_per_million: u32,
    /// Seeds the random faults: [`FaultStore::set_plan`] restarts their generator.
    pub seed: u64,
}

/// The faults a [`FaultStore`] injected, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Failed reads.
    pub reads: u64,
    /// Failed writes and truncations.
    pub writes: u64,
    /// ... of which were done in part (torn).
    pub torn_writes: u64,
    /// Failed syncs.
    pub syncs: u64,
    /// Pages [`FaultStore::rot`] flipped a bit in.
    pub rotted_pages: u64,
}

/// A [`PageStore`] wrapper that injects faults and simulates power loss.
pub struct FaultStore<S> {
    inner: S,
    state: Mutex<FaultState>,
}

struct FaultState {
    plan: FaultPlan,
    /// Decides the random faults; seeded from the plan.
    rng: SplitMix64,
    operations: u64,
    reads: u64,
    writes: u64,
    syncs: u64,
    counts: FaultCounts,
    /// The pages of the last writes (first page, page count), newest last.
    write_log: VecDeque<(u64, u64)>,
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
                rng: SplitMix64::new(plan.seed),
                operations: 0,
                reads: 0,
                writes: 0,
                syncs: 0,
                counts: FaultCounts::default(),
                write_log: VecDeque::new(),
                durable,
                pending: Vec::new(),
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Replaces the fault plan and restarts the generator of random faults from its
    /// seed; the operation counters keep running.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut state = self.lock();
        state.plan = plan;
        state.rng = SplitMix64::new(plan.seed);
    }

    /// Operations (reads, writes, syncs, truncations) attempted so far.
    pub fn operations(&self) -> u64 {
        self.lock().operations
    }

    /// I/O errors injected so far (planned and random; rot is not an I/O error).
    pub fn injected(&self) -> u64 {
        let counts = self.lock().counts;
        counts.reads + counts.writes + counts.syncs
    }

    /// Every fault injected so far, by kind.
    pub fn counts(&self) -> FaultCounts {
        self.lock().counts
    }

    /// Writes not yet made durable by a sync.
    pub fn pending_writes(&self) -> usize {
        self.lock().pending.len()
    }

    /// What the disk holds if the process (not the machine) stops now: every write
    /// made, synced or not.
    pub fn written_image(&self) -> CrashImage {
        let pages = (0..self.inner.page_count())
            .filter_map(|page| {
                let bytes = crate::resolve(self.inner.read(PageId(page), 1)).ok()?;
                Some((page, bytes.to_vec()))
            })
            .collect();
        CrashImage { pages }
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

    /// Bit rot: flips one bit, chosen by `seed`, in each of up to `pages` distinct pages
    /// of `image` from `first_page` on that none of the last `recent_writes` writes
    /// touched (fewer if fewer are cold). Returns the pages rotted, in order.
    pub fn rot(
        &self,
        image: &mut CrashImage,
        seed: u64,
        pages: usize,
        recent_writes: usize,
        first_page: u64,
    ) -> Vec<u64> {
        let mut state = self.lock();
        let hot: BTreeSet<u64> = state
            .write_log
            .iter()
            .rev()
            .take(recent_writes)
            .flat_map(|&(start, count)| start..start + count)
            .collect();
        let mut cold: Vec<u64> = image
            .pages
            .range(first_page..)
            .map(|(&page, _)| page)
            .filter(|page| !hot.contains(page))
            .collect();
        let mut rng = SplitMix64::new(seed);
        let mut rotted = Vec::new();
        while rotted.len() < pages && !cold.is_empty() {
            let page = cold.swap_remove(rng.below(cold.len() as u64) as usize);
            let bytes = image.pages.get_mut(&page).expect("a page of the image");
            let bit = rng.below(bytes.len() as u64 * 8);
            bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
            rotted.push(page);
        }
        rotted.sort_unstable();
        state.counts.rotted_pages += rotted.len() as u64;
        rotted
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
        // Every operation is counted by kind, even past `fail_after`, so that the
        // numbers `fail_*_once` name stay the operations' own.
        let once = match kind {
            Kind::Read => {
                state.reads += 1;
                plan.fail_read_once == Some(state.reads)
            }
            Kind::Write => {
                state.writes += 1;
                plan.fail_write_once == Some(state.writes)
            }
            Kind::Sync => {
                state.syncs += 1;
                plan.fail_sync_once == Some(state.syncs)
            }
        };
        let planned = once
            || plan
                .fail_after
                .is_some_and(|after| state.operations > after);
        let chance = match kind {
            Kind::Read => plan.read_error_per_million,
            Kind::Write => plan.write_error_per_million,
            Kind::Sync => plan.sync_error_per_million,
        };
        // The generator is drawn only when a chance is set, so plans without random
        // faults behave exactly as before they existed.
        let random = chance > 0 && state.rng.below(1_000_000) < u64::from(chance);
        if !(planned || random) {
            return Ok(());
        }
        match kind {
            Kind::Read => state.counts.reads += 1,
            Kind::Write => state.counts.writes += 1,
            Kind::Sync => state.counts.syncs += 1,
        }
        Err(Error::Io(std::io::Error::other(format!(
            "injected fault at operation {}",
            state.operations
        ))))
    }

    /// Whether a failed write was done, whole (`failed_write_lands`) or in part (a random
    /// one, decided by the generator): then the bytes of `start` it leaves, some sectors
    /// new and the others as before.
    fn torn_remains(&self, start: PageId, bytes: &PageBytes) -> Option<PageBytes> {
        let mut state = self.lock();
        if state.plan.failed_write_lands && state.plan.fail_write_once == Some(state.writes) {
            return Some(bytes.clone());
        }
        if state.plan.write_error_per_million == 0 || state.rng.next_u64() & 1 == 0 {
            return None;
        }
        let page_size = self.inner.page_size();
        let pages = (bytes.len() / page_size) as u32;
        let Ok(old) = crate::resolve(self.inner.read(start, pages)) else {
            return None;
        };
        let mut torn = old.to_vec();
        for (old, new) in torn
            .chunks_mut(SECTOR_BYTES)
            .zip(bytes.chunks(SECTOR_BYTES))
        {
            if state.rng.next_u64() & 1 == 1 {
                old.copy_from_slice(new);
            }
        }
        Some(PageBytes::new(torn))
    }

    /// Notes that `bytes` reached the store at `start` (not yet durable).
    fn written(&self, start: PageId, bytes: PageBytes) {
        let pages = (bytes.len() / self.inner.page_size()) as u64;
        let mut state = self.lock();
        state.pending.push((start, bytes));
        if state.write_log.len() == WRITE_LOG_MAX {
            state.write_log.pop_front();
        }
        state.write_log.push_back((start.0, pages));
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
        let result = match self.operation(Kind::Write) {
            Ok(()) => crate::resolve(self.inner.write(start, bytes.clone())).map(|()| bytes),
            Err(error) => {
                // Only writes inside the store are torn: a failed request does not grow
                // it.
                let pages = (bytes.len() / self.inner.page_size()) as u64;
                let inside = start.0 + pages <= self.inner.page_count();
                if inside
                    && let Some(torn) = self.torn_remains(start, &bytes)
                    && crate::resolve(self.inner.write(start, torn.clone())).is_ok()
                {
                    self.lock().counts.torn_writes += 1;
                    self.written(start, torn);
                }
                Err(error)
            }
        };
        ready(result.map(|bytes| self.written(start, bytes)))
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

    /// The Nth read, write and sync fail once; after `fail_after` everything fails.
    #[test]
    fn injects_planned_errors() {
        let plan = FaultPlan {
            fail_write_once: Some(2),
            fail_sync_once: Some(1),
            fail_after: Some(6),
            ..FaultPlan::default()
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
        let store = FaultStore::new(
            MemStore::new(4096).unwrap(),
            FaultPlan {
                fail_read_once: Some(2),
                ..FaultPlan::default()
            },
        );
        resolve(store.write(a, page(1))).unwrap();
        assert!(resolve(store.read(a, 1)).is_ok());
        assert!(resolve(store.read(a, 1)).is_err()); // read 2: fails once
        assert!(resolve(store.read(a, 1)).is_ok());
        assert_eq!(store.counts().reads, 1);
        // A failed write that lands: reported, and done.
        store.set_plan(FaultPlan {
            fail_write_once: Some(2),
            failed_write_lands: true,
            ..FaultPlan::default()
        });
        assert!(resolve(store.write(a, page(9))).is_err());
        assert_eq!(resolve(store.read(a, 1)).unwrap().to_vec(), vec![9; 4096]);
        assert_eq!(store.pending_writes(), 2, "a crash may keep it");
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
        // A process crash keeps every write, synced or not.
        let written = store.written_image();
        assert_eq!(written.pages[&b.0], vec![2; 4096]);
        assert_eq!(written.pages[&a.0], vec![1; 4096]);
    }

    /// Random faults: each kind fails at about its chance, the same operations for the
    /// same seed, and a failed read or sync leaves the data as it was.
    #[test]
    fn injects_random_errors_by_seed() {
        let run = |seed: u64| {
            let plan = FaultPlan {
                read_error_per_million: 200_000,
                sync_error_per_million: 300_000,
                seed,
                ..FaultPlan::default()
            };
            let store = FaultStore::new(MemStore::new(4096).unwrap(), FaultPlan::default());
            resolve(store.write(PageId(1), page(7))).unwrap();
            store.set_plan(plan);
            let outcomes: Vec<bool> = (0..1000)
                .map(|index| {
                    if index % 4 == 3 {
                        resolve(store.sync()).is_ok()
                    } else {
                        match resolve(store.read(PageId(1), 1)) {
                            Ok(bytes) => {
                                assert_eq!(bytes.to_vec(), vec![7; 4096]);
                                true
                            }
                            Err(Error::Io(_)) => false,
                            Err(other) => panic!("{other}"),
                        }
                    }
                })
                .collect();
            (outcomes, store.counts())
        };
        let (outcomes, counts) = run(5);
        assert_eq!(run(5).0, outcomes, "a seed decides the faults");
        assert_ne!(run(6).0, outcomes);
        assert!((100..200).contains(&counts.reads), "{counts:?}");
        assert!((40..110).contains(&counts.syncs), "{counts:?}");
        assert_eq!(counts.writes, 0);
        assert_eq!(
            outcomes.iter().filter(|ok| !**ok).count() as u64,
            counts.reads + counts.syncs
        );
    }

    /// A randomly failed write is reported, and leaves the page as it was or torn at
    /// sector boundaries (never anything else); both happen; a torn one is pending, so a
    /// crash may keep it.
    #[test]
    fn a_random_failed_write_is_undone_or_torn() {
        let store = FaultStore::new(MemStore::new(4096).unwrap(), FaultPlan::default());
        resolve(store.write(PageId(1), page(1))).unwrap();
        resolve(store.sync()).unwrap();
        store.set_plan(FaultPlan {
            write_error_per_million: 1_000_000,
            seed: 11,
            ..FaultPlan::default()
        });
        let (mut undone, mut torn) = (0, 0);
        for round in 0..64u8 {
            let before = resolve(store.read(PageId(1), 1)).unwrap().to_vec();
            let new = page(round + 2);
            assert!(matches!(
                resolve(store.write(PageId(1), new.clone())),
                Err(Error::Io(_))
            ));
            let after = resolve(store.read(PageId(1), 1)).unwrap().to_vec();
            if after == before {
                undone += 1;
                continue;
            }
            torn += 1;
            for (index, sector) in after.chunks(SECTOR_BYTES).enumerate() {
                let range = index * SECTOR_BYTES..(index + 1) * SECTOR_BYTES;
                assert!(sector == &before[range.clone()] || sector == &new[range]);
            }
        }
        assert!(undone > 0 && torn > 0, "{undone} {torn}");
        let counts = store.counts();
        assert_eq!((counts.writes, counts.torn_writes), (64, torn));
        assert_eq!(store.pending_writes() as u64, torn);
        // A write past the end is never torn: the store does not grow.
        assert!(resolve(store.write(PageId(9), page(3))).is_err());
        assert_eq!(store.page_count(), 2);
    }

    /// Rot flips exactly one bit in each page it picks, picks only cold pages from the
    /// first page asked, and is decided by its seed.
    #[test]
    fn rot_flips_one_bit_in_cold_pages() {
        let store = FaultStore::new(MemStore::new(4096).unwrap(), FaultPlan::default());
        for index in 0..10 {
            resolve(store.write(PageId(index), page(index as u8))).unwrap();
        }
        resolve(store.sync()).unwrap();
        let clean = store.crash_image(0);
        // The last three writes (pages 7, 8, 9) are hot; pages 0 and 1 are spared.
        let mut image = clean.clone();
        let rotted = store.rot(&mut image, 42, 100, 3, 2);
        assert_eq!(rotted, vec![2, 3, 4, 5, 6]);
        for (page, bytes) in &image.pages {
            let flipped: u32 = bytes
                .iter()
                .zip(&clean.pages[page])
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert_eq!(flipped, u32::from(rotted.contains(page)), "page {page}");
        }
        let mut again = clean.clone();
        assert_eq!(store.rot(&mut again, 42, 100, 3, 2), rotted);
        assert_eq!(again, image, "a seed decides the rot");
        let mut two = clean.clone();
        assert_eq!(store.rot(&mut two, 7, 2, 3, 2).len(), 2);
        assert_eq!(store.counts().rotted_pages, 12);
        assert_eq!(store.injected(), 0, "rot is not an I/O error");
    }
}
