//! Thunderhead through its `Database` API, one tree named `data` in one file.
//!
//! Settings: `Options::default()` (16 KiB pages, the default page cache and journal
//! sizes, the default 256 MiB in-memory write buffer per transaction before it spills to a
//! scratch file, only the latest revision retained). Durable commits are
//! `commit_with(Durability::Immediate)` (one sync per commit), non-durable ones
//! `commit_with(Durability::Eventual)` (no sync; a crash may lose them, never corrupts).

use std::path::Path;

use thunderhead_tx::{Database, Options, Version};

use super::{Durability, KvEngine, Ops, Result, Versioned};

const TREE: &[u8] = b"data";

pub struct Thunderhead {
    db: Database,
}

impl Thunderhead {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = Database::create(dir.join("data.thunderhead"), Options::default())?;
        Ok(Self { db })
    }
}

impl KvEngine for Thunderhead {
    fn write(&mut self, durability: Durability, ops: &mut Ops<'_>) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let tree = txn.open_tree(TREE)?;
            ops(&mut |key, value| {
                match value {
                    Some(value) => tree.insert(key, value)?,
                    None => tree.remove(key)?,
                }
                Ok(())
            })?;
        }
        txn.commit_with(match durability {
            Durability::Durable => thunderhead_tx::Durability::Immediate,
            Durability::NoSync => thunderhead_tx::Durability::Eventual,
        })?;
        Ok(())
    }

    fn get_many(&self, keys: &mut dyn Iterator<Item = &[u8]>) -> Result<(u64, u64)> {
        let read = self.db.begin_read();
        let tree = read.open_tree(TREE)?;
        let (mut found, mut bytes) = (0, 0);
        for key in keys {
            if let Some(value) = tree.get(key)? {
                found += 1;
                bytes += value.len() as u64;
            }
        }
        Ok((found, bytes))
    }

    fn ranges(&self, starts: &mut dyn Iterator<Item = &[u8]>, len: usize) -> Result<u64> {
        let read = self.db.begin_read();
        let tree = read.open_tree(TREE)?;
        let mut entries = 0;
        for start in starts {
            for entry in tree.range(start..).take(len) {
                let (_key, value) = entry?;
                std::hint::black_box(&value);
                entries += 1;
            }
        }
        Ok(entries)
    }

    fn scan(&self) -> Result<(u64, u64)> {
        let read = self.db.begin_read();
        let tree = read.open_tree(TREE)?;
        let (mut entries, mut bytes) = (0, 0);
        for entry in tree.iter() {
            let (key, value) = entry?;
            entries += 1;
            bytes += (key.len() + value.len()) as u64;
        }
        Ok((entries, bytes))
    }

    fn versions(&mut self) -> Option<&mut dyn Versioned> {
        Some(self)
    }
}

impl Versioned for Thunderhead {
    fn snapshot(&mut self, name: &str) -> Result<()> {
        self.db.snapshot(name.as_bytes())?;
        Ok(())
    }

    fn diff(&mut self, name: &str) -> Result<u64> {
        let mut changes = 0;
        for change in self.db.diff(name, Version::Latest)? {
            std::hint::black_box(change?);
            changes += 1;
        }
        Ok(changes)
    }

    fn naive_diff(&mut self, name: &str) -> Result<u64> {
        let old = self.db.begin_read_at_snapshot(name.as_bytes())?;
        let new = self.db.begin_read();
        let (old, new) = (old.open_tree(TREE)?, new.open_tree(TREE)?);
        let (mut old, mut new) = (old.iter(), new.iter());
        let (mut a, mut b) = (old.next().transpose()?, new.next().transpose()?);
        let mut changes = 0;
        loop {
            match (&a, &b) {
                (None, None) => return Ok(changes),
                (Some(_), None) => {
                    changes += 1;
                    a = old.next().transpose()?;
                }
                (None, Some(_)) => {
                    changes += 1;
                    b = new.next().transpose()?;
                }
                (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                    std::cmp::Ordering::Less => {
                        changes += 1;
                        a = old.next().transpose()?;
                    }
                    std::cmp::Ordering::Greater => {
                        changes += 1;
                        b = new.next().transpose()?;
                    }
                    std::cmp::Ordering::Equal => {
                        if va[..] != vb[..] {
                            changes += 1;
                        }
                        a = old.next().transpose()?;
                        b = new.next().transpose()?;
                    }
                },
            }
        }
    }
}
