//! Named snapshots across crashes, on the disk layer's `FaultStore`, in the manner of
//! `tests/crash.rs`: random workloads of commits (immediate and eventual), snapshot
//! creates and drops, syncs and compactions, under a retention chosen by seed, run until
//! a planned crash point (every store operation after it fails), spread uniformly over
//! the operations the workload performs when nothing fails. The disk a power loss then
//! leaves (each unsynced write lost, kept or torn, by seed), and the one a process crash
//! leaves (every write kept), must open and check clean at a revision the run may leave:
//! at least the last one acknowledged as durable. There the snapshots listed must be
//! exactly those of that revision, each keeping the revision it was created at and
//! reading exactly that revision's contents; every snapshot whose create was
//! acknowledged (snapshot commits are durable) is present unless its drop was
//! acknowledged or was in flight. After a few more commits that reuse free pages, the
//! snapshots still read as recorded. Two reduced regression tests follow: a durable
//! revision's retained history, and a snapshot whose drop failed to sync, survive the
//! eventual commits made after them.
//!
//! `THUNDERHEAD_VERSIONS_CRASH_CASES` sets the number of crash points (default 800),
//! `THUNDERHEAD_VERSIONS_CRASH_SEED` replays one.

mod common;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use thunderhead_disk::{FaultPlan, FaultStore, MemStore, PageStore, SplitMix64 as Rng};
use thunderhead_tx::{Database, Durability, Error, Options, ReadTransaction, Retention};

use common::{env_u64, panic_message};

const PAGE_SIZE: usize = 4096;
const NAMES: [&[u8]; 2] = [b"alpha", b"beta"];
const SNAPSHOTS: [&[u8]; 4] = [b"one", b"two", b"three", b"four"];
const KEYS: u64 = 400;

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;
type Trees = BTreeMap<Vec<u8>, Tree>;
/// Snapshot name to the revision it keeps.
type Snapshots = BTreeMap<Vec<u8>, u64>;
type Faulty = Arc<FaultStore<MemStore>>;

fn retention(seed: u64) -> Retention {
    match seed % 3 {
        0 => Retention::LATEST,
        1 => Retention::revisions(3),
        _ => Retention::all(),
    }
}

fn options(seed: u64) -> Options {
    Options {
        page_size: PAGE_SIZE,
        journal_bytes: 4096,
        cache_bytes: 64 * 1024,
        retain_revisions: retention(seed),
        ..Options::default()
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// Puts (a length) or removes (none) keys of trees, then commits.
    Commit {
        ops: Vec<(usize, u64, Option<usize>)>,
        durability: Durability,
    },
    Snapshot(usize),
    Drop(usize),
    Sync,
    Compact,
}

fn key(index: u64) -> Vec<u8> {
    format!("k{index:03}").into_bytes()
}

fn value(len: usize, stamp: u64) -> Vec<u8> {
    let mut value = stamp.to_le_bytes().to_vec();
    value.resize(len.max(8), (stamp % 253) as u8);
    value
}

fn workload(seed: u64) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    (0..30)
        .map(|_| match rng.below(100) {
            0..=49 => Step::Commit {
                ops: (0..1 + rng.below(40))
                    .map(|_| {
                        let tree = rng.below(NAMES.len() as u64) as usize;
                        let key = rng.below(KEYS);
                        let len = match rng.below(10) {
                            0..=1 => None,
                            2 => Some(4100 + rng.below(3000) as usize),
                            _ => Some(rng.below(120) as usize),
                        };
                        (tree, key, len)
                    })
                    .collect(),
                durability: if rng.below(2) == 0 {
                    Durability::Immediate
                } else {
                    Durability::Eventual
                },
            },
            50..=71 => Step::Snapshot(rng.below(SNAPSHOTS.len() as u64) as usize),
            72..=87 => Step::Drop(rng.below(SNAPSHOTS.len() as u64) as usize),
            88..=94 => Step::Sync,
            _ => Step::Compact,
        })
        .collect()
}

