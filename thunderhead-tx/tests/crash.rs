//! Crash and I/O-fault tests of the `Database` API on the disk layer's `FaultStore`.
//!
//! * Power loss: random workloads (six named trees; inserts, prefix-view inserts,
//!   removes and range removes; reads and scans checked inside the transaction; forks,
//!   renames and deletes of trees; transactions committed with `Durability::Immediate`
//!   or `Eventual`, aborted or dropped; read transactions pinned across commits and
//!   checked when closed; `sync` and `compact`; now and then spilling transactions) run
//!   until a planned crash point: every store operation after it fails, as if the
//!   machine stopped. As in the core engine's `tests/crash.rs`, the point is spread
//!   uniformly over the operations the workload performs when nothing fails. The disk
//!   image a power loss then leaves (each unsynced write lost, kept or torn by sector,
//!   by seed) must open, check clean, and hold exactly one of the states the crash may
//!   leave (every tree and its contents, read through `begin_read`): the state after the
//!   last durable commit, or after a later acknowledged or in-flight commit. The image
//!   a crash of the process leaves (every write kept) must hold the latest acknowledged
//!   state or the one in flight. The recovered database must take a durable commit that
//!   a further power loss keeps. A third of the cases crash again during recovery (or
//!   the commit after it), at a point spread over its operations, and must recover from
//!   that image to what the uninterrupted recovery found, with or without that commit.
//! * I/O errors: every write, and every sync, of fixed workloads fails once in turn.
//!   The call that meets the fault must report it and no other call may fail; the
//!   database stays usable (the workload goes on), holds the state before the failed
//!   step or (a failed sync) after it, checks clean, and power-loss images taken at the
//!   fault and after the workload recover to a state the run may leave: no commit
//!   acknowledged as durable is lost. Once synced it reopens to exactly the acknowledged
//!   state, and takes a new durable commit.
//!
//! Two bugs these tests found are kept as reduced regression tests at the end: a write
//! transaction that wrote nothing did not sync when committed with immediate durability,
//! and a compaction whose sync failed left the slot of the latest (eventual) commit
//! overwritten, so a later sync declared the wrong slot durable and a later durable
//! commit could be lost.
//!
//! `THUNDERHEAD_TX_CRASH_CASES` sets the number of power-loss crash points (default
//! 1,000), `THUNDERHEAD_TX_CRASH_SEED` replays one, and `THUNDERHEAD_TX_FAULT_WORKLOADS`
//! the number of fixed workloads the I/O-error sweep runs over (default 8).

mod common;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use thunderhead_disk::{CrashImage, FaultPlan, FaultStore, MemStore, PageStore, SplitMix64 as Rng};
use thunderhead_tx::{Database, Durability, Error, Options, ReadTransaction, WriteTransaction};

use common::{Tree, Trees, env_u64, panic_message, read_all};

const PAGE_SIZE: usize = 4096;

/// The trees workloads use. Writes go mostly to the first four; forks and renames go
/// to any of them, so that they often find their target free.
const NAMES: [&[u8]; 6] = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta"];
/// The prefix of the view some inserts go through.
const VIEW: &[u8] = b"v/";
/// The tree the commit after recovery creates.
const MARKER: &[u8] = b"after-crash";

type Entries = Vec<(Vec<u8>, Vec<u8>)>;
type Store = Arc<FaultStore<MemStore>>;
type Db = Database<Store>;

/// Small pages, journals and cache (frequent flushes, off-tree values from 1 KiB,
/// frequent reads); one seed in 32 spills its larger transactions' writes to the
/// scratch store (sparingly: creating one costs a sync of a scratch file).
fn options(seed: u64) -> Options {
    Options {
        page_size: PAGE_SIZE,
        journal_bytes: 6 * 1024,
        cache_bytes: 64 * 1024,
        spill_bytes: if seed.is_multiple_of(32) {
            12 * 1024
        } else {
            Options::default().spill_bytes
        },
        ..Options::default()
    }
}

fn fault_store(inner: MemStore, plan: FaultPlan) -> Store {
    Arc::new(FaultStore::new(inner, plan))
}

fn image_store(image: &CrashImage, plan: FaultPlan) -> Store {
    fault_store(MemStore::from_image(PAGE_SIZE, image).unwrap(), plan)
}

/// Runs `case`; a panic becomes an entry of `failures` naming `what`.
fn run_case<T>(failures: &mut Vec<String>, what: String, case: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(case)) {
        Ok(value) => Some(value),
        Err(payload) => {
            failures.push(format!("{what}: {}", panic_message(&*payload)));
            None
        }
    }
}

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

/// Every tree of the latest commit, with its contents.
fn contents<S: PageStore>(db: &Database<S>) -> Result<Trees, Error> {
    read_all(&db.begin_read())
}

