//! Model-based tests of past revisions: random histories of writes (small values and
//! large ones, which go to overflow extents), deletes and range deletes, committed
//! immediately or eventually or aborted, with named snapshots created and dropped
//! (duplicate, missing and invalid names included), readers of past revisions and of
//! snapshots kept alive across later commits, syncs, compactions and reopens, under a
//! retention chosen per case. The model is every committed revision's contents, the
//! snapshot map and the retention floor. After every step:
//!
//! * every revision from `oldest_retained()` to the latest reads exactly its model, and
//!   the floor is the one the retention rule gives (it only rises; a compaction makes a
//!   revision too, and does not move the floor);
//! * every revision below the floor reads its model if a snapshot keeps it, and is
//!   otherwise `RevisionPruned`; a future revision is `RevisionNotFound`;
//! * every snapshot reads the revision it names, and lists with that revision and its
//!   commit time; `history()` lists the retained revisions with their commit times;
//! * `check()` passes (which also verifies that no page a kept version reads is free).
//!
//! Readers kept alive read their model when they are closed, however long ago their
//! revision was pruned. At the end of each case, with every snapshot and reader gone,
//! an overwrite loop must keep the store's size bounded by its live pages;
//! `holding_every_revision_breaks_the_space_bound` shows the bound is one a store that
//! kept every version would break.
//!
//! Two known engine bugs, each pinned by an ignored test below, are tolerated by the
//! model (it accepts the behaviour of today and the fixed one): a revision a compaction
//! followed is missing from `history()`, and a reopen prunes it.
//!
//! `THUNDERHEAD_VERSIONS_CASES` sets the number of random histories (default 400).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use thunderhead_core::{Durability, Engine, Error, Reader, Retention, TreeConfig};
use thunderhead_disk::MemStore;

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;
type Store = Arc<MemStore>;

/// Snapshot names the histories use. Drops and reads naming index `NAMES.len()` use a
/// name no snapshot ever has.
const NAMES: [&[u8]; 3] = [b"alpha", b"beta", b"gamma"];
const MISSING: &[u8] = b"never";

#[derive(Clone, Debug)]
enum Step {
    Put {
        key: u16,
        len: usize,
        fill: u8,
    },
    Delete {
        key: u16,
    },
    DeleteRange {
        start: u16,
        end: u16,
    },
    CreateSnapshot(usize),
    DropSnapshot(usize),
    /// An empty name (`false`) or one over the limit (`true`), for create or drop.
    InvalidSnapshotName {
        long: bool,
        create: bool,
    },
}

#[derive(Clone, Copy, Debug)]
enum End {
    Immediate,
    Eventual,
    Abort,
}

#[derive(Clone, Debug)]
enum Op {
    Transaction {
        steps: Vec<Step>,
        end: End,
    },
    /// A reader of a revision picked among 0 to the latest + 1; `keep` keeps it alive.
    ReadAt {
        revision: prop::sample::Index,
        keep: bool,
    },
    ReadSnapshot {
        name: usize,
        keep: bool,
    },
    CloseReader(prop::sample::Index),
    Sync,
    Compact,
    Reopen {
        sync: bool,
    },
}

fn key(index: u16) -> Vec<u8> {
    format!("key{index:04}").into_bytes()
}

