//! Fault injection against the durable store (`Engine`), exhaustively over small fixed
//! workloads (six commits, immediate and eventual, with off-tree values, a range delete,
//! a sync, a compaction and a reader pinned across commits), and damage to store files:
//!
//! * fail-once: every write, and every sync, of a workload fails in turn (one case each).
//!   The operation that meets the fault must report it; the engine must take new writers
//!   afterwards, check clean (no leaked page) and hold exactly what the acknowledged
//!   commits wrote; power-loss images of it recover to a version the run may leave, and
//!   once synced it reopens to the acknowledged version (or to a commit whose sync failed,
//!   which may have reached the disk).
//! * outage: every operation fails from the `n`th on (reads included) until the engine
//!   call that met it returns, then the store heals; checked as fail-once, for every `n`.
//! * fail-forever: the workload's store fails every operation after its `n`th, for every
//!   `n`. Nothing panics; the disk image a power loss then leaves recovers to a version
//!   the crash may leave.
//! * damaged files: bits flipped, ranges overwritten, pages misplaced, files truncated.
//!   Opening is a typed error, or every read gives the true value of a committed version
//!   or an error: never a wrong value, never a panic. Foreign, short and locked files
//!   are typed errors.

use std::any::Any;
use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thunderhead_core::{Durability, Engine, Error, Reader, TreeConfig, Writer};
use thunderhead_disk::{
    Error as DiskError, FaultPlan, FaultStore, Header, MemStore, PageStore, SplitMix64 as Rng,
};

const PAGE_SIZE: usize = 4096;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Store = Arc<FaultStore<MemStore>>;

/// Seeds of the workloads the fault sweeps run over.
const WORKLOAD_SEEDS: std::ops::Range<u64> = 0x5EED_0000..0x5EED_000C;

/// `len` random bytes, one draw each.
fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// Small journals (frequent flushes) and a small cache (frequent reads) for the fault
/// sweeps, and the free space in extents of its own (more writes to fail; the damaged
/// files keep it in the meta slot).
fn config() -> TreeConfig {
    TreeConfig {
        journal_bytes_max: 6 * 1024,
        cache_bytes_max: 8 * 1024,
        free_space_inline: false,
        ..TreeConfig::default()
    }
}

/// The store files: small journals, a cache of a quarter of a mebibyte.
fn file_config() -> TreeConfig {
    TreeConfig {
        journal_bytes_max: 6 * 1024,
        cache_bytes_max: 256 * 1024,
        ..TreeConfig::default()
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs `case`; a panic becomes an entry of `failures` naming `what`.
fn run_case(failures: &mut Vec<String>, what: String, case: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(case)) {
        failures.push(format!("{what}: {}", panic_message(&*payload)));
    }
}

/// Fails the test if any case failed, listing the first ones.
fn assert_no_failures(failures: &[String], cases: u64) {
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
}

/// An error's variant, and the storage error's inside it: `Storage(NoValidVersion)`.
fn error_kind(error: &Error) -> String {
    let name = |debug: String| {
        debug
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect()
    };
    match error {
        Error::Storage(inner) => format!("Storage({})", name(format!("{inner:?}"))),
        other => name(format!("{other:?}")),
    }
}

fn read_all<S: PageStore>(reader: &Reader<S>) -> Result<Model, Error> {
    reader
        .iter()
        .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
        .collect()
}

fn contents<S: PageStore>(engine: &Engine<S>, what: &str) -> Model {
    read_all(&engine.begin_read()).unwrap_or_else(|error| panic!("{what}: reading: {error}"))
}

// ---------------------------------------------------------------------------------------
// The workload of the fault sweeps

#[derive(Clone, Debug)]
enum Change {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
    DeleteRange { start: Vec<u8>, end: Vec<u8> },
}

#[derive(Clone, Debug)]
enum Step {
    Commit {
        changes: Vec<Change>,
        durability: Durability,
    },
    Sync,
    Compact,
    OpenReader,
    CloseReader,
}

fn key(index: u64) -> Vec<u8> {
    format!("k{index:04}").into_bytes()
}

/// `count` random changes over 300 keys: one range delete, a quarter deletes, the rest
/// puts, one in eight of them 2 to 8 KiB (off-tree).
fn transaction(rng: &mut Rng, count: u64) -> Vec<Change> {
    let range_at = rng.below(count);
    (0..count)
        .map(|index| {
            if index == range_at {
                let start = rng.below(300);
                Change::DeleteRange {
                    start: key(start),
                    end: key(start + 1 + rng.below(40)),
                }
            } else if rng.below(4) == 0 {
                Change::Delete {
                    key: key(rng.below(300)),
                }
            } else {
                let len = if rng.below(8) == 0 {
                    2048 + rng.below(6 * 1024 + 1)
                } else {
                    rng.below(100)
                };
                Change::Put {
                    key: key(rng.below(300)),
                    value: random_bytes(rng, len as usize),
                }
            }
        })
        .collect()
}

/// Six commits (immediate and eventual), a sync, a compaction and a reader pinned
/// across three commits.
fn workload(seed: u64) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut commit = |count, durability| Step::Commit {
        changes: transaction(&mut rng, count),
        durability,
    };
    vec![
        commit(80, Durability::Immediate),
        commit(40, Durability::Eventual),
        Step::OpenReader,
        commit(40, Durability::Eventual),
        Step::Sync,
        commit(40, Durability::Immediate),
        Step::CloseReader,
        commit(40, Durability::Eventual),
        Step::Compact,
        commit(40, Durability::Immediate),
    ]
}

