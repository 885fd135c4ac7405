//! The database handle: opening, the two kinds of transaction, and the committer that
//! validates and applies write transactions one at a time, in batches sharing a sync.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use thunderhead_core::{Durability, Engine, EngineReport, TREE_NAME_BYTES_MAX};
use thunderhead_disk::{FileStore, MemStore, PageStore};

use crate::error::{Error, Result};
use crate::footprint::Footprint;
use crate::locks::Locks;
use crate::options::Options;
use crate::queue::GroupCommit;
use crate::read::ReadTransaction;
use crate::store::Store;
use crate::write::{CommitRequest, WriteTransaction};

/// An open database: a cheap, clonable, `Send + Sync` handle. Clones share everything;
/// the file closes when the last handle (and transaction) is gone.
///
/// ```
/// use thunderhead_tx::{Database, Options};
///
/// let dir = std::env::temp_dir().join(format!("thunderhead-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("example.th");
/// # let _ = std::fs::remove_file(&path);
/// let db = Database::create(&path, Options::default())?;
/// let txn = db.begin_write()?;
/// txn.open_tree(b"users")?.insert(b"ann", b"admin")?;
/// let revision = txn.commit()?;
/// drop(db);
///
/// let db = Database::open(&path, Options::default())?;
/// assert_eq!(db.revision(), revision);
/// let read = db.begin_read();
/// assert_eq!(read.open_tree(b"users")?.get(b"ann")?.as_deref(), Some(&b"admin"[..]));
/// # drop(read); drop(db); std::fs::remove_file(&path)?; std::fs::remove_dir(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Database<S: PageStore + 'static = Store> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S: PageStore + 'static> Clone for Database<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct Inner<S: PageStore + 'static> {
    pub engine: Engine<S>,
    pub options: Options,
    /// Where write transactions spill.
    pub scratch_dir: PathBuf,
    pub history: Mutex<History>,
    pub queue: GroupCommit<Request<S>, Result<u64>>,
    /// Wakes those waiting for a commit (the change feed).
    pub commits: crate::commits::Commits,
    pub locks: Locks,
    pub next_transaction: AtomicU64,
}

/// What the committer does, one at a time: every change of revision goes through it, so
/// the revision a transaction is logged at before it applies is the one it gets.
pub(crate) enum Request<S: PageStore> {
    /// A write transaction.
    Commit(Box<CommitRequest<S>>),
    /// Creates (or drops) a named snapshot of the latest revision: one commit that
    /// writes only the catalog, made durable with the batch.
    Snapshot { name: Vec<u8>, create: bool },
    /// [`Database::compact`].
    Compact,
}

impl<S: PageStore + 'static> Request<S> {
    fn wants_sync(&self) -> bool {
        match self {
            Request::Commit(request) => request.durability == Durability::Immediate,
            Request::Snapshot { .. } => true,
            // It syncs by itself.
            Request::Compact => false,
        }
    }

    fn apply(self, db: &Database<S>) -> Result<u64> {
        let engine = &db.inner.engine;
        match self {
            Request::Commit(request) => request.apply(db),
            Request::Snapshot { name, create } => {
                let mut writer = engine.begin_write()?;
                let revision = if create {
                    writer.create_snapshot(&name)?
                } else {
                    writer.drop_snapshot(&name)?;
                    writer.revision()
                };
                writer.commit(Durability::Eventual)?;
                Ok(revision)
            }
            Request::Compact => Ok(engine.compact()?),
        }
    }
}

/// What the committer remembers to validate transactions still open.
#[derive(Default)]
pub(crate) struct History {
    /// Write footprints of recent commits by revision, oldest first.
    pub log: VecDeque<(u64, Arc<Footprint>)>,
    /// Revisions open write transactions began at, with counts.
    pub active: BTreeMap<u64, usize>,
}

impl History {
    /// The first conflict between `reads` and what was committed after `since`.
    pub fn conflict(&self, reads: &Footprint, since: u64) -> Option<String> {
        self.log
            .iter()
            .filter(|(revision, _)| *revision > since)
            .find_map(|(revision, written)| {
                reads
                    .conflict_with(written)
                    .map(|reason| format!("{reason} by the commit of revision {revision}"))
            })
    }

    pub fn begin(&mut self, revision: u64) {
        *self.active.entry(revision).or_default() += 1;
    }

    pub fn end(&mut self, revision: u64) {
        if let Some(count) = self.active.get_mut(&revision) {
            *count -= 1;
            if *count == 0 {
                self.active.remove(&revision);
            }
        }
        self.trim();
    }

    /// Forgets the commits no open transaction can conflict with.
    pub fn trim(&mut self) {
        let oldest = self.active.keys().next().copied().unwrap_or(u64::MAX);
        while self
            .log
            .front()
            .is_some_and(|(revision, _)| *revision <= oldest)
        {
            self.log.pop_front();
        }
    }
}

/// The names users may give trees: 1 to 255 bytes (the empty name is the engine's own).
pub(crate) fn check_tree_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > TREE_NAME_BYTES_MAX {
        return Err(Error::InvalidTreeName {
            reason: format!(
                "a tree name has 1 to {TREE_NAME_BYTES_MAX} bytes, not {}",
                name.len()
            ),
        });
    }
    Ok(())
}