/// A short description of a state, for messages.
fn describe(trees: &Trees) -> String {
    let trees: Vec<String> = trees
        .iter()
        .map(|(name, tree)| format!("{}: {} keys", name.escape_ascii(), tree.len()))
        .collect();
    format!("{{{}}}", trees.join(", "))
}

// ---------------------------------------------------------------------------------------
// Workloads

/// One operation inside a write transaction. Trees are indexes into [`NAMES`].
#[derive(Clone, Debug)]
enum Op {
    Insert {
        tree: usize,
        key: u64,
        len: usize,
        fill: u8,
    },
    ViewInsert {
        tree: usize,
        key: u64,
        fill: u8,
    },
    Remove {
        tree: usize,
        key: u64,
    },
    RemoveRange {
        tree: usize,
        start: u64,
        end: u64,
    },
    Get {
        tree: usize,
        key: u64,
    },
    Scan {
        tree: usize,
        start: u64,
        end: u64,
        reverse: bool,
    },
    Open {
        tree: usize,
    },
    Delete {
        tree: usize,
    },
    Rename {
        from: usize,
        to: usize,
    },
    Fork {
        from: usize,
        to: usize,
    },
    List,
}

/// How a write transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// `commit()` (the database's durability: immediate).
    Commit,
    CommitWith(Durability),
    Abort,
    Drop,
}

#[derive(Clone, Debug)]
enum Step {
    Transaction {
        ops: Vec<Op>,
        end: End,
    },
    Sync,
    Compact,
    /// A read transaction, kept open across later commits.
    OpenReader,
    /// Closes an open reader (this index modulo their count), checking that it still
    /// reads its state.
    CloseReader(u64),
    /// Reads the latest commit and compares it with the model.
    Verify,
}

const KEYS: u64 = 300;

fn key(index: u64) -> Vec<u8> {
    format!("k{index:03}").into_bytes()
}

/// A value of `len` bytes that differs from others of the same length by `fill`.
fn value(len: usize, fill: u8) -> Vec<u8> {
    (0..len)
        .map(|index| fill.wrapping_add((index as u8).wrapping_mul(7)))
        .collect()
}

fn random_op(rng: &mut Rng) -> Op {
    let tree = if rng.below(8) == 0 {
        4 + rng.below(2) as usize
    } else {
        rng.below(4) as usize
    };
    let other = rng.below(NAMES.len() as u64) as usize;
    let key = rng.below(KEYS);
    match rng.below(100) {
        0..=51 => Op::Insert {
            tree,
            key,
            // Now and then a value large enough to go off-tree.
            len: if rng.below(12) == 0 {
                1500 + rng.below(7000) as usize
            } else {
                rng.below(100) as usize
            },
            fill: rng.next_u64() as u8,
        },
        52..=55 => Op::ViewInsert {
            tree,
            key,
            fill: rng.next_u64() as u8,
        },
        56..=66 => Op::Remove { tree, key },
        67..=70 => Op::RemoveRange {
            tree,
            start: key,
            end: key + 1 + rng.below(60),
        },
        71..=76 => Op::Get { tree, key },
        77..=79 => Op::Scan {
            tree,
            start: key,
            end: key + rng.below(80),
            reverse: rng.below(2) == 0,
        },
        80..=81 => Op::Open { tree },
        82..=85 => Op::Delete { tree: other },
        86..=91 => Op::Rename {
            from: tree,
            to: other,
        },
        92..=98 => Op::Fork {
            from: tree,
            to: other,
        },
        _ => Op::List,
    }
}

fn random_transaction(rng: &mut Rng, max_ops: u64) -> Step {
    let ops = (0..1 + rng.below(max_ops))
        .map(|_| random_op(rng))
        .collect();
    let end = match rng.below(20) {
        0 => End::Abort,
        1 => End::Drop,
        2..=7 => End::CommitWith(Durability::Eventual),
        8..=12 => End::Commit,
        _ => End::CommitWith(Durability::Immediate),
    };
    Step::Transaction { ops, end }
}

/// The random workload of the power-loss test.
fn random_workload(seed: u64) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    (0..36)
        .map(|_| match rng.below(100) {
            0..=4 => Step::Sync,
            5..=6 => Step::Compact,
            7..=11 => Step::OpenReader,
            12..=16 => Step::CloseReader(rng.next_u64()),
            17..=19 => Step::Verify,
            _ => random_transaction(&mut rng, 40),
        })
        .collect()
}

