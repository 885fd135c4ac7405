//! The pager stands between the tree and a page store: it reads pages through the
//! store's futures, verifies checksums (against the page itself and against what the
//! parent recorded), validates structure, caches the validated views, and writes new
//! extents. It is also the tree's value store for off-tree values.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use thunderhead_disk::{Extent, FreeSpace, PageBytes, PageId, PageSlice, PageStore, resolve};

use crate::cache::{CacheStats, CachedPage, PageCache};
use crate::config::{Limits, TreeConfig};
use crate::error::{Error, Result};
use crate::node::StoredRef;
use crate::page::{
    BranchPage, ChildLink, LeafPage, OverflowRef, SegmentPage, SegmentSlot, encode_overflow,
    overflow_page_count, validate_overflow, verify_checksum,
};
use crate::value::ValueStore;

/// A stored node, validated.
#[derive(Clone)]
pub(crate) enum LoadedNode {
    Leaf(Arc<LeafPage>),
    Branch(Arc<BranchPage>),
}

/// Reads, validates, caches and writes the pages of trees kept in one store.
pub struct Pager<S> {
    store: S,
    cache: PageCache,
    limits: Limits,
    /// Where new extents go. A bare pager starts past whatever the store holds and never
    /// reuses a page; an [`crate::Engine`] installs the free space of a committed version.
    space: Mutex<FreeSpace>,
    /// See [`TreeConfig::free_space_inline`].
    free_space_inline: bool,
    /// The revision of the open writer whose own pages are freed as soon as it stops
    /// using them (0: none). Such a page was free in every committed version and no one
    /// else can have seen it, so a huge commit that writes its nodes out as it goes
    /// (to bound memory) reuses its superseded pages instead of growing the store.
    reclaim: AtomicU64,
}

impl<S: PageStore> Pager<S> {
    /// A pager over `store` with `config`'s cache budget and tree limits.
    pub fn new(store: S, config: &TreeConfig) -> Result<Self> {
        let space = FreeSpace::new(store.page_count());
        Self::with_space(store, config, space)
    }

    /// A pager that allocates from `space`.
    pub(crate) fn with_space(store: S, config: &TreeConfig, space: FreeSpace) -> Result<Self> {
        let limits = Limits::new(store.page_size(), config)?;
        Ok(Self {
            store,
            cache: PageCache::new(config.cache_bytes_max),
            limits,
            space: Mutex::new(space),
            free_space_inline: config.free_space_inline,
            reclaim: AtomicU64::new(0),
        })
    }

    /// The allocation state. A panic while it is held leaves it as it was before the
    /// failed step (each step is one map update), so a poisoned lock is taken over.
    pub(crate) fn space(&self) -> MutexGuard<'_, FreeSpace> {
        self.space
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a commit may keep its free space in the meta slot.
    pub(crate) fn free_space_inline(&self) -> bool {
        self.free_space_inline
    }

