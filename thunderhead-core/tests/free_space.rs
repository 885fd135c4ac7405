//! How the free space is stored. On a fragmented store (hundreds of free runs, far more
//! than a meta slot holds) a small commit must not rewrite the whole state: it stores
//! its changes against the last whole state (the base) inside the meta slot, and a new
//! base is written only when those changes outgrow the slot (DESIGN.md §5.4). The stored
//! form must read back as the state in memory, across reopening.

use std::sync::Arc;

use thunderhead_core::{Durability, Engine, TreeConfig};
use thunderhead_disk::{FreeSpace, META_PAGES, MemStore, Meta, PageStore, Stored, resolve};

const PAGE_SIZE: usize = 4096;

/// A small journal budget, so the removals reach the leaves and free the values' pages.
fn config() -> TreeConfig {
    TreeConfig {
        journal_bytes_max: 6 * 1024,
        ..TreeConfig::default()
    }
}

/// How the latest meta slot of `store` keeps its free space.
#[derive(Debug, PartialEq, Eq)]
enum Form {
    /// Whole, in an extent of its own (a new base).
    Extent,
    /// Whole, inside the meta slot.
    Inline,
    /// Changes against a base, inside the meta slot.
    Delta,
}

fn latest_form(store: &MemStore) -> Form {
    let slots = META_PAGES.map(|page| {
        let bytes = resolve(store.read(page, 1)).unwrap();
        (Meta::decode(page, &bytes).ok(), bytes)
    });
    let (meta, bytes) = slots
        .iter()
        .filter_map(|(meta, bytes)| meta.map(|meta| (meta, bytes)))
        .max_by_key(|(meta, _)| meta.revision)
        .expect("a valid meta slot");
    match meta.inline_free_space(bytes) {
        None => Form::Extent,
        Some(inline) => match FreeSpace::decode(META_PAGES[0], inline, meta.free_space.checksum) {
            Ok(Stored::Whole(_)) => Form::Inline,
            Ok(Stored::Delta(_)) => Form::Delta,
            Err(error) => panic!("the latest slot's free space: {error}"),
        },
    }
}

/// A thousand rows with values stored off-tree (a page each), then every other one
/// removed: about five hundred one-page free runs between live pages.
fn fragmented() -> (Arc<MemStore>, Engine<Arc<MemStore>>) {
    let store = Arc::new(MemStore::new(PAGE_SIZE).unwrap());
    let engine = Engine::create(store.clone(), &config()).unwrap();
    for round in 0..2 {
        let mut writer = engine.begin_write().unwrap();
        for row in (0..1000u32).filter(|row| round == 0 || row % 2 == 0) {
            let key = format!("row{row:05}");
            if round == 0 {
                writer.put(key.as_bytes(), &[row as u8; 2000]).unwrap();
            } else {
                writer.delete(key.as_bytes()).unwrap();
            }
        }
        writer.commit(Durability::Immediate).unwrap();
    }
    // One more commit lets the removed rows' pages go (the durable revision before
    // them no longer needs them).
    let mut writer = engine.begin_write().unwrap();
    writer.put(b"settle", b"1").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    (store, engine)
}

#[test]
fn small_commits_on_a_fragmented_store_store_deltas() {
    let (store, engine) = fragmented();
    let report = engine.check().unwrap();
    assert!(
        report.free_pages >= 250,
        "the setup should leave hundreds of free pages, not {}",
        report.free_pages
    );
    let mut forms = Vec::new();
    for i in 0..200u32 {
        let mut writer = engine.begin_write().unwrap();
        writer
            .put(format!("small{i:04}").as_bytes(), b"value")
            .unwrap();
        let durability = if i % 3 == 0 {
            Durability::Eventual
        } else {
            Durability::Immediate
        };
        writer.commit(durability).unwrap();
        forms.push(latest_form(&store));
        if i % 20 == 0 {
            engine.check().unwrap();
        }
    }
    let deltas = forms.iter().filter(|form| **form == Form::Delta).count();
    let bases = forms.iter().filter(|form| **form == Form::Extent).count();
    assert!(
        deltas >= 180,
        "{deltas} of 200 small commits stored a delta ({bases} a new base)"
    );
    assert!(
        !forms.contains(&Form::Inline),
        "the whole state fits no slot"
    );
    engine.check().unwrap();
    engine.sync().unwrap();
    drop(engine);
    // Reopened from a delta, the store reads its state back whole and goes on.
    let engine = Engine::open(store.clone(), &config()).unwrap();
    engine.check().unwrap();
    let reader = engine.begin_read();
    for i in 0..200u32 {
        let key = format!("small{i:04}");
        assert_eq!(
            reader.get(key.as_bytes()).unwrap().as_deref(),
            Some(&b"value"[..])
        );
    }
    drop(reader);
    let mut writer = engine.begin_write().unwrap();
    writer.put(b"after", b"reopen").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    assert_eq!(latest_form(&store), Form::Delta);
    engine.check().unwrap();
}

/// The commit after a large one stores a delta too. The large one writes and frees
/// hundreds of runs; what it freed is released at the next commit, and what it wrote
/// became durable with its sync. Neither may make that small commit record hundreds of
/// changes (and so write a new base of the whole state): released runs are freed as
/// later allocations need pages, and a sync clears the recent list with one flag.
#[test]
fn the_commit_after_a_large_one_stores_a_delta() {
    let (store, engine) = fragmented();
    for round in 0..3u8 {
        let mut writer = engine.begin_write().unwrap();
        for row in (0..1000u32).filter(|row| row % 2 == 1) {
            let key = format!("row{row:05}");
            writer.put(key.as_bytes(), &[round; 2000]).unwrap();
        }
        writer.commit(Durability::Immediate).unwrap();
        assert_eq!(latest_form(&store), Form::Extent, "the large commit");
        let pending_before = engine.check().unwrap().pending_pages;
        let mut writer = engine.begin_write().unwrap();
        writer.put(b"small", &[round]).unwrap();
        writer.commit(Durability::Immediate).unwrap();
        assert_eq!(
            latest_form(&store),
            Form::Delta,
            "the small commit after it"
        );
        assert!(
            pending_before >= 400,
            "the large commit freed {pending_before} pages"
        );
        // Less the few pages the small commit took.
        let free = engine.check().unwrap().free_pages;
        assert!(
            free + 20 >= pending_before,
            "what the large commit freed ({pending_before} pages) is free for reuse after \
             the small one ({free} pages)"
        );
    }
    // The released runs are reused before the store grows.
    let used = engine.check().unwrap().used_pages;
    let mut writer = engine.begin_write().unwrap();
    for row in 0..300u32 {
        writer
            .put(format!("new{row:05}").as_bytes(), &[9; 2000])
            .unwrap();
    }
    writer.commit(Durability::Immediate).unwrap();
    let report = engine.check().unwrap();
    assert_eq!(
        report.used_pages, used,
        "300 new pages came from the released runs"
    );
    drop(engine);
    let engine = Engine::open(store, &config()).unwrap();
    engine.check().unwrap();
}
