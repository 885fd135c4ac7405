//! Read transactions: a consistent snapshot of the latest commit, read without locks.

use std::ops::RangeBounds;

use thunderhead_core::{Reader, Snapshot, ValueBytes};
use thunderhead_disk::PageStore;

use crate::database::check_tree_name;
use crate::error::{Error, Result};
use crate::keys::KeyRange;
use crate::store::Store;

/// A snapshot of the latest commit when it began. It never waits for writers and no
/// writer waits for it; while it lives, the pages of its version are not reused. It is
/// `Send` and `Sync`: several threads may read through one.
///
/// ```
/// use thunderhead_tx::{Database, Options};
///
/// let db = Database::in_memory(Options::default())?;
/// let txn = db.begin_write()?;
/// txn.open_tree(b"fruit")?.insert(b"apple", b"red")?;
/// txn.commit()?;
/// let read = db.begin_read();
/// let fruit = read.open_tree(b"fruit")?;
/// assert_eq!(fruit.get(b"apple")?.as_deref(), Some(&b"red"[..]));
/// # Ok::<(), thunderhead_tx::Error>(())
/// ```
pub struct ReadTransaction<S: PageStore = Store> {
    pub(crate) reader: Reader<S>,
}

/// Another transaction of the same revision, keeping it readable on its own.
impl<S: PageStore> Clone for ReadTransaction<S> {
    fn clone(&self) -> Self {
        Self {
            reader: self.reader.clone(),
        }
    }
}

impl<S: PageStore> ReadTransaction<S> {
    /// The revision this transaction reads.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let read = db.begin_read();
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// assert_eq!((read.revision(), db.begin_read().revision()), (0, 1));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn revision(&self) -> u64 {
        self.reader.revision()
    }

    /// When the revision read was committed.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let before = db.begin_read();
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// assert!(before.time() <= db.begin_read().time());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn time(&self) -> std::time::SystemTime {
        crate::versions::system_time(self.reader.time())
    }

    /// What changed from this transaction's version to `newer`'s (or back, if `newer`
    /// is older): every tree, in tree and key order; see [`Diff`](crate::Diff).
    ///
    /// ```
    /// use thunderhead_tx::{ChangeKind, Database, Options};
    ///
    /// let db = Database::in_memory(Options::default())?;
    /// let before = db.begin_read();
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// let changes: Vec<_> = before.diff(&db.begin_read()).collect::<Result<_, _>>()?;
    /// assert_eq!(changes.len(), 1);
    /// assert_eq!((changes[0].tree.as_slice(), changes[0].key.as_slice()), (&b"t"[..], &b"k"[..]));
    /// assert!(matches!(&changes[0].kind, ChangeKind::Added(value) if &value[..] == b"v"));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn diff(&self, newer: &ReadTransaction<S>) -> crate::Diff<S> {
        crate::Diff::new(self.clone(), newer.clone(), None)
    }

    /// The named tree as of this transaction's revision ([`Error::TreeNotFound`] if it
    /// did not exist).
    ///
    /// ```
    /// use thunderhead_tx::{Database, Error, Options};
    ///
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"t")?.insert(b"k", b"v")?;
    /// txn.commit()?;
    /// let read = db.begin_read();
    /// assert_eq!(read.open_tree(b"t")?.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(matches!(read.open_tree(b"missing"), Err(Error::TreeNotFound { .. })));
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn open_tree(&self, name: &[u8]) -> Result<ReadTree<'_, S>> {
        check_tree_name(name)?;
        let snapshot = self.reader.tree(name)?.ok_or_else(|| Error::TreeNotFound {
            name: name.to_vec(),
        })?;
        Ok(ReadTree {
            snapshot,
            prefix: Vec::new(),
            _txn: std::marker::PhantomData,
        })
    }

    /// The names of every tree, in byte order.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// let db = Database::in_memory(Options::default())?;
    /// let txn = db.begin_write()?;
    /// txn.open_tree(b"users")?;
    /// txn.open_tree(b"orders")?;
    /// txn.commit()?;
    /// let names = db.begin_read().list_trees()?;
    /// assert_eq!(names, vec![b"orders".to_vec(), b"users".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn list_trees(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .reader
            .tree_names()?
            .into_iter()
            .filter(|name| !name.is_empty())
            .collect())
    }
}

