//! The workloads, run in order on one store by one child process, and the data they
//! write.
//!
//! All data comes from one fixed seed through the same generator as
//! `thunderhead_benches::keys_values` (24-byte random keys, 150-byte random values, redb's
//! benchmark shape), streamed rather than held in memory so that the child's peak RSS is
//! the engine's: the child keeps only the loaded keys (24 bytes each) for the reads.

use std::path::Path;
use std::time::Instant;

use thunderhead_benches::{ProcIo, SplitMix64};

use crate::child::{Line, Row};
use crate::engines::{Durability, KvEngine, Result};

pub const KEY_LEN: usize = 24;
pub const VALUE_LEN: usize = 150;
/// The seed of all data; each stream below derives its own seed from it.
pub const SEED: u64 = 0x434f_4d50_4152_4521;
/// Inserts per transaction of the batched workloads.
pub const BATCH: usize = 1_000;
const INDIVIDUAL_TXNS: usize = 1_000;
const BATCH_TXNS: usize = 100;
const RANGES: usize = 1_000;
const RANGE_LEN: usize = 100;
const DIFF_UPDATES: usize = 1_000;
const SNAPSHOT: &str = "compare";

pub type Key = [u8; KEY_LEN];
pub type Value = [u8; VALUE_LEN];

/// The workloads in the order they run (and the table's rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    BulkLoad,
    IndividualWrites,
    BatchWrites,
    BatchWritesNosync,
    RandomReads,
    RandomReads2t,
    RandomReads4t,
    RangeReads,
    FullScan,
    Removals,
    FileSizeAfterLoad,
    FileSizeAfterRemovals,
    OverwriteChurn,
    SnapshotCreate,
    Diff1000,
    NaiveDiff1000,
}

/// What a workload's row shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Time, rate and write amplification.
    Write,
    /// Time and rate.
    Read,
    /// A file size.
    Size,
}

impl Workload {
    pub const ALL: [Workload; 16] = [
        Self::BulkLoad,
        Self::IndividualWrites,
        Self::BatchWrites,
        Self::BatchWritesNosync,
        Self::RandomReads,
        Self::RandomReads2t,
        Self::RandomReads4t,
        Self::RangeReads,
        Self::FullScan,
        Self::Removals,
        Self::FileSizeAfterLoad,
        Self::FileSizeAfterRemovals,
        Self::OverwriteChurn,
        Self::SnapshotCreate,
        Self::Diff1000,
        Self::NaiveDiff1000,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::BulkLoad => "bulk_load",
            Self::IndividualWrites => "individual_writes",
            Self::BatchWrites => "batch_writes",
            Self::BatchWritesNosync => "batch_writes_nosync",
            Self::RandomReads => "random_reads",
            Self::RandomReads2t => "random_reads_2t",
            Self::RandomReads4t => "random_reads_4t",
            Self::RangeReads => "range_reads",
            Self::FullScan => "full_scan",
            Self::Removals => "removals",
            Self::FileSizeAfterLoad => "file_size_after_load",
            Self::FileSizeAfterRemovals => "file_size_after_removals",
            Self::OverwriteChurn => "overwrite_churn",
            Self::SnapshotCreate => "snapshot_create",
            Self::Diff1000 => "diff_1000",
            Self::NaiveDiff1000 => "naive_diff_1000",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    pub fn kind(self) -> Kind {
        match self {
            Self::BulkLoad
            | Self::IndividualWrites
            | Self::BatchWrites
            | Self::BatchWritesNosync
            | Self::Removals
            | Self::OverwriteChurn => Kind::Write,
            Self::FileSizeAfterLoad | Self::FileSizeAfterRemovals => Kind::Size,
            _ => Kind::Read,
        }
    }

    /// Workloads of Thunderhead's version features, which the peers lack.
    pub fn subject_only(self) -> bool {
        matches!(
            self,
            Self::SnapshotCreate | Self::Diff1000 | Self::NaiveDiff1000
        )
    }
}

/// The sizes of the workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub rows: usize,
    pub quick: bool,
    /// Transactions of `BATCH` inserts in `batch_writes_nosync`.
    pub nosync_txns: usize,
    /// Keys overwritten in each round of `overwrite_churn`.
    pub churn_keys: usize,
    pub churn_rounds: usize,
}

impl Params {
    /// A full run: 1,000 non-durable batches and churn over min(rows, 100,000) keys. A
    /// quick run (meant to finish in two minutes on two cores): 100 non-durable batches
    /// and churn over min(rows, 10,000) keys.
    pub fn new(rows: usize, quick: bool) -> Self {
        Self {
            rows,
            quick,
            nosync_txns: if quick { 100 } else { 1_000 },
            churn_keys: rows.min(if quick { 10_000 } else { 100_000 }),
            churn_rounds: 20,
        }
    }