/// A fixed workload of the I/O-error sweep: nine transactions (immediate, eventual, one
/// aborted), a sync, a compaction followed by a sync, and a reader pinned across
/// commits.
fn fixed_workload(seed: u64) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut transaction = |end| {
        let ops = (0..30).map(|_| random_op(&mut rng)).collect();
        Step::Transaction { ops, end }
    };
    vec![
        transaction(End::Commit),
        transaction(End::CommitWith(Durability::Eventual)),
        Step::OpenReader,
        transaction(End::CommitWith(Durability::Eventual)),
        transaction(End::Abort),
        Step::Sync,
        transaction(End::CommitWith(Durability::Immediate)),
        Step::CloseReader(0),
        transaction(End::CommitWith(Durability::Eventual)),
        Step::Compact,
        Step::Sync,
        transaction(End::Commit),
        transaction(End::CommitWith(Durability::Eventual)),
        transaction(End::CommitWith(Durability::Immediate)),
        Step::Verify,
    ]
}

fn collect_range(
    range: impl Iterator<Item = thunderhead_tx::Result<(Vec<u8>, thunderhead_tx::Value)>>,
) -> Result<Entries, Error> {
    range
        .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
        .collect()
}

/// Applies `op` to `txn` and to `trees` (the transaction's view). Outcomes the model
/// predicts (a fork onto an existing tree is `TreeExists`, say) are checked here and
/// panic when wrong; any other error is returned.
fn apply(txn: &WriteTransaction<Store>, op: &Op, trees: &mut Trees) -> Result<(), Error> {
    let name = |tree: usize| NAMES[tree].to_vec();
    match *op {
        Op::Insert {
            tree,
            key: index,
            len,
            fill,
        } => {
            let handle = txn.open_tree(NAMES[tree])?;
            let tree = trees.entry(name(tree)).or_default();
            handle.insert(&key(index), &value(len, fill))?;
            tree.insert(key(index), value(len, fill));
        }
        Op::ViewInsert {
            tree,
            key: index,
            fill,
        } => {
            let handle = txn.open_tree(NAMES[tree])?;
            let tree = trees.entry(name(tree)).or_default();
            handle.prefix(VIEW).insert(&key(index), &[fill])?;
            tree.insert([VIEW, &key(index)].concat(), vec![fill]);
        }
        Op::Remove { tree, key: index } => {
            let handle = txn.open_tree(NAMES[tree])?;
            let tree = trees.entry(name(tree)).or_default();
            handle.remove(&key(index))?;
            tree.remove(&key(index));
        }
        Op::RemoveRange { tree, start, end } => {
            let handle = txn.open_tree(NAMES[tree])?;
            let tree = trees.entry(name(tree)).or_default();
            let (start, end) = (key(start), key(end));
            handle.remove_range(start.as_slice()..end.as_slice())?;
            tree.retain(|key, _| *key < start || *key >= end);
        }
        Op::Get { tree, key: index } => {
            let handle = txn.open_tree(NAMES[tree])?;
            let want = trees
                .entry(name(tree))
                .or_default()
                .get(&key(index))
                .cloned();
            let found = handle.get(&key(index))?.map(|value| value.to_vec());
            assert!(
                found == want,
                "a transaction reads {} of \"{}\" wrong: {:?}, not {:?}",
                key(index).escape_ascii(),
                NAMES[tree].escape_ascii(),
                found.map(|value| value.len()),
                want.map(|value| value.len())
            );
        }
        Op::Scan {
            tree,
            start,
            end,
            reverse,
        } => {
            let handle = txn.open_tree(NAMES[tree])?;
            let model = trees.entry(name(tree)).or_default();
            let (start, end) = (key(start), key(end));
            let range = handle.range(start.as_slice()..end.as_slice())?;
            let found = if reverse {
                collect_range(range.rev())?
            } else {
                collect_range(range)?
            };
            let mut want: Entries = if start < end {
                model
                    .range(start.clone()..end.clone())
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            if reverse {
                want.reverse();
            }
            assert!(
                found == want,
                "a transaction scans \"{}\" wrong: {} entries, not {}",
                NAMES[tree].escape_ascii(),
                found.len(),
                want.len()
            );
        }
        Op::Open { tree } => {
            txn.open_tree(NAMES[tree])?;
            trees.entry(name(tree)).or_default();
        }
        Op::Delete { tree } => {
            let existed = txn.delete_tree(NAMES[tree])?;
            assert_eq!(
                existed,
                trees.remove(NAMES[tree]).is_some(),
                "delete_tree of \"{}\"",
                NAMES[tree].escape_ascii()
            );
        }
        Op::Rename { from, to } => {
            let result = txn.rename_tree(NAMES[from], NAMES[to]);
            let want = if !trees.contains_key(NAMES[from]) {
                "TreeNotFound"
            } else if from != to && trees.contains_key(NAMES[to]) {
                "TreeExists"
            } else {
                "Ok"
            };
            match (result, want) {
                (Ok(()), "Ok") => {
                    let tree = trees.remove(NAMES[from]).unwrap();
                    trees.insert(name(to), tree);
                }
                (Err(Error::TreeNotFound { .. }), "TreeNotFound")
                | (Err(Error::TreeExists { .. }), "TreeExists") => {}
                (Err(error), _) if !is_tree_error(&error) => return Err(error),
                (result, want) => panic!(
                    "rename_tree \"{}\" to \"{}\": {result:?}, not {want}",
                    NAMES[from].escape_ascii(),
                    NAMES[to].escape_ascii()
                ),
            }
        }
        Op::Fork { from, to } => {
            let result = txn.fork_tree(NAMES[from], NAMES[to]);
            let want = if !trees.contains_key(NAMES[from]) {
                "TreeNotFound"
            } else if trees.contains_key(NAMES[to]) {
                "TreeExists"
            } else {
                "Ok"
            };
            match (result, want) {
                (Ok(()), "Ok") => {
                    let tree = trees[NAMES[from]].clone();
                    trees.insert(name(to), tree);
                }
                (Err(Error::TreeNotFound { .. }), "TreeNotFound")
                | (Err(Error::TreeExists { .. }), "TreeExists") => {}
                (Err(error), _) if !is_tree_error(&error) => return Err(error),
                (result, want) => panic!(
                    "fork_tree \"{}\" to \"{}\": {result:?}, not {want}",
                    NAMES[from].escape_ascii(),
                    NAMES[to].escape_ascii()
                ),
            }
        }
        Op::List => {
            let names = txn.list_trees()?;
            let want: Vec<Vec<u8>> = trees.keys().cloned().collect();
            assert_eq!(names, want, "list_trees in a transaction");
        }
    }
    Ok(())
}

fn is_tree_error(error: &Error) -> bool {
    matches!(error, Error::TreeNotFound { .. } | Error::TreeExists { .. })
}

// ---------------------------------------------------------------------------------------
// Running a workload

/// How the store of a run fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Faults {
    /// Every operation after some point fails: the run stops at the first error.
    Crash,
    /// One write or one sync fails; the run goes on after the error.
    Once,
}

