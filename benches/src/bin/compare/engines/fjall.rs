//! fjall 3, one keyspace named `data` in one database directory.
//!
//! Settings: `Database::builder(..).open()` and `KeyspaceCreateOptions::default()`:
//! fjall's defaults (32 MiB block cache, 64 MiB memtables, LZ4 block compression, its
//! background flush and compaction workers). A transaction is one `WriteBatch`: durable
//! batches commit with `PersistMode::SyncAll` (the journal is written and fsynced before
//! `commit` returns, what fjall documents for durability); non-durable batches commit
//! with fjall's default for a batch, `PersistMode::Buffer` (the journal is handed to the
//! operating system, not synced).

use std::path::Path;

use ::fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{Durability, KvEngine, Ops, Result};

pub struct Fjall {
    db: Database,
    keyspace: Keyspace,
}

impl Fjall {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = Database::builder(dir.join("fjall")).open()?;
        let keyspace = db.keyspace("data", KeyspaceCreateOptions::default)?;
        Ok(Self { db, keyspace })
    }
}

impl KvEngine for Fjall {
    fn write(&mut self, durability: Durability, ops: &mut Ops<'_>) -> Result<()> {
        let mut batch = self.db.batch();
        if durability == Durability::Durable {
            batch = batch.durability(Some(PersistMode::SyncAll));
        }
        let keyspace = &self.keyspace;
        ops(&mut |key, value| {
            match value {
                Some(value) => batch.insert(keyspace, key, value),
                None => batch.remove(keyspace, key),
            }
            Ok(())
        })?;
        batch.commit()?;
        Ok(())
    }

    fn get_many(&self, keys: &mut dyn Iterator<Item = &[u8]>) -> Result<(u64, u64)> {
        let (mut found, mut bytes) = (0, 0);
        for key in keys {
            if let Some(value) = self.keyspace.get(key)? {
                found += 1;
                bytes += value.len() as u64;
            }
        }
        Ok((found, bytes))
    }

    fn ranges(&self, starts: &mut dyn Iterator<Item = &[u8]>, len: usize) -> Result<u64> {
        let mut entries = 0;
        for start in starts {
            for guard in self.keyspace.range(start..).take(len) {
                let (_key, value) = guard.into_inner()?;
                std::hint::black_box(value);
                entries += 1;
            }
        }
        Ok(entries)
    }

    fn scan(&self) -> Result<(u64, u64)> {
        let (mut entries, mut bytes) = (0, 0);
        for guard in self.keyspace.iter() {
            let (key, value) = guard.into_inner()?;
            entries += 1;
            bytes += (key.len() + value.len()) as u64;
        }
        Ok((entries, bytes))
    }
}
