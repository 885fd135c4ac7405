//! Deterministic simulation of the `Database` API on the disk layer's `FaultStore`, with
//! the storage fault model of TigerBeetle's simulator.
//!
//! One thread, one seed (`SplitMix64`), several clients at once: up to four write
//! transactions open together (inserts, off-tree values, removes, range removes; gets
//! and scans checked against what that transaction should see: the state it began at
//! with its own writes), read transactions pinned across commits and checked against
//! the state of their revision, commits with `Durability::Immediate` and `Eventual`,
//! aborts, dropped transactions, `sync`, `compact`, named snapshots created, read and
//! dropped. Each run is a few epochs, each ended by a crash and a recovery.
//!
//! The fault model:
//! * random I/O errors while clients run: each read, write and sync fails with a chance
//!   the epoch draws; a randomly failed write may have been done in part (torn at
//!   512-byte sectors);
//! * a crash at a random point (mid-operation: every store operation after it fails),
//!   then power loss: each write not synced is lost, kept or torn by sector;
//! * bit rot: a few bits flipped in cold pages (no recent write touched them) of the
//!   image a crash leaves;
//! * crashes during recovery (or the first commit after it), and read errors while
//!   opening.
//!
//! The checks:
//! * every call that meets an injected fault returns a typed error (`Io`), no other call
//!   fails, and nothing else fails without a fault; afterwards (faults off) the database
//!   holds the state before the failed step or after it, and checks clean;
//! * a commit fails with `Conflict` exactly when the model says it must: a commit since
//!   the transaction began wrote a key or range it read (the optimistic rule of
//!   `footprint.rs`: gets of keys it had not written itself, scanned ranges; blind
//!   writes never conflict, a transaction that wrote nothing never does). A read that
//!   failed may have been recorded in part, so it may, but need not, cause a conflict;
//!   a conflict changes nothing;
//! * after every crash the recovered database checks clean and holds exactly a
//!   committed prefix: the last durable state or a later acknowledged or in-flight one
//!   (every tree, every key, and every named snapshot's contents), and takes a durable
//!   commit; a crash during that recovery recovers to the same state, with or without
//!   that commit;
//! * with rot, opening may fail with a typed error (`Corrupted`, `NotADatabase`), and
//!   every read and `check()` either returns data or `Corrupted`: whatever reads
//!   succeed agree with one committed state (a prefix, or an earlier one if recovery
//!   reported rejecting the newer, as DESIGN §5.5 documents), and if nothing reported
//!   corruption the state is exactly a committed prefix. Never a wrong value;
//! * determinism: every eighth seed (`THUNDERHEAD_SIM_TWICE_EVERY` sets how often) and a
//!   replayed one run twice; the digests of the two runs (every step and its outcome,
//!   every crash image's bytes, the final store's bytes) must be equal. Commit times
//!   come from `Clock::Fixed`; the hash maps of the engine, seeded anew for each map,
//!   would show here if their order reached the disk.
//!
//! Three bugs the simulator found are kept as reduced regression tests at the end: opening
//! took a meta slot it could not read for a torn one and opened the older version (whose
//! next commit then overwrote the newer, durable one); a failed commit whose meta-slot
//! write reached the disk anyway was made durable by the next sync when the latest
//! commit was the durable one, and recovered in place of it; and `check()` reported a
//! slot that a failed commit overwrote, and that could not be written back yet, as
//! damage.
//!
//! `THUNDERHEAD_SIM_SEEDS` sets the number of seeds (default 300), `THUNDERHEAD_SIM_SEED`
//! replays one. A failing seed prints the command that replays it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use thunderhead_disk::{
    CrashImage, FIRST_DATA_PAGE, FaultCounts, FaultPlan, FaultStore, MemStore, PageStore,
    SplitMix64 as Rng,
};
use thunderhead_tx::{
    Clock, Database, Durability, Error, Options, ReadTransaction, Value, WriteTransaction,
};

use common::{Tree, Trees, env_u64, panic_message, read_all};

const PAGE_SIZE: usize = 4096;
/// The trees every client writes; created before the first epoch.
const TREES: [&[u8]; 3] = [b"a", b"b", b"c"];
const KEYS: u64 = 240;
const SNAPSHOTS: [&[u8]; 3] = [b"s0", b"s1", b"s2"];
/// The key the commit after each recovery writes (outside the clients' key space).
const MARKER: &[u8] = b"marker";
const MAX_CLIENTS: usize = 4;

type Store = Arc<FaultStore<MemStore>>;
type Db = Database<Store>;

/// Everything a crash may keep or lose: the trees and the named snapshots' contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct State {
    trees: Trees,
    snapshots: BTreeMap<Vec<u8>, Trees>,
}

impl State {
    fn describe(&self) -> String {
        let trees: Vec<String> = self
            .trees
            .iter()
            .map(|(name, tree)| format!("{}: {} keys", name.escape_ascii(), tree.len()))
            .collect();
        let snapshots: Vec<String> = self
            .snapshots
            .keys()
            .map(|name| name.escape_ascii().to_string())
            .collect();
        format!("{{{}; snapshots {:?}}}", trees.join(", "), snapshots)
    }
}

fn options() -> Options {
    Options {
        page_size: PAGE_SIZE,
        journal_bytes: 6 * 1024,
        cache_bytes: 64 * 1024,
        clock: Clock::Fixed(1_700_000_000_000_000),
        ..Options::default()
    }
}

fn key(index: u64) -> Vec<u8> {
    format!("k{index:03}").into_bytes()
}

/// A value of `len` bytes that differs from others of the same length by `fill`.
fn value(len: usize, fill: u8) -> Vec<u8> {
    (0..len)
        .map(|index| fill.wrapping_add((index as u8).wrapping_mul(7)))
        .collect()
}

fn image_store(image: &CrashImage) -> Store {
    Arc::new(FaultStore::new(
        MemStore::from_image(PAGE_SIZE, image).unwrap(),
        FaultPlan::default(),
    ))
}

// ---------------------------------------------------------------------------------------
// The trace: a digest of everything a run did and saw

/// FNV-1a over the run's events, so two runs of a seed compare by one number.
struct Trace {
    hash: u64,
    events: u64,
}

impl Trace {
    fn new() -> Self {
        Self {
            hash: 0xCBF2_9CE4_8422_2325,
            events: 0,
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3);
        }
    }

    fn event(&mut self, event: &str) {
        self.events += 1;
        self.bytes(event.as_bytes());
        self.bytes(b"\n");
    }
}

