//! The Thunderhead demo: a versioned index of every file under a directory (default
//! `/usr`), keyed by path, valued by size and modification time. It loads the index,
//! keeps the loaded version as a snapshot, applies a batch of realistic changes, and
//! compares the two versions, with timings and storage figures throughout.
//!
//! Run: `cargo run --release -p thunderhead-core --example demo [DIR]`

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Instant, UNIX_EPOCH};

use thunderhead_core::{ChangeKind, Durability, Engine, Snapshot, TreeConfig};
use thunderhead_disk::{FileStore, PAGE_SIZE_DEFAULT_BYTES, PageStore};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/usr".to_string());
    println!("Thunderhead demo: a versioned index of the files under {root}\n");

    let started = Instant::now();
    let mut files = BTreeMap::new();
    walk(Path::new(&root), &mut files);
    let raw_bytes: usize = files
        .iter()
        .map(|(path, value): (&Vec<u8>, &[u8; 16])| path.len() + value.len())
        .sum();
    println!(
        "scanned {} files ({:.1} MiB of keys and values) in {:.2?}",
        files.len(),
        mib(raw_bytes),
        started.elapsed()
    );
    if files.is_empty() {
        return Err(format!("no files found under {root}").into());
    }

    let path = std::env::temp_dir().join(format!("thunderhead-demo-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let config = TreeConfig::default();
    let engine = Engine::create_file(&path, PAGE_SIZE_DEFAULT_BYTES, &config)?;
    println!("store: {}", path.display());

    // 1. Load everything, committing every 10,000 files as an indexer would: eventual
    //    commits (no sync), then one immediate commit that makes them all durable.
    let started = Instant::now();
    let mut writer = engine.begin_write()?;
    for (count, (path, value)) in files.iter().enumerate() {
        writer.put(path, value)?;
        if count % 10_000 == 9_999 {
            writer.commit(Durability::Eventual)?;
            writer = engine.begin_write()?;
        }
    }
    let loaded_revision = writer.commit(Durability::Immediate)?;
    let load_time = started.elapsed();
    println!(
        "loaded in {:.2?} ({:.0} puts/s), revision {loaded_revision}, durable",
        load_time,
        files.len() as f64 / load_time.as_secs_f64(),
    );

    // 2. The loaded version is a snapshot: keeping it costs nothing but its root.
    let started = Instant::now();
    let snapshot = engine.begin_read();
    println!(
        "snapshot of the loaded version taken in {:.2?}\n",
        started.elapsed()
    );

    // 3. A batch of changes: touch every 50th file, remove one directory subtree, add a
    //    new tree of files.
    let started = Instant::now();
    let mut writer = engine.begin_write()?;
    let mut touched = 0;
    for (path, value) in files.iter().step_by(50) {
        let mut changed = *value;
        changed[8..]
            .copy_from_slice(&(u64::from_le_bytes(value[8..].try_into()?) + 3600).to_le_bytes());
        writer.put(path, &changed)?;
        touched += 1;
    }
    let removed_prefix = largest_directory(&files);
    let removed_end = prefix_end(&removed_prefix);
    writer.delete_range(removed_prefix.as_slice()..removed_end.as_slice())?;
    let mut added = 0;
    for index in 0..2_000u64 {
        let path = format!("{root}/thunderhead-demo/new/file-{index:05}.dat");
        let mut value = [0u8; 16];
        value[..8].copy_from_slice(&(index * 100).to_le_bytes());
        writer.put(path.as_bytes(), &value)?;
        added += 1;
    }
    let changed_revision = writer.commit(Durability::Immediate)?;
    println!(
        "changes: touched {touched}, removed everything under {}, added {added}; committed in {:.2?}",
        String::from_utf8_lossy(&removed_prefix),
        started.elapsed()
    );

    // 4. What changed between the two versions: the structural diff, which skips every
    //    subtree the two share, beside a comparison by two full scans (which must agree).
    let current = engine.begin_read();
    let started = Instant::now();
    let mut diff = snapshot.diff(&current);
    let (mut additions, mut removals, mut updates) = (0u64, 0u64, 0u64);
    for change in diff.by_ref() {
        match change?.kind {
            ChangeKind::Added(_) => additions += 1,
            ChangeKind::Removed(_) => removals += 1,
            ChangeKind::Updated { .. } => updates += 1,
        }
    }
    let diff_time = started.elapsed();
    let started = Instant::now();
    let scanned = compare(&snapshot, &current)?;
    let scan_time = started.elapsed();
    assert_eq!(
        scanned,
        (additions, removals, updates),
        "diff and scans disagree"
    );
    println!(
        "diff loaded..changed: {additions} added, {removals} removed, {updates} updated in {diff_time:.2?}, reading {} pages (two full scans: {scan_time:.2?})\n",
        diff.pages_read()
    );
    drop(diff); // it holds the store open, as readers do

    // 5. Range queries on the new version, and the old one still answering as it was.
    for prefix in [
        format!("{root}/bin/"),
        format!("{root}/lib/"),
        format!("{root}/share/doc/"),
    ] {
        let start = prefix.as_bytes().to_vec();
        let end = prefix_end(&start);
        let started = Instant::now();
        let mut count = 0u64;
        let mut bytes = 0u64;
        for item in current.range(start.as_slice()..end.as_slice()) {
            let (_, value) = item?;
            count += 1;
            bytes += u64::from_le_bytes(value[..8].try_into()?);
        }
        println!(
            "range {prefix:<24} {count:>7} files, {:>10.1} MiB, in {:.2?}",
            mib(bytes as usize),
            started.elapsed()
        );
    }
    let probe = files
        .keys()
        .nth(files.len() / 2)
        .expect("files is not empty");
    let started = Instant::now();
    let old_value = snapshot.get(probe)?;
    println!(
        "point get in the old snapshot: {} -> {} bytes in {:.2?}",
        String::from_utf8_lossy(probe),
        old_value.map_or(0, |value| value.len()),
        started.elapsed()
    );
    let last_three: Vec<String> = current
        .iter()
        .rev()
        .take(3)
        .map(|item| item.map(|(key, _)| String::from_utf8_lossy(&key).into_owned()))
        .collect::<Result<_, _>>()?;
    println!("last three keys (reverse iteration): {last_three:?}\n");

    // 6. Check both versions, and the store: no page leaked or used twice.
    let started = Instant::now();
    let old_report = snapshot.check()?;
    let report = current.check()?;
    println!("check: both versions verified in {:.2?}", started.elapsed());
    println!(
        "tree: height {}, {} leaves, {} branches, {} entries in leaves, {:.1} KiB pending in journals, {} journal segments",
        report.height,
        report.leaf_count,
        report.branch_count,
        report.leaf_entry_count,
        report.journal_pending_bytes as f64 / 1024.0,
        report.segment_count
    );
    let old_pages: std::collections::BTreeSet<_> = old_report.extents.iter().collect();
    let shared = report
        .extents
        .iter()
        .filter(|extent| old_pages.contains(extent))
        .count();
    println!(
        "versions share {shared} of the new version's {} extents (copy-on-write)",
        report.extents.len()
    );
    let stats = engine.pager().store().stats();
    drop((snapshot, current));
    let store_report = engine.check()?;
    let page_mib = |pages: u64| mib(pages as usize * PAGE_SIZE_DEFAULT_BYTES);
    println!(
        "store: {:.1} MiB used for {:.1} MiB of raw data ({:.1} MiB live, {:.1} MiB free, {:.1} MiB awaiting reuse); {:.1} MiB written in {} writes, {} syncs",
        page_mib(store_report.used_pages),
        mib(raw_bytes),
        page_mib(store_report.live_pages),
        page_mib(store_report.free_pages),
        page_mib(store_report.pending_pages),
        mib(stats.written_bytes as usize),
        stats.writes,
        stats.syncs
    );

    // 7. Close and reopen: recovery verifies what the last commit wrote, not the file.
    drop(engine);
    let started = Instant::now();
    let engine = Engine::<FileStore>::open_file(&path, &config)?;
    let reopened = engine.begin_read().get(probe)?;
    println!(
        "reopened revision {} (committed {changed_revision}) in {:.2?}; {} reads {}",
        engine.revision(),
        started.elapsed(),
        String::from_utf8_lossy(probe),
        if reopened.is_some() {
            "back"
        } else {
            "nothing (removed)"
        }
    );
    drop(engine);
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Collects regular files under `directory`: path -> (size, mtime seconds), little-endian.
fn walk(directory: &Path, files: &mut BTreeMap<Vec<u8>, [u8; 16]>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            walk(&path, files);
        } else if kind.is_file()
            && let Ok(metadata) = entry.metadata()
        {
            let mtime = metadata
                .modified()
                .ok()
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok());
            let mut value = [0u8; 16];
            value[..8].copy_from_slice(&metadata.len().to_le_bytes());
            value[8..].copy_from_slice(&mtime.map_or(0, |time| time.as_secs()).to_le_bytes());
            let key = path.as_os_str().as_encoded_bytes().to_vec();
            if key.len() <= 2048 {
                files.insert(key, value);
            }
        }
    }
}

