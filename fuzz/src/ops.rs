//! The `ops` target: an arbitrary sequence of steps on a `Database` over a `FaultStore`,
//! every outcome checked against a model.
//!
//! Steps: write transactions (puts, with values from empty to several pages so that
//! some go off-tree; deletes; range deletes; gets and ranges checked against the
//! transaction's view) ending in a commit of either durability, an abort or a drop;
//! read transactions of the latest revision, a past one or a named snapshot; readers
//! held across commits; snapshots created and dropped; diffs between any two of those
//! versions; sync; compact; reopens (on the same store, on an image with every write
//! kept, or on the image a power loss leaves); and fault points, from which the store
//! either fails every operation (a crash) or fails one write or one sync (an I/O error).
//!
//! The model is the latest acknowledged state plus every committed state by revision,
//! so that reads of the past and diffs have exact answers, and the states a power loss
//! may leave (the last durable one, then later acknowledged or in-flight ones), as in
//! `thunderhead-tx/tests/crash.rs`. A crash is followed by recovery from the power-loss
//! image, which must hold one of those states, check clean and go on taking the rest of
//! the steps; an I/O error must be reported by the call that met it (and by no other),
//! leave the state before the failed step or after it, and leave the database checking
//! clean. At the end `check` runs, and its figures must add up: every page of the store
//! is the header, a meta slot, live, free or pending.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use arbitrary::Unstructured;
use thunderhead_disk::{
    CrashImage, FIRST_DATA_PAGE, FaultPlan, FaultStore, MemStore, PageId, PageStore, resolve,
};
use thunderhead_tx::{
    ChangeKind, Database, Durability, Error, Options, ReadTransaction, Retention, Version,
    WriteTransaction,
};

const PAGE_SIZE: usize = 4096;
/// Steps a run takes at most, and operations a transaction holds at most: inputs stay
/// fast whatever their length.
const STEPS_MAX: usize = 200;
const TRANSACTION_OPS_MAX: usize = 24;
const READERS_MAX: usize = 4;
/// The trees the steps use, and the snapshot names.
const TREES: [&[u8]; 3] = [b"a", b"b", b"c"];
const SNAPSHOTS: [&[u8]; 3] = [b"s0", b"s1", b"s2"];

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;
type Trees = BTreeMap<Vec<u8>, Tree>;
/// Entries of a range, in the order read.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;
/// A diff's changes: (tree, key) and how the key differs.
type Changes = Vec<((Vec<u8>, Vec<u8>), Delta)>;
type Store = Arc<FaultStore<MemStore>>;
type Db = Database<Store>;

/// The target: decodes the options and then steps from `data` and runs them.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let options = options(&mut input);
    // `THUNDERHEAD_FUZZ_TRACE=1` prints each step and the state after it, to debug an
    // input that fails.
    let trace = std::env::var_os("THUNDERHEAD_FUZZ_TRACE").is_some();
    if trace {
        eprintln!("{options:?}");
    }
    let mut run = Run::create(options);
    for index in 0..STEPS_MAX {
        if input.is_empty() {
            break;
        }
        let step = Step::decode(&mut input);
        if trace {
            eprintln!("step {index}: {step:?}");
        }
        run.step(index, &step);
        if trace {
            eprintln!(
                "  -> {}; {} candidates, from {}",
                run.model.latest.describe(),
                run.model.candidates.len(),
                run.model.candidates[0].describe()
            );
        }
    }
    run.finish();
}

// ---------------------------------------------------------------------------------------
// Inputs

/// Small pages, journals and cache, so that a few hundred keys make a tree of several
/// levels with journals that flush, and reads miss the cache.
fn options(input: &mut Unstructured) -> Options {
    let retain_revisions = match input.int_in_range(0..=3u8).unwrap_or(0) {
        0 => Retention::LATEST,
        1 => Retention::revisions(2),
        2 => Retention::revisions(6),
        _ => Retention::all(),
    };
    let journal_bytes = [6 * 1024, 12 * 1024, 64 * 1024][input.choose_index(3).unwrap_or(0)];
    Options {
        page_size: PAGE_SIZE,
        journal_bytes,
        cache_bytes: 64 * 1024,
        retain_revisions,
        ..Options::default()
    }
}

#[derive(Clone, Debug)]
enum TxOp {
    Put {
        tree: usize,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        tree: usize,
        key: Vec<u8>,
    },
    DeleteRange {
        tree: usize,
        start: Vec<u8>,
        end: Vec<u8>,
    },
    Get {
        tree: usize,
        key: Vec<u8>,
    },
    Range {
        tree: usize,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    },
}

/// A version to read or compare.
#[derive(Clone, Copy, Debug)]
enum At {
    Latest,
    /// This many revisions before the latest.
    Back(u64),
    Snapshot(usize),
}

