//! A durable, crash-safe store of tree versions in one page store (a file, usually).
//!
//! The store is a header, two meta slots and pages. Each commit writes its new pages,
//! its free-space state, and then the meta slot that does not hold the last durable
//! version; an immediate commit then syncs once. Recovery picks the newest slot whose
//! new pages verify, else the other, which is durable and untouched. See DESIGN.md §3
//! for the argument.

mod commit;
mod open;
mod verify;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use thunderhead_disk::{Meta, PageStore, TreeRoot};

use crate::error::Result;
use crate::pager::Pager;
use crate::tree::{Snapshot, Tree, Version};

pub use verify::EngineReport;

/// When a commit is durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// The commit is on disk when `commit` returns: one sync.
    #[default]
    Immediate,
    /// No sync: a crash may lose this commit and later ones (never corrupt the store);
    /// the next immediate commit or [`Engine::sync`] makes them durable.
    Eventual,
}

/// A store of tree versions with crash-safe commits, readers that pin their version,
/// and free space reused once no reader or recovery can need it.
///
/// ```
/// use thunderhead_core::{Durability, Engine, TreeConfig};
/// use thunderhead_disk::MemStore;
///
/// let engine = Engine::create(MemStore::new(4096)?, &TreeConfig::default())?;
/// let mut writer = engine.begin_write()?;
/// writer.put(b"apple", b"red")?;
/// writer.commit(Durability::Immediate)?;
/// let reader = engine.begin_read();
/// assert_eq!(reader.get(b"apple")?.as_deref(), Some(&b"red"[..]));
/// engine.check()?;
/// # Ok::<(), thunderhead_core::Error>(())
/// ```
pub struct Engine<S: PageStore> {
    shared: Arc<Shared<S>>,
}

impl<S: PageStore> Clone for Engine<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<S: PageStore> {
    pager: Arc<Pager<S>>,
    /// The newer versions recovery found but could not use, and why.
    rejected: Vec<String>,
    state: Mutex<State>,
    /// Held by the one writer at a time.
    writer: Mutex<()>,
}

/// What is committed.
#[derive(Debug)]
struct State {
    /// The latest commit.
    meta: Meta,
    /// The latest commit known to be on disk; recovery never falls back past it, so its
    /// pages are never overwritten.
    durable: u64,
    /// Which meta slot holds the durable commit: commits write the other one.
    durable_slot: usize,
    /// Revisions pinned by readers, with their counts.
    readers: BTreeMap<u64, usize>,
}

impl State {
    /// The meta slot holding the latest commit: commits after the durable one all go to
    /// the other slot.
    fn latest_slot(&self) -> usize {
        if self.meta.revision == self.durable {
            self.durable_slot
        } else {
            1 - self.durable_slot
        }
    }

    /// What may be released now: (oldest revision a reader reads, last durable revision);
    /// see `FreeSpace::release`.
    fn reusable(&self) -> Reusable {
        let oldest_reader = self.readers.keys().next().copied().unwrap_or(u64::MAX);
        Reusable {
            oldest_reader: oldest_reader.min(self.meta.revision),
            durable: self.durable,
        }
    }
}

/// The limits on reusing freed pages: readers, and what recovery may fall back to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reusable {
    pub oldest_reader: u64,
    pub durable: u64,
}

impl<S: PageStore> Engine<S> {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // Updates under this lock are single assignments made after all fallible work.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The writer lock: one writer, sync, check or compaction at a time. Its guard
    /// protects no data of its own, so a panic while it was held leaves nothing torn.
    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.shared
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pager, for statistics and tests.
    pub fn pager(&self) -> &Arc<Pager<S>> {
        &self.shared.pager
    }

    /// What recovery rejected when the store was opened: a newer version whose pages
    /// did not verify (a commit a crash cut short, or damage to the last one written),
    /// with the reason. Empty when the newest version was whole.
    pub fn rejected_versions(&self) -> &[String] {
        &self.shared.rejected
    }

    /// The latest committed revision.
    pub fn revision(&self) -> u64 {
        self.lock_state().meta.revision
    }

    /// The latest commit known to be durable.
    pub fn durable_revision(&self) -> u64 {
        self.lock_state().durable
    }

    /// The latest committed version of the tree.
    pub fn version(&self) -> Version {
        version_of(&self.lock_state().meta)
    }

    /// Pages the store uses (the file may be longer until [`Engine::compact`]).
    pub fn used_pages(&self) -> u64 {
        self.lock_state().meta.end
    }