// ---------------------------------------------------------------------------------------
// Reads

/// The latest commit's trees and every named snapshot's.
fn read_state(db: &Db) -> Result<State, Error> {
    let trees = read_all(&db.begin_read())?;
    let mut snapshots = BTreeMap::new();
    for info in db.snapshots() {
        let read = db.begin_read_at_snapshot(&info.name)?;
        snapshots.insert(info.name, read_all(&read)?);
    }
    Ok(State { trees, snapshots })
}

// ---------------------------------------------------------------------------------------
// Footprints: what the model says a transaction read and wrote

/// Keys and half-open ranges `[start, end)` of one tree.
#[derive(Clone, Debug, Default)]
struct Keys {
    keys: BTreeSet<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Keys {
    fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains(key)
            || self
                .ranges
                .iter()
                .any(|(start, end)| start.as_slice() <= key && key < end.as_slice())
    }

    fn intersects(&self, other: &Keys) -> bool {
        self.keys.iter().any(|key| other.contains(key))
            || other.keys.iter().any(|key| self.contains(key))
            || self.ranges.iter().any(|(start, end)| {
                other
                    .ranges
                    .iter()
                    .any(|(other_start, other_end)| start < other_end && other_start < end)
            })
    }
}

/// Keys by tree (an index into [`TREES`]).
type Footprint = BTreeMap<usize, Keys>;

fn add_key(footprint: &mut Footprint, tree: usize, key: &[u8]) {
    footprint.entry(tree).or_default().keys.insert(key.to_vec());
}

/// Adds `[start, end)`, if it is not empty (an empty range is not recorded).
fn add_range(footprint: &mut Footprint, tree: usize, start: &[u8], end: &[u8]) {
    if start < end {
        let range = (start.to_vec(), end.to_vec());
        footprint.entry(tree).or_default().ranges.push(range);
    }
}

fn overlaps(reads: &Footprint, written: &Footprint) -> bool {
    reads.iter().any(|(tree, keys)| {
        written
            .get(tree)
            .is_some_and(|written| keys.intersects(written))
    })
}

// ---------------------------------------------------------------------------------------
// Clients

#[derive(Clone, Debug)]
enum Write {
    Put {
        tree: usize,
        key: u64,
        len: usize,
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
}

impl Write {
    fn apply(&self, trees: &mut Trees) {
        fn tree(trees: &mut Trees, index: usize) -> &mut Tree {
            trees.entry(TREES[index].to_vec()).or_default()
        }
        match *self {
            Write::Put {
                tree: index,
                key: at,
                len,
                fill,
            } => {
                tree(trees, index).insert(key(at), value(len, fill));
            }
            Write::Remove {
                tree: index,
                key: at,
            } => {
                tree(trees, index).remove(&key(at));
            }
            Write::RemoveRange {
                tree: index,
                start,
                end,
            } => {
                let (start, end) = (key(start), key(end));
                tree(trees, index).retain(|key, _| *key < start || *key >= end);
            }
        }
    }
}

/// An open write transaction and what the model knows of it.
struct Client {
    txn: WriteTransaction<Store>,
    begin: u64,
    /// What it should read: the state it began at with its writes.
    view: Trees,
    writes: Vec<Write>,
    /// What it wrote: its commit's footprint.
    written: Footprint,
    /// What it certainly read from the committed state, and what it may have (a failed
    /// read may have been recorded, in part or whole).
    reads: Footprint,
    maybe_reads: Footprint,
}

// ---------------------------------------------------------------------------------------
// The simulation of one seed

/// Figures for the summary.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    steps: u64,
    commits: u64,
    conflicts: u64,
    crashes: u64,
    recoveries: u64,
    recrashes: u64,
    io_errors: u64,
    read_faults: u64,
    write_faults: u64,
    torn_writes: u64,
    sync_faults: u64,
    failed_opens: u64,
    rot_checks: u64,
    rotted_pages: u64,
    corruption_errors: u64,
    rot_refused_opens: u64,
    rejected_versions: u64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        let Stats {
            steps,
            commits,
            conflicts,
            crashes,
            recoveries,
            recrashes,
            io_errors,
            read_faults,
            write_faults,
            torn_writes,
            sync_faults,
            failed_opens,
            rot_checks,
            rotted_pages,
            corruption_errors,
            rot_refused_opens,
            rejected_versions,
        } = *other;
        self.steps += steps;
        self.commits += commits;
        self.conflicts += conflicts;
        self.crashes += crashes;
        self.recoveries += recoveries;
        self.recrashes += recrashes;
        self.io_errors += io_errors;
        self.read_faults += read_faults;
        self.write_faults += write_faults;
        self.torn_writes += torn_writes;
        self.sync_faults += sync_faults;
        self.failed_opens += failed_opens;
        self.rot_checks += rot_checks;
        self.rotted_pages += rotted_pages;
        self.corruption_errors += corruption_errors;
        self.rot_refused_opens += rot_refused_opens;
        self.rejected_versions += rejected_versions;
    }

    /// The one-line summary of `seeds` seeds.
    fn summary(&self, seeds: u64) -> String {
        format!(
            "simulator: {seeds} seeds, {} steps, {} commits, {} conflicts; {} crashes, {} \
             recoveries ({} crashed again in recovery, {} versions reported rejected); \
             faults: {} reads, {} writes ({} torn), {} syncs failed, {} I/O errors \
             reported, {} opens with read errors failed; rot: {} images, {} pages, {} \
             corruption errors reported, {} opens refused",
            self.steps,
            self.commits,
            self.conflicts,
            self.crashes,
            self.recoveries,
            self.recrashes,
            self.rejected_versions,
            self.read_faults,
            self.write_faults,
            self.torn_writes,
            self.sync_faults,
            self.io_errors,
            self.failed_opens,
            self.rot_checks,
            self.rotted_pages,
            self.corruption_errors,
            self.rot_refused_opens
        )
    }

    /// Counts random faults a store injected.
    fn faults(&mut self, counts: FaultCounts) {
        self.read_faults += counts.reads;
        self.write_faults += counts.writes;
        self.torn_writes += counts.torn_writes;
        self.sync_faults += counts.syncs;
    }
}

