//! Memory while loading a large store: does the process stay near the cache budget
//! whatever the file size? Loads `KEYS` (default 10,000,000) entries, 16-byte keys (a
//! counter, hashed) with 16-byte values, into a new file (default page size, journal
//! budget, and `cache_bytes_max` = 64 MiB), in commits of `COMMIT_KEYS` (default
//! 100,000) keys, every commit `Durability::Eventual` except the last, `Immediate`.
//!
//! Every `REPORT_KEYS` (default 1,000,000) keys it prints the resident set (`VmRSS`, its
//! peak `VmHWM`, and the anonymous part `RssAnon`, from `/proc/self/status`), the heap
//! this process holds (a counting global allocator: bytes allocated and not freed, and
//! their peak), the page cache's own figure, and the file's size; at the end, the load
//! time, the peak resident set, the store's page accounting, and what `compact` then
//! gives back. The heap peaks are split between taking a commit's puts and committing.
//! `ALL_IMMEDIATE=1` makes every commit immediate (pages freed by one commit are then
//! reused by the next; eventual commits cannot reuse them until one is durable).
//!
//! `cargo run --release -p thunderhead-benches --example rss [KEYS [COMMIT_KEYS [REPORT_KEYS]]]`
//! The file goes to a directory under `TMPDIR` and is removed at the end (set
//! `KEEP_STORE=1` to keep it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use thunderhead_benches::{SplitMix64, proc_status_bytes, scratch_dir};
use thunderhead_core::{Durability, Engine, TreeConfig};
use thunderhead_disk::{FileStore, PAGE_SIZE_DEFAULT_BYTES, PageStore};

const CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

/// The system allocator, counting the bytes held and their peak.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static HELD_PEAK: AtomicUsize = AtomicUsize::new(0);