fn check_options(options: &Options) -> Result<()> {
    if options.spill_bytes == 0 {
        return Err(Error::InvalidOptions("spill_bytes must be positive".into()));
    }
    Ok(())
}

impl Database<Store> {
    /// Creates a new database file at `path` (an existing file is an error).
    ///
    /// ```
    /// use thunderhead_tx::{Database, Error, Options};
    ///
    /// let name = format!("thunderhead-doc-create-{}.th", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let db = Database::create(&path, Options::default())?;
    /// assert_eq!(db.revision(), 0);
    /// assert!(matches!(Database::create(&path, Options::default()), Err(Error::Io(_))));
    /// # drop(db); std::fs::remove_file(&path)?;
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn create(path: impl AsRef<Path>, options: Options) -> Result<Self> {
        check_options(&options)?;
        let path = path.as_ref();
        if path.exists() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists", path.display()),
            )));
        }
        let store = FileStore::create(path, options.page_size)?;
        let engine = Engine::create(Store::File(store), &options.tree_config())?;
        Ok(Self::assemble(engine, options, scratch_dir_of(path)))
    }

    /// Opens the database file at `path`, recovering the last commit a crash left whole.
    ///
    /// The file keeps the page size it was created with, whatever `options` say:
    ///
    /// ```
    /// use thunderhead_tx::{Database, Options};
    ///
    /// let name = format!("thunderhead-doc-open-{}.th", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// drop(Database::create(&path, Options { page_size: 4096, ..Options::default() })?);
    /// let db = Database::open(&path, Options::default())?;
    /// assert_eq!(db.engine().pager().limits().page_size_bytes, 4096);
    /// # drop(db); std::fs::remove_file(&path)?;
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Self> {
        check_options(&options)?;
        let path = path.as_ref();
        let store = FileStore::open(path)?;
        let engine = Engine::open(Store::File(store), &options.tree_config())?;
        Ok(Self::assemble(engine, options, scratch_dir_of(path)))
    }

    /// Opens the database at `path`, creating it if there is no file there.
    ///
    /// ```
    /// use thunderhead_tx::{Database, Options};
    ///
    /// let name = format!("thunderhead-doc-open-or-create-{}.th", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// # let _ = std::fs::remove_file(&path);
    /// let db = Database::open_or_create(&path, Options::default())?; // creates
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// drop(db);
    /// let db = Database::open_or_create(&path, Options::default())?; // opens
    /// assert_eq!(db.begin_read().list_trees()?, vec![b"t".to_vec()]);
    /// # drop(db); std::fs::remove_file(&path)?;
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn open_or_create(path: impl AsRef<Path>, options: Options) -> Result<Self> {
        if path.as_ref().exists() {
            Self::open(path, options)
        } else {
            Self::create(path, options)
        }
    }

    /// A database in memory, gone when the last handle is dropped.
    ///
    /// ```
    /// use thunderhead_tx::{Database, Options};
    ///
    /// let db = Database::in_memory(Options::default())?;
    /// assert_eq!(db.revision(), 0);
    /// assert!(db.begin_read().list_trees()?.is_empty());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn in_memory(options: Options) -> Result<Self> {
        check_options(&options)?;
        let store = MemStore::new(options.page_size)?;
        let engine = Engine::create(Store::Memory(store), &options.tree_config())?;
        Ok(Self::assemble(engine, options, std::env::temp_dir()))
    }
}