fn snapshot_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..NAMES.len()).prop_map(Step::CreateSnapshot),
        3 => (0..=NAMES.len()).prop_map(Step::DropSnapshot),
        1 => (any::<bool>(), any::<bool>())
            .prop_map(|(long, create)| Step::InvalidSnapshotName { long, create }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0u16..400, prop_oneof![5 => 0usize..200, 1 => 1100usize..6000], any::<u8>())
            .prop_map(|(key, len, fill)| Step::Put { key, len, fill }),
        4 => (0u16..400).prop_map(|key| Step::Delete { key }),
        1 => (0u16..400, 0u16..60).prop_map(|(start, span)| Step::DeleteRange {
            start,
            end: start + span,
        }),
        2 => snapshot_step(),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![3 => Just(End::Immediate), 3 => Just(End::Eventual), 1 => Just(End::Abort)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (prop::collection::vec(step(), 1..40), end())
            .prop_map(|(steps, end)| Op::Transaction { steps, end }),
        2 => (prop::collection::vec(snapshot_step(), 1..4), end())
            .prop_map(|(steps, end)| Op::Transaction { steps, end }),
        4 => (any::<prop::sample::Index>(), any::<bool>())
            .prop_map(|(revision, keep)| Op::ReadAt { revision, keep }),
        2 => (0..=NAMES.len(), any::<bool>()).prop_map(|(name, keep)| Op::ReadSnapshot { name, keep }),
        3 => any::<prop::sample::Index>().prop_map(Op::CloseReader),
        1 => Just(Op::Sync),
        1 => Just(Op::Compact),
        1 => any::<bool>().prop_map(|sync| Op::Reopen { sync }),
    ]
}

fn retention() -> impl Strategy<Value = Retention> {
    prop_oneof![
        Just(Retention::LATEST),
        (1u64..6).prop_map(Retention::revisions),
        Just(Retention::all()),
    ]
}

fn config(retention: Retention, free_space_inline: bool) -> TreeConfig {
    TreeConfig {
        journal_bytes_max: 4096,
        cache_bytes_max: 256 * 1024,
        free_space_inline,
        retention,
        ..TreeConfig::default()
    }
}

fn fail(what: &str, error: Error) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {error}"))
}

fn contents(reader: &Reader<Store>) -> Result<Tree, TestCaseError> {
    let mut found = Tree::new();
    for entry in reader.iter() {
        let (key, value) = entry.map_err(|e| fail("iter", e))?;
        found.insert(key, value.to_vec());
    }
    Ok(found)
}

fn snapshot_name(index: usize) -> &'static [u8] {
    NAMES.get(index).copied().unwrap_or(MISSING)
}

/// A committed revision as the model knows it.
struct Revision {
    tree: Tree,
    /// Its commit time as the engine reported it right after the commit.
    time: u64,
}

struct Model {
    retention: Retention,
    /// Every revision ever committed, whether or not the store still keeps it.
    revisions: BTreeMap<u64, Revision>,
    snapshots: BTreeMap<Vec<u8>, u64>,
    /// The oldest retained revision.
    floor: u64,
    /// Revisions a compaction followed: compaction makes a revision without writing a
    /// catalog, so it records no history entry for its predecessor (which reads as the
    /// compacted revision, whose contents are the same).
    compacted: BTreeSet<u64>,
}

impl Model {
    fn latest(&self) -> u64 {
        *self.revisions.keys().next_back().expect("revision 0")
    }

    fn tree(&self, revision: u64) -> &Tree {
        &self.revisions[&revision].tree
    }

    /// Records the commit of `revision`: the floor the retention rule gives, which only
    /// rises (`revisions(n)` keeps the latest n, the new one included).
    fn commit(&mut self, revision: u64, tree: Tree, time: u64) {
        let mut floor = self.floor;
        if let Some(count) = self.retention.revisions {
            floor = floor.max((revision + 1).saturating_sub(count));
        }
        self.floor = floor.min(revision);
        self.revisions.insert(revision, Revision { tree, time });
    }

    /// The floor a reopen finds today: the oldest history entry at or above the floor
    /// (or the latest revision), which skips revisions a compaction followed. See
    /// `reopen_keeps_a_retained_revision_a_compaction_followed`.
    fn floor_found_by_reopen(&self) -> u64 {
        let latest = self.latest();
        (self.floor..latest)
            .find(|revision| !self.compacted.contains(revision))
            .unwrap_or(latest)
    }
}

