//! A multi-threaded stress test of write transactions, checked for serializability.
//!
//! Writer threads run random transactions on a small key space (32 keys in each of two
//! trees), each thread keeping a few transactions open at once and interleaving their
//! operations so that conflicts are frequent whatever the scheduling: gets, range scans
//! (forward, reverse, from both ends) and prefix scans, all recording what they saw,
//! inserts of values unique to (thread, transaction, operation), removes and range
//! removes; then commit, or abort on purpose. Reader threads take snapshots and read
//! them for a while. Every transaction is logged with its operations in order, what each
//! read saw, and its outcome (revision, conflict or abort).
//!
//! Afterwards the committed transactions are replayed in revision order against a
//! `BTreeMap` model (one map per tree), which checks that:
//!
//! * the revisions of the committed transactions that wrote are unique and gapless
//!   (from 1, the setup commit), and the last is the database's revision;
//! * every read of a committed transaction equals the model at its commit point with
//!   the transaction's own earlier writes applied: it could have run serially there;
//! * every read of every write transaction, whatever its outcome, equals its snapshot
//!   (the model at the revision it began at, with its own earlier writes);
//! * every reader's observations equal the model at the reader's revision;
//! * no value written by a conflicted or aborted transaction is ever seen (but by
//!   itself), the final contents equal the final model, and `Database::check` passes
//!   (for the file variant, also after reopening the file);
//! * every conflict has a cause: a commit after the transaction began wrote a key or
//!   range it read (so blind writes never conflict), and the contended runs do have
//!   conflicts, so validation is exercised.
//!
//! Three variants: in memory with default options; on a file in a temporary directory
//! with small pages and journals, large values and `Immediate` commits mixed with
//! `Eventual` ones; and in memory with a tiny `spill_bytes`, so that transactions read
//! and commit through their scratch stores. Each runs for `THUNDERHEAD_STRESS_SECS` seconds (default 1; fractions
//! allowed) and seeds its threads from `THUNDERHEAD_STRESS_SEED` (default fixed). The
//! interleaving of threads is not reproducible, but each thread's choices are.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::time::{Duration, Instant};

use thunderhead_disk::SplitMix64;
use thunderhead_tx::{Database, Durability, Error, Options, Value, WriteTransaction};

const TREES: [&[u8]; 2] = [b"alpha", b"beta"];
/// Keys per tree: `k00` to `k31` (ranges may also end at `k32`, which is never written).
const KEYS: u64 = 32;
/// Prefixes of prefix scans.
const PREFIXES: [&[u8]; 5] = [b"k", b"k0", b"k1", b"k2", b"k3"];
/// Write transactions one writer thread keeps open at once.
const OPEN_MAX: usize = 3;
/// Operations after which a write transaction is always finished.
const OPS_MAX: usize = 14;
/// Transactions every thread finishes even if the time is up (so that slow machines
/// still exercise everything).
const WRITER_TXNS_MIN: u64 = 60;
const READER_TXNS_MIN: u64 = 30;

type Key = Vec<u8>;
type Entries = Vec<(Key, Vec<u8>)>;
type Model = [BTreeMap<Key, Vec<u8>>; 2];

fn key(index: u64) -> Key {
    format!("k{index:02}").into_bytes()
}

/// A key range with owned bounds.
#[derive(Clone)]
struct Span {
    start: Bound<Key>,
    end: Bound<Key>,
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.start {
            Bound::Included(key) => write!(f, "[{}", show(key))?,
            Bound::Excluded(key) => write!(f, "({}", show(key))?,
            Bound::Unbounded => write!(f, "(..")?,
        }
        match &self.end {
            Bound::Included(key) => write!(f, ", {}]", show(key)),
            Bound::Excluded(key) => write!(f, ", {})", show(key)),
            Bound::Unbounded => write!(f, ", ..)"),
        }
    }
}

impl Span {
    fn point(key: &[u8]) -> Self {
        Span {
            start: Bound::Included(key.to_vec()),
            end: Bound::Included(key.to_vec()),
        }
    }

    fn prefix(prefix: &[u8]) -> Self {
        Span {
            start: Bound::Included(prefix.to_vec()),
            end: Bound::Excluded(successor(prefix)),
        }
    }

    fn contains(&self, key: &[u8]) -> bool {
        std::ops::RangeBounds::contains(&self.refs(), key)
    }

    fn refs(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (
            self.start.as_ref().map(Vec::as_slice),
            self.end.as_ref().map(Vec::as_slice),
        )
    }

