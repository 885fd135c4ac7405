//! Freed pages are reused: rewriting the same data keeps the store near its live size.

use std::sync::Arc;

use thunderhead_core::{Durability, Engine, TreeConfig};
use thunderhead_disk::{MemStore, PageStore, SplitMix64 as Rng};

const PAGE_SIZE: usize = 4096;
const KEYS: usize = 10_000;
const ROUNDS: usize = 100;
const VALUE_LEN: usize = 100;
/// The store may use at most this many times the pages the latest version reaches.
/// Measured: at most 2.0 (see the test). Were freed pages never reused, every round
/// would append a rewrite of most of the tree and the ratio would pass 4 within a few
/// rounds and approach 100 by the last.
const USED_OVER_LIVE_MAX: f64 = 4.0;

fn key(index: usize) -> Vec<u8> {
    format!("key/{index:08}").into_bytes()
}

fn config() -> TreeConfig {
    TreeConfig {
        journal_bytes_max: 16 * 1024,
        ..TreeConfig::default()
    }
}

/// Asserts that the latest version holds exactly `expected` (in key order).
fn assert_contents<S: PageStore>(engine: &Engine<S>, expected: &[(Vec<u8>, Vec<u8>)]) {
    let reader = engine.begin_read();
    let mut count = 0;
    for (entry, (key, value)) in reader.iter().zip(expected) {
        let (found_key, found_value) = entry.unwrap();
        assert_eq!(&found_key, key);
        assert_eq!(&found_value[..], &value[..]);
        count += 1;
    }
    assert_eq!(count, expected.len());
    assert_eq!(reader.iter().count(), expected.len());
}

/// 100 commits each overwriting the same 10,000 keys (~1.1 MiB of data) keep the store
/// within `USED_OVER_LIVE_MAX` times the pages the latest version reaches, every
/// version checked.
#[test]
fn overwrites_reuse_freed_pages() {
    overwrite_rounds(Durability::Immediate);
}

/// The same with eventual commits (never synced): pages written and freed since the last
/// durable commit are reused too, so a store that is rarely synced does not grow either.
#[test]
fn eventual_overwrites_reuse_freed_pages() {
    overwrite_rounds(Durability::Eventual);
}

fn overwrite_rounds(durability: Durability) {
    let engine = Engine::create(MemStore::new(PAGE_SIZE).unwrap(), &config()).unwrap();
    let mut rng = Rng::new(0x6752_6F77_7468);
    let mut values = vec![vec![0u8; VALUE_LEN]; KEYS];
    let mut worst: f64 = 0.0;
    for round in 1..=ROUNDS {
        let mut writer = engine.begin_write().unwrap();
        for (index, value) in values.iter_mut().enumerate() {
            rng.fill(value);
            writer.put(&key(index), value).unwrap();
        }
        writer.commit(durability).unwrap();
        if round % 10 == 0 {
            let report = engine.check().unwrap();
            assert_eq!(report.used_pages, engine.used_pages());
            let ratio = report.used_pages as f64 / report.live_pages as f64;
            worst = worst.max(ratio);
            eprintln!(
                "round {round}: used {} pages ({} KiB), live {}, free {}, pending {}, \
                 used/live {ratio:.2}",
                report.used_pages,
                report.used_pages * PAGE_SIZE as u64 / 1024,
                report.live_pages,
                report.free_pages,
                report.pending_pages,
            );
            assert!(
                ratio <= USED_OVER_LIVE_MAX,
                "round {round}: the store uses {} pages for {} live ones ({ratio:.2}x)",
                report.used_pages,
                report.live_pages
            );
        }
    }
    // The live data itself is sane: at least the raw bytes of the entries, and the
    // store holds it all.
    let report = engine.check().unwrap();
    let raw_bytes = (KEYS * (key(0).len() + VALUE_LEN)) as u64;
    assert!(report.live_pages * PAGE_SIZE as u64 >= raw_bytes);
    assert!(engine.pager().store().page_count() >= engine.used_pages());
    eprintln!("worst used/live over {ROUNDS} rounds: {worst:.2}");
    let expected: Vec<_> = values
        .into_iter()
        .enumerate()
        .map(|(index, value)| (key(index), value))
        .collect();
    assert_contents(&engine, &expected);
}