/// What a run was told, and what it leaves uncertain.
struct Log {
    /// The latest committed state.
    model: Trees,
    /// The states a power loss may leave: the last durable one, then later ones
    /// (acknowledged or in flight).
    candidates: Vec<Trees>,
    /// Errors reported.
    errors: u64,
    /// Commits that failed with the database still holding the state after them (a
    /// failed sync).
    kept_failed: u64,
}

impl Log {
    fn new() -> Self {
        Self {
            model: Trees::new(),
            candidates: vec![Trees::new()],
            errors: 0,
            kept_failed: 0,
        }
    }

    fn durable(&mut self) {
        self.candidates = vec![self.model.clone()];
    }

    fn maybe(&mut self, trees: &Trees) {
        if self.candidates.last() != Some(trees) {
            self.candidates.push(trees.clone());
        }
    }
}

/// Runs `steps` on `db` (opened with `options(seed)`). In a crash run it stops at the
/// first error; with a fault once it checks the database after the error and goes on.
/// Returns the database (reopened after a failed compaction unless strict) and the log.
fn drive(db: Db, store: &Store, seed: u64, steps: &[Step], faults: Faults) -> (Db, Log) {
    let mut log = Log::new();
    let mut readers: Vec<(ReadTransaction<Store>, Trees)> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let injected = store.injected();
        // What a failing step may leave live besides the model.
        let mut after = None;
        let db_ref = &db;
        let result: Result<(), Error> = (|| {
            match step {
                Step::Transaction { ops, end } => {
                    let txn = db_ref.begin_write()?;
                    let mut next = log.model.clone();
                    for op in ops {
                        apply(&txn, op, &mut next)?;
                    }
                    let durability = match end {
                        End::Abort => {
                            txn.abort();
                            return Ok(());
                        }
                        End::Drop => {
                            drop(txn);
                            return Ok(());
                        }
                        End::Commit => Durability::Immediate,
                        End::CommitWith(durability) => *durability,
                    };
                    // In flight: it may or may not survive a crash.
                    log.maybe(&next);
                    after = Some(next.clone());
                    let revision = match end {
                        End::Commit => txn.commit()?,
                        _ => txn.commit_with(durability)?,
                    };
                    assert_eq!(
                        revision,
                        db_ref.revision(),
                        "step {index}: commit's revision"
                    );
                    log.model = next;
                    if durability == Durability::Immediate {
                        log.durable();
                    }
                }
                Step::Sync => {
                    db_ref.sync()?;
                    log.durable();
                }
                Step::Compact => {
                    db_ref.compact()?;
                    log.durable();
                }
                Step::OpenReader => readers.push((db_ref.begin_read(), log.model.clone())),
                Step::CloseReader(pick) => {
                    if !readers.is_empty() {
                        let (reader, want) = readers.remove((pick % readers.len() as u64) as usize);
                        let found = read_all(&reader)?;
                        assert!(
                            found == want,
                            "step {index}: a pinned reader reads {}, not its {}",
                            describe(&found),
                            describe(&want)
                        );
                    }
                }
                Step::Verify => {
                    let found = contents(db_ref)?;
                    assert!(
                        found == log.model,
                        "step {index}: the database holds {}, not {}",
                        describe(&found),
                        describe(&log.model)
                    );
                }
            }
            Ok(())
        })();
        let met = store.injected() > injected;
        match result {
            Ok(()) => {
                assert!(
                    !met,
                    "step {index} ({}) met an injected fault but reported success",
                    step_kind(step)
                );
                // Just made durable: a power loss now leaves exactly this state.
                let changed = matches!(step, Step::Transaction { .. } | Step::Sync | Step::Compact);
                if faults == Faults::Once && changed && log.candidates.len() == 1 {
                    recovers_to(
                        store,
                        seed ^ index as u64,
                        &log.candidates,
                        &format!("a power loss after step {index} ({})", step_kind(step)),
                    );
                }
            }
            Err(error) => {
                assert!(
                    met || (faults == Faults::Crash && injected > 0),
                    "step {index} ({}) failed without an injected fault: {error}",
                    step_kind(step)
                );
                log.errors += 1;
                if faults == Faults::Crash {
                    return (db, log);
                }
                after_error(&db, store, &mut log, after, index, step);
            }
        }
    }
    (db, log)
}

