//! Small durable commits on a fragmented file, for profiling what a commit costs once the
//! free space holds many runs: `ROWS` rows loaded (24-byte random keys, 150-byte values),
//! every other one removed and put back in two durable transactions, then a snapshot (the
//! commit that releases what the put-back freed), `COMMITS` single-key durable commits
//! and one more snapshot, each timed.
//!
//! `cargo run --release -p thunderhead-benches --example fragmented -- [ROWS] [COMMITS]`
//! (defaults: 300000 200).

use std::time::Instant;

use thunderhead_benches::{SplitMix64, scratch_dir};
use thunderhead_tx::{Database, Durability, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut arg = |default: usize| -> Result<usize, std::num::ParseIntError> {
        args.next().map_or(Ok(default), |arg| arg.parse())
    };
    let (rows, commits) = (arg(300_000)?, arg(200)?);
    let dir = scratch_dir("fragmented");
    let db = Database::create(dir.join("fragmented.th"), Options::default())?;
    let mut rng = SplitMix64::new(7);
    let keys: Vec<[u8; 24]> = (0..rows)
        .map(|_| {
            let mut key = [0u8; 24];
            rng.fill(&mut key);
            key
        })
        .collect();
    let value = [7u8; 150];
    let load = |keep: &dyn Fn(usize) -> bool| -> Result<(), Box<dyn std::error::Error>> {
        let txn = db.begin_write()?;
        let tree = txn.open_tree(b"data")?;
        for (index, key) in keys.iter().enumerate() {
            if keep(index) {
                tree.insert(key, &value)?;
            }
        }
        txn.commit()?;
        Ok(())
    };
    load(&|_| true)?;
    let txn = db.begin_write()?;
    let tree = txn.open_tree(b"data")?;
    for key in keys.iter().step_by(2) {
        tree.remove(key)?;
    }
    txn.commit()?;
    load(&|index| index % 2 == 0)?;
    // The first commit after the put-back releases what it freed: thousands of runs.
    let start = Instant::now();
    db.snapshot(b"first")?;
    let first = start.elapsed();
    let start = Instant::now();
    for _ in 0..commits {
        let mut key = [0u8; 24];
        rng.fill(&mut key);
        let txn = db.begin_write()?;
        txn.open_tree(b"data")?.insert(&key, &value)?;
        txn.commit_with(Durability::Immediate)?;
    }
    let elapsed = start.elapsed();
    let start = Instant::now();
    db.snapshot(b"snap")?;
    let snapshot = start.elapsed();
    println!(
        "fragmented file of {rows} rows: a snapshot right after the put-back {first:.2?}; \
         {commits} single-key durable commits {:.1} µs each; a snapshot after them {snapshot:.2?}",
        elapsed.as_secs_f64() * 1e6 / commits as f64
    );
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
