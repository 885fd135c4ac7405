use std::collections::BTreeMap;
use std::sync::Arc;

use thunderhead_core::{Pager, Snapshot, Tree, TreeConfig};
use thunderhead_disk::{MemStore, PageStore};

#[test]
fn smoke_many_inserts_and_reads() {
    let config = TreeConfig {
        journal_bytes_max: 4096,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(MemStore::new(4096).unwrap(), &config).unwrap());
    let mut tree = Tree::new(pager.clone());
    let mut model = BTreeMap::new();
    let mut state = 12345u64;
    let mut versions = Vec::new();
    for round in 0..20 {
        for _ in 0..500 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = format!("key{:06}", (state >> 33) % 5000).into_bytes();
            if (state >> 20).is_multiple_of(7) {
                tree.delete(&key).unwrap();
                model.remove(&key);
            } else {
                let value = format!("value{round}-{}", state % 1000).into_bytes();
                tree.put(&key, &value).unwrap();
                model.insert(key, value);
            }
        }
        tree.check().unwrap();
        let version = tree.commit().unwrap();
        tree.check().unwrap();
        versions.push((version, model.clone()));
    }
    for (version, expected) in &versions {
        let snapshot = Snapshot::new(pager.clone(), *version);
        snapshot.check().unwrap();
        let got: Vec<(Vec<u8>, Vec<u8>)> = snapshot
            .iter()
            .map(|item| item.map(|(k, v)| (k, v.to_vec())).unwrap())
            .collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = expected
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got.len(), want.len());
        assert_eq!(got, want);
        for (key, value) in expected.iter().take(100) {
            assert_eq!(
                snapshot.get(key).unwrap().as_deref(),
                Some(value.as_slice())
            );
        }
    }
}

#[test]
fn smoke_report() {
    let config = TreeConfig {
        journal_bytes_max: 4096,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(MemStore::new(4096).unwrap(), &config).unwrap());
    let mut tree = Tree::new(pager.clone());
    for i in 0..20000u32 {
        let key = format!("k{:08}", i.wrapping_mul(2654435761) % 100000);
        tree.put(key.as_bytes(), b"some value bytes").unwrap();
        if i % 1000 == 999 {
            tree.commit().unwrap();
        }
    }
    tree.delete_range(b"k0002".as_slice()..b"k0005".as_slice())
        .unwrap();
    let v = tree.commit().unwrap();
    let report = Snapshot::new(pager.clone(), v).check().unwrap();
    eprintln!("{:?}", CheckSummary(&report));
    eprintln!("{:?}", pager.store().stats());
}
struct CheckSummary<'a>(&'a thunderhead_core::CheckReport);
impl std::fmt::Debug for CheckSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0;
        write!(
            f,
            "height {} leaves {} branches {} entries {} pending {} segments {} extents {}",
            r.height,
            r.leaf_count,
            r.branch_count,
            r.leaf_entry_count,
            r.journal_pending_bytes,
            r.segment_count,
            r.extents.len()
        )
    }
}

/// A store in a file: committed versions read back, entry for entry, after the file is
/// closed and opened again (the version found through the meta slots), and the store
/// checks clean (no page leaked) at every step.
#[test]
fn store_on_a_file_reads_back_after_reopen() {
    use thunderhead_core::{Durability, Engine};
    let dir = std::env::temp_dir().join(format!("thunderhead-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tree.thunderhead");
    let _ = std::fs::remove_file(&path);
    let config = TreeConfig {
        journal_bytes_max: 8192,
        ..TreeConfig::default()
    };
    let mut model = BTreeMap::new();
    {
        let engine = Engine::create_file(&path, 4096, &config).unwrap();
        for round in 0..3u32 {
            let mut writer = engine.begin_write().unwrap();
            for index in 0..1000u32 {
                let index = round * 1000 + index;
                let key = format!("key{:05}", index.wrapping_mul(2654435761) % 10_000).into_bytes();
                let value = vec![index as u8; (index % 1500) as usize];
                writer.put(&key, &value).unwrap();
                model.insert(key, value);
            }
            writer.commit(Durability::Immediate).unwrap();
            engine.check().unwrap();
        }
        let mut writer = engine.begin_write().unwrap();
        writer
            .delete_range(b"key02".as_slice()..b"key03".as_slice())
            .unwrap();
        model.retain(|key, _| {
            !(key.as_slice() >= b"key02".as_slice() && key.as_slice() < b"key03".as_slice())
        });
        writer.commit(Durability::Immediate).unwrap();
        engine.check().unwrap();
    }
    let engine = Engine::open_file(&path, &config).unwrap();
    assert_eq!(engine.revision(), 4);
    engine.check().unwrap();
    let reader = engine.begin_read();
    let entries: Vec<(Vec<u8>, Vec<u8>)> = reader
        .iter()
        .map(|entry| {
            let (key, value) = entry.unwrap();
            (key, value.to_vec())
        })
        .collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
    assert_eq!(entries, expected);
    drop(reader);
    drop(engine);
    let _ = std::fs::remove_file(&path);
}