fn step_kind(step: &Step) -> &'static str {
    match step {
        Step::Transaction { .. } => "a transaction",
        Step::Sync => "sync",
        Step::Compact => "compact",
        Step::OpenReader => "open a reader",
        Step::CloseReader(_) => "close a reader",
        Step::Verify => "verify",
    }
}

/// After a reported fault: the database holds the state before the failed step or
/// after it, checks clean, and a power-loss image taken now recovers to a state the run
/// may leave.
fn after_error(
    db: &Db,
    store: &Store,
    log: &mut Log,
    after: Option<Trees>,
    index: usize,
    step: &Step,
) {
    let found = contents(db)
        .unwrap_or_else(|error| panic!("step {index}: reading after the fault: {error}"));
    if found != log.model {
        match after {
            Some(after) if found == after => {
                // The commit is in the database although it reported an error (its
                // sync failed): it may or may not be durable.
                log.model = after;
                log.kept_failed += 1;
            }
            _ => panic!(
                "step {index} ({}): after the fault the database holds {}, neither the \
                 state before ({}) nor after the step",
                step_kind(step),
                describe(&found),
                describe(&log.model)
            ),
        }
    }
    db.check()
        .unwrap_or_else(|error| panic!("step {index}: check after the fault: {error}"));
    let seed = store.operations();
    recovers_to(store, seed, &log.candidates, "a power loss at the fault");
}

/// Opens the power-loss image `seed` decides of `store` and checks that it holds one of
/// `candidates` and checks clean. Returns what it holds.
fn recovers_to(store: &Store, seed: u64, candidates: &[Trees], what: &str) -> Trees {
    let image = store.crash_image(seed);
    image_recovers_to(&image, candidates, &format!("{what} (image {seed:#x})"))
}

/// Opens `image` and checks that it holds one of `candidates` and checks clean.
fn image_recovers_to(image: &CrashImage, candidates: &[Trees], what: &str) -> Trees {
    let db = Database::open_in(image_store(image, FaultPlan::default()), options(0))
        .unwrap_or_else(|error| panic!("{what}: recovery failed: {error}"));
    db.check()
        .unwrap_or_else(|error| panic!("{what}: check: {error}"));
    let found = contents(&db).unwrap_or_else(|error| panic!("{what}: reading: {error}"));
    assert!(
        candidates.contains(&found),
        "{what}: recovered {} at revision {}, none of the {} states expected (the first: \
         {})",
        describe(&found),
        db.revision(),
        candidates.len(),
        describe(&candidates[0])
    );
    found
}

// ---------------------------------------------------------------------------------------
// Power loss

/// Store operations the workload of `seed` performs after create when nothing fails.
fn workload_operations(seed: u64, steps: &[Step]) -> u64 {
    let store = fault_store(MemStore::new(PAGE_SIZE).unwrap(), FaultPlan::default());
    let db = Database::create_in(store.clone(), options(seed)).unwrap();
    let created = store.operations();
    let (_db, log) = drive(db, &store, seed, steps, Faults::Crash);
    assert_eq!(
        log.errors, 0,
        "seed {seed}: the workload fails without faults"
    );
    store.operations() - created
}

