//! A durable, crash-safe store of tree versions in one page store (a file, usually).
//!
//! The store is a header, two meta slots and pages. Each commit writes its new pages,
//! its free-space state, and then the meta slot that does not hold the last durable
//! version; an immediate commit then syncs once. Recovery picks the newest slot whose
//! new pages verify, else the other, which is durable and untouched. See DESIGN.md §3
//! for the argument.

pub(crate) mod catalog;
mod commit;
mod history;
mod open;
pub(crate) mod pins;
mod verify;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use thunderhead_disk::{Kept, Meta, PageBytes, PageStore, TreeRoot};

use crate::error::{Error, Result};
use crate::pager::Pager;
use crate::tree::{Snapshot, Tree, Version};

use catalog::{Catalog, Past};
pub use catalog::{SNAPSHOT_NAME_BYTES_MAX, TREE_NAME_BYTES_MAX};
pub use history::{CommitInfo, SnapshotInfo};
use pins::Pins;
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
    /// The revisions readers read. Its lock is taken inside the state lock where both are
    /// held: its latest revision is published with `State::meta`, so a reader pins
    /// exactly the revision whose trees it reads. A reader ends without the state lock.
    pins: Pins,
    /// Held by the one writer at a time.
    writer: Mutex<()>,
    /// Which past revisions stay readable.
    retention: crate::config::Retention,
    /// Where commit times come from.
    clock: crate::config::Clock,
}

/// What is committed.
#[derive(Debug)]
struct State {
    /// The latest commit.
    meta: Meta,
    /// Its default tree (the catalog's entry for the empty name).
    default: Version,
    /// The latest commit known to be on disk; recovery never falls back past it, so its
    /// pages are never overwritten.
    durable: u64,
    /// Which meta slot holds the durable commit: commits write the other one.
    durable_slot: usize,
    /// The meta page of the latest commit, as written.
    latest_page: PageBytes,
    /// The oldest revision the retention rules keep: the catalog holds an entry for
    /// every past revision from it on (one that compaction left out reads as the next).
    floor: u64,
    /// Named snapshots, by name: revisions kept until dropped.
    snapshots: BTreeMap<Vec<u8>, Past>,
    /// What the durable revision keeps readable itself (its floor and its snapshots'
    /// revisions): recovery may return to it, and then its history must read whole.
    durable_keeps: DurableKeeps,
    /// A commit or compaction failed after it may have written the other slot: that
    /// slot may no longer hold the latest commit, which must be written there again
    /// before a sync may declare it durable.
    slot_suspect: bool,
}

/// What a revision keeps readable besides itself.
#[derive(Debug, Default)]
struct DurableKeeps {
    floor: u64,
    snapshots: Vec<u64>,
}

impl State {
    /// The latest commit is durable now.
    fn note_durable(&mut self, slot: usize) {
        self.durable = self.meta.revision;
        self.durable_slot = slot;
        self.durable_keeps = DurableKeeps {
            floor: self.floor,
            snapshots: self.snapshots.values().map(|past| past.revision).collect(),
        };
    }

    /// The meta slot holding the latest commit: commits after the durable one all go to
    /// the other slot.
    fn latest_slot(&self) -> usize {
        if self.meta.revision == self.durable {
            self.durable_slot
        } else {
            1 - self.durable_slot
        }
    }
}

impl<S: PageStore> Engine<S> {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // Updates under this lock are single assignments made after all fallible work.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The versions whose pages must stay now (`FreeSpace::release`): every revision
    /// from the retention floor on (or from `floor`, once it is raised to it), the ones
    /// readers pin below it, snapshots, and the durable revision recovery falls back to.
    /// The state lock must be held (the pins' lock is taken inside it).
    fn kept(&self, state: &State, floor: Option<u64>) -> Kept {
        let (floor, pinned) = self.shared.pins.kept(floor.unwrap_or(state.floor));
        let mut kept = Kept::new(floor, state.durable);
        for revision in pinned {
            kept.keep(revision);
        }
        for past in state.snapshots.values() {
            kept.keep(past.revision);
        }
        let durable = &state.durable_keeps;
        kept.keep_range(durable.floor, state.durable);
        for &revision in &durable.snapshots {
            kept.keep(revision);
        }
        kept
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
        let state = self.lock_state();
        // The state lock keeps the latest revision from moving past the one read here.
        let revision = self.shared.pins.pin_latest();
        debug_assert_eq!(revision, state.meta.revision);
        let pager = &self.shared.pager;
        Reader {
            catalog: Snapshot::new(pager.clone(), version_of(&state.meta)),
            snapshot: Snapshot::new(pager.clone(), state.default),
            revision,
            time: state.meta.time,
            engine: self.clone(),
        }
    }