    /// Whether no key lies in it (keys here never differ by a trailing zero byte).
    fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(start), Bound::Included(end)) => start > end,
            (Bound::Included(start) | Bound::Excluded(start), Bound::Excluded(end))
            | (Bound::Excluded(start), Bound::Included(end)) => start >= end,
            _ => false,
        }
    }

    /// A random range of up to `width` keys; both ends may be open when `open_ends`.
    /// Always valid for `BTreeMap::range` (start <= end, not both excluded if equal).
    fn random(rng: &mut SplitMix64, width: u64, open_ends: bool) -> Self {
        let first = rng.below(KEYS + 1);
        let last = (first + rng.below(width + 1)).min(KEYS);
        let mut bound = |index: u64| {
            if rng.below(2) == 0 {
                Bound::Included(key(index))
            } else {
                Bound::Excluded(key(index))
            }
        };
        let mut span = Span {
            start: bound(first),
            end: bound(last),
        };
        if first == last
            && matches!(
                (&span.start, &span.end),
                (Bound::Excluded(_), Bound::Excluded(_))
            )
        {
            span.end = Bound::Included(key(last));
        }
        if open_ends {
            match rng.below(12) {
                0 => span.start = Bound::Unbounded,
                1 => span.end = Bound::Unbounded,
                _ => {}
            }
        }
        span
    }
}

/// How a scan walks its range.
#[derive(Clone, Copy, Debug)]
enum Walk {
    Forward,
    /// Recorded in the order seen (descending).
    Reverse,
    /// Randomly from either end; recorded in ascending order.
    BothEnds,
}

impl Walk {
    fn random(rng: &mut SplitMix64) -> Self {
        match rng.below(4) {
            0 => Walk::Reverse,
            1 => Walk::BothEnds,
            _ => Walk::Forward,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Get {
        tree: usize,
        key: Key,
        saw: Option<Vec<u8>>,
    },
    Scan {
        tree: usize,
        span: Span,
        walk: Walk,
        saw: Entries,
    },
    /// A scan of a prefix view; `saw` holds full keys.
    Prefix {
        tree: usize,
        prefix: Key,
        walk: Walk,
        saw: Entries,
    },
    Insert {
        tree: usize,
        key: Key,
        value: Vec<u8>,
    },
    Remove {
        tree: usize,
        key: Key,
    },
    RemoveRange {
        tree: usize,
        span: Span,
    },
}

impl Op {
    fn is_read(&self) -> bool {
        matches!(self, Op::Get { .. } | Op::Scan { .. } | Op::Prefix { .. })
    }

    /// Whether it changes anything the library counts as a write.
    /// The keys a write changes.
    fn footprint(&self) -> Option<(usize, Span)> {
        match self {
            Op::Insert { tree, key, .. } | Op::Remove { tree, key } => {
                Some((*tree, Span::point(key)))
            }
            Op::RemoveRange { tree, span } if !span.is_empty() => Some((*tree, span.clone())),
            _ => None,
        }
    }

    fn is_write(&self) -> bool {
        match self {
            Op::Insert { .. } | Op::Remove { .. } => true,
            Op::RemoveRange { span, .. } => !span.is_empty(),
            _ => false,
        }
    }
}

/// Where `op` read something the model does not hold there, what it saw and what the
/// model has.
fn mismatch(model: &Model, op: &Op) -> Option<String> {
    let (tree, walk, saw, want) = match op {
        Op::Get { tree, key, saw } => {
            let want = model[*tree].get(key);
            return (want != saw.as_ref()).then(|| {
                format!(
                    "get {} in {}: saw {}, the model has {}",
                    show(key),
                    show(TREES[*tree]),
                    show_value(saw.as_deref()),
                    show_value(want.map(Vec::as_slice))
                )
            });
        }
        Op::Scan {
            tree,
            span,
            walk,
            saw,
        } => (
            *tree,
            *walk,
            saw,
            model[*tree]
                .range::<[u8], _>(span.refs())
                .collect::<Vec<_>>(),
        ),
        Op::Prefix {
            tree,
            prefix,
            walk,
            saw,
        } => (
            *tree,
            *walk,
            saw,
            model[*tree]
                .range::<[u8], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded))
                .take_while(|(key, _)| key.starts_with(prefix))
                .collect::<Vec<_>>(),
        ),
        _ => return None,
    };
    let seen = saw.iter().map(|(key, value)| (key, value));
    let same = match walk {
        Walk::Reverse => want.iter().rev().copied().eq(seen),
        Walk::Forward | Walk::BothEnds => want.iter().copied().eq(seen),
    };
    if same {
        return None;
    }
    let mut want: Entries = want
        .into_iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if matches!(walk, Walk::Reverse) {
        want.reverse();
    }
    let what = match op {
        Op::Scan { span, .. } => format!("{span:?}"),
        Op::Prefix { prefix, .. } => format!("prefix {}", show(prefix)),
        _ => unreachable!(),
    };
    Some(format!(
        "{walk:?} scan of {what} in {}: saw {}, the model has {}",
        show(TREES[tree]),
        show_entries(saw),
        show_entries(&want)
    ))
}

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Insert { tree, key, value } => {
            model[*tree].insert(key.clone(), value.clone());
        }
        Op::Remove { tree, key } => {
            model[*tree].remove(key);
        }
        Op::RemoveRange { tree, span } => {
            model[*tree].retain(|key, _| !span.contains(key));
        }
        _ => {}
    }
}