fn note_alloc(bytes: usize) {
    let held = HELD.fetch_add(bytes, Ordering::Relaxed) + bytes;
    HELD_PEAK.fetch_max(held, Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            note_alloc(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            note_alloc(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from this allocator (so from `System`) with `layout`.
        unsafe { System.dealloc(pointer, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract, which we pass on.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
            note_alloc(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "?".into(), |bytes| format!("{:.0}", bytes as f64 / MIB))
}

/// Key `index`: 16 bytes, a bijective hash of the counter (so all distinct) in random
/// order.
fn key(index: u64) -> [u8; 16] {
    let high = SplitMix64::new(index).next_u64();
    let low = SplitMix64::new(index ^ 0x5DEE_CE66_D1CE_4E5B).next_u64();
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&high.to_be_bytes());
    key[8..].copy_from_slice(&low.to_be_bytes());
    key
}

fn value(index: u64) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&index.to_le_bytes());
    value[8..].copy_from_slice(&(!index).to_le_bytes());
    value
}

fn arg(position: usize, default: u64) -> u64 {
    std::env::args().nth(position).map_or(default, |text| {
        text.replace('_', "").parse().expect("a number")
    })
}

fn report_header() {
    println!(
        "| keys | elapsed | keys/s (interval) | VmRSS MiB | VmHWM MiB | RssAnon MiB \
         | heap held MiB | heap peak: puts MiB | heap peak: commit MiB | cache MiB (pages) \
         | cache hit rate | file MiB |"
    );
    println!("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
}

/// The highest heap figures of a reporting interval: while a writer took the puts, and
/// while it committed.
#[derive(Default)]
struct Peaks {
    puts: usize,
    commit: usize,
}

/// Restarts the heap peak at what is held now.
fn restart_peak() {
    HELD_PEAK.store(HELD.load(Ordering::Relaxed), Ordering::Relaxed);
}

fn report_row(engine: &Engine<FileStore>, keys: u64, elapsed: f64, rate: f64, peaks: &Peaks) {
    let cache = engine.pager().cache_stats();
    let lookups = cache.hits + cache.misses;
    let file_bytes = engine.pager().store().page_count() * PAGE_SIZE_DEFAULT_BYTES as u64;
    println!(
        "| {keys} | {elapsed:.1} s | {rate:.0} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} ({}) \
         | {:.3} | {:.0} |",
        mib(proc_status_bytes("VmRSS")),
        mib(proc_status_bytes("VmHWM")),
        mib(proc_status_bytes("RssAnon")),
        HELD.load(Ordering::Relaxed) as f64 / MIB,
        peaks.puts as f64 / MIB,
        peaks.commit as f64 / MIB,
        cache.bytes as f64 / MIB,
        cache.pages,
        if lookups == 0 {
            0.0
        } else {
            cache.hits as f64 / lookups as f64
        },
        file_bytes as f64 / MIB,
    );
}

fn main() -> Result<(), Box<dyn Error>> {
    let keys = arg(1, 10_000_000);
    let commit_keys = arg(2, 100_000).max(1);
    let report_keys = arg(3, 1_000_000).max(commit_keys);
    let all_immediate = std::env::var_os("ALL_IMMEDIATE").is_some();
    let dir = scratch_dir("rss");
    let path = dir.join("load.db");
    let config = TreeConfig {
        cache_bytes_max: CACHE_BYTES_MAX,
        ..TreeConfig::default()
    };
    println!(
        "loading {keys} keys (16-byte keys, 16-byte values) in {} commits of {commit_keys} \
         into {} ({} KiB pages, journal budget {} KiB, cache budget {} MiB)",
        if all_immediate {
            "immediate"
        } else {
            "eventual (the last immediate)"
        },
        path.display(),
        PAGE_SIZE_DEFAULT_BYTES / 1024,
        config.journal_bytes_max / 1024,
        CACHE_BYTES_MAX / (1024 * 1024),
    );
    println!(
        "before the store: VmRSS {} MiB, heap held {:.1} MiB",
        mib(proc_status_bytes("VmRSS")),
        HELD.load(Ordering::Relaxed) as f64 / MIB
    );
    let engine = Engine::create_file(&path, PAGE_SIZE_DEFAULT_BYTES, &config)?;
    println!();
    report_header();
    let started = Instant::now();
    let mut interval_started = Instant::now();
    let mut interval_keys = 0;
    let mut loaded = 0;
    let mut peaks = Peaks::default();
    let mut heap_peak = 0;
    while loaded < keys {
        let end = (loaded + commit_keys).min(keys);
        restart_peak();
        let mut writer = engine.begin_write()?;
        for index in loaded..end {
            writer.put(&key(index), &value(index))?;
        }
        peaks.puts = peaks.puts.max(HELD_PEAK.load(Ordering::Relaxed));
        restart_peak();
        let durability = if end == keys || all_immediate {
            Durability::Immediate
        } else {
            Durability::Eventual
        };
        writer.commit(durability)?;
        peaks.commit = peaks.commit.max(HELD_PEAK.load(Ordering::Relaxed));
        interval_keys += end - loaded;
        loaded = end;
        if loaded % report_keys == 0 || loaded == keys {
            let rate = interval_keys as f64 / interval_started.elapsed().as_secs_f64();
            report_row(
                &engine,
                loaded,
                started.elapsed().as_secs_f64(),
                rate,
                &peaks,
            );
            heap_peak = heap_peak.max(peaks.puts).max(peaks.commit);
            peaks = Peaks::default();
            interval_started = Instant::now();
            interval_keys = 0;
        }
    }
    let load_time = started.elapsed();
    let stats = engine.pager().store().stats();
    let file_bytes = std::fs::metadata(&path)?.len();
    println!();
    println!(
        "loaded {keys} keys in {load_time:.1?} ({:.0} keys/s); peak resident set (VmHWM) {} \
         MiB, heap peak {:.0} MiB; file {:.0} MiB ({:.1} bytes per byte of user data); \
         {:.0} MiB written, {:.0} MiB read back, {} syncs",
        keys as f64 / load_time.as_secs_f64(),
        mib(proc_status_bytes("VmHWM")),
        heap_peak as f64 / MIB,
        file_bytes as f64 / MIB,
        file_bytes as f64 / (keys * 32) as f64,
        stats.written_bytes as f64 / MIB,
        stats.read_bytes as f64 / MIB,
        stats.syncs,
    );

    // Verification and page accounting (not part of the load).
    let checked = Instant::now();
    let report = engine.check()?;
    let reader = engine.begin_read();
    for index in (0..keys).step_by(100_003) {
        assert_eq!(
            reader.get(&key(index))?.as_deref(),
            Some(&value(index)[..]),
            "key {index}"
        );
    }
    drop(reader);
    println!(
        "check ({:.1?}): height {}, {} leaves, {} branches, {} entries in leaves, {} KiB \
         pending in journals; pages: {} used, {} live, {} free, {} pending \
         (live is {:.0} MiB)",
        checked.elapsed(),
        report.tree.height,
        report.tree.leaf_count,
        report.tree.branch_count,
        report.tree.leaf_entry_count,
        report.tree.journal_pending_bytes / 1024,
        report.used_pages,
        report.live_pages,
        report.free_pages,
        report.pending_pages,
        (report.live_pages * PAGE_SIZE_DEFAULT_BYTES as u64) as f64 / MIB,
    );
    println!(
        "after the check: VmRSS {} MiB, VmHWM {} MiB, heap held {:.0} MiB",
        mib(proc_status_bytes("VmRSS")),
        mib(proc_status_bytes("VmHWM")),
        HELD.load(Ordering::Relaxed) as f64 / MIB,
    );
    let compacted = Instant::now();
    let returned = engine.compact()?;
    let report = engine.check()?;
    println!(
        "compact ({:.1?}): returned {returned} pages; file {:.0} MiB; pages: {} used, {} live, \
         {} free, {} pending",
        compacted.elapsed(),
        std::fs::metadata(&path)?.len() as f64 / MIB,
        report.used_pages,
        report.live_pages,
        report.free_pages,
        report.pending_pages,
    );
    drop(engine);
    if std::env::var_os("KEEP_STORE").is_none() {
        std::fs::remove_dir_all(&dir)?;
    } else {
        println!("kept {}", path.display());
    }
    Ok(())
}