fn apply(writer: &mut Writer<'_, Store>, change: &Change, model: &mut Model) -> Result<(), Error> {
    match change {
        Change::Put { key, value } => {
            writer.put(key, value)?;
            model.insert(key.clone(), value.clone());
        }
        Change::Delete { key } => {
            writer.delete(key)?;
            model.remove(key);
        }
        Change::DeleteRange { start, end } => {
            writer.delete_range(start.as_slice()..end.as_slice())?;
            model.retain(|key, _| key < start || key >= end);
        }
    }
    Ok(())
}

/// Runs `operation`; if it met an injected fault, it must have reported an error. In an
/// outage the store then heals.
fn observed<T>(
    fault: &Store,
    faults: Faults,
    what: &str,
    operation: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let before = fault.injected();
    let result = operation();
    let met = fault.injected() > before;
    assert!(
        !met || result.is_err(),
        "{what} met an injected fault but reported success"
    );
    if met && faults == Faults::Outage {
        fault.set_plan(FaultPlan::default());
    }
    result
}

/// What a run of the workload was told, and what it leaves uncertain.
struct Log {
    /// The contents of the latest acknowledged commit.
    model: Model,
    /// The versions a power loss may leave: the last durable one, then later ones
    /// (acknowledged or in flight).
    crash: Vec<Model>,
    /// Commits that failed since the last immediate one that succeeded. A failed sync may
    /// have let one reach the disk (its meta slot is written before the sync), so
    /// reopening may find it until a durable commit overwrites that slot.
    unsure: Vec<Model>,
    /// Errors reported.
    errors: u64,
    /// Truncations (by compaction): the fault store counts them as writes.
    truncations: u64,
}

/// How the store of a run fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Faults {
    /// One write or one sync fails; reads never do, and the store works on afterwards.
    Once,
    /// Every operation fails from some point (a read, a write or a sync) until the engine
    /// call that met the first failure returns; then the store works again.
    Outage,
    /// Every operation after some point fails.
    Forever,
}

/// Runs `steps`, continuing after every error with the next step and a fresh writer.
fn drive(engine: &Engine<Store>, fault: &Store, steps: &[Step], faults: Faults) -> Log {
    let mut log = Log {
        model: Model::new(),
        crash: vec![Model::new()],
        unsure: Vec::new(),
        errors: 0,
        truncations: 0,
    };
    let mut reader: Option<(Reader<Store>, Model)> = None;
    'steps: for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Commit {
                changes,
                durability,
            } => {
                let mut writer = engine
                    .begin_write()
                    .unwrap_or_else(|error| panic!("step {index}: no writer: {error}"));
                let mut next = log.model.clone();
                for change in changes {
                    let what = format!("step {index}: a change");
                    if observed(fault, faults, &what, || {
                        apply(&mut writer, change, &mut next)
                    })
                    .is_err()
                    {
                        log.errors += 1;
                        writer.abort();
                        continue 'steps;
                    }
                }
                // In flight: a power loss may leave it. Once the store fails for ever,
                // nothing reaches it any more.
                if faults != Faults::Forever || fault.injected() == 0 {
                    log.crash.push(next.clone());
                }
                let what = format!("step {index}: commit");
                match observed(fault, faults, &what, || writer.commit(*durability)) {
                    Ok(revision) => {
                        assert_eq!(revision, engine.revision(), "step {index}");
                        log.model = next;
                        if *durability == Durability::Immediate {
                            log.crash = vec![log.model.clone()];
                            log.unsure.clear();
                        }
                    }
                    Err(_) => {
                        log.errors += 1;
                        log.unsure.push(next);
                    }
                }
            }
            Step::Sync => match observed(fault, faults, "sync", || engine.sync()) {
                Ok(()) => log.crash = vec![log.model.clone()],
                Err(_) => log.errors += 1,
            },
            Step::Compact => {
                let pages = fault.page_count();
                match observed(fault, faults, "compact", || engine.compact()) {
                    Ok(_) => {
                        log.crash = vec![log.model.clone()];
                        log.unsure.clear();
                    }
                    Err(_) => log.errors += 1,
                }
                if fault.page_count() < pages {
                    log.truncations += 1;
                }
            }
            Step::OpenReader => reader = Some((engine.begin_read(), log.model.clone())),
            Step::CloseReader => {
                let (pinned, want) = reader.take().expect("a reader is open");
                let what = format!("step {index}: a pinned reader");
                match observed(fault, faults, &what, || read_all(&pinned)) {
                    Ok(found) => assert!(
                        found == want,
                        "{what} reads {} keys, not the {} of its version",
                        found.len(),
                        want.len()
                    ),
                    Err(error) => {
                        assert_ne!(faults, Faults::Once, "{what}: {error}");
                        log.errors += 1;
                    }
                }
            }
        }
    }
    log
}