/// Runs `ops` in order from `model`, checking every read: the number of reads and the
/// model with the writes applied.
fn replay<'m>(model: &'m Model, ops: &[Op]) -> Result<(usize, Cow<'m, Model>), String> {
    let mut model = Cow::Borrowed(model);
    let mut reads = 0;
    for (index, op) in ops.iter().enumerate() {
        if op.is_read() {
            reads += 1;
            if let Some(mismatch) = mismatch(&model, op) {
                return Err(format!("operation {index}: {mismatch}"));
            }
        } else {
            apply(model.to_mut(), op);
        }
    }
    Ok((reads, model))
}

fn show(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

/// A value, shortened to the part that identifies its writer.
fn show_value(value: Option<&[u8]>) -> String {
    match value {
        None => "nothing".into(),
        Some(value) => show(&value[..value.len().min(24)]),
    }
}

fn show_entries(entries: &Entries) -> String {
    let shown: Vec<String> = entries
        .iter()
        .map(|(key, value)| format!("{}={}", show(key), show_value(Some(value))))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// Which write of which transaction a value is: `w<thread>.t<txn>`.
fn writer_of(value: &[u8]) -> &[u8] {
    let end = value
        .windows(2)
        .position(|pair| pair == b".o")
        .unwrap_or(value.len());
    &value[..end]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// `commit` returned this revision.
    Committed(u64),
    /// The latest revision when `commit` had returned: the commit that caused the
    /// conflict is no later.
    Conflicted {
        latest: u64,
    },
    Aborted,
}

#[derive(Debug)]
struct TxnLog {
    writer: usize,
    number: u64,
    /// The revision it read.
    begin: u64,
    ops: Vec<Op>,
    outcome: Outcome,
}

impl TxnLog {
    fn name(&self) -> String {
        format!("w{}.t{}", self.writer, self.number)
    }

    fn writes(&self) -> bool {
        self.ops.iter().any(Op::is_write)
    }

    /// What the library records as read: every scanned range, and every key got
    /// that the transaction had not written before (those are answered by its writes).
    fn read_footprint(&self) -> Vec<(usize, Span)> {
        let mut written: Vec<(usize, Span)> = Vec::new();
        let mut read = Vec::new();
        for op in &self.ops {
            match op {
                Op::Get { tree, key, .. } => {
                    if !written
                        .iter()
                        .any(|(other, span)| other == tree && span.contains(key))
                    {
                        read.push((*tree, Span::point(key)));
                    }
                }
                Op::Scan { tree, span, .. } => read.push((*tree, span.clone())),
                Op::Prefix { tree, prefix, .. } => read.push((*tree, Span::prefix(prefix))),
                _ => written.extend(op.footprint()),
            }
        }
        read
    }

    fn write_footprint(&self) -> Vec<(usize, Span)> {
        self.ops.iter().filter_map(Op::footprint).collect()
    }
}

/// Keys that tell whether two spans of this test overlap: every bound a span can have,
/// and a key just after each (no bound begins with another followed by a byte below
/// `0`), so every piece of the key space between bounds has one.
fn probes() -> Vec<Key> {
    let mut bounds: Vec<Key> = (0..=KEYS).map(key).collect();
    for prefix in PREFIXES {
        bounds.push(prefix.to_vec());
        bounds.push(successor(prefix));
    }
    let mut probes = vec![Vec::new()];
    for bound in bounds {
        probes.push([bound.as_slice(), &[1]].concat());
        probes.push(bound);
    }
    probes
}

fn successor(prefix: &[u8]) -> Key {
    let mut next = prefix.to_vec();
    *next.last_mut().expect("prefixes are not empty") += 1;
    next
}

#[derive(Debug)]
struct ReadLog {
    reader: usize,
    number: u64,
    revision: u64,
    ops: Vec<Op>,
}

fn entries(item: thunderhead_tx::Result<(Vec<u8>, Value)>, prefix: &[u8]) -> (Key, Vec<u8>) {
    let (key, value) = item.expect("a scan fails");
    ([prefix, key.as_slice()].concat(), value.to_vec())
}

/// Walks a range; the entries in the order `walk` records them, with `prefix` put back
/// on the keys.
fn walk<I>(mut range: I, walk: Walk, prefix: &[u8], rng: &mut SplitMix64) -> Entries
where
    I: DoubleEndedIterator<Item = thunderhead_tx::Result<(Vec<u8>, Value)>>,
{
    match walk {
        Walk::Forward => range.map(|item| entries(item, prefix)).collect(),
        Walk::Reverse => range.rev().map(|item| entries(item, prefix)).collect(),
        Walk::BothEnds => {
            let (mut front, mut back) = (Vec::new(), Vec::new());
            loop {
                let forward = rng.below(2) == 0;
                let next = if forward {
                    range.next()
                } else {
                    range.next_back()
                };
                match next {
                    Some(item) if forward => front.push(entries(item, prefix)),
                    Some(item) => back.push(entries(item, prefix)),
                    None => {
                        // Once the ends meet, both are done: anything more is a bug the
                        // check will see as a duplicate.
                        if forward {
                            back.extend(range.by_ref().rev().map(|item| entries(item, prefix)));
                        } else {
                            front.extend(range.by_ref().map(|item| entries(item, prefix)));
                        }
                        break;
                    }
                }
            }
            front.extend(back.into_iter().rev());
            front
        }
    }
}

#[derive(Clone)]
struct Variant {
    name: &'static str,
    writers: usize,
    readers: usize,
    options: Options,
    /// On a file in a temporary directory instead of in memory.
    file: bool,
    /// Commits choose their durability at random (else `commit()`).
    mixed_durability: bool,
    /// Values get up to this many bytes of padding.
    padding: u64,
}

struct Run {
    duration: Duration,
    seed: u64,
}

impl Run {
    fn from_env() -> Self {
        let seconds = std::env::var("THUNDERHEAD_STRESS_SECS")
            .ok()
            .map(|value| {
                value
                    .parse::<f64>()
                    .expect("THUNDERHEAD_STRESS_SECS is a number of seconds")
            })
            .unwrap_or(1.0);
        let seed = std::env::var("THUNDERHEAD_STRESS_SEED")
            .ok()
            .map(|value| {
                value
                    .parse::<u64>()
                    .expect("THUNDERHEAD_STRESS_SEED is a number")
            })
            .unwrap_or(0x7468_756e_6465_7232);
        Self {
            duration: Duration::from_secs_f64(seconds),
            seed,
        }
    }

    fn thread_seed(&self, variant: &Variant, thread: usize) -> u64 {
        let mut mix =
            SplitMix64::new(self.seed ^ variant.name.len() as u64 ^ ((variant.file as u64) << 32));
        for _ in 0..=thread {
            mix.next_u64();
        }
        mix.next_u64()
    }
}

#[derive(Debug, Default)]
struct Counts {
    commits: usize,
    read_only_commits: usize,
    conflicts: usize,
    aborts: usize,
    reader_txns: usize,
    reads_checked: usize,
}

struct Writer<'a> {
    id: usize,
    rng: SplitMix64,
    variant: &'a Variant,
}

impl Writer<'_> {
    fn value(&mut self, log: &TxnLog, op: usize) -> Vec<u8> {
        let mut value = format!("w{}.t{}.o{op}|", log.writer, log.number).into_bytes();
        let padding = self.rng.below(self.variant.padding + 1) as usize;
        value.resize(value.len() + padding, b'a' + (op % 26) as u8);
        value
    }

    /// One random operation (two when a scan writes into its range midway), logged.
    fn step(&mut self, txn: &WriteTransaction, log: &mut TxnLog) {
        let tree_index = self.rng.below(2) as usize;
        let tree = txn.open_tree(TREES[tree_index]).expect("open_tree fails");
        let choice = self.rng.below(100);
        let op = match choice {
            0..30 => {
                let key = key(self.rng.below(KEYS));
                let saw = tree
                    .get(&key)
                    .expect("get fails")
                    .map(|value| value.to_vec());
                Op::Get {
                    tree: tree_index,
                    key,
                    saw,
                }
            }
            30..45 => {
                let span = Span::random(&mut self.rng, 6, true);
                let walk_kind = Walk::random(&mut self.rng);
                let range = tree.range::<[u8], _>(span.refs()).expect("range fails");
                // The range reads the transaction as it was when asked for: a write
                // made after that must not show in it (the log orders it after).
                let midway = (self.rng.below(4) == 0).then(|| {
                    let key = key(self.rng.below(KEYS));
                    let value = self.value(log, log.ops.len() + 1);
                    tree.insert(&key, &value).expect("insert fails");
                    Op::Insert {
                        tree: tree_index,
                        key,
                        value,
                    }
                });
                let saw = walk(range, walk_kind, b"", &mut self.rng);
                log.ops.push(Op::Scan {
                    tree: tree_index,
                    span,
                    walk: walk_kind,
                    saw,
                });
                if let Some(insert) = midway {
                    log.ops.push(insert);
                }
                return;
            }
            45..50 => {
                let prefix = PREFIXES[self.rng.below(PREFIXES.len() as u64) as usize].to_vec();
                let walk_kind = Walk::random(&mut self.rng);
                let range = tree.prefix(&prefix).iter().expect("iter fails");
                let saw = walk(range, walk_kind, &prefix, &mut self.rng);
                Op::Prefix {
                    tree: tree_index,
                    prefix,
                    walk: walk_kind,
                    saw,
                }
            }
            50..80 => {
                let key = key(self.rng.below(KEYS));
                let value = self.value(log, log.ops.len());
                tree.insert(&key, &value).expect("insert fails");
                Op::Insert {
                    tree: tree_index,
                    key,
                    value,
                }
            }
            80..93 => {
                let key = key(self.rng.below(KEYS));
                tree.remove(&key).expect("remove fails");
                Op::Remove {
                    tree: tree_index,
                    key,
                }
            }
            _ => {
                let open_ends = self.rng.below(4) == 0;
                let span = Span::random(&mut self.rng, 4, open_ends);
                tree.remove_range::<[u8], _>(span.refs())
                    .expect("remove_range fails");
                Op::RemoveRange {
                    tree: tree_index,
                    span,
                }
            }
        };
        log.ops.push(op);
    }

    /// Commits (or, now and then, aborts) a transaction and logs the outcome.
    fn finish(&mut self, db: &Database, txn: WriteTransaction, log: &mut TxnLog) {
        match self.rng.below(16) {
            0 => {
                txn.abort();
                log.outcome = Outcome::Aborted;
                return;
            }
            1 => {
                drop(txn);
                log.outcome = Outcome::Aborted;
                return;
            }
            _ => {}
        }
        let result = if self.variant.mixed_durability {
            match self.rng.below(4) {
                0 => txn.commit_with(Durability::Immediate),
                1 => txn.commit(),
                _ => txn.commit_with(Durability::Eventual),
            }
        } else {
            txn.commit()
        };
        log.outcome = match result {
            Ok(revision) => Outcome::Committed(revision),
            Err(Error::Conflict { .. }) => Outcome::Conflicted {
                latest: db.revision(),
            },
            Err(error) => panic!("{}: commit failed: {error}", log.name()),
        };
    }

    fn run(mut self, db: &Database, deadline: Instant) -> Vec<TxnLog> {
        let mut open: Vec<(WriteTransaction, TxnLog)> = Vec::new();
        let mut logs = Vec::new();
        let mut started = 0u64;
        while Instant::now() < deadline || (logs.len() as u64) < WRITER_TXNS_MIN {
            if open.is_empty() || (open.len() < OPEN_MAX && self.rng.below(6) == 0) {
                let txn = db.begin_write().expect("begin_write fails");
                let log = TxnLog {
                    writer: self.id,
                    number: started,
                    begin: txn.revision(),
                    ops: Vec::new(),
                    outcome: Outcome::Aborted,
                };
                started += 1;
                open.push((txn, log));
            }
            let index = self.rng.below(open.len() as u64) as usize;
            let ops = open[index].1.ops.len();
            if ops >= OPS_MAX || (ops >= 2 && self.rng.below(5) == 0) {
                let (txn, mut log) = open.swap_remove(index);
                self.finish(db, txn, &mut log);
                logs.push(log);
            } else {
                let (txn, log) = &mut open[index];
                self.step(txn, log);
            }
            if self.rng.below(8) == 0 {
                std::thread::yield_now();
            }
        }
        for (txn, mut log) in open {
            self.finish(db, txn, &mut log);
            logs.push(log);
        }
        logs
    }
}