/// One tree of a [`ReadTransaction`], or a subtree view of it ([`ReadTree::prefix`]).
///
/// ```
/// # use thunderhead_tx::{Database, Options};
/// let db = Database::in_memory(Options::default())?;
/// let txn = db.begin_write()?;
/// txn.open_tree(b"colors")?.insert(b"sky", b"blue")?;
/// txn.commit()?;
/// let read = db.begin_read();
/// let colors = read.open_tree(b"colors")?;
/// assert_eq!(colors.first()?.map(|(key, _)| key), Some(b"sky".to_vec()));
/// # Ok::<(), thunderhead_tx::Error>(())
/// ```
pub struct ReadTree<'t, S: PageStore = Store> {
    snapshot: Snapshot<S>,
    prefix: Vec<u8>,
    _txn: std::marker::PhantomData<&'t ReadTransaction<S>>,
}

impl<'t, S: PageStore> ReadTree<'t, S> {
    /// The value of `key`, if present.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # txn.open_tree(b"t")?.insert(b"a", b"1")?;
    /// # txn.commit()?;
    /// let read = db.begin_read();
    /// let tree = read.open_tree(b"t")?;
    /// assert_eq!(tree.get(b"a")?.as_deref(), Some(&b"1"[..]));
    /// assert!(tree.get(b"b")?.is_none());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn get(&self, key: &[u8]) -> Result<Option<ValueBytes>> {
        // Most trees are read without a prefix view: no copy of the key then.
        let key = if self.prefix.is_empty() {
            std::borrow::Cow::Borrowed(key)
        } else {
            std::borrow::Cow::Owned([self.prefix.as_slice(), key].concat())
        };
        // As for writes: a key no tree can hold is a mistake worth reporting.
        let max = self.snapshot.pager().limits().key_bytes_max;
        if key.len() > max {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max,
            });
        }
        Ok(self.snapshot.get(&key)?)
    }

    /// The entries with keys in `range`, in key order; `.rev()` gives reverse order.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # let tree = txn.open_tree(b"t")?;
    /// # for key in [b"a", b"b", b"c"] { tree.insert(key, b"")?; }
    /// # txn.commit()?;
    /// let read = db.begin_read();
    /// let tree = read.open_tree(b"t")?;
    /// let keys: Vec<Vec<u8>> = tree
    ///     .range(&b"b"[..]..)
    ///     .rev()
    ///     .map(|entry| entry.map(|(key, _)| key))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(keys, vec![b"c".to_vec(), b"b".to_vec()]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn range<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K>>(&self, range: R) -> Range<'_, S> {
        let range = KeyRange::from_bounds(&range).under(&self.prefix);
        Range {
            inner: self.snapshot.range::<[u8], _>(range.as_refs()),
            strip: self.prefix.len(),
        }
    }

    /// Every entry, in key order.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # let tree = txn.open_tree(b"t")?;
    /// # for (key, value) in [(b"b", b"2"), (b"a", b"1")] { tree.insert(key, value)?; }
    /// # txn.commit()?;
    /// let read = db.begin_read();
    /// let entries: Vec<(Vec<u8>, Vec<u8>)> = read
    ///     .open_tree(b"t")?
    ///     .iter()
    ///     .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(entries, vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn iter(&self) -> Range<'_, S> {
        self.range::<[u8], _>(..)
    }

    /// Whether the tree (or view) holds no entry.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # txn.open_tree(b"empty")?;
    /// # txn.open_tree(b"t")?.insert(b"user/ann", b"1")?;
    /// # txn.commit()?;
    /// let read = db.begin_read();
    /// assert!(read.open_tree(b"empty")?.is_empty()?);
    /// let tree = read.open_tree(b"t")?;
    /// assert!(!tree.is_empty()?);
    /// assert!(tree.prefix(b"group/").is_empty()?);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.iter().next().transpose()?.is_none())
    }

    /// The first entry, if any.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # let tree = txn.open_tree(b"t")?;
    /// # for key in [b"b", b"a", b"c"] { tree.insert(key, b"")?; }
    /// # txn.commit()?;
    /// let read = db.begin_read();
    /// let (key, _) = read.open_tree(b"t")?.first()?.expect("not empty");
    /// assert_eq!(key, b"a");
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn first(&self) -> Result<Option<(Vec<u8>, ValueBytes)>> {
        self.iter().next().transpose()
    }

    /// The last entry, if any.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # let tree = txn.open_tree(b"t")?;
    /// # for key in [b"b", b"a", b"c"] { tree.insert(key, b"")?; }
    /// # tree.insert(b"x/1", b"")?;
    /// # txn.commit()?;
    /// let read = db.begin_read();
    /// let tree = read.open_tree(b"t")?;
    /// assert_eq!(tree.last()?.map(|(key, _)| key), Some(b"x/1".to_vec()));
    /// assert!(tree.prefix(b"y/").last()?.is_none());
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn last(&self) -> Result<Option<(Vec<u8>, ValueBytes)>> {
        self.iter().next_back().transpose()
    }

    /// A view of the keys under `prefix`, with keys relative to it.
    ///
    /// ```
    /// # use thunderhead_tx::{Database, Options};
    /// # let db = Database::in_memory(Options::default())?;
    /// # let txn = db.begin_write()?;
    /// # let tree = txn.open_tree(b"t")?;
    /// # tree.insert(b"user/ann", b"1")?;
    /// # tree.insert(b"users", b"2")?;
    /// # txn.commit()?;
    /// let read = db.begin_read();
    /// let users = read.open_tree(b"t")?.prefix(b"user/");
    /// assert_eq!(users.get(b"ann")?.as_deref(), Some(&b"1"[..]));
    /// assert_eq!(users.iter().count(), 1);
    /// # Ok::<(), thunderhead_tx::Error>(())
    /// ```
    pub fn prefix(&self, prefix: &[u8]) -> ReadTree<'t, S> {
        ReadTree {
            snapshot: Snapshot::new(self.snapshot_pager(), self.snapshot.version()),
            prefix: [self.prefix.as_slice(), prefix].concat(),
            _txn: std::marker::PhantomData,
        }
    }

    fn snapshot_pager(&self) -> std::sync::Arc<thunderhead_core::Pager<S>> {
        self.snapshot.pager().clone()
    }
}

