//! redb 4, one table named `data` in one file.
//!
//! Settings: `Database::create` with redb's defaults (its default cache size). Durable
//! commits use `Durability::Immediate` (redb's default: synced before commit returns),
//! non-durable ones `Durability::None` (not synced; redb keeps the pages they free until
//! the next durable commit).

use std::path::Path;

use ::redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Durability, KvEngine, Ops, Result};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");

pub struct Redb {
    db: ::redb::Database,
}

impl Redb {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = ::redb::Database::create(dir.join("data.redb"))?;
        // Create the table, so that a read before any write finds it.
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(Self { db })
    }
}

impl KvEngine for Redb {
    fn write(&mut self, durability: Durability, ops: &mut Ops<'_>) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(match durability {
            Durability::Durable => ::redb::Durability::Immediate,
            Durability::NoSync => ::redb::Durability::None,
        })?;
        {
            let mut table = txn.open_table(TABLE)?;
            ops(&mut |key, value| {
                match value {
                    Some(value) => {
                        table.insert(key, value)?;
                    }
                    None => {
                        table.remove(key)?;
                    }
                }
                Ok(())
            })?;
        }
        txn.commit()?;
        Ok(())
    }

    fn get_many(&self, keys: &mut dyn Iterator<Item = &[u8]>) -> Result<(u64, u64)> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let (mut found, mut bytes) = (0, 0);
        for key in keys {
            if let Some(value) = table.get(key)? {
                found += 1;
                bytes += value.value().len() as u64;
            }
        }
        Ok((found, bytes))
    }

    fn ranges(&self, starts: &mut dyn Iterator<Item = &[u8]>, len: usize) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let mut entries = 0;
        for start in starts {
            for entry in table.range(start..)?.take(len) {
                let (_key, value) = entry?;
                std::hint::black_box(value.value());
                entries += 1;
            }
        }
        Ok(entries)
    }

    fn scan(&self) -> Result<(u64, u64)> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let (mut entries, mut bytes) = (0, 0);
        for entry in table.iter()? {
            let (key, value) = entry?;
            entries += 1;
            bytes += (key.value().len() + value.value().len()) as u64;
        }
        Ok((entries, bytes))
    }
}
