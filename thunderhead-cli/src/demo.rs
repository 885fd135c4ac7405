//! `thunderhead demo`: a versioned index of every file under a directory (default
//! `/usr`), keyed by path, valued by size and modification time (16 bytes: two
//! little-endian `u64`s). It loads the index into the tree `main`, keeps the loaded
//! version as the snapshot `loaded`, applies a batch of realistic changes in one
//! transaction, and shows the diff, range queries, a read of the past and the storage
//! figures, with timings throughout.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use thunderhead_tx::{ChangeKind, Database, Durability, Version};

use crate::escape::escape;
use crate::{Failure, TREE};

/// The directory indexed when none is given.
const DEFAULT_DIR: &str = "/usr";
/// The database file used when none is given (in the current directory).
const DEFAULT_DB: &str = "thunderhead-demo.th";
/// The snapshot kept of the loaded version.
const SNAPSHOT: &[u8] = b"loaded";
/// Keys per write transaction while loading.
const LOAD_BATCH_KEYS: usize = 100_000;
/// One file in this many gets a new modification time.
const TOUCH_EVERY: usize = 50;
/// Files the change batch adds.
const ADDED_FILES: u64 = 2_000;
/// The first bytes of every Thunderhead database file (`thunderhead_disk::MAGIC`).
const MAGIC: &[u8; 8] = b"THUNDRHD";

/// Path -> (size, mtime seconds), little-endian.
type Files = BTreeMap<Vec<u8>, [u8; 16]>;

