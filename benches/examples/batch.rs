//! The batch workload of the design card: a store of 1,000,000 random 24-byte keys with
//! 150-byte values, then batches of 1,000 random new keys, each committed. Prints, per
//! batch, the time and the pages and bytes written (in memory: `MemStore` counts every
//! write), steady state over `BATCHES` batches, with a 64 MiB page cache (the figures in
//! README were measured with it, when it was the default). Run with
//! `cargo run --release -p thunderhead-benches --example batch [journal_bytes_max]`.
use std::sync::Arc;
use std::time::Instant;

use thunderhead_benches::{SplitMix64, keys_values};
use thunderhead_core::{Pager, Snapshot, Tree, TreeConfig};
use thunderhead_disk::{MemStore, PageStore};

const STORE: usize = 1_000_000;
const BATCH: usize = 1_000;
const BATCHES: usize = 200;

fn main() {
    let mut config = TreeConfig {
        cache_bytes_max: 64 * 1024 * 1024,
        ..TreeConfig::default()
    };
    if let Some(budget) = std::env::args().nth(1) {
        config.journal_bytes_max = budget.parse().expect("journal budget in bytes");
    }
    let pager = Arc::new(Pager::new(MemStore::new(16 * 1024).unwrap(), &config).unwrap());
    let mut tree = Tree::new(pager.clone());
    let started = Instant::now();
    for (index, (key, value)) in keys_values(1, STORE, 24, 150).iter().enumerate() {
        tree.put(key, value).unwrap();
        if index % 10_000 == 9_999 {
            tree.commit().unwrap();
        }
    }
    tree.commit().unwrap();
    println!(
        "loaded {STORE} entries in {:?} (journal budget {} bytes)",
        started.elapsed(),
        config.journal_bytes_max
    );
    let mut rng = SplitMix64::new(2);
    let mut key = [0u8; 24];
    let mut value = [0u8; 150];
    let before = pager.store().stats();
    let started = Instant::now();
    let mut worst = std::time::Duration::ZERO;
    let mut version = None;
    for _ in 0..BATCHES {
        let batch_started = Instant::now();
        for _ in 0..BATCH {
            rng.fill(&mut key);
            rng.fill(&mut value);
            tree.put(&key, &value).unwrap();
        }
        version = Some(tree.commit().unwrap());
        worst = worst.max(batch_started.elapsed());
    }
    let elapsed = started.elapsed();
    let after = pager.store().stats();
    let writes = after.writes - before.writes;
    let bytes = after.written_bytes - before.written_bytes;
    println!(
        "{BATCHES} batches of {BATCH}: {:?} per batch (worst {worst:?}), {:.1} extent writes \
         and {:.1} pages ({:.0} KiB) written per batch, {:.1} bytes written per byte of data",
        elapsed / BATCHES as u32,
        writes as f64 / BATCHES as f64,
        bytes as f64 / 16384.0 / BATCHES as f64,
        bytes as f64 / 1024.0 / BATCHES as f64,
        bytes as f64 / (BATCHES * BATCH * (24 + 150)) as f64,
    );
    let snapshot = Snapshot::new(pager.clone(), version.unwrap());
    let probes = keys_values(1, 10_000, 24, 150);
    let started = Instant::now();
    let rounds = std::env::var("GET_ROUNDS").map_or(1, |rounds| rounds.parse().unwrap());
    for _ in 0..rounds {
        for (key, _) in &probes {
            assert!(snapshot.get(key).unwrap().is_some());
        }
    }
    println!(
        "random get: {:?}",
        started.elapsed() / (rounds * probes.len()) as u32
    );
    let started = Instant::now();
    let count = snapshot.iter().count();
    println!("full scan of {count} entries: {:?}", started.elapsed());
    let report = snapshot.check().unwrap();
    println!(
        "height {}, {} leaves, {} branches, {} KiB pending in journals, {} segments",
        report.height,
        report.leaf_count,
        report.branch_count,
        report.journal_pending_bytes / 1024,
        report.segment_count
    );
}
