//! Profiling aid: builds the drained 100k-entry tree of the scan benchmark and scans it
//! repeatedly, so `perf record` sees mostly the iterator.
use std::sync::Arc;

use thunderhead_benches::keys_values;
use thunderhead_core::{Pager, Snapshot, Tree, TreeConfig};
use thunderhead_disk::MemStore;

fn main() {
    let journal_bytes_max = std::env::args()
        .nth(1)
        .map_or(1, |arg| arg.parse().expect("journal budget"));
    let data = keys_values(0x5448_554E_4445_5248, 100_000, 24, 150);
    let config = TreeConfig {
        journal_bytes_max,
        ..TreeConfig::default()
    };
    let pager = Arc::new(Pager::new(MemStore::new(16 * 1024).unwrap(), &config).unwrap());
    let mut tree = Tree::new(pager.clone());
    for (key, value) in &data {
        tree.put(key, value).unwrap();
    }
    let version = tree.commit().unwrap();
    let snapshot = Snapshot::new(pager, version);
    let started = std::time::Instant::now();
    let mut total = 0usize;
    for _ in 0..500 {
        total += snapshot
            .iter()
            .map(|entry| entry.unwrap().1.len())
            .sum::<usize>();
    }
    println!("{total} bytes, {:?} per scan", started.elapsed() / 500);
}
