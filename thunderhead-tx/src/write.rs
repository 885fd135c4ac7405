//! Write transactions: writes recorded privately as messages, reads that see them over
//! the transaction's snapshot, and a commit that validates the transaction against
//! everything committed since it began and then merges its messages into the trees.
//!
//! A transaction's trees are *local trees*: each starts from a committed tree (its
//! *base*, read through the snapshot) or empty, and holds the ranges the transaction
//! removed and, in the arena (or the spill once the arena is full), its latest write of
//! each key. Tree names map to local trees; renames move the mapping, forks copy a
//! local tree (its base is shared, its pending writes are copied), deletes drop it.
//! At commit a local tree's state is rebuilt in the store's writer: the base is forked
//! in constant time where the name now holds another tree's content, then the removed
//! ranges are applied and then the writes, which enter the root's journal as ordinary
//! messages. Applying removals before writes is exact: a removal forgets every earlier
//! pending write it covers, so every write still pending is newer than every removal.

use std::borrow::Cow;
use std::cell::{RefCell, RefMut};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;
use std::sync::Arc;

use thunderhead_core::{Durability, Reader, VALUE_BYTES_MAX, ValueBytes, Version, Writer};
use thunderhead_disk::{PageSlice, PageStore};

use crate::arena::Arena;
use crate::database::{Database, Request, check_tree_name};
use crate::error::{Error, Result};
use crate::footprint::{Footprint, KeySet};
use crate::keys::KeyRange;
use crate::merge::{Recorder, Sources, WriteRange};
use crate::spill::{Spill, for_each_spilled};
use crate::store::Store;

/// Bytes of writes applied at commit between write-outs of the changed nodes, which
/// bound the committer's memory for transactions of any size.
const APPLY_WRITE_OUT_BYTES: usize = 32 << 20;

/// A transaction's tree.
struct Local {
    /// Its name in the transaction's view (`None` once deleted).
    name: Option<Vec<u8>>,
    /// The committed tree it started from: its name and version in the snapshot.
    base: Option<(Vec<u8>, Version)>,
    /// Ranges removed from the base (and from spilled writes) by this transaction.
    cleared: Vec<KeyRange>,
    /// What the transaction wrote, for the commit's footprint.
    written: KeySet,
    /// Whether its content replaced what the name held (created, forked, renamed to).
    replaced: bool,
}

pub(crate) struct TxState<S: PageStore> {
    reader: Reader<S>,
    /// The revision read.
    begin: u64,
    /// Tree names the transaction looked at: `Some(local)` or `None` (deleted here).
    view: BTreeMap<Vec<u8>, Option<u32>>,
    locals: Vec<Local>,
    /// Names whose existence this transaction changes.
    catalog_written: BTreeSet<Vec<u8>>,
    arena: Arena,
    spill: Option<Spill>,
    reads: Footprint,
}

/// A write transaction: reads see its own writes; nothing is visible to others until
/// [`commit`](WriteTransaction::commit). Dropping it aborts. Many may be open at once,
/// on any threads (it is `Send`); commit returns [`Error::Conflict`] if a key or range
/// it read was written since it began (optimistic, serializable), and applies nothing.
/// Writes that were not read never conflict.
///
/// ```
/// use thunderhead_tx::{Database, Error, Options};
///
/// let db = Database::in_memory(Options::default())?;
/// let first = db.begin_write()?;
/// let second = db.begin_write()?;
/// let balance = first.open_tree(b"accounts")?.get(b"ann")?;
/// first.open_tree(b"accounts")?.insert(b"ann", b"10")?;
/// second.open_tree(b"accounts")?.insert(b"ann", b"20")?; // a blind write
/// second.commit()?;
/// assert!(balance.is_none());
/// // `first` read "ann", which `second` wrote after `first` began.
/// assert!(matches!(first.commit(), Err(Error::Conflict { .. })));
/// # Ok::<(), thunderhead_tx::Error>(())
/// ```
pub struct WriteTransaction<S: PageStore + 'static = Store> {
    db: Database<S>,
    id: u64,
    state: RefCell<Option<TxState<S>>>,
}