/// Everything the store must say about its versions, against the model.
fn verify(engine: &Engine<Store>, model: &Model) -> Result<(), TestCaseError> {
    let latest = model.latest();
    prop_assert_eq!(engine.revision(), latest);
    prop_assert_eq!(engine.oldest_retained(), model.floor, "oldest retained");
    let reader = engine.begin_read();
    prop_assert_eq!(reader.revision(), latest);
    prop_assert_eq!(reader.time(), model.revisions[&latest].time);
    prop_assert_eq!(&contents(&reader)?, model.tree(latest), "latest");
    drop(reader);

    // History: the retained revisions, oldest first, with their commit times. The ones
    // a compaction followed have no entry of their own (they read as the next one).
    let history = engine.history().map_err(|e| fail("history", e))?;
    let listed: Vec<u64> = history.iter().map(|info| info.revision).collect();
    prop_assert!(
        listed.windows(2).all(|pair| pair[0] < pair[1]),
        "history out of order: {:?}",
        listed
    );
    prop_assert_eq!(listed.last().copied(), Some(latest));
    for info in &history {
        prop_assert!(
            info.revision >= model.floor,
            "history lists {}",
            info.revision
        );
        prop_assert_eq!(
            info.time,
            model.revisions[&info.revision].time,
            "history time"
        );
    }
    for revision in model.floor..=latest {
        prop_assert!(
            listed.contains(&revision) || model.compacted.contains(&revision),
            "history {:?} lacks retained revision {}",
            listed,
            revision
        );
    }

    let by_revision: BTreeSet<u64> = model.snapshots.values().copied().collect();
    for revision in 0..=latest {
        let retained = revision >= model.floor;
        match engine.begin_read_at(revision) {
            Ok(reader) => {
                prop_assert!(
                    retained || by_revision.contains(&revision),
                    "revision {} below the floor {} and no snapshot's, yet readable",
                    revision,
                    model.floor
                );
                prop_assert_eq!(reader.revision(), revision);
                prop_assert_eq!(
                    &contents(&reader)?,
                    model.tree(revision),
                    "revision {}",
                    revision
                );
                let time = model.revisions[&revision].time;
                if model.compacted.contains(&revision) {
                    // With no history entry of its own it reads as the next revision
                    // that has one (or the latest), whose contents are the same; today
                    // it reports that revision's commit time too.
                    let next = (revision + 1..latest)
                        .find(|later| !model.compacted.contains(later))
                        .unwrap_or(latest);
                    let next = model.revisions[&next].time;
                    prop_assert!(
                        reader.time() == time || reader.time() == next,
                        "revision {} reports time {}, committed at {}",
                        revision,
                        reader.time(),
                        time
                    );
                } else {
                    prop_assert_eq!(reader.time(), time, "time of revision {}", revision);
                }
            }
            Err(Error::RevisionPruned {
                revision: pruned,
                oldest_retained,
            }) => {
                prop_assert!(
                    !retained && !by_revision.contains(&revision),
                    "revision {} pruned (floor {}, snapshots {:?})",
                    revision,
                    model.floor,
                    model.snapshots
                );
                prop_assert_eq!((pruned, oldest_retained), (revision, model.floor));
            }
            Err(error) => return Err(fail(&format!("reading revision {revision}"), error)),
        }
    }
    prop_assert!(
        matches!(
            engine.begin_read_at(latest + 1),
            Err(Error::RevisionNotFound { revision, latest: found })
                if revision == latest + 1 && found == latest
        ),
        "a future revision"
    );

    let listed: BTreeMap<Vec<u8>, (u64, u64)> = engine
        .snapshots()
        .into_iter()
        .map(|info| (info.name, (info.revision, info.time)))
        .collect();
    let expected: BTreeMap<Vec<u8>, (u64, u64)> = model
        .snapshots
        .iter()
        .map(|(name, &revision)| (name.clone(), (revision, model.revisions[&revision].time)))
        .collect();
    prop_assert_eq!(listed, expected, "snapshots");
    for (name, &revision) in &model.snapshots {
        let reader = engine
            .begin_read_snapshot(name)
            .map_err(|e| fail("read snapshot", e))?;
        prop_assert_eq!(reader.revision(), revision);
        prop_assert_eq!(reader.time(), model.revisions[&revision].time);
        prop_assert_eq!(&contents(&reader)?, model.tree(revision), "snapshot");
    }
    let missing = engine
        .begin_read_snapshot(MISSING)
        .map(|reader| reader.revision());
    prop_assert!(
        matches!(missing, Err(Error::SnapshotNotFound { .. })),
        "a missing snapshot: {:?}",
        missing
    );

    let report = engine.check().map_err(|e| fail("check", e))?;
    prop_assert_eq!(report.revision, latest);
    prop_assert_eq!(
        report.past_versions as usize,
        history.len() - 1 + model.snapshots.len(),
        "past versions checked"
    );
    Ok(())
}