fn fault_store(plan: FaultPlan) -> Store {
    Arc::new(FaultStore::new(MemStore::new(PAGE_SIZE).unwrap(), plan))
}

/// Opens what the fault store's disk would hold after a power loss decided by `seed`.
fn reopen(fault: &Store, seed: u64, what: &str) -> Engine<MemStore> {
    let image = fault.crash_image(seed);
    let engine = Engine::open(MemStore::from_image(PAGE_SIZE, &image).unwrap(), &config())
        .unwrap_or_else(|error| panic!("{what}: reopening: {error}"));
    engine
        .check()
        .unwrap_or_else(|error| panic!("{what}: reopened store: {error}"));
    engine
}

// ---------------------------------------------------------------------------------------
// Fail once

/// Write and sync operations the workload performs, Engine::create included.
fn count_writes_and_syncs(steps: &[Step]) -> (u64, u64) {
    let fault = fault_store(FaultPlan::default());
    let engine = Engine::create(fault.clone(), &config()).unwrap();
    let log = drive(&engine, &fault, steps, Faults::Once);
    assert_eq!(log.errors, 0);
    engine.check().unwrap();
    let stats = fault.inner().stats();
    (stats.writes + log.truncations, stats.syncs)
}

/// What reopening after a fault found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reopened {
    /// An expected version: the acknowledged one, or after a power loss one it may leave.
    Expected,
    /// A commit that reported failure (its sync failed after its meta slot was written).
    FailedCommit,
}

/// Reopens the disk image a power loss decided by `seed` leaves of `fault` and checks
/// that it holds one of `expected` or of the `failed` commits.
fn reopen_holds(
    fault: &Store,
    engine: &Engine<Store>,
    seed: u64,
    expected: &[&Model],
    failed: &[Model],
    what: &str,
) -> Reopened {
    let image = fault.crash_image(seed);
    let problem = match Engine::open(MemStore::from_image(PAGE_SIZE, &image).unwrap(), &config()) {
        Err(error) => format!("reopening failed: {error}"),
        Ok(reopened) => {
            reopened
                .check()
                .unwrap_or_else(|error| panic!("{what}: reopened store: {error}"));
            let found = contents(&reopened, what);
            if expected.contains(&&found) {
                return Reopened::Expected;
            }
            if failed.contains(&found) {
                return Reopened::FailedCommit;
            }
            format!(
                "reopened revision {} holds {} keys, none of the {} versions expected nor of \
                 the {} failed commits",
                reopened.revision(),
                found.len(),
                expected.len(),
                failed.len()
            )
        }
    };
    panic!(
        "{what} (image seed {seed:#x}): {problem} (the engine acknowledged revision {}, whose \
         end is page {}; the store holds {} pages)",
        engine.revision(),
        engine.used_pages(),
        fault.page_count()
    );
}

/// Power-loss images taken of each fail-once case after its workload.
const FAIL_ONCE_CRASH_IMAGES: usize = 3;