/// A transaction on its way through the committer.
pub(crate) struct CommitRequest<S: PageStore> {
    state: TxState<S>,
    pub durability: Durability,
}

impl<S: PageStore + 'static> WriteTransaction<S> {
    pub(crate) fn new(db: Database<S>, id: u64, reader: Reader<S>) -> Self {
        let begin = reader.revision();
        Self {
            db,
            id,
            state: RefCell::new(Some(TxState {
                reader,
                begin,
                view: BTreeMap::new(),
                locals: Vec::new(),
                catalog_written: BTreeSet::new(),
                arena: Arena::default(),
                spill: None,
                reads: Footprint::default(),
            })),
        }
    }

    fn state(&self) -> RefMut<'_, TxState<S>> {
        RefMut::map(self.state.borrow_mut(), |state| {
            state
                .as_mut()
                .expect("a transaction's state lives until it ends")
        })
    }

    /// The revision this transaction reads (it moves on to the latest commit only when
    /// it takes a lock with [`lock_range`](WriteTransaction::lock_range) or waits for
    /// one).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// let other = db.begin_write()?;
    /// other.open_tree(b"t")?.insert(b"k", b"v")?;
    /// assert_eq!(other.commit()?, 1);
    /// assert_eq!(txn.revision(), 0);
    /// txn.lock_range(b"t", &b"a"[..]..&b"b"[..])?;
    /// assert_eq!(txn.revision(), 1);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn revision(&self) -> u64 {
        self.state().begin
    }

    /// The named tree, created (empty) if it does not exist.
    ///
    /// ```
    /// use thunderhead_tx::{Database, Error, Options};
    ///
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"new")?;
    /// assert!(tree.is_empty()?);
    /// assert!(matches!(txn.open_tree(b""), Err(Error::InvalidTreeName { .. })));
    /// txn.commit()?;
    /// assert_eq!(db.begin_read().list_trees()?, vec![b"new".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn open_tree(&self, name: &[u8]) -> Result<WriteTree<'_, S>> {
        check_tree_name(name)?;
        let mut state = self.state();
        let local = match state.local_of(name)? {
            Some(local) => local,
            None => state.create(name),
        };
        Ok(WriteTree {
            txn: self,
            local,
            name: name.to_vec(),
            prefix: Vec::new(),
        })
    }

    /// The names of every tree, as this transaction sees them, in byte order.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # txn.open_tree(b"old")?;
    /// # txn.commit()?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"new")?;
    /// txn.delete_tree(b"old")?;
    /// assert_eq!(txn.list_trees()?, vec![b"new".to_vec()]);
    /// assert_eq!(db.begin_read().list_trees()?, vec![b"old".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn list_trees(&self) -> Result<Vec<Vec<u8>>> {
        let mut state = self.state();
        state.reads.catalog.insert_all();
        let mut names: BTreeSet<Vec<u8>> = state
            .reader
            .tree_names()?
            .into_iter()
            .filter(|name| !name.is_empty())
            .collect();
        for (name, local) in &state.view {
            if local.is_some() {
                names.insert(name.clone());
            } else {
                names.remove(name);
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Deletes the named tree; whether it existed. Pages it shares with forks stay
    /// with them.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # txn.open_tree(b"logs")?.insert(b"1", b"boot")?;
    /// # txn.commit()?;
    /// let txn = db.begin_write()?;
    /// assert!(txn.delete_tree(b"logs")?);
    /// assert!(!txn.delete_tree(b"logs")?);
    /// txn.commit()?;
    /// assert!(db.begin_read().list_trees()?.is_empty());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn delete_tree(&self, name: &[u8]) -> Result<bool> {
        check_tree_name(name)?;
        let mut state = self.state();
        let Some(local) = state.local_of(name)? else {
            return Ok(false);
        };
        state.locals[local as usize].name = None;
        state.view.insert(name.to_vec(), None);
        state.catalog_written.insert(name.to_vec());
        Ok(true)
    }

    /// Renames a tree ([`Error::TreeNotFound`], or [`Error::TreeExists`] if `to` is
    /// taken).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # txn.open_tree(b"draft")?.insert(b"title", b"Hello")?;
    /// # txn.commit()?;
    /// let txn = db.begin_write()?;
    /// txn.rename_tree(b"draft", b"final")?;
    /// txn.commit()?;
    /// let read = db.begin_read();
    /// assert_eq!(read.list_trees()?, vec![b"final".to_vec()]);
    /// assert_eq!(read.open_tree(b"final")?.get(b"title")?.as_deref(), Some(&b"Hello"[..]));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn rename_tree(&self, from: &[u8], to: &[u8]) -> Result<()> {
        check_tree_name(from)?;
        check_tree_name(to)?;
        let mut state = self.state();
        let Some(local) = state.local_of(from)? else {
            return Err(Error::TreeNotFound {
                name: from.to_vec(),
            });
        };
        if from == to {
            return Ok(());
        }
        if state.local_of(to)?.is_some() {
            return Err(Error::TreeExists { name: to.to_vec() });
        }
        state.view.insert(from.to_vec(), None);
        state.view.insert(to.to_vec(), Some(local));
        state.locals[local as usize].name = Some(to.to_vec());
        state.catalog_written.insert(from.to_vec());
        state.catalog_written.insert(to.to_vec());
        Ok(())
    }

    /// Makes `target` a copy of `source` as this transaction sees it. The copy shares
    /// every stored page with `source` (constant time whatever its size; only this
    /// transaction's pending writes to `source` are copied).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"main")?.insert(b"k", b"1")?;
    /// txn.fork_tree(b"main", b"branch")?;
    /// txn.open_tree(b"branch")?.insert(b"k", b"2")?;
    /// txn.commit()?;
    /// let read = db.begin_read();
    /// assert_eq!(read.open_tree(b"main")?.get(b"k")?.as_deref(), Some(&b"1"[..]));
    /// assert_eq!(read.open_tree(b"branch")?.get(b"k")?.as_deref(), Some(&b"2"[..]));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn fork_tree(&self, source: &[u8], target: &[u8]) -> Result<()> {
        check_tree_name(source)?;
        check_tree_name(target)?;
        let mut state = self.state();
        let Some(from) = state.local_of(source)? else {
            return Err(Error::TreeNotFound {
                name: source.to_vec(),
            });
        };
        if state.local_of(target)?.is_some() {
            return Err(Error::TreeExists {
                name: target.to_vec(),
            });
        }
        let to = state.locals.len() as u32;
        let original = &state.locals[from as usize];
        let local = Local {
            name: Some(target.to_vec()),
            base: original.base.clone(),
            cleared: original.cleared.clone(),
            // The copy's pending writes are the source's.
            written: original.written.clone(),
            replaced: true,
        };
        state.locals.push(local);
        let pending = state.arena.entries(from, &KeyRange::all());
        for (key, value) in &pending {
            state.arena.put(to, key, value.as_deref());
        }
        if let Some(spill) = &state.spill {
            spill.copy_tree(from, to)?;
        }
        state.view.insert(target.to_vec(), Some(to));
        state.catalog_written.insert(target.to_vec());
        Ok(())
    }

    /// Makes this transaction the only one that may read or write `range` of tree
    /// `tree` until it ends. Others that touch the range wait for it (up to
    /// [`Options::lock_timeout`](crate::Options::lock_timeout), then
    /// [`Error::LockTimeout`]) instead of failing at commit. Taking the lock moves this
    /// transaction on to the latest commit (checking first that nothing it read has
    /// changed: [`Error::Conflict`] otherwise), so what it reads in the range from
    /// then on cannot change under it.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.lock_range(b"counters", &b"a"[..]..&b"b"[..])?;
    /// let counters = txn.open_tree(b"counters")?;
    /// let next = counters.get(b"a1")?.map_or(0, |value| value[0]) + 1;
    /// counters.insert(b"a1", &[next])?;
    /// txn.commit()?;
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn lock_range<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(
        &self,
        tree: &[u8],
        range: R,
    ) -> Result<()> {
        check_tree_name(tree)?;
        let range = KeyRange::from_bounds(&range);
        let inner = &self.db.inner;
        inner
            .locks
            .acquire(self.id, tree, range, inner.options.lock_timeout)?;
        self.rebase()
    }

    /// Commits with the database's durability and returns the new revision.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// assert!(db.begin_read().list_trees()?.is_empty()); // not visible before commit
    /// assert_eq!(txn.commit()?, 1);
    /// assert!(db.begin_read().open_tree(b"t")?.get(b"k")?.is_some());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn commit(self) -> Result<u64> {
        let durability = self.db.inner.options.durability;
        self.commit_with(durability)
    }

    /// Commits with `durability` and returns the new revision (the latest one when the
    /// transaction wrote nothing). Transactions committing at the same moment share one
    /// sync. On [`Error::Conflict`] nothing is applied.
    ///
    /// ```
    /// use thunderhead_tx::{Database, Durability, Options};
    ///
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// assert_eq!(txn.commit_with(Durability::Eventual)?, 1);
    /// assert_eq!(db.begin_write()?.commit_with(Durability::Immediate)?, 1); // wrote nothing
    /// db.sync()?; // makes the eventual commit durable
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn commit_with(self, durability: Durability) -> Result<u64> {
        let state = self.state.borrow_mut().take().expect("committed once");
        let begin = state.begin;
        let result = if state.writes_nothing() {
            // Nothing to write, but an immediate commit promises that what it read (the
            // latest commit, maybe an eventual one) is durable when it returns.
            let engine = &self.db.inner.engine;
            let revision = engine.revision();
            if durability == Durability::Immediate && engine.durable_revision() < revision {
                self.db.sync().map(|()| revision)
            } else {
                Ok(revision)
            }
        } else {
            match state.wait_for_locks(self.id, &self.db) {
                Err(error) => Err(error),
                Ok(()) => self.db.submit(Request::Commit(Box::new(CommitRequest {
                    state,
                    durability,
                }))),
            }
        };
        self.finish(begin);
        result
    }

    /// Discards every change.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.abort();
    /// assert_eq!(db.revision(), 0);
    /// assert!(db.begin_read().list_trees()?.is_empty());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn abort(self) {}

    fn finish(&self, begin: u64) {
        self.db.conflict_log().end(begin);
        self.db.inner.locks.release(self.id);
    }

    /// Notes that this transaction read `range` of the committed tree `tree`.
    pub(crate) fn record_read(&self, tree: &[u8], range: KeyRange) {
        self.state().reads.tree(tree).insert_range(range);
    }

    /// Continues from the latest commit, if nothing read so far has changed since.
    fn rebase(&self) -> Result<()> {
        let mut state = self.state();
        let reader = {
            let mut history = self.db.conflict_log();
            if let Some(reason) = history.conflict(&state.reads, state.begin) {
                return Err(Error::Conflict { reason });
            }
            let reader = self.db.inner.engine.begin_read();
            history.begin(reader.revision());
            history.end(state.begin);
            reader
        };
        let begin = reader.revision();
        let mut bases = Vec::new();
        for local in &state.locals {
            bases.push(match &local.base {
                Some((name, _)) => {
                    let tree = reader.tree(name)?.ok_or_else(|| Error::Conflict {
                        reason: format!("tree \"{}\" was deleted", name.escape_ascii()),
                    })?;
                    Some((name.clone(), tree.version()))
                }
                None => None,
            });
        }
        for (local, base) in state.locals.iter_mut().zip(bases) {
            local.base = base;
        }
        let previous = std::mem::replace(&mut state.reader, reader);
        state.begin = begin;
        drop(previous);
        Ok(())
    }

    /// Waits for others' locks on `range` of `tree`; continues from the latest commit if
    /// it had to wait.
    fn wait_for_lock(&self, tree: &[u8], range: &KeyRange) -> Result<()> {
        let inner = &self.db.inner;
        if inner
            .locks
            .wait_for(self.id, tree, range, inner.options.lock_timeout)?
        {
            self.rebase()?;
        }
        Ok(())
    }
}