/// One commit giving every key a new random value.
fn rewrite_every_key(engine: &Engine<MemStore>, rng: &mut Rng) {
    let mut value = [0u8; VALUE_LEN];
    let mut writer = engine.begin_write().unwrap();
    for index in 0..KEYS {
        rng.fill(&mut value);
        writer.put(&key(index), &value).unwrap();
    }
    writer.commit(Durability::Immediate).unwrap();
}

/// The bound above is sensitive: readers pinning every version keep every page freed
/// after the first from being reused (no reuse at all), and then the store passes the
/// bound within a few rounds. Once the readers go, the store stops growing.
#[test]
fn without_reuse_the_bound_fails() {
    let engine = Engine::create(MemStore::new(PAGE_SIZE).unwrap(), &config()).unwrap();
    let mut rng = Rng::new(0x7069_6E6E_6564);
    let mut round = |engine: &Engine<MemStore>| rewrite_every_key(engine, &mut rng);
    round(&engine);
    let mut readers = vec![engine.begin_read()];
    let mut rounds_to_fail = None;
    for pinned_round in 1..=10 {
        round(&engine);
        readers.push(engine.begin_read());
        let report = engine.check().unwrap();
        let ratio = report.used_pages as f64 / report.live_pages as f64;
        eprintln!("pinned round {pinned_round}: used/live {ratio:.2}");
        if ratio > USED_OVER_LIVE_MAX {
            rounds_to_fail = Some(pinned_round);
            break;
        }
    }
    assert!(
        rounds_to_fail.is_some_and(|rounds| rounds <= 10),
        "without reuse the store stayed within {USED_OVER_LIVE_MAX}x of its live data"
    );
    let reader = readers.remove(0);
    readers.clear();
    assert_eq!(reader.iter().count(), KEYS);
    drop(reader);
    // The first commit after the reader goes frees the pinned pages; from then on the
    // writes fit in them.
    round(&engine);
    let used = engine.used_pages();
    for _ in 0..5 {
        round(&engine);
    }
    engine.check().unwrap();
    assert_eq!(
        engine.used_pages(),
        used,
        "the store grew with free pages to reuse"
    );
}

/// After most of the data is deleted, `compact` shrinks the store by the free run at its
/// end (it moves nothing, so free pages between live ones stay), the store checks, and
/// it holds and reopens to the same contents.
#[test]
fn compact_returns_the_free_tail() {
    let store = Arc::new(MemStore::new(PAGE_SIZE).unwrap());
    let engine = Engine::create(store.clone(), &config()).unwrap();
    let mut rng = Rng::new(0x0063_6F6D_7061_6374);
    let mut expected = Vec::with_capacity(KEYS);
    let mut writer = engine.begin_write().unwrap();
    for index in 0..KEYS {
        let mut value = vec![0u8; VALUE_LEN];
        rng.fill(&mut value);
        writer.put(&key(index), &value).unwrap();
        expected.push((key(index), value));
    }
    writer.commit(Durability::Immediate).unwrap();
    let full = engine.check().unwrap();
    let pages_full = engine.pager().store().page_count();

    // Keep the first 5% of the keys; the rest go with one range delete.
    let kept = KEYS / 20;
    let mut writer = engine.begin_write().unwrap();
    writer
        .delete_range(key(kept).as_slice()..key(KEYS).as_slice())
        .unwrap();
    writer.commit(Durability::Immediate).unwrap();
    expected.truncate(kept);
    // A few commits of small new entries spread over the whole key space. A range
    // delete waits in the journals until flushes carry it to the leaves (only then are
    // their pages freed), and flushes need new journal bytes below every branch:
    // rewriting only the kept keys would leave it pending forever.
    for round in 0..5 {
        let mut writer = engine.begin_write().unwrap();
        for index in (round..KEYS).step_by(5) {
            let new_key = format!("key/{index:08}/new").into_bytes();
            writer.put(&new_key, b"0123456789").unwrap();
            expected.push((new_key, b"0123456789".to_vec()));
        }
        writer.commit(Durability::Immediate).unwrap();
    }
    expected.sort();
    let before = engine.check().unwrap();
    let pages_before = engine.pager().store().page_count();
    assert!(
        before.live_pages < full.live_pages * 2 / 3,
        "deleting 95% of the values left {} of {} live pages",
        before.live_pages,
        full.live_pages
    );

    let returned = engine.compact().unwrap();
    let after = engine.check().unwrap();
    let pages_after = engine.pager().store().page_count();
    eprintln!(
        "full: {pages_full} pages ({} live); after deletes: {pages_before} pages \
         ({} live, {} free, {} pending); compact returned {returned}: {pages_after} pages \
         ({} live, {} free, {} pending)",
        full.live_pages,
        before.live_pages,
        before.free_pages,
        before.pending_pages,
        after.live_pages,
        after.free_pages,
        after.pending_pages,
    );
    assert!(returned > 0, "compact returned nothing");
    assert_eq!(pages_after, pages_before - returned);
    assert_eq!(pages_after, engine.used_pages());
    assert_eq!(after.tree.leaf_entry_count, before.tree.leaf_entry_count);
    assert_contents(&engine, &expected);

    // The compacted store reopens to the same contents and keeps working.
    drop(engine);
    let engine = Engine::open(store.clone(), &config()).unwrap();
    engine.check().unwrap();
    assert_contents(&engine, &expected);
    let mut writer = engine.begin_write().unwrap();
    writer.put(b"after-compact", b"yes").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    engine.check().unwrap();
    assert_eq!(
        engine
            .begin_read()
            .get(b"after-compact")
            .unwrap()
            .as_deref(),
        Some(&b"yes"[..])
    );
}

