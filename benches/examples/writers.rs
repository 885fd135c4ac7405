//! Commits per second with 1, 2, 4 and 8 concurrent writer threads, Thunderhead beside
//! redb 4 and LMDB (through `heed`), each engine in a new file under `TMPDIR`.
//!
//! Every transaction is a read-modify-write of a few keys (one by default, 24-byte keys,
//! 150-byte values as in redb's benchmark): for each key it reads the value, increments
//! the counter held in the value's first 8 bytes (0 when the key is absent) and writes the
//! value back, then commits. Two key patterns:
//!
//! * **disjoint**: each thread writes new random keys of its own range (the first key byte
//!   is the thread's number), so no two transactions touch the same key;
//! * **overlapping**: every thread picks keys at random from one shared range (1,000 keys
//!   by default, loaded before the clock starts), so concurrent transactions of an
//!   optimistic engine conflict. A transaction refused for a conflict is retried with the
//!   same keys until it commits; the retries are counted and shown as conflicts/s.
//!
//! Two durabilities: **immediate**, every commit synced before it returns (Thunderhead
//! `Durability::Immediate`; redb `Durability::Immediate`, one `fdatasync` per commit;
//! LMDB's default, which syncs twice per commit: an `fdatasync` after the data pages,
//! then the meta page written through an `O_DSYNC` descriptor), and **eventual**, no sync
//! (Thunderhead `Durability::Eventual`, redb `Durability::None`, LMDB opened with
//! `MDB_NOSYNC`; counted with `strace -c`).
//!
//! redb and LMDB admit one writer at a time: their threads simply queue in `begin_write`,
//! which is the point of the comparison with Thunderhead's concurrent optimistic writers.
//! A run lasts a fixed time (threads stop starting transactions when it is up; the rate
//! divides by the time until the last thread finished) or a fixed number of commits per
//! thread. Each run gets a new directory. After each run, unmeasured, the store is checked
//! for lost updates: in overlapping runs the shared keys' counters must add up to the
//! keys written by all commits; in disjoint runs every committed key must hold counter 1.
//!
//! `cargo run --release -p thunderhead-benches --example writers -- [OPTIONS]`:
//!
//! * `--quick`: 0.2 s per run (a smoke test); `--seconds S` (default 2); `--txns N`:
//!   N commits per thread instead of a fixed time; `--repeat N` (default 1): N rounds over
//!   every configuration, each cell of the table the median run;
//! * `--keys-per-txn K` (default 1), `--shared-keys N` (default 1000);
//! * `--threads 1,2,4,8`, `--keys disjoint,overlapping`,
//!   `--durability immediate,eventual` select the runs.
//!
//! `ENGINES=redb,lmdb` (say) runs some engines only (default: every engine built in).

use std::error::Error;
use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use heed::types::Bytes;
use thunderhead_benches::{SplitMix64, keys_values, scratch_dir};

const KEY_LEN: usize = 24;
const VALUE_LEN: usize = 150;
/// The counter at the start of every value.
const COUNTER_LEN: usize = 8;
const SEED: u64 = 0x5752_4954_4552_5321;
const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("data");
/// LMDB's map: address space only, the file grows with the data.
const LMDB_MAP_BYTES: usize = 16 << 30;

const USAGE: &str = "usage: writers [--quick] [--seconds S | --txns N] [--repeat N] [--keys-per-txn K] \
                     [--shared-keys N] [--threads 1,2,4,8] [--keys disjoint,overlapping] \
                     [--durability immediate,eventual]";

type BoxError = Box<dyn Error + Send + Sync>;
type BoxResult<T> = Result<T, BoxError>;
type Key = [u8; KEY_LEN];
type Value = [u8; VALUE_LEN];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keys {
    Disjoint,
    Overlapping,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every commit synced.
    Immediate,
    /// No sync.
    Eventual,
}

impl Keys {
    fn name(self) -> &'static str {
        match self {
            Self::Disjoint => "disjoint",
            Self::Overlapping => "overlapping",
        }
    }
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Eventual => "eventual",
        }
    }
}