    /// The writer, once the previous one is done: it continues from the latest commit.
    pub fn begin_write(&self) -> Result<Writer<'_, S>> {
        let guard = self.lock_writer();
        let (base, default, kept) = {
            let state = self.lock_state();
            (state.meta, state.default, self.kept(&state, None))
        };
        {
            let mut space = self.shared.pager.space();
            space.release(&kept);
            // Whatever an earlier writer left allocated was settled by its commit or abort.
            debug_assert!(space.take_fresh().is_empty());
        }
        let pager = &self.shared.pager;
        pager.set_reclaim(Some(base.revision + 1));
        Ok(Writer {
            catalog: Tree::open(pager.clone(), version_of(&base)),
            default: Tree::open(pager.clone(), default).with_birth(base.revision + 1),
            trees: BTreeMap::new(),
            snapshots: BTreeMap::new(),
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
        if self.lock_state().slot_suspect {
            self.restore_latest_slot()?;
        }
        thunderhead_disk::resolve(self.shared.pager.store().sync())?;
        self.shared.pager.space().clear_recent();
        let mut state = self.lock_state();
        if state.durable != state.meta.revision {
            let slot = 1 - state.durable_slot;
            state.note_durable(slot);
        }
        Ok(())
    }
}

impl<S: PageStore> Engine<S> {
    /// After a commit or compaction failed once it may have written the slot that does
    /// not hold the durable commit (a failed write may have been done), writes the
    /// latest commit's meta page there again, so the slot a later sync makes durable
    /// holds what memory says is the latest. When the latest commit is the durable one
    /// it goes there too (both slots then hold it): else the failed commit, newer, could
    /// be made durable by that sync and opened by recovery in place of the latest (the
    /// simulator found this). For the holder of the writer lock; until it succeeds the
    /// slot stays suspect.
    pub(super) fn restore_latest_slot(&self) -> Result<()> {
        let (slot, page) = {
            let mut state = self.lock_state();
            state.slot_suspect = true;
            (1 - state.durable_slot, state.latest_page.clone())
        };
        let store = self.shared.pager.store();
        thunderhead_disk::resolve(store.write(thunderhead_disk::META_PAGES[slot], page))?;
        self.lock_state().slot_suspect = false;
        Ok(())
    }
}

/// How a meta slot records a tree version.
fn root_of(version: &Version) -> TreeRoot {
    TreeRoot {
        page: version.root,
        checksum: version.root_checksum,
        seq: version.seq,
        birth: version.birth,
    }
}

fn version_of(meta: &Meta) -> Version {
    Version {
        root: meta.tree.page,
        root_checksum: meta.tree.checksum,
        seq: meta.tree.seq,
        birth: meta.tree.birth,
    }
}

/// A reader of one commit; the commit's pages are not reused while it lives. It reads
/// the default tree directly (through `Deref`) and any named tree with [`Reader::tree`].
pub struct Reader<S: PageStore> {
    catalog: Snapshot<S>,
    snapshot: Snapshot<S>,
    revision: u64,
    time: u64,
    engine: Engine<S>,
}

impl<S: PageStore> Reader<S> {
    /// The revision read.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// When the revision read was committed, in microseconds since the Unix epoch.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// The named tree as of this commit, if it exists. The snapshot reads pages this
    /// reader keeps alive: use it while the reader lives.
    pub fn tree(&self, name: &[u8]) -> Result<Option<Snapshot<S>>> {
        catalog::check_name(name)?;
        Ok(self
            .catalog
            .tree(name)?
            .map(|version| Snapshot::new(self.engine.shared.pager.clone(), version)))
    }

