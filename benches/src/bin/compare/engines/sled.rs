//! sled 0.34, its default tree in one database directory.
//!
//! Settings: `sled::Config::new().path(..)`, sled's defaults (1 GiB page cache, its
//! background flusher every 500 ms). A transaction is one `Batch` applied atomically;
//! durable transactions are followed by `Db::flush()` (sled's documented way to make
//! writes durable: it syncs before returning), non-durable ones are not.

use std::path::Path;

use super::{Durability, KvEngine, Ops, Result};

pub struct Sled {
    db: ::sled::Db,
}

impl Sled {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = ::sled::Config::new().path(dir.join("sled")).open()?;
        Ok(Self { db })
    }
}

impl KvEngine for Sled {
    fn write(&mut self, durability: Durability, ops: &mut Ops<'_>) -> Result<()> {
        let mut batch = ::sled::Batch::default();
        ops(&mut |key, value| {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
            Ok(())
        })?;
        self.db.apply_batch(batch)?;
        if durability == Durability::Durable {
            self.db.flush()?;
        }
        Ok(())
    }

    fn get_many(&self, keys: &mut dyn Iterator<Item = &[u8]>) -> Result<(u64, u64)> {
        let (mut found, mut bytes) = (0, 0);
        for key in keys {
            if let Some(value) = self.db.get(key)? {
                found += 1;
                bytes += value.len() as u64;
            }
        }
        Ok((found, bytes))
    }

    fn ranges(&self, starts: &mut dyn Iterator<Item = &[u8]>, len: usize) -> Result<u64> {
        let mut entries = 0;
        for start in starts {
            for entry in self.db.range(start..).take(len) {
                let (_key, value) = entry?;
                std::hint::black_box(value);
                entries += 1;
            }
        }
        Ok(entries)
    }

    fn scan(&self) -> Result<(u64, u64)> {
        let (mut entries, mut bytes) = (0, 0);
        for entry in self.db.iter() {
            let (key, value) = entry?;
            entries += 1;
            bytes += (key.len() + value.len()) as u64;
        }
        Ok((entries, bytes))
    }
}