fn run_reader(db: &Database, id: usize, seed: u64, deadline: Instant) -> Vec<ReadLog> {
    let mut rng = SplitMix64::new(seed);
    let mut logs = Vec::new();
    let mut last = 0;
    while Instant::now() < deadline || (logs.len() as u64) < READER_TXNS_MIN {
        let read = db.begin_read();
        let revision = read.revision();
        assert!(
            revision >= last,
            "reader {id}: revision went back from {last} to {revision}"
        );
        last = revision;
        let trees = TREES.map(|name| read.open_tree(name).expect("open_tree fails"));
        let mut ops = Vec::new();
        for _ in 0..1 + rng.below(8) {
            let tree_index = rng.below(2) as usize;
            let tree = &trees[tree_index];
            let op = match rng.below(10) {
                0..5 => {
                    let key = key(rng.below(KEYS));
                    let saw = tree
                        .get(&key)
                        .expect("get fails")
                        .map(|value| value.to_vec());
                    Op::Get {
                        tree: tree_index,
                        key,
                        saw,
                    }
                }
                5..8 => {
                    let span = Span::random(&mut rng, 8, true);
                    let walk_kind = Walk::random(&mut rng);
                    let saw = walk(tree.range::<[u8], _>(span.refs()), walk_kind, b"", &mut rng);
                    Op::Scan {
                        tree: tree_index,
                        span,
                        walk: walk_kind,
                        saw,
                    }
                }
                _ => {
                    let prefix = PREFIXES[rng.below(PREFIXES.len() as u64) as usize].to_vec();
                    let walk_kind = Walk::random(&mut rng);
                    let view = tree.prefix(&prefix);
                    let saw = walk(view.iter(), walk_kind, &prefix, &mut rng);
                    Op::Prefix {
                        tree: tree_index,
                        prefix,
                        walk: walk_kind,
                        saw,
                    }
                }
            };
            ops.push(op);
            // Let commits land while the snapshot is held, now and then many.
            match rng.below(48) {
                0 => std::thread::sleep(Duration::from_millis(2)),
                1..16 => std::thread::yield_now(),
                _ => {}
            }
        }
        logs.push(ReadLog {
            reader: id,
            number: logs.len() as u64,
            revision,
            ops,
        });
    }
    logs
}