/// How long a run lasts.
#[derive(Clone, Copy, Debug)]
enum Length {
    Time(Duration),
    /// Commits per thread.
    Commits(u64),
}

/// One engine opened for one run, shared by its writer threads.
trait Writers: Sync {
    /// Writes `value` under every key in one durable transaction (before the clock starts).
    fn load(&self, keys: &[Key], value: &Value) -> BoxResult<()>;

    /// One read-modify-write transaction: for each key in turn, read its counter (0 when
    /// absent), store `value` carrying the counter plus one, then commit in the run's
    /// durability. `Ok(false)`: the commit was refused for a conflict and wrote nothing.
    fn transact(&self, keys: &[Key], value: &mut Value) -> BoxResult<bool>;

    /// The counter stored under each key, for the check after the run.
    fn counters(&self, keys: &[Key]) -> BoxResult<Vec<Option<u64>>>;
}

/// An engine of the comparison.
struct Engine {
    name: &'static str,
    /// Whether writers run concurrently and may conflict (conflicts/s are shown).
    optimistic: bool,
    open: fn(&Path, Mode) -> BoxResult<Box<dyn Writers>>,
}

const ENGINES: [Engine; 3] = [
    Engine {
        name: "Thunderhead",
        optimistic: true,
        open: open_thunderhead,
    },
    Engine {
        name: "redb",
        optimistic: false,
        open: open_redb,
    },
    Engine {
        name: "LMDB",
        optimistic: false,
        open: open_lmdb,
    },
];