    /// A reader of the latest commit. Its pages stay untouched while it lives.
    pub fn begin_read(&self) -> Reader<S> {
        let mut state = self.lock_state();
        let revision = state.meta.revision;
        *state.readers.entry(revision).or_default() += 1;
        Reader {
            snapshot: Snapshot::new(self.shared.pager.clone(), version_of(&state.meta)),
            revision,
            engine: self.clone(),
        }
    }

    /// The writer, once the previous one is done: it continues from the latest commit.
    pub fn begin_write(&self) -> Result<Writer<'_, S>> {
        let guard = self.lock_writer();
        let (base, reusable) = {
            let state = self.lock_state();
            (state.meta, state.reusable())
        };
        {
            let mut space = self.shared.pager.space();
            space.release(reusable.oldest_reader, reusable.durable);
            // Whatever an earlier writer left allocated was settled by its commit or abort.
            debug_assert!(space.take_fresh().is_empty());
        }
        Ok(Writer {
            tree: Tree::open(self.shared.pager.clone(), version_of(&base)),
            engine: self,
            base,
            _guard: guard,
            done: false,
        })
    }

    /// Makes every commit so far durable (one sync).
    pub fn sync(&self) -> Result<()> {
        let _writer = self.lock_writer();
        self.sync_held()
    }

    /// [`Engine::sync`] for the holder of the writer lock.
    fn sync_held(&self) -> Result<()> {
        thunderhead_disk::resolve(self.shared.pager.store().sync())?;
        self.shared.pager.space().clear_recent();
        let mut state = self.lock_state();
        if state.durable != state.meta.revision {
            state.durable = state.meta.revision;
            state.durable_slot = 1 - state.durable_slot;
        }
        Ok(())
    }
}

/// How a meta slot records a tree version.
fn root_of(version: &Version) -> TreeRoot {
    TreeRoot {
        page: version.root,
        checksum: version.root_checksum,
        seq: version.seq,
    }
}

fn version_of(meta: &Meta) -> Version {
    Version {
        root: meta.tree.page,
        root_checksum: meta.tree.checksum,
        seq: meta.tree.seq,
    }
}

/// A reader of one commit; the commit's pages are not reused while it lives.
pub struct Reader<S: PageStore> {
    snapshot: Snapshot<S>,
    revision: u64,
    engine: Engine<S>,
}

impl<S: PageStore> Reader<S> {
    /// The revision read.
    pub fn revision(&self) -> u64 {
        self.revision
    }
}

impl<S: PageStore> std::ops::Deref for Reader<S> {
    type Target = Snapshot<S>;
    fn deref(&self) -> &Snapshot<S> {
        &self.snapshot
    }
}

impl<S: PageStore> Drop for Reader<S> {
    fn drop(&mut self) {
        let mut state = self.engine.lock_state();
        if let Some(count) = state.readers.get_mut(&self.revision) {
            *count -= 1;
            if *count == 0 {
                state.readers.remove(&self.revision);
            }
        }
    }
}

/// The one writer: a [`Tree`] continuing from the latest commit. Dropping it without
/// committing aborts: what it allocated is free again and nothing shared changed.
pub struct Writer<'e, S: PageStore> {
    tree: Tree<S>,
    engine: &'e Engine<S>,
    base: Meta,
    _guard: MutexGuard<'e, ()>,
    done: bool,
}

impl<S: PageStore> Writer<'_, S> {
    /// Commits the changes as the next revision and returns it (the current one when
    /// there is nothing to commit). On error nothing is committed and the writer's
    /// allocations are returned.
    pub fn commit(mut self, durability: Durability) -> Result<u64> {
        self.done = true;
        let result = commit::commit(self.engine, &mut self.tree, &self.base, durability);
        if result.is_err() {
            self.abort_allocations();
        }
        result
    }

    /// Discards the changes.
    pub fn abort(self) {}

    fn abort_allocations(&mut self) {
        let mut space = self.engine.shared.pager.space();
        for extent in space.take_fresh() {
            space.free(extent);
        }
        // Pages past the end may never have been written (the write that failed may be
        // why the writer aborts): the end must not claim them, or a later version would
        // record a store longer than the file.
        space.trim();
    }
}

impl<S: PageStore> std::ops::Deref for Writer<'_, S> {
    type Target = Tree<S>;
    fn deref(&self) -> &Tree<S> {
        &self.tree
    }
}

impl<S: PageStore> std::ops::DerefMut for Writer<'_, S> {
    fn deref_mut(&mut self) -> &mut Tree<S> {
        &mut self.tree
    }
}

impl<S: PageStore> Drop for Writer<'_, S> {
    fn drop(&mut self) {
        if !self.done {
            self.abort_allocations();
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync<S: PageStore + 'static>() {
    fn is<T: Send + Sync>() {}
    is::<Engine<S>>();
    is::<Reader<S>>();
}