/// The directory (two levels below the root) holding the most files.
fn largest_directory(files: &BTreeMap<Vec<u8>, [u8; 16]>) -> Vec<u8> {
    let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for path in files.keys() {
        let slashes: Vec<usize> = path
            .iter()
            .enumerate()
            .filter(|(_, byte)| **byte == b'/')
            .map(|(at, _)| at)
            .collect();
        if let Some(&cut) = slashes.get(3) {
            *counts.entry(path[..=cut].to_vec()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .map(|(prefix, _)| prefix)
        .unwrap_or_else(|| b"/".to_vec())
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

/// Counts added, removed and updated keys between two versions by scanning both.
fn compare<S: PageStore>(old: &Snapshot<S>, new: &Snapshot<S>) -> Result<(u64, u64, u64), Error> {
    let mut old_items = old.iter().peekable();
    let mut new_items = new.iter().peekable();
    let (mut additions, mut removals, mut updates) = (0, 0, 0);
    loop {
        let order = match (old_items.peek(), new_items.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(Ok((old_key, _))), Some(Ok((new_key, _)))) => old_key.cmp(new_key),
            (Some(Err(_)), _) => {
                return Err(old_items
                    .next()
                    .expect("peeked")
                    .expect_err("peeked an error")
                    .into());
            }
            (_, Some(Err(_))) => {
                return Err(new_items
                    .next()
                    .expect("peeked")
                    .expect_err("peeked an error")
                    .into());
            }
        };
        match order {
            std::cmp::Ordering::Less => {
                old_items.next();
                removals += 1;
            }
            std::cmp::Ordering::Greater => {
                new_items.next();
                additions += 1;
            }
            std::cmp::Ordering::Equal => {
                let (_, old_value) = old_items.next().expect("peeked")?;
                let (_, new_value) = new_items.next().expect("peeked")?;
                if *old_value != *new_value {
                    updates += 1;
                }
            }
        }
    }
    Ok((additions, removals, updates))
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