/// The committed states of one timeline and what a crash may leave.
struct Log {
    /// The latest committed state.
    model: State,
    /// The states a power loss may leave: the last durable one, then later ones
    /// (acknowledged or in flight).
    candidates: Vec<State>,
    /// Every committed state of the timeline, oldest first (what recovery may fall back
    /// to when it reports rejecting newer versions).
    history: Vec<State>,
    /// Write footprints of the transactions committed this epoch, by revision.
    commits: Vec<(u64, Footprint)>,
}

impl Log {
    fn new(state: State) -> Self {
        Self {
            model: state.clone(),
            candidates: vec![state.clone()],
            history: vec![state],
            commits: Vec::new(),
        }
    }

    fn durable(&mut self) {
        self.candidates = vec![self.model.clone()];
    }

    /// A state that may be on disk from now on (in flight or acknowledged).
    fn maybe(&mut self, state: &State) {
        if self.candidates.last() != Some(state) {
            self.candidates.push(state.clone());
        }
    }

    /// The commit of `state` was acknowledged (or found in the database).
    fn committed(&mut self, state: State) {
        self.maybe(&state);
        if self.history.last() != Some(&state) {
            self.history.push(state.clone());
        }
        self.model = state;
    }
}

struct Sim {
    rng: Rng,
    trace: Trace,
    stats: Stats,
    /// The fault plan of the running epoch (random faults on).
    plan: FaultPlan,
}

/// How a step ended.
enum Outcome {
    Ok,
    /// It met an injected fault (checked by the step).
    Fault,
    /// The crash point was reached: the epoch ends.
    Crashed,
}

