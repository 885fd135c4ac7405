//! A bounded cache of validated pages with CLOCK eviction. A page handed out is an `Arc`;
//! while a reader holds it the cache will not evict it (it is pinned by its reference
//! count), and a hit is a hash lookup and a reference-count increment: no allocation.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use thunderhead_disk::PageId;

use crate::page::{BranchPage, LeafPage, SegmentPage};
use crate::sync::{AtomicBool, AtomicU64, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// What the cache holds: a handle the cache can tell is still in use elsewhere. The
/// cache is generic over it so that the loom model (`tests/loom_cache.rs`) can run the
/// real eviction code on handles whose reference counts loom sees.
pub trait Pinnable: Clone {
    /// Whether anyone but the cache holds this handle (the cache must keep it).
    fn is_pinned(&self) -> bool;
}

/// A validated page of any kind the tree reads repeatedly.
#[derive(Clone)]
pub(crate) enum CachedPage {
    Leaf(Arc<LeafPage>),
    Branch(Arc<BranchPage>),
    Segment(Arc<SegmentPage>),
}

impl Pinnable for CachedPage {
    fn is_pinned(&self) -> bool {
        match self {
            CachedPage::Leaf(page) => Arc::strong_count(page) > 1,
            CachedPage::Branch(page) => Arc::strong_count(page) > 1,
            CachedPage::Segment(page) => Arc::strong_count(page) > 1,
        }
    }
}

struct Slot<T> {
    page: PageId,
    checksum: u32,
    item: T,
    bytes: usize,
    /// CLOCK's bit: set by a hit under the shared lock, so it is atomic.
    referenced: AtomicBool,
}

/// Hashes a page number with one multiply (Fibonacci hashing). Every lookup on the read
/// path hashes several page numbers under the cache's lock, and SipHash's resistance
/// to chosen keys buys nothing here: page numbers come from our own allocator.
#[derive(Default)]
struct PageIdHasher(u64);

impl Hasher for PageIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        // The high bits of the product mix every bit of the input; hashbrown takes its
        // control byte from the top seven bits and its bucket from the low ones, so the
        // product is folded to put good bits in both.
        let product = (self.0 ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = product ^ (product >> 32);
    }
}

struct ClockState<T> {
    index: HashMap<PageId, usize, BuildHasherDefault<PageIdHasher>>,
    slots: Vec<Slot<T>>,
    hand: usize,
    bytes: usize,
}

/// Counters of the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to read the store.
    pub misses: u64,
    /// Bytes of pages held.
    pub bytes: usize,
    /// Pages held.
    pub pages: usize,
}

/// The cache, split into shards by page number so that readers on different threads
/// rarely take the same lock: with one lock, two threads reading at random ran slower
/// than one. Each shard runs its own CLOCK over its share of the budget; small caches
/// stay one shard, so a budget of a few pages still means what it says.
pub(crate) struct PageCache {
    shards: Box<[Shard<CachedPage>]>,
}

/// Most shards a cache is split into, and the least budget each shard gets.
const SHARDS_MAX: usize = 16;
const SHARD_BYTES_MIN: usize = 1 << 20;

impl PageCache {
    pub fn new(bytes_max: usize) -> Self {
        let count = (bytes_max / SHARD_BYTES_MIN).clamp(1, SHARDS_MAX);
        let count = if count.is_power_of_two() {
            count
        } else {
            count.next_power_of_two() / 2
        };
        let shards = (0..count).map(|_| Shard::new(bytes_max / count)).collect();
        Self { shards }
    }

    fn shard(&self, page: PageId) -> &Shard<CachedPage> {
        let mut hasher = PageIdHasher::default();
        hasher.write_u64(page.0);
        // The top bits of the hash pick the shard; the map inside uses the low ones.
        let index = (hasher.finish() >> 40) as usize & (self.shards.len() - 1);
        &self.shards[index]
    }

    /// The cached page, if it is there and was validated against the same checksum.
    pub fn get(&self, page: PageId, checksum: u32) -> Option<CachedPage> {
        self.shard(page).get(page, checksum)
    }

