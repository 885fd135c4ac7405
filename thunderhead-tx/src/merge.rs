//! A write transaction's view of a range: its pending writes (arena and spill) merged
//! over its snapshot of the tree, in key order from either end.
//!
//! The iterator owns what it reads from and holds no lock; it borrows the transaction
//! only to note what it reads, so the transaction may go on writing while it runs (it
//! sees the transaction as it was when the range was asked for). It works in chunks:
//! each step reads up to a chunk of entries from the snapshot and from the spill, merges
//! every key up to the last one both could vouch for, notes that span as read, and
//! narrows the remaining range past it. A transaction that stops early has read only
//! what it was shown.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use thunderhead_core::{Pager, Reader, Snapshot, ValueBytes, Version};
use thunderhead_disk::{FileStore, PageStore};

use crate::error::{Error, Result};
use crate::keys::KeyRange;
use crate::spill::{Spilled, spilled_chunk};
use crate::store::Store;
use crate::write::WriteTransaction;

const CHUNK: usize = 256;

/// What a merged range reads from.
pub(crate) struct Sources<S: PageStore> {
    /// The committed tree the transaction started from, if any.
    pub base: Option<(Arc<Pager<S>>, Version)>,
    /// The ranges the transaction removed from it.
    pub cleared: Vec<KeyRange>,
    /// Spilled writes: the scratch store's reader and the tree's id there.
    pub spill: Option<(Reader<FileStore>, u32)>,
    /// In-memory pending writes within the range.
    pub pending: BTreeMap<Vec<u8>, Option<ValueBytes>>,
}

/// Where a range notes what it read of the committed tree: the transaction, the base
/// tree's name, and the revision the range reads (the transaction may move on to a
/// newer one while it runs, by waiting for a lock).
pub(crate) struct Recorder<'t, S: PageStore + 'static> {
    pub txn: &'t WriteTransaction<S>,
    pub tree: Vec<u8>,
    pub revision: u64,
}

/// Entries of a write transaction's tree in a range, with its pending writes, from
/// either end. It holds the transaction's writes as they were when it was made.
///
/// ```
/// # use thunderhead_tx::{Database, Options};
/// let db = Database::in_memory(Options::default())?;
/// let txn = db.begin_write()?;
/// let tree = txn.open_tree(b"t")?;
/// for key in [b"a", b"b", b"c"] { tree.insert(key, b"")?; }
/// let mut range = tree.iter()?;
/// tree.insert(b"d", b"")?; // not seen by `range`
/// assert_eq!(range.next_back().transpose()?.map(|(key, _)| key), Some(b"c".to_vec()));
/// assert_eq!(range.count(), 2);
/// # Ok::<(), thunderhead_tx::Error>(())
/// ```
pub struct WriteRange<'t, S: PageStore + 'static = Store> {
    sources: Sources<S>,
    /// Notes each span as it is read, so a transaction that stops early has read (and
    /// can conflict on) only what it saw.
    recorder: Option<Recorder<'t, S>>,
    base: Option<Snapshot<S>>,
    /// What is left to read: neither end's buffer holds anything in it.
    rest: KeyRange,
    exhausted: bool,
    front: VecDeque<(Vec<u8>, ValueBytes)>,
    /// In descending key order.
    back: VecDeque<(Vec<u8>, ValueBytes)>,
    /// A view's prefix, stripped from the keys handed out.
    strip: usize,
    failed: bool,
}