/// `trees` with the tree the commit after recovery adds.
fn with_marker(trees: &Trees) -> Trees {
    let mut trees = trees.clone();
    trees.insert(
        MARKER.to_vec(),
        Tree::from([(b"k".to_vec(), b"yes".to_vec())]),
    );
    trees
}

/// The commit made after recovery.
fn commit_marker(db: &Db) -> Result<u64, Error> {
    let txn = db.begin_write()?;
    txn.open_tree(MARKER)?.insert(b"k", b"yes")?;
    txn.commit_with(Durability::Immediate)
}

/// Recovers `image` (with `plan` on its store): the database must open, hold one of
/// `candidates`, check clean, and take a durable commit that a power loss keeps.
/// Returns what it recovered and the store operations recovery and that commit took.
fn recover(image: &CrashImage, seed: u64, candidates: &[Trees], what: &str) -> (Trees, u64) {
    let store = image_store(image, FaultPlan::default());
    let db = Database::open_in(store.clone(), options(seed))
        .unwrap_or_else(|error| panic!("{what}: recovery failed: {error}"));
    db.check()
        .unwrap_or_else(|error| panic!("{what}: recovered database: {error}"));
    let found = contents(&db).unwrap_or_else(|error| panic!("{what}: reading: {error}"));
    if !candidates.contains(&found) {
        panic!(
            "{what}: recovered {} at revision {}, none of the {} states the crash could \
             leave (the last durable one: {}, the newest: {})",
            describe(&found),
            db.revision(),
            candidates.len(),
            describe(&candidates[0]),
            describe(candidates.last().unwrap())
        );
    }
    // The database takes new commits, and a power loss keeps the durable one.
    commit_marker(&db).unwrap_or_else(|error| panic!("{what}: a commit after recovery: {error}"));
    db.check()
        .unwrap_or_else(|error| panic!("{what}: after a commit after recovery: {error}"));
    let operations = store.operations();
    drop(db);
    let marked = with_marker(&found);
    recovers_to(
        &store,
        seed ^ 0xAF7E,
        std::slice::from_ref(&marked),
        &format!("{what}, then a commit"),
    );
    (found, operations)
}

/// What a power-loss case saw, for the summary.
#[derive(Default)]
struct Outcome {
    /// The workload reached its crash point.
    crashed: bool,
    /// Recovery found a state later than the last durable one.
    later: bool,
    /// The case crashed again during recovery (or the commit after it).
    recrashed: bool,
    /// ... and the commit after recovery survived that.
    recrash_kept_commit: bool,
}

/// The workload of `seed`, crashed after its `point`th store operation (counted after
/// create).
fn crash_case(seed: u64, steps: &[Step], point: u64) -> Outcome {
    let store = fault_store(MemStore::new(PAGE_SIZE).unwrap(), FaultPlan::default());
    let db = Database::create_in(store.clone(), options(seed)).unwrap();
    store.set_plan(FaultPlan {
        fail_after: Some(store.operations() + point),
        ..FaultPlan::default()
    });
    let (db, log) = drive(db, &store, seed, steps, Faults::Crash);
    drop(db);
    let mut outcome = Outcome {
        crashed: store.injected() > 0,
        ..Outcome::default()
    };
    let mut rng = Rng::new(seed ^ 0x5EED_C2A5);
    let image = store.crash_image(rng.next_u64());
    let (found, operations) = recover(&image, seed, &log.candidates, "recovery");
    outcome.later = found != log.candidates[0];
    // A crash of the process, every write kept, leaves the latest acknowledged state or
    // the commit in flight.
    let latest = log
        .candidates
        .iter()
        .rposition(|state| *state == log.model)
        .expect("the latest state is a candidate");
    image_recovers_to(
        &store.written_image(),
        &log.candidates[latest..],
        "recovery after a process crash",
    );

    if rng.below(3) == 0 {
        // Crash again, during recovery or the commit after it; recovering from that
        // image finds what recovery found, with or without the commit.
        let again = rng.below(operations + 1);
        let store = image_store(
            &image,
            FaultPlan {
                fail_after: Some(again),
                ..FaultPlan::default()
            },
        );
        if let Ok(db) = Database::open_in(store.clone(), options(seed)) {
            let _ = commit_marker(&db);
        }
        let image = store.crash_image(rng.next_u64());
        let (again, _) = recover(
            &image,
            seed,
            &[found.clone(), with_marker(&found)],
            &format!("recovery crashed after {again} of its {operations} operations"),
        );
        outcome.recrashed = true;
        outcome.recrash_kept_commit = again != found;
    }
    outcome
}