/// Entries of a [`ReadTree`] in a range: each a key (relative to the view's prefix) and
/// its value, or an error. It iterates from either end.
///
/// ```
/// # use thunderhead_tx::{Database, Options};
/// # let db = Database::in_memory(Options::default())?;
/// # let txn = db.begin_write()?;
/// # let tree = txn.open_tree(b"t")?;
/// # for key in [b"a", b"b", b"c", b"d"] { tree.insert(key, key)?; }
/// # txn.commit()?;
/// let read = db.begin_read();
/// let tree = read.open_tree(b"t")?;
/// let mut range = tree.range(&b"b"[..]..=&b"d"[..]);
/// assert_eq!(range.next().transpose()?.map(|(key, _)| key), Some(b"b".to_vec()));
/// assert_eq!(range.next_back().transpose()?.map(|(key, _)| key), Some(b"d".to_vec()));
/// assert_eq!(range.count(), 1);
/// # Ok::<(), thunderhead_tx::Error>(())
/// ```
pub struct Range<'a, S: PageStore = Store> {
    inner: thunderhead_core::Range<'a, S>,
    strip: usize,
}

impl<S: PageStore> Iterator for Range<'_, S> {
    type Item = Result<(Vec<u8>, ValueBytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        let strip = self.strip;
        self.inner.next().map(|entry| {
            let (mut key, value) = entry?;
            key.drain(..strip);
            Ok((key, value))
        })
    }
}

impl<S: PageStore> DoubleEndedIterator for Range<'_, S> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let strip = self.strip;
        self.inner.next_back().map(|entry| {
            let (mut key, value) = entry?;
            key.drain(..strip);
            Ok((key, value))
        })
    }
}