/// A queue: every commit appends 500 keys at the end and range-deletes everything but
/// the newest 5,000. The deleted entries must be reclaimed, not kept live under range
/// deletes that never reach the leaves (they did, until a range delete weighed more than
/// its bytes in a journal's budget: 86,000 entries were in leaves by round 900 and
/// rising). `GROWTH_ROUNDS` runs longer.
#[test]
fn a_sliding_window_of_range_deletes_stays_bounded() {
    // The default journal budget: the larger it is, the more range deletes it can hold.
    let engine = Engine::create(MemStore::new(PAGE_SIZE).unwrap(), &TreeConfig::default()).unwrap();
    let mut rng = Rng::new(0x0071_7565_7565);
    let mut value = vec![0u8; VALUE_LEN];
    let rounds = std::env::var("GROWTH_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(200usize);
    let (window, step) = (5_000usize, 500usize);
    let mut next = 0usize;
    for round in 1..=rounds {
        let mut writer = engine.begin_write().unwrap();
        for _ in 0..step {
            rng.fill(&mut value);
            writer.put(&key(next), &value).unwrap();
            next += 1;
        }
        if next > window {
            writer
                .delete_range(key(0).as_slice()..key(next - window).as_slice())
                .unwrap();
        }
        writer.commit(Durability::Immediate).unwrap();
        if round % 20 == 0 {
            let report = engine.check().unwrap();
            let ratio = report.used_pages as f64 / report.live_pages as f64;
            eprintln!(
                "round {round}: used {} live {} entries in leaves {} ratio {ratio:.2}",
                report.used_pages, report.live_pages, report.tree.leaf_entry_count
            );
            assert!(
                ratio <= USED_OVER_LIVE_MAX,
                "round {round}: {} pages used for {} live",
                report.used_pages,
                report.live_pages
            );
            assert!(
                report.tree.leaf_entry_count <= 4 * window as u64,
                "round {round}: {} entries still in leaves for a window of {window}",
                report.tree.leaf_entry_count
            );
        }
    }
    assert_eq!(engine.begin_read().iter().count(), window);
}

/// A reader of an old version keeps what that version reads and nothing written after
/// it: a page's birth and death revisions say which versions read it, so the overwrite
/// loop goes on reusing its own pages while the old reader lives (LMDB's long-lived
/// reader would make the file grow at every commit).
#[test]
fn an_old_reader_keeps_only_what_it_reads() {
    let engine = Engine::create(MemStore::new(PAGE_SIZE).unwrap(), &config()).unwrap();
    let mut rng = Rng::new(0x6F6C_6420);
    let mut round = |engine: &Engine<MemStore>| rewrite_every_key(engine, &mut rng);
    round(&engine);
    let reader = engine.begin_read();
    let pinned_live = engine.check().unwrap().live_pages;
    for _ in 0..30 {
        round(&engine);
    }
    let report = engine.check().unwrap();
    let ratio = (report.used_pages - pinned_live) as f64 / report.live_pages as f64;
    eprintln!(
        "old reader: {} used, {} live now, {} read by the reader; (used - reader's) / live {ratio:.2}",
        report.used_pages, report.live_pages, pinned_live
    );
    assert!(ratio <= USED_OVER_LIVE_MAX, "ratio {ratio:.2}");
    assert_eq!(reader.iter().count(), KEYS);
}
