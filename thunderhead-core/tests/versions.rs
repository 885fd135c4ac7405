//! Past revisions: retention by count and by age, named snapshots, reading at a
//! revision, and what pruning does to space. Each test states the behaviour it pins.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use thunderhead_core::{Durability, Engine, Error, Retention, TreeConfig};
use thunderhead_disk::{MemStore, PageStore};

fn config(retention: Retention) -> TreeConfig {
    TreeConfig {
        journal_bytes_max: 4096,
        retention,
        ..TreeConfig::default()
    }
}

fn contents<S: PageStore>(reader: &thunderhead_core::Reader<S>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    reader
        .iter()
        .map(|entry| {
            let (key, value) = entry.unwrap();
            (key, value.to_vec())
        })
        .collect()
}

/// Commits revision after revision of changes to a fresh store; returns the model of
/// every revision (on a store with history, the contents after each of these commits).
fn history<S: PageStore>(engine: &Engine<S>, commits: usize) -> Vec<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut model = BTreeMap::new();
    let mut models = vec![model.clone()];
    for commit in 0..commits {
        let mut writer = engine.begin_write().unwrap();
        for index in 0..50 {
            let key = format!("key{:04}", (commit * 37 + index * 11) % 400).into_bytes();
            let value = format!("value {commit} {index}").into_bytes();
            writer.put(&key, &value).unwrap();
            model.insert(key, value);
        }
        writer.commit(Durability::Eventual).unwrap();
        models.push(model.clone());
    }
    models
}

/// With the latest 5 revisions retained, each of them reads as it was committed, the
/// one before is pruned (a typed error naming the oldest retained), and a future
/// revision is an error too.
#[test]
fn retained_revisions_read_as_committed() {
    let engine = Engine::create(
        MemStore::new(4096).unwrap(),
        &config(Retention::revisions(5)),
    )
    .unwrap();
    let models = history(&engine, 20);
    assert_eq!(engine.oldest_retained(), 16);
    for revision in 16..=20 {
        let reader = engine.begin_read_at(revision).unwrap();
        assert_eq!(reader.revision(), revision);
        assert_eq!(
            contents(&reader),
            models[revision as usize],
            "revision {revision}"
        );
    }
    assert!(matches!(
        engine.begin_read_at(15),
        Err(Error::RevisionPruned {
            revision: 15,
            oldest_retained: 16
        })
    ));
    assert!(matches!(
        engine.begin_read_at(21),
        Err(Error::RevisionNotFound { latest: 20, .. })
    ));
    let history = engine.history().unwrap();
    let revisions: Vec<u64> = history.iter().map(|info| info.revision).collect();
    assert_eq!(revisions, (16..=20).collect::<Vec<_>>());
    assert!(history.windows(2).all(|pair| pair[0].time <= pair[1].time));
    engine.check().unwrap();
}

/// A reader of a past revision keeps it readable after the retention rules let it go.
#[test]
fn a_reader_outlives_the_retention_of_its_revision() {
    let engine = Engine::create(
        MemStore::new(4096).unwrap(),
        &config(Retention::revisions(2)),
    )
    .unwrap();
    let mut models = history(&engine, 3);
    let reader = engine.begin_read_at(2).unwrap();
    let more = history(&engine, 10);
    models.extend(more.into_iter().skip(1));
    assert!(engine.begin_read_at(2).is_err());
    assert_eq!(contents(&reader), models[2]);
    engine.check().unwrap();
}