/// What the run was told.
struct Log {
    /// Contents of every committed revision, and the snapshots as of it.
    revisions: BTreeMap<u64, (Trees, Snapshots)>,
    latest: u64,
    /// The latest revision acknowledged as durable.
    durable: u64,
    /// The revision of the last acknowledged snapshot create or drop (durable).
    snapshots_acknowledged: u64,
    /// The step that failed, if it would have committed: its revision and state.
    in_flight: Option<(u64, Trees, Snapshots)>,
    /// A drop that failed (it may or may not have happened).
    drop_in_flight: Option<Vec<u8>>,
}

impl Log {
    fn state(&self) -> &(Trees, Snapshots) {
        &self.revisions[&self.latest]
    }

    fn commit(&mut self, revision: u64, trees: Trees, snapshots: Snapshots) {
        assert_eq!(revision, self.latest + 1, "revisions are consecutive");
        self.revisions.insert(revision, (trees, snapshots));
        self.latest = revision;
    }
}

/// Runs `steps` until the first error (the crash).
fn drive<S: PageStore + 'static>(db: &Database<S>, seed: u64, steps: &[Step]) -> (Log, bool) {
    let mut log = Log {
        revisions: BTreeMap::from([(0, (Trees::new(), Snapshots::new()))]),
        latest: 0,
        durable: 0,
        snapshots_acknowledged: 0,
        in_flight: None,
        drop_in_flight: None,
    };
    for (index, step) in steps.iter().enumerate() {
        let stamp = seed << 8 ^ index as u64;
        let (trees, snapshots) = log.state().clone();
        let next = log.latest + 1;
        let result: Result<(), Error> = match step {
            Step::Commit { ops, durability } => (|| {
                let txn = db.begin_write()?;
                let mut trees = trees.clone();
                for &(tree, index, len) in ops {
                    let handle = txn.open_tree(NAMES[tree])?;
                    let entries = trees.entry(NAMES[tree].to_vec()).or_default();
                    match len {
                        Some(len) => {
                            let value = value(len, stamp ^ index << 32);
                            handle.insert(&key(index), &value)?;
                            entries.insert(key(index), value);
                        }
                        None => {
                            handle.remove(&key(index))?;
                            entries.remove(&key(index));
                        }
                    }
                }
                log.in_flight = Some((next, trees.clone(), snapshots.clone()));
                let revision = txn.commit_with(*durability)?;
                if revision == log.latest {
                    return Ok(());
                }
                log.commit(revision, trees, snapshots.clone());
                if *durability == Durability::Immediate {
                    log.durable = revision;
                }
                Ok(())
            })(),
            Step::Snapshot(pick) => {
                let name = SNAPSHOTS[*pick].to_vec();
                if snapshots.contains_key(&name) {
                    match db.snapshot(&name) {
                        Err(Error::SnapshotExists { .. }) => Ok(()),
                        Err(error) => Err(error),
                        Ok(revision) => panic!("a duplicate snapshot was created at {revision}"),
                    }
                } else {
                    let mut after = snapshots.clone();
                    after.insert(name.clone(), log.latest);
                    log.in_flight = Some((next, trees.clone(), after.clone()));
                    db.snapshot(&name).map(|kept| {
                        assert_eq!(kept, log.latest, "a snapshot keeps the latest revision");
                        log.commit(next, trees.clone(), after);
                        log.durable = next;
                        log.snapshots_acknowledged = next;
                    })
                }
            }
            Step::Drop(pick) => {
                let name = SNAPSHOTS[*pick].to_vec();
                if snapshots.contains_key(&name) {
                    let mut after = snapshots.clone();
                    after.remove(&name);
                    log.in_flight = Some((next, trees.clone(), after.clone()));
                    log.drop_in_flight = Some(name);
                    db.drop_snapshot(SNAPSHOTS[*pick]).map(|()| {
                        log.commit(next, trees.clone(), after);
                        log.durable = next;
                        log.snapshots_acknowledged = next;
                        log.drop_in_flight = None;
                    })
                } else {
                    match db.drop_snapshot(&name) {
                        Err(Error::SnapshotNotFound { .. }) => Ok(()),
                        Err(error) => Err(error),
                        Ok(()) => panic!("a missing snapshot was dropped"),
                    }
                }
            }
            Step::Sync => db.sync().map(|()| log.durable = log.latest),
            Step::Compact => {
                log.in_flight = Some((next, trees.clone(), snapshots.clone()));
                db.compact().map(|_| {
                    log.commit(next, trees.clone(), snapshots.clone());
                    log.durable = next;
                })
            }
        };
        match result {
            Ok(()) => {
                log.in_flight = None;
                log.drop_in_flight = None;
            }
            Err(_) => return (log, true),
        }
    }
    (log, false)
}