pub fn run(dir: Option<PathBuf>, db: Option<PathBuf>) -> Result<(), Failure> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let db_path = db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    if !dir.is_dir() {
        return Err(Failure::Input(format!(
            "{}: no such directory",
            dir.display()
        )));
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Thunderhead demo: a versioned index of the files under {}",
        dir.display()
    )?;

    // 0. A fresh database: the previous demo's file, if any, goes (that file only).
    let replaced = remove_previous(&db_path)?;
    let db = Database::create(&db_path, crate::options())?;
    writeln!(
        out,
        "database: {}{}",
        db_path.display(),
        if replaced {
            " (removed the previous demo database, starting fresh)"
        } else {
            " (new)"
        }
    )?;
    let limits = *db.engine().pager().limits();

    // 1. Walk the directory.
    let started = Instant::now();
    let mut files = Files::new();
    walk(&dir, &mut files);
    let before = files.len();
    files.retain(|key, _| key.len() <= limits.key_bytes_max);
    let skipped = before - files.len();
    let key_bytes: usize = files.keys().map(Vec::len).sum();
    let value_bytes: usize = files.values().map(|value| value.len()).sum();
    let raw_bytes = key_bytes + value_bytes;
    writeln!(
        out,
        "scanned {} files in {:.2?}: {} of raw keys and values ({} keys, {} values){}",
        files.len(),
        started.elapsed(),
        size(raw_bytes as u64),
        size(key_bytes as u64),
        size(value_bytes as u64),
        if skipped > 0 {
            format!("; skipped {skipped} paths longer than the key limit")
        } else {
            String::new()
        }
    )?;
    if files.is_empty() {
        return Err(Failure::Input(format!(
            "no readable files under {}",
            dir.display()
        )));
    }

    // 2. Load, in write transactions of LOAD_BATCH_KEYS keys: eventual commits, then
    //    one immediate commit that makes them all durable.
    let started = Instant::now();
    let batches = files.len().div_ceil(LOAD_BATCH_KEYS);
    let mut loaded_revision = db.revision();
    let mut entries = files.iter().peekable();
    while entries.peek().is_some() {
        let txn = db.begin_write()?;
        {
            let tree = txn.open_tree(TREE)?;
            for (key, value) in entries.by_ref().take(LOAD_BATCH_KEYS) {
                tree.insert(key, value)?;
            }
        }
        let durability = if entries.peek().is_some() {
            Durability::Eventual
        } else {
            Durability::Immediate
        };
        loaded_revision = txn.commit_with(durability)?;
    }
    let load_time = started.elapsed();
    writeln!(
        out,
        "loaded {} files into tree \"{}\" in {} commit{} in {:.2?} ({:.0} puts/s), revision {loaded_revision}, durable",
        files.len(),
        escape(TREE),
        batches,
        if batches == 1 { "" } else { "s" },
        load_time,
        per_second(files.len() as u64, load_time)
    )?;

    // 3. The loaded version as a named snapshot: it copies nothing.
    let started = Instant::now();
    let kept = db.snapshot(SNAPSHOT)?;
    writeln!(
        out,
        "snapshot \"{}\" of revision {kept} taken in {:.2?}",
        escape(SNAPSHOT),
        started.elapsed()
    )?;

    // 4. A batch of changes in one transaction: touch every TOUCH_EVERY-th file, remove
    //    the largest directory with one range removal, add new files.
    let started = Instant::now();
    let removed_prefix = largest_directory(&dir, &files);
    let txn = db.begin_write()?;
    let mut touched = 0u64;
    let mut removed_files = 0u64;
    {
        let tree = txn.open_tree(TREE)?;
        for (key, value) in files.iter().step_by(TOUCH_EVERY) {
            let mut changed = *value;
            let mtime = field(value, 1).wrapping_add(3600);
            changed[8..].copy_from_slice(&mtime.to_le_bytes());
            tree.insert(key, &changed)?;
            touched += 1;
        }
        if let Some(prefix) = &removed_prefix {
            let end = prefix_end(prefix);
            tree.remove_range(prefix.as_slice()..end.as_slice())?;
            removed_files = under(&files, prefix).count() as u64;
        }
        for index in 0..ADDED_FILES {
            let mut value = [0u8; 16];
            value[..8].copy_from_slice(&(index * 100).to_le_bytes());
            value[8..].copy_from_slice(&now_seconds().to_le_bytes());
            tree.insert(&new_file(&dir, index), &value)?;
        }
    }
    let changed_revision = txn.commit()?;
    let removed_text = match &removed_prefix {
        Some(prefix) => format!(
            "removed the {removed_files} files under {} (one remove_range)",
            escape(prefix)
        ),
        None => "removed nothing (no subdirectory)".to_string(),
    };
    writeln!(
        out,
        "changes: touched {touched} files (new mtime), {removed_text}, added {ADDED_FILES} under {}/; committed revision {changed_revision} in {:.2?}",
        dir.join("thunderhead-demo").join("new").display(),
        started.elapsed()
    )?;

    // 5. What changed from the snapshot to the latest version: the structural diff
    //    skips every subtree the two versions share.
    let started = Instant::now();
    let mut diff = db.diff(SNAPSHOT, Version::Latest)?;
    let (mut added, mut removed, mut updated) = (0u64, 0u64, 0u64);
    for change in diff.by_ref() {
        match change?.kind {
            ChangeKind::Added(_) => added += 1,
            ChangeKind::Removed(_) => removed += 1,
            ChangeKind::Updated { .. } => updated += 1,
        }
    }
    let diff_time = started.elapsed();
    writeln!(
        out,
        "diff {}..latest: {added} added, {removed} removed, {updated} updated in {diff_time:.2?}, {} pages read",
        escape(SNAPSHOT),
        diff.pages_read()
    )?;
    drop(diff); // it keeps both versions readable

    // 6. Range queries on the new version, and a read of the old one.
    let read = db.begin_read();
    let tree = read.open_tree(TREE)?;
    for sub in ["bin", "lib", "share/doc"] {
        let mut start = dir.join(sub).as_os_str().as_encoded_bytes().to_vec();
        start.push(b'/');
        let end = prefix_end(&start);
        let started = Instant::now();
        let (mut count, mut bytes) = (0u64, 0u64);
        for entry in tree.range(start.as_slice()..end.as_slice()) {
            let (_, value) = entry?;
            count += 1;
            bytes = bytes.saturating_add(field(&value, 0));
        }
        writeln!(
            out,
            "range {:<24} {count:>8} files, {:>10} in {:.2?}",
            escape(&start),
            size(bytes),
            started.elapsed()
        )?;
    }
    if let Some(prefix) = &removed_prefix
        && let Some((probe, _)) = under(&files, prefix).next()
    {
        let started = Instant::now();
        let then = db.begin_read_at_snapshot(SNAPSHOT)?;
        let old = then.open_tree(TREE)?.get(probe)?;
        let old_time = started.elapsed();
        let now = tree.get(probe)?;
        writeln!(
            out,
            "point read of removed {}: at \"{}\" {} in {old_time:.2?}; latest {}",
            escape(probe),
            escape(SNAPSHOT),
            match &old {
                Some(value) => format!("{} (mtime {})", size(field(value, 0)), field(value, 1)),
                None => "absent".to_string(),
            },
            if now.is_some() { "present" } else { "absent" }
        )?;
    }
    drop(tree);
    drop(read);

    // 7. Verify everything, and the storage figures.
    let started = Instant::now();
    let report = db.check()?;
    writeln!(
        out,
        "check: ok, revision {}, {} trees, {} past versions verified in {:.2?}",
        report.revision,
        report
            .trees
            .iter()
            .filter(|(name, _)| !name.is_empty())
            .count(),
        report.past_versions,
        started.elapsed()
    )?;
    let file_bytes = std::fs::metadata(&db_path)?.len();
    let page_size = limits.page_size_bytes as u64;
    let current_raw: u64 = raw_after_changes(&files, removed_prefix.as_deref(), &dir);
    writeln!(
        out,
        "storage: {} on disk, holding both versions: {} of raw keys and values loaded, {} now",
        size(file_bytes),
        size(raw_bytes as u64),
        size(current_raw)
    )?;
    writeln!(
        out,
        "pages of {}: {} used, {} live, {} free, {} pending (kept for past versions)",
        size(page_size),
        report.used_pages,
        report.live_pages,
        report.free_pages,
        report.pending_pages
    )?;
    if let Some((_, main)) = report.trees.iter().find(|(name, _)| name == TREE) {
        writeln!(
            out,
            "tree \"{}\": height {}, {} leaves, {} branches, {} entries in leaves, {} pending in journals ({} segments), {} overflow values",
            escape(TREE),
            main.height,
            main.leaf_count,
            main.branch_count,
            main.leaf_entry_count,
            size(main.journal_pending_bytes),
            main.segment_count,
            main.overflow_value_count
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Removes the database file a previous demo left at `path`, if any. Returns whether
/// there was one. Anything there that is not a Thunderhead database stays.
fn remove_previous(path: &Path) -> Result<bool, Failure> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(false);
    };
    if !metadata.is_file() {
        return Err(Failure::Input(format!(
            "{}: exists and is not a database file; not removing it",
            path.display()
        )));
    }
    let mut head = Vec::with_capacity(MAGIC.len());
    std::fs::File::open(path)?
        .take(MAGIC.len() as u64)
        .read_to_end(&mut head)?;
    if !head.is_empty() && head != MAGIC {
        return Err(Failure::Input(format!(
            "{}: exists and is not a Thunderhead database; not removing it",
            path.display()
        )));
    }
    std::fs::remove_file(path)?;
    Ok(true)
}