/// The workload with one write or sync failing (`plan`), or with an outage (`plan`'s
/// `fail_after`, counted from the start, create excluded); checks what it leaves.
/// Returns what the reopens found (none if create failed).
fn fail_once_case(steps: &[Step], plan: FaultPlan, faults: Faults) -> Vec<Reopened> {
    let outage = faults == Faults::Outage;
    let fault = fault_store(if outage { FaultPlan::default() } else { plan });
    let engine = match Engine::create(fault.clone(), &config()) {
        Ok(engine) => {
            assert_eq!(
                fault.injected(),
                0,
                "create met the fault and reported success"
            );
            engine
        }
        Err(_) => {
            assert_eq!(fault.injected(), 1);
            // A failed create leaves no store, or an empty one.
            let image = fault.crash_image(0);
            if let Ok(engine) =
                Engine::open(MemStore::from_image(PAGE_SIZE, &image).unwrap(), &config())
            {
                engine.check().unwrap();
                assert!(contents(&engine, "after a failed create").is_empty());
            }
            return Vec::new();
        }
    };
    if outage {
        fault.set_plan(plan);
    }
    let mut log = drive(&engine, &fault, steps, faults);
    if outage {
        assert!(fault.injected() > 0, "the outage began");
    } else {
        assert_eq!(fault.injected(), 1, "the planned fault was met once");
    }
    assert!(log.errors > 0, "the fault was reported");
    engine
        .check()
        .unwrap_or_else(|error| panic!("after the fault: {error}"));
    assert!(
        contents(&engine, "after the fault") == log.model,
        "the store differs from its acknowledged commits"
    );

    let mut found = Vec::new();
    // A power loss now leaves a version the workload may leave, or a failed commit.
    let mut rng =
        Rng::new((plan.fail_write_once.unwrap_or(0) << 8) | plan.fail_sync_once.unwrap_or(0));
    for _ in 0..FAIL_ONCE_CRASH_IMAGES {
        let expected: Vec<&Model> = log.crash.iter().collect();
        found.push(reopen_holds(
            &fault,
            &engine,
            rng.next_u64(),
            &expected,
            &log.unsure,
            "recovered from a power loss after the fault",
        ));
    }

    // Once synced, the disk reopens to the acknowledged version, or to a failed commit
    // that a failed sync left on it.
    engine.sync().unwrap();
    found.push(reopen_holds(
        &fault,
        &engine,
        0,
        &[&log.model],
        &log.unsure,
        "reopened after the fault",
    ));

    // The engine takes new commits, and they reopen exactly.
    let mut writer = engine.begin_write().unwrap();
    writer.put(b"after-the-fault", b"yes").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    log.model
        .insert(b"after-the-fault".to_vec(), b"yes".to_vec());
    engine
        .check()
        .unwrap_or_else(|error| panic!("after a new commit: {error}"));
    found.push(reopen_holds(
        &fault,
        &engine,
        0,
        &[&log.model],
        &[],
        "reopened after a new commit",
    ));
    found
}

/// Which faults a sweep injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sweep {
    /// Every write, then every sync, fails once (one case each, create's included).
    WritesAndSyncs,
    /// An outage begins at every operation in turn (create excluded).
    Outages,
}

/// Runs a sweep over the fixed workloads. Returns the fault points and what the reopens
/// found, with counts.
fn sweep(kind: Sweep) -> (u64, BTreeMap<String, u64>) {
    let mut points = 0;
    let mut reopens: BTreeMap<String, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    for seed in WORKLOAD_SEEDS {
        let steps = workload(seed);
        let (plans, faults): (Vec<FaultPlan>, Faults) = match kind {
            Sweep::WritesAndSyncs => {
                let (writes, syncs) = count_writes_and_syncs(&steps);
                // Past the last write and sync, nothing fails: the sweep covers every one.
                let beyond = FaultPlan {
                    fail_write_once: Some(writes + 1),
                    fail_sync_once: Some(syncs + 1),
                    fail_after: None,
                    ..FaultPlan::default()
                };
                let fault = fault_store(beyond);
                let engine = Engine::create(fault.clone(), &config()).unwrap();
                drive(&engine, &fault, &steps, Faults::Once);
                assert_eq!(
                    fault.injected(),
                    0,
                    "seed {seed:#x}: uncounted writes or syncs"
                );
                let plans = (1..=writes)
                    .map(|write| FaultPlan {
                        fail_write_once: Some(write),
                        ..FaultPlan::default()
                    })
                    .chain((1..=syncs).map(|sync| FaultPlan {
                        fail_sync_once: Some(sync),
                        ..FaultPlan::default()
                    }));
                (plans.collect(), Faults::Once)
            }
            Sweep::Outages => {
                let (created, operations) = count_operations(&steps);
                let plans = (0..operations).map(|point| FaultPlan {
                    fail_after: Some(created + point),
                    ..FaultPlan::default()
                });
                (plans.collect(), Faults::Outage)
            }
        };
        points += plans.len() as u64;
        for plan in plans {
            run_case(
                &mut failures,
                format!("workload {seed:#x}, {plan:?}"),
                || {
                    for found in fail_once_case(&steps, plan, faults) {
                        *reopens.entry(format!("{found:?}")).or_default() += 1;
                    }
                },
            );
        }
    }
    assert_no_failures(&failures, points);
    (points, reopens)
}

