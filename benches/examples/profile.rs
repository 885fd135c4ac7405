//! Profiling aid for `perf record`: `profile insert [journal_bytes_max]` builds the
//! 100k-entry tree of the benchmarks ten times; `profile scan [journal_bytes_max]` builds
//! it once and scans it 500 times.
use std::sync::Arc;
use std::time::Instant;

use thunderhead_benches::keys_values;
use thunderhead_core::{Pager, Snapshot, Tree, TreeConfig, Version};
use thunderhead_disk::MemStore;

type Data = Vec<(Vec<u8>, Vec<u8>)>;

fn build(data: &Data, config: &TreeConfig) -> (Arc<Pager<MemStore>>, Version) {
    let pager = Arc::new(Pager::new(MemStore::new(16 * 1024).unwrap(), config).unwrap());
    let mut tree = Tree::new(pager.clone());
    for (key, value) in data {
        tree.put(key, value).unwrap();
    }
    (pager, tree.commit().unwrap())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "scan".into());
    let mut config = TreeConfig::default();
    if let Some(budget) = args.next() {
        config.journal_bytes_max = budget.parse().expect("journal budget");
    }
    let data = keys_values(0x5448_554E_4445_5248, 100_000, 24, 150);
    match mode.as_str() {
        "insert" => {
            let started = Instant::now();
            for _ in 0..10 {
                build(&data, &config);
            }
            println!("{:?} per build", started.elapsed() / 10);
        }
        "scan" => {
            let (pager, version) = build(&data, &config);
            let snapshot = Snapshot::new(pager, version);
            let started = Instant::now();
            let mut total = 0usize;
            for _ in 0..500 {
                total += snapshot
                    .iter()
                    .map(|entry| entry.unwrap().1.len())
                    .sum::<usize>();
            }
            println!("{total} bytes, {:?} per scan", started.elapsed() / 500);
        }
        other => panic!("unknown mode {other}"),
    }
}
