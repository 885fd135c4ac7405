//! The costs of versions, for the acceptance points of the "Versions" work: a named
//! snapshot copies no page (constant time whatever the database size), and a diff costs
//! what changed, not what is stored.
//!
//! For each database size N (1 and 10 million keys; `--quick`: 100,000 and 1 million) a
//! new file database under `TMPDIR` (16 KiB pages, a 64 MiB page cache, the
//! default retention: the latest revision and named snapshots) is loaded with N keys of 16
//! bytes (a bijective hash of the key's index, big-endian, then the index: spread over
//! the key space, loaded in random key order) and 100-byte values, in transactions of
//! 200,000 keys. Then:
//!
//! 1. **Snapshot creation.** `Database::snapshot` timed several times (median, min, max),
//!    with the bytes it wrote; also on the empty database before the load, and beside a
//!    one-key commit (both sync once: a snapshot is one small durable commit).
//! 2. **Diffs.** For k in 10, 1,000 and 100,000 changed keys and two patterns, a named
//!    snapshot A, then one transaction updating k existing keys, revision B:
//!    * **random**: k distinct keys drawn over the whole key space (the hard case: every
//!      change in a different leaf);
//!    * **clustered**: k keys consecutive in key order from a random start.
//!
//!    The database is then closed and reopened (an empty page cache; the operating
//!    system's file cache still holds the file, so "cold" means cold for the engine, not
//!    for the disk), and `db.diff(A, B)` runs once, fully consumed and checked (exactly
//!    the k updated keys, each `Updated`), then `WARM_RUNS` more times (the median is the
//!    warm time). Its `pages_read()` is set beside the pages a full scan of one version
//!    loads (page-cache lookups, hits and misses, during `ReadTree::iter`), and beside a
//!    **naive diff**: both versions scanned in lockstep, a merge join counting the keys
//!    that differ (it must also find k).
//!
//! `cargo run --release -p thunderhead-benches --example versions -- [OPTIONS]`:
//!
//! * `--quick`: databases of 100,000 and 1,000,000 keys;
//! * `--keys 1000000,10000000`: the database sizes;
//! * `--changes 10,1000,100000`: the changed-key counts;
//! * `--patterns random,clustered`: the change patterns.

use std::collections::HashSet;
use std::error::Error;
use std::time::{Duration, Instant};

use thunderhead_benches::{SplitMix64, scratch_dir};
use thunderhead_disk::PageStore;
use thunderhead_tx::{ChangeKind, Database, Options};

type BoxResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;
const TREE: &[u8] = b"data";
const LOAD_TXN_KEYS: u64 = 200_000;
const SEED: u64 = 0x5645_5253_494F_4E53;
/// Snapshots timed per database.
const SNAPSHOT_SAMPLES: usize = 15;
/// Diffs timed after the first (cold) one; the median is reported.
const WARM_RUNS: usize = 5;

const USAGE: &str = "usage: versions [--quick] [--keys 1000000,10000000] \
                     [--changes 10,1000,100000] [--patterns random,clustered]";

type Key = [u8; KEY_LEN];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pattern {
    Random,
    Clustered,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Clustered => "clustered",
        }
    }
}

struct Config {
    sizes: Vec<u64>,
    changes: Vec<usize>,
    patterns: Vec<Pattern>,
}

impl Config {
    fn from_args() -> BoxResult<Self> {
        let mut config = Self {
            sizes: vec![1_000_000, 10_000_000],
            changes: vec![10, 1_000, 100_000],
            patterns: vec![Pattern::Random, Pattern::Clustered],
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => config.sizes = vec![100_000, 1_000_000],
                "--keys" => config.sizes = list(&value()?, |s| Ok(s.parse()?))?,
                "--changes" => config.changes = list(&value()?, |s| Ok(s.parse()?))?,
                "--patterns" => {
                    config.patterns = list(&value()?, |s| match s {
                        "random" => Ok(Pattern::Random),
                        "clustered" => Ok(Pattern::Clustered),
                        _ => Err(format!("unknown pattern {s}").into()),
                    })?
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => return Err(format!("unknown argument {arg}\n{USAGE}").into()),
            }
        }
        for &n in &config.sizes {
            if let Some(&k) = config.changes.iter().find(|&&k| k == 0 || k as u64 > n) {
                return Err(format!("{k} changed keys do not fit a database of {n} keys").into());
            }
        }
        Ok(config)
    }
}

