//! Write amplification of durable commits, Thunderhead beside redb: random inserts
//! (16-byte random keys, 100-byte random values) into a new file, in batches of 1, 100
//! and 10,000 keys per commit, every commit durable (Thunderhead `Durability::Immediate`,
//! redb's default `Durability::Immediate`). Both engines run with their default page size
//! and settings, one after the other in this process, on the same data, in a directory
//! under `TMPDIR`.
//!
//! Reported per engine and batch size, from `/proc/self/io` and so measured the same way
//! for both engines: the bytes written to the file (`wchar`: both engines write with
//! pwrite, neither maps the file) per byte of user data (key + value) and per commit,
//! and the write calls per commit (`syscw`); for Thunderhead also its store's counters
//! (pages written and syncs per commit; it asserts one sync per commit). redb makes one
//! `fdatasync` per commit too (counted with `strace -c`, not here). The kernel's
//! `write_bytes` is shown last but is not comparable: it counts each dirtied page-cache
//! folio at full size (up to 2 MiB), far above what reaches the disk for small writes.
//! The commit loop is measured; opening, the final close and the verification after the
//! loop are not (what closing writes is printed below the table).
//!
//! `cargo run --release -p thunderhead-benches --example write_amp [BATCH:KEYS ...]`,
//! e.g. `write_amp 1:20000 100:1000000 10000:2000000` (the default). `ENGINES=redb` or
//! `ENGINES=thunderhead` runs one engine only (to count its system calls with strace,
//! say).

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use thunderhead_benches::{ProcIo, keys_values, scratch_dir};
use thunderhead_core::{Durability, Engine, TreeConfig};
use thunderhead_disk::{PAGE_SIZE_DEFAULT_BYTES, PageStore, StoreStats};

const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;
const DEFAULT_PLAN: [(usize, usize); 3] = [(1, 20_000), (100, 1_000_000), (10_000, 2_000_000)];
const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("data");

type Data = Vec<(Vec<u8>, Vec<u8>)>;
type BoxResult<T> = Result<T, Box<dyn Error>>;
type Bench = fn(&Path, &Data, usize) -> BoxResult<Run>;

/// What one engine did for one batch size.
struct Run {
    engine: &'static str,
    batch: usize,
    keys: usize,
    commits: u64,
    elapsed: Duration,
    /// The commit loop.
    io: ProcIo,
    /// Closing the store after the loop.
    close_io: ProcIo,
    file_bytes: u64,
    /// Thunderhead's store counters over the commit loop.
    store: Option<StoreStats>,
}

impl Run {
    fn user_bytes(&self) -> f64 {
        (self.keys * (KEY_LEN + VALUE_LEN)) as f64
    }

    fn per_commit(&self, count: u64) -> f64 {
        count as f64 / self.commits as f64
    }
}

fn io_now() -> ProcIo {
    ProcIo::now().expect("/proc/self/io (this benchmark needs Linux)")
}

fn since(before: &StoreStats, after: &StoreStats) -> StoreStats {
    StoreStats {
        reads: after.reads - before.reads,
        read_bytes: after.read_bytes - before.read_bytes,
        writes: after.writes - before.writes,
        written_bytes: after.written_bytes - before.written_bytes,
        syncs: after.syncs - before.syncs,
    }
}

fn thunderhead(dir: &Path, data: &Data, batch: usize) -> BoxResult<Run> {
    let path = dir.join(format!("thunderhead-{batch}.db"));
    let engine = Engine::create_file(&path, PAGE_SIZE_DEFAULT_BYTES, &TreeConfig::default())?;
    let stats_before = engine.pager().store().stats();
    let io_before = io_now();
    let started = Instant::now();
    let mut commits = 0;
    for chunk in data.chunks(batch) {
        let mut writer = engine.begin_write()?;
        for (key, value) in chunk {
            writer.put(key, value)?;
        }
        writer.commit(Durability::Immediate)?;
        commits += 1;
    }
    let elapsed = started.elapsed();
    let io = io_now().since(&io_before);
    let store = since(&stats_before, &engine.pager().store().stats());
    assert_eq!(
        store.syncs, commits,
        "Thunderhead synced other than once per commit"
    );
    let file_bytes = std::fs::metadata(&path)?.len();
    let io_before_close = io_now();
    drop(engine);
    let close_io = io_now().since(&io_before_close);
    // Verification, unmeasured: the store reopens and holds every key.
    let engine = Engine::open_file(&path, &TreeConfig::default())?;
    let report = engine.check()?;
    assert_eq!(engine.begin_read().iter().count(), data.len());
    assert!(report.tree.leaf_count > 0);
    for (key, value) in data.iter().step_by(997) {
        assert_eq!(
            engine.begin_read().get(key)?.as_deref(),
            Some(value.as_slice())
        );
    }
    drop(engine);
    std::fs::remove_file(&path)?;
    Ok(Run {
        engine: "Thunderhead",
        batch,
        keys: data.len(),
        commits,
        elapsed,
        io,
        close_io,
        file_bytes,
        store: Some(store),
    })
}

