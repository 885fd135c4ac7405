//! Where a large write transaction's pending writes go once they pass
//! [`Options::spill_bytes`](crate::Options::spill_bytes): a scratch store of our own
//! kind, in a file unlinked as soon as it is created (the operating system reclaims it
//! when the transaction ends, even after a crash). Keys are arena keys (tree id first);
//! a value is a tag byte (1 put, 0 delete) and the value. Writing into the scratch
//! tree is itself write-optimised (its journals batch the spilled writes), and reading
//! back at commit is one ordered scan per tree.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use thunderhead_core::{Durability, Engine, Reader, TreeConfig, ValueBytes};
use thunderhead_disk::FileStore;

use crate::arena::{Arena, arena_key, arena_range};
use crate::error::Result;
use crate::keys::KeyRange;

const PUT: u8 = 1;
const DELETE: u8 = 0;

/// A transaction's spilled writes.
pub(crate) struct Spill {
    engine: Engine<FileStore>,
}

/// A spilled write: `Some(value)` for a put, `None` for a delete.
pub(crate) type Spilled = Option<ValueBytes>;

fn decode(value: ValueBytes) -> Spilled {
    (value.first() == Some(&PUT)).then(|| value.skip(1))
}

impl Spill {
    /// A new scratch store in `dir`.
    pub fn create(dir: &Path, page_size: usize) -> Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = dir.join(format!(
            ".thunderhead-spill-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let store = FileStore::create(&path, page_size)?;
        // The open handle keeps the file; no name is left behind, even by a crash.
        std::fs::remove_file(&path)?;
        let config = TreeConfig {
            cache_bytes_max: 8 << 20,
            ..TreeConfig::default()
        };
        Ok(Self {
            engine: Engine::create(store, &config)?,
        })
    }

    /// Moves every pending write of `arena` here (newer than what is here already) and
    /// clears the arena.
    pub fn absorb(&self, arena: &mut Arena) -> Result<()> {
        let mut writer = self.engine.begin_write()?;
        let mut result = Ok(());
        let mut encoded = Vec::new();
        arena.for_each(|key, value| {
            if result.is_err() {
                return;
            }
            encoded.clear();
            match value {
                Some(value) => {
                    encoded.push(PUT);
                    encoded.extend_from_slice(value);
                }
                None => encoded.push(DELETE),
            }
            result = writer.put(key, &encoded);
        });
        result?;
        writer.commit(Durability::Eventual)?;
        arena.clear();
        Ok(())
    }

    pub fn get(&self, tree: u32, key: &[u8]) -> Result<Option<Spilled>> {
        let reader = self.engine.begin_read();
        Ok(reader.get(&arena_key(tree, key))?.map(decode))
    }

    /// Forgets the spilled writes of `tree` within `range`.
    pub fn remove_range(&self, tree: u32, range: &KeyRange) -> Result<()> {
        let mut writer = self.engine.begin_write()?;
        writer.delete_range::<[u8], _>(arena_range(tree, range).as_refs())?;
        writer.commit(Durability::Eventual)?;
        Ok(())
    }

    /// Copies the spilled writes of tree `from` to tree `to` (a fork).
    pub fn copy_tree(&self, from: u32, to: u32) -> Result<()> {
        let reader = self.engine.begin_read();
        let mut writer = self.engine.begin_write()?;
        for entry in reader.range::<[u8], _>(arena_range(from, &KeyRange::all()).as_refs()) {
            let (key, value) = entry?;
            writer.put(&arena_key(to, &key[4..]), &value)?;
        }
        writer.commit(Durability::Eventual)?;
        Ok(())
    }

    /// A reader of what is spilled now.
    pub fn reader(&self) -> Reader<FileStore> {
        self.engine.begin_read()
    }
}

/// Up to `limit` spilled writes of `tree` within `range`, in key order (or reverse),
/// keys without the tree id.
pub(crate) fn spilled_chunk(
    reader: &Reader<FileStore>,
    tree: u32,
    range: &KeyRange,
    forward: bool,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Spilled)>> {
    let full = arena_range(tree, range);
    let mut chunk = Vec::new();
    let mut range = reader.range::<[u8], _>(full.as_refs());
    while chunk.len() < limit {
        let next = if forward {
            range.next()
        } else {
            range.next_back()
        };
        let Some(entry) = next else { break };
        let (mut key, value) = entry?;
        key.drain(..4);
        chunk.push((key, decode(value)));
    }
    Ok(chunk)
}

/// Visits every spilled write of `tree` in key order, keys without the tree id.
pub(crate) fn for_each_spilled(
    reader: &Reader<FileStore>,
    tree: u32,
    mut visit: impl FnMut(&[u8], Spilled) -> Result<()>,
) -> Result<()> {
    for entry in reader.range::<[u8], _>(arena_range(tree, &KeyRange::all()).as_refs()) {
        let (key, value) = entry?;
        visit(&key[4..], decode(value))?;
    }
    Ok(())
}