/// Collects the regular files under `directory` (not following symbolic links, passing
/// over what cannot be read).
fn walk(directory: &Path, files: &mut Files) {
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
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |time| time.as_secs());
            let mut value = [0u8; 16];
            value[..8].copy_from_slice(&metadata.len().to_le_bytes());
            value[8..].copy_from_slice(&mtime.to_le_bytes());
            files.insert(path.into_os_string().into_encoded_bytes(), value);
        }
    }
}

/// The key prefix (ending in `/`) of the directory two levels below `root` holding the
/// most files, or one level below if there is none that deep.
fn largest_directory(root: &Path, files: &Files) -> Option<Vec<u8>> {
    let root = root.as_os_str().as_encoded_bytes();
    let mut counts: [BTreeMap<&[u8], usize>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for key in files.keys() {
        let Some(rest) = key.strip_prefix(root) else {
            continue;
        };
        let skip = rest.iter().take_while(|byte| **byte == b'/').count();
        let offset = root.len() + skip;
        let slashes = key[offset..]
            .iter()
            .enumerate()
            .filter(|(_, byte)| **byte == b'/')
            .map(|(at, _)| offset + at);
        for (depth, cut) in slashes.take(2).enumerate() {
            *counts[depth].entry(&key[..=cut]).or_default() += 1;
        }
    }
    counts.iter().rev().find_map(|level| {
        level
            .iter()
            .max_by_key(|(_, count)| **count)
            .map(|(prefix, _)| prefix.to_vec())
    })
}

/// The key of the `index`-th file the change batch adds.
fn new_file(root: &Path, index: u64) -> Vec<u8> {
    root.join("thunderhead-demo")
        .join("new")
        .join(format!("file-{index:05}.dat"))
        .into_os_string()
        .into_encoded_bytes()
}

/// Raw bytes of the keys and values after the change batch.
fn raw_after_changes(files: &Files, removed: Option<&[u8]>, root: &Path) -> u64 {
    let kept: usize = files
        .keys()
        .filter(|key| removed.is_none_or(|prefix| !key.starts_with(prefix)))
        .map(|key| key.len() + 16)
        .sum();
    let added: usize = (0..ADDED_FILES)
        .map(|index| new_file(root, index).len() + 16)
        .sum();
    (kept + added) as u64
}

/// The files whose paths start with `prefix`.
fn under<'a>(files: &'a Files, prefix: &[u8]) -> impl Iterator<Item = (&'a Vec<u8>, &'a [u8; 16])> {
    let end = prefix_end(prefix);
    files.range::<[u8], _>((Bound::Included(prefix), Bound::Excluded(end.as_slice())))
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

/// Field `index` (0 size, 1 mtime) of a value; 0 if the value is too short.
fn field(value: &[u8], index: usize) -> u64 {
    value
        .get(index * 8..index * 8 + 8)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Bytes in the largest binary unit that keeps the figure at least 1.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