/// One power-loss case: its workload, crashed at a point spread uniformly over its
/// operations.
fn power_loss_case(seed: u64) -> Outcome {
    let steps = random_workload(seed);
    let operations = workload_operations(seed, &steps);
    let point = 1 + Rng::new(!seed).below(operations.max(1));
    crash_case(seed, &steps, point)
}

#[test]
fn power_loss_at_many_points_leaves_a_committed_state() {
    if let Some(seed) = env_u64("THUNDERHEAD_TX_CRASH_SEED") {
        power_loss_case(seed);
        return;
    }
    let cases = env_u64("THUNDERHEAD_TX_CRASH_CASES").unwrap_or(1000);
    let mut failures = Vec::new();
    let (mut crashed, mut later, mut recrashed, mut kept) = (0, 0, 0, 0);
    for seed in 0..cases {
        if let Some(outcome) = run_case(&mut failures, format!("seed {seed}"), || {
            power_loss_case(seed)
        }) {
            crashed += u64::from(outcome.crashed);
            later += u64::from(outcome.later);
            recrashed += u64::from(outcome.recrashed);
            kept += u64::from(outcome.recrash_kept_commit);
        }
    }
    assert_no_failures(&failures, cases);
    println!(
        "{cases} crash points: {crashed} reached, {later} recovered a state later than the \
         last durable one; {recrashed} crashed again in recovery, {kept} of them keeping \
         the commit after it"
    );
    // Every case crashes its own workload at its own point.
    assert!(
        crashed >= cases * 9 / 10,
        "only {crashed} of {cases} cases reached their crash point"
    );
}

// ---------------------------------------------------------------------------------------
// I/O errors

/// The fixed workload with one write or one sync failing (`plan`). Returns `None` if the
/// fault was not met (the sweep is past the workload's last write or sync), else the
/// number of failed commits the database kept (their sync failed).
fn fault_case(seed: u64, steps: &[Step], plan: FaultPlan) -> Option<u64> {
    let store = fault_store(MemStore::new(PAGE_SIZE).unwrap(), plan);
    let db = match Database::create_in(store.clone(), options(seed)) {
        Ok(db) => {
            assert_eq!(
                store.injected(),
                0,
                "create met the fault and reported success"
            );
            db
        }
        Err(_) => {
            assert_eq!(store.injected(), 1, "create failed without the fault");
            // A failed create leaves no database, or an empty one.
            let image = store.crash_image(0);
            if let Ok(db) =
                Database::open_in(image_store(&image, FaultPlan::default()), options(seed))
            {
                db.check().unwrap();
                assert!(contents(&db).unwrap().is_empty());
            }
            return Some(0);
        }
    };
    let (db, log) = drive(db, &store, seed, steps, Faults::Once);
    if store.injected() == 0 {
        assert_eq!(log.errors, 0);
        return None;
    }
    assert_eq!(store.injected(), 1, "the planned fault was met once");
    assert_eq!(log.errors, 1, "the fault was reported once");
    db.check()
        .unwrap_or_else(|error| panic!("after the workload: {error}"));
    let found = contents(&db).unwrap();
    assert!(
        found == log.model,
        "after the workload the database holds {}, not its acknowledged {}",
        describe(&found),
        describe(&log.model)
    );
    // A power loss now leaves a state the run may leave.
    let mut rng =
        Rng::new(seed ^ plan.fail_write_once.unwrap_or(0) << 16 ^ plan.fail_sync_once.unwrap_or(0));
    for _ in 0..2 {
        recovers_to(
            &store,
            rng.next_u64(),
            &log.candidates,
            "a power loss after the workload",
        );
    }
    // Once synced, it reopens to exactly the acknowledged state; it takes new commits.
    db.sync().unwrap();
    recovers_to(
        &store,
        rng.next_u64(),
        std::slice::from_ref(&log.model),
        "a power loss after a sync",
    );
    commit_marker(&db).unwrap();
    db.check().unwrap();
    recovers_to(
        &store,
        rng.next_u64(),
        &[with_marker(&log.model)],
        "a power loss after a new commit",
    );
    Some(log.kept_failed)
}