/// Whether the database must let a version be read.
#[derive(Clone, Copy, Debug)]
enum Readable {
    Yes(u64),
    /// It may refuse (below the retention floor).
    Maybe(u64),
    No,
}

/// How a reopen finds the store.
#[derive(Clone, Copy, Debug)]
enum Reopen {
    /// The same store, as a restart of the process that closed it cleanly.
    Same,
    /// A new store holding every write made (a crash of the process).
    Written,
    /// A new store holding what a power loss leaves, by seed.
    PowerLoss(u64),
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Every store operation after this many more fails.
    Crash(u64),
    /// The write this many writes from now fails, once.
    Write(u64),
    /// The sync this many syncs from now fails, once.
    Sync(u64),
}

#[derive(Clone, Debug)]
enum Step {
    Transaction {
        ops: Vec<TxOp>,
        end: Option<Durability>,
        drop: bool,
    },
    Read {
        at: At,
        ops: Vec<TxOp>,
    },
    OpenReader,
    CloseReader(usize),
    Snapshot(usize),
    DropSnapshot(usize),
    Diff {
        from: At,
        to: At,
    },
    Sync,
    Compact,
    Reopen(Reopen),
    Fault(Fault),
}

fn small(input: &mut Unstructured, max: u64) -> u64 {
    input.int_in_range(0..=max).unwrap_or(0)
}

/// Mostly one of 100 short keys (so that writes meet), now and then arbitrary bytes.
fn key(input: &mut Unstructured) -> Vec<u8> {
    let pick = input.int_in_range(0..=255u8).unwrap_or(0);
    if pick < 240 {
        format!("k{:02}", pick % 100).into_bytes()
    } else {
        let len = small(input, 40) as usize;
        input.bytes(len).unwrap_or(&[]).to_vec()
    }
}

/// A value of a length from empty to several pages: off-tree from a quarter page.
fn value(input: &mut Unstructured) -> Vec<u8> {
    let len = match small(input, 15) {
        0..=10 => small(input, 120),
        11..=13 => 900 + small(input, 1200),
        _ => 3000 + small(input, 10_000),
    } as usize;
    let fill = small(input, 255) as u8;
    (0..len)
        .map(|index| fill.wrapping_add((index as u8).wrapping_mul(31)))
        .collect()
}

fn bound(input: &mut Unstructured) -> Bound<Vec<u8>> {
    match small(input, 5) {
        0 => Bound::Unbounded,
        1 => Bound::Excluded(key(input)),
        _ => Bound::Included(key(input)),
    }
}

fn tx_op(input: &mut Unstructured) -> TxOp {
    let tree = small(input, TREES.len() as u64 - 1) as usize;
    match small(input, 15) {
        0..=6 => TxOp::Put {
            tree,
            key: key(input),
            value: value(input),
        },
        7..=9 => TxOp::Delete {
            tree,
            key: key(input),
        },
        10 => TxOp::DeleteRange {
            tree,
            start: key(input),
            end: key(input),
        },
        11..=12 => TxOp::Get {
            tree,
            key: key(input),
        },
        _ => TxOp::Range {
            tree,
            start: bound(input),
            end: bound(input),
            reverse: small(input, 1) == 1,
        },
    }
}

/// The read an operation names: a get of its key, or a range of its range.
fn as_read(op: TxOp) -> TxOp {
    match op {
        TxOp::Put { tree, key, .. } | TxOp::Delete { tree, key } => TxOp::Get { tree, key },
        TxOp::DeleteRange { tree, start, end } => TxOp::Range {
            tree,
            start: Bound::Included(start),
            end: Bound::Excluded(end),
            reverse: false,
        },
        read => read,
    }
}

impl TxOp {
    /// The index of the tree it works on.
    fn tree(&self) -> usize {
        match self {
            TxOp::Put { tree, .. }
            | TxOp::Delete { tree, .. }
            | TxOp::DeleteRange { tree, .. }
            | TxOp::Get { tree, .. }
            | TxOp::Range { tree, .. } => *tree,
        }
    }
}

fn at(input: &mut Unstructured) -> At {
    match small(input, 3) {
        0 => At::Latest,
        1 => At::Snapshot(small(input, SNAPSHOTS.len() as u64 - 1) as usize),
        _ => At::Back(small(input, 8)),
    }
}