    /// The names of every tree of this commit, in byte order (the default tree is the
    /// empty name).
    pub fn tree_names(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .catalog
            .trees()?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }
}

/// Another reader of the same revision: it pins the revision again, so each keeps it
/// readable on its own (even once the retention rules let it go).
impl<S: PageStore> Clone for Reader<S> {
    fn clone(&self) -> Self {
        self.engine.shared.pins.pin(self.revision);
        let pager = &self.engine.shared.pager;
        Self {
            catalog: Snapshot::new(pager.clone(), self.catalog.version()),
            snapshot: Snapshot::new(pager.clone(), self.snapshot.version()),
            revision: self.revision,
            time: self.time,
            engine: self.engine.clone(),
        }
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
        self.engine.shared.pins.unpin(self.revision);
    }
}

/// The one writer. It changes the default tree directly (through `Deref`) and named
/// trees through [`Writer::tree_mut`]; trees can be created, deleted, renamed and forked.
/// Dropping it without committing aborts: what it allocated is free again and nothing
/// shared changed.
pub struct Writer<'e, S: PageStore> {
    /// The catalog as committed; written at commit only.
    catalog: Tree<S>,
    default: Tree<S>,
    /// Named trees this writer touched: `None` where it deleted one (or renamed it away).
    trees: BTreeMap<Vec<u8>, Option<Tree<S>>>,
    /// Snapshots this writer creates (`Some`, of its base revision) or drops (`None`).
    snapshots: BTreeMap<Vec<u8>, Option<Past>>,
    engine: &'e Engine<S>,
    base: Meta,
    _guard: MutexGuard<'e, ()>,
    done: bool,
}