fn counter_of(value: &[u8]) -> u64 {
    let bytes = value.get(..COUNTER_LEN).expect("a value holds its counter");
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fn set_counter(value: &mut Value, counter: u64) {
    value[..COUNTER_LEN].copy_from_slice(&counter.to_le_bytes());
}

// ---------------------------------------------------------------------------------------
// Thunderhead

/// The tree every transaction writes.
const THUNDERHEAD_TREE: &[u8] = b"data";

struct Thunderhead {
    db: thunderhead_tx::Database,
    durability: thunderhead_tx::Durability,
}

fn open_thunderhead(dir: &Path, mode: Mode) -> BoxResult<Box<dyn Writers>> {
    use thunderhead_tx::{Database, Durability, Options};

    let db = Database::create(dir.join("writers.thunderhead"), Options::default())?;
    let durability = match mode {
        Mode::Immediate => Durability::Immediate,
        Mode::Eventual => Durability::Eventual,
    };
    Ok(Box::new(Thunderhead { db, durability }))
}

impl Writers for Thunderhead {
    fn load(&self, keys: &[Key], value: &Value) -> BoxResult<()> {
        let txn = self.db.begin_write()?;
        {
            let tree = txn.open_tree(THUNDERHEAD_TREE)?;
            for key in keys {
                tree.insert(key, value)?;
            }
        }
        txn.commit_with(thunderhead_tx::Durability::Immediate)?;
        Ok(())
    }

    fn transact(&self, keys: &[Key], value: &mut Value) -> BoxResult<bool> {
        let txn = self.db.begin_write()?;
        {
            let tree = txn.open_tree(THUNDERHEAD_TREE)?;
            for key in keys {
                let counter = tree.get(key)?.map_or(0, |old| counter_of(&old));
                set_counter(value, counter + 1);
                tree.insert(key, value)?;
            }
        }
        match txn.commit_with(self.durability) {
            Ok(_revision) => Ok(true),
            Err(thunderhead_tx::Error::Conflict { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    fn counters(&self, keys: &[Key]) -> BoxResult<Vec<Option<u64>>> {
        let txn = self.db.begin_read();
        let tree = match txn.open_tree(THUNDERHEAD_TREE) {
            Ok(tree) => tree,
            // Nothing committed yet (a run of no commits): every key is absent.
            Err(thunderhead_tx::Error::TreeNotFound { .. }) => return Ok(vec![None; keys.len()]),
            Err(error) => return Err(error.into()),
        };
        keys.iter()
            .map(|key| Ok(tree.get(key)?.map(|value| counter_of(&value))))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// redb

struct Redb {
    db: redb::Database,
    durability: redb::Durability,
}

fn open_redb(dir: &Path, mode: Mode) -> BoxResult<Box<dyn Writers>> {
    let db = redb::Database::create(dir.join("writers.redb"))?;
    let durability = match mode {
        Mode::Immediate => redb::Durability::Immediate,
        Mode::Eventual => redb::Durability::None,
    };
    Ok(Box::new(Redb { db, durability }))
}

impl Writers for Redb {
    fn load(&self, keys: &[Key], value: &Value) -> BoxResult<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(REDB_TABLE)?;
            for key in keys {
                table.insert(key.as_slice(), value.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn transact(&self, keys: &[Key], value: &mut Value) -> BoxResult<bool> {
        use redb::ReadableTable;

        let mut txn = self.db.begin_write()?;
        txn.set_durability(self.durability)?;
        {
            let mut table = txn.open_table(REDB_TABLE)?;
            for key in keys {
                let counter = table
                    .get(key.as_slice())?
                    .map_or(0, |old| counter_of(old.value()));
                set_counter(value, counter + 1);
                table.insert(key.as_slice(), value.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(true)
    }

    fn counters(&self, keys: &[Key]) -> BoxResult<Vec<Option<u64>>> {
        use redb::ReadableDatabase;

        let txn = self.db.begin_read()?;
        let table = txn.open_table(REDB_TABLE)?;
        keys.iter()
            .map(|key| Ok(table.get(key.as_slice())?.map(|v| counter_of(v.value()))))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// LMDB

struct Lmdb {
    env: heed::Env,
    db: heed::Database<'static, Bytes, Bytes>,
}

fn open_lmdb(dir: &Path, mode: Mode) -> BoxResult<Box<dyn Writers>> {
    let mut options = heed::EnvOpenOptions::new();
    options.map_size(LMDB_MAP_BYTES).max_dbs(1);
    if mode == Mode::Eventual {
        // SAFETY: `NO_SYNC` only weakens durability: a system crash may lose the last
        // commits (or, on file systems that reorder writes, damage the file). This store
        // is scratch data, deleted after the run, and is never reopened after a crash.
        unsafe {
            options.flags(heed::EnvFlags::NO_SYNC);
        }
    }
    // SAFETY: LMDB maps the file; the directory is new and private to this run, and
    // nothing else opens, truncates or writes the file while the map exists.
    let env = unsafe { options.open(dir)? };
    let txn = env.write_txn()?;
    let db = env
        .create_databases_and_commit(txn, |opener, txn| {
            opener
                .create_database::<Bytes, Bytes>(txn, Some("data"))
                .map(heed::CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit();
    Ok(Box::new(Lmdb { env, db }))
}

impl Writers for Lmdb {
    fn load(&self, keys: &[Key], value: &Value) -> BoxResult<()> {
        let mut txn = self.env.write_txn()?;
        for key in keys {
            self.db.put(&mut txn, key, value)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn transact(&self, keys: &[Key], value: &mut Value) -> BoxResult<bool> {
        let mut txn = self.env.write_txn()?;
        for key in keys {
            let counter = self.db.get(&txn, key)?.map_or(0, counter_of);
            set_counter(value, counter + 1);
            self.db.put(&mut txn, key, value)?;
        }
        txn.commit()?;
        Ok(true)
    }

    fn counters(&self, keys: &[Key]) -> BoxResult<Vec<Option<u64>>> {
        let txn = self.env.read_txn()?;
        keys.iter()
            .map(|key| Ok(self.db.get(&txn, key)?.map(counter_of)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The workload

/// The keys one thread writes, in order; the same sequence again for the check.
enum KeyStream<'a> {
    Disjoint { rng: SplitMix64, prefix: u8 },
    Overlapping { rng: SplitMix64, shared: &'a [Key] },
}

impl<'a> KeyStream<'a> {
    fn new(keys: Keys, thread: usize, shared: &'a [Key]) -> Self {
        let rng = SplitMix64::new(SEED ^ (thread as u64 + 1).wrapping_mul(0x9E37_79B9));
        match keys {
            Keys::Disjoint => Self::Disjoint {
                rng,
                prefix: u8::try_from(thread).expect("at most 256 threads"),
            },
            Keys::Overlapping => Self::Overlapping { rng, shared },
        }
    }

    fn next_key(&mut self, key: &mut Key) {
        match self {
            Self::Disjoint { rng, prefix } => {
                key[0] = *prefix;
                rng.fill(&mut key[1..]);
            }
            Self::Overlapping { rng, shared } => {
                *key = shared[rng.below(shared.len() as u64) as usize];
            }
        }
    }
}

/// What one writer thread did.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    commits: u64,
    /// Transactions refused for a conflict (each retried).
    conflicts: u64,
}

/// The settings of the whole benchmark.
struct Config {
    length: Length,
    /// Rounds over every configuration; the table shows each cell's median.
    repeat: usize,
    keys_per_txn: usize,
    shared_keys: usize,
    threads: Vec<usize>,
    keys: Vec<Keys>,
    modes: Vec<Mode>,
}

impl Config {
    fn from_args() -> BoxResult<Self> {
        let mut config = Self {
            length: Length::Time(Duration::from_secs(2)),
            repeat: 1,
            keys_per_txn: 1,
            shared_keys: 1000,
            threads: vec![1, 2, 4, 8],
            keys: vec![Keys::Disjoint, Keys::Overlapping],
            modes: vec![Mode::Immediate, Mode::Eventual],
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => config.length = Length::Time(Duration::from_millis(200)),
                "--seconds" => {
                    config.length = Length::Time(Duration::try_from_secs_f64(value()?.parse()?)?)
                }
                "--txns" => config.length = Length::Commits(value()?.parse()?),
                "--repeat" => config.repeat = value()?.parse()?,
                "--keys-per-txn" => config.keys_per_txn = value()?.parse()?,
                "--shared-keys" => config.shared_keys = value()?.parse()?,
                "--threads" => config.threads = list(&value()?, |s| Ok(s.parse()?))?,
                "--keys" => {
                    config.keys = list(&value()?, |s| match s {
                        "disjoint" => Ok(Keys::Disjoint),
                        "overlapping" => Ok(Keys::Overlapping),
                        _ => Err(format!("unknown key pattern {s}").into()),
                    })?
                }
                "--durability" => {
                    config.modes = list(&value()?, |s| match s {
                        "immediate" => Ok(Mode::Immediate),
                        "eventual" => Ok(Mode::Eventual),
                        _ => Err(format!("unknown durability {s}").into()),
                    })?
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => return Err(format!("unknown argument {arg}\n{USAGE}").into()),
            }
        }
        if config.repeat == 0 || config.keys_per_txn == 0 || config.shared_keys == 0 {
            return Err("--repeat, --keys-per-txn and --shared-keys must be at least 1".into());
        }
        if config.threads.iter().any(|&n| n == 0 || n > 256) {
            return Err("thread counts must be 1 to 256".into());
        }
        Ok(config)
    }
}

fn list<T>(text: &str, parse: impl Fn(&str) -> BoxResult<T>) -> BoxResult<Vec<T>> {
    text.split(',').map(|item| parse(item.trim())).collect()
}

/// One writer thread: transactions until the time is up or its commits are done.
fn writer(
    engine: &dyn Writers,
    mut stream: KeyStream<'_>,
    config: &Config,
    thread: usize,
    start: &Barrier,
    stop: &AtomicBool,
) -> BoxResult<Tally> {
    let mut keys = vec![[0; KEY_LEN]; config.keys_per_txn];
    let mut value = [0; VALUE_LEN];
    SplitMix64::new(SEED.wrapping_add(thread as u64)).fill(&mut value);
    let mut tally = Tally::default();
    start.wait();
    'run: loop {
        let done = match config.length {
            Length::Time(_) => stop.load(Ordering::Relaxed),
            Length::Commits(commits) => tally.commits == commits,
        };
        if done {
            break;
        }
        for key in &mut keys {
            stream.next_key(key);
        }
        while !engine.transact(&keys, &mut value)? {
            tally.conflicts += 1;
            if stop.load(Ordering::Relaxed) {
                break 'run;
            }
        }
        tally.commits += 1;
    }
    Ok(tally)
}

/// One measured run: one engine, key pattern, durability and thread count.
struct Run {
    engine: &'static str,
    keys: Keys,
    tallies: Vec<Tally>,
    elapsed: Duration,
}

impl Run {
    fn commits(&self) -> u64 {
        self.tallies.iter().map(|t| t.commits).sum()
    }

    fn conflicts(&self) -> u64 {
        self.tallies.iter().map(|t| t.conflicts).sum()
    }

    fn per_second(&self, count: u64) -> f64 {
        count as f64 / self.elapsed.as_secs_f64()
    }
}

fn run(
    engine: &Engine,
    config: &Config,
    shared: &[Key],
    keys: Keys,
    mode: Mode,
    threads: usize,
) -> BoxResult<Run> {
    let dir = scratch_dir(&format!(
        "writers-{}-{}-{}-{threads}",
        engine.name.to_lowercase(),
        keys.name(),
        mode.name()
    ));
    let opened = (engine.open)(&dir, mode)?;
    let writers = opened.as_ref();
    if keys == Keys::Overlapping {
        let mut value = [0; VALUE_LEN];
        SplitMix64::new(SEED).fill(&mut value);
        set_counter(&mut value, 0);
        writers.load(shared, &value)?;
    }
    let start = Barrier::new(threads + 1);
    let stop = AtomicBool::new(false);
    let (tallies, elapsed) = std::thread::scope(|scope| -> BoxResult<_> {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let stream = KeyStream::new(keys, thread, shared);
                let (start, stop) = (&start, &stop);
                scope.spawn(move || writer(writers, stream, config, thread, start, stop))
            })
            .collect();
        start.wait();
        let started = Instant::now();
        if let Length::Time(duration) = config.length {
            std::thread::sleep(duration);
            stop.store(true, Ordering::Relaxed);
        }
        let tallies = handles
            .into_iter()
            .map(|handle| handle.join().expect("a writer thread panicked"))
            .collect::<BoxResult<Vec<_>>>()?;
        Ok((tallies, started.elapsed()))
    })?;
    let run = Run {
        engine: engine.name,
        keys,
        tallies,
        elapsed,
    };
    check(writers, &run, config, shared)?;
    drop(opened);
    std::fs::remove_dir_all(&dir)?;
    Ok(run)
}

/// The check after a run (unmeasured): no committed update is lost.
fn check(writers: &dyn Writers, run: &Run, config: &Config, shared: &[Key]) -> BoxResult<()> {
    let written = run.commits() * config.keys_per_txn as u64;
    match run.keys {
        Keys::Overlapping => {
            let counters = writers.counters(shared)?;
            let total: u64 = counters
                .iter()
                .map(|c| c.ok_or("a shared key is missing"))
                .sum::<Result<_, _>>()?;
            if total != written {
                return Err(format!(
                    "{}: shared counters add up to {total}, commits wrote {written}",
                    run.engine
                )
                .into());
            }
        }
        Keys::Disjoint => {
            for (thread, tally) in run.tallies.iter().enumerate() {
                let mut stream = KeyStream::new(Keys::Disjoint, thread, shared);
                let mut keys = vec![[0; KEY_LEN]; tally.commits as usize * config.keys_per_txn];
                for key in &mut keys {
                    stream.next_key(key);
                }
                let counters = writers.counters(&keys)?;
                if let Some(index) = counters.iter().position(|&c| c != Some(1)) {
                    return Err(format!(
                        "{}: thread {thread}'s key {index} holds {:?}, not counter 1",
                        run.engine, counters[index]
                    )
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// The run of median commit rate (the lower middle one of an even count).
fn median(runs: &mut [Run]) -> &Run {
    runs.sort_by(|a, b| {
        let rate = |run: &Run| run.per_second(run.commits());
        rate(a).total_cmp(&rate(b))
    });
    &runs[(runs.len() - 1) / 2]
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
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

fn main() -> BoxResult<()> {
    let config = Config::from_args()?;
    let selected = std::env::var("ENGINES").ok();
    let engines: Vec<&Engine> = ENGINES
        .iter()
        .filter(|engine| {
            selected.as_ref().is_none_or(|wanted| {
                wanted
                    .split(',')
                    .any(|name| name.trim().eq_ignore_ascii_case(engine.name))
            })
        })
        .collect();
    if engines.is_empty() {
        return Err(format!("ENGINES selects none of the engines built in: {selected:?}").into());
    }

    let mut shared: Vec<Key> = keys_values(SEED, config.shared_keys, KEY_LEN, 0)
        .into_iter()
        .map(|(key, _)| key.try_into().expect("24-byte keys"))
        .collect();
    shared.sort_unstable();
    shared.dedup();
    assert_eq!(shared.len(), config.shared_keys, "shared keys collide");

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let length = match config.length {
        Length::Time(duration) => format!("{duration:.1?} per run"),
        Length::Commits(commits) => format!("{commits} commits per thread per run"),
    };
    println!(
        "cores: {cores}; {length}; {} key(s) of {KEY_LEN} bytes per transaction, values of \
         {VALUE_LEN} bytes; overlapping runs share {} keys; stores under {}",
        config.keys_per_txn,
        config.shared_keys,
        std::env::temp_dir().display()
    );

    // Every configuration, each engine in turn, and the whole matrix again per round, so
    // a slow spell of the machine spreads over engines and configurations.
    let mut cells = Vec::new();
    for &keys in &config.keys {
        for &mode in &config.modes {
            for &threads in &config.threads {
                cells.push((keys, mode, threads));
            }
        }
    }
    let mut runs: Vec<Vec<Vec<Run>>> = cells
        .iter()
        .map(|_| engines.iter().map(|_| Vec::new()).collect())
        .collect();
    for round in 1..=config.repeat {
        for (cell, &(keys, mode, threads)) in runs.iter_mut().zip(&cells) {
            for (engine_runs, engine) in cell.iter_mut().zip(&engines) {
                let run = run(engine, &config, &shared, keys, mode, threads)?;
                let (least, most) = run.tallies.iter().fold((u64::MAX, 0), |(l, m), t| {
                    (l.min(t.commits), m.max(t.commits))
                });
                eprintln!(
                    "round {round}: {} {} {} {threads} thread(s): {} commits in {:.2?} \
                     ({} commits/s; per thread {least} to {most}), {} conflicts",
                    run.engine,
                    keys.name(),
                    mode.name(),
                    run.commits(),
                    run.elapsed,
                    thousands(run.per_second(run.commits())),
                    run.conflicts(),
                );
                engine_runs.push(run);
            }
        }
    }

    println!();
    if config.repeat > 1 {
        println!("Each cell is the median of {} runs.\n", config.repeat);
    }
    let names: Vec<&str> = engines.iter().map(|engine| engine.name).collect();
    println!(
        "| keys | durability | threads | {} |",
        names
            .iter()
            .map(|name| format!("{name} commits/s"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---|--:|{}", "--:|".repeat(names.len()));
    for (cell, &(keys, mode, threads)) in runs.iter_mut().zip(&cells) {
        let texts: Vec<String> = cell
            .iter_mut()
            .zip(&engines)
            .map(|(engine_runs, engine)| {
                let run = median(engine_runs);
                let commits = thousands(run.per_second(run.commits()));
                if engine.optimistic {
                    format!(
                        "{commits} ({} conflicts/s)",
                        thousands(run.per_second(run.conflicts()))
                    )
                } else {
                    commits
                }
            })
            .collect();
        println!(
            "| {} | {} | {threads} | {} |",
            keys.name(),
            mode.name(),
            texts.join(" | ")
        );
    }
    Ok(())
}
