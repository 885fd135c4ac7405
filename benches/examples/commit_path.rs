//! The cost of one small commit through the `Database` API, for profiling the commit
//! path: single-key transactions (24-byte random keys, 150-byte values) into a new file,
//! one after another on one thread.
//!
//! `cargo run --release -p thunderhead-benches --example commit_path -- [COMMITS] [eventual|immediate]`
//! (defaults: 20000 eventual). Run it under `perf record --call-graph dwarf` or
//! `strace -c` to see where a commit's time goes.

use std::time::Instant;

use thunderhead_benches::{SplitMix64, scratch_dir};
use thunderhead_tx::{Database, Durability, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let commits: u64 = args
        .next()
        .map(|arg| arg.parse())
        .transpose()?
        .unwrap_or(20_000);
    let durability = match args.next().as_deref() {
        None | Some("eventual") => Durability::Eventual,
        Some("immediate") => Durability::Immediate,
        Some(other) => return Err(format!("unknown durability {other}").into()),
    };
    let dir = scratch_dir("commit_path");
    let db = Database::create(dir.join("commit_path.th"), Options::default())?;
    let txn = db.begin_write()?;
    txn.open_tree(b"data")?;
    txn.commit()?;
    let mut rng = SplitMix64::new(7);
    let value = [7u8; 150];
    let start = Instant::now();
    for _ in 0..commits {
        let mut key = [0u8; 24];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        let txn = db.begin_write()?;
        txn.open_tree(b"data")?.insert(&key, &value)?;
        txn.commit_with(durability)?;
    }
    let elapsed = start.elapsed();
    println!(
        "{commits} {durability:?} single-key commits in {elapsed:.2?}: {:.0} commits/s, {:.1} µs each",
        commits as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / commits as f64
    );
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