/// Applies a tree step to the writer and the model's next tree.
fn apply(
    writer: &mut thunderhead_core::Writer<'_, Store>,
    next: &mut Tree,
    view: &mut BTreeMap<Vec<u8>, u64>,
    changed_snapshots: &mut bool,
    step: &Step,
) -> Result<(), TestCaseError> {
    let base = writer.revision() - 1;
    match *step {
        Step::Put { key: k, len, fill } => {
            let value = vec![fill; len];
            writer.put(&key(k), &value).map_err(|e| fail("put", e))?;
            next.insert(key(k), value);
        }
        Step::Delete { key: k } => {
            writer.delete(&key(k)).map_err(|e| fail("delete", e))?;
            next.remove(&key(k));
        }
        Step::DeleteRange { start, end } => {
            let (start, end) = (key(start), key(end));
            writer
                .delete_range(start.as_slice()..end.as_slice())
                .map_err(|e| fail("delete range", e))?;
            next.retain(|k, _| !(k >= &start && k < &end));
        }
        Step::CreateSnapshot(index) => {
            let name = snapshot_name(index);
            prop_assert_eq!(writer.snapshot_exists(name), view.contains_key(name));
            match writer.create_snapshot(name) {
                Ok(revision) => {
                    prop_assert!(!view.contains_key(name), "created {:?} twice", name);
                    prop_assert_eq!(revision, base);
                    view.insert(name.to_vec(), base);
                    *changed_snapshots = true;
                }
                Err(Error::SnapshotExists { name: found }) => {
                    prop_assert!(view.contains_key(name));
                    prop_assert_eq!(found.as_slice(), name);
                }
                Err(error) => return Err(fail("create snapshot", error)),
            }
        }
        Step::DropSnapshot(index) => {
            let name = snapshot_name(index);
            match writer.drop_snapshot(name) {
                Ok(()) => {
                    prop_assert!(view.remove(name).is_some(), "dropped missing {:?}", name);
                    *changed_snapshots = true;
                }
                Err(Error::SnapshotNotFound { name: found }) => {
                    prop_assert!(!view.contains_key(name));
                    prop_assert_eq!(found.as_slice(), name);
                }
                Err(error) => return Err(fail("drop snapshot", error)),
            }
        }
        Step::InvalidSnapshotName { long, create } => {
            let name = if long { vec![b'x'; 256] } else { Vec::new() };
            let result = if create {
                writer.create_snapshot(&name).map(|_| ())
            } else {
                writer.drop_snapshot(&name)
            };
            prop_assert!(
                matches!(result, Err(Error::InvalidSnapshotName { .. })),
                "an invalid name: {:?}",
                result
            );
        }
    }
    Ok(())
}

/// Closes a reader: it must still read the revision it was opened at.
fn close(reader: Reader<Store>, model: &Model) -> Result<(), TestCaseError> {
    let revision = reader.revision();
    prop_assert_eq!(
        &contents(&reader)?,
        model.tree(revision),
        "a reader of revision {} (floor now {})",
        revision,
        model.floor
    );
    Ok(())
}