/// The setup commit: half the keys of each tree, so both trees exist from revision 1.
fn setup(db: &Database) -> TxnLog {
    let txn = db.begin_write().unwrap();
    let mut log = TxnLog {
        writer: usize::MAX,
        number: 0,
        begin: txn.revision(),
        ops: Vec::new(),
        outcome: Outcome::Aborted,
    };
    for (tree_index, name) in TREES.iter().enumerate() {
        let tree = txn.open_tree(name).unwrap();
        for index in (0..KEYS).step_by(2) {
            let key = key(index);
            let value = format!("setup.o{index}|").into_bytes();
            tree.insert(&key, &value).unwrap();
            log.ops.push(Op::Insert {
                tree: tree_index,
                key,
                value,
            });
        }
    }
    log.outcome = Outcome::Committed(txn.commit().unwrap());
    assert_eq!(log.outcome, Outcome::Committed(1));
    log
}

/// Every entry of both trees of the latest commit.
fn contents(db: &Database) -> Model {
    let read = db.begin_read();
    TREES.map(|name| {
        read.open_tree(name)
            .unwrap()
            .iter()
            .map(|item| item.map(|(key, value)| (key, value.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap()
    })
}

/// A check to run against the model at one revision.
struct SnapshotCheck<'a> {
    revision: u64,
    who: String,
    ops: &'a [Op],
}

/// Replays the committed transactions and checks every observation (see the top).
fn check<'a>(db: &Database, txns: &'a [TxnLog], reads: &'a [ReadLog], context: &str) -> Counts {
    let mut counts = Counts::default();
    let mut committed: Vec<&TxnLog> = Vec::new();
    let mut unseen: HashSet<Vec<u8>> = HashSet::new();
    let mut snapshots: Vec<SnapshotCheck> = Vec::new();
    for txn in txns {
        match txn.outcome {
            Outcome::Committed(revision) if txn.writes() => {
                assert!(
                    revision > txn.begin,
                    "{context}: {} began at revision {} and committed as {revision}",
                    txn.name(),
                    txn.begin
                );
                counts.commits += 1;
                committed.push(txn);
            }
            Outcome::Committed(revision) => {
                // Nothing to apply: it returns the latest revision and is serialized at
                // its snapshot (checked below).
                assert!(
                    revision >= txn.begin,
                    "{context}: read-only {} began at revision {} and returned {revision}",
                    txn.name(),
                    txn.begin
                );
                counts.read_only_commits += 1;
            }
            Outcome::Conflicted { .. } => counts.conflicts += 1,
            Outcome::Aborted => counts.aborts += 1,
        }
        if !matches!(txn.outcome, Outcome::Committed(_)) && txn.writes() {
            unseen.insert(txn.name().into_bytes());
        }
        if txn.writer != usize::MAX {
            snapshots.push(SnapshotCheck {
                revision: txn.begin,
                who: format!("{} ({:?}) at its snapshot", txn.name(), txn.outcome),
                ops: &txn.ops,
            });
        }
    }
    for read in reads {
        snapshots.push(SnapshotCheck {
            revision: read.revision,
            who: format!("reader {} snapshot {}", read.reader, read.number),
            ops: &read.ops,
        });
    }
    counts.reader_txns = reads.len();

    // Nothing a conflicted or aborted transaction wrote is ever seen but by itself.
    let values_seen = |ops: &'a [Op]| -> Vec<&'a [u8]> {
        ops.iter()
            .flat_map(|op| match op {
                Op::Get { saw, .. } => saw.iter().map(Vec::as_slice).collect(),
                Op::Scan { saw, .. } | Op::Prefix { saw, .. } => {
                    saw.iter().map(|(_, value)| value.as_slice()).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    };
    let observed = txns
        .iter()
        .map(|txn| (txn.name(), values_seen(&txn.ops)))
        .chain(reads.iter().map(|read| {
            (
                format!("reader {} snapshot {}", read.reader, read.number),
                values_seen(&read.ops),
            )
        }));
    for (who, values) in observed {
        for value in values {
            let writer = writer_of(value);
            assert!(
                writer == who.as_bytes() || !unseen.contains(writer),
                "{context}: {who} read a value of {}, which did not commit: {}",
                writer.escape_ascii(),
                show_value(Some(value))
            );
        }
    }

    committed.sort_by_key(|txn| match txn.outcome {
        Outcome::Committed(revision) => revision,
        _ => unreachable!(),
    });
    for (index, txn) in committed.iter().enumerate() {
        assert_eq!(
            txn.outcome,
            Outcome::Committed(index as u64 + 1),
            "{context}: revisions of commits are unique and gapless ({} at position {index})",
            txn.name()
        );
    }
    assert_eq!(
        db.revision(),
        committed.len() as u64,
        "{context}: the database's revision is the last commit's"
    );

    // Every conflict has a cause: a commit after the transaction began (and no later
    // than the latest revision once it failed) that wrote something it read. Blind
    // writes never conflict.
    let probes = probes();
    for txn in txns {
        let Outcome::Conflicted { latest } = txn.outcome else {
            continue;
        };
        let read = txn.read_footprint();
        let cause = committed[txn.begin as usize..latest as usize]
            .iter()
            .find(|other| {
                other.write_footprint().iter().any(|(tree, written)| {
                    read.iter().any(|(read_tree, read)| {
                        read_tree == tree
                            && probes
                                .iter()
                                .any(|probe| read.contains(probe) && written.contains(probe))
                    })
                })
            });
        assert!(
            cause.is_some(),
            "{context}: {} (began at {}) conflicted though no commit up to revision {latest} \
             wrote what it read: {}\nits operations: {:#?}",
            txn.name(),
            txn.begin,
            read.iter()
                .map(|(tree, span)| format!("{} {span:?}", show(TREES[*tree])))
                .collect::<Vec<_>>()
                .join(", "),
            txn.ops
        );
    }

    snapshots.sort_by_key(|check| check.revision);
    let mut pending = snapshots.iter().peekable();
    let mut model: Model = Default::default();
    let mut check_snapshots_at = |revision: u64, model: &Model, counts: &mut Counts| {
        while let Some(check) = pending.next_if(|check| check.revision == revision) {
            match replay(model, check.ops) {
                Ok((reads, _)) => counts.reads_checked += reads,
                Err(mismatch) => panic!(
                    "{context}: {} (revision {revision}) saw what no serial order gives: \
                     {mismatch}\nits operations: {:#?}",
                    check.who, check.ops
                ),
            }
        }
        if let Some(check) = pending.peek() {
            assert!(
                check.revision > revision,
                "{context}: {} read revision {}, which does not exist",
                check.who,
                check.revision
            );
        }
    };
    check_snapshots_at(0, &model, &mut counts);
    for (index, txn) in committed.iter().enumerate() {
        let revision = index as u64 + 1;
        let next = match replay(&model, &txn.ops) {
            Ok((reads, next)) => {
                counts.reads_checked += reads;
                next.into_owned()
            }
            Err(mismatch) => panic!(
                "{context}: serializability violation: {} (began at {}, committed as \
                 revision {revision}) read what the serial order does not give at its \
                 commit point: {mismatch}\nits operations: {:#?}",
                txn.name(),
                txn.begin,
                txn.ops
            ),
        };
        model = next;
        check_snapshots_at(revision, &model, &mut counts);
    }
    assert!(
        pending.next().is_none(),
        "{context}: a snapshot past the last revision"
    );

    let stored = contents(db);
    for (tree, (stored, modelled)) in stored.iter().zip(&model).enumerate() {
        assert!(
            stored == modelled,
            "{context}: tree {} holds {}, the replay gives {}",
            show(TREES[tree]),
            show_entries(&stored.clone().into_iter().collect()),
            show_entries(&modelled.clone().into_iter().collect())
        );
        for value in stored.values() {
            assert!(!unseen.contains(writer_of(value)));
        }
    }
    db.check()
        .unwrap_or_else(|error| panic!("{context}: check fails: {error}"));
    counts
}

fn stress(variant: Variant) -> Counts {
    let run = Run::from_env();
    let context = format!(
        "variant {} (THUNDERHEAD_STRESS_SEED={})",
        variant.name, run.seed
    );
    let dir = variant.file.then(|| {
        let dir = std::env::temp_dir().join(format!(
            "thunderhead-stress-{}-{}",
            std::process::id(),
            variant.name
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    let path = dir.as_ref().map(|dir| dir.join("stress.th"));
    let db = match &path {
        Some(path) => Database::create(path, variant.options.clone()).unwrap(),
        None => Database::in_memory(variant.options.clone()).unwrap(),
    };
    let setup = setup(&db);
    let started = Instant::now();
    let deadline = started + run.duration;
    let (txns, reads) = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..variant.writers)
            .map(|id| {
                let writer = Writer {
                    id,
                    rng: SplitMix64::new(run.thread_seed(&variant, id)),
                    variant: &variant,
                };
                let db = &db;
                scope.spawn(move || writer.run(db, deadline))
            })
            .collect();
        let readers: Vec<_> = (0..variant.readers)
            .map(|id| {
                let seed = run.thread_seed(&variant, 100 + id);
                let db = &db;
                scope.spawn(move || run_reader(db, id, seed, deadline))
            })
            .collect();
        let mut txns = vec![setup];
        for writer in writers {
            txns.extend(writer.join().expect("a writer panicked"));
        }
        let reads: Vec<ReadLog> = readers
            .into_iter()
            .flat_map(|reader| reader.join().expect("a reader panicked"))
            .collect();
        (txns, reads)
    });
    let ran = started.elapsed();
    let counts = check(&db, &txns, &reads, &context);
    if let Some(path) = &path {
        let last = contents(&db);
        drop(db);
        let db = Database::open(path, variant.options.clone()).unwrap();
        assert_eq!(
            db.revision(),
            counts.commits as u64,
            "{context}: revision after reopening"
        );
        assert!(contents(&db) == last, "{context}: contents after reopening");
        db.check().unwrap();
    }
    if let Some(dir) = &dir {
        std::fs::remove_dir_all(dir).unwrap();
    }
    println!(
        "{context}: {ran:.2?} of {} writers and {} readers, checked in {:.2?}: {counts:?}",
        variant.writers,
        variant.readers,
        started.elapsed() - ran
    );
    assert!(
        counts.commits > 100,
        "{context}: too few commits: {counts:?}"
    );
    assert!(counts.reader_txns > 0 && counts.reads_checked > 0);
    counts
}

#[test]
fn concurrent_transactions_are_serializable_in_memory() {
    let counts = stress(Variant {
        name: "memory",
        writers: 4,
        readers: 2,
        options: Options::default(),
        file: false,
        mixed_durability: false,
        padding: 16,
    });
    assert!(
        counts.conflicts > 0,
        "the contended run had no conflicts, so validation went untested: {counts:?}"
    );
    assert!(counts.aborts > 0 && counts.read_only_commits > 0);
}

#[test]
fn concurrent_transactions_are_serializable_on_a_file() {
    // Small pages and journals, and values up to beyond the inline limit, so the trees
    // split, flush and use overflow extents.
    let counts = stress(Variant {
        name: "file",
        writers: 4,
        readers: 2,
        options: Options {
            page_size: 4096,
            journal_bytes: 2048,
            ..Options::default()
        },
        file: true,
        mixed_durability: true,
        padding: 1500,
    });
    assert!(counts.conflicts > 0, "no conflicts: {counts:?}");
}

#[test]
fn concurrent_transactions_are_serializable_when_they_spill() {
    // A few writes fill the arena, so most transactions read and commit through a
    // scratch store.
    let counts = stress(Variant {
        name: "spill",
        writers: 3,
        readers: 1,
        options: Options {
            spill_bytes: 256,
            ..Options::default()
        },
        file: false,
        mixed_durability: false,
        padding: 64,
    });
    assert!(counts.conflicts > 0, "no conflicts: {counts:?}");
}