fn read_all<S: PageStore>(read: &ReadTransaction<S>) -> Result<Trees, Error> {
    let mut trees = Trees::new();
    for name in read.list_trees()? {
        let tree = read.open_tree(&name)?;
        let entries = tree
            .iter()
            .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
            .collect::<Result<Tree, Error>>()?;
        if !entries.is_empty() {
            trees.insert(name, entries);
        }
    }
    Ok(trees)
}

fn nonempty(trees: &Trees) -> Trees {
    trees
        .iter()
        .filter(|(_, tree)| !tree.is_empty())
        .map(|(name, tree)| (name.clone(), tree.clone()))
        .collect()
}

fn listed<S: PageStore + 'static>(db: &Database<S>) -> Snapshots {
    db.snapshots()
        .into_iter()
        .map(|info| (info.name, info.revision))
        .collect()
}

/// Every snapshot `db` lists reads exactly the contents its revision was committed with,
/// by name and by revision.
fn snapshots_read_as_recorded<S: PageStore + 'static>(db: &Database<S>, log: &Log, what: &str) {
    for (name, revision) in listed(db) {
        let (want, _) = &log.revisions[&revision];
        let by_name = db
            .begin_read_at_snapshot(&name)
            .unwrap_or_else(|error| panic!("{what}: snapshot {}: {error}", name.escape_ascii()));
        assert_eq!(by_name.revision(), revision);
        let found = read_all(&by_name).unwrap_or_else(|error| panic!("{what}: reading: {error}"));
        assert!(
            found == nonempty(want),
            "{what}: snapshot {} (revision {revision}) does not read as committed",
            name.escape_ascii()
        );
        let by_revision = db
            .begin_read_at(revision)
            .unwrap_or_else(|error| panic!("{what}: revision {revision}: {error}"));
        assert!(
            read_all(&by_revision).unwrap() == found,
            "{what}: by revision"
        );
    }
}

/// Opens `image` and checks what it holds against the log. `floor` is the oldest
/// revision it may hold.
fn recovers<S: PageStore + 'static>(
    store: S,
    seed: u64,
    log: &Log,
    floor: u64,
    what: &str,
) -> Database<S> {
    let db = Database::open_in(store, options(seed))
        .unwrap_or_else(|error| panic!("{what}: recovery failed: {error}"));
    let revision = db.revision();
    let (trees, snapshots) = match &log.in_flight {
        Some((in_flight, trees, snapshots)) if *in_flight == revision => (trees, snapshots),
        _ => {
            let (trees, snapshots) = log.revisions.get(&revision).unwrap_or_else(|| {
                panic!(
                    "{what}: recovered revision {revision}, past the latest {}",
                    log.latest
                )
            });
            (trees, snapshots)
        }
    };
    assert!(
        revision >= floor,
        "{what}: recovered revision {revision}, older than {floor} (acknowledged durable)"
    );
    let found = read_all(&db.begin_read()).unwrap();
    assert!(
        found == nonempty(trees),
        "{what}: revision {revision} does not hold what it committed"
    );
    let found_snapshots = listed(&db);
    assert_eq!(
        &found_snapshots, snapshots,
        "{what}: the snapshots of revision {revision}"
    );
    // Acknowledged creates survive unless dropped (or being dropped).
    let (_, acknowledged) = &log.revisions[&log.snapshots_acknowledged];
    for (name, kept) in acknowledged {
        if log.drop_in_flight.as_ref() == Some(name) {
            continue;
        }
        assert_eq!(
            found_snapshots.get(name),
            Some(kept),
            "{what}: the acknowledged snapshot {} is lost",
            name.escape_ascii()
        );
    }
    snapshots_read_as_recorded(&db, log, what);
    db.check()
        .unwrap_or_else(|error| panic!("{what}: check: {error}"));
    db
}