/// Each write and sync of 12 workloads fails once in turn: reported; store sound live and reopened.
#[test]
fn every_failed_write_or_sync_is_reported_and_leaves_a_consistent_store() {
    // One case per write and per sync (create's included).
    let (points, reopens) = sweep(Sweep::WritesAndSyncs);
    println!("{points} fail-once fault points; reopens found: {reopens:?}");
}

/// An outage begins at each operation of 12 workloads and ends with its call: store sound after.
#[test]
fn an_outage_at_every_operation_is_reported_and_leaves_a_consistent_store() {
    // Reads fail too (a flush loading a child mid-put, a pinned reader), then the store
    // heals: the engine must go on with new writers as after a failed write.
    let (points, reopens) = sweep(Sweep::Outages);
    println!("{points} outage points; reopens found: {reopens:?}");
}

/// Regression: immediate commits after a write failed past the store's end reopen (the
/// aborted writer's pages past the end were once still counted in the store's length).
#[test]
fn failed_write_past_the_end_keeps_later_commits_reopenable() {
    let fault = fault_store(FaultPlan::default());
    let engine = Engine::create(fault.clone(), &config()).unwrap();
    let mut writer = engine.begin_write().unwrap();
    writer.put(b"a", b"1").unwrap();
    assert_eq!(writer.commit(Durability::Immediate).unwrap(), 1);
    let pages = fault.page_count();

    // The next write fails: a 64 KiB value, allocated past the end of the store. The writer
    // is aborted; the commits after it are acknowledged immediately, so each must reopen.
    fault.set_plan(FaultPlan {
        fail_write_once: Some(fault.inner().stats().writes + 1),
        ..FaultPlan::default()
    });
    let mut writer = engine.begin_write().unwrap();
    assert!(writer.put(b"big", &[7; 64 * 1024]).is_err());
    writer.abort();
    assert_eq!(fault.injected(), 1);

    let mut writer = engine.begin_write().unwrap();
    writer.put(b"b", b"2").unwrap();
    assert_eq!(writer.commit(Durability::Immediate).unwrap(), 2);
    engine.check().unwrap();
    let reopened = reopen(&fault, 0, "revision 2");
    assert_eq!(
        reopened.revision(),
        2,
        "an acknowledged durable commit was lost: revision 2 ends at page {} but the store \
         holds {} pages (it held {pages} before the failed write)",
        engine.used_pages(),
        fault.page_count()
    );
    drop(reopened);

    for (revision, key) in [(3, b"c"), (4, b"d")] {
        let mut writer = engine.begin_write().unwrap();
        writer.put(key, b"3").unwrap();
        assert_eq!(writer.commit(Durability::Immediate).unwrap(), revision);
    }
    let reopened = reopen(&fault, 0, "revision 4");
    assert_eq!(reopened.revision(), 4);
    assert_eq!(contents(&reopened, "revision 4").len(), 4);
}

// ---------------------------------------------------------------------------------------
// Fail forever

/// Store operations after Engine::create, and the count create itself performs.
fn count_operations(steps: &[Step]) -> (u64, u64) {
    let fault = fault_store(FaultPlan::default());
    let engine = Engine::create(fault.clone(), &config()).unwrap();
    let created = fault.operations();
    drive(&engine, &fault, steps, Faults::Once);
    (created, fault.operations() - created)
}

/// Power-loss images taken of each fail-forever case.
const CRASH_IMAGES: u64 = 3;