    /// Lets the writer of `revision` free its own pages once it stops using them
    /// (`None`: stop, e.g. once two trees share such pages).
    pub(crate) fn set_reclaim(&self, revision: Option<u64>) {
        self.reclaim
            .store(revision.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    }

    /// `extent`, written by the open writer at `birth` (when known), is no longer used
    /// by it: if no one else can have seen it, it is free at once.
    pub(crate) fn discard(&self, extent: Extent, birth: Option<u64>) {
        let reclaim = self.reclaim.load(std::sync::atomic::Ordering::Relaxed);
        if reclaim == 0 || birth.is_some_and(|birth| birth != reclaim) {
            return;
        }
        if self.space().discard_fresh(extent) {
            self.cache.remove(extent.start);
        }
    }

    /// Forgets any cached view of the pages at `start`: they are about to be rewritten.
    pub(crate) fn forget(&self, start: PageId) {
        self.cache.remove(start);
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Limits that follow from the page size and configuration.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    fn read_verified(&self, page: PageId, page_count: u32, expected: u32) -> Result<PageBytes> {
        let bytes = resolve(self.store.read(page, page_count))?;
        let actual = verify_checksum(page, &bytes)?;
        if actual != expected {
            // The page is whole but is not the one the parent wrote: stale or misdirected.
            return Err(thunderhead_disk::Error::ChecksumMismatch {
                page,
                expected,
                actual,
            }
            .into());
        }
        Ok(bytes)
    }

    /// Loads the node a parent (or a version) points to.
    pub(crate) fn load_node(&self, node: StoredRef) -> Result<LoadedNode> {
        match self.cache.get(node.page, node.checksum) {
            Some(CachedPage::Leaf(leaf)) => return Ok(LoadedNode::Leaf(leaf)),
            Some(CachedPage::Branch(branch)) => return Ok(LoadedNode::Branch(branch)),
            Some(CachedPage::Segment(_)) => {
                return Err(Error::corrupted(
                    node.page,
                    "a journal segment where a node was expected",
                ));
            }
            None => {}
        }
        let bytes = self.read_verified(node.page, 1, node.checksum)?;
        let loaded = match bytes.first() {
            Some(1) => LoadedNode::Leaf(Arc::new(LeafPage::parse(node.page, bytes)?)),
            Some(2) => LoadedNode::Branch(Arc::new(BranchPage::parse(node.page, bytes)?)),
            other => {
                return Err(Error::corrupted(
                    node.page,
                    format!("expected a node page, found kind {other:?}"),
                ));
            }
        };
        let (cached, size) = match &loaded {
            LoadedNode::Leaf(leaf) => (CachedPage::Leaf(leaf.clone()), leaf.memory_bytes()),
            LoadedNode::Branch(branch) => {
                (CachedPage::Branch(branch.clone()), branch.memory_bytes())
            }
        };
        self.cache.insert(node.page, node.checksum, cached, size);
        Ok(loaded)
    }

    /// Loads child `index` of the stored branch `parent` (its slot says `stored`),
    /// through the parent's link when the view it found last time is still alive.
    pub(crate) fn load_child(
        &self,
        parent: &BranchPage,
        index: usize,
        stored: StoredRef,
    ) -> Result<LoadedNode> {
        let link = parent.child_link(index);
        let linked = match link.get() {
            Some(ChildLink::Leaf(leaf)) => leaf.upgrade().map(LoadedNode::Leaf),
            Some(ChildLink::Branch(branch)) => branch.upgrade().map(LoadedNode::Branch),
            None => None,
        };
        if let Some(loaded) = linked {
            return Ok(loaded);
        }
        let loaded = self.load_node(stored)?;
        // Set once: if the link is there but dead, the cache keeps answering.
        let _ = link.set(match &loaded {
            LoadedNode::Leaf(leaf) => ChildLink::Leaf(Arc::downgrade(leaf)),
            LoadedNode::Branch(branch) => ChildLink::Branch(Arc::downgrade(branch)),
        });
        Ok(loaded)
    }

    /// Loads journal segment `index` of the stored branch `parent` (its slot is `slot`),
    /// through the parent's link as [`Pager::load_child`] does.
    pub(crate) fn load_branch_segment(
        &self,
        parent: &BranchPage,
        index: usize,
        slot: &SegmentSlot,
    ) -> Result<Arc<SegmentPage>> {
        let link = parent.segment_link(index);
        if let Some(segment) = link.get().and_then(std::sync::Weak::upgrade) {
            return Ok(segment);
        }
        let segment = self.load_segment(slot)?;
        let _ = link.set(Arc::downgrade(&segment));
        Ok(segment)
    }

    /// Loads a journal segment a branch points to.
    pub(crate) fn load_segment(&self, slot: &SegmentSlot) -> Result<Arc<SegmentPage>> {
        let page = PageId(slot.page.get());
        let checksum = slot.checksum.get();
        match self.cache.get(page, checksum) {
            Some(CachedPage::Segment(segment)) => return Ok(segment),
            Some(_) => {
                return Err(Error::corrupted(
                    page,
                    "a node where a journal segment was expected",
                ));
            }
            None => {}
        }
        let bytes = self.read_verified(page, slot.page_count.get(), checksum)?;
        let segment = Arc::new(SegmentPage::parse(page, bytes)?);
        if segment.seq_max() != slot.seq_max.get() {
            return Err(Error::corrupted(
                page,
                "segment sequence range differs from its slot",
            ));
        }
        self.cache.insert(
            page,
            checksum,
            CachedPage::Segment(segment.clone()),
            segment.memory_bytes(),
        );
        Ok(segment)
    }

    /// Writes a node or journal segment the writer just encoded (checksum `checksum`) and
    /// keeps its view in the cache: the next commit reads the root, its newest segment
    /// and the catalog again, and would otherwise read back and re-check what it wrote.
    pub(crate) fn write_cached(&self, bytes: PageBytes, checksum: u32) -> Result<PageId> {
        let start = self.write_shared(bytes.clone())?;
        // Parsing what we encoded cannot fail; if it did, the page is simply not cached
        // and a later read reports it.
        let cached = match bytes.first() {
            Some(1) => LeafPage::parse(start, bytes)
                .ok()
                .map(|page| (page.memory_bytes(), CachedPage::Leaf(Arc::new(page)))),
            Some(2) => BranchPage::parse(start, bytes)
                .ok()
                .map(|page| (page.memory_bytes(), CachedPage::Branch(Arc::new(page)))),
            Some(3) => SegmentPage::parse(start, bytes)
                .ok()
                .map(|page| (page.memory_bytes(), CachedPage::Segment(Arc::new(page)))),
            _ => None,
        };
        if let Some((size, cached)) = cached {
            self.cache.insert(start, checksum, cached, size);
        }
        Ok(start)
    }

    /// Allocates and writes an extent of bytes already shared (a large value, built in
    /// place).
    fn write_shared(&self, bytes: PageBytes) -> Result<PageId> {
        let page_count = (bytes.len() / self.limits.page_size_bytes) as u64;
        let start = self.space().allocate(page_count);
        // A page number may be reused after a free: forget any view of the old contents.
        self.cache.remove(start);
        resolve(self.store.write(start, bytes))?;
        Ok(start)
    }
}

impl<S: PageStore> ValueStore for Pager<S> {
    fn put_value(&self, value: &[u8], birth: u64) -> thunderhead_disk::Result<OverflowRef> {
        let (bytes, checksum) = encode_overflow(value, self.limits.page_size_bytes);
        let page = self.write_shared(bytes).map_err(|error| match error {
            Error::Storage(storage) => storage,
            other => thunderhead_disk::Error::Io(std::io::Error::other(other.to_string())),
        })?;
        Ok(OverflowRef::new(page, value.len() as u64, checksum, birth))
    }

    fn get_value(&self, reference: &OverflowRef) -> thunderhead_disk::Result<PageSlice> {
        let page_count =
            overflow_page_count(reference.value_len.get(), self.limits.page_size_bytes);
        let page_count = u32::try_from(page_count).map_err(|_| {
            thunderhead_disk::Error::corrupted(reference.page(), "overflow value too long")
        })?;
        let bytes = resolve(self.store.read(reference.page(), page_count))?;
        validate_overflow(reference, &bytes)
    }
}