fn crash_case(seed: u64) -> bool {
    let steps = workload(seed);
    let fresh = || {
        Arc::new(FaultStore::new(
            MemStore::new(PAGE_SIZE).unwrap(),
            FaultPlan::default(),
        ))
    };
    // Operations of the workload when nothing fails.
    let operations = {
        let store = fresh();
        let db = Database::create_in(store.clone(), options(seed)).unwrap();
        let created = store.operations();
        let (_, failed) = drive(&db, seed, &steps);
        assert!(!failed, "the workload fails without faults");
        store.operations() - created
    };
    let store = fresh();
    let db = Database::create_in(store.clone(), options(seed)).unwrap();
    let point = 1 + Rng::new(!seed).below(operations.max(1));
    store.set_plan(FaultPlan {
        fail_after: Some(store.operations() + point),
        ..FaultPlan::default()
    });
    let (log, crashed) = drive(&db, seed, &steps);
    drop(db);
    let mut rng = Rng::new(seed ^ 0x5AFE);
    let image = store.crash_image(rng.next_u64());
    let memory = Arc::new(MemStore::from_image(PAGE_SIZE, &image).unwrap());
    let db = recovers(memory, seed, &log, log.durable, "a power loss");
    // Commits after recovery reuse free pages; no page a snapshot reads is among them.
    for round in 0..4u64 {
        let txn = db.begin_write().unwrap();
        for tree in NAMES {
            let handle = txn.open_tree(tree).unwrap();
            for index in (round..KEYS).step_by(3) {
                handle.insert(&key(index), &value(90, round)).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    db.check().unwrap();
    snapshots_read_as_recorded(&db, &log, "commits after recovery");
    drop(db);
    // A process crash keeps every write: the latest acknowledged state, or the step
    // in flight.
    let memory = Arc::new(MemStore::from_image(PAGE_SIZE, &store.written_image()).unwrap());
    recovers(memory, seed, &log, log.latest, "a process crash");
    crashed
}

/// Snapshots survive power loss at any point: those recovered read as recorded, and
/// every one acknowledged is there.
#[test]
fn snapshots_survive_crashes() {
    if let Some(seed) = env_u64("THUNDERHEAD_VERSIONS_CRASH_SEED") {
        crash_case(seed);
        return;
    }
    let cases = env_u64("THUNDERHEAD_VERSIONS_CRASH_CASES").unwrap_or(800);
    let mut failures = Vec::new();
    let mut crashed = 0;
    for seed in 0..cases {
        match catch_unwind(AssertUnwindSafe(|| crash_case(seed))) {
            Ok(reached) => crashed += u64::from(reached),
            Err(payload) => failures.push(format!("seed {seed}: {}", panic_message(&*payload))),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{cases} crash points, {crashed} reached");
    assert!(
        crashed >= cases * 9 / 10,
        "only {crashed} of {cases} crashed"
    );
}

/// Regression, reduced from failures of `snapshots_survive_crashes` with
/// `Retention::revisions(3)` (16 of the first 400 seeds) seen on the working tree while
/// the change that became eb71dfa ("Keep what the durable revision keeps") was under
/// way: a power loss after eventual commits recovers to the last durable revision, whose
/// catalog still lists the past revisions its retention kept; the eventual commits after
/// it, having moved the floor on, had reused those revisions' pages, so the recovered
/// database failed `check()` and its retained revision read as corrupted, on every
/// image. The kept set must hold what the durable revision itself keeps.
#[test]
fn a_durable_revisions_history_survives_later_eventual_commits() {
    let options = Options {
        page_size: PAGE_SIZE,
        journal_bytes: 4096,
        retain_revisions: Retention::revisions(2),
        ..Options::default()
    };
    let store: Faulty = Arc::new(FaultStore::new(
        MemStore::new(PAGE_SIZE).unwrap(),
        FaultPlan::default(),
    ));
    let db = Database::create_in(store.clone(), options.clone()).unwrap();
    let mut models = vec![Trees::new()];
    let mut write = |round: u64, durability| {
        let txn = db.begin_write().unwrap();
        let tree = txn.open_tree(b"t").unwrap();
        let mut model = models.last().unwrap().clone();
        for index in 0..200 {
            let value = value(60, round * 1000 + index);
            tree.insert(&key(index), &value).unwrap();
            model
                .entry(b"t".to_vec())
                .or_default()
                .insert(key(index), value);
        }
        assert_eq!(txn.commit_with(durability).unwrap(), round);
        models.push(model);
    };
    for round in 1..=3 {
        write(round, Durability::Immediate);
    }
    // Durable: revision 3, retaining 2 and 3.
    for round in 4..=8 {
        write(round, Durability::Eventual);
    }
    drop(db);
    let failures = durable_fallbacks(&store, &options, 3, &models);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Recovers 16 power-loss images of `store`: each must recover to `durable` or later,
/// check clean, and read every revision it keeps (retained, and snapshots) as `models`
/// says. Returns what went wrong, per image.
fn durable_fallbacks(
    store: &Faulty,
    options: &Options,
    durable: u64,
    models: &[Trees],
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut at_durable = 0;
    for seed in 0..16 {
        let image = store.crash_image(seed);
        let memory = Arc::new(MemStore::from_image(PAGE_SIZE, &image).unwrap());
        let db = Database::open_in(memory, options.clone()).unwrap();
        let revision = db.revision();
        assert!(
            revision >= durable,
            "image {seed}: a durable commit is lost"
        );
        at_durable += u64::from(revision == durable);
        let mut kept: Vec<u64> = (db.oldest_retained()..=revision).collect();
        kept.extend(db.snapshots().into_iter().map(|info| info.revision));
        let mut wrong = Vec::new();
        for past in kept {
            match db.begin_read_at(past).and_then(|read| read_all(&read)) {
                Ok(found) if found == models[past as usize] => {}
                Ok(_) => wrong.push(format!("revision {past} reads wrong data")),
                Err(error) => wrong.push(format!("revision {past}: {error}")),
            }
        }
        if let Err(error) = db.check() {
            wrong.push(format!("check: {error}"));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "image {seed}, recovered at revision {revision}: {}",
                wrong.join("; ")
            ));
        }
    }
    assert!(
        at_durable > 0,
        "no image recovered the durable revision {durable}"
    );
    failures
}

/// Regression, the same with a snapshot: a drop whose sync failed is in the database but
/// not durable, so a power loss may recover to the revision before it, where the
/// snapshot is listed; the eventual commits after the drop must not have reused its
/// pages (they had, on every image, in the same working tree).
#[test]
fn a_snapshot_whose_drop_failed_to_sync_survives_a_power_loss() {
    let options = Options {
        page_size: PAGE_SIZE,
        journal_bytes: 4096,
        ..Options::default()
    };
    let store: Faulty = Arc::new(FaultStore::new(
        MemStore::new(PAGE_SIZE).unwrap(),
        FaultPlan::default(),
    ));
    let db = Database::create_in(store.clone(), options.clone()).unwrap();
    let mut models = vec![Trees::new()];
    let write = |models: &mut Vec<Trees>, round: u64, durability| {
        let txn = db.begin_write().unwrap();
        let tree = txn.open_tree(b"t").unwrap();
        let mut model = models.last().unwrap().clone();
        for index in 0..200 {
            let value = value(60, round * 1000 + index);
            tree.insert(&key(index), &value).unwrap();
            model
                .entry(b"t".to_vec())
                .or_default()
                .insert(key(index), value);
        }
        assert_eq!(txn.commit_with(durability).unwrap(), models.len() as u64);
        models.push(model);
    };
    write(&mut models, 1, Durability::Immediate);
    assert_eq!(db.snapshot(b"s").unwrap(), 1);
    models.push(models[1].clone());
    write(&mut models, 3, Durability::Immediate);
    write(&mut models, 4, Durability::Immediate);
    store.set_plan(FaultPlan {
        fail_sync_once: Some(store.inner().stats().syncs + 1),
        ..FaultPlan::default()
    });
    assert!(db.drop_snapshot(b"s").is_err(), "the drop's sync fails");
    assert!(db.snapshots().is_empty(), "the drop is applied");
    models.push(models[4].clone());
    for round in 6..=9 {
        write(&mut models, round, Durability::Eventual);
    }
    drop(db);
    let failures = durable_fallbacks(&store, &options, 4, &models);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