impl Sim {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            trace: Trace::new(),
            stats: Stats::default(),
            plan: FaultPlan::default(),
        }
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.rng.below(one_in) == 0
    }

    /// Random faults on again, from a fresh seed of the run's generator.
    fn faults_on(&mut self, store: &Store) {
        self.plan.seed = self.rng.next_u64();
        store.set_plan(self.plan);
    }

    /// Faults off, for the model's own reads and checks.
    fn faults_off(&self, store: &Store) {
        store.set_plan(FaultPlan::default());
    }

    fn crashed(&self, store: &Store) -> bool {
        self.plan
            .fail_after
            .is_some_and(|after| store.operations() > after)
    }

    /// Classifies the result of a call made with faults on: an error must be `Io` and
    /// follow an injected fault; success must not have met one.
    fn judge<T>(&mut self, store: &Store, injected: u64, what: &str, result: &Result<T, Error>) {
        let met = store.injected() > injected;
        match result {
            Ok(_) => assert!(!met, "{what} met an injected fault and reported success"),
            Err(Error::Io(_)) if met => self.stats.io_errors += 1,
            Err(error) => panic!("{what} failed without an injected fault: {error}"),
        }
    }

    // -----------------------------------------------------------------------------------
    // The run

    fn run(mut self) -> (u64, Stats) {
        let store: Store = Arc::new(FaultStore::new(
            MemStore::new(PAGE_SIZE).unwrap(),
            FaultPlan::default(),
        ));
        let db = Database::create_in(store.clone(), options()).unwrap();
        let setup = db.begin_write().unwrap();
        for name in TREES {
            setup.open_tree(name).unwrap();
        }
        setup.commit_with(Durability::Immediate).unwrap();
        let mut state = read_state(&db).unwrap();
        let (mut store, mut db) = (store, db);
        let epochs = 3 + self.rng.below(4);
        for epoch in 0..epochs {
            let log = Log::new(state);
            let (image, log) = self.epoch(epoch, &store, db, log);
            (store, db, state) = self.recover(epoch, &store, &image, &log);
        }
        let image = store.written_image();
        self.trace.bytes(&image.to_bytes(PAGE_SIZE));
        drop(db);
        (self.trace.hash ^ self.trace.events, self.stats)
    }

    /// Clients run on `db` until the epoch's crash point; returns the image the power
    /// loss leaves and the log.
    fn epoch(&mut self, epoch: u64, store: &Store, db: Db, mut log: Log) -> (CrashImage, Log) {
        let per_million = |rng: &mut Rng, choices: [u32; 3]| choices[rng.below(3) as usize];
        self.plan = FaultPlan {
            read_error_per_million: per_million(&mut self.rng, [0, 3_000, 15_000]),
            write_error_per_million: per_million(&mut self.rng, [0, 4_000, 20_000]),
            sync_error_per_million: per_million(&mut self.rng, [0, 10_000, 60_000]),
            ..FaultPlan::default()
        };
        self.trace.event(&format!("epoch {epoch}: {:?}", self.plan));
        self.faults_on(store);
        let mut clients: Vec<Client> = Vec::new();
        let mut readers: Vec<(ReadTransaction<Store>, Trees)> = Vec::new();
        for _ in 0..60 + self.rng.below(240) {
            self.stats.steps += 1;
            self.step(store, &db, &mut clients, &mut readers, &mut log);
        }
        // The random faults so far (those of the crash phase are not told apart from
        // the crash's own, and are not counted).
        self.stats.faults(store.counts());
        // The crash point: somewhere in the next few hundred store operations. The
        // clients go on until they reach it, or until a fault: the model would then have
        // to check the database, which the crash point forbids, so the crash comes there.
        self.plan.fail_after = Some(store.operations() + 1 + self.rng.below(300));
        self.faults_on(store);
        for _ in 0..100 {
            self.stats.steps += 1;
            let outcome = self.step(store, &db, &mut clients, &mut readers, &mut log);
            if !matches!(outcome, Outcome::Ok) {
                break;
            }
        }
        self.stats.crashes += 1;
        drop(clients);
        drop(readers);
        drop(db);
        let image = store.crash_image(self.rng.next_u64());
        self.trace.bytes(&image.to_bytes(PAGE_SIZE));
        (image, log)
    }

    /// One step of one client, chosen at random.
    fn step(
        &mut self,
        store: &Store,
        db: &Db,
        clients: &mut Vec<Client>,
        readers: &mut Vec<(ReadTransaction<Store>, Trees)>,
        log: &mut Log,
    ) -> Outcome {
        let roll = self.rng.below(1000);
        let outcome = match roll {
            0..=69 if clients.len() < MAX_CLIENTS => self.begin(store, db, clients, log),
            0..=599 if !clients.is_empty() => {
                let index = self.rng.below(clients.len() as u64) as usize;
                self.client_op(store, &mut clients[index])
            }
            600..=689 if !clients.is_empty() => {
                let index = self.rng.below(clients.len() as u64) as usize;
                let client = clients.swap_remove(index);
                self.end(store, db, client, log)
            }
            690..=729 => {
                let read = db.begin_read();
                assert_eq!(read.revision(), db.revision());
                self.trace
                    .event(&format!("open reader at {}", read.revision()));
                readers.push((read, log.model.trees.clone()));
                Outcome::Ok
            }
            730..=779 if !readers.is_empty() => {
                let index = self.rng.below(readers.len() as u64) as usize;
                let close = self.chance(2);
                self.reader_check(store, readers, index, close)
            }
            780..=819 => self.make_durable(store, db, log, "sync", Database::sync),
            820..=829 => self.make_durable(store, db, log, "compact", Database::compact),
            830..=869 => self.snapshot(store, db, log),
            870..=899 => self.read_snapshot(store, db, log),
            930.. if !clients.is_empty() => {
                let index = self.rng.below(clients.len() as u64) as usize;
                self.client_op(store, &mut clients[index])
            }
            _ => {
                let injected = store.injected();
                let found = read_state(db);
                self.judge(store, injected, "reading the latest state", &found);
                if let Ok(found) = &found {
                    assert!(
                        *found == log.model,
                        "the database holds {}, not {}",
                        found.describe(),
                        log.model.describe()
                    );
                }
                self.trace.event(&format!("verify: {}", found.is_ok()));
                if found.is_ok() {
                    Outcome::Ok
                } else {
                    Outcome::Fault
                }
            }
        };
        if self.crashed(store) {
            return Outcome::Crashed;
        }
        outcome
    }

    fn begin(&mut self, store: &Store, db: &Db, clients: &mut Vec<Client>, log: &Log) -> Outcome {
        let injected = store.injected();
        let txn = db.begin_write();
        self.judge(store, injected, "begin_write", &txn);
        let Ok(txn) = txn else {
            return Outcome::Fault;
        };
        let begin = txn.revision();
        assert_eq!(
            begin,
            db.revision(),
            "a write transaction begins at the latest"
        );
        self.trace.event(&format!("begin at {begin}"));
        clients.push(Client {
            txn,
            begin,
            view: log.model.trees.clone(),
            writes: Vec::new(),
            written: Footprint::new(),
            reads: Footprint::new(),
            maybe_reads: Footprint::new(),
        });
        Outcome::Ok
    }

    /// One operation inside a write transaction, checked against its view.
    fn client_op(&mut self, store: &Store, client: &mut Client) -> Outcome {
        let tree = self.rng.below(TREES.len() as u64) as usize;
        let at = self.rng.below(KEYS);
        let injected = store.injected();
        let result: Result<String, Error> = (|| {
            let handle = client.txn.open_tree(TREES[tree])?;
            let write = match self.rng.below(100) {
                0..=54 => Write::Put {
                    tree,
                    key: at,
                    len: if self.chance(12) {
                        1500 + self.rng.below(4000) as usize
                    } else {
                        self.rng.below(100) as usize
                    },
                    fill: self.rng.next_u64() as u8,
                },
                55..=66 => Write::Remove { tree, key: at },
                67..=72 => Write::RemoveRange {
                    tree,
                    start: at,
                    end: at + 1 + self.rng.below(40),
                },
                73..=89 => {
                    let key = key(at);
                    let want = client.view[TREES[tree]].get(&key).cloned();
                    // A get of a key it wrote reads its own write, not the store.
                    let committed = !client
                        .written
                        .get(&tree)
                        .is_some_and(|written| written.contains(&key));
                    if committed {
                        // Recorded before the store is read, so even if the read fails.
                        add_key(&mut client.reads, tree, &key);
                        add_key(&mut client.maybe_reads, tree, &key);
                    }
                    let found = handle.get(&key)?.map(|value| value.to_vec());
                    assert!(
                        found == want,
                        "a transaction reads {} of \"{}\" wrong: {:?}, not {:?}",
                        key.escape_ascii(),
                        TREES[tree].escape_ascii(),
                        found.map(|value| value.len()),
                        want.map(|value| value.len())
                    );
                    return Ok(format!("get {tree} {at}: {:?}", found.map(|v| v.len())));
                }
                _ => {
                    let (start, end) = (key(at), key(at + self.rng.below(60)));
                    let reverse = self.chance(2);
                    // A failed scan may have recorded part of its range.
                    add_range(&mut client.maybe_reads, tree, &start, &end);
                    let range = handle.range(start.as_slice()..end.as_slice())?;
                    let collect = |entry: Result<(Vec<u8>, Value), Error>| {
                        entry.map(|(key, value)| (key, value.to_vec()))
                    };
                    let found: Vec<(Vec<u8>, Vec<u8>)> = if reverse {
                        range.rev().map(collect).collect::<Result<_, _>>()?
                    } else {
                        range.map(collect).collect::<Result<_, _>>()?
                    };
                    let mut want: Vec<(Vec<u8>, Vec<u8>)> = client.view[TREES[tree]]
                        .iter()
                        .filter(|(key, _)| **key >= start && **key < end)
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect();
                    if reverse {
                        want.reverse();
                    }
                    assert!(
                        found == want,
                        "a transaction scans \"{}\" wrong: {} entries, not {}",
                        TREES[tree].escape_ascii(),
                        found.len(),
                        want.len()
                    );
                    add_range(&mut client.reads, tree, &start, &end);
                    return Ok(format!("scan {tree} {at}: {}", found.len()));
                }
            };
            match &write {
                Write::Put {
                    key: at, len, fill, ..
                } => handle.insert(&key(*at), &value(*len, *fill))?,
                Write::Remove { key: at, .. } => handle.remove(&key(*at))?,
                Write::RemoveRange { start, end, .. } => {
                    handle.remove_range(key(*start).as_slice()..key(*end).as_slice())?
                }
            }
            match &write {
                Write::Put { key: at, .. } | Write::Remove { key: at, .. } => {
                    add_key(&mut client.written, tree, &key(*at));
                }
                Write::RemoveRange { start, end, .. } => {
                    add_range(&mut client.written, tree, &key(*start), &key(*end));
                }
            }
            write.apply(&mut client.view);
            let described = format!("{write:?}");
            client.writes.push(write);
            Ok(described)
        })();
        self.judge(store, injected, "an operation in a transaction", &result);
        self.trace.event(&format!("op: {result:?}"));
        match result {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Fault,
        }
    }

    /// Commits (or aborts, or drops) a client, and checks the outcome against the model.
    fn end(&mut self, store: &Store, db: &Db, client: Client, log: &mut Log) -> Outcome {
        let roll = self.rng.below(100);
        if roll < 8 {
            self.trace.event("abort");
            if roll < 3 {
                drop(client.txn);
            } else {
                client.txn.abort();
            }
            return Outcome::Ok;
        }
        let durability = if roll < 50 {
            Durability::Immediate
        } else {
            Durability::Eventual
        };
        let before = db.revision();
        // A conflict is certain if a commit since it began wrote what it surely read,
        // possible if what it may have read.
        let since = |reads: &Footprint| {
            log.commits
                .iter()
                .any(|(revision, written)| *revision > client.begin && overlaps(reads, written))
        };
        let (must_conflict, may_conflict) = if client.writes.is_empty() {
            (false, false)
        } else {
            (since(&client.reads), since(&client.maybe_reads))
        };
        let mut next = log.model.clone();
        for write in &client.writes {
            write.apply(&mut next.trees);
        }
        if !client.writes.is_empty() && !must_conflict {
            log.maybe(&next);
        }
        let injected = store.injected();
        let result = client.txn.commit_with(durability);
        self.trace
            .event(&format!("commit {durability:?} at {before}: {result:?}"));
        if self.crashed(store) {
            return Outcome::Crashed;
        }
        if let Err(Error::Conflict { reason }) = &result {
            assert!(
                may_conflict,
                "a commit conflicted that the model says cannot: {reason}"
            );
            assert_eq!(
                db.revision(),
                before,
                "a conflicting commit changed the revision"
            );
            self.stats.conflicts += 1;
            return Outcome::Ok;
        }
        assert!(
            !must_conflict,
            "a commit succeeded or failed otherwise although a commit since it began \
             wrote what it read: {result:?}"
        );
        self.judge(store, injected, "a commit", &result);
        match result {
            Ok(revision) if client.writes.is_empty() => {
                assert_eq!(revision, before, "a commit that wrote nothing");
                if durability == Durability::Immediate {
                    log.durable();
                }
                Outcome::Ok
            }
            Ok(revision) => {
                assert_eq!(revision, before + 1, "a commit's revision");
                assert_eq!(db.revision(), revision);
                self.stats.commits += 1;
                log.commits.push((revision, client.written));
                log.committed(next);
                if durability == Durability::Immediate {
                    log.durable();
                }
                Outcome::Ok
            }
            Err(_) => {
                let kept = self.after_fault(store, db, log, before, Some(next));
                if kept {
                    log.commits.push((db.revision(), client.written));
                }
                Outcome::Fault
            }
        }
    }

    /// After a reported fault in a step that began at revision `before`, with faults
    /// off: the database holds the state before the failed step or `after` it (then
    /// taken as committed: its sync failed), and checks clean; now and then a power loss
    /// at this point recovers to a candidate. Whether the step's commit was kept.
    fn after_fault(
        &mut self,
        store: &Store,
        db: &Db,
        log: &mut Log,
        before: u64,
        after: Option<State>,
    ) -> bool {
        if self.plan.fail_after.is_some() {
            // The crash phase: checking would run into the crash point. The step's state
            // is a candidate already, and the epoch ends with this step.
            return false;
        }
        self.faults_off(store);
        let found = read_state(db).unwrap_or_else(|error| panic!("reading after a fault: {error}"));
        // The revision tells whether the step's commit stayed (its writes may have changed
        // nothing); a compaction's changes no state.
        let kept = after.is_some() && db.revision() > before;
        let want = match after {
            Some(after) if kept => after,
            _ => log.model.clone(),
        };
        assert!(
            found == want,
            "after a fault at revision {before} the database holds {} at revision {}, not \
             {} (the state before: {})",
            found.describe(),
            db.revision(),
            want.describe(),
            log.model.describe()
        );
        if kept {
            log.committed(want);
        }
        db.check()
            .unwrap_or_else(|error| panic!("check after a fault: {error}"));
        if self.chance(4) {
            let image = store.crash_image(self.rng.next_u64());
            let (db, _, _) = open_and_check(&image, &log.candidates, "a power loss at a fault");
            drop(db);
        }
        self.trace.event(&format!("after fault: kept {kept}"));
        self.faults_on(store);
        kept
    }

    /// `sync` or `compact`: either makes the latest revision durable when it succeeds.
    fn make_durable<T: std::fmt::Debug>(
        &mut self,
        store: &Store,
        db: &Db,
        log: &mut Log,
        what: &str,
        call: impl FnOnce(&Db) -> Result<T, Error>,
    ) -> Outcome {
        let before = db.revision();
        let injected = store.injected();
        let result = call(db);
        self.trace.event(&format!("{what}: {result:?}"));
        if self.crashed(store) {
            return Outcome::Crashed;
        }
        self.judge(store, injected, what, &result);
        if result.is_ok() {
            log.durable();
            return Outcome::Ok;
        }
        self.after_fault(store, db, log, before, None);
        Outcome::Fault
    }

    /// Creates or drops a named snapshot (a durable commit of its own).
    fn snapshot(&mut self, store: &Store, db: &Db, log: &mut Log) -> Outcome {
        let before = db.revision();
        let name = SNAPSHOTS[self.rng.below(SNAPSHOTS.len() as u64) as usize];
        let exists = log.model.snapshots.contains_key(name);
        let mut next = log.model.clone();
        if exists {
            next.snapshots.remove(name);
        } else {
            next.snapshots.insert(name.to_vec(), next.trees.clone());
        }
        log.maybe(&next);
        let injected = store.injected();
        let result = if exists {
            db.drop_snapshot(name).map(|()| db.revision())
        } else {
            db.snapshot(name)
        };
        self.trace.event(&format!(
            "snapshot {} (drop {exists}): {result:?}",
            name.escape_ascii()
        ));
        if self.crashed(store) {
            return Outcome::Crashed;
        }
        self.judge(store, injected, "a snapshot", &result);
        if result.is_ok() {
            log.committed(next);
            log.durable();
            return Outcome::Ok;
        }
        self.after_fault(store, db, log, before, Some(next));
        Outcome::Fault
    }

    fn read_snapshot(&mut self, store: &Store, db: &Db, log: &Log) -> Outcome {
        let name = SNAPSHOTS[self.rng.below(SNAPSHOTS.len() as u64) as usize];
        let injected = store.injected();
        let result = db.begin_read_at_snapshot(name);
        match (result, log.model.snapshots.get(name)) {
            (Err(Error::SnapshotNotFound { .. }), None) => {
                self.trace.event("read snapshot: none");
                Outcome::Ok
            }
            (Ok(read), Some(want)) => {
                let found = read_all(&read);
                self.judge(store, injected, "reading a snapshot", &found);
                if let Ok(found) = &found {
                    assert!(
                        found == want,
                        "snapshot {} reads wrong",
                        name.escape_ascii()
                    );
                }
                self.trace
                    .event(&format!("read snapshot: {}", found.is_ok()));
                if found.is_ok() {
                    Outcome::Ok
                } else {
                    Outcome::Fault
                }
            }
            (result, want) => {
                let result = result.map(|read| read.revision());
                self.judge(store, injected, "opening a snapshot", &result);
                assert!(
                    result.is_err(),
                    "snapshot {}: {result:?}, expected {}",
                    name.escape_ascii(),
                    want.is_some()
                );
                Outcome::Fault
            }
        }
    }

    /// Reads a pinned reader whole (and closes it, or keeps it open).
    fn reader_check(
        &mut self,
        store: &Store,
        readers: &mut Vec<(ReadTransaction<Store>, Trees)>,
        index: usize,
        close: bool,
    ) -> Outcome {
        let injected = store.injected();
        let (read, want) = &readers[index];
        let found = read_all(read);
        self.judge(store, injected, "a pinned reader", &found);
        if let Ok(found) = &found {
            assert!(
                found == want,
                "a reader pinned at revision {} reads wrong",
                read.revision()
            );
        }
        self.trace.event(&format!("reader: {}", found.is_ok()));
        if close {
            readers.swap_remove(index);
        }
        if found.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Fault
        }
    }

    // -----------------------------------------------------------------------------------
    // Recovery

    /// Recovers the image an epoch's crash left: opening it (now and then with read
    /// errors, then crashing during recovery) must find a committed prefix; checks the
    /// rotted image now and then. Returns the database the next epoch runs on and its
    /// state.
    fn recover(
        &mut self,
        epoch: u64,
        crashed: &Store,
        image: &CrashImage,
        log: &Log,
    ) -> (Store, Db, State) {
        if self.chance(3) {
            self.rot_check(crashed, image, log);
        }
        if self.chance(4) {
            // Opening with read errors fails with a typed error or opens a candidate.
            let store = image_store(image);
            store.set_plan(FaultPlan {
                read_error_per_million: 20_000,
                seed: self.rng.next_u64(),
                ..FaultPlan::default()
            });
            let injected = store.injected();
            let opened = Database::open_in(store.clone(), options());
            self.judge(&store, injected, "opening with read errors", &opened);
            if let Ok(db) = opened {
                store.set_plan(FaultPlan::default());
                let found = read_state(&db).unwrap();
                assert!(
                    log.candidates.contains(&found),
                    "opened with read errors: {}",
                    found.describe()
                );
            } else {
                self.stats.failed_opens += 1;
            }
            self.stats.faults(store.counts());
        }
        let (db, store, found) = open_and_check(image, &log.candidates, "recovery");
        self.stats.recoveries += 1;
        self.stats.rejected_versions += db.engine().rejected_versions().len() as u64;
        let marked = commit_marker(&db, epoch, &found)
            .unwrap_or_else(|error| panic!("a commit after recovery: {error}"));
        let operations = store.operations();
        self.trace.event(&format!(
            "recovered {} at {}",
            found.describe(),
            db.revision()
        ));
        if !self.chance(3) {
            return (store, db, marked);
        }
        // Crash again, during recovery or the commit after it.
        drop(db);
        self.stats.recrashes += 1;
        let again = self.rng.below(operations + 1);
        let crashing = image_store(image);
        crashing.set_plan(FaultPlan {
            fail_after: Some(again),
            ..FaultPlan::default()
        });
        if let Ok(db) = Database::open_in(crashing.clone(), options()) {
            let _ = commit_marker(&db, epoch, &found);
        }
        let image = crashing.crash_image(self.rng.next_u64());
        self.trace.bytes(&image.to_bytes(PAGE_SIZE));
        let what = format!("recovery crashed after {again} of its {operations} operations");
        let (db, store, again) = open_and_check(&image, &[found.clone(), marked.clone()], &what);
        self.stats.recoveries += 1;
        if again == marked {
            return (store, db, marked);
        }
        let marked = commit_marker(&db, epoch, &found)
            .unwrap_or_else(|error| panic!("{what}: a commit after it: {error}"));
        (store, db, marked)
    }

    /// Rots a few cold pages (by the writes of `crashed`, which left `image`) of a copy
    /// of `image` and opens it: a typed error, or reads that are right or `Corrupted`,
    /// never wrong.
    fn rot_check(&mut self, crashed: &Store, image: &CrashImage, log: &Log) {
        self.stats.rot_checks += 1;
        let mut rotted = image.clone();
        let pages = 1 + self.rng.below(3) as usize;
        let recent = self.rng.below(32) as usize;
        let hit = crashed.rot(
            &mut rotted,
            self.rng.next_u64(),
            pages,
            recent,
            FIRST_DATA_PAGE,
        );
        self.stats.rotted_pages += hit.len() as u64;
        let db = match Database::open_in(image_store(&rotted), options()) {
            Ok(db) => db,
            Err(Error::Corrupted { .. } | Error::NotADatabase { .. }) => {
                self.stats.rot_refused_opens += 1;
                self.trace.event(&format!("rot {hit:?}: open refused"));
                return;
            }
            Err(error) => panic!("opening a rotted image (pages {hit:?}): {error}"),
        };
        // With a newer version reported rejected, recovery may have fallen back to any
        // earlier committed state; else it is a committed prefix.
        let fell_back = !db.engine().rejected_versions().is_empty();
        let acceptable: Vec<&State> = log
            .candidates
            .iter()
            .chain(log.history.iter().filter(|_| fell_back))
            .collect();
        let mut corrupt = 0;
        let mut note = |result: &Result<(), Error>| match result {
            Ok(()) => {}
            Err(Error::Corrupted { .. }) => corrupt += 1,
            Err(error) => panic!("reading a rotted image (pages {hit:?}): {error}"),
        };
        // What each read returned, when it returned data.
        let read = db.begin_read();
        let names = match read.list_trees() {
            Ok(names) => Some(names),
            Err(error) => {
                note(&Err(error));
                None
            }
        };
        let mut trees: BTreeMap<&[u8], Tree> = BTreeMap::new();
        // (tree, key, value found)
        let mut gets: Vec<(&[u8], Vec<u8>, Option<Value>)> = Vec::new();
        for name in TREES {
            let result = (|| {
                let tree = read.open_tree(name)?;
                for _ in 0..8 {
                    let at = key(self.rng.below(KEYS));
                    let found = tree.get(&at)?;
                    gets.push((name, at, found));
                }
                let entries = tree
                    .iter()
                    .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
                    .collect::<Result<Tree, Error>>()?;
                trees.insert(name, entries);
                Ok(())
            })();
            note(&result);
        }
        let mut snapshots: BTreeMap<Vec<u8>, Trees> = BTreeMap::new();
        for info in db.snapshots() {
            let result = db
                .begin_read_at_snapshot(&info.name)
                .and_then(|read| read_all(&read));
            match result {
                Ok(found) => {
                    snapshots.insert(info.name, found);
                }
                Err(error) => note(&Err(error)),
            }
        }
        let snapshot_names: Vec<Vec<u8>> = db.snapshots().into_iter().map(|s| s.name).collect();
        note(&db.check().map(|_| ()));
        let agrees = |state: &State| {
            names
                .as_ref()
                .is_none_or(|names| state.trees.keys().eq(names.iter()))
                && trees
                    .iter()
                    .all(|(name, tree)| state.trees.get(*name) == Some(tree))
                && gets.iter().all(|(name, key, found)| {
                    state
                        .trees
                        .get(*name)
                        .and_then(|tree| tree.get(key))
                        .map(Vec::as_slice)
                        == found.as_deref()
                })
                && state.snapshots.keys().eq(snapshot_names.iter())
                && snapshots
                    .iter()
                    .all(|(name, found)| state.snapshots.get(name) == Some(found))
        };
        assert!(
            acceptable.iter().any(|state| agrees(state)),
            "a rotted image (pages {hit:?}, {corrupt} reads reported corruption, fell back: \
             {fell_back}) served data of no committed state"
        );
        if corrupt == 0 {
            // Nothing reported: the rot hit no live page, and the state is exactly one.
            let found = read_state(&db).unwrap();
            assert!(
                acceptable.contains(&&found),
                "a rotted image (pages {hit:?}) checks clean but holds {}",
                found.describe()
            );
        }
        self.stats.corruption_errors += corrupt;
        self.trace.event(&format!(
            "rot {hit:?}: {corrupt} corrupt, fell back {fell_back}"
        ));
    }
}