impl<S: PageStore + 'static> Drop for WriteTransaction<S> {
    fn drop(&mut self) {
        if let Some(state) = self.state.get_mut().take() {
            self.finish(state.begin);
        }
    }
}

impl<S: PageStore> TxState<S> {
    /// Whether committing would change nothing: no name, no pending write, no removal.
    fn writes_nothing(&self) -> bool {
        self.catalog_written.is_empty()
            && self.arena.len() == 0
            && self.spill.is_none()
            && self.locals.iter().all(|local| local.cleared.is_empty())
    }

    /// The local tree `name` refers to, creating it from the snapshot's tree if this is
    /// the first use; `None` if no such tree exists. Records that the name was read.
    fn local_of(&mut self, name: &[u8]) -> Result<Option<u32>> {
        self.reads.catalog.insert_key(name);
        if let Some(local) = self.view.get(name) {
            return Ok(*local);
        }
        let Some(tree) = self.reader.tree(name)? else {
            return Ok(None);
        };
        let local = self.locals.len() as u32;
        self.locals.push(Local {
            name: Some(name.to_vec()),
            base: Some((name.to_vec(), tree.version())),
            cleared: Vec::new(),
            written: KeySet::default(),
            replaced: false,
        });
        self.view.insert(name.to_vec(), Some(local));
        Ok(Some(local))
    }