    pub fn insert(&self, page: PageId, checksum: u32, item: CachedPage, bytes: usize) {
        self.shard(page).insert(page, checksum, item, bytes);
    }

    /// Drops a page (its extent was freed or rewritten).
    pub fn remove(&self, page: PageId) {
        self.shard(page).remove(page);
    }

    /// Checks every shard's bookkeeping ([`Shard::check`]).
    #[cfg(test)]
    pub fn check(&self) -> std::result::Result<(), String> {
        self.shards.iter().try_for_each(Shard::check)
    }

    pub fn stats(&self) -> CacheStats {
        self.shards
            .iter()
            .map(Shard::stats)
            .fold(CacheStats::default(), |total, shard| CacheStats {
                hits: total.hits + shard.hits,
                misses: total.misses + shard.misses,
                bytes: total.bytes + shard.bytes,
                pages: total.pages + shard.pages,
            })
    }
}

/// One shard: a CLOCK over the pages whose numbers hash to it. A hit takes the shard's
/// lock shared, so readers never wait for each other: with more reader threads than
/// cores, a reader preempted while holding an exclusive lock stalled every other reader
/// of the shard (the root's shard is on every get's path).
pub struct Shard<T> {
    bytes_max: usize,
    state: RwLock<ClockState<T>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<T: Pinnable> Shard<T> {
    pub fn new(bytes_max: usize) -> Self {
        Self {
            bytes_max,
            state: RwLock::new(ClockState {
                index: HashMap::default(),
                slots: Vec::new(),
                hand: 0,
                bytes: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    // Every update below leaves the state consistent before it can panic, so a poisoned
    // lock's state is sound.
    fn read(&self) -> RwLockReadGuard<'_, ClockState<T>> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, ClockState<T>> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// The cached page, if it is there and was validated against the same checksum.
    pub fn get(&self, page: PageId, checksum: u32) -> Option<T> {
        let state = self.read();
        let Some(&slot_index) = state.index.get(&page) else {
            self.miss();
            return None;
        };
        let slot = &state.slots[slot_index];
        if slot.checksum != checksum {
            self.miss();
            return None;
        }
        // Read before written: a hot page's line is then not dirtied by every hit.
        if !slot.referenced.load(Ordering::Relaxed) {
            slot.referenced.store(true, Ordering::Relaxed);
        }
        let item = slot.item.clone();
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(item)
    }

    pub fn insert(&self, page: PageId, checksum: u32, item: T, bytes: usize) {
        let mut state = self.write();
        if let Some(&slot_index) = state.index.get(&page) {
            let old_bytes = state.slots[slot_index].bytes;
            state.slots[slot_index] = Slot {
                page,
                checksum,
                item,
                bytes,
                referenced: AtomicBool::new(true),
            };
            state.bytes = state.bytes - old_bytes + bytes;
            return;
        }
        self.evict_for(&mut state, bytes);
        let slot_index = state.slots.len();
        state.index.insert(page, slot_index);
        state.slots.push(Slot {
            page,
            checksum,
            item,
            bytes,
            referenced: AtomicBool::new(false),
        });
        state.bytes += bytes;
    }

    /// Drops a page (its extent was freed or rewritten).
    pub fn remove(&self, page: PageId) {
        let mut state = self.write();
        if let Some(slot_index) = state.index.remove(&page) {
            Self::remove_slot(&mut state, slot_index);
        }
    }

    /// Removes slot `slot_index`; its page's index entry is already gone.
    fn remove_slot(state: &mut ClockState<T>, slot_index: usize) {
        let slot = state.slots.swap_remove(slot_index);
        state.bytes -= slot.bytes;
        if let Some(moved) = state.slots.get(slot_index) {
            state.index.insert(moved.page, slot_index);
        }
        if state.hand >= state.slots.len() {
            state.hand = 0;
        }
    }

    /// Evicts unreferenced, unpinned pages until `incoming` more bytes fit. Gives up after
    /// two sweeps: if everything is pinned the cache runs over budget rather than fail.
    fn evict_for(&self, state: &mut ClockState<T>, incoming: usize) {
        let mut steps = 2 * state.slots.len();
        while state.bytes + incoming > self.bytes_max && !state.slots.is_empty() && steps > 0 {
            steps -= 1;
            let hand = state.hand % state.slots.len();
            let slot = &mut state.slots[hand];
            // Exclusive here: no hit can set the bit between this read and write.
            if slot.referenced.load(Ordering::Relaxed) {
                slot.referenced.store(false, Ordering::Relaxed);
                state.hand = hand + 1;
            } else if slot.item.is_pinned() {
                state.hand = hand + 1;
            } else {
                let page = slot.page;
                state.index.remove(&page);
                Self::remove_slot(state, hand);
            }
        }
    }

    /// Checks the shard's bookkeeping: every slot is indexed under its own page and
    /// nothing else is, and the byte count is the sum of the slots'.
    pub fn check(&self) -> std::result::Result<(), String> {
        let state = self.read();
        if state.index.len() != state.slots.len() {
            return Err(format!(
                "{} index entries for {} slots",
                state.index.len(),
                state.slots.len()
            ));
        }
        for (slot_index, slot) in state.slots.iter().enumerate() {
            if state.index.get(&slot.page) != Some(&slot_index) {
                return Err(format!(
                    "slot {slot_index} (page {}) not indexed",
                    slot.page.0
                ));
            }
        }
        let bytes: usize = state.slots.iter().map(|slot| slot.bytes).sum();
        if bytes != state.bytes {
            return Err(format!("slots hold {bytes} bytes, counted {}", state.bytes));
        }
        Ok(())
    }

    pub fn stats(&self) -> CacheStats {
        let state = self.read();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes: state.bytes,
            pages: state.slots.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Entry;
    use crate::page::encode_leaf;

    fn leaf(id: u64) -> CachedPage {
        let bytes = encode_leaf(&[] as &[Entry], 0, 4096);
        CachedPage::Leaf(Arc::new(LeafPage::parse(PageId(id), bytes).unwrap()))
    }

    /// The cache keeps to its budget, never evicts a pinned page, and a checksum mismatch
    /// is a miss.
    #[test]
    fn clock_respects_budget_and_pins() {
        let cache = PageCache::new(4 * 4096);
        let pinned = leaf(1);
        cache.insert(PageId(1), 11, pinned.clone(), 4096);
        for id in 2..20 {
            cache.insert(PageId(id), 11, leaf(id), 4096);
            assert!(cache.stats().bytes <= 4 * 4096);
        }
        assert!(
            cache.get(PageId(1), 11).is_some(),
            "pinned page was evicted"
        );
        assert!(cache.get(PageId(1), 12).is_none());
        assert!(cache.get(PageId(19), 11).is_some());
        cache.remove(PageId(19));
        assert!(cache.get(PageId(19), 11).is_none());
        let stats = cache.stats();
        assert_eq!(stats.pages * 4096, stats.bytes);
        cache.check().unwrap();
        drop(pinned);
    }

    /// A large cache is sharded, and its shards together keep the whole budget: every
    /// page fits while the total is under it, and the total never passes it.
    #[test]
    fn shards_share_the_budget() {
        let budget = 64 << 20;
        let cache = PageCache::new(budget);
        assert_eq!(cache.shards.len(), SHARDS_MAX);
        let page_bytes = 16 << 10;
        for id in 1..=(budget / page_bytes * 2) as u64 {
            cache.insert(PageId(id), 1, leaf(id), page_bytes);
            assert!(cache.stats().bytes <= budget);
        }
        cache.check().unwrap();
        let stats = cache.stats();
        assert!(
            stats.bytes > budget * 3 / 4,
            "shards unevenly filled: {stats:?}"
        );
        assert!(
            cache
                .get(PageId(budget as u64 / page_bytes as u64 * 2), 1)
                .is_some()
        );
        let single = PageCache::new(4 * 4096);
        assert_eq!(single.shards.len(), 1);
    }
}