/// Opens `image`: it must open, check clean and hold one of `candidates`.
fn open_and_check(image: &CrashImage, candidates: &[State], what: &str) -> (Db, Store, State) {
    let store = image_store(image);
    let db = Database::open_in(store.clone(), options())
        .unwrap_or_else(|error| panic!("{what}: opening failed: {error}"));
    db.check()
        .unwrap_or_else(|error| panic!("{what}: check: {error}"));
    let found = read_state(&db).unwrap_or_else(|error| panic!("{what}: reading: {error}"));
    assert!(
        candidates.contains(&found),
        "{what}: recovered {} at revision {}, none of the {} states the crash may leave (the \
         last durable one: {}, the newest: {})",
        found.describe(),
        db.revision(),
        candidates.len(),
        candidates[0].describe(),
        candidates.last().unwrap().describe()
    );
    (db, store, found)
}

/// The durable commit after a recovery: the marker key of tree `a` says the epoch.
fn commit_marker(db: &Db, epoch: u64, state: &State) -> Result<State, Error> {
    let txn = db.begin_write()?;
    let marker = format!("epoch {epoch}").into_bytes();
    txn.open_tree(TREES[0])?.insert(MARKER, &marker)?;
    txn.commit_with(Durability::Immediate)?;
    let mut state = state.clone();
    state
        .trees
        .entry(TREES[0].to_vec())
        .or_default()
        .insert(MARKER.to_vec(), marker);
    Ok(state)
}