    /// A new, empty tree named `name`.
    fn create(&mut self, name: &[u8]) -> u32 {
        let local = self.locals.len() as u32;
        self.locals.push(Local {
            name: Some(name.to_vec()),
            base: None,
            cleared: Vec::new(),
            written: KeySet::default(),
            replaced: true,
        });
        self.view.insert(name.to_vec(), Some(local));
        self.catalog_written.insert(name.to_vec());
        local
    }

    /// What committing this transaction writes: every name it changes, every key and
    /// range it wrote, and the whole of every tree it replaced or deleted.
    fn write_footprint(&self) -> Footprint {
        let mut footprint = Footprint::default();
        for name in &self.catalog_written {
            footprint.catalog.insert_key(name);
        }
        for (name, local) in &self.view {
            match local {
                None => footprint.tree(name).insert_all(),
                Some(local) => {
                    let local = &self.locals[*local as usize];
                    if local.replaced_at(name) {
                        footprint.tree(name).insert_all();
                    } else if !local.written.is_empty() {
                        *footprint.tree(name) = local.written.clone();
                    }
                }
            }
        }
        footprint
    }

    /// Waits until no other transaction holds a lock on anything this one writes.
    fn wait_for_locks<T: PageStore + 'static>(&self, owner: u64, db: &Database<T>) -> Result<()> {
        if db.inner.locks.is_idle() {
            return Ok(());
        }
        let footprint = self.write_footprint();
        let timeout = db.inner.options.lock_timeout;
        for (tree, keys) in &footprint.trees {
            db.inner.locks.wait_for_set(owner, tree, keys, timeout)?;
        }
        Ok(())
    }

    /// Rebuilds the transaction's trees in the store's writer.
    fn apply_to(&self, writer: &mut Writer<'_, S>) -> Result<()> {
        let mut applied = 0usize;
        for (name, local) in &self.view {
            let Some(local_id) = local else {
                writer.delete_tree(name)?;
                continue;
            };
            let local = &self.locals[*local_id as usize];
            if local.replaced_at(name) {
                match &local.base {
                    Some((base, _)) => writer.fork_committed(base, name)?,
                    None => {
                        writer.delete_tree(name)?;
                        writer.tree_mut(name)?;
                    }
                }
            }
            if local.written.is_empty() {
                continue;
            }
            let tree = writer.tree_mut(name)?;
            for range in &local.cleared {
                tree.delete_range::<[u8], _>(range.as_refs())?;
            }
            // Writes into an empty tree arrive here in key order: they build it bottom
            // up (spilled writes come as a second stream, so they take the usual way).
            if self.spill.is_none()
                && let Some(mut load) = tree.bulk_load()?
            {
                let mut result = Ok(());
                self.arena.for_each_in(*local_id, |key, value| {
                    if let (Ok(()), Some(value)) = (&result, value) {
                        result = load.push(key, value);
                    }
                });
                result?;
                load.finish()?;
                continue;
            }
            let mut apply = |key: &[u8], value: Option<&[u8]>| -> Result<()> {
                match value {
                    Some(value) => tree.put(key, value)?,
                    None => tree.delete(key)?,
                }
                applied += key.len() + value.map_or(0, <[u8]>::len);
                if applied > APPLY_WRITE_OUT_BYTES {
                    tree.write_out()?;
                    applied = 0;
                }
                Ok(())
            };
            if let Some(spill) = &self.spill {
                for_each_spilled(&spill.reader(), *local_id, |key, value| {
                    apply(key, value.as_deref())
                })?;
            }
            let mut result = Ok(());
            self.arena.for_each_in(*local_id, |key, value| {
                if result.is_ok() {
                    result = apply(key, value);
                }
            });
            result?;
        }
        Ok(())
    }
}