impl<S: PageStore> Writer<'_, S> {
    /// The revision this writer's commit will have.
    pub fn revision(&self) -> u64 {
        self.base.revision + 1
    }

    /// The named tree, with this writer's changes, if it exists. The empty name is the
    /// default tree.
    pub fn tree(&mut self, name: &[u8]) -> Result<Option<&mut Tree<S>>> {
        catalog::check_name(name)?;
        if name.is_empty() {
            return Ok(Some(&mut self.default));
        }
        if !self.trees.contains_key(name) {
            let Some(version) = self.catalog.tree(name)? else {
                return Ok(None);
            };
            let tree =
                Tree::open(self.engine.shared.pager.clone(), version).with_birth(self.revision());
            self.trees.insert(name.to_vec(), Some(tree));
        }
        Ok(self.trees.get_mut(name).and_then(Option::as_mut))
    }

    /// The named tree, created empty if it does not exist.
    pub fn tree_mut(&mut self, name: &[u8]) -> Result<&mut Tree<S>> {
        if self.tree(name)?.is_none() {
            let tree = Tree::new(self.engine.shared.pager.clone()).with_birth(self.revision());
            self.trees.insert(name.to_vec(), Some(tree));
        }
        self.tree(name)?.ok_or_else(|| Error::TreeNotFound {
            name: name.to_vec(),
        })
    }

    /// Whether the named tree exists (with this writer's changes).
    pub fn contains_tree(&mut self, name: &[u8]) -> Result<bool> {
        Ok(self.tree(name)?.is_some())
    }

    /// The names of every tree, with this writer's changes, in byte order.
    pub fn tree_names(&self) -> Result<Vec<Vec<u8>>> {
        let mut names: BTreeMap<Vec<u8>, bool> = self
            .catalog
            .trees()?
            .into_iter()
            .map(|(name, _)| (name, true))
            .collect();
        for (name, tree) in &self.trees {
            names.insert(name.clone(), tree.is_some());
        }
        Ok(names
            .into_iter()
            .filter_map(|(name, exists)| exists.then_some(name))
            .collect())
    }

    /// Deletes the named tree; whether it existed. Its pages are freed by the commit
    /// (those it shares with forks stay with them).
    pub fn delete_tree(&mut self, name: &[u8]) -> Result<bool> {
        reserved(name)?;
        if self.tree(name)?.is_none() {
            return Ok(false);
        }
        self.trees.insert(name.to_vec(), None);
        Ok(true)
    }

    /// Renames a tree; the target name must be free.
    pub fn rename_tree(&mut self, from: &[u8], to: &[u8]) -> Result<()> {
        reserved(from)?;
        reserved(to)?;
        if from == to {
            return match self.tree(from)? {
                Some(_) => Ok(()),
                None => Err(Error::TreeNotFound {
                    name: from.to_vec(),
                }),
            };
        }
        if self.tree(to)?.is_some() {
            return Err(Error::TreeExists { name: to.to_vec() });
        }
        if self.tree(from)?.is_none() {
            return Err(Error::TreeNotFound {
                name: from.to_vec(),
            });
        }
        let tree = self.trees.insert(from.to_vec(), None).flatten();
        self.trees.insert(to.to_vec(), tree);
        Ok(())
    }

    /// Makes `target` a copy of `source` as this writer sees it, in constant time: the
    /// two share every page until either changes. Uncommitted changes of `source` are
    /// written first (as part of this commit), so both start from the same stored root.
    pub fn fork_tree(&mut self, source: &[u8], target: &[u8]) -> Result<()> {
        reserved(target)?;
        if self.tree(target)?.is_some() {
            return Err(Error::TreeExists {
                name: target.to_vec(),
            });
        }
        let revision = self.revision();
        // From here on two trees share pages this writer wrote: none may be freed early.
        let pager = self.engine.shared.pager.clone();
        let Some(tree) = self.tree(source)? else {
            return Err(Error::TreeNotFound {
                name: source.to_vec(),
            });
        };
        pager.set_reclaim(None);
        let version = tree.commit_as(revision)?;
        let fork = Tree::open(self.engine.shared.pager.clone(), version).with_birth(revision);
        self.trees.insert(target.to_vec(), Some(fork));
        Ok(())
    }

    /// Makes `target` (replacing it if it exists) a copy of `source` as it was
    /// committed when this writer began, ignoring this writer's changes to `source`:
    /// constant time, sharing every page.
    pub fn fork_committed(&mut self, source: &[u8], target: &[u8]) -> Result<()> {
        reserved(target)?;
        catalog::check_name(source)?;
        let Some(version) = self.catalog.tree(source)? else {
            return Err(Error::TreeNotFound {
                name: source.to_vec(),
            });
        };
        let fork =
            Tree::open(self.engine.shared.pager.clone(), version).with_birth(self.revision());
        self.trees.insert(target.to_vec(), Some(fork));
        Ok(())
    }

    /// Writes every changed node of every tree out now, as part of this commit, so a
    /// large commit's memory stays bounded; the writer goes on. Nodes written and then
    /// changed again before the commit are freed as they are superseded.
    pub fn write_out(&mut self) -> Result<()> {
        self.default.write_out()?;
        for tree in self.trees.values_mut().flatten() {
            tree.write_out()?;
        }
        Ok(())
    }

    /// Commits the changes as the next revision and returns it (the current one when
    /// there is nothing to commit). On error nothing is committed and the writer's
    /// allocations are returned.
    pub fn commit(mut self, durability: Durability) -> Result<u64> {
        self.done = true;
        let mut trees: Vec<(Vec<u8>, Option<&mut Tree<S>>)> =
            vec![(Vec::new(), Some(&mut self.default))];
        trees.extend(
            self.trees
                .iter_mut()
                .map(|(name, tree)| (name.clone(), tree.as_mut())),
        );
        let result = commit::commit(
            self.engine,
            &mut self.catalog,
            trees,
            &self.snapshots,
            &self.base,
            durability,
        );
        if result.is_err() {
            self.abort_allocations();
        }
        result
    }

    /// Discards the changes.
    pub fn abort(self) {}

    fn abort_allocations(&mut self) {
        self.engine.shared.pager.set_reclaim(None);
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

/// The default tree cannot be deleted, renamed or replaced.
fn reserved(name: &[u8]) -> Result<()> {
    catalog::check_name(name)?;
    if name.is_empty() {
        return Err(Error::InvalidTreeName {
            reason: "the empty name is the default tree, which always exists".into(),
        });
    }
    Ok(())
}

impl<S: PageStore> std::ops::Deref for Writer<'_, S> {
    type Target = Tree<S>;
    fn deref(&self) -> &Tree<S> {
        &self.default
    }
}

impl<S: PageStore> std::ops::DerefMut for Writer<'_, S> {
    fn deref_mut(&mut self) -> &mut Tree<S> {
        &mut self.default
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
