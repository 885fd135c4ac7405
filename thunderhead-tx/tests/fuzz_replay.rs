//! The fuzz targets (`fuzz/`) under plain `cargo test`: every input of each target's seed
//! corpus (`fuzz/corpus/<target>/`) and every crash the fuzzers found, minimized
//! (`fuzz/regressions/<target>/`), goes through the target again, followed by
//! deterministic pseudo-random inputs, so that the targets' checks run on every build
//! without libFuzzer. The targets are the fuzz crate's own modules, included by path.
//!
//! `THUNDERHEAD_FUZZ_REPLAY_CASES` sets the number of pseudo-random inputs per target
//! (default: 5,000 for `page_decode`, 2,000 for `ops`, 1,000 for `open_file`); `THUNDERHEAD_FUZZ_REPLAY_SEED` the
//! seed they come from; `THUNDERHEAD_FUZZ_REPLAY_DIR` names a directory whose
//! `<target>/` subdirectories are replayed too (a fuzz run's corpus or artifacts).

#[path = "../../fuzz/src/open_file.rs"]
mod open_file;
#[path = "../../fuzz/src/ops.rs"]
mod ops;
#[path = "../../fuzz/src/page_decode.rs"]
mod page_decode;

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use thunderhead_disk::SplitMix64;

use common::{env_u64, panic_message};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none if the directory is missing).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    inputs_in(&fuzz_dir().join(kind).join(target))
}

/// The files of `dir` but hidden ones, sorted (none if it is missing).
fn inputs_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| {
                path.is_file()
                    && !path
                        .file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Pseudo-random inputs of up to `len_max` bytes: raw bytes, or bytes mostly small
/// (which decode to the targets' commonest choices).
fn random_input(rng: &mut SplitMix64, len_max: u64) -> Vec<u8> {
    let len = rng.below(len_max + 1) as usize;
    let small = rng.below(2) == 0;
    (0..len)
        .map(|_| {
            if small {
                rng.below(16) as u8
            } else {
                rng.next_u64() as u8
            }
        })
        .collect()
}

/// Runs `target` over the corpus and regressions of `name`, then `cases` random inputs;
/// fails naming every input that panicked.
fn replay(name: &str, target: fn(&[u8]), cases: u64, len_max: u64) {
    let mut failures = Vec::new();
    let mut run = |what: String, data: &[u8]| {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| target(data))) {
            failures.push(format!("{what}: {}", panic_message(&*payload)));
        }
    };
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .flat_map(|kind| inputs(kind, name))
        .collect();
    if let Ok(dir) = std::env::var("THUNDERHEAD_FUZZ_REPLAY_DIR") {
        files.extend(inputs_in(&Path::new(&dir).join(name)));
    }
    for path in &files {
        let data = std::fs::read(path).expect("a readable input");
        run(path.display().to_string(), &data);
    }
    let seed = env_u64("THUNDERHEAD_FUZZ_REPLAY_SEED").unwrap_or(0xF022_0008);
    let cases = env_u64("THUNDERHEAD_FUZZ_REPLAY_CASES").unwrap_or(cases);
    let mut rng = SplitMix64::new(seed ^ name.len() as u64);
    for case in 0..cases {
        let data = random_input(&mut rng, len_max);
        run(format!("random input {case} (seed {seed:#x})"), &data);
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} inputs failed:\n{}",
        failures.len(),
        files.len() as u64 + cases,
        failures.join("\n")
    );
    assert!(
        !files.is_empty(),
        "{name}: no seed corpus in {}",
        fuzz_dir().join("corpus").join(name).display()
    );
}

#[test]
fn page_decode_corpus_and_random_inputs() {
    replay("page_decode", page_decode::run, 5000, 4096);
}

#[test]
fn ops_corpus_and_random_inputs() {
    replay("ops", ops::run, 2000, 2048);
}

#[test]
fn open_file_corpus_and_random_inputs() {
    replay("open_file", open_file::run, 1000, 256);
}

/// The first bug the `ops` target found, reduced: a write transaction's range (or range
/// delete) whose start lies past its end panicked in the transaction's pending writes
/// (`BTreeMap::range` panics on such bounds) instead of holding nothing.
#[test]
fn a_write_range_with_its_start_past_its_end_is_empty() {
    use thunderhead_tx::{Database, Options};

    let db = Database::in_memory(Options::default()).unwrap();
    let txn = db.begin_write().unwrap();
    let tree = txn.open_tree(b"t").unwrap();
    tree.insert(b"b", b"1").unwrap();
    assert_eq!(tree.range(&b"c"[..]..&b"a"[..]).unwrap().count(), 0);
    assert_eq!(tree.range(&b"c"[..]..=&b"a"[..]).unwrap().rev().count(), 0);
    tree.remove_range(&b"c"[..]..&b"a"[..]).unwrap();
    assert_eq!(tree.get(b"b").unwrap().as_deref(), Some(&b"1"[..]));
}