impl Local {
    /// Whether, under `name`, this tree's content replaces what the name held.
    fn replaced_at(&self, name: &[u8]) -> bool {
        self.replaced || self.base.as_ref().is_none_or(|(base, _)| base != name)
    }
}

impl<S: PageStore + 'static> CommitRequest<S> {
    /// Validates the transaction against every commit since it began and, if nothing
    /// it read was written, applies it as the next revision (without a sync; the
    /// committer syncs the batch).
    pub(crate) fn apply(self, db: &Database<S>) -> Result<u64> {
        let engine = &db.inner.engine;
        let written = Arc::new(self.state.write_footprint());
        let revision = {
            let mut history = db.conflict_log();
            if let Some(reason) = history.conflict(&self.state.reads, self.state.begin) {
                return Err(Error::Conflict { reason });
            }
            // Logged before it is visible, so no transaction can begin after this
            // commit's revision without it being in the log; a commit that then fails
            // is taken out again (until then it can only cause a spurious conflict).
            let revision = engine.revision() + 1;
            history.log.push_back((revision, written));
            revision
        };
        let result = (|| {
            let mut writer = engine.begin_write()?;
            self.state.apply_to(&mut writer)?;
            Ok(writer.commit(Durability::Eventual)?)
        })();
        if !matches!(result, Ok(committed) if committed == revision) {
            let mut history = db.conflict_log();
            history.log.retain(|(logged, _)| *logged != revision);
        }
        result
    }
}