fn redb(dir: &Path, data: &Data, batch: usize) -> BoxResult<Run> {
    use redb::{ReadableDatabase, ReadableTableMetadata};

    let path = dir.join(format!("redb-{batch}.redb"));
    let db = redb::Database::create(&path)?;
    let io_before = io_now();
    let started = Instant::now();
    let mut commits = 0;
    for chunk in data.chunks(batch) {
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(REDB_TABLE)?;
            for (key, value) in chunk {
                table.insert(key.as_slice(), value.as_slice())?;
            }
        }
        txn.commit()?;
        commits += 1;
    }
    let elapsed = started.elapsed();
    let io = io_now().since(&io_before);
    let file_bytes = std::fs::metadata(&path)?.len();
    let io_before_close = io_now();
    drop(db);
    let close_io = io_now().since(&io_before_close);
    let db = redb::Database::open(&path)?;
    {
        let txn = db.begin_read()?;
        let table = txn.open_table(REDB_TABLE)?;
        assert_eq!(table.len()?, data.len() as u64);
        for (key, value) in data.iter().step_by(997) {
            assert_eq!(
                table.get(key.as_slice())?.unwrap().value(),
                value.as_slice()
            );
        }
    }
    drop(db);
    std::fs::remove_file(&path)?;
    Ok(Run {
        engine: "redb",
        batch,
        keys: data.len(),
        commits,
        elapsed,
        io,
        close_io,
        file_bytes,
        store: None,
    })
}

fn plan() -> Vec<(usize, usize)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return DEFAULT_PLAN.to_vec();
    }
    args.iter()
        .map(|arg| {
            let (batch, keys) = arg.split_once(':').expect("BATCH:KEYS");
            (
                batch.parse().expect("batch size"),
                keys.parse().expect("key count"),
            )
        })
        .collect()
}

fn main() -> BoxResult<()> {
    let selected = std::env::var("ENGINES").unwrap_or_else(|_| "thunderhead,redb".into());
    let dir = scratch_dir("write-amp");
    println!("store directory: {}", dir.display());
    let mut runs = Vec::new();
    for (index, (batch, keys)) in plan().into_iter().enumerate() {
        let data = keys_values(
            0x5752_4954_4541_4D50 + index as u64,
            keys,
            KEY_LEN,
            VALUE_LEN,
        );
        let engines: [(&str, Bench); 2] = [("thunderhead", thunderhead), ("redb", redb)];
        for (name, run) in engines {
            if !selected.split(',').any(|wanted| wanted.trim() == name) {
                continue;
            }
            let run = run(&dir, &data, batch)?;
            eprintln!(
                "{} batch {}: {} commits in {:.1?}",
                run.engine, run.batch, run.commits, run.elapsed
            );
            runs.push(run);
        }
    }
    std::fs::remove_dir_all(&dir)?;

    println!();
    println!(
        "| engine | keys/commit | keys | commits | time | commits/s | keys/s | file MiB \
         | bytes written / user byte | KiB written / commit | write calls / commit \
         | store pages / commit | syncs / commit | write_bytes / user byte (folio-granular) |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for run in &runs {
        let seconds = run.elapsed.as_secs_f64();
        let store = match &run.store {
            Some(store) => format!(
                "{:.1} | {:.2}",
                run.per_commit(store.written_bytes) / PAGE_SIZE_DEFAULT_BYTES as f64,
                run.per_commit(store.syncs),
            ),
            None => "– | –".to_string(),
        };
        println!(
            "| {} | {} | {} | {} | {:.2} s | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} |",
            run.engine,
            run.batch,
            run.keys,
            run.commits,
            seconds,
            run.commits as f64 / seconds,
            run.keys as f64 / seconds,
            run.file_bytes as f64 / (1024.0 * 1024.0),
            run.io.wchar as f64 / run.user_bytes(),
            run.per_commit(run.io.wchar) / 1024.0,
            run.per_commit(run.io.syscw),
            store,
            run.io.write_bytes as f64 / run.user_bytes(),
        );
    }
    for run in &runs {
        if let Some(store) = &run.store
            && store.written_bytes != run.io.wchar
        {
            println!(
                "\nNote: Thunderhead batch {}: its store counted {} bytes written, the kernel {}.",
                run.batch, store.written_bytes, run.io.wchar
            );
        }
    }
    println!(
        "\nBytes written are `wchar`, the bytes both engines passed to pwrite (neither maps \
         the file). `write_bytes` counts every page-cache folio a write dirtied at its full \
         size (up to 2 MiB on recent kernels with large folios), so it overstates what \
         reaches the disk for small writes into a file; it is shown for completeness."
    );
    println!();
    println!("Closing the store after the loop (not in the table):");
    for run in &runs {
        println!(
            "- {} batch {}: wchar {} KiB, write_bytes {} KiB",
            run.engine,
            run.batch,
            run.close_io.wchar / 1024,
            run.close_io.write_bytes / 1024,
        );
    }
    Ok(())
}