const LOOP_KEYS: u16 = 150;
const LOOP_ROUNDS: u32 = 40;
/// What beyond the retained copies the overwrite loop may use: partly filled free runs
/// and the pages of the commit in flight.
const LOOP_SLACK_PAGES: u64 = 32;

/// The most pages the overwrite loop may use with `live` live pages under a retention
/// of the latest `revisions`: each round rewrites nearly every page, so each retained
/// revision may hold a copy of the data, and so may the durable revision recovery falls
/// back to (one more), while the commit in flight writes the next (one more).
fn loop_bound(revisions: u64, live: u64) -> u64 {
    (revisions + 2) * live + LOOP_SLACK_PAGES
}

/// One round of the overwrite loop: the same keys, rewritten (every tenth large, of a
/// size that changes each round, so overflow extents of different lengths come and go).
fn overwrite_round(engine: &Engine<Store>, round: u32) -> thunderhead_core::Result<u64> {
    let mut writer = engine.begin_write()?;
    for index in 0..LOOP_KEYS {
        let len = if index % 10 == 0 {
            1100 + (round as usize * 977 + index as usize * 31) % 5000
        } else {
            20 + (round as usize + index as usize) % 100
        };
        writer.put(&key(index * 2), &vec![round as u8; len])?;
    }
    writer.commit(Durability::Immediate)
}