impl<'t, S: PageStore + 'static> WriteRange<'t, S> {
    pub(crate) fn new(
        sources: Sources<S>,
        recorder: Option<Recorder<'t, S>>,
        range: KeyRange,
        strip: usize,
    ) -> Self {
        let base = sources
            .base
            .as_ref()
            .map(|(pager, version)| Snapshot::new(pager.clone(), *version));
        let exhausted = range.is_empty();
        Self {
            sources,
            recorder,
            base,
            rest: range,
            exhausted,
            front: VecDeque::new(),
            back: VecDeque::new(),
            strip,
            failed: false,
        }
    }

    /// Reads the next chunk from one end into that end's buffer.
    fn fill(&mut self, forward: bool) -> Result<()> {
        while !self.exhausted {
            if let Some(recorder) = &self.recorder
                && recorder.txn.revision() != recorder.revision
            {
                return Err(Error::Conflict {
                    reason: "the transaction moved on to a newer commit (it waited for a \
                             lock) while this range was being read"
                        .into(),
                });
            }
            let base: Vec<(Vec<u8>, ValueBytes)> = match &self.base {
                Some(snapshot) => {
                    let mut range = snapshot.range::<[u8], _>(self.rest.as_refs());
                    let mut chunk = Vec::new();
                    while chunk.len() < CHUNK {
                        let next = if forward {
                            range.next()
                        } else {
                            range.next_back()
                        };
                        match next {
                            Some(entry) => chunk.push(entry?),
                            None => break,
                        }
                    }
                    chunk
                }
                None => Vec::new(),
            };
            let spilled: Vec<(Vec<u8>, Spilled)> = match &self.sources.spill {
                Some((reader, tree)) => spilled_chunk(reader, *tree, &self.rest, forward, CHUNK)?,
                None => Vec::new(),
            };
            // The furthest key both truncated sources have fully covered.
            let mut limit: Option<Vec<u8>> = None;
            for last in [
                (base.len() == CHUNK).then(|| base.last().map(|(key, _)| key.clone())),
                (spilled.len() == CHUNK).then(|| spilled.last().map(|(key, _)| key.clone())),
            ]
            .into_iter()
            .flatten()
            .flatten()
            {
                limit = Some(match limit {
                    None => last,
                    Some(current) if forward => current.min(last),
                    Some(current) => current.max(last),
                });
            }
            let span = match &limit {
                None => self.rest.clone(),
                Some(limit) if forward => KeyRange {
                    start: self.rest.start.clone(),
                    end: Bound::Included(limit.clone()),
                },
                Some(limit) => KeyRange {
                    start: Bound::Included(limit.clone()),
                    end: self.rest.end.clone(),
                },
            };
            if let Some(recorder) = &self.recorder {
                recorder.txn.record_read(&recorder.tree, span.clone());
            }
            let mut merged: BTreeMap<Vec<u8>, Option<ValueBytes>> = BTreeMap::new();
            for (key, value) in base {
                if span.contains(&key)
                    && !self
                        .sources
                        .cleared
                        .iter()
                        .any(|range| range.contains(&key))
                {
                    merged.insert(key, Some(value));
                }
            }
            for (key, value) in spilled {
                if span.contains(&key) {
                    merged.insert(key, value);
                }
            }
            for (key, value) in self.sources.pending.range::<[u8], _>(span.as_refs()) {
                merged.insert(key.clone(), value.clone());
            }
            let live = merged
                .into_iter()
                .filter_map(|(key, value)| value.map(|value| (key, value)));
            if forward {
                self.front.extend(live);
            } else {
                self.back.extend(live.rev());
            }
            match limit {
                None => self.exhausted = true,
                Some(limit) if forward => self.rest.start = Bound::Excluded(limit),
                Some(limit) => self.rest.end = Bound::Excluded(limit),
            }
            if self.rest.is_empty() {
                self.exhausted = true;
            }
            let filled = if forward { &self.front } else { &self.back };
            if !filled.is_empty() {
                break;
            }
        }
        Ok(())
    }

    fn step(&mut self, forward: bool) -> Option<Result<(Vec<u8>, ValueBytes)>> {
        if self.failed {
            return None;
        }
        let buffered = if forward { &self.front } else { &self.back };
        if buffered.is_empty()
            && let Err(error) = self.fill(forward)
        {
            self.failed = true;
            return Some(Err(error));
        }
        let next = if forward {
            self.front.pop_front().or_else(|| self.back.pop_back())
        } else {
            self.back.pop_front().or_else(|| self.front.pop_back())
        };
        next.map(|(mut key, value)| {
            key.drain(..self.strip);
            Ok((key, value))
        })
    }
}

impl<S: PageStore + 'static> Iterator for WriteRange<'_, S> {
    type Item = Result<(Vec<u8>, ValueBytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(true)
    }
}

impl<S: PageStore + 'static> DoubleEndedIterator for WriteRange<'_, S> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(false)
    }
}