// ---------------------------------------------------------------------------------------
// Seeds

fn replay_command(seed: u64) -> String {
    format!("THUNDERHEAD_SIM_SEED={seed} cargo test -p thunderhead-tx --test simulator")
}

/// Runs `seed` (twice if `twice`, comparing digests); a panic becomes an error naming
/// the command that replays it.
fn run_seed(seed: u64, twice: bool) -> Result<Stats, String> {
    let run = || catch_unwind(AssertUnwindSafe(|| Sim::new(seed).run()));
    let fail =
        |message: String| format!("seed {seed}: {message}\n  replay: {}", replay_command(seed));
    let (digest, stats) = run().map_err(|payload| fail(panic_message(&*payload)))?;
    if twice {
        let (again, _) =
            run().map_err(|payload| fail(format!("second run: {}", panic_message(&*payload))))?;
        if again != digest {
            return Err(fail(format!(
                "two runs differ: digests {digest:#018x} and {again:#018x}"
            )));
        }
    }
    Ok(stats)
}

#[test]
fn simulated_faults_and_crashes_leave_committed_states() {
    if let Some(seed) = env_u64("THUNDERHEAD_SIM_SEED") {
        let stats = run_seed(seed, true).unwrap_or_else(|failure| panic!("{failure}"));
        println!("seed {seed}: {stats:?}");
        return;
    }
    let seeds = env_u64("THUNDERHEAD_SIM_SEEDS").unwrap_or(300);
    let twice_every = env_u64("THUNDERHEAD_SIM_TWICE_EVERY").unwrap_or(8).max(1);
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for seed in 0..seeds {
        if seed > 0 && seed.is_multiple_of(1000) {
            eprintln!("after {}", total.summary(seed));
        }
        match run_seed(seed, seed.is_multiple_of(twice_every)) {
            Ok(stats) => total.add(&stats),
            Err(failure) => {
                // At once too, so a long soak shows what fails as it goes.
                eprintln!("{failure}");
                failures.push(failure);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!("{}", total.summary(seeds));
    // The run exercises what it claims to.
    assert!(total.crashes >= seeds * 2);
    if seeds >= 100 {
        assert!(total.conflicts > 0 && total.io_errors > 0 && total.torn_writes > 0);
        assert!(total.recrashes > 0 && total.corruption_errors > 0);
    }
}

// ---------------------------------------------------------------------------------------
// Regressions: bugs the simulator found, reduced

/// Opening used to take a meta slot it could not read (an I/O error, which may pass) for
/// one a crash had torn: it opened the other slot's older version, and the next commit,
/// written over the slot it had passed over, destroyed the newest durable commit. Now
/// opening fails with the I/O error, and opening again finds the newest version.
#[test]
fn a_meta_slot_read_error_fails_open_and_loses_no_durable_commit() {
    let store: Store = Arc::new(FaultStore::new(
        MemStore::new(PAGE_SIZE).unwrap(),
        FaultPlan::default(),
    ));
    let db = Database::create_in(store.clone(), options()).unwrap();
    for value in [b"1", b"2"] {
        let txn = db.begin_write().unwrap();
        txn.open_tree(b"t").unwrap().insert(b"k", value).unwrap();
        txn.commit_with(Durability::Immediate).unwrap();
    }
    drop(db);
    let image = store.written_image();
    // Opening reads the header, then the two meta slots: each slot's read fails in turn.
    for read in [2, 3] {
        let store = image_store(&image);
        store.set_plan(FaultPlan {
            fail_read_once: Some(read),
            ..FaultPlan::default()
        });
        match Database::open_in(store.clone(), options()) {
            Err(Error::Io(_)) => {}
            Err(error) => panic!("read {read} fails: opening failed otherwise: {error}"),
            Ok(db) => panic!(
                "read {read} fails: opened revision {} (rejected: {:?})",
                db.revision(),
                db.engine().rejected_versions()
            ),
        }
        assert_eq!(store.injected(), 1);
        let db = Database::open_in(store, options()).unwrap();
        let read = db.begin_read();
        let value = read.open_tree(b"t").unwrap().get(b"k").unwrap();
        assert_eq!((db.revision(), value.as_deref()), (2, Some(&b"2"[..])));
    }
}

/// A commit whose meta-slot write failed but reached the disk all the same (a failed
/// request may have been done) used to leave that slot holding it while the database
/// went on without it: when the latest commit was the durable one there was nothing to
/// put back, so the next sync made the failed commit's slot durable, and recovery opened
/// a commit that had been reported failed (and never seen) in place of the one synced.
/// Now the slot is written back after any failed commit.
#[test]
fn a_failed_commit_that_reached_the_disk_is_not_recovered_after_a_sync() {
    let put = |db: &Db, value: &[u8], durability| {
        let txn = db.begin_write().unwrap();
        txn.open_tree(b"t").unwrap().insert(b"k", value).unwrap();
        txn.commit_with(durability)
    };
    let setup = || {
        let store: Store = Arc::new(FaultStore::new(
            MemStore::new(PAGE_SIZE).unwrap(),
            FaultPlan::default(),
        ));
        let db = Database::create_in(store.clone(), options()).unwrap();
        put(&db, b"a", Durability::Immediate).unwrap();
        (store, db)
    };
    // The writes of the eventual commit of "b"; its meta slot is the last.
    let (store, db) = setup();
    let before = store.inner().stats().writes;
    put(&db, b"b", Durability::Eventual).unwrap();
    let meta_write = store.inner().stats().writes - before;
    drop(db);

    let (store, db) = setup();
    store.set_plan(FaultPlan {
        fail_write_once: Some(store.inner().stats().writes + meta_write),
        failed_write_lands: true,
        ..FaultPlan::default()
    });
    assert!(put(&db, b"b", Durability::Eventual).is_err());
    assert_eq!(store.injected(), 1);
    let read = db.begin_read();
    let value = read.open_tree(b"t").unwrap().get(b"k").unwrap();
    assert_eq!((db.revision(), value.as_deref()), (1, Some(&b"a"[..])));
    drop(read);
    db.sync().unwrap();
    let reopened = Database::open_in(image_store(&store.crash_image(0)), options()).unwrap();
    let read = reopened.begin_read();
    let value = read.open_tree(b"t").unwrap().get(b"k").unwrap();
    assert_eq!(
        (reopened.revision(), value.as_deref()),
        (1, Some(&b"a"[..])),
        "recovered the failed commit in place of the one synced"
    );
}

/// A commit whose meta-slot write failed (but reached the disk), after an eventual
/// commit, and whose writing back of the latest commit's slot failed too, leaves that
/// slot holding the failed commit until the next sync writes it back. `check()` used to
/// read the slot and report the database damaged meanwhile; it now checks the page as
/// written, and the sync does restore the slot.
#[test]
fn check_after_a_failed_commit_and_a_failed_slot_restore_is_clean() {
    let put = |db: &Db, value: &[u8], durability| {
        let txn = db.begin_write().unwrap();
        txn.open_tree(b"t").unwrap().insert(b"k", value).unwrap();
        txn.commit_with(durability)
    };
    let setup = || {
        let store: Store = Arc::new(FaultStore::new(
            MemStore::new(PAGE_SIZE).unwrap(),
            FaultPlan::default(),
        ));
        let db = Database::create_in(store.clone(), options()).unwrap();
        put(&db, b"a", Durability::Immediate).unwrap();
        put(&db, b"b", Durability::Eventual).unwrap();
        (store, db)
    };
    // The store operations and writes of the eventual commit of "c"; the last of each
    // is its meta slot's write.
    let (store, db) = setup();
    let (operations, writes) = (store.operations(), store.inner().stats().writes);
    put(&db, b"c", Durability::Eventual).unwrap();
    let (commit_operations, commit_writes) = (
        store.operations() - operations,
        store.inner().stats().writes - writes,
    );
    drop(db);

    let (store, db) = setup();
    store.set_plan(FaultPlan {
        // The meta write fails but lands; the restore after it fails.
        fail_write_once: Some(store.inner().stats().writes + commit_writes),
        failed_write_lands: true,
        fail_after: Some(store.operations() + commit_operations),
        ..FaultPlan::default()
    });
    assert!(put(&db, b"c", Durability::Eventual).is_err());
    assert_eq!(store.injected(), 2, "the meta write and the restore failed");
    store.set_plan(FaultPlan::default());
    db.check().expect("check after the failed commit");
    db.sync().unwrap();
    db.check().expect("check after the sync");
    let reopened = Database::open_in(image_store(&store.crash_image(0)), options()).unwrap();
    let read = reopened.begin_read();
    let value = read.open_tree(b"t").unwrap().get(b"k").unwrap();
    assert_eq!(
        (reopened.revision(), value.as_deref()),
        (2, Some(&b"b"[..]))
    );
}
