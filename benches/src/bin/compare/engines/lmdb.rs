//! LMDB through heed 0.23, one named database `data` in one environment directory.
//!
//! Settings: a map size of 64 GiB (LMDB's default is 10 MiB, too small for the data; the
//! map is address space only, the file grows with the data) and `max_dbs(1)` for the one
//! named database. Durable commits use LMDB's default (synced at commit). Non-durable
//! commits run with the `MDB_NOSYNC` environment flag, switched on before them and off
//! again after with `mdb_env_set_flags` (heed's `Env::set_flags`), which LMDB allows at
//! run time for this flag; the next durable commit syncs what they wrote.

use std::ops::Bound;
use std::path::Path;

use heed::types::Bytes;
use heed::{EnvFlags, EnvOpenOptions, FlagSetMode};

use super::{Durability, KvEngine, Ops, Result};

const MAP_BYTES: usize = 64 << 30;

pub struct Lmdb {
    env: heed::Env,
    db: heed::Database<'static, Bytes, Bytes>,
    /// Whether `MDB_NOSYNC` is on.
    no_sync: bool,
}

impl Lmdb {
    pub fn open(dir: &Path) -> Result<Self> {
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_BYTES).max_dbs(1);
        // SAFETY: LMDB maps the file; the directory is new and private to this process,
        // and nothing else opens, truncates or writes the file while the map exists.
        let env = unsafe { options.open(dir)? };
        let txn = env.write_txn()?;
        let db = env
            .create_databases_and_commit(txn, |opener, txn| {
                opener
                    .create_database::<Bytes, Bytes>(txn, Some("data"))
                    .map(heed::CommitOrAbort::<_, ()>::Commit)
            })?
            .unwrap_commit();
        Ok(Self {
            env,
            db,
            no_sync: false,
        })
    }

    fn set_no_sync(&mut self, no_sync: bool) -> Result<()> {
        if self.no_sync != no_sync {
            let mode = if no_sync {
                FlagSetMode::Enable
            } else {
                FlagSetMode::Disable
            };
            // SAFETY: `NO_SYNC` only weakens durability: a system crash may lose the last
            // commits. The store is scratch data, deleted after the run and never reopened
            // after a crash. Only this thread (`write` takes `&mut self`) sets flags.
            unsafe { self.env.set_flags(EnvFlags::NO_SYNC, mode)? };
            self.no_sync = no_sync;
        }
        Ok(())
    }
}

impl KvEngine for Lmdb {
    fn write(&mut self, durability: Durability, ops: &mut Ops<'_>) -> Result<()> {
        self.set_no_sync(durability == Durability::NoSync)?;
        let mut txn = self.env.write_txn()?;
        let db = self.db;
        ops(&mut |key, value| {
            match value {
                Some(value) => db.put(&mut txn, key, value)?,
                None => {
                    db.delete(&mut txn, key)?;
                }
            }
            Ok(())
        })?;
        txn.commit()?;
        Ok(())
    }

    fn get_many(&self, keys: &mut dyn Iterator<Item = &[u8]>) -> Result<(u64, u64)> {
        let txn = self.env.read_txn()?;
        let (mut found, mut bytes) = (0, 0);
        for key in keys {
            if let Some(value) = self.db.get(&txn, key)? {
                found += 1;
                bytes += value.len() as u64;
            }
        }
        Ok((found, bytes))
    }

    fn ranges(&self, starts: &mut dyn Iterator<Item = &[u8]>, len: usize) -> Result<u64> {
        let txn = self.env.read_txn()?;
        let mut entries = 0;
        for start in starts {
            let bounds = (Bound::Included(start), Bound::Unbounded);
            for entry in self.db.range(&txn, &bounds)?.take(len) {
                let (_key, value) = entry?;
                std::hint::black_box(value);
                entries += 1;
            }
        }
        Ok(entries)
    }

    fn scan(&self) -> Result<(u64, u64)> {
        let txn = self.env.read_txn()?;
        let (mut entries, mut bytes) = (0, 0);
        for entry in self.db.iter(&txn)? {
            let (key, value) = entry?;
            entries += 1;
            bytes += (key.len() + value.len()) as u64;
        }
        Ok((entries, bytes))
    }
}