impl Step {
    fn decode(input: &mut Unstructured) -> Step {
        match small(input, 63) {
            0..=29 => {
                let count = 1 + small(input, TRANSACTION_OPS_MAX as u64 - 1);
                let ops = (0..count).map(|_| tx_op(input)).collect();
                let (end, drop) = match small(input, 9) {
                    0 => (None, false),
                    1 => (None, true),
                    2..=5 => (Some(Durability::Eventual), false),
                    _ => (Some(Durability::Immediate), false),
                };
                Step::Transaction { ops, end, drop }
            }
            30..=35 => {
                let at = at(input);
                let count = 1 + small(input, 7);
                let ops = (0..count).map(|_| as_read(tx_op(input))).collect();
                Step::Read { at, ops }
            }
            36..=37 => Step::OpenReader,
            38..=39 => Step::CloseReader(small(input, 7) as usize),
            40..=42 => Step::Snapshot(small(input, SNAPSHOTS.len() as u64 - 1) as usize),
            43..=44 => Step::DropSnapshot(small(input, SNAPSHOTS.len() as u64 - 1) as usize),
            45..=48 => Step::Diff {
                from: at(input),
                to: at(input),
            },
            49..=50 => Step::Sync,
            51 => Step::Compact,
            52..=55 => Step::Reopen(match small(input, 2) {
                0 => Reopen::Same,
                1 => Reopen::Written,
                _ => Reopen::PowerLoss(small(input, u64::from(u32::MAX))),
            }),
            _ => Step::Fault(match small(input, 2) {
                0 => Fault::Crash(small(input, 300)),
                1 => Fault::Write(1 + small(input, 40)),
                _ => Fault::Sync(1 + small(input, 4)),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The model

/// A committed state of the whole database.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    revision: u64,
    trees: Trees,
    snapshots: BTreeMap<Vec<u8>, u64>,
}

impl State {
    fn describe(&self) -> String {
        let trees: Vec<String> = self
            .trees
            .iter()
            .map(|(name, tree)| format!("{}: {} keys", name.escape_ascii(), tree.len()))
            .collect();
        format!(
            "revision {} {{{}}} snapshots {:?}",
            self.revision,
            trees.join(", "),
            self.snapshots
        )
    }
}

struct Model {
    /// The latest acknowledged state.
    latest: State,
    /// The trees of every committed revision (of the current timeline: a recovery to
    /// an earlier revision forgets the later ones, whose numbers will be reused).
    history: BTreeMap<u64, Trees>,
    /// The states a power loss may leave: the last durable one, then later ones
    /// (acknowledged or in flight).
    candidates: Vec<State>,
}

impl Model {
    fn new() -> Self {
        let latest = State {
            revision: 0,
            trees: Trees::new(),
            snapshots: BTreeMap::new(),
        };
        Self {
            history: BTreeMap::from([(0, Trees::new())]),
            candidates: vec![latest.clone()],
            latest,
        }
    }

    /// `state` is acknowledged.
    fn acknowledge(&mut self, state: State) {
        self.history.insert(state.revision, state.trees.clone());
        self.maybe(&state);
        self.latest = state;
    }

    /// `state` may survive a power loss.
    fn maybe(&mut self, state: &State) {
        if self.candidates.last() != Some(state) {
            self.candidates.push(state.clone());
        }
    }

    /// The latest state is durable.
    fn durable(&mut self) {
        self.candidates = vec![self.latest.clone()];
    }

    /// The database was reopened at `state`, which is now durable.
    fn recovered(&mut self, state: State) {
        self.history.split_off(&(state.revision + 1));
        self.latest = state;
        self.history
            .insert(self.latest.revision, self.latest.trees.clone());
        self.durable();
    }
}

// ---------------------------------------------------------------------------------------
// Running

/// Which fault the store has been told to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Armed {
    None,
    Crash,
    Once,
}

struct Run {
    options: Options,
    store: Store,
    db: Option<Db>,
    model: Model,
    readers: Vec<(ReadTransaction<Store>, u64)>,
    armed: Armed,
}

fn fault_store(inner: MemStore) -> Store {
    Arc::new(FaultStore::new(inner, FaultPlan::default()))
}

fn image_store(image: &CrashImage) -> Store {
    fault_store(MemStore::from_image(PAGE_SIZE, image).expect("an image of whole pages"))
}

/// What `store` holds now: every write kept, as a crash of the process leaves it.
fn written_image(store: &Store) -> CrashImage {
    let inner = store.inner();
    let pages = (0..inner.page_count())
        .map(|page| {
            let bytes = resolve(inner.read(PageId(page), 1)).expect("a memory store reads");
            (page, bytes.to_vec())
        })
        .collect();
    CrashImage { pages }
}

fn read_tree<S: PageStore>(read: &ReadTransaction<S>, name: &[u8]) -> Result<Tree, Error> {
    read.open_tree(name)?
        .iter()
        .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
        .collect()
}

/// Every tree a read transaction sees, with its contents.
fn read_all<S: PageStore>(read: &ReadTransaction<S>) -> Result<Trees, Error> {
    let mut trees = Trees::new();
    for name in read.list_trees()? {
        let tree = read_tree(read, &name)?;
        trees.insert(name, tree);
    }
    Ok(trees)
}

/// The latest state of `db`: its trees, snapshots and revision.
fn state_of(db: &Db) -> Result<State, Error> {
    let read = db.begin_read();
    let snapshots = db
        .snapshots()
        .into_iter()
        .map(|info| (info.name, info.revision))
        .collect();
    Ok(State {
        revision: read.revision(),
        trees: read_all(&read)?,
        snapshots,
    })
}

fn in_range(key: &[u8], start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> bool {
    let above = match start {
        Bound::Included(start) => key >= start.as_slice(),
        Bound::Excluded(start) => key > start.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match end {
        Bound::Included(end) => key <= end.as_slice(),
        Bound::Excluded(end) => key < end.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

fn expected_range(
    tree: &Tree,
    start: &Bound<Vec<u8>>,
    end: &Bound<Vec<u8>>,
    reverse: bool,
) -> Entries {
    let mut want: Vec<_> = tree
        .iter()
        .filter(|(key, _)| in_range(key, start, end))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if reverse {
        want.reverse();
    }
    want
}

fn collect<E>(range: impl Iterator<Item = Result<(Vec<u8>, E), Error>>) -> Result<Entries, Error>
where
    E: std::ops::Deref<Target = [u8]>,
{
    range
        .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
        .collect()
}

fn as_bounds(start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (start.clone(), end.clone())
}

/// Applies `op` to `txn` and to `trees`, its view; reads are checked.
fn apply(txn: &WriteTransaction<Store>, op: &TxOp, trees: &mut Trees) -> Result<(), Error> {
    let name = TREES[op.tree()];
    let handle = txn.open_tree(name)?;
    let model = trees.entry(name.to_vec()).or_default();
    match op {
        TxOp::Put { key, value, .. } => {
            handle.insert(key, value)?;
            model.insert(key.clone(), value.clone());
        }
        TxOp::Delete { key, .. } => {
            handle.remove(key)?;
            model.remove(key);
        }
        TxOp::DeleteRange { start, end, .. } => {
            handle.remove_range(start.as_slice()..end.as_slice())?;
            model.retain(|key, _| key < start || key >= end);
        }
        TxOp::Get { key, .. } => {
            let found = handle.get(key)?.map(|value| value.to_vec());
            assert_eq!(
                found.as_ref(),
                model.get(key),
                "a write transaction reads {}",
                key.escape_ascii()
            );
        }
        TxOp::Range {
            start,
            end,
            reverse,
            ..
        } => {
            let range = handle.range::<Vec<u8>, _>(as_bounds(start, end))?;
            let found = if *reverse {
                collect(range.rev())?
            } else {
                collect(range)?
            };
            let want = expected_range(model, start, end, *reverse);
            assert!(
                found == want,
                "a write transaction ranges {start:?}..{end:?} wrong"
            );
        }
    }
    Ok(())
}

/// Checks read `op`s (gets and ranges) of a read transaction against `trees`, its state.
fn check_reads(read: &ReadTransaction<Store>, ops: &[TxOp], trees: &Trees) -> Result<(), Error> {
    let names: Vec<Vec<u8>> = trees.keys().cloned().collect();
    assert_eq!(read.list_trees()?, names, "list_trees");
    for op in ops {
        let name = TREES[op.tree()];
        let Some(model) = trees.get(name) else {
            match read.open_tree(name) {
                Err(Error::TreeNotFound { .. }) => continue,
                Err(error) => return Err(error),
                Ok(_) => panic!("a tree the model lacks opens: {}", name.escape_ascii()),
            }
        };
        let handle = read.open_tree(name)?;
        match op {
            TxOp::Range {
                start,
                end,
                reverse,
                ..
            } => {
                let range = handle.range::<Vec<u8>, _>(as_bounds(start, end));
                let found = if *reverse {
                    collect(range.rev())?
                } else {
                    collect(range)?
                };
                let want = expected_range(model, start, end, *reverse);
                assert!(
                    found == want,
                    "a read transaction ranges {start:?}..{end:?} wrong"
                );
            }
            TxOp::Get { key, .. } => {
                let found = handle.get(key)?.map(|value| value.to_vec());
                assert_eq!(
                    found.as_ref(),
                    model.get(key),
                    "a read of {}",
                    key.escape_ascii()
                );
            }
            _ => unreachable!("reads are gets and ranges"),
        }
    }
    Ok(())
}

/// How a key differs between two versions: old and new values, at least one present.
type Delta = (Option<Vec<u8>>, Option<Vec<u8>>);

fn delta(kind: &ChangeKind) -> Delta {
    match kind {
        ChangeKind::Added(new) => (None, Some(new.to_vec())),
        ChangeKind::Removed(old) => (Some(old.to_vec()), None),
        ChangeKind::Updated { old, new } => (Some(old.to_vec()), Some(new.to_vec())),
    }
}

/// The changes from `old` to `new` by tree and key, in the order `Database::diff`
/// reports them (tree name, then key).
fn expected_diff(old: &Trees, new: &Trees) -> Changes {
    let flat = |trees: &Trees| -> BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>> {
        trees
            .iter()
            .flat_map(|(name, tree)| {
                tree.iter()
                    .map(|(key, value)| ((name.clone(), key.clone()), value.clone()))
            })
            .collect()
    };
    let (old, new) = (flat(old), flat(new));
    let mut changes: BTreeMap<(Vec<u8>, Vec<u8>), Delta> = BTreeMap::new();
    for (entry, value) in &old {
        if new.get(entry) != Some(value) {
            changes.insert(
                entry.clone(),
                (Some(value.clone()), new.get(entry).cloned()),
            );
        }
    }
    for (entry, value) in &new {
        if !old.contains_key(entry) {
            changes.insert(entry.clone(), (None, Some(value.clone())));
        }
    }
    changes.into_iter().collect()
}

impl Run {
    fn create(options: Options) -> Self {
        let store = fault_store(MemStore::new(PAGE_SIZE).expect("a memory store"));
        let db = Database::create_in(store.clone(), options.clone()).expect("create");
        Self {
            options,
            store,
            db: Some(db),
            model: Model::new(),
            readers: Vec::new(),
            armed: Armed::None,
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("an open database")
    }

    /// The version `at` names, and whether the database must let it be read.
    fn resolve(&self, at: At) -> (Version, Readable) {
        let latest = self.model.latest.revision;
        match at {
            At::Latest => (Version::Latest, Readable::Yes(latest)),
            At::Back(back) => {
                let revision = latest.saturating_sub(back);
                // Below the retention floor a revision may still be readable: a reader
                // or a snapshot keeps it.
                let readable = if revision >= self.db().oldest_retained() {
                    Readable::Yes(revision)
                } else {
                    Readable::Maybe(revision)
                };
                (Version::Revision(revision), readable)
            }
            At::Snapshot(index) => {
                let name = SNAPSHOTS[index];
                let readable = match self.model.latest.snapshots.get(name) {
                    Some(&revision) => Readable::Yes(revision),
                    None => Readable::No,
                };
                (Version::Snapshot(name.to_vec()), readable)
            }
        }
    }

    /// Opens `version` for reading as `readable` says it must (or may) open: `None`
    /// when it is refused, as it may be.
    fn open_version(
        &self,
        version: &Version,
        readable: Readable,
    ) -> Result<Option<ReadTransaction<Store>>, Error> {
        match (self.begin_read_at(version), readable) {
            (Ok(read), Readable::Yes(revision) | Readable::Maybe(revision)) => {
                assert_eq!(read.revision(), revision, "the revision of {version:?}");
                Ok(Some(read))
            }
            (Err(error), _) if !is_refusal(&error) => Err(error),
            (Err(_), Readable::Maybe(_) | Readable::No) => Ok(None),
            (result, readable) => panic!(
                "reading {version:?}: {:?}, expected {readable:?}",
                result.map(|read| read.revision())
            ),
        }
    }

    /// The trees of a revision the model knows.
    fn trees_at(&self, revision: u64) -> &Trees {
        self.model
            .history
            .get(&revision)
            .unwrap_or_else(|| panic!("revision {revision} is not in the model's history"))
    }

    fn begin_read_at(&self, version: &Version) -> Result<ReadTransaction<Store>, Error> {
        match version {
            Version::Latest => Ok(self.db().begin_read()),
            Version::Revision(revision) => self.db().begin_read_at(*revision),
            Version::Snapshot(name) => self.db().begin_read_at_snapshot(name),
        }
    }

    /// Runs one step and judges its outcome against the faults the store injected.
    fn step(&mut self, index: usize, step: &Step) {
        let injected = self.store.injected();
        // The state a failing commit may leave in place of the latest.
        let mut after = None;
        let result = self.try_step(step, &mut after);
        let met = self.store.injected() > injected;
        match result {
            Ok(()) => assert!(
                !met,
                "step {index} ({step:?}) met an injected fault but succeeded"
            ),
            Err(error) => {
                assert!(
                    met,
                    "step {index} ({step:?}) failed without an injected fault: {error}"
                );
                match self.armed {
                    Armed::Crash => self.recover_from_crash(index),
                    Armed::Once | Armed::None => self.after_error(index, after),
                }
            }
        }
    }

    fn try_step(&mut self, step: &Step, after: &mut Option<State>) -> Result<(), Error> {
        match step {
            Step::Transaction { ops, end, drop } => self.transaction(ops, *end, *drop, after),
            Step::Read { at, ops } => {
                let (version, readable) = self.resolve(*at);
                let Some(read) = self.open_version(&version, readable)? else {
                    return Ok(());
                };
                let trees = self.trees_at(read.revision()).clone();
                check_reads(&read, ops, &trees)
            }
            Step::OpenReader => {
                if self.readers.len() < READERS_MAX {
                    let read = self.db().begin_read();
                    assert_eq!(read.revision(), self.model.latest.revision);
                    self.readers.push((read, self.model.latest.revision));
                }
                Ok(())
            }
            Step::CloseReader(pick) => {
                if !self.readers.is_empty() {
                    let (read, revision) = self.readers.remove(pick % self.readers.len());
                    let found = read_all(&read)?;
                    assert!(
                        &found == self.trees_at(revision),
                        "a reader held since revision {revision} reads another state"
                    );
                }
                Ok(())
            }
            Step::Snapshot(index) => self.snapshot(SNAPSHOTS[*index], true, after),
            Step::DropSnapshot(index) => self.snapshot(SNAPSHOTS[*index], false, after),
            Step::Diff { from, to } => self.diff(*from, *to),
            Step::Sync => {
                self.db().sync()?;
                self.model.durable();
                Ok(())
            }
            Step::Compact => {
                // A revision of its own, with the same trees, which a failed sync may
                // leave on disk.
                let mut state = self.model.latest.clone();
                state.revision += 1;
                self.model.maybe(&state);
                *after = Some(state);
                self.db().compact()?;
                let state = State {
                    revision: self.db().revision(),
                    ..self.model.latest.clone()
                };
                self.model.acknowledge(state);
                self.model.durable();
                Ok(())
            }
            Step::Reopen(how) => self.reopen(*how),
            Step::Fault(fault) => {
                self.arm(*fault);
                Ok(())
            }
        }
    }

    fn transaction(
        &mut self,
        ops: &[TxOp],
        end: Option<Durability>,
        drop: bool,
        after: &mut Option<State>,
    ) -> Result<(), Error> {
        let txn = self.db().begin_write()?;
        let mut next = self.model.latest.trees.clone();
        for op in ops {
            apply(&txn, op, &mut next)?;
        }
        let Some(durability) = end else {
            if drop {
                std::mem::drop(txn);
            } else {
                txn.abort();
            }
            return Ok(());
        };
        let mut state = State {
            revision: self.model.latest.revision + 1,
            trees: next,
            snapshots: self.model.latest.snapshots.clone(),
        };
        // In flight: a power loss may or may not keep it.
        self.model.maybe(&state);
        *after = Some(state.clone());
        let revision = txn.commit_with(durability)?;
        assert_eq!(
            revision,
            self.db().revision(),
            "the revision commit returns"
        );
        if revision == self.model.latest.revision {
            // Nothing to commit: the transaction changed nothing.
            assert!(
                state.trees == self.model.latest.trees,
                "a commit that changed the trees kept revision {revision}"
            );
            self.model
                .candidates
                .pop_if(|candidate| *candidate == state);
        } else {
            assert_eq!(revision, state.revision, "a commit's revision");
            state.revision = revision;
            self.model.acknowledge(state);
        }
        if durability == Durability::Immediate {
            self.model.durable();
        }
        Ok(())
    }

    fn snapshot(
        &mut self,
        name: &[u8],
        create: bool,
        after: &mut Option<State>,
    ) -> Result<(), Error> {
        let exists = self.model.latest.snapshots.contains_key(name);
        let mut state = State {
            revision: self.model.latest.revision + 1,
            ..self.model.latest.clone()
        };
        if create {
            state
                .snapshots
                .insert(name.to_vec(), self.model.latest.revision);
        } else {
            state.snapshots.remove(name);
        }
        if exists == create {
            let result = if create {
                self.db().snapshot(name).map(|_| ())
            } else {
                self.db().drop_snapshot(name)
            };
            return match result {
                Err(Error::SnapshotExists { .. }) if create => Ok(()),
                Err(Error::SnapshotNotFound { .. }) if !create => Ok(()),
                Err(error) if !is_refusal(&error) => Err(error),
                result => panic!("snapshot {create} of {}: {result:?}", name.escape_ascii()),
            };
        }
        self.model.maybe(&state);
        *after = Some(state.clone());
        if create {
            let kept = self.db().snapshot(name)?;
            assert_eq!(
                kept, self.model.latest.revision,
                "the revision a snapshot keeps"
            );
        } else {
            self.db().drop_snapshot(name)?;
        }
        assert_eq!(self.db().revision(), state.revision, "a snapshot's commit");
        self.model.acknowledge(state);
        self.model.durable();
        Ok(())
    }

    /// A diff of two versions, checked against the model's difference of their trees.
    /// The database must refuse it if it refuses to read either version alone.
    fn diff(&mut self, from: At, to: At) -> Result<(), Error> {
        let (old, old_readable) = self.resolve(from);
        let (new, new_readable) = self.resolve(to);
        let old_read = self.open_version(&old, old_readable)?;
        let new_read = self.open_version(&new, new_readable)?;
        let diff = match self.db().diff(old.clone(), new.clone()) {
            Ok(diff) => diff,
            Err(error) if !is_refusal(&error) => return Err(error),
            Err(error) => {
                assert!(
                    old_read.is_none() || new_read.is_none(),
                    "diff {old:?} to {new:?}: {error}, though both versions read"
                );
                return Ok(());
            }
        };
        let (Some(old_read), Some(new_read)) = (old_read, new_read) else {
            panic!("diff {old:?} to {new:?} opened a version that does not read");
        };
        let (old_revision, new_revision) = (old_read.revision(), new_read.revision());
        assert_eq!(diff.from_revision(), old_revision, "diff from {old:?}");
        assert_eq!(diff.to_revision(), new_revision, "diff to {new:?}");
        let found: Vec<_> = diff
            .map(|change| change.map(|change| ((change.tree, change.key), delta(&change.kind))))
            .collect::<Result<_, Error>>()?;
        let want = expected_diff(self.trees_at(old_revision), self.trees_at(new_revision));
        assert!(
            found == want,
            "diff of revisions {old_revision} and {new_revision}: {} changes, not {}",
            found.len(),
            want.len()
        );
        Ok(())
    }

    fn reopen(&mut self, how: Reopen) -> Result<(), Error> {
        self.readers.clear();
        self.db = None;
        let (store, candidates) = match how {
            Reopen::Same => (self.store.clone(), self.latest_candidates()),
            Reopen::Written => (
                image_store(&written_image(&self.store)),
                self.latest_candidates(),
            ),
            Reopen::PowerLoss(seed) => (
                image_store(&self.store.crash_image(seed)),
                self.model.candidates.clone(),
            ),
        };
        if !Arc::ptr_eq(&store, &self.store) {
            self.store = store;
            self.armed = Armed::None;
        }
        let db = Database::open_in(self.store.clone(), self.options.clone())?;
        self.db = Some(db);
        let found = self.recovered(&candidates, &format!("reopen {how:?}"))?;
        self.model.recovered(found);
        Ok(())
    }

    /// The states a crash of the process (every write kept) may leave: the latest
    /// acknowledged one, or one in flight after it.
    fn latest_candidates(&self) -> Vec<State> {
        let candidates = &self.model.candidates;
        let latest = candidates
            .iter()
            .rposition(|state| *state == self.model.latest)
            .expect("the latest state is a candidate");
        candidates[latest..].to_vec()
    }

    /// Checks the database just opened: it checks clean and holds one of `candidates`.
    fn recovered(&self, candidates: &[State], what: &str) -> Result<State, Error> {
        recovered(self.db(), candidates, what)
    }

    fn arm(&mut self, fault: Fault) {
        let stats = self.store.inner().stats();
        let (plan, armed) = match fault {
            Fault::Crash(after) => (
                FaultPlan {
                    fail_after: Some(self.store.operations() + after),
                    ..FaultPlan::default()
                },
                Armed::Crash,
            ),
            Fault::Write(writes) => (
                FaultPlan {
                    fail_write_once: Some(stats.writes + writes),
                    ..FaultPlan::default()
                },
                Armed::Once,
            ),
            Fault::Sync(syncs) => (
                FaultPlan {
                    fail_sync_once: Some(stats.syncs + syncs),
                    ..FaultPlan::default()
                },
                Armed::Once,
            ),
        };
        self.store.set_plan(plan);
        self.armed = armed;
    }

    /// After a crash: the power-loss image and the image with every write kept both
    /// recover to states the run may leave; the run goes on from the power-loss one.
    fn recover_from_crash(&mut self, index: usize) {
        self.readers.clear();
        self.db = None;
        let written = image_store(&written_image(&self.store));
        let candidates = self.latest_candidates();
        let what = format!("step {index}: recovery after a process crash");
        let db = Database::open_in(written, self.options.clone())
            .unwrap_or_else(|error| panic!("{what}: {error}"));
        recovered(&db, &candidates, &what).unwrap_or_else(|error| panic!("{what}: {error}"));
        drop(db);

        let seed = self.store.operations() ^ (index as u64) << 32;
        self.store = image_store(&self.store.crash_image(seed));
        self.armed = Armed::None;
        let db = Database::open_in(self.store.clone(), self.options.clone())
            .unwrap_or_else(|error| panic!("step {index}: recovery after a power loss: {error}"));
        self.db = Some(db);
        let candidates = self.model.candidates.clone();
        let what = format!("step {index}: recovery after a power loss (image {seed:#x})");
        let found = self
            .recovered(&candidates, &what)
            .unwrap_or_else(|error| panic!("{what}: {error}"));
        self.model.recovered(found);
    }

    /// After a reported I/O error: the database holds the state before the failed step
    /// or after it, checks clean, and a power loss now leaves a state the run may leave.
    fn after_error(&mut self, index: usize, after: Option<State>) {
        if self.db.is_none() {
            // A reopen failed: open again, the fault being spent.
            self.store.set_plan(FaultPlan::default());
            let db = Database::open_in(self.store.clone(), self.options.clone())
                .unwrap_or_else(|error| panic!("step {index}: reopening after a fault: {error}"));
            self.db = Some(db);
            let candidates = self.latest_candidates();
            let what = format!("step {index}: reopening after a fault");
            let found = self
                .recovered(&candidates, &what)
                .unwrap_or_else(|error| panic!("{what}: {error}"));
            self.model.recovered(found);
            return;
        }
        let found = state_of(self.db())
            .unwrap_or_else(|error| panic!("step {index}: reading after the fault: {error}"));
        if found != self.model.latest {
            match after {
                // The commit is in the database although it reported an error (its
                // sync failed): it may or may not be durable.
                Some(after) if found == after => self.model.acknowledge(after),
                _ => panic!(
                    "step {index}: after the fault the database holds {}, neither the state \
                     before ({}) nor after the step",
                    found.describe(),
                    self.model.latest.describe()
                ),
            }
        }
        let report = self
            .db()
            .check()
            .unwrap_or_else(|error| panic!("step {index}: check after the fault: {error}"));
        check_report(&report);
        let seed = self.store.operations();
        let image = image_store(&self.store.crash_image(seed));
        let db = Database::open_in(image, self.options.clone())
            .unwrap_or_else(|error| panic!("step {index}: a power loss at the fault: {error}"));
        let found = state_of(&db).unwrap_or_else(|error| panic!("step {index}: {error}"));
        assert!(
            self.model.candidates.contains(&found),
            "step {index}: a power loss at the fault recovered {}, none of the {} expected",
            found.describe(),
            self.model.candidates.len()
        );
        db.check()
            .unwrap_or_else(|error| panic!("step {index}: a power loss at the fault: {error}"));
    }

    /// At the end: the database holds the latest state, checks clean with figures that
    /// add up, and a power loss leaves a state the run may leave.
    fn finish(mut self) {
        self.store.set_plan(FaultPlan::default());
        self.readers.clear();
        let report = self
            .db()
            .check()
            .unwrap_or_else(|error| panic!("check: {error}"));
        check_report(&report);
        let found = state_of(self.db()).unwrap_or_else(|error| panic!("reading: {error}"));
        assert!(
            found == self.model.latest,
            "at the end the database holds {}, not {}",
            found.describe(),
            self.model.latest.describe()
        );
        self.db = None;
        let image = image_store(&self.store.crash_image(0x5EED));
        let db = Database::open_in(image, self.options.clone())
            .unwrap_or_else(|error| panic!("a power loss at the end: {error}"));
        let found =
            state_of(&db).unwrap_or_else(|error| panic!("a power loss at the end: {error}"));
        assert!(
            self.model.candidates.contains(&found),
            "a power loss at the end recovered {}",
            found.describe()
        );
    }
}

/// Checks a database just opened: it checks clean and holds one of `candidates`.
fn recovered(db: &Db, candidates: &[State], what: &str) -> Result<State, Error> {
    let report = db.check()?;
    check_report(&report);
    let found = state_of(db)?;
    assert!(
        candidates.contains(&found),
        "{what}: recovered {}, none of the {} states expected (from {} to {})",
        found.describe(),
        candidates.len(),
        candidates[0].describe(),
        candidates[candidates.len() - 1].describe()
    );
    Ok(found)
}

/// Errors by which the database refuses a version that is not there to read.
fn is_refusal(error: &Error) -> bool {
    matches!(
        error,
        Error::RevisionPruned { .. }
            | Error::RevisionNotFound { .. }
            | Error::SnapshotNotFound { .. }
    )
}

/// The leak check's figures add up: every page from the first data page to the end is
/// live, free or pending (`check` has verified that no page is two of them).
fn check_report(report: &thunderhead_tx::EngineReport) {
    assert_eq!(
        report.used_pages,
        FIRST_DATA_PAGE + report.live_pages + report.free_pages + report.pending_pages,
        "pages used are not the fixed ones plus live, free and pending: {report:?}"
    );
}