/// Snapshots keep their revision readable whatever the retention, across reopen; they
/// list with their revisions; duplicates and missing names are typed errors; once
/// dropped, the revision is pruned.
#[test]
fn snapshots_keep_their_revision() {
    let store = Arc::new(MemStore::new(4096).unwrap());
    let engine = Engine::create(store.clone(), &config(Retention::LATEST)).unwrap();
    let models = history(&engine, 4);
    let mut writer = engine.begin_write().unwrap();
    assert_eq!(writer.create_snapshot(b"four").unwrap(), 4);
    assert!(matches!(
        writer.create_snapshot(b"four"),
        Err(Error::SnapshotExists { .. })
    ));
    assert!(matches!(
        writer.drop_snapshot(b"none"),
        Err(Error::SnapshotNotFound { .. })
    ));
    assert!(matches!(
        writer.create_snapshot(b""),
        Err(Error::InvalidSnapshotName { .. })
    ));
    writer.commit(Durability::Immediate).unwrap();
    history(&engine, 6);
    let snapshots = engine.snapshots();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(
        (snapshots[0].name.as_slice(), snapshots[0].revision),
        (&b"four"[..], 4)
    );
    assert_eq!(
        contents(&engine.begin_read_snapshot(b"four").unwrap()),
        models[4]
    );
    assert_eq!(contents(&engine.begin_read_at(4).unwrap()), models[4]);
    assert!(engine.begin_read_at(3).is_err());
    engine.check().unwrap();
    engine.sync().unwrap();
    drop(engine);

    let engine = Engine::open(store, &config(Retention::LATEST)).unwrap();
    assert_eq!(
        contents(&engine.begin_read_snapshot(b"four").unwrap()),
        models[4]
    );
    engine.check().unwrap();
    let mut writer = engine.begin_write().unwrap();
    writer.drop_snapshot(b"four").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    assert!(engine.snapshots().is_empty());
    assert!(matches!(
        engine.begin_read_snapshot(b"four"),
        Err(Error::SnapshotNotFound { .. })
    ));
    assert!(matches!(
        engine.begin_read_at(4),
        Err(Error::RevisionPruned { .. })
    ));
    engine.check().unwrap();
}

/// With a snapshot held, an overwrite loop reuses its own pages: the store grows by
/// what the snapshot reads, not by what is written after it; dropping the snapshot
/// gives those pages back to later commits.
#[test]
fn a_snapshot_holds_only_what_it_reads() {
    let engine = Engine::create(MemStore::new(4096).unwrap(), &config(Retention::LATEST)).unwrap();
    let overwrite = |engine: &Engine<MemStore>, round: usize| {
        let mut writer = engine.begin_write().unwrap();
        for index in 0..2000 {
            let key = format!("key{index:05}");
            writer
                .put(key.as_bytes(), format!("{round:>60}").as_bytes())
                .unwrap();
        }
        writer.commit(Durability::Immediate).unwrap();
    };
    overwrite(&engine, 0);
    let mut writer = engine.begin_write().unwrap();
    writer.create_snapshot(b"base").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    let snapshot_live = engine.check().unwrap().live_pages;
    for round in 1..=10 {
        overwrite(&engine, round);
    }
    let with_snapshot = engine.used_pages();
    for round in 11..=30 {
        overwrite(&engine, round);
    }
    let report = engine.check().unwrap();
    eprintln!(
        "snapshot held: {with_snapshot} pages after 10 rounds, {} after 30, {} live, {snapshot_live} read by the snapshot",
        report.used_pages, report.live_pages
    );
    assert!(
        report.used_pages <= with_snapshot + 2,
        "grew with a snapshot held"
    );
    let mut writer = engine.begin_write().unwrap();
    writer.drop_snapshot(b"base").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    for round in 31..=40 {
        overwrite(&engine, round);
    }
    let after = engine.check().unwrap();
    assert!(
        after.used_pages <= report.used_pages,
        "dropping gave nothing back"
    );
    assert!(
        after.free_pages >= snapshot_live / 2,
        "the snapshot's pages were not reused: {} free",
        after.free_pages
    );
}

/// Age-based retention keeps every revision superseded within the age; a short age
/// lets the old ones go.
#[test]
fn retention_by_age() {
    let engine = Engine::create(
        MemStore::new(4096).unwrap(),
        &config(Retention::age(Duration::from_secs(3600))),
    )
    .unwrap();
    let models = history(&engine, 8);
    assert_eq!(engine.oldest_retained(), 0);
    for revision in 0..=8 {
        assert_eq!(
            contents(&engine.begin_read_at(revision).unwrap()),
            models[revision as usize]
        );
    }
    drop(engine);
    let engine = Engine::create(
        MemStore::new(4096).unwrap(),
        &config(Retention::age(Duration::from_millis(30))),
    )
    .unwrap();
    history(&engine, 3);
    std::thread::sleep(Duration::from_millis(60));
    history(&engine, 2);
    assert!(
        engine.oldest_retained() >= 3,
        "oldest {}",
        engine.oldest_retained()
    );
    engine.check().unwrap();
}
