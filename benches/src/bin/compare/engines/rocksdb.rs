//! RocksDB through the `rocksdb` crate (the `rocksdb` feature), its default column family
//! in one database directory.
//!
//! Settings: `Options::default()` plus `create_if_missing(true)` (needed to create a new
//! database); RocksDB's defaults otherwise (64 MiB memtable, its default block cache, its
//! background flush and compaction). The crate is built without compression libraries,
//! so blocks are stored uncompressed (RocksDB falls back to no compression when Snappy is
//! not built in). A transaction is one `WriteBatch`: durable batches are written with
//! `WriteOptions::set_sync(true)` (the WAL is synced before the write returns),
//! non-durable ones with the default `WriteOptions` (WAL written, not synced).

use std::path::Path;

use ::rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use super::{Durability, KvEngine, Ops, Result};

pub struct Rocksdb {
    db: DB,
}

impl Rocksdb {
    pub fn open(dir: &Path) -> Result<Self> {
        let mut options = Options::default();
        options.create_if_missing(true);
        let db = DB::open(&options, dir.join("rocksdb"))?;
        Ok(Self { db })
    }
}

impl KvEngine for Rocksdb {
    fn write(&mut self, durability: Durability, ops: &mut Ops<'_>) -> Result<()> {
        let mut batch = WriteBatch::default();
        ops(&mut |key, value| {
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            }
            Ok(())
        })?;
        let mut options = WriteOptions::default();
        options.set_sync(durability == Durability::Durable);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }

    fn get_many(&self, keys: &mut dyn Iterator<Item = &[u8]>) -> Result<(u64, u64)> {
        let (mut found, mut bytes) = (0, 0);
        for key in keys {
            if let Some(value) = self.db.get_pinned(key)? {
                found += 1;
                bytes += value.len() as u64;
            }
        }
        Ok((found, bytes))
    }

    fn ranges(&self, starts: &mut dyn Iterator<Item = &[u8]>, len: usize) -> Result<u64> {
        let mut entries = 0;
        for start in starts {
            let mode = IteratorMode::From(start, Direction::Forward);
            for entry in self.db.iterator(mode).take(len) {
                let (_key, value) = entry?;
                std::hint::black_box(value);
                entries += 1;
            }
        }
        Ok(entries)
    }

    fn scan(&self) -> Result<(u64, u64)> {
        let (mut entries, mut bytes) = (0, 0);
        for entry in self.db.iterator(IteratorMode::Start) {
            let (key, value) = entry?;
            entries += 1;
            bytes += (key.len() + value.len()) as u64;
        }
        Ok((entries, bytes))
    }
}