/// The workload on a store that fails every operation after `created + point`, then
/// [`CRASH_IMAGES`] power losses. Returns how many recovered a version later than the
/// last durable one.
fn fail_forever_case(steps: &[Step], created: u64, point: u64) -> u64 {
    let fault = fault_store(FaultPlan::default());
    let engine = Engine::create(fault.clone(), &config()).unwrap();
    assert_eq!(fault.operations(), created);
    fault.set_plan(FaultPlan {
        fail_after: Some(created + point),
        ..FaultPlan::default()
    });
    let log = drive(&engine, &fault, steps, Faults::Forever);
    // The failed engine still answers, with errors.
    let _ = engine.check();
    let _ = read_all(&engine.begin_read());
    if let Ok(mut writer) = engine.begin_write() {
        let _ = writer.put(b"after-the-failure", b"lost");
        let _ = writer.commit(Durability::Immediate);
    }
    let _ = engine.sync();
    let _ = engine.compact();
    drop(engine);

    let mut later = 0;
    let mut rng = Rng::new(point);
    for _ in 0..CRASH_IMAGES {
        let seed = rng.next_u64();
        let what = format!("crash seed {seed:#x}");
        let store = Arc::new(MemStore::from_image(PAGE_SIZE, &fault.crash_image(seed)).unwrap());
        let reopened = Engine::open(Arc::clone(&store), &config())
            .unwrap_or_else(|error| panic!("{what}: recovery failed: {error}"));
        reopened
            .check()
            .unwrap_or_else(|error| panic!("{what}: recovered store: {error}"));
        let mut found = contents(&reopened, &what);
        let position = log.crash.iter().position(|model| *model == found);
        let position = position.unwrap_or_else(|| {
            panic!(
                "{what}: recovered {} keys, matching none of the {} versions the failure \
                 could leave",
                found.len(),
                log.crash.len()
            )
        });
        later += u64::from(position > 0);
        // The recovered store takes commits, and they reopen.
        let mut writer = reopened.begin_write().unwrap();
        writer.put(b"after-recovery", b"yes").unwrap();
        writer.commit(Durability::Immediate).unwrap();
        reopened
            .check()
            .unwrap_or_else(|error| panic!("{what}: after a new commit: {error}"));
        drop(reopened);
        found.insert(b"after-recovery".to_vec(), b"yes".to_vec());
        let again = Engine::open(store, &config())
            .unwrap_or_else(|error| panic!("{what}: reopening after recovery: {error}"));
        assert!(
            contents(&again, &what) == found,
            "{what}: the commit after recovery did not reopen"
        );
    }
    later
}

/// All operations fail from each point of 12 workloads on: no panic; power-loss images recover.
#[test]
fn failing_forever_at_every_operation_recovers_a_committed_version() {
    // One case per operation index (reads included). After the point the workload goes on
    // and every step must fail cleanly; then three power-loss images per case recover,
    // check clean, hold the last durable version, a later acknowledged one or the one in
    // flight, and take a commit that reopens.
    let (mut points, mut later) = (0, 0);
    let mut failures = Vec::new();
    for seed in WORKLOAD_SEEDS {
        let steps = workload(seed);
        let (created, operations) = count_operations(&steps);
        for point in 0..=operations {
            run_case(
                &mut failures,
                format!("workload {seed:#x}, fail after {created} + {point} operations"),
                || later += fail_forever_case(&steps, created, point),
            );
        }
        points += operations + 1;
    }
    assert_no_failures(&failures, points);
    println!(
        "{points} fail-forever fault points, {} power-loss images, {later} recovered a \
         version past the last durable one",
        points * CRASH_IMAGES
    );
}

