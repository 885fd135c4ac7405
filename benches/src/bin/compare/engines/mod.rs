//! The engines of the comparison, each behind [`KvEngine`] in a small adapter of its own.
//!
//! Every adapter opens its store in a new directory with the engine's default settings;
//! the comment at the top of each adapter lists every setting it changes and why.

use std::path::Path;

mod fjall;
mod lmdb;
mod redb;
#[cfg(feature = "rocksdb")]
mod rocksdb;
mod sled;
mod thunderhead;

/// An error of an engine (or of the benchmark around it).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A result with a [`BoxError`].
pub type Result<T> = std::result::Result<T, BoxError>;

/// Whether a write transaction's commit is synced to the disk before it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Synced (each engine's documented durable commit).
    Durable,
    /// Handed to the operating system without a sync (each engine's non-durable mode).
    NoSync,
}

/// The operations of one write transaction are fed to this sink: `(key, Some(value))`
/// inserts or overwrites, `(key, None)` removes.
pub type Sink<'a> = dyn FnMut(&[u8], Option<&[u8]>) -> Result<()> + 'a;

/// What a workload feeds into one write transaction, through the sink it is given.
pub type Ops<'a> = dyn FnMut(&mut Sink<'_>) -> Result<()> + 'a;

/// One engine's store, opened for one child process. Reads take `&self` and may run on
/// several threads at once.
pub trait KvEngine: Sync {
    /// One write transaction of the operations `ops` feeds in, committed with
    /// `durability`. Nothing is applied when `ops` fails.
    fn write(&mut self, durability: Durability, ops: &mut Ops<'_>) -> Result<()>;

    /// Point gets of every key in one read transaction (where the engine has them):
    /// `(keys found, value bytes read)`.
    fn get_many(&self, keys: &mut dyn Iterator<Item = &[u8]>) -> Result<(u64, u64)>;

    /// For every start key, the first `len` entries from it onwards, in one read
    /// transaction: the entries read.
    fn ranges(&self, starts: &mut dyn Iterator<Item = &[u8]>, len: usize) -> Result<u64>;

    /// Every entry in key order: `(entries, key and value bytes)`.
    fn scan(&self) -> Result<(u64, u64)>;

    /// The version features only Thunderhead has (snapshots and diffs).
    fn versions(&mut self) -> Option<&mut dyn Versioned> {
        None
    }
}

/// Named snapshots and diffs between versions (Thunderhead only).
pub trait Versioned {
    /// Names the latest commit as a snapshot.
    fn snapshot(&mut self, name: &str) -> Result<()>;
    /// The keys that differ between the snapshot `name` and the latest commit, by the
    /// engine's own diff.
    fn diff(&mut self, name: &str) -> Result<u64>;
    /// The same count by a merge-join of full scans of both versions.
    fn naive_diff(&mut self, name: &str) -> Result<u64>;
}

/// The engines built in, in the order of the table's columns.
pub const NAMES: &[&str] = &[
    "thunderhead",
    "redb",
    "lmdb",
    "fjall",
    "sled",
    #[cfg(feature = "rocksdb")]
    "rocksdb",
];

/// The engine of the comparison, whose rows the ratio lines compare with the peers.
pub const SUBJECT: &str = "thunderhead";

/// Opens the engine `name` in the new, empty directory `dir`.
pub fn open(name: &str, dir: &Path) -> Result<Box<dyn KvEngine>> {
    Ok(match name {
        "thunderhead" => Box::new(thunderhead::Thunderhead::open(dir)?),
        "redb" => Box::new(redb::Redb::open(dir)?),
        "lmdb" => Box::new(lmdb::Lmdb::open(dir)?),
        "fjall" => Box::new(fjall::Fjall::open(dir)?),
        "sled" => Box::new(sled::Sled::open(dir)?),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Box::new(rocksdb::Rocksdb::open(dir)?),
        _ => return Err(format!("unknown engine {name:?} (built in: {NAMES:?})").into()),
    })
}