fn run(ops: &[Op], retention: Retention, inline: bool) -> Result<(), TestCaseError> {
    let store: Store = Arc::new(MemStore::new(4096).unwrap());
    let mut engine =
        Engine::create(store.clone(), &config(retention, inline)).map_err(|e| fail("create", e))?;
    let time = engine.begin_read().time();
    let mut model = Model {
        retention,
        revisions: [(
            0,
            Revision {
                tree: Tree::new(),
                time,
            },
        )]
        .into(),
        snapshots: BTreeMap::new(),
        floor: 0,
        compacted: BTreeSet::new(),
    };
    let mut readers: Vec<Reader<Store>> = Vec::new();
    verify(&engine, &model)?;
    for op in ops {
        match op {
            Op::Transaction { steps, end } => {
                let base = model.latest();
                let mut writer = engine.begin_write().map_err(|e| fail("begin", e))?;
                prop_assert_eq!(writer.revision(), base + 1);
                let mut next = model.tree(base).clone();
                let mut view = model.snapshots.clone();
                let mut changed_snapshots = false;
                for step in steps {
                    apply(
                        &mut writer,
                        &mut next,
                        &mut view,
                        &mut changed_snapshots,
                        step,
                    )?;
                }
                let durability = match end {
                    End::Abort => {
                        writer.abort();
                        verify(&engine, &model)?;
                        continue;
                    }
                    End::Immediate => Durability::Immediate,
                    End::Eventual => Durability::Eventual,
                };
                let revision = writer.commit(durability).map_err(|e| fail("commit", e))?;
                if revision == base {
                    // Nothing to commit: then nothing changed.
                    prop_assert!(!changed_snapshots, "snapshot changes not committed");
                    prop_assert_eq!(&next, model.tree(base), "changes not committed");
                } else {
                    prop_assert_eq!(revision, base + 1);
                    let time = engine.begin_read().time();
                    prop_assert!(time >= model.revisions[&base].time, "time went back");
                    model.commit(revision, next, time);
                    model.snapshots = view;
                }
            }
            Op::ReadAt { revision, keep } => {
                // `verify` reads every revision; this one may stay open.
                let revision = revision.index(model.latest() as usize + 2) as u64;
                let readable = revision <= model.latest()
                    && (revision >= model.floor
                        || model.snapshots.values().any(|&r| r == revision));
                match engine.begin_read_at(revision) {
                    Ok(reader) => {
                        prop_assert!(readable, "revision {} read", revision);
                        if *keep {
                            readers.push(reader);
                        }
                    }
                    Err(Error::RevisionPruned { .. } | Error::RevisionNotFound { .. }) => {
                        prop_assert!(!readable, "revision {} refused", revision);
                    }
                    Err(error) => return Err(fail("read at", error)),
                }
            }
            Op::ReadSnapshot { name, keep } => {
                let name = snapshot_name(*name);
                match engine.begin_read_snapshot(name) {
                    Ok(reader) => {
                        prop_assert_eq!(
                            Some(reader.revision()),
                            model.snapshots.get(name).copied()
                        );
                        if *keep {
                            readers.push(reader);
                        }
                    }
                    Err(Error::SnapshotNotFound { .. }) => {
                        prop_assert!(!model.snapshots.contains_key(name));
                    }
                    Err(error) => return Err(fail("read snapshot", error)),
                }
            }
            Op::CloseReader(index) => {
                if !readers.is_empty() {
                    let reader = readers.remove(index.index(readers.len()));
                    close(reader, &model)?;
                }
            }
            Op::Sync => {
                engine.sync().map_err(|e| fail("sync", e))?;
                prop_assert_eq!(engine.durable_revision(), model.latest());
            }
            Op::Compact => {
                let base = model.latest();
                engine.compact().map_err(|e| fail("compact", e))?;
                let time = engine.begin_read().time();
                let tree = model.tree(base).clone();
                model.revisions.insert(base + 1, Revision { tree, time });
                model.compacted.insert(base);
            }
            Op::Reopen { sync } => {
                for reader in readers.drain(..) {
                    close(reader, &model)?;
                }
                if *sync {
                    engine.sync().map_err(|e| fail("sync", e))?;
                }
                drop(engine);
                // A memory store loses nothing unsynced: the latest commit is whole.
                engine = Engine::open(store.clone(), &config(retention, inline))
                    .map_err(|e| fail("open", e))?;
                prop_assert!(engine.rejected_versions().is_empty());
                let floor = engine.oldest_retained();
                prop_assert!(
                    floor == model.floor || floor == model.floor_found_by_reopen(),
                    "reopened with the floor at {}, was {}",
                    floor,
                    model.floor
                );
                model.floor = floor;
            }
        }
        verify(&engine, &model)?;
    }
    for reader in readers.drain(..) {
        close(reader, &model)?;
    }

    // With every snapshot and reader gone, and the history bounded (a store keeping
    // every revision is reopened keeping the latest only), rewriting the same keys
    // reuses space.
    if !model.snapshots.is_empty() {
        let mut writer = engine.begin_write().map_err(|e| fail("begin", e))?;
        for name in model.snapshots.keys() {
            writer.drop_snapshot(name).map_err(|e| fail("drop", e))?;
        }
        writer
            .commit(Durability::Immediate)
            .map_err(|e| fail("commit", e))?;
    }
    if retention.revisions.is_none() {
        drop(engine);
        engine = Engine::open(store.clone(), &config(Retention::LATEST, inline))
            .map_err(|e| fail("open", e))?;
        // The new retention moves the floor at the next commit, which releases the
        // history's pages only once it has written its own.
        let mut writer = engine.begin_write().map_err(|e| fail("begin", e))?;
        writer
            .put(b"retention", b"latest")
            .map_err(|e| fail("put", e))?;
        writer
            .commit(Durability::Immediate)
            .map_err(|e| fail("commit", e))?;
        prop_assert_eq!(engine.oldest_retained(), engine.revision());
    }
    let before = engine.used_pages();
    let mut used = Vec::new();
    for round in 0..LOOP_ROUNDS {
        overwrite_round(&engine, round).map_err(|e| fail("overwrite", e))?;
        used.push(engine.used_pages());
    }
    let report = engine.check().map_err(|e| fail("check", e))?;
    // Reopened keeping the latest only, if it kept everything.
    let bound = loop_bound(retention.revisions.unwrap_or(1), report.live_pages);
    for (round, &used) in used.iter().enumerate() {
        prop_assert!(
            used <= before.max(bound),
            "round {} of the overwrite loop took the store from {} to {} pages, {} live \
             (bound {}): {:?}",
            round,
            before,
            used,
            report.live_pages,
            bound,
            used
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("THUNDERHEAD_VERSIONS_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Retained revisions, snapshots and readers read as committed; the floor follows
    /// the retention rule; pruned revisions are typed errors; the store checks clean
    /// after every step; with nothing held, overwriting reuses space.
    #[test]
    fn versions_agree_with_model(
        ops in prop::collection::vec(op(), 1..60),
        retention in retention(),
        inline: bool,
    ) {
        run(&ops, retention, inline)?;
    }
}

/// The overwrite loop's bound is not loose: the same loop with a reader holding every
/// revision breaks it many times over (and without them, on the same data, keeps it).
#[test]
fn holding_every_revision_breaks_the_space_bound() {
    let loop_on = |hold: bool| {
        let engine = Engine::create(
            Arc::new(MemStore::new(4096).unwrap()),
            &config(Retention::LATEST, true),
        )
        .unwrap();
        let mut readers = Vec::new();
        for round in 0..LOOP_ROUNDS {
            overwrite_round(&engine, round).unwrap();
            if hold {
                readers.push(engine.begin_read());
            }
        }
        let report = engine.check().unwrap();
        (report.used_pages, loop_bound(1, report.live_pages))
    };
    let (used, bound) = loop_on(false);
    eprintln!("nothing held: {used} pages used, bound {bound}");
    assert!(used <= bound, "{used} pages used, bound {bound}");
    let (used, bound) = loop_on(true);
    eprintln!("every revision held: {used} pages used, bound {bound}");
    assert!(
        used > 4 * bound,
        "{used} pages used, bound {bound}: the bound is loose"
    );
}

/// Commits `count` revisions of one put each.
fn commits(engine: &Engine<Store>, count: u32) {
    for index in 0..count {
        let mut writer = engine.begin_write().unwrap();
        writer.put(&key(index as u16), b"value").unwrap();
        writer.commit(Durability::Immediate).unwrap();
    }
}

/// Engine bug (ignored until fixed): with the latest 3 revisions retained, revisions 5
/// to 7 are retained after a compaction (6) and a commit (7), and 5 reads; after a
/// reopen 5 is pruned. A compaction records no history entry for its predecessor, and
/// a reopen takes the floor from the oldest history entry (`Engine::assemble`), so it
/// skips the retained revision without one.
#[test]

fn reopen_keeps_a_retained_revision_a_compaction_followed() {
    let store: Store = Arc::new(MemStore::new(4096).unwrap());
    let config = config(Retention::revisions(3), true);
    let engine = Engine::create(store.clone(), &config).unwrap();
    commits(&engine, 5);
    engine.compact().unwrap();
    commits(&engine, 1);
    assert_eq!((engine.revision(), engine.oldest_retained()), (7, 5));
    assert!(engine.begin_read_at(5).is_ok());
    drop(engine);
    let engine = Engine::open(store, &config).unwrap();
    assert_eq!(engine.oldest_retained(), 5, "the floor moved at reopen");
    assert!(engine.begin_read_at(5).is_ok(), "revision 5 was pruned");
}

/// Engine bug (ignored until fixed): `history()` promises every readable revision from
/// the floor on, but leaves out one a compaction followed (revision 5 here, which
/// `begin_read_at` reads, reporting the time of revision 6).
#[test]

fn history_lists_a_retained_revision_a_compaction_followed() {
    let engine = Engine::create(
        Arc::new(MemStore::new(4096).unwrap()),
        &config(Retention::revisions(3), true),
    )
    .unwrap();
    commits(&engine, 5);
    engine.compact().unwrap();
    commits(&engine, 1);
    assert!(engine.begin_read_at(5).is_ok());
    let listed: Vec<u64> = engine
        .history()
        .unwrap()
        .iter()
        .map(|info| info.revision)
        .collect();
    assert_eq!(listed, vec![5, 6, 7]);
}