/// Every write, then every sync, of each fixed workload fails once in turn (create's
/// included): reported by the call that meets it, and the database stays sound.
#[test]
fn every_failed_write_or_sync_is_reported_and_loses_no_durable_commit() {
    let workloads = env_u64("THUNDERHEAD_TX_FAULT_WORKLOADS").unwrap_or(8);
    let mut failures = Vec::new();
    let mut points = 0;
    let mut swept_kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut kept = 0;
    'sweep: for seed in 0..workloads {
        let seed = 0x7E57_0001 + seed;
        let steps = fixed_workload(seed);
        type Plan = fn(u64) -> FaultPlan;
        let plans: [(&str, Plan); 2] = [
            ("write", |n| FaultPlan {
                fail_write_once: Some(n),
                ..FaultPlan::default()
            }),
            ("sync", |n| FaultPlan {
                fail_sync_once: Some(n),
                ..FaultPlan::default()
            }),
        ];
        for (kind, plan) in plans {
            let mut swept = 0;
            for n in 1.. {
                let met = run_case(
                    &mut failures,
                    format!("workload {seed:#x}, {kind} {n} fails"),
                    || fault_case(seed, &steps, plan(n)),
                );
                if met == Some(None) {
                    break;
                }
                points += 1;
                swept += 1;
                *swept_kinds.entry(kind).or_default() += 1;
                match met {
                    Some(failed_but_kept) => kept += failed_but_kept.unwrap_or(0),
                    None if failures.len() > 20 => break 'sweep,
                    None => {}
                }
            }
            assert!(
                swept > 3 || !failures.is_empty(),
                "workload {seed:#x}: only {swept} {kind}s"
            );
        }
    }
    assert_no_failures(&failures, points);
    println!(
        "{points} fail-once fault points ({swept_kinds:?}); {kept} failed commits stayed \
         in the database (their sync failed)"
    );
}

// ---------------------------------------------------------------------------------------
// Regressions: bugs the tests above found, reduced

/// A write transaction that wrote nothing used to return from `commit_with(Immediate)`
/// without a sync, so the revision it returned, an earlier eventual commit, was lost by
/// a power loss.
#[test]
fn an_empty_immediate_commit_makes_what_it_read_durable() {
    let store = fault_store(MemStore::new(PAGE_SIZE).unwrap(), FaultPlan::default());
    let db = Database::create_in(store.clone(), options(1)).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_tree(b"t").unwrap().insert(b"k", b"a").unwrap();
    assert_eq!(txn.commit_with(Durability::Immediate).unwrap(), 1);
    let txn = db.begin_write().unwrap();
    txn.open_tree(b"t").unwrap().insert(b"k", b"b").unwrap();
    assert_eq!(txn.commit_with(Durability::Eventual).unwrap(), 2);
    // Reads revision 2 and commits it, durably.
    let txn = db.begin_write().unwrap();
    assert_eq!(
        txn.open_tree(b"t").unwrap().get(b"k").unwrap().as_deref(),
        Some(&b"b"[..])
    );
    assert_eq!(txn.commit_with(Durability::Immediate).unwrap(), 2);
    let image = store.crash_image(0);
    let reopened =
        Database::open_in(image_store(&image, FaultPlan::default()), options(1)).unwrap();
    assert_eq!(reopened.revision(), 2, "the durable revision 2 was lost");
}

/// A compaction whose sync fails has written its meta slot over the latest (eventual)
/// commit's slot but keeps the state before it. That slot used to stay so: `check()`
/// failed, and after a successful `sync()` the next durable commit got the same
/// revision number as that slot, in the other slot, and recovery could pick the
/// compaction's, losing the commit. Now the engine writes the latest commit's meta page
/// back into its slot (at once, or before the next sync declares it durable).
#[test]
fn a_failed_compaction_loses_no_later_durable_commit() {
    let store = fault_store(MemStore::new(PAGE_SIZE).unwrap(), FaultPlan::default());
    let db = Database::create_in(store.clone(), options(1)).unwrap();
    let put = |value: &[u8], durability| {
        let txn = db.begin_write().unwrap();
        txn.open_tree(b"t").unwrap().insert(b"k", value).unwrap();
        txn.commit_with(durability).unwrap()
    };
    assert_eq!(put(b"a", Durability::Immediate), 1);
    assert_eq!(put(b"b", Durability::Eventual), 2);
    store.set_plan(FaultPlan {
        fail_sync_once: Some(store.inner().stats().syncs + 1),
        ..FaultPlan::default()
    });
    assert!(db.compact().is_err());
    let checked = db.check().map(|_| ());
    db.sync().unwrap();
    assert_eq!(put(b"c", Durability::Immediate), 3);
    let image = store.crash_image(0);
    let reopened =
        Database::open_in(image_store(&image, FaultPlan::default()), options(1)).unwrap();
    let read = reopened.begin_read();
    let value = read.open_tree(b"t").unwrap().get(b"k").unwrap();
    assert_eq!(
        value.as_deref(),
        Some(&b"c"[..]),
        "the durable commit of revision 3 was lost"
    );
    checked.expect("check after the failed compaction");
}