fn scratch_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl<S: PageStore + 'static> Database<S> {
    /// Creates a database in an empty page store of any kind (a fault-injecting store in
    /// tests, say).
    ///
    /// ```
    /// use thunderhead_disk::MemStore;
    /// use thunderhead_tx::{Database, Options};
    ///
    /// let db = Database::create_in(MemStore::new(4096)?, Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// assert_eq!(txn.commit()?, 1);
    /// assert_eq!(db.engine().pager().limits().page_size_bytes, 4096);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn create_in(store: S, options: Options) -> Result<Self> {
        check_options(&options)?;
        let engine = Engine::create(store, &options.tree_config())?;
        Ok(Self::assemble(engine, options, std::env::temp_dir()))
    }

    /// Opens the database held in a page store of any kind, with recovery.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use thunderhead_disk::MemStore;
    /// use thunderhead_tx::{Database, Options};
    ///
    /// let store = Arc::new(MemStore::new(16384)?);
    /// let db = Database::create_in(store.clone(), Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// drop(db);
    /// let db = Database::open_in(store, Options::default())?;
    /// let read = db.begin_read();
    /// assert_eq!(read.open_tree(b"t")?.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn open_in(store: S, options: Options) -> Result<Self> {
        check_options(&options)?;
        let engine = Engine::open(store, &options.tree_config())?;
        Ok(Self::assemble(engine, options, std::env::temp_dir()))
    }

    fn assemble(engine: Engine<S>, options: Options, scratch_dir: PathBuf) -> Self {
        let latest = engine.revision();
        Self {
            inner: Arc::new(Inner {
                engine,
                options,
                scratch_dir,
                history: Mutex::new(History::default()),
                queue: GroupCommit::default(),
                commits: crate::commits::Commits::new(latest),
                locks: Locks::default(),
                next_transaction: AtomicU64::new(1),
            }),
        }
    }

    /// The latest committed revision (0 for a new database; every commit adds one).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// assert_eq!(db.revision(), 0);
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// assert_eq!(txn.commit()?, 1);
    /// assert_eq!(db.revision(), 1);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn revision(&self) -> u64 {
        self.inner.engine.revision()
    }

    /// A read transaction of the latest commit. It never blocks and is never blocked.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let before = db.begin_read();
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// assert!(before.list_trees()?.is_empty()); // still the snapshot it began with
    /// assert_eq!(db.begin_read().list_trees()?, vec![b"t".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn begin_read(&self) -> ReadTransaction<S> {
        ReadTransaction {
            reader: self.inner.engine.begin_read(),
        }
    }

    /// A write transaction reading the latest commit. Any number may be open at once,
    /// on any threads; each is validated against what committed after it began when it
    /// commits.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let (first, second) = (db.begin_write()?, db.begin_write()?);
    /// first.open_tree(b"t")?.insert(b"a", b"1")?;
    /// second.open_tree(b"u")?.insert(b"b", b"2")?;
    /// first.commit()?;
    /// second.commit()?; // neither read what the other wrote: no conflict
    /// assert_eq!(db.begin_read().list_trees()?, vec![b"t".to_vec(), b"u".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn begin_write(&self) -> Result<WriteTransaction<S>> {
        let id = self.inner.next_transaction.fetch_add(1, Ordering::Relaxed);
        let reader = {
            let mut history = self.conflict_log();
            let reader = self.inner.engine.begin_read();
            history.begin(reader.revision());
            reader
        };
        Ok(WriteTransaction::new(self.clone(), id, reader))
    }

    /// Makes every commit so far durable (one sync).
    ///
    /// ```
    /// use thunderhead_tx::{Database, Durability, Options};
    ///
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// let revision = txn.commit_with(Durability::Eventual)?;
    /// assert!(db.engine().durable_revision() < revision);
    /// db.sync()?;
    /// assert_eq!(db.engine().durable_revision(), revision);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn sync(&self) -> Result<()> {
        Ok(self.inner.engine.sync()?)
    }

    /// Verifies every invariant of every tree of the latest commit, every checksum on
    /// the way, the reference counts of pages trees share, and the free-space
    /// accounting (every page live, free or waiting, exactly once).
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// let report = db.check()?;
    /// assert_eq!(report.revision, 1);
    /// assert!(report.trees.iter().any(|(name, _)| name == b"t"));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn check(&self) -> Result<EngineReport> {
        Ok(self.inner.engine.check()?)
    }

    /// Gives free pages at the end of the file back to the operating system.
    /// Returns the number of pages the file shrank by. It commits (durably) a version of
    /// its own, so [`revision`](Database::revision) goes up by one.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"big")?;
    /// for i in 0..1000u32 { tree.insert(&i.to_be_bytes(), &[0; 500])?; }
    /// txn.commit()?;
    /// let txn = db.begin_write()?;
    /// txn.delete_tree(b"big")?;
    /// txn.commit()?;
    /// let used = db.engine().used_pages();
    /// assert!(db.compact()? > 0);
    /// assert!(db.engine().used_pages() < used);
    /// assert_eq!(db.revision(), 3);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn compact(&self) -> Result<u64> {
        self.submit(Request::Compact)
    }

    /// The storage engine underneath, for statistics.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// assert_eq!(db.engine().revision(), db.revision());
    /// assert!(db.engine().used_pages() > 0);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn engine(&self) -> &Engine<S> {
        &self.inner.engine
    }

    pub(crate) fn conflict_log(&self) -> MutexGuard<'_, History> {
        self.inner
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Commits a batch of transactions, in order, each as its own revision, then makes
    /// the ones that asked for it durable with one sync.
    pub(crate) fn commit_batch(&self, batch: Vec<Request<S>>) -> Vec<Result<u64>> {
        let mut results: Vec<Result<u64>> = Vec::with_capacity(batch.len());
        let mut durable = Vec::new();
        for request in batch {
            let wants_sync = request.wants_sync();
            let result = request.apply(self);
            if wants_sync && result.is_ok() {
                durable.push(results.len());
            }
            results.push(result);
        }
        if !durable.is_empty()
            && let Err(error) = self.inner.engine.sync()
        {
            let error = Error::from(error);
            for index in durable {
                results[index] = Err(Error::Io(std::io::Error::other(format!(
                    "the commit may or may not be durable: {error}"
                ))));
            }
        }
        self.inner.commits.published(self.inner.engine.revision());
        results
    }

    /// Submits a request to the committer and waits for its outcome.
    pub(crate) fn submit(&self, request: Request<S>) -> Result<u64> {
        self.inner
            .queue
            .submit(request, |batch| self.commit_batch(batch))
            .unwrap_or(Err(Error::Interrupted))
    }
}