/// One tree of a [`WriteTransaction`], or a subtree view of it. Handles borrow the
/// transaction; several may be used at once.
///
/// ```
/// # use thunderhead_tx::{Database, Options};
/// let db = Database::in_memory(Options::default())?;
/// let txn = db.begin_write()?;
/// let (a, b) = (txn.open_tree(b"t")?, txn.open_tree(b"t")?);
/// a.insert(b"k", b"v")?;
/// assert_eq!(b.get(b"k")?.as_deref(), Some(&b"v"[..])); // the same tree
/// # Ok::<(), thunderhead_tx::Error>(())
/// ```
pub struct WriteTree<'t, S: PageStore + 'static = Store> {
    txn: &'t WriteTransaction<S>,
    local: u32,
    name: Vec<u8>,
    prefix: Vec<u8>,
}

impl<'t, S: PageStore + 'static> WriteTree<'t, S> {
    /// `key` under the view's prefix, borrowed when there is none (the usual case: no
    /// allocation per write).
    fn key<'k>(&self, key: &'k [u8]) -> Result<Cow<'k, [u8]>> {
        let full = if self.prefix.is_empty() {
            Cow::Borrowed(key)
        } else {
            Cow::Owned([self.prefix.as_slice(), key].concat())
        };
        let max = self.txn.db.inner.engine.pager().limits().key_bytes_max;
        if full.len() > max {
            return Err(Error::KeyTooLarge {
                len: full.len(),
                max,
            });
        }
        Ok(full)
    }

    /// The transaction's state, once this tree is known to still exist in it.
    fn state(&self) -> Result<RefMut<'t, TxState<S>>> {
        let state = self.txn.state();
        if state.locals[self.local as usize].name.is_none() {
            return Err(Error::TreeNotFound {
                name: self.name.clone(),
            });
        }
        Ok(state)
    }

    fn tree_name(&self) -> Vec<u8> {
        self.txn.state().locals[self.local as usize]
            .name
            .clone()
            .unwrap_or_else(|| self.name.clone())
    }

    /// The value of `key`, with this transaction's writes.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # txn.open_tree(b"t")?.insert(b"old", b"1")?;
    /// # txn.commit()?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// tree.insert(b"new", b"2")?;
    /// assert_eq!(tree.get(b"old")?.as_deref(), Some(&b"1"[..])); // committed
    /// assert_eq!(tree.get(b"new")?.as_deref(), Some(&b"2"[..])); // pending
    /// assert!(tree.get(b"none")?.is_none());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn get(&self, key: &[u8]) -> Result<Option<ValueBytes>> {
        let key = self.key(key)?;
        self.txn
            .wait_for_lock(&self.tree_name(), &KeyRange::point(&key))?;
        let mut state = self.state()?;
        if let Some(pending) = state.arena.get(self.local, &key) {
            return Ok(pending.map(PageSlice::copy_from_slice));
        }
        if let Some(spill) = &state.spill
            && let Some(spilled) = spill.get(self.local, &key)?
        {
            return Ok(spilled);
        }
        let local = &state.locals[self.local as usize];
        if local.cleared.iter().any(|range| range.contains(&key)) {
            return Ok(None);
        }
        let Some((base, version)) = local.base.clone() else {
            return Ok(None);
        };
        state.reads.tree(&base).insert_key(&key);
        let snapshot = thunderhead_core::Snapshot::new(state.reader.pager().clone(), version);
        Ok(snapshot.get(&key)?)
    }

    /// The entries with keys in `range`, with this transaction's writes, in key order
    /// (`.rev()` for reverse). The iterator reads the transaction as it is now: later
    /// writes do not show in it, and it may be used while the transaction writes.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # for key in [b"a", b"b", b"c"] { txn.open_tree(b"t")?.insert(key, b"")?; }
    /// # txn.commit()?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// tree.insert(b"bb", b"")?;
    /// tree.remove(b"c")?;
    /// let keys: Vec<Vec<u8>> = tree
    ///     .range(&b"b"[..]..)?
    ///     .map(|entry| entry.map(|(key, _)| key))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(keys, vec![b"b".to_vec(), b"bb".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn range<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(
        &self,
        range: R,
    ) -> Result<WriteRange<'t, S>> {
        let range = KeyRange::from_bounds(&range).under(&self.prefix);
        self.txn.wait_for_lock(&self.tree_name(), &range)?;
        let state = self.state()?;
        let local = &state.locals[self.local as usize];
        let base = local.base.clone();
        let cleared = local.cleared.clone();
        let recorder = base.as_ref().map(|(base, _)| Recorder {
            txn: self.txn,
            tree: base.clone(),
            revision: state.begin,
        });
        let pending = state
            .arena
            .entries(self.local, &range)
            .into_iter()
            .map(|(key, value)| (key, value.map(|value| PageSlice::copy_from_slice(&value))))
            .collect();
        let sources = Sources {
            base: base.map(|(_, version)| (state.reader.pager().clone(), version)),
            cleared,
            spill: state
                .spill
                .as_ref()
                .map(|spill| (spill.reader(), self.local)),
            pending,
        };
        drop(state);
        Ok(WriteRange::new(sources, recorder, range, self.prefix.len()))
    }

    /// Every entry, with this transaction's writes, in key order.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// tree.insert(b"b", b"2")?;
    /// tree.insert(b"a", b"1")?;
    /// let keys: Vec<Vec<u8>> = tree
    ///     .iter()?
    ///     .map(|entry| entry.map(|(key, _)| key))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn iter(&self) -> Result<WriteRange<'t, S>> {
        self.range::<[u8], _>(..)
    }

    /// Sets `key` to `value`. A blind write: it never causes a conflict by itself.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// tree.insert(b"k", b"first")?;
    /// tree.insert(b"k", b"second")?; // replaces
    /// assert_eq!(tree.get(b"k")?.as_deref(), Some(&b"second"[..]));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<()> {
        if value.len() > VALUE_BYTES_MAX {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: VALUE_BYTES_MAX,
            });
        }
        self.write(key, Some(value))
    }

    /// Removes `key` (nothing happens if it is absent). A blind write.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// # txn.commit()?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// tree.remove(b"k")?;
    /// tree.remove(b"absent")?;
    /// assert!(tree.get(b"k")?.is_none());
    /// txn.commit()?;
    /// assert!(db.begin_read().open_tree(b"t")?.is_empty()?);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn remove(&self, key: &[u8]) -> Result<()> {
        self.write(key, None)
    }

    fn write(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let key = self.key(key)?;
        // No lock held anywhere is the usual case: then the name and the point range
        // the lock check would take are not built (two allocations per write).
        if !self.txn.db.inner.locks.is_idle() {
            self.txn
                .wait_for_lock(&self.tree_name(), &KeyRange::point(&key))?;
        }
        let mut state = self.state()?;
        // A full arena spills before the write, so a failed spill leaves the write
        // undone (and the arena as it was) rather than done but reported as failed.
        if state.arena.bytes() > self.txn.db.inner.options.spill_bytes {
            let inner = &self.txn.db.inner;
            let state = &mut *state;
            if state.spill.is_none() {
                let page_size = inner.engine.pager().limits().page_size_bytes;
                state.spill = Some(Spill::create(&inner.scratch_dir, page_size)?);
            }
            if let Some(spill) = &state.spill {
                spill.absorb(&mut state.arena)?;
            }
        }
        state.arena.put(self.local, &key, value);
        state.locals[self.local as usize].written.insert_key(&key);
        Ok(())
    }

    /// Removes every key in `range` with one message, whatever the number of keys.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # for key in [b"a", b"b", b"c", b"d"] { txn.open_tree(b"t")?.insert(key, b"")?; }
    /// # txn.commit()?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.remove_range(&b"b"[..]..&b"d"[..])?;
    /// txn.commit()?;
    /// let read = db.begin_read();
    /// let tree = read.open_tree(b"t")?;
    /// let keys: Vec<Vec<u8>> = tree
    ///     .iter()
    ///     .map(|entry| entry.map(|(key, _)| key))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(keys, vec![b"a".to_vec(), b"d".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn remove_range<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        let range = KeyRange::from_bounds(&range).under(&self.prefix);
        let max = self.txn.db.inner.engine.pager().limits().key_bytes_max;
        for bound in [&range.start, &range.end] {
            if let std::ops::Bound::Included(key) | std::ops::Bound::Excluded(key) = bound
                && key.len() > max
            {
                return Err(Error::KeyTooLarge {
                    len: key.len(),
                    max,
                });
            }
        }
        if range.is_empty() {
            return Ok(());
        }
        self.txn.wait_for_lock(&self.tree_name(), &range)?;
        let mut state = self.state()?;
        // The spill first: if it fails, nothing of the removal is done.
        if let Some(spill) = &state.spill {
            spill.remove_range(self.local, &range)?;
        }
        state.arena.remove_range(self.local, &range);
        let local = &mut state.locals[self.local as usize];
        local.written.insert_range(range.clone());
        local.cleared.push(range);
        Ok(())
    }

    /// Whether the tree (or view) holds no entry, with this transaction's writes.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// assert!(tree.is_empty()?);
    /// tree.insert(b"k", b"v")?;
    /// assert!(!tree.is_empty()?);
    /// tree.remove(b"k")?;
    /// assert!(tree.is_empty()?);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.iter()?.next().transpose()?.is_none())
    }

    /// A view of the keys under `prefix`, with keys relative to it.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// let users = tree.prefix(b"user/");
    /// users.insert(b"ann", b"1")?;
    /// tree.insert(b"other", b"2")?;
    /// assert_eq!(tree.get(b"user/ann")?.as_deref(), Some(&b"1"[..]));
    /// let keys: Vec<Vec<u8>> = users
    ///     .iter()?
    ///     .map(|entry| entry.map(|(key, _)| key))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(keys, vec![b"ann".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn prefix(&self, prefix: &[u8]) -> WriteTree<'t, S> {
        WriteTree {
            txn: self.txn,
            local: self.local,
            name: self.name.clone(),
            prefix: [self.prefix.as_slice(), prefix].concat(),
        }
    }
}
