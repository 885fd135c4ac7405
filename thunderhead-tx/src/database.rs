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
/// # drop(read); drop(db); std::fs::remove_file(&path)?;
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
    pub queue: GroupCommit<CommitRequest<S>, Result<u64>>,
    pub locks: Locks,
    pub next_transaction: AtomicU64,
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
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Self> {
        check_options(&options)?;
        let path = path.as_ref();
        let store = FileStore::open(path)?;
        let engine = Engine::open(Store::File(store), &options.tree_config())?;
        Ok(Self::assemble(engine, options, scratch_dir_of(path)))
    }

    /// Opens the database at `path`, creating it if there is no file there.
    pub fn open_or_create(path: impl AsRef<Path>, options: Options) -> Result<Self> {
        if path.as_ref().exists() {
            Self::open(path, options)
        } else {
            Self::create(path, options)
        }
    }

    /// A database in memory, gone when the last handle is dropped.
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
    pub fn create_in(store: S, options: Options) -> Result<Self> {
        check_options(&options)?;
        let engine = Engine::create(store, &options.tree_config())?;
        Ok(Self::assemble(engine, options, std::env::temp_dir()))
    }

    /// Opens the database held in a page store of any kind, with recovery.
    pub fn open_in(store: S, options: Options) -> Result<Self> {
        check_options(&options)?;
        let engine = Engine::open(store, &options.tree_config())?;
        Ok(Self::assemble(engine, options, std::env::temp_dir()))
    }

    fn assemble(engine: Engine<S>, options: Options, scratch_dir: PathBuf) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine,
                options,
                scratch_dir,
                history: Mutex::new(History::default()),
                queue: GroupCommit::default(),
                locks: Locks::default(),
                next_transaction: AtomicU64::new(1),
            }),
        }
    }

    /// The latest committed revision (0 for a new database; every commit adds one).
    pub fn revision(&self) -> u64 {
        self.inner.engine.revision()
    }

    /// A read transaction of the latest commit. It never blocks and is never blocked.
    pub fn begin_read(&self) -> ReadTransaction<S> {
        ReadTransaction {
            reader: self.inner.engine.begin_read(),
        }
    }

    /// A write transaction reading the latest commit. Any number may be open at once,
    /// on any threads; each is validated against what committed after it began when it
    /// commits.
    pub fn begin_write(&self) -> Result<WriteTransaction<S>> {
        let id = self.inner.next_transaction.fetch_add(1, Ordering::Relaxed);
        let reader = {
            let mut history = self.history();
            let reader = self.inner.engine.begin_read();
            history.begin(reader.revision());
            reader
        };
        Ok(WriteTransaction::new(self.clone(), id, reader))
    }

    /// Makes every commit so far durable (one sync).
    pub fn sync(&self) -> Result<()> {
        Ok(self.inner.engine.sync()?)
    }

    /// Verifies every invariant of every tree of the latest commit, every checksum on
    /// the way, the reference counts of pages trees share, and the free-space
    /// accounting (every page live, free or waiting, exactly once).
    pub fn check(&self) -> Result<EngineReport> {
        Ok(self.inner.engine.check()?)
    }

    /// Gives free pages at the end of the file back to the operating system.
    pub fn compact(&self) -> Result<u64> {
        Ok(self.inner.engine.compact()?)
    }

    /// The storage engine underneath, for statistics.
    pub fn engine(&self) -> &Engine<S> {
        &self.inner.engine
    }

    pub(crate) fn history(&self) -> MutexGuard<'_, History> {
        self.inner
            .history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Commits a batch of transactions, in order, each as its own revision, then makes
    /// the ones that asked for it durable with one sync.
    pub(crate) fn commit_batch(&self, batch: Vec<CommitRequest<S>>) -> Vec<Result<u64>> {
        let mut results: Vec<Result<u64>> = Vec::with_capacity(batch.len());
        let mut durable = Vec::new();
        for request in batch {
            let wants_sync = request.durability == Durability::Immediate;
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
        results
    }

    /// Submits a transaction to the committer and waits for its outcome.
    pub(crate) fn submit(&self, request: CommitRequest<S>) -> Result<u64> {
        self.inner
            .queue
            .submit(request, |batch| self.commit_batch(batch))
            .unwrap_or(Err(Error::Interrupted))
    }
}
