//! How a database is opened and how its transactions behave.

use std::time::Duration;

use thunderhead_core::{Clock, Durability, Retention};

/// Settings of a [`Database`](crate::Database). `Options::default()` is what most
/// users want; fields can be set directly.
///
/// ```
/// use std::time::Duration;
/// use thunderhead_tx::{Durability, Options};
///
/// let options = Options {
///     durability: Durability::Eventual,
///     lock_timeout: Duration::from_millis(200),
///     ..Options::default()
/// };
/// assert_eq!(options.page_size, 16384);
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// How [`WriteTransaction::commit`](crate::WriteTransaction::commit) makes a commit
    /// durable: `Immediate` (one sync, shared by the transactions committing at the same
    /// moment) or `Eventual` (no sync; a crash may lose it, never corrupt the file).
    pub durability: Durability,
    /// Page size of a new database: a power of two from 4 KiB to 64 KiB. An existing
    /// database keeps the page size it was created with.
    pub page_size: usize,
    /// Bytes of decoded pages kept in memory.
    pub cache_bytes: usize,
    /// Bytes of pending messages a node's journal holds before it flushes to a child.
    pub journal_bytes: usize,
    /// Bytes a write transaction keeps in memory before it moves its pending writes to a
    /// scratch file (so a transaction of any size runs in bounded memory). The default,
    /// 256 MiB, lets a load of a million redb-shaped rows commit without spilling
    /// (spilling costs it 40%: each write goes through the scratch tree and back); LMDB
    /// keeps up to 512 MiB of dirty pages before it spills, redb all of them.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options { spill_bytes: 4096, ..Options::default() })?;
    /// let txn = db.begin_write()?;
    /// let tree = txn.open_tree(b"t")?;
    /// for i in 0..500u32 { tree.insert(&i.to_be_bytes(), &[1; 100])?; } // spills
    /// assert_eq!(tree.get(&7u32.to_be_bytes())?.as_deref(), Some(&[1; 100][..]));
    /// assert_eq!(tree.iter()?.count(), 500);
    /// txn.commit()?;
    /// assert_eq!(db.begin_read().open_tree(b"t")?.iter().count(), 500);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub spill_bytes: usize,
    /// How long an operation waits for a range another transaction locked.
    pub lock_timeout: Duration,
    /// Which past revisions stay readable ([`Database::begin_read_at`], diffs, the change
    /// feed): at most a number of them, and/or those superseded less than an age ago.
    /// The default keeps only the latest: history costs the pages the commits since
    /// rewrote, so it is asked for. Named snapshots are kept until dropped, whatever
    /// this says.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options, Retention};
    /// let options = Options { retain_revisions: Retention::revisions(100), ..Options::default() };
    /// let db = Database::in_memory(options)?;
    /// for value in [b"1", b"2", b"3"] {
    ///     let txn = db.begin_write()?;
    ///     txn.open_tree(b"t")?.insert(b"k", value)?;
    ///     txn.commit()?;
    /// }
    /// let then = db.begin_read_at(1)?;
    /// assert_eq!(then.open_tree(b"t")?.get(b"k")?.as_deref(), Some(&b"1"[..]));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    ///
    /// [`Database::begin_read_at`]: crate::Database::begin_read_at
    pub retain_revisions: Retention,
    /// Where commit times ([`ReadTransaction::time`], the history) come from. The system
    /// clock unless a test or a simulation needs every run to write the same bytes:
    ///
    /// ```
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # use thunderhead_tx::{Clock, Database, Options};
    /// let options = Options { clock: Clock::Fixed(1_000_000), ..Options::default() };
    /// let db = Database::in_memory(options)?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// let committed = db.history()?.last().unwrap().time;
    /// assert_eq!(committed, UNIX_EPOCH + Duration::from_secs(1)); // one second after 1970
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    ///
    /// [`ReadTransaction::time`]: crate::ReadTransaction::time
    pub clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Immediate,
            page_size: thunderhead_disk::PAGE_SIZE_DEFAULT_BYTES,
            cache_bytes: thunderhead_core::CACHE_BYTES_MAX_DEFAULT,
            journal_bytes: thunderhead_core::JOURNAL_BYTES_MAX_DEFAULT,
            spill_bytes: 256 * 1024 * 1024,
            lock_timeout: Duration::from_secs(10),
            retain_revisions: Retention::LATEST,
            clock: Clock::System,
        }
    }
}

impl Options {
    pub(crate) fn tree_config(&self) -> thunderhead_core::TreeConfig {
        thunderhead_core::TreeConfig {
            journal_bytes_max: self.journal_bytes,
            cache_bytes_max: self.cache_bytes,
            retention: self.retain_revisions,
            clock: self.clock,
            ..thunderhead_core::TreeConfig::default()
        }
    }
}