fn list<T>(text: &str, parse: impl Fn(&str) -> BoxResult<T>) -> BoxResult<Vec<T>> {
    text.split(',').map(|item| parse(item.trim())).collect()
}

/// SplitMix64's finalizer: a bijection of `u64`, so distinct indexes hash apart.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The key of index `index`: its hash then itself, big-endian.
fn key_of(index: u64) -> Key {
    let mut key = [0; KEY_LEN];
    key[..8].copy_from_slice(&mix(index ^ SEED).to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The value of index `index` written by round `generation` (0: the load).
fn value_of(index: u64, generation: u64) -> [u8; VALUE_LEN] {
    let mut value = [0; VALUE_LEN];
    SplitMix64::new(mix(index) ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15)).fill(&mut value);
    value
}

/// Page loads so far (cache hits and misses: what `Diff::pages_read` counts too).
fn page_loads(db: &Database) -> u64 {
    let stats = db.engine().pager().cache_stats();
    stats.hits + stats.misses
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 1000.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

fn us(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1e6)
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Snapshot creation timed on `db` as it stands.
struct SnapshotTiming {
    keys: u64,
    median: Duration,
    min: Duration,
    max: Duration,
    /// Bytes the store wrote per snapshot, on average.
    written_bytes: u64,
    /// A one-key durable commit, median, for scale (both sync once).
    commit: Duration,
    /// Bytes the store wrote per one-key commit, on average.
    commit_written_bytes: u64,
}

fn time_snapshots(db: &Database, keys: u64, tag: &str) -> BoxResult<SnapshotTiming> {
    let store = db.engine().pager().store();
    let mut samples = Vec::with_capacity(SNAPSHOT_SAMPLES);
    let before = store.stats();
    for sample in 0..SNAPSHOT_SAMPLES {
        let name = format!("timing-{tag}-{sample}");
        let started = Instant::now();
        db.snapshot(name.as_bytes())?;
        samples.push(started.elapsed());
    }
    let written = store.stats().written_bytes - before.written_bytes;
    for sample in 0..SNAPSHOT_SAMPLES {
        db.drop_snapshot(format!("timing-{tag}-{sample}").as_bytes())?;
    }
    let mut commits = Vec::with_capacity(SNAPSHOT_SAMPLES);
    let before = store.stats();
    for sample in 0..SNAPSHOT_SAMPLES {
        let started = Instant::now();
        let txn = db.begin_write()?;
        txn.open_tree(b"scratch")?
            .insert(b"commit", &(sample as u64).to_le_bytes())?;
        txn.commit()?;
        commits.push(started.elapsed());
    }
    let commit_written = store.stats().written_bytes - before.written_bytes;
    let (min, max) = (
        *samples.iter().min().expect("samples"),
        *samples.iter().max().expect("samples"),
    );
    Ok(SnapshotTiming {
        keys,
        median: median(&mut samples),
        min,
        max,
        written_bytes: written / SNAPSHOT_SAMPLES as u64,
        commit: median(&mut commits),
        commit_written_bytes: commit_written / SNAPSHOT_SAMPLES as u64,
    })
}

/// Loads `n` keys in random key order, in transactions of `LOAD_TXN_KEYS`.
fn load(db: &Database, n: u64) -> BoxResult<Duration> {
    let started = Instant::now();
    let mut next = 0;
    while next < n {
        let end = (next + LOAD_TXN_KEYS).min(n);
        let txn = db.begin_write()?;
        {
            let tree = txn.open_tree(TREE)?;
            for index in next..end {
                tree.insert(&key_of(index), &value_of(index, 0))?;
            }
        }
        txn.commit()?;
        next = end;
        if end.is_multiple_of(2_000_000) || end == n {
            eprintln!(
                "  loaded {} keys, {:.1?}",
                thousands(end),
                started.elapsed()
            );
        }
    }
    Ok(started.elapsed())
}

/// The keys one round updates, sorted.
fn pick_keys(
    db: &Database,
    n: u64,
    k: usize,
    pattern: Pattern,
    rng: &mut SplitMix64,
) -> BoxResult<Vec<(Key, u64)>> {
    let mut picked: Vec<(Key, u64)> = match pattern {
        Pattern::Random => {
            let mut indexes = HashSet::with_capacity(k);
            while indexes.len() < k {
                indexes.insert(rng.below(n));
            }
            indexes
                .into_iter()
                .map(|index| (key_of(index), index))
                .collect()
        }
        Pattern::Clustered => {
            let read = db.begin_read();
            let tree = read.open_tree(TREE)?;
            let start = key_of(rng.below(n));
            let mut picked = Vec::with_capacity(k);
            // From a random key on in key order, wrapping round to the first key.
            for entry in tree.range(&start[..]..).chain(tree.range(..&start[..])) {
                if picked.len() == k {
                    break;
                }
                let (key, _) = entry?;
                let key: Key = key.as_slice().try_into()?;
                let index = u64::from_be_bytes(key[8..].try_into()?);
                picked.push((key, index));
            }
            picked
        }
    };
    picked.sort_unstable();
    Ok(picked)
}

/// One structural diff from a snapshot to a revision, fully consumed and checked.
struct DiffRun {
    elapsed: Duration,
    /// `Diff::pages_read`.
    pages_read: u64,
    /// Page-cache lookups over the whole call (the catalog's included).
    loads: u64,
    /// Extents the file store read (cache misses).
    store_reads: u64,
}

fn run_diff(db: &Database, from: &str, to: u64, expected: &[(Key, u64)]) -> BoxResult<DiffRun> {
    let loads_before = page_loads(db);
    let store_before = db.engine().pager().store().stats().reads;
    let started = Instant::now();
    let mut diff = db.diff(from, to)?;
    let mut found = 0;
    for change in diff.by_ref() {
        let change = change?;
        let wanted = expected.get(found).map(|(key, _)| &key[..]);
        if change.tree != TREE
            || wanted != Some(change.key.as_slice())
            || !matches!(change.kind, ChangeKind::Updated { .. })
        {
            return Err(format!(
                "diff change {found}: {:?} {:?} {:?}, expected an update of {wanted:?}",
                change.tree, change.key, change.kind
            )
            .into());
        }
        found += 1;
    }
    let elapsed = started.elapsed();
    if found != expected.len() {
        return Err(format!("the diff found {found} changes, not {}", expected.len()).into());
    }
    Ok(DiffRun {
        elapsed,
        pages_read: diff.pages_read(),
        loads: page_loads(db) - loads_before,
        store_reads: db.engine().pager().store().stats().reads - store_before,
    })
}

/// Both versions scanned in key order, side by side: the keys that differ and the time.
fn naive_diff(db: &Database, from: &str, to: u64) -> BoxResult<(u64, Duration)> {
    let old = db.begin_read_at_snapshot(from.as_bytes())?;
    let new = db.begin_read_at(to)?;
    let (old, new) = (old.open_tree(TREE)?, new.open_tree(TREE)?);
    let started = Instant::now();
    let (mut old_iter, mut new_iter) = (old.iter(), new.iter());
    let mut old_entry = old_iter.next().transpose()?;
    let mut new_entry = new_iter.next().transpose()?;
    let mut differing = 0;
    loop {
        let (advance_old, advance_new) = match (&old_entry, &new_entry) {
            (None, None) => break,
            (Some(_), None) => (true, false),
            (None, Some(_)) => (false, true),
            (Some((old_key, old_value)), Some((new_key, new_value))) => {
                match old_key.cmp(new_key) {
                    std::cmp::Ordering::Less => (true, false),
                    std::cmp::Ordering::Greater => (false, true),
                    std::cmp::Ordering::Equal => {
                        if old_value[..] != new_value[..] {
                            differing += 1;
                        }
                        old_entry = old_iter.next().transpose()?;
                        new_entry = new_iter.next().transpose()?;
                        continue;
                    }
                }
            }
        };
        differing += 1;
        if advance_old {
            old_entry = old_iter.next().transpose()?;
        }
        if advance_new {
            new_entry = new_iter.next().transpose()?;
        }
    }
    Ok((differing, started.elapsed()))
}

/// A full scan of one version: entries and time.
fn full_scan(db: &Database, revision: u64) -> BoxResult<(u64, Duration)> {
    let read = db.begin_read_at(revision)?;
    let tree = read.open_tree(TREE)?;
    let started = Instant::now();
    let mut entries = 0;
    for entry in tree.iter() {
        entry?;
        entries += 1;
    }
    Ok((entries, started.elapsed()))
}

/// The shape of the latest version's tree, from `Snapshot::check` (which reads it all).
#[derive(Clone, Copy)]
struct Shape {
    height: usize,
    /// Distinct stored pages: leaves, branches and journal segments.
    pages: u64,
    leaves: u64,
    segments: u64,
}

fn shape(db: &Database) -> BoxResult<Shape> {
    let read = db.engine().begin_read();
    let tree = read.tree(TREE)?.ok_or("the tree is missing")?;
    let report = tree.check()?;
    Ok(Shape {
        height: report.height,
        pages: report.leaf_count + report.branch_count + report.segment_count,
        leaves: report.leaf_count,
        segments: report.segment_count,
    })
}

/// One row of the diff table.
struct Row {
    keys: u64,
    changed: usize,
    pattern: Pattern,
    commit: Duration,
    cold: DiffRun,
    warm: Duration,
    warm_pages: u64,
    scan: Duration,
    naive: Duration,
    shape: Shape,
}

/// What one database size measured.
struct SizeReport {
    keys: u64,
    load: Duration,
    file_bytes: u64,
    shape: Shape,
    snapshot: SnapshotTiming,
    rows: Vec<Row>,
}

fn options() -> Options {
    Options {
        cache_bytes: 64 * 1024 * 1024,
        ..Options::default()
    }
}

fn measure_size(
    config: &Config,
    n: u64,
    empty: &mut Option<SnapshotTiming>,
) -> BoxResult<SizeReport> {
    let dir = scratch_dir(&format!("versions-{n}"));
    let path = dir.join("versions.thunderhead");
    let mut db = Database::create(&path, options())?;
    if empty.is_none() {
        *empty = Some(time_snapshots(&db, 0, "empty")?);
    }
    eprintln!("{} keys: loading into {}", thousands(n), path.display());
    let load = load(&db, n)?;
    eprintln!("  {:.0} keys/s", n as f64 / load.as_secs_f64());
    let loaded_shape = shape(&db)?;
    eprintln!(
        "  height {}, {} leaves, {} journal segments, {} distinct pages",
        loaded_shape.height,
        thousands(loaded_shape.leaves),
        thousands(loaded_shape.segments),
        thousands(loaded_shape.pages)
    );
    let snapshot = time_snapshots(&db, n, "loaded")?;
    eprintln!(
        "  snapshot: median {} µs (min {}, max {}), {} bytes written each; one-key commit {} µs, {} bytes",
        us(snapshot.median),
        us(snapshot.min),
        us(snapshot.max),
        snapshot.written_bytes,
        us(snapshot.commit),
        snapshot.commit_written_bytes
    );
    let mut rng = SplitMix64::new(SEED ^ n);
    let mut rows = Vec::new();
    let mut generation = 0;
    for &k in &config.changes {
        for &pattern in &config.patterns {
            generation += 1;
            let picked = pick_keys(&db, n, k, pattern, &mut rng)?;
            let name = format!("before-{k}-{}", pattern.name());
            db.snapshot(name.as_bytes())?;
            let started = Instant::now();
            let txn = db.begin_write()?;
            {
                let tree = txn.open_tree(TREE)?;
                for &(key, index) in &picked {
                    tree.insert(&key, &value_of(index, generation))?;
                }
            }
            let to = txn.commit()?;
            let commit = started.elapsed();
            // An empty page cache for the first diff (the OS still caches the file).
            drop(db);
            db = Database::open(&path, options())?;
            let cold = run_diff(&db, &name, to, &picked)?;
            let mut warm = Vec::with_capacity(WARM_RUNS);
            let mut warm_pages = cold.pages_read;
            for _ in 0..WARM_RUNS {
                let run = run_diff(&db, &name, to, &picked)?;
                warm_pages = warm_pages.max(run.pages_read);
                warm.push(run.elapsed);
            }
            let warm = median(&mut warm);
            let (differing, naive) = naive_diff(&db, &name, to)?;
            if differing != k as u64 {
                return Err(format!("the naive diff found {differing} changes, not {k}").into());
            }
            let (entries, scan) = full_scan(&db, to)?;
            if entries != n {
                return Err(format!("a full scan found {entries} entries, not {n}").into());
            }
            let shape = shape(&db)?;
            eprintln!(
                "  {k} {}: commit {}, diff cold {} ms ({} pages, {} cache lookups, {} store reads), \
                 warm {} ms ({} pages); naive {} ms; scan {} ms; {} distinct pages",
                pattern.name(),
                ms(commit),
                ms(cold.elapsed),
                cold.pages_read,
                cold.loads,
                cold.store_reads,
                ms(warm),
                warm_pages,
                ms(naive),
                ms(scan),
                shape.pages
            );
            db.drop_snapshot(name.as_bytes())?;
            rows.push(Row {
                keys: n,
                changed: k,
                pattern,
                commit,
                cold,
                warm,
                warm_pages,
                scan,
                naive,
                shape,
            });
        }
    }
    let file_bytes = std::fs::metadata(&path)?.len();
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(SizeReport {
        keys: n,
        load,
        file_bytes,
        shape: loaded_shape,
        snapshot,
        rows,
    })
}

fn main() -> BoxResult<()> {
    let config = Config::from_args()?;
    let started = Instant::now();
    let mut empty = None;
    let mut reports = Vec::new();
    for &n in &config.sizes {
        reports.push(measure_size(&config, n, &mut empty)?);
    }
    let defaults = options();
    println!(
        "\n{KEY_LEN}-byte keys, {VALUE_LEN}-byte values, {} KiB pages, {} MiB page cache; \
         stores under {}; {} cores; total {:.1?}\n",
        defaults.page_size / 1024,
        defaults.cache_bytes >> 20,
        std::env::temp_dir().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed()
    );
    println!(
        "| keys | load keys/s | file MiB | height | leaves | journal segments | distinct pages |"
    );
    println!("|--:|--:|--:|--:|--:|--:|--:|");
    for report in &reports {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            thousands(report.keys),
            thousands((report.keys as f64 / report.load.as_secs_f64()) as u64),
            report.file_bytes >> 20,
            report.shape.height,
            thousands(report.shape.leaves),
            thousands(report.shape.segments),
            thousands(report.shape.pages)
        );
    }
    println!(
        "\nSnapshot creation ({SNAPSHOT_SAMPLES} each; one durable commit recording the name), \
         beside a one-key durable commit:\n"
    );
    println!(
        "| keys | snapshot median µs | min µs | max µs | bytes written | one-key commit µs | \
         commit bytes written |"
    );
    println!("|--:|--:|--:|--:|--:|--:|--:|");
    for timing in empty.iter().chain(reports.iter().map(|r| &r.snapshot)) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            thousands(timing.keys),
            us(timing.median),
            us(timing.min),
            us(timing.max),
            thousands(timing.written_bytes),
            us(timing.commit),
            thousands(timing.commit_written_bytes)
        );
    }
    println!(
        "\nDiffs of k updated keys in one commit. Cold: the first diff after reopening (empty \
         engine cache; the OS file cache is warm); warm: median of {WARM_RUNS}. \"diff pages\": \
         `Diff::pages_read`; \"distinct pages\": the version's leaves, branches and journal \
         segments, each of which a full scan reads once; \"naive\": both versions scanned in a \
         merge join. (Scans are not counted by cache lookups: warm branch views reach their \
         children by links, past the cache.)\n"
    );
    println!(
        "| keys | k | pattern | commit ms | diff cold ms | diff warm ms | diff pages | \
         % of distinct pages | naive ms | scan ms | distinct pages |"
    );
    println!("|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in reports.iter().flat_map(|r| &r.rows) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.3}% | {} | {} | {} |",
            thousands(row.keys),
            thousands(row.changed as u64),
            row.pattern.name(),
            ms(row.commit),
            ms(row.cold.elapsed),
            ms(row.warm),
            thousands(row.warm_pages),
            100.0 * row.warm_pages as f64 / row.shape.pages as f64,
            ms(row.naive),
            ms(row.scan),
            thousands(row.shape.pages)
        );
    }
    Ok(())
}