    /// The row label of the table: the workload's name and its size.
    pub fn label(&self, workload: Workload) -> String {
        let n = thousands(self.rows as f64);
        let detail = match workload {
            Workload::BulkLoad => format!("{n} rows, 1 txn"),
            Workload::IndividualWrites => format!("{} txns × 1", thousands(INDIVIDUAL_TXNS as f64)),
            Workload::BatchWrites => format!("{BATCH_TXNS} txns × {}", thousands(BATCH as f64)),
            Workload::BatchWritesNosync => format!(
                "{} txns × {}, no sync",
                thousands(self.nosync_txns as f64),
                thousands(BATCH as f64)
            ),
            Workload::RandomReads => format!("{n} gets, 1 thread"),
            Workload::RandomReads2t => format!("{n} gets, 2 threads"),
            Workload::RandomReads4t => format!("{n} gets, 4 threads"),
            Workload::RangeReads => {
                format!("{} ranges × {RANGE_LEN}", thousands(RANGES as f64))
            }
            Workload::FullScan => "all rows".to_string(),
            Workload::Removals => format!("{} in 1 txn", thousands(self.rows.div_ceil(2) as f64)),
            Workload::FileSizeAfterLoad | Workload::FileSizeAfterRemovals => "MiB".to_string(),
            Workload::OverwriteChurn => format!(
                "{} keys × {}, txns of {}",
                thousands(self.churn_keys as f64),
                self.churn_rounds,
                thousands(BATCH as f64)
            ),
            Workload::SnapshotCreate => format!("at {n} rows"),
            Workload::Diff1000 => {
                format!("{} updates", thousands(DIFF_UPDATES.min(self.rows) as f64))
            }
            Workload::NaiveDiff1000 => "merge-join of 2 full scans".to_string(),
        };
        format!("{} ({detail})", workload.name())
    }
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The entries of `keys_values(seed, n, KEY_LEN, VALUE_LEN)`, one at a time.
pub struct Stream(SplitMix64);

impl Stream {
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    pub fn next_entry(&mut self, key: &mut Key, value: &mut Value) {
        self.0.fill(key);
        self.0.fill(value);
    }
}

/// The seed of one of the data streams.
fn stream_seed(stream: u64) -> u64 {
    SEED ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

const LOAD: u64 = 0;
const INDIVIDUAL: u64 = 1;
const BATCHES: u64 = 2;
const NOSYNC: u64 = 3;
const READ_ORDER: u64 = 4;
const RANGE_STARTS: u64 = 5;
const CHURN: u64 = 6;
const DIFF: u64 = 7;

/// Bytes of the files under `dir` (their lengths), recursively.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Measures one workload: wall time, the kernel's write counters and the files' growth.
struct Probe {
    io: Option<ProcIo>,
    file_bytes: u64,
    started: Instant,
}

impl Probe {
    fn start(dir: &Path) -> Result<Self> {
        let file_bytes = dir_bytes(dir)?;
        let io = ProcIo::now();
        Ok(Self {
            io,
            file_bytes,
            started: Instant::now(),
        })
    }

    /// The row of a read workload.
    fn read(self, workload: Workload, ops: u64) -> Row {
        Row {
            workload,
            seconds: Some(self.started.elapsed().as_secs_f64()),
            ops: Some(ops),
            ..Row::new(workload)
        }
    }

    /// The row of a write workload of `ops` operations writing `user_bytes` of keys and
    /// values: bytes written are `write_bytes` of `/proc/self/io`, or the growth of the
    /// files where that is unavailable.
    fn write(self, dir: &Path, workload: Workload, ops: u64, user_bytes: u64) -> Result<Row> {
        let seconds = self.started.elapsed().as_secs_f64();
        let io = match (self.io, ProcIo::now()) {
            (Some(before), Some(after)) => Some(after.since(&before)),
            _ => None,
        };
        let file_bytes = dir_bytes(dir)?;
        let write_bytes = match io {
            Some(io) => io.write_bytes,
            None => file_bytes.saturating_sub(self.file_bytes),
        };
        Ok(Row {
            workload,
            seconds: Some(seconds),
            ops: Some(ops),
            write_bytes: Some(write_bytes),
            user_bytes: Some(user_bytes),
            file_bytes: Some(file_bytes),
            wchar: io.map(|io| io.wchar),
        })
    }
}

/// A seeded shuffle of `0..n`.
fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// Runs the selected workloads in order on `engine`, whose store lives in `dir`, and
/// hands each result (or error) to `emit`. Setup a later workload needs (the load, the
/// removals before `file_size_after_removals`) runs even when its own row is not
/// selected, unreported.
pub fn run(
    engine: &mut dyn KvEngine,
    dir: &Path,
    params: &Params,
    selected: &[Workload],
    emit: &mut dyn FnMut(Line),
) {
    let wants = |workload: Workload| selected.contains(&workload);
    let mut report = |workload: Workload, result: Result<Row>| {
        if wants(workload) {
            emit(match result {
                Ok(row) => Line::Row(row),
                Err(error) => Line::Error {
                    workload: Some(workload),
                    message: error.to_string(),
                },
            });
        }
    };
    let n = params.rows;
    let mut keys: Vec<Key> = Vec::with_capacity(n);

    // 1. Bulk load, and the file size after it.
    let load = bulk_load(engine, dir, n, &mut keys);
    let failed = load.is_err();
    report(Workload::BulkLoad, load);
    if failed {
        for &workload in &Workload::ALL[1..] {
            report(workload, Err("skipped: the bulk load failed".into()));
        }
        return;
    }
    report(
        Workload::FileSizeAfterLoad,
        dir_bytes(dir).map_err(Into::into).map(|bytes| Row {
            file_bytes: Some(bytes),
            ..Row::new(Workload::FileSizeAfterLoad)
        }),
    );
    let mut live = n as u64;

    // 2.-4. Inserts of new keys.
    let plans = [
        (
            Workload::IndividualWrites,
            INDIVIDUAL,
            INDIVIDUAL_TXNS,
            1,
            Durability::Durable,
        ),
        (
            Workload::BatchWrites,
            BATCHES,
            BATCH_TXNS,
            BATCH,
            Durability::Durable,
        ),
        (
            Workload::BatchWritesNosync,
            NOSYNC,
            params.nosync_txns,
            BATCH,
            Durability::NoSync,
        ),
    ];
    for (workload, stream, txns, per_txn, durability) in plans {
        if wants(workload) {
            let result = inserts(engine, dir, workload, stream, txns, per_txn, durability);
            if result.is_ok() {
                live += (txns * per_txn) as u64;
            }
            report(workload, result);
        }
    }

    // 5. Random point gets of the loaded keys, on 1, 2 and 4 threads.
    let reads = [
        (Workload::RandomReads, 1),
        (Workload::RandomReads2t, 2),
        (Workload::RandomReads4t, 4),
    ];
    if reads.iter().any(|&(workload, _)| wants(workload)) {
        let order = permutation(n, stream_seed(READ_ORDER));
        for (workload, threads) in reads {
            if wants(workload) {
                report(
                    workload,
                    random_reads(&*engine, dir, workload, &keys, &order, threads),
                );
            }
        }
    }

    // 6. Ranges.
    if wants(Workload::RangeReads) {
        report(Workload::RangeReads, range_reads(&*engine, dir, &keys));
    }

    // 7. Full scan.
    if wants(Workload::FullScan) {
        report(Workload::FullScan, full_scan(&*engine, dir, live));
    }

    // 8.-9. Removal of half the loaded keys (those of even index), and the file size after.
    let mut removed = false;
    if wants(Workload::Removals) || wants(Workload::FileSizeAfterRemovals) {
        let result = removals(engine, dir, &keys);
        removed = result.is_ok();
        let error = result.as_ref().err().map(|e| e.to_string());
        report(Workload::Removals, result);
        report(
            Workload::FileSizeAfterRemovals,
            match error {
                Some(error) => Err(format!("the removals failed: {error}").into()),
                None => dir_bytes(dir).map_err(Into::into).map(|bytes| Row {
                    file_bytes: Some(bytes),
                    ..Row::new(Workload::FileSizeAfterRemovals)
                }),
            },
        );
    }

    // 10. Overwrite churn.
    if wants(Workload::OverwriteChurn) {
        report(
            Workload::OverwriteChurn,
            overwrite_churn(engine, dir, params, &keys),
        );
    }

    // 11. Thunderhead's versions: snapshot and diff.
    let version_rows = [
        Workload::SnapshotCreate,
        Workload::Diff1000,
        Workload::NaiveDiff1000,
    ];
    if version_rows.iter().any(|&w| wants(w))
        && engine.versions().is_some()
        && let Err(error) = versions(engine, dir, n, removed, &keys, &mut report)
    {
        for workload in version_rows {
            report(
                workload,
                Err(format!("version setup failed: {error}").into()),
            );
        }
    }
}

fn bulk_load(engine: &mut dyn KvEngine, dir: &Path, n: usize, keys: &mut Vec<Key>) -> Result<Row> {
    let probe = Probe::start(dir)?;
    engine.write(Durability::Durable, &mut |sink| {
        let mut stream = Stream::new(stream_seed(LOAD));
        let (mut key, mut value) = ([0; KEY_LEN], [0; VALUE_LEN]);
        keys.clear();
        for _ in 0..n {
            stream.next_entry(&mut key, &mut value);
            sink(&key, Some(&value))?;
            keys.push(key);
        }
        Ok(())
    })?;
    probe.write(
        dir,
        Workload::BulkLoad,
        n as u64,
        (n * (KEY_LEN + VALUE_LEN)) as u64,
    )
}

/// `txns` transactions of `per_txn` inserts of new keys from `stream`.
fn inserts(
    engine: &mut dyn KvEngine,
    dir: &Path,
    workload: Workload,
    stream: u64,
    txns: usize,
    per_txn: usize,
    durability: Durability,
) -> Result<Row> {
    let mut stream = Stream::new(stream_seed(stream));
    let (mut key, mut value) = ([0; KEY_LEN], [0; VALUE_LEN]);
    let probe = Probe::start(dir)?;
    for _ in 0..txns {
        engine.write(durability, &mut |sink| {
            for _ in 0..per_txn {
                stream.next_entry(&mut key, &mut value);
                sink(&key, Some(&value))?;
            }
            Ok(())
        })?;
    }
    let ops = (txns * per_txn) as u64;
    probe.write(dir, workload, ops, ops * (KEY_LEN + VALUE_LEN) as u64)
}

fn random_reads(
    engine: &dyn KvEngine,
    dir: &Path,
    workload: Workload,
    keys: &[Key],
    order: &[u32],
    threads: usize,
) -> Result<Row> {
    let probe = Probe::start(dir)?;
    let chunk = order.len().div_ceil(threads).max(1);
    let results: Vec<Result<(u64, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = order
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    engine.get_many(&mut part.iter().map(|&i| keys[i as usize].as_slice()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a reader thread panicked".into()))
            })
            .collect()
    });
    let row = probe.read(workload, order.len() as u64);
    let (mut found, mut bytes) = (0, 0);
    for result in results {
        let (f, b) = result?;
        found += f;
        bytes += b;
    }
    if found != order.len() as u64 || bytes != found * VALUE_LEN as u64 {
        return Err(format!(
            "found {found} of {} keys ({bytes} value bytes)",
            order.len()
        )
        .into());
    }
    Ok(row)
}

fn range_reads(engine: &dyn KvEngine, dir: &Path, keys: &[Key]) -> Result<Row> {
    let mut rng = SplitMix64::new(stream_seed(RANGE_STARTS));
    let starts: Vec<&[u8]> = (0..RANGES)
        .map(|_| keys[rng.below(keys.len() as u64) as usize].as_slice())
        .collect();
    let probe = Probe::start(dir)?;
    let entries = engine.ranges(&mut starts.iter().copied(), RANGE_LEN)?;
    let row = probe.read(Workload::RangeReads, RANGES as u64);
    // Ranges starting near the end of the key space are shorter; on average they are not.
    if entries < (RANGES * RANGE_LEN / 2) as u64 && keys.len() >= 2 * RANGE_LEN {
        return Err(format!("{RANGES} ranges read only {entries} entries").into());
    }
    Ok(row)
}

fn full_scan(engine: &dyn KvEngine, dir: &Path, live: u64) -> Result<Row> {
    let probe = Probe::start(dir)?;
    let (entries, bytes) = engine.scan()?;
    let row = probe.read(Workload::FullScan, entries);
    if entries != live || bytes != entries * (KEY_LEN + VALUE_LEN) as u64 {
        return Err(format!("scanned {entries} entries ({bytes} bytes), expected {live}").into());
    }
    Ok(row)
}

fn removals(engine: &mut dyn KvEngine, dir: &Path, keys: &[Key]) -> Result<Row> {
    let probe = Probe::start(dir)?;
    engine.write(Durability::Durable, &mut |sink| {
        for key in keys.iter().step_by(2) {
            sink(key, None)?;
        }
        Ok(())
    })?;
    let removed = keys.len().div_ceil(2) as u64;
    probe.write(dir, Workload::Removals, removed, removed * KEY_LEN as u64)
}

/// The first `churn_keys` loaded keys overwritten `churn_rounds` times with new values,
/// in durable transactions of `BATCH` (the first round re-inserts those the removals
/// took).
fn overwrite_churn(
    engine: &mut dyn KvEngine,
    dir: &Path,
    params: &Params,
    keys: &[Key],
) -> Result<Row> {
    let churn = &keys[..params.churn_keys.min(keys.len())];
    let mut values = SplitMix64::new(stream_seed(CHURN));
    let mut value = [0; VALUE_LEN];
    let probe = Probe::start(dir)?;
    for _ in 0..params.churn_rounds {
        for chunk in churn.chunks(BATCH) {
            engine.write(Durability::Durable, &mut |sink| {
                for key in chunk {
                    values.fill(&mut value);
                    sink(key, Some(&value))?;
                }
                Ok(())
            })?;
        }
    }
    let ops = (churn.len() * params.churn_rounds) as u64;
    probe.write(
        dir,
        Workload::OverwriteChurn,
        ops,
        ops * (KEY_LEN + VALUE_LEN) as u64,
    )
}

/// Thunderhead's snapshot and diffs. Unmeasured setup first: the removed keys are put
/// back (so the snapshot is taken at `n` loaded rows); after the snapshot, 1,000 distinct
/// loaded keys get new values in one durable transaction.
fn versions(
    engine: &mut dyn KvEngine,
    dir: &Path,
    n: usize,
    removed: bool,
    keys: &[Key],
    report: &mut dyn FnMut(Workload, Result<Row>),
) -> Result<()> {
    if removed {
        engine.write(Durability::Durable, &mut |sink| {
            let mut stream = Stream::new(stream_seed(LOAD));
            let (mut key, mut value) = ([0; KEY_LEN], [0; VALUE_LEN]);
            for index in 0..n {
                stream.next_entry(&mut key, &mut value);
                if index % 2 == 0 {
                    sink(&key, Some(&value))?;
                }
            }
            Ok(())
        })?;
    }
    let versioned = engine.versions().ok_or("no version features")?;
    let probe = Probe::start(dir)?;
    versioned.snapshot(SNAPSHOT)?;
    report(
        Workload::SnapshotCreate,
        Ok(probe.read(Workload::SnapshotCreate, 1)),
    );

    let updates = DIFF_UPDATES.min(keys.len());
    let order = permutation(keys.len(), stream_seed(DIFF));
    let mut values = SplitMix64::new(stream_seed(DIFF) + 1);
    engine.write(Durability::Durable, &mut |sink| {
        let mut value = [0; VALUE_LEN];
        for &index in &order[..updates] {
            values.fill(&mut value);
            sink(&keys[index as usize], Some(&value))?;
        }
        Ok(())
    })?;
    let versioned = engine.versions().ok_or("no version features")?;
    for workload in [Workload::Diff1000, Workload::NaiveDiff1000] {
        let result = (|| {
            let probe = Probe::start(dir)?;
            let changes = if workload == Workload::Diff1000 {
                versioned.diff(SNAPSHOT)?
            } else {
                versioned.naive_diff(SNAPSHOT)?
            };
            let row = probe.read(workload, 1);
            if changes != updates as u64 {
                return Err(format!("found {changes} changes, expected {updates}").into());
            }
            Ok(row)
        })();
        report(workload, result);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_keys_values() {
        let expected = thunderhead_benches::keys_values(SEED, 500, KEY_LEN, VALUE_LEN);
        let mut stream = Stream::new(SEED);
        let (mut key, mut value) = ([0; KEY_LEN], [0; VALUE_LEN]);
        for (k, v) in &expected {
            stream.next_entry(&mut key, &mut value);
            assert_eq!((&key[..], &value[..]), (&k[..], &v[..]));
        }
    }

    #[test]
    fn names_round_trip_and_permutation_is_one() {
        for workload in Workload::ALL {
            assert_eq!(Workload::parse(workload.name()), Some(workload));
        }
        assert_eq!(Workload::parse("nope"), None);
        let mut order = permutation(1000, 3);
        assert_ne!(order[..10], (0..10).collect::<Vec<u32>>()[..]);
        order.sort_unstable();
        assert_eq!(order, (0..1000).collect::<Vec<u32>>());
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        let quick = Params::new(100_000, true);
        assert_eq!((quick.nosync_txns, quick.churn_keys), (100, 10_000));
        let full = Params::new(1_000_000, false);
        assert_eq!((full.nosync_txns, full.churn_keys), (1_000, 100_000));
        assert_eq!(Params::new(5_000, false).churn_keys, 5_000);
    }
}