// ---------------------------------------------------------------------------------------
// Damaged files

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("thunderhead-faults-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Small values mostly, some of 300 to 900 bytes, one in twenty off-tree (1.5 to 9 KiB).
fn mixed_value(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(20) {
        0 => 1500 + rng.below(7500),
        1..=3 => 300 + rng.below(600),
        _ => rng.below(100),
    };
    random_bytes(rng, len as usize)
}

/// A store of 3,000 keys (revision 1) with 300 of them rewritten or deleted (revision 2),
/// both committed immediately. Returns the contents of each revision.
fn build_store_file(path: &Path) -> Vec<Model> {
    let engine = Engine::create_file(path, PAGE_SIZE, &file_config()).unwrap();
    let mut rng = Rng::new(0x00F1_1E5E);
    let mut models = vec![Model::new()];
    let mut model = Model::new();
    let mut writer = engine.begin_write().unwrap();
    for index in 0..3000 {
        let key = format!("key{index:05}").into_bytes();
        let value = mixed_value(&mut rng);
        writer.put(&key, &value).unwrap();
        model.insert(key, value);
    }
    assert_eq!(writer.commit(Durability::Immediate).unwrap(), 1);
    models.push(model.clone());
    let mut writer = engine.begin_write().unwrap();
    for _ in 0..300 {
        let key = format!("key{:05}", rng.below(3000)).into_bytes();
        if rng.below(3) == 0 {
            writer.delete(&key).unwrap();
            model.remove(&key);
        } else {
            let value = mixed_value(&mut rng);
            writer.put(&key, &value).unwrap();
            model.insert(key, value);
        }
    }
    assert_eq!(writer.commit(Durability::Immediate).unwrap(), 2);
    models.push(model);
    engine.check().unwrap();
    assert!(contents(&engine, "the original") == models[2]);
    models
}

/// Damages a copy of `original` as `seed` decides; returns it and what was done.
fn damage(original: &[u8], seed: u64) -> (Vec<u8>, &'static str, String) {
    let mut rng = Rng::new(seed);
    let mut bytes = original.to_vec();
    // A quarter of the cases aim at the header and the meta slots.
    let span = if rng.below(4) == 0 {
        3 * PAGE_SIZE
    } else {
        bytes.len()
    };
    let at = rng.below(span as u64) as usize;
    match seed % 4 {
        0 => {
            let bit = rng.below(8);
            bytes[at] ^= 1 << bit;
            (bytes, "bit flip", format!("bit {bit} of byte {at} flipped"))
        }
        1 => {
            let end = (at + 1 + rng.below(4096) as usize).min(bytes.len());
            let garbage = random_bytes(&mut rng, end - at);
            bytes[at..end].copy_from_slice(&garbage);
            let what = format!("bytes {at}..{end} overwritten with garbage");
            (bytes, "garbage", what)
        }
        2 => {
            // A whole page written to the wrong place: its own checksum still holds.
            let pages = bytes.len() / PAGE_SIZE;
            let (from, to) = (rng.below(pages as u64) as usize, at / PAGE_SIZE);
            let page = bytes[from * PAGE_SIZE..(from + 1) * PAGE_SIZE].to_vec();
            bytes[to * PAGE_SIZE..(to + 1) * PAGE_SIZE].copy_from_slice(&page);
            (
                bytes,
                "misplaced page",
                format!("page {from} copied over page {to}"),
            )
        }
        _ => {
            bytes.truncate(at);
            (bytes, "truncation", format!("truncated to {at} bytes"))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Opened {
    /// `open_file` returned this kind of error.
    Refused(String),
    /// Opened an older revision (the newer one failed verification).
    Older,
    /// Opened the latest revision; some reads failed.
    ReadErrors,
    /// Opened the latest revision and read everything.
    Clean,
}

/// Opens a damaged store and reads everything: every read gives the true value of the
/// revision opened, or an error.
fn read_damaged(path: &Path, models: &[Model]) -> Result<Opened, String> {
    let engine = match Engine::open_file(path, &file_config()) {
        Ok(engine) => engine,
        Err(error) => return Ok(Opened::Refused(error_kind(&error))),
    };
    let revision = engine.revision();
    let model = models
        .get(revision as usize)
        .ok_or_else(|| format!("opened revision {revision}, which was never committed"))?;
    // Falling back past the newest commit is never silent.
    if revision + 1 < models.len() as u64 && engine.rejected_versions().is_empty() {
        return Err(format!(
            "opened revision {revision} of {} without reporting why",
            models.len() - 1
        ));
    }
    let reader = engine.begin_read();
    let mut errors = 0;
    let mut seen: Option<Vec<u8>> = None;
    let mut count = 0;
    let mut complete = true;
    for entry in reader.iter() {
        match entry {
            Ok((key, value)) => {
                if seen.as_ref().is_some_and(|last| *last >= key) {
                    return Err(format!("iteration out of order at {key:?}"));
                }
                match model.get(&key) {
                    Some(want) if want[..] == value[..] => {}
                    Some(_) => return Err(format!("iteration: wrong value for {key:?}")),
                    None => return Err(format!("iteration: {key:?} was never stored")),
                }
                seen = Some(key);
                count += 1;
            }
            Err(_) => {
                errors += 1;
                complete = false;
                break;
            }
        }
    }
    if complete && count != model.len() {
        return Err(format!(
            "iteration ended without an error after {count} of {} keys",
            model.len()
        ));
    }
    for (key, want) in model {
        match reader.get(key) {
            Ok(Some(value)) if value[..] == want[..] => {}
            Ok(Some(_)) => return Err(format!("get: wrong value for {key:?}")),
            Ok(None) => return Err(format!("get: {key:?} is missing")),
            Err(_) => errors += 1,
        }
    }
    match reader.get(b"key99999") {
        Ok(None) | Err(_) => {}
        Ok(Some(_)) => return Err("get: a value for a key never stored".into()),
    }
    drop(reader);
    let _ = engine.check();
    // Writing to a damaged store fails or works; what it committed reads back.
    if let Ok(mut writer) = engine.begin_write()
        && writer.put(b"key-new", b"after the damage").is_ok()
        && writer.commit(Durability::Eventual).is_ok()
    {
        match engine.begin_read().get(b"key-new") {
            Ok(Some(value)) if value[..] == b"after the damage"[..] => {}
            Ok(_) => return Err("a commit after the damage reads back wrong".into()),
            Err(_) => {}
        }
    }
    Ok(if revision != models.len() as u64 - 1 {
        Opened::Older
    } else if errors > 0 {
        Opened::ReadErrors
    } else {
        Opened::Clean
    })
}

/// 300 seeded damages to a store file: open_file errs, or every read is true or an error.
#[test]
fn damaged_store_files_give_true_values_or_errors() {
    // Bit flips, garbage ranges of up to 4 KiB, whole pages copied to the wrong place, and
    // truncations, a quarter of them aimed at the header and meta slots. Each case runs
    // under catch_unwind: a panic or a wrong value fails the test with its seed.
    let dir = TempDir::new("damage");
    let original = dir.join("original.th");
    let models = build_store_file(&original);
    let bytes = fs::read(&original).unwrap();
    let copy = dir.join("damaged.th");
    let mut outcomes: BTreeMap<(&str, Opened), u64> = BTreeMap::new();
    let mut failures = Vec::new();
    for seed in 0..300u64 {
        let (damaged, mode, what) = damage(&bytes, seed);
        fs::write(&copy, &damaged).unwrap();
        match catch_unwind(AssertUnwindSafe(|| read_damaged(&copy, &models))) {
            Ok(Ok(opened)) => *outcomes.entry((mode, opened)).or_default() += 1,
            Ok(Err(wrong)) => failures.push(format!("seed {seed} ({what}): {wrong}")),
            Err(payload) => failures.push(format!(
                "seed {seed} ({what}): panicked: {}",
                panic_message(&*payload)
            )),
        }
    }
    println!("a store file of {} bytes, 300 damage cases:", bytes.len());
    for ((mode, opened), count) in &outcomes {
        println!("  {mode}: {opened:?}: {count}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let opened = |wanted: fn(&Opened) -> bool| outcomes.keys().any(|(_, found)| wanted(found));
    assert!(
        opened(|found| matches!(found, Opened::Refused(_)))
            && opened(|found| *found == Opened::Older)
            && opened(|found| *found == Opened::ReadErrors)
            && opened(|found| *found == Opened::Clean),
        "the damage reached too few outcomes: {outcomes:?}"
    );
}

/// Empty, short, garbage and foreign files are typed errors; a store held open is Locked.
#[test]
fn foreign_short_and_locked_files_are_typed_errors() {
    // Empty, ten zero bytes, 50 KiB of garbage or zeros, a foreign header, a header alone
    // or with no valid meta slot: each a storage error, never a panic. Then a second
    // open_file of a store a live engine holds is Locked, and the lock goes with it.
    let dir = TempDir::new("files");
    let mut rng = Rng::new(0x0BAD_F11E);
    let mut foreign = b"SQLite format 3\0".to_vec();
    foreign.extend(random_bytes(&mut rng, 2 * PAGE_SIZE - foreign.len()));
    let header = Header {
        page_size: PAGE_SIZE,
    }
    .encode();
    let mut no_meta = header.clone();
    no_meta.extend(vec![0; 2 * PAGE_SIZE]);
    let mut no_meta_long = no_meta.clone();
    no_meta_long.extend(random_bytes(&mut rng, 4 * PAGE_SIZE));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("ten-zero-bytes", vec![0; 10]),
        ("garbage-50k", random_bytes(&mut rng, 50 * 1024)),
        ("zeros-50k", vec![0; 50 * 1024]),
        ("foreign-header", foreign),
        ("header-only", header.clone()),
        ("header-half-page", header[..PAGE_SIZE / 2].to_vec()),
        ("header-zeroed-meta", no_meta),
        ("header-zeroed-meta-garbage", no_meta_long),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        fs::write(&path, &bytes).unwrap();
        match catch_unwind(|| Engine::open_file(&path, &file_config()).map(drop)) {
            Err(payload) => panic!("{name}: open_file panicked: {}", panic_message(&*payload)),
            Ok(Ok(())) => panic!("{name}: opened as a store"),
            Ok(Err(error)) => assert!(matches!(error, Error::Storage(_)), "{name}: {error}"),
        }
    }

    let path = dir.join("locked.th");
    let engine = Engine::create_file(&path, PAGE_SIZE, &file_config()).unwrap();
    let mut writer = engine.begin_write().unwrap();
    writer.put(b"held", b"open").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    match Engine::open_file(&path, &file_config()) {
        Err(Error::Storage(DiskError::Locked { path: locked })) => assert_eq!(locked, path),
        Err(error) => panic!("a second open of a locked store: {error}"),
        Ok(_) => panic!("a second engine opened a store held by a live one"),
    }
    assert!(
        Engine::create_file(&path, PAGE_SIZE, &file_config()).is_err(),
        "create_file over an existing store"
    );
    drop(engine);
    let engine = Engine::open_file(&path, &file_config()).unwrap();
    engine.check().unwrap();
    assert_eq!(
        engine.begin_read().get(b"held").unwrap().as_deref(),
        Some(&b"open"[..])
    );
}
